// rng.h — seedable counter-based random numbers (Philox-4x32-10, Salmon et al. 2011).
//
// A stream is (seed, offset). Draw k of n values: element i is lane i%4 of
// philox(key = seed, counter = offset + i/4); afterwards offset advances by ceil(n/4).
// Every element is a pure function of (seed, offset, i), so results are identical for any
// thread count and any partitioning of the work (mav's determinism rule), and a stream can
// be saved and resumed as two integers (training checkpoints do).
//
// uniform: the top 24 bits of a lane, u·2^-24 ∈ [0, 1).
// normal:  Box–Muller on lanes (0,1) and (2,3) of one block; u1 = (top24+1)·2^-24 ∈ (0, 1],
//          z0 = r·cos(2πu2), z1 = r·sin(2πu2), r = sqrt(-2 ln u1), computed in double.
//          Element i is lane i%4 of block offset + i/4, as for uniform.
#ifndef MAV_RNG_H
#define MAV_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t seed;
    uint64_t offset;  // in 4-lane blocks
} mav_rng;

static inline mav_rng mav_rng_make(uint64_t seed) { mav_rng r = {seed, 0}; return r; }
// An independent stream derived from (seed, tag): for per-purpose streams (noise, dropout, data).
mav_rng mav_rng_fork(uint64_t seed, uint64_t tag);

void mav_philox4x32(uint64_t key, uint64_t counter, uint32_t out[4]);
void mav_rng_uniform(mav_rng *r, float *out, size_t n);  // [0, 1)
void mav_rng_normal(mav_rng *r, float *out, size_t n);   // N(0, 1)
void mav_rng_normal_d(mav_rng *r, double *out, size_t n); // N(0, 1) in double (tests)
uint32_t mav_rng_u32(mav_rng *r);                        // one raw 32-bit value (uses a block)
// Uniform integer in [0, n) (n > 0), without modulo bias in practice (64-bit multiply-shift).
uint32_t mav_rng_below(mav_rng *r, uint32_t n);

#endif
