// params.h — a model's parameters, gradients and AdamW moments in one layout.
//
// A network registers each tensor once, by its checkpoint name and shape (SPEC §3–5 names),
// in a fixed order. mav_params_alloc then carves one allocation into four equal regions,
// value | grad | m | v, so every tensor has the same offset in each: the optimizer, gradient
// clipping, EMA and checkpoint I/O are flat loops over `total` floats (llm.c's layout).
// Offsets are rounded up to 16 floats so every tensor starts on a cache line.
#ifndef MAV_PARAMS_H
#define MAV_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MAV_MAX_DIMS 5
#define MAV_NAME_MAX 160

typedef struct {
    char name[MAV_NAME_MAX];
    int ndim;
    int64_t shape[MAV_MAX_DIMS];
    size_t numel;
    size_t offset;   // in floats, within each region
} mav_param;

typedef struct {
    mav_param *items;
    int count, cap;
    size_t total;    // floats per region (including alignment padding)
    float *mem;      // the single allocation
    float *value, *grad, *m, *v;  // regions (grad/m/v NULL when not requested)
} mav_params;

void mav_params_init(mav_params *p);
void mav_params_free(mav_params *p);
// Register a tensor; returns its index. Names must be unique (asserted: a network bug).
int mav_params_add(mav_params *p, const char *name, int ndim, const int64_t *shape);
// Allocate value (+ grad if with_grad, + m and v if with_adam), zero-filled.
mav_status mav_params_alloc(mav_params *p, int with_grad, int with_adam);
int mav_params_find(const mav_params *p, const char *name);  // index or -1
static inline float *mav_param_value(mav_params *p, int i) { return p->value + p->items[i].offset; }
static inline float *mav_param_grad(mav_params *p, int i) { return p->grad + p->items[i].offset; }
size_t mav_params_numel(const mav_params *p);  // sum of numel (no padding)
void mav_params_zero_grad(mav_params *p);
// printf into a tensor-name buffer of MAV_NAME_MAX; a longer name is a bug (asserted).
void mav_param_name(char *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
