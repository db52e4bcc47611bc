// adamw.h — AdamW with decoupled weight decay, the update of torch.optim.AdamW.
//
// For step t = 1, 2, … (bias-correction factors in double, everything else f32):
//   p ← p − lr·wd·p
//   m ← β1·m + (1−β1)·g          v ← β2·v + (1−β2)·g²
//   p ← p − (lr / (1−β1^t)) · m / (√v / √(1−β2^t) + eps)
// Runs over the flat layout of core/params.h (value | grad | m | v at the same offsets).
// Elementwise, OpenMP over 16-float-aligned static ranges: each float is owned by one
// thread and computed by the same instruction sequence whatever the split, so results are
// bit-identical run to run and across thread counts.
//
// Weight-decay rule of mav_adamw_step: tensors with ndim >= 2 (linear and conv weights,
// embedding tables, positional embeddings [N, C]) decay; tensors with ndim <= 1 (biases,
// GroupNorm/LayerNorm gains and shifts, scalars) do not, as is usual for transformers and
// U-Nets (decaying a norm gain towards 0 fights the normalisation instead of regularising).
#ifndef MAV_ADAMW_H
#define MAV_ADAMW_H

#include <stddef.h>

#include "core/error.h"
#include "core/params.h"

typedef struct {
    float beta1, beta2;   // moment decay rates, in [0, 1)
    float eps;            // > 0: added to √v̂ (also keeps zero padding at 0/eps = 0)
    float weight_decay;   // >= 0, applied by mav_adamw_step to tensors with ndim >= 2
} mav_adamw_cfg;

// torch.optim.AdamW's defaults: betas (0.9, 0.999), eps 1e-8, weight_decay 0.01.
mav_adamw_cfg mav_adamw_default_cfg(void);
// MAV_ERR_ARG naming the field when a hyper-parameter is out of range (user input).
mav_status mav_adamw_check(const mav_adamw_cfg *cfg);
// 1 when mav_adamw_step applies weight decay to tensor t (ndim >= 2), else 0.
int mav_adamw_decays(const mav_param *t);

// One AdamW step on n floats with weight decay wd; step >= 1 counts steps taken including this one.
void mav_adamw_update(float *p,        // (n) parameters, updated
                      float *m,        // (n) first moment, updated
                      float *v,        // (n) second moment, updated
                      const float *g,  // (n) gradient
                      size_t n, const mav_adamw_cfg *cfg, long step, float lr, float wd);

// One AdamW step on every tensor of p (needs grad, m and v regions), decay by the rule above.
void mav_adamw_step(mav_params *p, const mav_adamw_cfg *cfg, long step, float lr);

#endif
