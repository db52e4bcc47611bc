#include "optim/lr_schedule.h"

#include <math.h>

mav_status mav_lr_schedule_check(const mav_lr_schedule *s) {
    if (!(s->base_lr > 0.0 && isfinite(s->base_lr))) return mav_fail(MAV_ERR_ARG, "lr schedule: base lr %g must be > 0", s->base_lr);
    if (!(s->min_lr >= 0.0 && s->min_lr <= s->base_lr))
        return mav_fail(MAV_ERR_ARG, "lr schedule: min lr %g is not in [0, base lr %g]", s->min_lr, s->base_lr);
    if (s->warmup < 0) return mav_fail(MAV_ERR_ARG, "lr schedule: warmup %ld is negative", s->warmup);
    if (s->total < s->warmup)
        return mav_fail(MAV_ERR_ARG, "lr schedule: total steps %ld < warmup steps %ld", s->total, s->warmup);
    return MAV_OK;
}

double mav_lr_at(const mav_lr_schedule *s, long step) {
    MAV_ASSERT(step >= 1);
    if (step <= s->warmup) return s->base_lr * (double)step / (double)s->warmup;
    if (step > s->total) return s->min_lr;
    double progress = (double)(step - s->warmup) / (double)(s->total - s->warmup);   // in (0, 1]
    return s->min_lr + 0.5 * (s->base_lr - s->min_lr) * (1.0 + cos(M_PI * progress));
}
