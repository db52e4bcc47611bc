// dropout.h — inverted dropout with a counter-based mask (no mask is stored).
//
// Element i is kept when u_i ≥ p, where u_i is the uniform [0, 1) number that
// mav_rng_uniform would give element i of the stream `at` (rng.h: lane i%4 of
// philox(at.seed, at.offset + i/4), top 24 bits · 2^-24); kept values are multiplied by
// 1/(1−p) (computed in f32, as PyTorch does), dropped ones become 0 (also when the input is
// NaN or Inf, where PyTorch's x·0 would give NaN). The mask is therefore a pure function of
// (at.seed, at.offset, i): identical for any thread count or partition. Philox runs on 8
// blocks at once (AVX2), bit-identical to mav_philox4x32.
//
// Backward recomputes the mask from the same `at` instead of saving it (one Philox block per
// 4 elements is cheaper than writing and re-reading a mask, and needs no memory); the caller
// keeps `at` (two integers) between forward and backward and then advances its stream by
// mav_dropout_blocks(n) so the next call draws fresh numbers.
// p = 0 is the identity (no random numbers are drawn); p = 1 drops everything.
// out == inp (in place) is allowed in both directions.
#ifndef MAV_OPS_DROPOUT_H
#define MAV_OPS_DROPOUT_H

#include <stdint.h>

#include "core/rng.h"

// Philox blocks one dropout call over n elements consumes (advance the stream's offset by this).
static inline uint64_t mav_dropout_blocks(long n) { return (uint64_t)(n + 3) / 4; }

// out = mask(at, p) ⊙ inp / (1 − p).
void mav_dropout_forward(float *out,        // [n]
                         const float *inp,  // [n]
                         long n, float p, mav_rng at);

// dinp = mask(at, p) ⊙ dout / (1 − p) (written): the same mask as the forward with this `at`.
void mav_dropout_backward(float *dinp,       // [n]
                          const float *dout, // [n]
                          long n, float p, mav_rng at);

#endif
