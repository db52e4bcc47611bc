// layernorm.c — LayerNorm forward/backward over [R, C] rows, parallel over rows.
//
// Each row is read once from memory: the statistics pass leaves it in L1 for the normalise
// (forward) or gradient (backward) pass.
#include "ops/layernorm.h"

#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <string.h>

#include "core/error.h"

#if !defined(__AVX2__) || !defined(__FMA__)
#error "layernorm.c needs AVX2 and FMA (CMake passes -march=native or -mavx2 -mfma)"
#endif

// Parallelise only when the work outweighs an OpenMP fork/join (a few µs).
#define LN_PAR_MIN 16384L

static inline double hsum_pd(__m256d v) {
    __m128d s = _mm_add_pd(_mm256_castpd256_pd128(v), _mm256_extractf128_pd(v, 1));
    return _mm_cvtsd_f64(_mm_add_sd(s, _mm_unpackhi_pd(s, s)));
}

// Σ(x − m) and Σ(x − m)² over x[0..n) in double, fixed order (same as groupnorm.c).
static void shifted_sums(const float *x, long n, double m, double *s1, double *s2) {
    const __m256d vm = _mm256_set1_pd(m);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, q0 = a0, q1 = a0;
    long i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 u = _mm256_loadu_ps(x + i);
        __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), vm);
        __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), vm);
        a0 = _mm256_add_pd(a0, d0); q0 = _mm256_fmadd_pd(d0, d0, q0);
        a1 = _mm256_add_pd(a1, d1); q1 = _mm256_fmadd_pd(d1, d1, q1);
    }
    double t1 = hsum_pd(_mm256_add_pd(a0, a1)), t2 = hsum_pd(_mm256_add_pd(q0, q1));
    for (; i < n; i++) {
        double d = (double)x[i] - m;
        t1 += d;
        t2 += d * d;
    }
    *s1 = t1;
    *s2 = t2;
}

size_t mav_layernorm_scratch_floats(int C) {
    return 4 * (size_t)C * (size_t)(omp_get_max_threads() > 0 ? omp_get_max_threads() : 1);
}

void mav_layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                           const float *bias, long R, int C, float eps) {
    MAV_ASSERT(R >= 0 && C > 0);
    const double cinv = 1.0 / (double)C;
#pragma omp parallel for schedule(static) if (R * C >= LN_PAR_MIN)
    for (long row = 0; row < R; row++) {
        const float *x = inp + row * C;  // (C)
        float *y = out + row * C;        // (C)
        double s1, s2;
        const double shift = x[0];       // near the mean: no cancellation in s2 − s1²/C
        shifted_sums(x, C, shift, &s1, &s2);
        const double dm = s1 * cinv;
        const double mu = shift + dm;
        const double rs = 1.0 / sqrt(fmax(s2 * cinv - dm * dm, 0.0) + (double)eps);
        if (mean) mean[row] = (float)mu;
        if (rstd) rstd[row] = (float)rs;
        const float mh = (float)mu, ml = (float)(mu - (double)mh), r = (float)rs;
        const __m256 vh = _mm256_set1_ps(mh), vl = _mm256_set1_ps(ml), vr = _mm256_set1_ps(r);
        int c = 0;
        for (; c + 8 <= C; c += 8) {
            __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vh), vl), vr);
            __m256 w = weight ? _mm256_loadu_ps(weight + c) : _mm256_set1_ps(1.0f);
            __m256 b = bias ? _mm256_loadu_ps(bias + c) : _mm256_setzero_ps();
            _mm256_storeu_ps(y + c, _mm256_fmadd_ps(xh, w, b));
        }
        for (; c < C; c++) {
            float xh = ((x[c] - mh) - ml) * r;
            y[c] = fmaf(xh, weight ? weight[c] : 1.0f, bias ? bias[c] : 0.0f);
        }
    }
}

// Per row, with x̂ = (x − μ)·r and dx̂ = dy·w over the C entries:
//   dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)) = (r·w)·dy + k2·(x − μ) + k3
//   k2 = −r²·mean(dx̂·x̂), k3 = −r·mean(dx̂);  dweight += dy·x̂, dbias += dy (summed over rows)
// μ = m_saved + δ with δ = Σ(x − m_saved)/C measured in the sums pass: the saved float mean
// is off by up to half an ulp, which matters when |μ| ≫ std (see groupnorm.c).
void mav_layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                            const float *mean, const float *rstd, const float *weight, long R, int C,
                            float *scratch) {
    MAV_ASSERT(R >= 0 && C > 0);
    const int want_p = dweight != NULL || dbias != NULL;
    MAV_ASSERT(!want_p || (scratch != NULL && (uintptr_t)scratch % sizeof(double) == 0));
    const double cinv = 1.0 / (double)C;
    const int max_threads = omp_get_max_threads();
#pragma omp parallel if (R * C >= LN_PAR_MIN)
    {
        const int tid = omp_get_thread_num(), nth = omp_get_num_threads();
        MAV_ASSERT(nth <= max_threads);  // scratch was sized for max_threads
        double *pw = want_p ? (double *)scratch + (size_t)tid * 2 * (size_t)C : NULL;  // (C) this thread's Σdy·x̂
        double *pb = want_p ? pw + C : NULL;                                           // (C) this thread's Σdy
        if (want_p) memset(pw, 0, 2 * (size_t)C * sizeof(double));
#pragma omp for schedule(static)
        for (long row = 0; row < R; row++) {
            const float *x = inp + row * C, *dy = dout + row * C;  // (C)
            const float m = mean[row], r = rstd[row];
            const __m256d vm = _mm256_set1_pd(m);
            // Sums pass: Σ(x − m), Σdx̂, Σdx̂·(x − m) in double.
            __m256d a0 = _mm256_setzero_pd(), a1 = a0, g0 = a0, g1 = a0, p0 = a0, p1 = a0;
            int c = 0;
            for (; c + 8 <= C; c += 8) {
                __m256 u = _mm256_loadu_ps(x + c);
                __m256 gv = _mm256_loadu_ps(dy + c);
                if (weight) gv = _mm256_mul_ps(gv, _mm256_loadu_ps(weight + c));
                __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(u)), vm);
                __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(u, 1)), vm);
                __m256d e0 = _mm256_cvtps_pd(_mm256_castps256_ps128(gv));
                __m256d e1 = _mm256_cvtps_pd(_mm256_extractf128_ps(gv, 1));
                a0 = _mm256_add_pd(a0, d0); a1 = _mm256_add_pd(a1, d1);
                g0 = _mm256_add_pd(g0, e0); g1 = _mm256_add_pd(g1, e1);
                p0 = _mm256_fmadd_pd(e0, d0, p0); p1 = _mm256_fmadd_pd(e1, d1, p1);
            }
            double s0 = hsum_pd(_mm256_add_pd(a0, a1)), s1 = hsum_pd(_mm256_add_pd(g0, g1));
            double s2 = hsum_pd(_mm256_add_pd(p0, p1));
            for (; c < C; c++) {
                double d = (double)x[c] - m, e = (double)(weight ? dy[c] * weight[c] : dy[c]);
                s0 += d;
                s1 += e;
                s2 += e * d;
            }
            const double delta = s0 * cinv;
            const double sxh = (double)r * (s2 - delta * s1);  // Σdx̂·x̂
            const float fd = (float)delta;
            const float k2 = (float)(-(double)r * r * sxh * cinv), k3 = (float)(-(double)r * s1 * cinv);
            // Gradient pass: dx, and this thread's parameter-gradient partials.
            const __m256 vmf = _mm256_set1_ps(m), vd = _mm256_set1_ps(fd), vr = _mm256_set1_ps(r),
                         v2 = _mm256_set1_ps(k2), v3 = _mm256_set1_ps(k3);
            c = 0;
            for (; c + 8 <= C; c += 8) {
                __m256 cx = _mm256_sub_ps(_mm256_sub_ps(_mm256_loadu_ps(x + c), vmf), vd);  // x − μ
                __m256 d = _mm256_loadu_ps(dy + c);
                if (want_p) {
                    __m256 dxh = _mm256_mul_ps(d, _mm256_mul_ps(cx, vr));  // dy·x̂
                    _mm256_storeu_pd(pw + c, _mm256_add_pd(_mm256_loadu_pd(pw + c), _mm256_cvtps_pd(_mm256_castps256_ps128(dxh))));
                    _mm256_storeu_pd(pw + c + 4, _mm256_add_pd(_mm256_loadu_pd(pw + c + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(dxh, 1))));
                    _mm256_storeu_pd(pb + c, _mm256_add_pd(_mm256_loadu_pd(pb + c), _mm256_cvtps_pd(_mm256_castps256_ps128(d))));
                    _mm256_storeu_pd(pb + c + 4, _mm256_add_pd(_mm256_loadu_pd(pb + c + 4), _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1))));
                }
                if (dinp) {
                    __m256 k1 = weight ? _mm256_mul_ps(vr, _mm256_loadu_ps(weight + c)) : vr;
                    _mm256_storeu_ps(dinp + row * C + c, _mm256_fmadd_ps(k1, d, _mm256_fmadd_ps(v2, cx, v3)));
                }
            }
            for (; c < C; c++) {
                const float cx = (x[c] - m) - fd, d = dy[c];
                if (want_p) {
                    pw[c] += (double)(d * (cx * r));
                    pb[c] += (double)d;
                }
                if (dinp) dinp[row * C + c] = fmaf(r * (weight ? weight[c] : 1.0f), d, fmaf(k2, cx, k3));
            }
        }
        // Parameter gradients: per channel, the threads' partials in thread order.
        if (want_p) {
#pragma omp for schedule(static)
            for (int c = 0; c < C; c++) {
                double sw = 0.0, sb = 0.0;
                for (int t = 0; t < nth; t++) {
                    sw += ((const double *)scratch)[(size_t)t * 2 * C + c];
                    sb += ((const double *)scratch)[(size_t)t * 2 * C + C + c];
                }
                if (dweight) dweight[c] += (float)sw;
                if (dbias) dbias[c] += (float)sb;
            }
        }
    }
}
