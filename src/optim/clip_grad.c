#include "optim/clip_grad.h"

#include <math.h>

#include <immintrin.h>

#include "core/error.h"

// Fixed chunk count for the norm: enough to balance up to ~16 threads, small enough for the stack.
#define NORM_CHUNKS 128

// Σ x² over one span in double, in a fixed order (4 interleaved AVX2 accumulators, then the
// tail). Each square of an f32 is exact in double, so only the additions round.
static double sumsq_span(const float *x, size_t n) {
    size_t i = 0;
    double s = 0.0;
#ifdef __AVX2__
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0;
    for (; i + 16 <= n; i += 16) {
        __m256 u = _mm256_loadu_ps(x + i), w = _mm256_loadu_ps(x + i + 8);
        __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(u)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1));
        __m256d d2 = _mm256_cvtps_pd(_mm256_castps256_ps128(w)), d3 = _mm256_cvtps_pd(_mm256_extractf128_ps(w, 1));
        a0 = _mm256_fmadd_pd(d0, d0, a0);
        a1 = _mm256_fmadd_pd(d1, d1, a1);
        a2 = _mm256_fmadd_pd(d2, d2, a2);
        a3 = _mm256_fmadd_pd(d3, d3, a3);
    }
    double lanes[4];
    _mm256_storeu_pd(lanes, _mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    s = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
    for (; i < n; i++) s += (double)x[i] * (double)x[i];
    return s;
}

double mav_grad_norm(const float *g, size_t n) {
    double part[NORM_CHUNKS];
    // Chunk boundaries: multiples of 16 floats, a function of n only.
    size_t lines = (n + 15) / 16;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < NORM_CHUNKS; c++) {
        size_t lo = lines * (size_t)c / NORM_CHUNKS * 16, hi = lines * (size_t)(c + 1) / NORM_CHUNKS * 16;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        part[c] = sumsq_span(g + lo, hi - lo);
    }
    double s = 0.0;
    for (int c = 0; c < NORM_CHUNKS; c++) s += part[c];
    return sqrt(s);
}

double mav_clip_grad_norm_flat(float *g, size_t n, double max_norm) {
    MAV_ASSERT(max_norm > 0.0);
    double norm = mav_grad_norm(g, n);
    if (!isfinite(norm)) return norm;   // caller skips the step; see clip_grad.h
    double clip = max_norm / (norm + 1e-6);
    if (clip < 1.0) {
        const float s = (float)clip;
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= s;
    }
    return norm;
}

double mav_clip_grad_norm(mav_params *p, double max_norm) {
    MAV_ASSERT(p->grad != NULL);
    return mav_clip_grad_norm_flat(p->grad, p->total, max_norm);
}
