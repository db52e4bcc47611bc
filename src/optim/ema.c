#include "optim/ema.h"

#include <string.h>

#include <omp.h>

#include "core/error.h"

void mav_ema_init(float *ema, const float *p, size_t n) { memcpy(ema, p, n * sizeof(float)); }

float mav_ema_decay_at(float decay, long t, int warmup) {
    MAV_ASSERT(t >= 1 && decay >= 0.0f && decay <= 1.0f);
    if (!warmup) return decay;
    double w = (1.0 + (double)t) / (10.0 + (double)t);
    return w < (double)decay ? (float)w : decay;
}

void mav_ema_update(float *ema, const float *p, size_t n, float d) {
    MAV_ASSERT(d >= 0.0f && d <= 1.0f);
    const float omd = (float)(1.0 - (double)d);   // exact for d in [0.5, 1]
#pragma omp parallel
    {
        // Static share of 16-float lines; every float gets the same operations wherever the
        // split falls (C11 mode: no FMA contraction), so results do not depend on threads.
        int t = omp_get_thread_num(), nt = omp_get_num_threads();
        size_t lines = (n + 15) / 16;
        size_t lo = lines * (size_t)t / (size_t)nt * 16, hi = lines * (size_t)(t + 1) / (size_t)nt * 16;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
#pragma omp simd
        for (size_t i = lo; i < hi; i++) ema[i] -= omd * (ema[i] - p[i]);
    }
}
