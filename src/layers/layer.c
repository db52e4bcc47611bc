#include "layers/layer.h"

#include <stdio.h>

int mav_layer_param_opt(const mav_params *p, const char *prefix, const char *suffix) {
    char name[MAV_NAME_MAX + 64];
    snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    return mav_params_find(p, name);
}

int mav_layer_param(const mav_params *p, const char *prefix, const char *suffix) {
    int i = mav_layer_param_opt(p, prefix, suffix);
    if (i < 0) fprintf(stderr, "mav: internal error: parameter %s.%s not registered\n", prefix, suffix);
    MAV_ASSERT(i >= 0);
    return i;
}

mav_status mav_layer_plan_memory(mav_layer_ctx *lc, mav_arena *act, mav_arena *work,
                                 void (*layout)(void *net, mav_arena *a), void *net) {
    mav_arena meas;
    mav_arena_measure(&meas);
    lc->scratch_floats = 0;
    lc->work_bytes = 0;
    layout(net, &meas);
    size_t scratch = lc->scratch_floats, work_bytes = lc->work_bytes;
    size_t total = meas.peak + scratch * sizeof(float) + MAV_ALIGN;
    mav_status st = mav_arena_init(act, total);
    if (st == MAV_OK) st = mav_arena_init(work, work_bytes);
    if (st != MAV_OK) {
        mav_arena_free(act);
        mav_arena_free(work);
        return mav_fail(MAV_ERR_NOMEM, "needs %.1f MB of activations and work memory",
                        (total + work_bytes) / 1048576.0);
    }
    lc->scratch_floats = 0;
    lc->work_bytes = 0;
    layout(net, act);
    MAV_ASSERT(lc->scratch_floats == scratch && lc->work_bytes == work_bytes && act->peak == meas.peak);
    act->used = act->peak;
    lc->scratch = mav_arena_floats(act, scratch);
    lc->work = work;
    return MAV_OK;
}
