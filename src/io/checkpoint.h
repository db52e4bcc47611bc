// checkpoint.h — a network's parameters to and from safetensors (SPEC §7), shared by every
// network: metadata mav.kind / mav.config, tensors by their SPEC names (optionally under a
// pipeline prefix such as "decoder."), f32 / f16 / bf16 storage.
//
// Loading is strict: every parameter must be present with its exact shape and a float
// dtype, and every tensor under the prefix must be a parameter. The two SPEC exceptions
// (inflation's temporal tensors; OpenAI's integer scalars in CLIP files) are the networks'
// to allow, through the callbacks.
#ifndef MAV_CHECKPOINT_H
#define MAV_CHECKPOINT_H

#include "core/params.h"
#include "io/safetensors.h"

// Add every tensor of p to w as prefix + name, stored as dtype.
void mav_checkpoint_add(mav_st_writer *w, const mav_params *p, const char *prefix, mav_dtype dtype);
// Write p as a checkpoint of `kind` with `config_json`, plus nmeta extra metadata pairs. Atomic.
mav_status mav_checkpoint_save(const mav_params *p, const char *path, const char *kind, const char *config_json,
                               mav_dtype dtype, int nmeta, const char *const *keys, const char *const *vals);

// A parameter absent from the file: return 1 after writing its value (allowed), 0 if it is an error.
typedef int (*mav_ckpt_missing_fn)(void *ctx, const mav_param *t, float *value);
// A file tensor under the prefix that is no parameter (name without the prefix): return 1 to
// accept it, 0 if it is an error, −1 after reporting a more specific error with mav_fail.
typedef int (*mav_ckpt_extra_fn)(void *ctx, const mav_st_file *f, const mav_st_tensor *t, const char *name);
// Load every parameter of p from f (tensors named prefix + name); callbacks may be NULL.
mav_status mav_checkpoint_load(mav_params *p, const mav_st_file *f, const char *prefix, mav_ckpt_missing_fn missing,
                               mav_ckpt_extra_fn extra, void *ctx);

#endif
