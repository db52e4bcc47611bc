// embedding.h — token embedding lookup (nn.Embedding) and the sinusoidal timestep embedding.
#ifndef MAV_OPS_EMBEDDING_H
#define MAV_OPS_EMBEDDING_H

#include <stdint.h>

#include "core/error.h"

// out[r] = table[ids[r]]. An id outside [0, V) is a caller bug (asserted); ids that come from
// a file or a user are validated first with mav_embedding_check_ids.
void mav_embedding_forward(float *out,           // [R, D]
                           const int32_t *ids,   // [R]
                           const float *table,   // [V, D]
                           int R, int V, int D);

// dtable[ids[r]] += dout[r] for every r, in increasing r (a repeated id sums its rows in a
// fixed order). Each thread owns a slice of the D columns, so the result is bit-identical for
// any thread count. There is no input gradient (ids are integers).
void mav_embedding_backward(float *dtable,       // [V, D], accumulated
                            const float *dout,   // [R, D]
                            const int32_t *ids,  // [R]
                            int R, int V, int D);

// MAV_OK when every ids[i] is in [0, V); otherwise MAV_ERR_ARG with a message naming the first
// bad position and value (for ids read from files: tokenizer output, checkpoints, datasets).
mav_status mav_embedding_check_ids(const int32_t *ids, long n, int V);

// SPEC §2 timestep_embedding: for each t[b], half = d/2, freq_i = exp(−ln(10000)·i/half),
// out[b] = [cos(t·freq_0..half−1), sin(t·freq_0..half−1)] (cos first). Computed in double and
// rounded to f32 once (at t ≈ 1000 an f32 product t·freq is off by ~1e-4 rad). d must be even.
// This op has no backward: t is a sampled timestep / fps / augmentation level, never a
// trainable quantity, so nothing upstream of it receives a gradient (the MLP that consumes
// `out` has its own backward).
void mav_timestep_embedding(float *out,       // [n, d]
                            const float *t,   // [n]
                            int n, int d);

#endif
