// clip_grad.h — global-norm gradient clipping, as torch.nn.utils.clip_grad_norm_.
//
// norm = ‖all grads‖₂ (squares accumulated in double); clip = max_norm / (norm + 1e-6); when
// clip < 1 every gradient is multiplied by (float)clip, otherwise nothing changes (torch
// multiplies by min(clip, 1), which is the same thing). The pre-clip norm is returned.
//
// Non-finite norm (a NaN or Inf gradient): the norm is returned and the gradients are left
// untouched, so the caller can see it (!isfinite) and skip the optimiser step, as mixed-
// precision loss scalers do. (torch would multiply everything by NaN, poisoning the step.)
//
// Determinism: the sum is split into a fixed number of chunks whose boundaries depend only
// on n, each summed in a fixed order, then added in chunk order; the norm is therefore
// bit-identical for every thread count, not just run to run.
#ifndef MAV_CLIP_GRAD_H
#define MAV_CLIP_GRAD_H

#include <stddef.h>

#include "core/params.h"

// ‖g‖₂ over n floats, accumulated in double.
double mav_grad_norm(const float *g,  // (n)
                     size_t n);
// Clip g (n floats) to global norm max_norm (> 0); returns the pre-clip norm.
double mav_clip_grad_norm_flat(float *g,  // (n) gradients, scaled in place
                               size_t n, double max_norm);
// Same over every gradient of p (the whole grad region; padding is zero and stays zero).
double mav_clip_grad_norm(mav_params *p, double max_norm);

#endif
