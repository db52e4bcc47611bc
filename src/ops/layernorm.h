// layernorm.h — layer normalisation over the last dimension of [R, C] rows (SPEC §2, eps 1e-5).
//
// Per row: mean = Σx/C, var = Σ(x − mean)²/C (biased), rstd = 1/√(var + eps),
// out = (x − mean)·rstd·weight + bias. Statistics in double with a shifted one-pass sum, and
// the mean subtracted as a hi+lo float pair, so rows with |mean| ≫ std stay accurate.
#ifndef MAV_OPS_LAYERNORM_H
#define MAV_OPS_LAYERNORM_H

#include <stddef.h>

// Scratch for mav_layernorm_backward: per-thread double partials of dweight and dbias,
// 4·C floats per thread for the current thread count (mav_threads_get()); summed in thread
// order, so results are bit-identical run to run at a given thread count. Must be 8-byte
// aligned (arena blocks are 64-byte aligned).
size_t mav_layernorm_scratch_floats(int C);

// out:    (R, C)  may equal inp
// mean:   (R)     saved for backward; NULL when not needed
// rstd:   (R)     saved for backward; NULL when not needed
// inp:    (R, C)
// weight: (C)     NULL means all ones
// bias:   (C)     NULL means all zeros
void mav_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, long R, int C, float eps);

// dinp:    (R, C)  written (=); NULL to skip; may equal dout
// dweight: (C)     accumulated (+=); NULL to skip
// dbias:   (C)     accumulated (+=); NULL to skip
// dout:    (R, C)
// inp:     (R, C)  the forward input
// mean, rstd: (R) saved by the forward
// weight:  (C)     NULL means all ones
// scratch: mav_layernorm_scratch_floats(C) floats (may be NULL when dweight and dbias are NULL)
void mav_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *mean, const float *rstd, const float *weight, long R, int C,
                            float *scratch);

#endif
