#include "io/checkpoint.h"

#include <stdio.h>
#include <string.h>

void mav_checkpoint_add(mav_st_writer *w, const mav_params *p, const char *prefix, mav_dtype dtype) {
    char full[MAV_NAME_MAX + 64];
    for (int i = 0; i < p->count; i++) {
        const mav_param *t = &p->items[i];
        snprintf(full, sizeof full, "%s%s", prefix ? prefix : "", t->name);
        mav_st_writer_add_f32(w, full, t->ndim, t->shape, p->value + t->offset, dtype);
    }
}

mav_status mav_checkpoint_save(const mav_params *p, const char *path, const char *kind, const char *config_json,
                               mav_dtype dtype, int nmeta, const char *const *keys, const char *const *vals) {
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_st_writer_meta(&w, "mav.kind", kind);
    mav_st_writer_meta(&w, "mav.config", config_json);
    for (int i = 0; i < nmeta; i++) mav_st_writer_meta(&w, keys[i], vals[i]);
    mav_checkpoint_add(&w, p, "", dtype);
    mav_status st = mav_st_writer_save(&w, path);
    mav_st_writer_free(&w);
    return st;
}

mav_status mav_checkpoint_load(mav_params *p, const mav_st_file *f, const char *prefix, mav_ckpt_missing_fn missing,
                               mav_ckpt_extra_fn extra, void *ctx) {
    MAV_ASSERT(p->value != NULL);
    if (!prefix) prefix = "";
    size_t pl = strlen(prefix);
    for (int i = 0; i < f->ntensors; i++) {
        const mav_st_tensor *ft = &f->tensors[i];
        if (strncmp(ft->name, prefix, pl) != 0) continue;  // another network of a pipeline file
        const char *nm = ft->name + pl;
        if (mav_params_find(p, nm) >= 0) continue;
        int ok = extra ? extra(ctx, f, ft, nm) : 0;
        if (ok < 0) return MAV_ERR_SHAPE;
        if (ok == 0)
            return mav_fail(MAV_ERR_SHAPE, "%s: unexpected tensor \"%s\" (not part of this network)", f->path, ft->name);
    }
    char full[MAV_NAME_MAX + 64];
    for (int k = 0; k < p->count; k++) {
        const mav_param *t = &p->items[k];
        snprintf(full, sizeof full, "%s%s", prefix, t->name);
        const mav_st_tensor *ft = mav_st_find(f, full);
        if (!ft) {
            if (missing && missing(ctx, t, mav_param_value(p, k))) continue;
            return mav_fail(MAV_ERR_SHAPE, "%s: tensor \"%s\" is missing", f->path, full);
        }
        if (!mav_dtype_is_float(ft->dtype))
            return mav_fail(MAV_ERR_FORMAT, "%s: tensor \"%s\" has dtype %s (expected F32, F16 or BF16)", f->path, full,
                            mav_dtype_name(ft->dtype));
        mav_status st = mav_st_read_f32(f, full, t->ndim, t->shape, mav_param_value(p, k));
        if (st != MAV_OK) return st;
    }
    return MAV_OK;
}
