#include "diffusion/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// Elementwise loops are bandwidth-bound; threads only pay off for large tensors. Every
// element is computed by the same scalar formula whichever thread owns it, so results do not
// depend on the thread count.
#define MAV_DIFF_PAR_MIN 32768

static int is_stochastic(const mav_sampler_params *p) {
    return p->kind == MAV_SAMPLER_DDPM || (p->kind == MAV_SAMPLER_DDIM && p->eta > 0);
}

mav_sampler_params mav_sampler_default_params(mav_sampler_kind kind) {
    mav_sampler_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.steps = kind == MAV_SAMPLER_DPMPP_2M ? 25 : 50;
    p.eta = 0.0;
    p.prediction = MAV_PREDICT_EPS;
    p.x0_mode = MAV_X0_NONE;
    p.dyn_percentile = 0.995;
    p.batch = 1;
    p.init_noise = 1;
    return p;
}

size_t mav_sample_scratch_floats(const mav_sampler_params *p, size_t n) {
    size_t m = p->batch > 0 ? n / (size_t)p->batch : n;
    return n                                              // model output, converted to x0 in place
           + (p->kind == MAV_SAMPLER_DPMPP_2M ? n : 0)    // the previous step's x0
           + (is_stochastic(p) ? n : 0)                   // noise z
           + (p->x0_mode == MAV_X0_DYNAMIC ? m : 0);      // quantile selection work
}

double mav_ddim_sigma(double ab_t, double ab_prev, double eta) {
    if (eta == 0 || ab_prev >= 1) return 0.0;
    return eta * sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev));
}

void mav_ddim_step(float *x_out, const float *x_in, const float *x0, const float *noise, double ab_t, double ab_prev,
                   double eta, size_t n) {
    if (ab_prev >= 1) {  // the clean end: x_prev = √1·x0 + 0·ε̂
        if (x_out != x0) memmove(x_out, x0, n * sizeof *x_out);
        return;
    }
    double sg = mav_ddim_sigma(ab_t, ab_prev, eta);
    double sa_t = sqrt(ab_t), is_t = 1.0 / sqrt(1 - ab_t), sa_p = sqrt(ab_prev);
    double ce = 1 - ab_prev - sg * sg;
    ce = ce > 0 ? sqrt(ce) : 0.0;  // rounding can make it a hair negative at η = 1
    MAV_ASSERT(sg == 0 || noise);
    #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        double eps = ((double)x_in[i] - sa_t * x0[i]) * is_t;
        double v = sa_p * x0[i] + ce * eps;
        if (sg > 0) v += sg * noise[i];
        x_out[i] = (float)v;
    }
}

void mav_ddpm_step(float *x_out, const float *x_in, const float *x0, const float *noise, double ab_t, double ab_prev,
                   size_t n) {
    if (ab_prev >= 1) {  // posterior mean is x0, variance 0
        if (x_out != x0) memmove(x_out, x0, n * sizeof *x_out);
        return;
    }
    double bp = 1 - ab_t / ab_prev;  // β' of the respaced chain
    double c0 = sqrt(ab_prev) * bp / (1 - ab_t);
    double c1 = sqrt(ab_t / ab_prev) * (1 - ab_prev) / (1 - ab_t);
    double sd = sqrt((1 - ab_prev) / (1 - ab_t) * bp);
    MAV_ASSERT(noise);
    #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
    for (size_t i = 0; i < n; i++) x_out[i] = (float)(c0 * x0[i] + c1 * x_in[i] + sd * noise[i]);
}

// λ = log(α/σ) = ½ (log ᾱ − log(1 − ᾱ)); log1p keeps it accurate for ᾱ near 0 and 1.
static double dpm_lambda(double ab) { return 0.5 * (log(ab) - log1p(-ab)); }

void mav_dpmpp_2m_step(float *x_out, const float *x_in, const float *x0, const float *x0_prev, double ab_s, double ab_t,
                       double ab_prev_s, size_t n) {
    if (ab_t >= 1) {  // σ_t = 0, h = ∞: x_t = α_t·D with D = x0_s (k-diffusion and diffusers do the same)
        if (x_out != x0) memmove(x_out, x0, n * sizeof *x_out);
        return;
    }
    double lam_s = dpm_lambda(ab_s), lam_t = dpm_lambda(ab_t), h = lam_t - lam_s;
    double ratio = sqrt((1 - ab_t) / (1 - ab_s));
    double cd = -sqrt(ab_t) * expm1(-h);  // −α_t (e^{−h} − 1) > 0
    double w0 = 1.0, w1 = 0.0;
    if (x0_prev) {
        double r = (lam_s - dpm_lambda(ab_prev_s)) / h;
        w0 = 1 + 1 / (2 * r);
        w1 = -1 / (2 * r);
    }
    #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        double d = w0 * x0[i] + (x0_prev ? w1 * x0_prev[i] : 0.0);
        x_out[i] = (float)(ratio * x_in[i] + cd * d);
    }
}

static inline void swapf(float *a, float *b) { float t = *a; *a = *b; *b = t; }

// Rearranges a[0..m) so that a[k] holds the k-th smallest value and every a[j], j > k, is
// ≥ a[k] (Hoare partition with a median-of-three pivot; expected O(m)).
static float select_kth(float *a, size_t m, size_t k) {
    ptrdiff_t lo = 0, hi = (ptrdiff_t)m - 1, kk = (ptrdiff_t)k;
    while (lo < hi) {
        ptrdiff_t mid = lo + (hi - lo) / 2;
        if (a[mid] < a[lo]) swapf(&a[mid], &a[lo]);
        if (a[hi] < a[lo]) swapf(&a[hi], &a[lo]);
        if (a[hi] < a[mid]) swapf(&a[hi], &a[mid]);
        float piv = a[mid];
        ptrdiff_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < piv) i++;
            while (a[j] > piv) j--;
            if (i <= j) { swapf(&a[i], &a[j]); i++; j--; }
        }
        // now a[lo..j] ≤ piv, a[i..hi] ≥ piv, and a[j+1..i−1] == piv
        if (kk <= j) hi = j;
        else if (kk >= i) lo = i;
        else break;
    }
    return a[kk];
}

double mav_abs_quantile(const float *x, size_t m, double p, float *work) {
    MAV_ASSERT(m > 0 && p >= 0 && p <= 1);
    for (size_t i = 0; i < m; i++) work[i] = fabsf(x[i]);
    double pos = p * (double)(m - 1);
    size_t k = (size_t)floor(pos);
    if (k > m - 1) k = m - 1;
    double frac = pos - (double)k;
    double lo = select_kth(work, m, k);
    if (frac == 0 || k + 1 >= m) return lo;
    float hi = work[k + 1];  // the (k+1)-th smallest is the minimum of what lies above k
    for (size_t i = k + 2; i < m; i++) hi = work[i] < hi ? work[i] : hi;
    return lo + frac * ((double)hi - lo);
}

void mav_x0_process(float *x0, size_t n, int batch, mav_x0_mode mode, double percentile, float *sel) {
    switch (mode) {
    case MAV_X0_NONE:
        return;
    case MAV_X0_CLIP:
        #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
        for (size_t i = 0; i < n; i++) x0[i] = x0[i] < -1.0f ? -1.0f : (x0[i] > 1.0f ? 1.0f : x0[i]);
        return;
    case MAV_X0_DYNAMIC: {
        MAV_ASSERT(batch > 0 && n % (size_t)batch == 0 && sel);
        size_t m = n / (size_t)batch;
        for (int b = 0; b < batch; b++) {
            float *xb = x0 + (size_t)b * m;
            double q = mav_abs_quantile(xb, m, percentile, sel);
            double s = q > 1 ? q : 1.0;  // s ≥ 1: samples already inside [−1, 1] are left alone
            #pragma omp parallel for schedule(static) if (m > MAV_DIFF_PAR_MIN)
            for (size_t i = 0; i < m; i++) {
                double v = xb[i];
                v = v < -s ? -s : (v > s ? s : v);
                xb[i] = (float)(v / s);
            }
        }
        return;
    }
    default:
        MAV_ASSERT(!"unknown x0 mode");
    }
}

mav_status mav_sample(const mav_schedule *s, const mav_sampler_params *p, mav_denoise_fn model, void *model_ctx,
                      float *x, size_t n, mav_rng *rng, float *scratch) {
    if (p->kind < 0 || p->kind >= MAV_SAMPLER_COUNT) return mav_fail(MAV_ERR_ARG, "sampler: unknown kind %d", (int)p->kind);
    if (p->prediction < 0 || p->prediction >= MAV_PREDICT_COUNT)
        return mav_fail(MAV_ERR_ARG, "sampler: unknown prediction type %d", (int)p->prediction);
    if (p->x0_mode < 0 || p->x0_mode >= MAV_X0_COUNT) return mav_fail(MAV_ERR_ARG, "sampler: unknown x0 mode %d", (int)p->x0_mode);
    if (p->steps < 1 || p->steps > s->T)
        return mav_fail(MAV_ERR_ARG, "sampler: %d steps outside [1, T = %d]", p->steps, s->T);
    if (p->batch < 1 || n == 0 || n % (size_t)p->batch != 0)
        return mav_fail(MAV_ERR_ARG, "sampler: %zu values do not split into %d samples", n, p->batch);
    if (!(p->eta >= 0 && p->eta <= 1e6)) return mav_fail(MAV_ERR_ARG, "sampler: DDIM eta %g must be >= 0", p->eta);
    if (p->x0_mode == MAV_X0_DYNAMIC && !(p->dyn_percentile > 0 && p->dyn_percentile <= 1))
        return mav_fail(MAV_ERR_ARG, "sampler: dynamic-threshold percentile %g outside (0, 1]", p->dyn_percentile);

    if (!rng && (p->init_noise || is_stochastic(p)))
        return mav_fail(MAV_ERR_ARG, "sampler: %s needs a random stream", p->init_noise ? "drawing x_T" : "a stochastic sampler");

    int ts[MAV_DIFFUSION_T_MAX];
    mav_status st = mav_respace(ts, p->steps, s->T);
    if (st != MAV_OK) return st;

    float *owned = NULL;
    if (!scratch) {
        owned = malloc(mav_sample_scratch_floats(p, n) * sizeof(float));
        if (!owned) return mav_fail(MAV_ERR_NOMEM, "sampler: cannot allocate %zu work floats", mav_sample_scratch_floats(p, n));
        scratch = owned;
    }
    float *x0 = scratch;                                                       // [n]
    float *w = scratch + n;
    float *x0_prev = NULL;                                                     // [n] DPM++ only
    if (p->kind == MAV_SAMPLER_DPMPP_2M) { x0_prev = w; w += n; }
    float *noise = NULL;                                                       // [n] stochastic only
    if (is_stochastic(p)) { noise = w; w += n; }
    float *sel = p->x0_mode == MAV_X0_DYNAMIC ? w : NULL;                      // [n/batch]

    if (p->init_noise) mav_rng_normal(rng, x, n);
    for (int i = 0; i < p->steps; i++) {
        int t = ts[i];
        int last = i + 1 == p->steps;
        double ab_t = s->alpha_bar[t], ab_next = last ? 1.0 : s->alpha_bar[ts[i + 1]];
        int rc = model(model_ctx, x0, x, (double)t, n);
        if (rc != MAV_OK) {
            mav_error_prefix("sampler step %d/%d (t = %d)", i + 1, p->steps, t);
            st = (mav_status)rc;
            goto done;
        }
        mav_diffusion_x0_from_pred(x0, x0, x, p->prediction, sqrt(ab_t), sqrt(1 - ab_t), n);
        mav_x0_process(x0, n, p->batch, p->x0_mode, p->dyn_percentile, sel);
        if (noise && !last) mav_rng_normal(rng, noise, n);
        switch (p->kind) {
        case MAV_SAMPLER_DDPM:
            mav_ddpm_step(x, x, x0, noise, ab_t, ab_next, n);
            break;
        case MAV_SAMPLER_DDIM:
            mav_ddim_step(x, x, x0, noise, ab_t, ab_next, p->eta, n);
            break;
        case MAV_SAMPLER_DPMPP_2M: {
            double ab_before = i > 0 ? s->alpha_bar[ts[i - 1]] : 0.0;
            mav_dpmpp_2m_step(x, x, x0, i > 0 ? x0_prev : NULL, ab_t, ab_next, ab_before, n);
            float *tmp = x0_prev;  // this step's x0 is the next step's "previous"
            x0_prev = x0;
            x0 = tmp;
            break;
        }
        default:
            break;
        }
        if (p->progress) p->progress(p->progress_ctx, i + 1, p->steps);
    }
done:
    free(owned);
    return st;
}

void mav_cfg_combine(float *out, const float *out_u, const float *out_c, double scale, size_t n) {
    #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        double u = out_u[i];
        out[i] = (float)(u + scale * ((double)out_c[i] - u));
    }
}

int mav_cfg_pair_denoise(void *cfg, float *out, const float *x, double t, size_t n) {
    const mav_cfg_pair *c = cfg;
    if (c->scale == 1.0) return c->cond(c->cond_ctx, out, x, t, n);
    int rc = c->uncond(c->uncond_ctx, c->tmp, x, t, n);
    if (rc != MAV_OK) return rc;
    rc = c->cond(c->cond_ctx, out, x, t, n);
    if (rc != MAV_OK) return rc;
    mav_cfg_combine(out, c->tmp, out, c->scale, n);
    return MAV_OK;
}

int mav_cfg_batched_denoise(void *cfg, float *out, const float *x, double t, size_t n) {
    const mav_cfg_batched *c = cfg;
    float *xx = c->tmp, *oo = c->tmp + 2 * n;  // [2n] input pair, [2n] output pair
    memcpy(xx, x, n * sizeof *xx);
    memcpy(xx + n, x, n * sizeof *xx);
    int rc = c->model2(c->ctx, oo, xx, t, 2 * n);
    if (rc != MAV_OK) return rc;
    mav_cfg_combine(out, oo, oo + n, c->scale, n);
    return MAV_OK;
}

static const char *const g_sampler_names[MAV_SAMPLER_COUNT] = {"ddpm", "ddim", "dpm++2m"};
static const char *const g_x0_names[MAV_X0_COUNT] = {"none", "clip", "dynamic"};

const char *mav_sampler_kind_name(mav_sampler_kind k) {
    return (k >= 0 && k < MAV_SAMPLER_COUNT) ? g_sampler_names[k] : "?";
}

mav_status mav_sampler_kind_parse(const char *name, mav_sampler_kind *out) {
    for (int i = 0; i < MAV_SAMPLER_COUNT; i++)
        if (strcmp(name, g_sampler_names[i]) == 0) { *out = (mav_sampler_kind)i; return MAV_OK; }
    return mav_fail(MAV_ERR_ARG, "unknown sampler \"%s\" (ddpm, ddim, dpm++2m)", name);
}

const char *mav_x0_mode_name(mav_x0_mode m) { return (m >= 0 && m < MAV_X0_COUNT) ? g_x0_names[m] : "?"; }

mav_status mav_x0_mode_parse(const char *name, mav_x0_mode *out) {
    for (int i = 0; i < MAV_X0_COUNT; i++)
        if (strcmp(name, g_x0_names[i]) == 0) { *out = (mav_x0_mode)i; return MAV_OK; }
    return mav_fail(MAV_ERR_ARG, "unknown x0 mode \"%s\" (none, clip, dynamic)", name);
}
