#include "ops/dropout.h"

#include <math.h>
#include <string.h>

#include "core/error.h"

// Shared by forward and backward: y = mask ⊙ x · scale. Element i is kept iff its 24-bit
// uniform integer u24 satisfies u24·2^-24 ≥ p, i.e. u24 ≥ ceil(p·2^24) (exact: p·2^24 is
// computed in double from an f32 p, no rounding).
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
    long blocks = (n + 3) / 4;
    #pragma omp parallel for schedule(static) if (n > 16384)
    for (long b = 0; b < blocks; b++) {
        uint32_t o[4];
        mav_philox4x32(at.seed, at.offset + (uint64_t)b, o);
        for (int l = 0; l < 4 && b * 4 + l < n; l++) {
            long i = b * 4 + l;
            y[i] = (o[l] >> 8) >= thresh ? x[i] * scale : 0.0f;
        }
    }
}

void mav_dropout_forward(float *out, const float *inp, long n, float p, mav_rng at) { apply_mask(out, inp, n, p, at); }

void mav_dropout_backward(float *dinp, const float *dout, long n, float p, mav_rng at) {
    apply_mask(dinp, dout, n, p, at);
}
