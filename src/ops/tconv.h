// tconv.h — temporal convolution (SPEC §3, P3DConv's temporal part): kernel 3 along frames,
// zero padding at both ends, applied independently at every pixel. Forward and backward.
//
// Layout frames-major (docs/ENGINE.md): inp [B, F, C_in, P] with P = H·W pixels,
// out [B, F, C_out, P], weight [C_out, C_in, 3] (PyTorch conv1d/conv3d order), bias [C_out]:
//   out[b,f,co,p] = bias[co] + Σ_ci Σ_k weight[co,ci,k] · inp[b, f+k−1, ci, p]
// (terms with f+k−1 outside [0, F) are 0; F = 1 keeps only the middle tap).
//
// Because frames f−1, f, f+1 of one sample are adjacent in memory, the stack
// [X[f−1]; X[f]; X[f+1]] is a contiguous [3·C_in, P] slab of inp, and each output frame is ONE
// GEMM  out[b,f] [C_out, P] = Wr [C_out, 3·C_in] · slab [3·C_in, P]  with the weight repacked
// tap-major into scratch (2·C_in wide at the first/last frame). Backward is the same shape.
// Results are bit-identical run to run at a given thread count.
#ifndef MAV_TCONV_H
#define MAV_TCONV_H

#include <stddef.h>

// Scratch (floats) that forward and backward need at the current thread count (mav_threads_get());
// the same count must be in force when the op runs.
size_t mav_tconv_scratch_floats(int B, int F, int C_in, int C_out, long P);

// out [B, F, C_out, P]; inp [B, F, C_in, P]; weight [C_out, C_in, 3]; bias [C_out] or NULL
void mav_tconv_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int F, int C_in,
                       int C_out, long P, float *scratch);

// dinp [B, F, C_in, P] written (=); dweight [C_out, C_in, 3] and dbias [C_out] accumulated (+=);
// any of the three may be NULL (skipped). dout [B, F, C_out, P].
void mav_tconv_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int B, int F, int C_in, int C_out, long P, float *scratch);

#endif
