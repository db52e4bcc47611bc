// groupnorm.c — GroupNorm forward/backward, one (image, group) block per work item.
//
// Bandwidth is the cost, so each block is streamed from memory once: the forward reads it for
// the statistics and normalises it while it is still in cache (a block is (C/G)·P floats:
// 16 channels × 64×64 = 256 KiB at the SPEC sizes, inside L2); the backward likewise makes a
// sums pass and a gradient pass over the same block.
#include "ops/groupnorm.h"

#include <immintrin.h>
#include <math.h>

#include "core/error.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "groupnorm.c needs AVX2 and FMA (CMake passes -march=native or -mavx2 -mfma)"
#endif

// Parallelise only when the work outweighs an OpenMP fork/join (a few µs).
#define GN_PAR_MIN 16384L

static inline double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// *s1 += Σ(x − m), *s2 += Σ(x − m)² over x[0..n), in double. Eight independent accumulator
// chains hide the add latency; the order is fixed, so the result is reproducible.
static void shifted_sums(const float *x, long n, double m, double *s1, double *s2) {
    const __m256d vm = _mm256_set1_pd(m);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, a2 = a0, a3 = a0, q0 = a0, q1 = a0, q2 = a0, q3 = a0;
    long i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(x + i + 8);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), vm);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), vm);
        __m256d d2 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), vm);
        __m256d d3 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), vm);
        a0 = _mm256_add_pd(a0, d0); q0 = _mm256_fmadd_pd(d0, d0, q0);
        a1 = _mm256_add_pd(a1, d1); q1 = _mm256_fmadd_pd(d1, d1, q1);
        a2 = _mm256_add_pd(a2, d2); q2 = _mm256_fmadd_pd(d2, d2, q2);
        a3 = _mm256_add_pd(a3, d3); q3 = _mm256_fmadd_pd(d3, d3, q3);
    }
    double t1 = hsum_pd(_mm256_add_pd(_mm256_add_pd(a0, a1), _mm256_add_pd(a2, a3)));
    double t2 = hsum_pd(_mm256_add_pd(_mm256_add_pd(q0, q1), _mm256_add_pd(q2, q3)));
    for (; i < n; i++) {
        double d = (double)x[i] - m;
        t1 += d;
        t2 += d * d;
    }
    *s1 += t1;
    *s2 += t2;
}

// Backward sums over one channel: *s0 += Σ(x − m), *s1 += Σdy, *s2 += Σdy·(x − m), in double.
static void grad_sums(const float *dy, const float *x, long n, float m, double *s0, double *s1, double *s2) {
    const __m256d vm = _mm256_set1_pd(m);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, g0 = a0, g1 = a0, p0 = a0, p1 = a0;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_loadu_ps(x + i), v = _mm256_loadu_ps(dy + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), vm);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), vm);
        __m256d e0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
        __m256d e1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
        a0 = _mm256_add_pd(a0, d0); a1 = _mm256_add_pd(a1, d1);
        g0 = _mm256_add_pd(g0, e0); g1 = _mm256_add_pd(g1, e1);
        p0 = _mm256_fmadd_pd(e0, d0, p0); p1 = _mm256_fmadd_pd(e1, d1, p1);
    }
    double t0 = hsum_pd(_mm256_add_pd(a0, a1)), t1 = hsum_pd(_mm256_add_pd(g0, g1));
    double t2 = hsum_pd(_mm256_add_pd(p0, p1));
    for (; i < n; i++) {
        double d = (double)x[i] - m, e = dy[i];
        t0 += d;
        t1 += e;
        t2 += e * d;
    }
    *s0 += t0;
    *s1 += t1;
    *s2 += t2;
}

// out = ((x − mh) − ml)·a + b over n values. mh + ml is the mean split into two floats: x − mh
// is exact near the mean (Sterbenz), so a large mean does not cost precision in the output.
// out may equal x.
static void norm_apply(float *out, const float *x, long n, float mh, float ml, float a, float b) {
    const __m256 vh = _mm256_set1_ps(mh), vl = _mm256_set1_ps(ml), va = _mm256_set1_ps(a), vb = _mm256_set1_ps(b);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vh), vl);
        _mm256_storeu_ps(out + i, _mm256_fmadd_ps(d, va, vb));
    }
    for (; i < n; i++) out[i] = fmaf((x[i] - mh) - ml, a, b);
}

// dx = k1·dy + k2·((x − m) − d) + k3 over n values (the GroupNorm input gradient, see below).
// dx may equal dy.
static void norm_dx(float *dx, const float *dy, const float *x, long n, float m, float d, float k1, float k2,
                    float k3) {
    const __m256 vm = _mm256_set1_ps(m), vd = _mm256_set1_ps(d), v1 = _mm256_set1_ps(k1),
                 v2 = _mm256_set1_ps(k2), v3 = _mm256_set1_ps(k3);
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 c = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + i), vm), vd);
        _mm256_storeu_ps(dx + i, _mm256_fmadd_ps(v1, _mm256_loadu_ps(dy + i), _mm256_fmadd_ps(v2, c, v3)));
    }
    for (; i < n; i++) dx[i] = fmaf(k1, dy[i], fmaf(k2, (x[i] - m) - d, k3));
}

size_t mav_groupnorm_scratch_floats(int N, int C) { return 2 * (size_t)N * (size_t)C; }

void mav_groupnorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, int N, int C, int P, int G, float eps) {
    MAV_ASSERT(N >= 0 && C > 0 && P >= 0 && G > 0 && C % G == 0);
    const int cg = C / G;
    const long K = (long)cg * P;  // values per (image, group)
    const long items = (long)N * G;
#pragma omp parallel for schedule(static) if (items * K >= GN_PAR_MIN)
    for (long it = 0; it < items; it++) {
        const long n = it / G, g = it % G;
        const float *x = inp + (n * C + g * cg) * (long)P;  // (cg, P)
        float *y = out + (n * C + g * cg) * (long)P;        // (cg, P)
        double s1 = 0.0, s2 = 0.0;
        const double shift = K > 0 ? x[0] : 0.0;  // near the mean: no cancellation in s2 − s1²/K
        shifted_sums(x, K, shift, &s1, &s2);
        const double kinv = K > 0 ? 1.0 / (double)K : 0.0;
        const double dm = s1 * kinv;
        const double var = fmax(s2 * kinv - dm * dm, 0.0);
        const double mu = shift + dm;
        const double rs = 1.0 / sqrt(var + (double)eps);
        if (mean) mean[it] = (float)mu;
        if (rstd) rstd[it] = (float)rs;
        const float mh = (float)mu, ml = (float)(mu - (double)mh);
        for (int c = 0; c < cg; c++) {
            const int ch = g * cg + c;
            const float a = (float)(rs * (weight ? weight[ch] : 1.0f));
            norm_apply(y + (long)c * P, x + (long)c * P, P, mh, ml, a, bias ? bias[ch] : 0.0f);
        }
    }
}

// Per (image n, group g), with x̂ = (x − μ)·r, dx̂ = dy·w, K values in the group:
//   dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂))
//      = (r·w_c)·dy + k2·(x − μ) + k3,   k2 = −r²·mean(dx̂·x̂),  k3 = −r·mean(dx̂)
//   dweight[c] += Σ_p dy·x̂,  dbias[c] += Σ_p dy
// The saved mean is a float, off from the true mean by up to half an ulp, which matters when
// |μ| ≫ std. The sums pass therefore also measures Σ(x − m_saved) and corrects the mean by
// δ = Σ(x − m_saved)/K at no extra memory traffic: μ = m_saved + δ.
void mav_groupnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *mean, const float *rstd, const float *weight, int N, int C, int P,
                            int G, float *scratch) {
    MAV_ASSERT(N >= 0 && C > 0 && P >= 0 && G > 0 && C % G == 0);
    MAV_ASSERT(scratch != NULL || N == 0);
    const int cg = C / G;
    const long K = (long)cg * P;
    const long items = (long)N * G;
    float *pw = scratch;                        // (N, C) per-image dweight partials
    float *pb = scratch + (size_t)N * (size_t)C;  // (N, C) per-image dbias partials
#pragma omp parallel if (items * K >= GN_PAR_MIN)
    {
#pragma omp for schedule(static)
        for (long it = 0; it < items; it++) {
            const long n = it / G, g = it % G;
            const long base = (n * C + g * cg) * (long)P;
            const float *x = inp + base, *dy = dout + base;  // (cg, P)
            const float m = mean[it];
            const double r = rstd[it];
            // Pass 1: per-channel Σdy and Σdy·(x − m) (kept as floats in this item's own
            // scratch slots until δ is known), and the group's Σ(x − m).
            double s0 = 0.0;
            for (int c = 0; c < cg; c++) {
                double s1 = 0.0, s2 = 0.0;
                grad_sums(dy + (long)c * P, x + (long)c * P, P, m, &s0, &s1, &s2);
                pb[n * C + g * cg + c] = (float)s1;
                pw[n * C + g * cg + c] = (float)s2;
            }
            const double delta = K > 0 ? s0 / (double)K : 0.0;
            double a1 = 0.0, a2 = 0.0;  // Σdx̂, Σdx̂·x̂
            for (int c = 0; c < cg; c++) {
                const long ch = g * cg + c;
                const double w = weight ? weight[ch] : 1.0f;
                const double s1 = pb[n * C + ch];
                const double sx = r * ((double)pw[n * C + ch] - delta * s1);  // Σ_p dy·x̂
                a1 += w * s1;
                a2 += w * sx;
                pw[n * C + ch] = (float)sx;
            }
            if (dinp) {
                const double kinv = K > 0 ? 1.0 / (double)K : 0.0;
                const float k2 = (float)(-r * r * a2 * kinv), k3 = (float)(-r * a1 * kinv);
                for (int c = 0; c < cg; c++) {
                    const int ch = g * cg + c;
                    const float k1 = (float)(r * (weight ? weight[ch] : 1.0f));
                    norm_dx(dinp + base + (long)c * P, dy + (long)c * P, x + (long)c * P, P, m, (float)delta, k1,
                            k2, k3);
                }
            }
        }
        // Parameter gradients: sum the per-image partials over n in order, per channel.
        if (dweight || dbias) {
#pragma omp for schedule(static)
            for (int c = 0; c < C; c++) {
                double sw = 0.0, sb = 0.0;
                for (long n = 0; n < N; n++) {
                    sw += pw[n * C + c];
                    sb += pb[n * C + c];
                }
                if (dweight) dweight[c] += (float)sw;
                if (dbias) dbias[c] += (float)sb;
            }
        }
    }
}
