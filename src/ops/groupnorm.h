// groupnorm.h — group normalisation over [N, C, P] (SPEC §2: statistics per image and group).
//
// N = B·F images of the frames-major layout (each frame is its own image), C channels split
// into G groups of C/G consecutive channels, P = H·W pixels. For image n and group g, with
// K = (C/G)·P values x:
//   mean = Σx/K,  var = Σ(x − mean)²/K (biased, as PyTorch),  rstd = 1/√(var + eps)
//   out[n,c,p] = (x[n,c,p] − mean)·rstd·weight[c] + bias[c]
// Statistics are accumulated in double with a shifted one-pass sum (shift = the group's first
// value), so they stay exact to f32 even when |mean| ≫ std; the output subtracts the mean as
// a hi+lo float pair for the same reason.
#ifndef MAV_OPS_GROUPNORM_H
#define MAV_OPS_GROUPNORM_H

#include <stddef.h>

// Scratch for mav_groupnorm_backward: 2·N·C floats (per-image partial weight/bias gradients,
// summed over images in a fixed order: results do not depend on the thread count).
size_t mav_groupnorm_scratch_floats(int N, int C);

// out:    (N, C, P)   may equal inp (in place)
// mean:   (N, G)      saved for backward; NULL when not needed (inference)
// rstd:   (N, G)      saved for backward; NULL when not needed
// inp:    (N, C, P)
// weight: (C)         NULL means all ones
// bias:   (C)         NULL means all zeros
// C % G == 0 (asserted).
void mav_groupnorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, int N, int C, int P, int G, float eps);

// dinp:    (N, C, P)  written (=); NULL to skip; may equal dout
// dweight: (C)        accumulated (+=); NULL to skip
// dbias:   (C)        accumulated (+=); NULL to skip
// dout:    (N, C, P)
// inp:     (N, C, P)  the forward input
// mean, rstd: (N, G)  saved by the forward
// weight:  (C)        NULL means all ones
// scratch: mav_groupnorm_scratch_floats(N, C) floats
void mav_groupnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *mean, const float *rstd, const float *weight, int N, int C, int P,
                            int G, float *scratch);

#endif
