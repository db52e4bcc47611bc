#include "diffusion/schedule.h"

#include <math.h>
#include <string.h>

// Elementwise loops below are bandwidth-bound; threads only pay off for large tensors.
#define MAV_DIFF_PAR_MIN 32768

// ADM's cosine ᾱ(u), u ∈ [0, 1]; the operation order matches Python's
// `math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2` so the values are bit-identical.
static double cosine_f(double u) {
    double c = cos((u + 0.008) / 1.008 * 3.141592653589793 / 2);
    return c * c;
}

mav_status mav_schedule_init(mav_schedule *s, mav_schedule_kind kind, int T) {
    if (T < 2 || T > MAV_DIFFUSION_T_MAX)
        return mav_fail(MAV_ERR_ARG, "diffusion: T = %d outside [2, %d]", T, MAV_DIFFUSION_T_MAX);
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->T = T;
    switch (kind) {
    case MAV_SCHEDULE_LINEAR: {
        // np.linspace(start, end, T): start + i·step, the last value set to `end` exactly.
        double scale = 1000.0 / T, b0 = scale * 0.0001, b1 = scale * 0.02, step = (b1 - b0) / (T - 1);
        for (int i = 0; i < T; i++) s->beta[i] = i * step + b0;
        s->beta[T - 1] = b1;
        break;
    }
    case MAV_SCHEDULE_COSINE:
        for (int i = 0; i < T; i++) {
            double b = 1 - cosine_f((double)(i + 1) / T) / cosine_f((double)i / T);
            s->beta[i] = b < 0.999 ? b : 0.999;  // without the clip β_{T−1} = 1 (ᾱ(1) ≈ 0)
        }
        break;
    default:
        return mav_fail(MAV_ERR_ARG, "diffusion: unknown schedule kind %d", (int)kind);
    }
    double ab = 1.0;  // np.cumprod: a sequential product
    for (int i = 0; i < T; i++) {
        ab *= 1.0 - s->beta[i];
        s->alpha_bar[i] = ab;
    }
    return MAV_OK;
}

double mav_schedule_alpha(const mav_schedule *s, int t) {
    MAV_ASSERT(t >= -1 && t < s->T);
    return t < 0 ? 1.0 : sqrt(s->alpha_bar[t]);
}

double mav_schedule_sigma(const mav_schedule *s, int t) {
    MAV_ASSERT(t >= -1 && t < s->T);
    return t < 0 ? 0.0 : sqrt(1.0 - s->alpha_bar[t]);
}

mav_status mav_respace(int *ts, int n, int T) {
    if (T < 1 || n < 1 || n > T)
        return mav_fail(MAV_ERR_ARG, "diffusion: cannot respace %d training steps into %d sampling steps", T, n);
    if (n == 1) {
        ts[0] = T - 1;
        return MAV_OK;
    }
    // round((T−1)·j/(n−1)), j = n−1−k, ties to even, in exact 64-bit integer arithmetic: the
    // value numpy's/Python's round gives on exact input, so the sets equal ADM's
    // space_timesteps(T, [n]) and diffusers' "linspace" spacing for the usual counts (those
    // two decide some ties by floating-point noise; docs/DIFFUSION.md). Consecutive values
    // differ by ≥ 1 because the real spacing (T−1)/(n−1) is ≥ 1 and rounding moves each by ≤ ½.
    for (int k = 0; k < n; k++) {
        long long num = (long long)(T - 1) * (n - 1 - k), den = n - 1;
        long long q = num / den, r2 = 2 * (num % den);
        if (r2 > den || (r2 == den && (q & 1))) q++;
        ts[k] = (int)q;
    }
    return MAV_OK;
}

void mav_diffusion_x0_from_pred(float *x0, const float *pred, const float *x, mav_pred_type type, double alpha,
                                double sigma, size_t n) {
    switch (type) {
    case MAV_PREDICT_EPS: {
        MAV_ASSERT(alpha > 0);
        double ia = 1.0 / alpha;
        #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
        for (size_t i = 0; i < n; i++) x0[i] = (float)(((double)x[i] - sigma * pred[i]) * ia);
        break;
    }
    case MAV_PREDICT_V:
        #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
        for (size_t i = 0; i < n; i++) x0[i] = (float)(alpha * x[i] - sigma * pred[i]);
        break;
    case MAV_PREDICT_X0:
        if (x0 != pred) memmove(x0, pred, n * sizeof *x0);
        break;
    default:
        MAV_ASSERT(!"unknown prediction type");
    }
}

void mav_diffusion_eps_from_x0(float *eps, const float *x0, const float *x, double alpha, double sigma, size_t n) {
    MAV_ASSERT(sigma > 0);
    double is = 1.0 / sigma;
    #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
    for (size_t i = 0; i < n; i++) eps[i] = (float)(((double)x[i] - alpha * x0[i]) * is);
}

void mav_diffusion_pred_from(float *pred, const float *x0, const float *eps, mav_pred_type type, double alpha,
                             double sigma, size_t n) {
    switch (type) {
    case MAV_PREDICT_EPS:
        if (pred != eps) memmove(pred, eps, n * sizeof *pred);
        break;
    case MAV_PREDICT_V:
        #pragma omp parallel for schedule(static) if (n > MAV_DIFF_PAR_MIN)
        for (size_t i = 0; i < n; i++) pred[i] = (float)(alpha * eps[i] - sigma * x0[i]);
        break;
    case MAV_PREDICT_X0:
        if (pred != x0) memmove(pred, x0, n * sizeof *pred);
        break;
    default:
        MAV_ASSERT(!"unknown prediction type");
    }
}

void mav_diffusion_q_sample(const mav_schedule *s, float *xt, const float *x0, const float *eps, const int *t, int B,
                            size_t m) {
    for (int b = 0; b < B; b++) {
        double a = mav_schedule_alpha(s, t[b]), sg = mav_schedule_sigma(s, t[b]);
        size_t o = (size_t)b * m;
        #pragma omp parallel for schedule(static) if (m > MAV_DIFF_PAR_MIN)
        for (size_t i = 0; i < m; i++) xt[o + i] = (float)(a * x0[o + i] + sg * eps[o + i]);
    }
}

void mav_diffusion_target(const mav_schedule *s, float *target, const float *x0, const float *eps, const int *t,
                          mav_pred_type type, int B, size_t m) {
    for (int b = 0; b < B; b++) {
        size_t o = (size_t)b * m;
        mav_diffusion_pred_from(target + o, x0 + o, eps + o, type, mav_schedule_alpha(s, t[b]),
                                mav_schedule_sigma(s, t[b]), m);
    }
}

static const char *const g_schedule_names[MAV_SCHEDULE_COUNT] = {"linear", "cosine"};
static const char *const g_pred_names[MAV_PREDICT_COUNT] = {"eps", "v", "x0"};

const char *mav_schedule_kind_name(mav_schedule_kind k) {
    return (k >= 0 && k < MAV_SCHEDULE_COUNT) ? g_schedule_names[k] : "?";
}

mav_status mav_schedule_kind_parse(const char *name, mav_schedule_kind *out) {
    for (int i = 0; i < MAV_SCHEDULE_COUNT; i++)
        if (strcmp(name, g_schedule_names[i]) == 0) { *out = (mav_schedule_kind)i; return MAV_OK; }
    return mav_fail(MAV_ERR_ARG, "unknown noise schedule \"%s\" (linear, cosine)", name);
}

const char *mav_pred_type_name(mav_pred_type p) {
    return (p >= 0 && p < MAV_PREDICT_COUNT) ? g_pred_names[p] : "?";
}

mav_status mav_pred_type_parse(const char *name, mav_pred_type *out) {
    for (int i = 0; i < MAV_PREDICT_COUNT; i++)
        if (strcmp(name, g_pred_names[i]) == 0) { *out = (mav_pred_type)i; return MAV_OK; }
    return mav_fail(MAV_ERR_ARG, "unknown prediction type \"%s\" (eps, v, x0)", name);
}
