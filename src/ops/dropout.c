#include "ops/dropout.h"

#include <math.h>
#include <string.h>

#include <immintrin.h>

#include "core/error.h"

// Philox-4x32-10 (rng.h) on 8 consecutive counters at once with AVX2: o[l][j] is lane l of
// philox(key, counter0 + j). Bit-identical to mav_philox4x32 (tests compare the two through
// ref_dropout_keep); 8 independent streams also hide the multiply latency that bounds the
// scalar version.
static inline void philox8(uint64_t key, uint64_t counter0, uint32_t o[4][8]) {
    uint32_t lo[8], hi[8];
    for (int j = 0; j < 8; j++) {
        uint64_t c = counter0 + (uint64_t)j;
        lo[j] = (uint32_t)c;
        hi[j] = (uint32_t)(c >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo), c1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i c2 = _mm256_setzero_si256(), c3 = _mm256_setzero_si256();
    const __m256i m0 = _mm256_set1_epi32((int)0xD2511F53u), m1 = _mm256_set1_epi32((int)0xCD9E8D57u);
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    for (int round = 0; round < 10; round++) {
        // 32×32→64-bit products of every lane: even lanes directly, odd lanes shifted down
        __m256i pe0 = _mm256_mul_epu32(c0, m0), po0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
        __m256i pe1 = _mm256_mul_epu32(c2, m1), po1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
        __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);
        __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);
        __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);
        __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);
        __m256i n0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        __m256i n2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c0 = n0; c1 = lo1; c2 = n2; c3 = lo0;
        k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
    }
    _mm256_storeu_si256((__m256i *)o[0], c0);
    _mm256_storeu_si256((__m256i *)o[1], c1);
    _mm256_storeu_si256((__m256i *)o[2], c2);
    _mm256_storeu_si256((__m256i *)o[3], c3);
}

// Shared by forward and backward: y = mask ⊙ x · scale. Element i is kept iff its 24-bit
// uniform integer u24 satisfies u24·2^-24 ≥ p, i.e. u24 ≥ ceil(p·2^24) (exact: p·2^24 is
// computed in double from an f32 p, no rounding). Work is split in groups of 8 Philox blocks
// (32 elements); group g covers elements [32g, 32g + 32) whatever the thread count.
static void apply_mask(float *y, const float *x, long n, float p, mav_rng at) {
    MAV_ASSERT(n >= 0 && p >= 0.0f && p <= 1.0f);
    if (p == 0.0f) {
        if (y != x) memmove(y, x, (size_t)n * sizeof(float));
        return;
    }
    if (p == 1.0f) {
        memset(y, 0, (size_t)n * sizeof(float));
        return;
    }
    uint32_t thresh = (uint32_t)ceil((double)p * 16777216.0);
    float scale = 1.0f / (1.0f - p);
    long groups = (n + 31) / 32;
    const __m256i thr = _mm256_set1_epi32((int)thresh - 1);  // u24 ≥ thresh ⇔ u24 > thresh − 1 (both < 2^24)
    const __m256 vscale = _mm256_set1_ps(scale);
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (long g = 0; g < groups; g++) {
        uint32_t o[4][8];
        philox8(at.seed, at.offset + (uint64_t)g * 8, o);
        long i0 = g * 32, m = n - i0 < 32 ? n - i0 : 32;
        if (m == 32) {
            // Transpose lanes×blocks into element order: element 4b + l is lane l of block b,
            // so each 8-float vector holds two consecutive blocks.
            __m256i c0 = _mm256_loadu_si256((const __m256i *)o[0]), c1 = _mm256_loadu_si256((const __m256i *)o[1]);
            __m256i c2 = _mm256_loadu_si256((const __m256i *)o[2]), c3 = _mm256_loadu_si256((const __m256i *)o[3]);
            __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpacklo_epi32(c2, c3);
            __m256i t2 = _mm256_unpackhi_epi32(c0, c1), t3 = _mm256_unpackhi_epi32(c2, c3);
            __m256i u0 = _mm256_unpacklo_epi64(t0, t1), u1 = _mm256_unpackhi_epi64(t0, t1);  // blocks 0|4, 1|5
            __m256i u2 = _mm256_unpacklo_epi64(t2, t3), u3 = _mm256_unpackhi_epi64(t2, t3);  // blocks 2|6, 3|7
            __m256i v[4] = {_mm256_permute2x128_si256(u0, u1, 0x20), _mm256_permute2x128_si256(u2, u3, 0x20),
                            _mm256_permute2x128_si256(u0, u1, 0x31), _mm256_permute2x128_si256(u2, u3, 0x31)};
            for (int q = 0; q < 4; q++) {
                __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_srli_epi32(v[q], 8), thr));
                __m256 xv = _mm256_mul_ps(_mm256_loadu_ps(x + i0 + 8 * q), vscale);
                _mm256_storeu_ps(y + i0 + 8 * q, _mm256_and_ps(keep, xv));
            }
        } else {
            for (long k = 0; k < m; k++)  // element i0 + k is lane k%4 of block k/4 of the group
                y[i0 + k] = (o[k % 4][k / 4] >> 8) >= thresh ? x[i0 + k] * scale : 0.0f;
        }
    }
}

void mav_dropout_forward(float *out, const float *inp, long n, float p, mav_rng at) { apply_mask(out, inp, n, p, at); }

void mav_dropout_backward(float *dinp, const float *dout, long n, float p, mav_rng at) {
    apply_mask(dinp, dout, n, p, at);
}
