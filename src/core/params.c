#include "core/params.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mav_params_init(mav_params *p) { memset(p, 0, sizeof *p); }

void mav_params_free(mav_params *p) { free(p->items); free(p->mem); memset(p, 0, sizeof *p); }

int mav_params_add(mav_params *p, const char *name, int ndim, const int64_t *shape) {
    MAV_ASSERT(p->mem == NULL && ndim >= 0 && ndim <= MAV_MAX_DIMS);
    MAV_ASSERT(strlen(name) < MAV_NAME_MAX && mav_params_find(p, name) < 0);
    if (p->count == p->cap) {
        p->cap = p->cap ? 2 * p->cap : 64;
        p->items = realloc(p->items, (size_t)p->cap * sizeof *p->items);
        MAV_ASSERT(p->items != NULL);
    }
    mav_param *t = &p->items[p->count];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) { MAV_ASSERT(shape[d] > 0); t->shape[d] = shape[d]; t->numel *= (size_t)shape[d]; }
    t->offset = p->total;
    p->total += (t->numel + 15) / 16 * 16;
    return p->count++;
}

mav_status mav_params_alloc(mav_params *p, int with_grad, int with_adam) {
    MAV_ASSERT(p->mem == NULL);
    size_t regions = 1 + (with_grad ? 1 : 0) + (with_adam ? 2 : 0);
    size_t n = p->total * regions;
    if (posix_memalign((void **)&p->mem, 64, (n ? n : 16) * sizeof(float)) != 0)
        return mav_fail(MAV_ERR_NOMEM, "cannot allocate %zu parameters (%.1f MB)", p->total, n * 4.0 / 1048576.0);
    memset(p->mem, 0, n * sizeof(float));
    float *r = p->mem;
    p->value = r; r += p->total;
    if (with_grad) { p->grad = r; r += p->total; }
    if (with_adam) { p->m = r; r += p->total; p->v = r; }
    return MAV_OK;
}

int mav_params_find(const mav_params *p, const char *name) {
    for (int i = 0; i < p->count; i++)
        if (strcmp(p->items[i].name, name) == 0) return i;
    return -1;
}

size_t mav_params_numel(const mav_params *p) {
    size_t n = 0;
    for (int i = 0; i < p->count; i++) n += p->items[i].numel;
    return n;
}

void mav_params_zero_grad(mav_params *p) {
    if (p->grad) memset(p->grad, 0, p->total * sizeof(float));
}

void mav_param_name(char *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out, MAV_NAME_MAX, fmt, ap);
    va_end(ap);
    MAV_ASSERT(n >= 0 && n < MAV_NAME_MAX);
}
