#include "optim/adamw.h"

#include <math.h>

#include <immintrin.h>
#include <omp.h>

// Per-step constants, shared by every element.
typedef struct {
    float b1, omb1, b2, omb2;   // β1, 1−β1, β2, 1−β2
    float eps;
    float keep;                 // 1 − lr·wd (decoupled decay factor)
    float step_size;            // lr / (1 − β1^t)
    float rsqrt_bc2;            // 1 / √(1 − β2^t)
} adamw_coefs;

static adamw_coefs make_coefs(const mav_adamw_cfg *cfg, long step, float lr, float wd) {
    MAV_ASSERT(step >= 1 && cfg->eps > 0.0f && cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f && cfg->beta2 >= 0.0f &&
               cfg->beta2 < 1.0f);
    // β^t in double: in f32, 1 − 0.999^t at t = 1 would keep only ~14 significant bits.
    double bc1 = 1.0 - pow((double)cfg->beta1, (double)step);
    double bc2 = 1.0 - pow((double)cfg->beta2, (double)step);
    adamw_coefs c;
    c.b1 = cfg->beta1;
    c.omb1 = (float)(1.0 - (double)cfg->beta1);   // exact: β is an f32 in [0, 1)
    c.b2 = cfg->beta2;
    c.omb2 = (float)(1.0 - (double)cfg->beta2);
    c.eps = cfg->eps;
    c.keep = (float)(1.0 - (double)lr * (double)wd);
    c.step_size = (float)((double)lr / bc1);
    c.rsqrt_bc2 = (float)(1.0 / sqrt(bc2));
    return c;
}

// The update on one contiguous span, single-threaded. The AVX2 body and the scalar tail do
// the same operations in the same order (separate multiply and add: C11 mode compiles with
// -ffp-contract=off), so a float's result does not depend on where a span starts.
static void adamw_span(float *p, float *m, float *v, const float *g, size_t n, const adamw_coefs *c) {
    size_t i = 0;
#ifdef __AVX2__
    const __m256 b1 = _mm256_set1_ps(c->b1), omb1 = _mm256_set1_ps(c->omb1);
    const __m256 b2 = _mm256_set1_ps(c->b2), omb2 = _mm256_set1_ps(c->omb2);
    const __m256 eps = _mm256_set1_ps(c->eps), keep = _mm256_set1_ps(c->keep);
    const __m256 ss = _mm256_set1_ps(c->step_size), rs = _mm256_set1_ps(c->rsqrt_bc2);
    for (; i + 8 <= n; i += 8) {
        __m256 gi = _mm256_loadu_ps(g + i);
        __m256 mi = _mm256_add_ps(_mm256_mul_ps(b1, _mm256_loadu_ps(m + i)), _mm256_mul_ps(omb1, gi));
        __m256 vi = _mm256_add_ps(_mm256_mul_ps(b2, _mm256_loadu_ps(v + i)), _mm256_mul_ps(omb2, _mm256_mul_ps(gi, gi)));
        __m256 den = _mm256_add_ps(_mm256_mul_ps(_mm256_sqrt_ps(vi), rs), eps);
        __m256 pi = _mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(p + i), keep), _mm256_mul_ps(ss, _mm256_div_ps(mi, den)));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        _mm256_storeu_ps(p + i, pi);
    }
#endif
    for (; i < n; i++) {
        float gi = g[i];
        float mi = c->b1 * m[i] + c->omb1 * gi;
        float vi = c->b2 * v[i] + c->omb2 * (gi * gi);
        float den = sqrtf(vi) * c->rsqrt_bc2 + c->eps;
        p[i] = p[i] * c->keep - c->step_size * (mi / den);
        m[i] = mi;
        v[i] = vi;
    }
}

// Thread t's static share [lo, hi) of n floats; boundaries are multiples of 16 floats (one
// cache line, two AVX2 vectors) so no line is written by two threads.
static void thread_range(size_t n, int t, int nt, size_t *lo, size_t *hi) {
    size_t lines = (n + 15) / 16;
    size_t a = lines * (size_t)t / (size_t)nt * 16, b = lines * (size_t)(t + 1) / (size_t)nt * 16;
    *lo = a < n ? a : n;
    *hi = b < n ? b : n;
}

mav_adamw_cfg mav_adamw_default_cfg(void) {
    return (mav_adamw_cfg){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.01f};
}

mav_status mav_adamw_check(const mav_adamw_cfg *cfg) {
    if (!(cfg->beta1 >= 0.0f && cfg->beta1 < 1.0f)) return mav_fail(MAV_ERR_ARG, "adamw: beta1 %g is not in [0, 1)", cfg->beta1);
    if (!(cfg->beta2 >= 0.0f && cfg->beta2 < 1.0f)) return mav_fail(MAV_ERR_ARG, "adamw: beta2 %g is not in [0, 1)", cfg->beta2);
    if (!(cfg->eps > 0.0f && isfinite(cfg->eps))) return mav_fail(MAV_ERR_ARG, "adamw: eps %g must be > 0", cfg->eps);
    if (!(cfg->weight_decay >= 0.0f && isfinite(cfg->weight_decay)))
        return mav_fail(MAV_ERR_ARG, "adamw: weight_decay %g must be >= 0", cfg->weight_decay);
    return MAV_OK;
}

int mav_adamw_decays(const mav_param *t) { return t->ndim >= 2; }

void mav_adamw_update(float *p, float *m, float *v, const float *g, size_t n, const mav_adamw_cfg *cfg, long step,
                      float lr, float wd) {
    const adamw_coefs c = make_coefs(cfg, step, lr, wd);
#pragma omp parallel
    {
        size_t lo, hi;
        thread_range(n, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        if (hi > lo) adamw_span(p + lo, m + lo, v + lo, g + lo, hi - lo, &c);
    }
}

void mav_adamw_step(mav_params *p, const mav_adamw_cfg *cfg, long step, float lr) {
    MAV_ASSERT(p->grad != NULL && p->m != NULL && p->v != NULL);
    const adamw_coefs with_wd = make_coefs(cfg, step, lr, cfg->weight_decay);
    const adamw_coefs no_wd = make_coefs(cfg, step, lr, 0.0f);
    // One parallel region over the whole flat range (not one per tensor: a U-Net has hundreds
    // of small tensors). Each thread walks the tensors overlapping its share; a tensor's span
    // runs to the next tensor's offset, so alignment padding (zero in value and grad, hence
    // zero in m and v) is updated too and stays zero.
#pragma omp parallel
    {
        size_t lo, hi;
        thread_range(p->total, omp_get_thread_num(), omp_get_num_threads(), &lo, &hi);
        // First tensor whose span reaches past lo (offsets increase): binary search.
        int a = 0, b = p->count;
        while (a < b) {
            int mid = (a + b) / 2;
            size_t end = mid + 1 < p->count ? p->items[mid + 1].offset : p->total;
            if (end <= lo) a = mid + 1; else b = mid;
        }
        for (int i = a; i < p->count && p->items[i].offset < hi; i++) {
            size_t end = i + 1 < p->count ? p->items[i + 1].offset : p->total;
            size_t s = p->items[i].offset > lo ? p->items[i].offset : lo, e = end < hi ? end : hi;
            if (e <= s) continue;
            const adamw_coefs *c = mav_adamw_decays(&p->items[i]) ? &with_wd : &no_wd;
            adamw_span(p->value + s, p->m + s, p->v + s, p->grad + s, e - s, c);
        }
    }
}
