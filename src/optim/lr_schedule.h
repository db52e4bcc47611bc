// lr_schedule.h — learning rate: linear warmup, then cosine decay, then constant.
//
// Steps are 1-based (the step about to be taken):
//   s <= warmup:          lr = base · s / warmup                  (reaches base at s = warmup)
//   warmup < s <= total:  lr = min + ½(base − min)(1 + cos(π·(s − warmup)/(total − warmup)))
//   s > total:            lr = min
// so the cosine starts at base right after warmup and reaches min exactly at s = total.
// warmup = 0 means no warmup; total = warmup means no decay phase (base, then min).
#ifndef MAV_LR_SCHEDULE_H
#define MAV_LR_SCHEDULE_H

#include "core/error.h"

typedef struct {
    double base_lr;   // peak lr, reached at the end of warmup
    double min_lr;    // final lr (0 <= min_lr <= base_lr)
    long warmup;      // warmup steps, >= 0
    long total;       // step at which the cosine reaches min_lr, >= warmup
} mav_lr_schedule;

// MAV_ERR_ARG naming the field when the schedule is inconsistent (user input).
mav_status mav_lr_schedule_check(const mav_lr_schedule *s);
// The lr of 1-based step `step` (>= 1, asserted). Pure.
double mav_lr_at(const mav_lr_schedule *s, long step);

#endif
