// test_optim.c — AdamW, global-norm clipping, LR schedule and EMA (src/optim).
//
// AdamW and clipping are compared with PyTorch run in float64 from the same float32 inputs
// (tests/reference/ops_optim.py), the flat kernels with a double-precision reference written
// here (awkward lengths, so the AVX2 body and the scalar tail both run), the schedule and the
// EMA with closed forms, and every kernel with itself at 1 vs 2 threads (bit-identical).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/params.h"
#include "core/threads.h"
#include "optim/adamw.h"
#include "optim/clip_grad.h"
#include "optim/ema.h"
#include "optim/lr_schedule.h"
#include "testutil.h"

// ---------------------------------------------------------------- helpers

// Copy reference tensor `name` (expected to hold n elements) into dst as f32.
static void ref_into(mav_st_file *f, const char *name, float *dst, size_t n) {
    size_t got;
    float *x = tu_ref_f32(f, name, &got);
    if (got != n) fail_msg("%s: %zu elements, expected %zu", name, got, n);
    memcpy(dst, x, n * sizeof(float));
    free(x);
}

static double *ref_d(mav_st_file *f, const char *name, size_t n) {
    size_t got;
    double *x = tu_ref_f64(f, name, &got);
    if (got != n) fail_msg("%s: %zu elements, expected %zu", name, got, n);
    return x;
}

static double max_abs_d(const double *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

// Fails unless every float of region r outside the tensors (alignment padding) is +0.
static void check_padding_zero(const char *what, const mav_params *p, const float *r) {
    for (int i = 0; i < p->count; i++) {
        size_t end = i + 1 < p->count ? p->items[i + 1].offset : p->total;
        for (size_t j = p->items[i].offset + p->items[i].numel; j < end; j++)
            if (r[j] != 0.0f || signbit(r[j])) fail_msg("%s: padding float %zu after %s is %g", what, j, p->items[i].name, r[j]);
    }
}

// Plain double-precision AdamW (the formula in adamw.h) on n values.
static void ref_adamw(double *p, double *m, double *v, const float *g, size_t n, double b1, double b2, double eps,
                      long t, double lr, double wd) {
    double bc1 = 1.0 - pow(b1, (double)t), bc2 = 1.0 - pow(b2, (double)t);
    for (size_t i = 0; i < n; i++) {
        p[i] -= lr * wd * p[i];
        m[i] = b1 * m[i] + (1.0 - b1) * g[i];
        v[i] = b2 * v[i] + (1.0 - b2) * (double)g[i] * g[i];
        p[i] -= lr / bc1 * m[i] / (sqrt(v[i]) / sqrt(bc2) + eps);
    }
}

// ---------------------------------------------------------------- AdamW

// Must match ADAMW_TENSORS in ops_optim.py.
static const struct { const char *name; int ndim; int64_t shape[4]; } k_adamw_tensors[] = {
    {"w", 2, {7, 5}}, {"conv", 4, {3, 2, 3, 3}}, {"b", 1, {13}}, {"small", 2, {1, 19}},
};
#define N_ADAMW_TENSORS ((int)(sizeof k_adamw_tensors / sizeof k_adamw_tensors[0]))
#define ADAMW_STEPS 5

// mav_adamw_step over 5 steps with a changing lr vs torch.optim.AdamW (float64), parameters
// and both moments after every step. The 1-D tensor "b" sits in a weight_decay = 0 group on the
// torch side, so decaying it (lr·wd·|p| ≈ 1e-3) fails; beta2 = 0.999 with t up to 5 makes a
// wrong bias correction (≥ 10% of the update, ≥ 5e-4) fail; eps = 1e-4 against gradients
// ~1e-4 in "small" makes a misplaced eps fail.
static void test_adamw_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("optim_adamw");
    double *hp = ref_d(f, "hparams", 4), *lr = ref_d(f, "lr", ADAMW_STEPS);
    mav_adamw_cfg cfg = {.beta1 = (float)hp[0], .beta2 = (float)hp[1], .eps = (float)hp[2], .weight_decay = (float)hp[3]};
    // The generator uses float32 values so both sides compute with the same numbers.
    for (int k = 0; k < 4; k++) assert_true((double)(float)hp[k] == hp[k]);
    assert_int_equal(mav_adamw_check(&cfg), MAV_OK);

    mav_params p;
    mav_params_init(&p);
    for (int i = 0; i < N_ADAMW_TENSORS; i++) mav_params_add(&p, k_adamw_tensors[i].name, k_adamw_tensors[i].ndim, k_adamw_tensors[i].shape);
    assert_int_equal(mav_params_alloc(&p, 1, 1), MAV_OK);
    char key[MAV_NAME_MAX + 32];
    for (int i = 0; i < N_ADAMW_TENSORS; i++) {
        snprintf(key, sizeof key, "%s.init", p.items[i].name);
        ref_into(f, key, mav_param_value(&p, i), p.items[i].numel);
    }
    for (int s = 1; s <= ADAMW_STEPS; s++) {
        for (int i = 0; i < N_ADAMW_TENSORS; i++) {
            snprintf(key, sizeof key, "%s.grad.%d", p.items[i].name, s);
            ref_into(f, key, mav_param_grad(&p, i), p.items[i].numel);
        }
        assert_true((double)(float)lr[s - 1] == lr[s - 1]);
        mav_adamw_step(&p, &cfg, s, (float)lr[s - 1]);
        for (int i = 0; i < N_ADAMW_TENSORS; i++) {
            size_t n = p.items[i].numel, off = p.items[i].offset;
            const char *nm = p.items[i].name;
            // Parameters |p| < 5: each step rounds p·keep, the update and their difference, three
            // half-ulps of |p| (ulp ≤ 2⁻²³·|p|), ≲ 1.8e-7·|p| per step, ≲ 1e-6·|p| after 5 (seen:
            // 5.4e-7 at |p| ≈ 2); the f32 moments change the update (≤ 0.03) by ~1e-7 relative.
            // atol 1e-6 + rtol 1e-6 covers that and stays 100× below the smallest error a wrong
            // formula makes (≥ 5e-4).
            snprintf(key, sizeof key, "%s.p.%d", nm, s);
            double *want = ref_d(f, key, n);
            tu_check_close_d(key, p.value + off, want, n, 1e-6, 1e-6);
            free(want);
            // Moments: a few f32 roundings per step, ~1e-6 relative after 5 steps; atol is relative
            // to the tensor's scale (m ~ 1e-4 and v ~ 1e-11 in "small") because an element of m can
            // cancel to near 0 while carrying the rounding of its larger terms.
            snprintf(key, sizeof key, "%s.m.%d", nm, s);
            want = ref_d(f, key, n);
            tu_check_close_d(key, p.m + off, want, n, 1e-6 * max_abs_d(want, n), 2e-6);
            free(want);
            snprintf(key, sizeof key, "%s.v.%d", nm, s);
            want = ref_d(f, key, n);
            tu_check_close_d(key, p.v + off, want, n, 1e-6 * max_abs_d(want, n), 2e-6);
            free(want);
        }
    }
    check_padding_zero("adamw value", &p, p.value);
    check_padding_zero("adamw m", &p, p.m);
    check_padding_zero("adamw v", &p, p.v);
    mav_params_free(&p);
    free(hp);
    free(lr);
    tu_ref_close(f);
}

// The flat kernel on lengths that exercise the AVX2 body, the scalar tail and both, at
// unaligned addresses, vs the double reference over 4 steps (lr and wd change; beta2 near 1).
static void test_adamw_flat_vs_double(void **state) {
    (void)state;
    static const size_t lens[] = {1, 7, 8, 9, 37, 1001};
    mav_adamw_cfg cfg = {.beta1 = 0.8f, .beta2 = 0.995f, .eps = 1e-3f, .weight_decay = 0.0f};
    for (size_t L = 0; L < sizeof lens / sizeof lens[0]; L++) {
        size_t n = lens[L];
        float *buf = tu_alloc_f(4 * (n + 1)), *g = tu_alloc_f(n);
        float *p = buf + 1, *m = p + n + 1, *v = m + n + 1;   // odd offsets: unaligned vectors
        tu_fill_normal(p, n, 10 + n);
        double *pd = tu_to_d(p, n), *md = tu_alloc_d(n), *vd = tu_alloc_d(n);
        for (long t = 1; t <= 4; t++) {
            tu_fill_normal(g, n, 100 * t + n);
            for (size_t i = 0; i < n; i += 3) g[i] *= 1e-3f;   // comparable with eps
            float lr = t == 3 ? 0.05f : 0.02f, wd = t == 2 ? 0.0f : 0.3f;
            mav_adamw_update(p, m, v, g, n, &cfg, t, lr, wd);
            ref_adamw(pd, md, vd, g, n, cfg.beta1, cfg.beta2, cfg.eps, t, lr, wd);
        }
        // Same error budget as in test_adamw_vs_torch (|p| < 6, 4 steps, update ≤ 0.05).
        tu_check_close_d("adamw flat p", p, pd, n, 1e-6, 1e-6);
        tu_check_close_d("adamw flat m", m, md, n, 1e-6 * max_abs_d(md, n), 2e-6);
        tu_check_close_d("adamw flat v", v, vd, n, 1e-6 * max_abs_d(vd, n), 2e-6);
        free(buf); free(g); free(pd); free(md); free(vd);
    }
}

// mav_adamw_step equals, bit for bit, the flat kernel applied tensor by tensor with the decay
// rule (ndim >= 2). Catches a thread share that skips or repeats floats, or a wrong rule.
static void test_adamw_step_vs_flat(void **state) {
    (void)state;
    static const struct { int ndim; int64_t shape[4]; } ts[] = {
        {1, {1}}, {2, {3, 5}}, {0, {0}}, {4, {2, 1, 3, 3}}, {1, {31}}, {2, {1, 1}}, {2, {33, 65}}, {1, {257}}, {3, {5, 7, 9}},
    };
    const int nt = (int)(sizeof ts / sizeof ts[0]);
    mav_params p;
    mav_params_init(&p);
    char name[32];
    for (int i = 0; i < nt; i++) { snprintf(name, sizeof name, "t%d", i); mav_params_add(&p, name, ts[i].ndim, ts[i].shape); }
    assert_int_equal(mav_params_alloc(&p, 1, 1), MAV_OK);
    float *val = tu_alloc_f(p.total), *m = tu_alloc_f(p.total), *v = tu_alloc_f(p.total);
    for (int i = 0; i < nt; i++) tu_fill_normal(mav_param_value(&p, i), p.items[i].numel, 7 + i);
    memcpy(val, p.value, p.total * sizeof(float));
    mav_adamw_cfg cfg = mav_adamw_default_cfg();
    cfg.weight_decay = 0.5f;
    for (long t = 1; t <= 3; t++) {
        for (int i = 0; i < nt; i++) tu_fill_normal(mav_param_grad(&p, i), p.items[i].numel, 1000 * t + i);
        mav_adamw_step(&p, &cfg, t, 0.01f * (float)t);
        for (int i = 0; i < nt; i++) {
            size_t o = p.items[i].offset, n = p.items[i].numel;
            mav_adamw_update(val + o, m + o, v + o, p.grad + o, n, &cfg, t, 0.01f * (float)t,
                             p.items[i].ndim >= 2 ? cfg.weight_decay : 0.0f);
        }
    }
    tu_check_equal("adamw step vs flat: value", p.value, val, p.total);
    tu_check_equal("adamw step vs flat: m", p.m, m, p.total);
    tu_check_equal("adamw step vs flat: v", p.v, v, p.total);
    check_padding_zero("adamw step value", &p, p.value);
    // The rule itself.
    assert_int_equal(mav_adamw_decays(&p.items[0]), 0);
    assert_int_equal(mav_adamw_decays(&p.items[2]), 0);
    assert_int_equal(mav_adamw_decays(&p.items[1]), 1);
    assert_int_equal(mav_adamw_decays(&p.items[5]), 1);
    free(val); free(m); free(v);
    mav_params_free(&p);
}

static void test_adamw_check(void **state) {
    (void)state;
    mav_adamw_cfg c = mav_adamw_default_cfg();
    assert_int_equal(mav_adamw_check(&c), MAV_OK);
    c.beta2 = 1.0f;
    assert_int_equal(mav_adamw_check(&c), MAV_ERR_ARG);
    c = mav_adamw_default_cfg(); c.beta1 = -0.1f;
    assert_int_equal(mav_adamw_check(&c), MAV_ERR_ARG);
    c = mav_adamw_default_cfg(); c.eps = 0.0f;
    assert_int_equal(mav_adamw_check(&c), MAV_ERR_ARG);
    c = mav_adamw_default_cfg(); c.weight_decay = NAN;
    assert_int_equal(mav_adamw_check(&c), MAV_ERR_ARG);
}

// ---------------------------------------------------------------- clipping

static const struct { const char *name; int ndim; int64_t shape[3]; } k_clip_tensors[] = {
    {"a", 2, {5, 3}}, {"b", 1, {17}}, {"c", 3, {2, 3, 4}},
};
#define N_CLIP_TENSORS 3

// vs torch.nn.utils.clip_grad_norm_ (float64): max_norm below the norm (clips) and above it
// (leaves the grads alone, bit for bit).
static void test_clip_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("optim_clip");
    static const char *cases[] = {"above", "below"};
    char key[MAV_NAME_MAX + 32];
    for (int c = 0; c < 2; c++) {
        mav_params p;
        mav_params_init(&p);
        for (int i = 0; i < N_CLIP_TENSORS; i++) mav_params_add(&p, k_clip_tensors[i].name, k_clip_tensors[i].ndim, k_clip_tensors[i].shape);
        assert_int_equal(mav_params_alloc(&p, 1, 0), MAV_OK);
        for (int i = 0; i < N_CLIP_TENSORS; i++) {
            snprintf(key, sizeof key, "%s.grad", p.items[i].name);
            ref_into(f, key, mav_param_grad(&p, i), p.items[i].numel);
        }
        float *before = tu_alloc_f(p.total);
        memcpy(before, p.grad, p.total * sizeof(float));
        snprintf(key, sizeof key, "max_norm.%s", cases[c]);
        double *max_norm = ref_d(f, key, 1);
        snprintf(key, sizeof key, "norm.%s", cases[c]);
        double *want_norm = ref_d(f, key, 1);
        double norm = mav_clip_grad_norm(&p, max_norm[0]);
        // 56 exact squares summed in double on both sides: ≲ 56·2⁻⁵³ relative.
        tu_check_close_dd(key, &norm, want_norm, 1, 0.0, 1e-13);
        for (int i = 0; i < N_CLIP_TENSORS; i++) {
            snprintf(key, sizeof key, "%s.clipped.%s", p.items[i].name, cases[c]);
            double *want = ref_d(f, key, p.items[i].numel);
            // g·(float)clip: the factor and the product round once each, ≤ 2⁻²³ relative.
            tu_check_close_d(key, mav_param_grad(&p, i), want, p.items[i].numel, 0.0, 1.5e-7);
            free(want);
        }
        if (c == 1) tu_check_equal("clip below max_norm leaves grads", p.grad, before, p.total);
        else {
            // Clipped: the new norm is max_norm·norm/(norm + 1e-6) (up to f32 rounding).
            double after = mav_grad_norm(p.grad, p.total), expect = max_norm[0] * norm / (norm + 1e-6);
            tu_check_close_dd("norm after clipping", &after, &expect, 1, 0.0, 2e-7);
        }
        check_padding_zero("clip grad", &p, p.grad);
        free(before); free(max_norm); free(want_norm);
        mav_params_free(&p);
    }
    tu_ref_close(f);
}

// A NaN or Inf gradient: the non-finite norm is returned and no gradient changes.
static void test_clip_nonfinite(void **state) {
    (void)state;
    const size_t n = 53;
    float *g = tu_alloc_f(n), *before = tu_alloc_f(n);
    const float bad[] = {NAN, INFINITY, -INFINITY};
    for (int k = 0; k < 3; k++) {
        tu_fill_normal(g, n, 5);
        g[(size_t)(17 * k + 3)] = bad[k];
        memcpy(before, g, n * sizeof(float));
        double norm = mav_clip_grad_norm_flat(g, n, 1e-3);   // would clip hard if finite
        if (isfinite(norm)) fail_msg("bad value %d: norm %g is finite", k, norm);
        if (k == 0 && !isnan(norm)) fail_msg("NaN grad: norm %g is not NaN", norm);
        if (k > 0 && !(isinf(norm) && norm > 0)) fail_msg("Inf grad: norm %g is not +Inf", norm);
        for (size_t i = 0; i < n; i++)
            if (memcmp(&g[i], &before[i], sizeof(float)) != 0) fail_msg("bad value %d: grad %zu changed", k, i);
    }
    free(g); free(before);
}

// mav_grad_norm vs a long-double sum over lengths around the 16-float lines and the chunking.
static void test_grad_norm_lengths(void **state) {
    (void)state;
    static const size_t lens[] = {0, 1, 15, 16, 17, 127, 2049, 100003};
    for (size_t L = 0; L < sizeof lens / sizeof lens[0]; L++) {
        size_t n = lens[L];
        float *g = tu_alloc_f(n);
        tu_fill_normal(g, n, 77 + n);
        long double s = 0.0L;
        for (size_t i = 0; i < n; i++) s += (long double)g[i] * g[i];
        double want = (double)sqrtl(s), got = mav_grad_norm(g, n);
        // Sums of n ≤ 1e5 positive terms in double: ≤ n·2⁻⁵³ ≈ 1.1e-11 relative, worst case.
        tu_check_close_dd("grad norm", &got, &want, 1, 0.0, 1.2e-11);
        free(g);
    }
}

// ---------------------------------------------------------------- LR schedule

static void check_lr(const mav_lr_schedule *s, long step, double want) {
    double got = mav_lr_at(s, step);
    // Closed forms in double; cos and the divisions round a few times: 1e-14 relative.
    if (!(fabs(got - want) <= 1e-14 * fabs(want) + 1e-300))
        fail_msg("lr at step %ld: got %.17g, want %.17g", step, got, want);
}

static void test_lr_schedule(void **state) {
    (void)state;
    const double base = 3e-4, mn = 1e-6;
    mav_lr_schedule s = {.base_lr = base, .min_lr = mn, .warmup = 10, .total = 110};
    assert_int_equal(mav_lr_schedule_check(&s), MAV_OK);
    check_lr(&s, 1, base / 10);
    check_lr(&s, 7, base * 7 / 10);
    check_lr(&s, 10, base);                                   // warmup boundary: exactly base
    check_lr(&s, 11, mn + 0.5 * (base - mn) * (1 + cos(M_PI / 100)));
    check_lr(&s, 60, (base + mn) / 2);                        // cosine midpoint
    check_lr(&s, 85, mn + 0.5 * (base - mn) * (1 - sqrt(0.5)));   // 3/4 of the way: cos(3π/4)
    check_lr(&s, 110, mn);                                    // reaches min at total
    check_lr(&s, 111, mn);                                    // constant after
    check_lr(&s, 100000, mn);
    // Non-increasing after warmup, non-decreasing during it.
    for (long t = 2; t <= 120; t++) {
        double a = mav_lr_at(&s, t - 1), b = mav_lr_at(&s, t);
        if (t <= 10 ? b < a : b > a) fail_msg("lr not monotone at step %ld: %g then %g", t, a, b);
    }
    // No warmup: the cosine starts at step 1 (progress 1/total).
    mav_lr_schedule s0 = {.base_lr = 1.0, .min_lr = 0.0, .warmup = 0, .total = 4};
    assert_int_equal(mav_lr_schedule_check(&s0), MAV_OK);
    check_lr(&s0, 1, 0.5 * (1 + cos(M_PI / 4)));
    check_lr(&s0, 2, 0.5);
    check_lr(&s0, 4, 0.0);
    check_lr(&s0, 5, 0.0);
    // Warmup only (total = warmup).
    mav_lr_schedule s1 = {.base_lr = 2.0, .min_lr = 0.5, .warmup = 4, .total = 4};
    assert_int_equal(mav_lr_schedule_check(&s1), MAV_OK);
    check_lr(&s1, 4, 2.0);
    check_lr(&s1, 5, 0.5);
    // Inconsistent schedules are rejected.
    mav_lr_schedule bad = s; bad.total = 5;
    assert_int_equal(mav_lr_schedule_check(&bad), MAV_ERR_ARG);
    bad = s; bad.min_lr = 2 * base;
    assert_int_equal(mav_lr_schedule_check(&bad), MAV_ERR_ARG);
    bad = s; bad.warmup = -1;
    assert_int_equal(mav_lr_schedule_check(&bad), MAV_ERR_ARG);
    bad = s; bad.base_lr = 0.0; bad.min_lr = 0.0;
    assert_int_equal(mav_lr_schedule_check(&bad), MAV_ERR_ARG);
}

// ---------------------------------------------------------------- EMA

// Against the recursion in double with the closed-form decay, with and without the warmup and
// with a cap (0.5) that is reached at t = 8 inside the run.
static void test_ema_closed_form(void **state) {
    (void)state;
    const size_t n = 37;   // AVX2 body + scalar tail
    const long T = 12;
    static const struct { float decay; int warmup; } cases[] = {{0.999f, 1}, {0.5f, 1}, {0.9f, 0}};
    for (int c = 0; c < 3; c++) {
        float *p = tu_alloc_f(n), *ema = tu_alloc_f(n);
        tu_fill_normal(p, n, 3);
        mav_ema_init(ema, p, n);
        tu_check_equal("ema init", ema, p, n);
        double *e = tu_to_d(p, n);
        for (long t = 1; t <= T; t++) {
            double w = (1.0 + t) / (10.0 + t);
            double d = cases[c].warmup && w < cases[c].decay ? w : cases[c].decay;
            float got_d = mav_ema_decay_at(cases[c].decay, t, cases[c].warmup);
            if (got_d != (float)d) fail_msg("ema decay at t=%ld: %.9g, want %.9g", t, got_d, d);
            tu_fill_normal(p, n, 50 + t);
            mav_ema_update(ema, p, n, got_d);
            for (size_t i = 0; i < n; i++) e[i] = d * e[i] + (1.0 - d) * p[i];
        }
        // |e| < 5; each update rounds e − p, the product and the sum (≲ 2⁻²⁴·(|e| + |p|) each,
        // older errors shrink by d ≤ 1), and d itself is rounded to f32 (≤ 3e-8 relative):
        // ≲ 12 × 4e-7 worst case. atol 2e-6 + rtol 1e-6; a wrong decay changes e by ≥ 1e-2.
        tu_check_close_d("ema vs closed form", ema, e, n, 2e-6, 1e-6);
        free(p); free(ema); free(e);
    }
    assert_true(mav_ema_decay_at(0.9999f, 1, 1) == (float)(2.0 / 11.0));
    assert_true(mav_ema_decay_at(0.9999f, 1, 0) == 0.9999f);
}

// Weights that do not change keep their EMA bit for bit (the ema −= (1−d)(ema − p) form).
static void test_ema_constant(void **state) {
    (void)state;
    const size_t n = 29;
    float *p = tu_alloc_f(n), *ema = tu_alloc_f(n);
    tu_fill_normal(p, n, 8);
    mav_ema_init(ema, p, n);
    for (long t = 1; t <= 20; t++) mav_ema_update(ema, p, n, mav_ema_decay_at(0.9999f, t, 1));
    tu_check_equal("ema of constant weights", ema, p, n);
    free(p); free(ema);
}

// ---------------------------------------------------------------- determinism

typedef struct { float *val, *m, *v, *grad, *ema, *flat; size_t total; double norm; } run_out;

// AdamW steps (params-level and flat, unaligned length), a clip and EMA updates at `threads`.
static run_out run_all(int threads) {
    mav_threads_set(threads);
    static const struct { int ndim; int64_t shape[4]; } ts[] = {
        {2, {129, 77}}, {1, {333}}, {4, {19, 7, 3, 3}}, {1, {1}}, {2, {301, 65}}, {1, {4095}},
    };
    const int nt = (int)(sizeof ts / sizeof ts[0]);
    mav_params p;
    mav_params_init(&p);
    char name[16];
    for (int i = 0; i < nt; i++) { snprintf(name, sizeof name, "t%d", i); mav_params_add(&p, name, ts[i].ndim, ts[i].shape); }
    assert_int_equal(mav_params_alloc(&p, 1, 1), MAV_OK);
    for (int i = 0; i < nt; i++) tu_fill_normal(mav_param_value(&p, i), p.items[i].numel, 1 + i);
    run_out o;
    o.ema = tu_alloc_f(p.total);
    mav_ema_init(o.ema, p.value, p.total);
    mav_adamw_cfg cfg = mav_adamw_default_cfg();
    for (long t = 1; t <= 3; t++) {
        for (int i = 0; i < nt; i++) tu_fill_normal(mav_param_grad(&p, i), p.items[i].numel, 100 * t + i);
        o.norm = mav_clip_grad_norm(&p, 50.0);   // the norm is ~190: clips
        mav_adamw_step(&p, &cfg, t, 1e-3f);
        mav_ema_update(o.ema, p.value, p.total, mav_ema_decay_at(0.999f, t, 1));
    }
    const size_t nf = 50001;
    o.flat = tu_alloc_f(3 * nf);
    float *g = tu_alloc_f(nf);
    tu_fill_normal(o.flat, nf, 9);
    tu_fill_normal(g, nf, 10);
    mav_adamw_update(o.flat, o.flat + nf, o.flat + 2 * nf, g, nf, &cfg, 1, 1e-2f, 0.1f);
    free(g);
    o.val = tu_alloc_f(p.total); memcpy(o.val, p.value, p.total * sizeof(float));
    o.m = tu_alloc_f(p.total); memcpy(o.m, p.m, p.total * sizeof(float));
    o.v = tu_alloc_f(p.total); memcpy(o.v, p.v, p.total * sizeof(float));
    o.grad = tu_alloc_f(p.total); memcpy(o.grad, p.grad, p.total * sizeof(float));
    o.total = p.total;
    mav_params_free(&p);
    return o;
}

static void free_run(run_out *o) { free(o->val); free(o->m); free(o->v); free(o->grad); free(o->ema); free(o->flat); }

static void test_determinism_threads(void **state) {
    (void)state;
    int saved = mav_threads_get();
    run_out a = run_all(1), b = run_all(2);
    mav_threads_set(saved);
    assert_true(a.total == b.total);
    const size_t total = a.total;
    if (memcmp(&a.norm, &b.norm, sizeof a.norm) != 0) fail_msg("grad norm: %.17g (1 thread) vs %.17g (2 threads)", a.norm, b.norm);
    tu_check_equal("1 vs 2 threads: adamw value", a.val, b.val, total);
    tu_check_equal("1 vs 2 threads: adamw m", a.m, b.m, total);
    tu_check_equal("1 vs 2 threads: adamw v", a.v, b.v, total);
    tu_check_equal("1 vs 2 threads: clipped grad", a.grad, b.grad, total);
    tu_check_equal("1 vs 2 threads: ema", a.ema, b.ema, total);
    tu_check_equal("1 vs 2 threads: flat adamw", a.flat, b.flat, 3 * 50001);
    free_run(&a);
    free_run(&b);
}

MAV_TEST_GROUP(optim,
               cmocka_unit_test(test_adamw_vs_torch),
               cmocka_unit_test(test_adamw_flat_vs_double),
               cmocka_unit_test(test_adamw_step_vs_flat),
               cmocka_unit_test(test_adamw_check),
               cmocka_unit_test(test_clip_vs_torch),
               cmocka_unit_test(test_clip_nonfinite),
               cmocka_unit_test(test_grad_norm_lengths),
               cmocka_unit_test(test_lr_schedule),
               cmocka_unit_test(test_ema_closed_form),
               cmocka_unit_test(test_ema_constant),
               cmocka_unit_test(test_determinism_threads))
