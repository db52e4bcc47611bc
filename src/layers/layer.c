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
