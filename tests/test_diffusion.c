// test_diffusion.c — schedules, respacing, conversions, sampler steps and whole samplers
// (src/diffusion, SPEC §6). References: tests/reference/ops_diffusion.py (schedules in float64
// with ADM's formulas, respacing with exact fractions, torch.quantile), closed-form updates
// written out here independently of src/diffusion, and analytic toy denoisers whose ideal
// sampler output is known exactly.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "testutil.h"

// One rounding of a double result to f32 is ≤ 2^-24 relative; two independently written double
// evaluations of the same formula can straddle a rounding boundary, so allow 1 ulp (2^-23) of
// the result plus a tiny absolute term for results that cancel to near zero.
#define ULP1 (1.0 / 8388608.0)

static void init_sched(mav_schedule *s, mav_schedule_kind k, int T) {
    assert_int_equal(mav_schedule_init(s, k, T), MAV_OK);
}

static double maxabs_f(const float *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    return m;
}

// ---------------------------------------------------------------- schedules and respacing

static void test_schedule_values(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("diffusion");
    const char *kinds[2] = {"linear", "cosine"};
    const int Ts[2] = {1000, 37};
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++) {
            mav_schedule s;
            init_sched(&s, (mav_schedule_kind)k, Ts[j]);
            char name[64], what[96];
            snprintf(name, sizeof name, "%s_T%d.beta", kinds[k], Ts[j]);
            double *beta = tu_ref_f64(f, name, NULL);
            snprintf(name, sizeof name, "%s_T%d.alpha_bar", kinds[k], Ts[j]);
            double *ab = tu_ref_f64(f, name, NULL);
            // Same float64 formulas in the same order; only libm's cos may differ (≤ 1 ulp),
            // and ᾱ is a product of ≤ 1000 factors: ≤ 1000·2^-53 ≈ 1.1e-13 relative.
            snprintf(what, sizeof what, "%s T=%d beta", kinds[k], Ts[j]);
            tu_check_close_dd(what, s.beta, beta, (size_t)Ts[j], 0, 2e-13);
            snprintf(what, sizeof what, "%s T=%d alpha_bar", kinds[k], Ts[j]);
            tu_check_close_dd(what, s.alpha_bar, ab, (size_t)Ts[j], 0, 2e-13);
            free(beta);
            free(ab);
        }
    tu_ref_close(f);

    // Spot values written out by hand (independent of both implementations).
    mav_schedule lin, cos_;
    init_sched(&lin, MAV_SCHEDULE_LINEAR, 1000);
    init_sched(&cos_, MAV_SCHEDULE_COSINE, 1000);
    assert_true(lin.beta[0] == 1e-4 && lin.beta[999] == 0.02);
    assert_true(fabs(lin.beta[500] - (1e-4 + 500 * (0.02 - 1e-4) / 999)) < 1e-17);
    // linear ᾱ_t = Π(1 − β_i) ≈ exp(−Σβ_i): ᾱ_999 = exp(−10.05 − O(Σβ²)) ≈ 4.04e-5 (ADM's value).
    assert_true(fabs(lin.alpha_bar[999] - 4.0358e-5) < 1e-8);
    // cosine: ᾱ_t = f(t+1)/f(0) while no β is clipped; f(u) = cos((u+s)/(1+s)·π/2)².
    const int probe[4] = {0, 250, 500, 900};
    for (int i = 0; i < 4; i++) {
        int t = probe[i];
        double f0 = pow(cos(0.008 / 1.008 * M_PI / 2), 2), ft = pow(cos(((t + 1) / 1000.0 + 0.008) / 1.008 * M_PI / 2), 2);
        if (fabs(cos_.alpha_bar[t] - ft / f0) > 1e-12 * (ft / f0))
            fail_msg("cosine alpha_bar[%d] = %.17g, closed form %.17g", t, cos_.alpha_bar[t], ft / f0);
    }
    // β clipping: only the last cosine β reaches 0.999 (unclipped it would be 1 − f(1)/f(.999) ≈ 1).
    assert_true(cos_.beta[999] == 0.999);
    for (int t = 0; t < 999; t++)
        if (!(cos_.beta[t] < 0.999 && cos_.beta[t] > 0)) fail_msg("cosine beta[%d] = %g not in (0, 0.999)", t, cos_.beta[t]);
    assert_true(fabs(cos_.alpha_bar[999] - cos_.alpha_bar[998] * 0.001) <= 1e-15 * cos_.alpha_bar[998]);
    // α, σ helpers, including the clean end t = −1
    assert_true(mav_schedule_alpha(&cos_, -1) == 1.0 && mav_schedule_sigma(&cos_, -1) == 0.0);
    assert_true(fabs(pow(mav_schedule_alpha(&cos_, 321), 2) + pow(mav_schedule_sigma(&cos_, 321), 2) - 1) < 1e-15);

    mav_schedule bad;
    assert_int_equal(mav_schedule_init(&bad, MAV_SCHEDULE_COSINE, 1), MAV_ERR_ARG);
    assert_int_equal(mav_schedule_init(&bad, MAV_SCHEDULE_COSINE, MAV_DIFFUSION_T_MAX + 1), MAV_ERR_ARG);
    assert_int_equal(mav_schedule_init(&bad, MAV_SCHEDULE_COUNT, 1000), MAV_ERR_ARG);
}

static void test_respace(void **state) {
    (void)state;
    static const int cases[][2] = {{1000, 1}, {1000, 2}, {1000, 3}, {1000, 7}, {1000, 25}, {1000, 50}, {1000, 250},
                                   {1000, 999}, {1000, 1000}, {37, 5}, {37, 37}, {10, 4}, {8, 3}, {4, 3}, {6, 3}, {12, 5}};
    int ts[MAV_DIFFUSION_T_MAX];
    double tsd[MAV_DIFFUSION_T_MAX];
    mav_st_file *f = tu_ref_open("diffusion");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int T = cases[c][0], n = cases[c][1];
        char name[64];
        snprintf(name, sizeof name, "respace_T%d_n%d", T, n);
        size_t cnt;
        double *want = tu_ref_f64(f, name, &cnt);
        assert_int_equal(cnt, (size_t)n);
        assert_int_equal(mav_respace(ts, n, T), MAV_OK);
        for (int k = 0; k < n; k++) tsd[k] = ts[k];
        tu_check_close_dd(name, tsd, want, (size_t)n, 0, 0);  // integers: exact
        free(want);
    }
    tu_ref_close(f);
    // Properties for every count at T = 1000 and a small odd T: n values, strictly decreasing,
    // both endpoints kept (n ≥ 2), and the usual counts equal ADM's space_timesteps.
    const int Ts[2] = {1000, 13};
    for (int j = 0; j < 2; j++)
        for (int n = 1; n <= Ts[j]; n++) {
            assert_int_equal(mav_respace(ts, n, Ts[j]), MAV_OK);
            if (ts[0] != Ts[j] - 1) fail_msg("T=%d n=%d: first step %d", Ts[j], n, ts[0]);
            if (n >= 2 && ts[n - 1] != 0) fail_msg("T=%d n=%d: last step %d", Ts[j], n, ts[n - 1]);
            for (int k = 1; k < n; k++)
                if (ts[k] >= ts[k - 1]) fail_msg("T=%d n=%d: not strictly decreasing at %d (%d, %d)", Ts[j], n, k, ts[k - 1], ts[k]);
        }
    // ADM's space_timesteps(1000, [25]) (its Python code, run once), in sampling order
    assert_int_equal(mav_respace(ts, 25, 1000), MAV_OK);
    const int adm25[25] = {999, 957, 916, 874, 832, 791, 749, 708, 666, 624, 583, 541, 500,
                           458, 416, 375, 333, 291, 250, 208, 166, 125, 83, 42, 0};
    for (int k = 0; k < 25; k++)
        if (ts[k] != adm25[k]) fail_msg("25 steps: ts[%d] = %d, ADM space_timesteps gives %d", k, ts[k], adm25[k]);
    assert_int_equal(mav_respace(ts, 0, 1000), MAV_ERR_ARG);
    assert_int_equal(mav_respace(ts, 1001, 1000), MAV_ERR_ARG);
}

// ---------------------------------------------------------------- training side and conversions

static void test_q_sample_and_targets(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("diffusion");
    size_t n;
    float *x0 = tu_ref_f32(f, "q.x0", &n), *eps = tu_ref_f32(f, "q.eps", NULL);
    double *td = tu_ref_f64(f, "q.t", NULL), *xt_ref = tu_ref_f64(f, "q.xt", NULL), *v_ref = tu_ref_f64(f, "q.v", NULL);
    int B = 3, t[3];
    size_t m = n / 3;
    for (int b = 0; b < B; b++) t[b] = (int)td[b];
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_COSINE, 1000);
    float *xt = tu_alloc_f(n), *tg = tu_alloc_f(n);
    // double math on the same f32 inputs, rounded once: ≤ ½ ulp apart, plus the ᾱ difference
    // (≤ 1e-13 relative, see test_schedule_values). 1 ulp of the result + 1e-12 absolute.
    mav_diffusion_q_sample(&s, xt, x0, eps, t, B, m);
    tu_check_close_d("q_sample", xt, xt_ref, n, 1e-12, ULP1);
    mav_diffusion_target(&s, tg, x0, eps, t, MAV_PREDICT_V, B, m);
    tu_check_close_d("v target", tg, v_ref, n, 1e-12, ULP1);
    mav_diffusion_target(&s, tg, x0, eps, t, MAV_PREDICT_EPS, B, m);
    tu_check_equal("eps target", tg, eps, n);
    mav_diffusion_target(&s, tg, x0, eps, t, MAV_PREDICT_X0, B, m);
    tu_check_equal("x0 target", tg, x0, n);
    free(x0); free(eps); free(td); free(xt_ref); free(v_ref); free(xt); free(tg);
    tu_ref_close(f);
}

static void test_conversions_roundtrip(void **state) {
    (void)state;
    const size_t n = 203;
    float *x0 = tu_alloc_f(n), *eps = tu_alloc_f(n), *x = tu_alloc_f(n), *pred = tu_alloc_f(n), *x0b = tu_alloc_f(n),
          *epsb = tu_alloc_f(n);
    tu_fill_uniform(x0, n, -1, 1, 11);
    tu_fill_normal(eps, n, 12);
    const double me = maxabs_f(eps, n);
    for (int k = 0; k < 2; k++) {
        mav_schedule s;
        init_sched(&s, (mav_schedule_kind)k, 1000);
        const int tts[5] = {0, 1, 400, 900, 999};
        for (int i = 0; i < 5; i++) {
            int t = tts[i];
            double a = mav_schedule_alpha(&s, t), sg = mav_schedule_sigma(&s, t);
            mav_diffusion_q_sample(&s, x, x0, eps, &t, 1, n);
            double mx = maxabs_f(x, n);
            char what[96];
            // Every path rounds each output once to f32, so an input carries ≤ 2^-24 relative
            // error. x0 = α x − σ v, ε = σ x + α v with α² + σ² = 1 are well conditioned:
            // errors ≤ 2^-24·(|x| + |v| + |out|) ≈ 4 ulps of the largest magnitude.
            mav_diffusion_pred_from(pred, x0, eps, MAV_PREDICT_V, a, sg, n);
            mav_diffusion_x0_from_pred(x0b, pred, x, MAV_PREDICT_V, a, sg, n);
            double tol_v = 4.0 * (mx + me + 1) / 16777216.0;
            snprintf(what, sizeof what, "%s t=%d v->x0", mav_schedule_kind_name(s.kind), t);
            tu_check_close(what, x0b, x0, n, tol_v, 0);
            // ε from the recovered x0 divides by σ (at t = 0, σ ≈ 0.01 for linear / 0.0064 for
            // cosine): the error grows by α/σ.
            mav_diffusion_eps_from_x0(epsb, x0b, x, a, sg, n);
            snprintf(what, sizeof what, "%s t=%d v->x0->eps", mav_schedule_kind_name(s.kind), t);
            tu_check_close(what, epsb, eps, n, tol_v * (1 + 2 * a / sg), 0);
            // eps route: x0 = (x − σ ε)/α amplifies input rounding by 1/α (2e4 at cosine T−1,
            // where this route is ill-conditioned by nature; clipping exists for that reason).
            mav_diffusion_x0_from_pred(x0b, eps, x, MAV_PREDICT_EPS, a, sg, n);
            double tol_e = 4.0 * (mx + me + 1) / 16777216.0 / a;
            snprintf(what, sizeof what, "%s t=%d eps->x0", mav_schedule_kind_name(s.kind), t);
            tu_check_close(what, x0b, x0, n, tol_e, 0);
            // eps → v → x0: in place (outputs alias inputs) to cover the aliasing contract.
            memcpy(pred, eps, n * sizeof *pred);
            mav_diffusion_pred_from(pred, x0, pred, MAV_PREDICT_V, a, sg, n);
            mav_diffusion_x0_from_pred(pred, pred, x, MAV_PREDICT_V, a, sg, n);
            snprintf(what, sizeof what, "%s t=%d in-place v->x0", mav_schedule_kind_name(s.kind), t);
            tu_check_close(what, pred, x0, n, tol_v, 0);
            // x0 "prediction" is the identity
            mav_diffusion_x0_from_pred(x0b, x0, x, MAV_PREDICT_X0, a, sg, n);
            tu_check_equal("x0 pred", x0b, x0, n);
        }
    }
    free(x0); free(eps); free(x); free(pred); free(x0b); free(epsb);
}

// ---------------------------------------------------------------- single steps vs closed forms

static void fill_step_inputs(float *x, float *x0, float *x0p, float *z, size_t n) {
    tu_fill_normal(x, n, 21);
    tu_fill_uniform(x0, n, -1, 1, 22);
    tu_fill_uniform(x0p, n, -1, 1, 23);
    tu_fill_normal(z, n, 24);
}

static void test_ddim_step_closed_form(void **state) {
    (void)state;
    const size_t n = 131;
    float *x = tu_alloc_f(n), *x0 = tu_alloc_f(n), *x0p = tu_alloc_f(n), *z = tu_alloc_f(n), *got = tu_alloc_f(n);
    double *want = tu_alloc_d(n);
    fill_step_inputs(x, x0, x0p, z, n);
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_COSINE, 1000);
    const int pairs[4][2] = {{999, 958}, {731, 500}, {42, 0}, {0, -1}};
    const double etas[3] = {0.0, 0.5, 1.0};
    for (int pi = 0; pi < 4; pi++)
        for (int ei = 0; ei < 3; ei++) {
            double ab_t = s.alpha_bar[pairs[pi][0]], ab_p = pairs[pi][1] < 0 ? 1.0 : s.alpha_bar[pairs[pi][1]];
            double eta = etas[ei];
            // DDIM eq. 12: x_prev = √ᾱ_prev x̂0 + √(1 − ᾱ_prev − σ²) ε̂ + σ z,
            // σ² = η² (1−ᾱ_prev)/(1−ᾱ_t) (1 − ᾱ_t/ᾱ_prev).
            double sig2 = eta * eta * (1 - ab_p) / (1 - ab_t) * (1 - ab_t / ab_p);
            double ce = sqrt(fmax(0.0, 1 - ab_p - sig2));
            for (size_t i = 0; i < n; i++) {
                double e = (x[i] - sqrt(ab_t) * x0[i]) / sqrt(1 - ab_t);
                want[i] = sqrt(ab_p) * x0[i] + ce * e + sqrt(sig2) * z[i];
            }
            if (fabs(mav_ddim_sigma(ab_t, ab_p, eta) - sqrt(sig2)) > 1e-15)
                fail_msg("ddim sigma (%d→%d, eta %g): %.17g vs %.17g", pairs[pi][0], pairs[pi][1], eta,
                         mav_ddim_sigma(ab_t, ab_p, eta), sqrt(sig2));
            mav_ddim_step(got, x, x0, z, ab_t, ab_p, eta, n);
            char what[96];
            snprintf(what, sizeof what, "ddim %d->%d eta %g", pairs[pi][0], pairs[pi][1], eta);
            // Both in double from the same f32 inputs; ε̂ at t = 999 divides by σ ≈ 1, so no
            // amplification: 1 ulp of the result + 1e-12 (see ULP1).
            tu_check_close_d(what, got, want, n, 1e-12, ULP1);
        }
    free(x); free(x0); free(x0p); free(z); free(got); free(want);
}

// DDIM at η = 1 uses σ² = β̃ = (1−ᾱ_prev)/(1−ᾱ_t)·β', the DDPM posterior variance, and the same
// mean (Song et al. 2021 §4.1): one step of each with the same noise must agree.
static void test_ddim_eta1_is_ddpm(void **state) {
    (void)state;
    const size_t n = 97;
    float *x = tu_alloc_f(n), *x0 = tu_alloc_f(n), *x0p = tu_alloc_f(n), *z = tu_alloc_f(n), *a = tu_alloc_f(n),
          *b = tu_alloc_f(n);
    fill_step_inputs(x, x0, x0p, z, n);
    for (int k = 0; k < 2; k++) {
        mav_schedule s;
        init_sched(&s, (mav_schedule_kind)k, 1000);
        const int pairs[5][2] = {{999, 979}, {600, 599}, {500, 250}, {20, 0}, {0, -1}};
        for (int pi = 0; pi < 5; pi++) {
            double ab_t = s.alpha_bar[pairs[pi][0]], ab_p = pairs[pi][1] < 0 ? 1.0 : s.alpha_bar[pairs[pi][1]];
            double bp = 1 - ab_t / ab_p, post_var = (1 - ab_p) / (1 - ab_t) * bp;
            double sg = mav_ddim_sigma(ab_t, ab_p, 1.0);
            if (fabs(sg * sg - post_var) > 1e-14 * fmax(post_var, 1e-300) + 1e-300)
                fail_msg("eta=1 variance %.17g vs DDPM posterior variance %.17g", sg * sg, post_var);
            // at a single training step (600 → 599) β' = β_600 and β̃ = β_600 (1−ᾱ_599)/(1−ᾱ_600)
            if (pairs[pi][0] == 600 && fabs(bp - s.beta[600]) > 1e-13 * s.beta[600])
                fail_msg("respaced beta' %.17g vs schedule beta %.17g", bp, s.beta[600]);
            mav_ddim_step(a, x, x0, z, ab_t, ab_p, 1.0, n);
            mav_ddpm_step(b, x, x0, z, ab_t, ab_p, n);
            char what[96];
            snprintf(what, sizeof what, "%s ddim(eta 1) vs ddpm %d->%d", mav_schedule_kind_name(s.kind), pairs[pi][0], pairs[pi][1]);
            // Different algebra for the same value in double (the DDIM coefficient
            // √(1 − ᾱ_prev − β̃) cancels when β̃ ≈ 1 − ᾱ_prev): a few ulps; 4 ulps + 1e-9.
            tu_check_close(what, a, b, n, 1e-9, 4 * ULP1);
        }
    }
    free(x); free(x0); free(x0p); free(z); free(a); free(b);
}

static void test_dpmpp_step_closed_form(void **state) {
    (void)state;
    const size_t n = 157;
    float *x = tu_alloc_f(n), *x0 = tu_alloc_f(n), *x0p = tu_alloc_f(n), *z = tu_alloc_f(n), *got = tu_alloc_f(n);
    double *want = tu_alloc_d(n);
    fill_step_inputs(x, x0, x0p, z, n);
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_COSINE, 1000);
    // (previous, s, t) triples along respaced chains: the first-order first step uses only
    // (s, t); the second-order step also uses the previous timestep.
    // The last triple repeats the second-to-last with an x0_prev far from x0 (a large correction)
    // and uneven spacing (r ≠ 1).
    const int tr[4][3] = {{999, 958, 916}, {541, 500, 458}, {83, 42, 0}, {300, 42, 0}};
    for (int c = 0; c < 4; c++) {
        int tp = tr[c][0], ts = tr[c][1], tt = tr[c][2];
        double ab_p = s.alpha_bar[tp], ab_s = s.alpha_bar[ts], ab_t = s.alpha_bar[tt];
        // Lu et al. 2022: λ = log(α/σ), h = λ_t − λ_s, r = h_prev/h,
        // x_t = (σ_t/σ_s) x_s − α_t (e^{−h} − 1) D.
        double lam_p = log(sqrt(ab_p) / sqrt(1 - ab_p)), lam_s = log(sqrt(ab_s) / sqrt(1 - ab_s)),
               lam_t = log(sqrt(ab_t) / sqrt(1 - ab_t));
        double h = lam_t - lam_s, r = (lam_s - lam_p) / h;
        double sig_s = sqrt(1 - ab_s), sig_t = sqrt(1 - ab_t), al_t = sqrt(ab_t);
        for (int order = 1; order <= 2; order++) {
            const float *prev = c == 3 ? x : x0p;
            for (size_t i = 0; i < n; i++) {
                double D = order == 1 ? x0[i] : (1 + 1 / (2 * r)) * x0[i] - 1 / (2 * r) * prev[i];
                want[i] = sig_t / sig_s * x[i] - al_t * (exp(-h) - 1) * D;
            }
            mav_dpmpp_2m_step(got, x, x0, order == 1 ? NULL : prev, ab_s, ab_t, ab_p, n);
            char what[96];
            snprintf(what, sizeof what, "dpm++2m order %d %d->%d (prev %d)", order, ts, tt, tp);
            // Same closed form in double (log of a ratio vs log/log1p, exp−1 vs expm1: ≤ 1e-15
            // relative for h ≥ 0.05 here), rounded once: 1 ulp + 1e-12.
            tu_check_close_d(what, got, want, n, 1e-12, ULP1);
        }
    }
    // The clean end (ᾱ_t = 1) returns x0_s exactly, as k-diffusion's sample_dpmpp_2m does.
    mav_dpmpp_2m_step(got, x, x0, x0p, s.alpha_bar[0], 1.0, s.alpha_bar[42], n);
    tu_check_equal("dpm++2m final step", got, x0, n);
    free(x); free(x0); free(x0p); free(z); free(got); free(want);
}

// ---------------------------------------------------------------- toy models

typedef struct {
    const mav_schedule *s;
    mav_pred_type pred;
    const float *xstar;  // point data (or NULL: Gaussian data N(mu, sd²) per element)
    double mu, sd;
    double lin_a, lin_b;  // lin model (toy_linear): out = a·x + b·t/1000
    int calls;
    int ts[MAV_DIFFUSION_T_MAX];
    int fail_at;  // call index that returns an error (−1: never)
} toy;

// E[x0 | x_t] for the toy data at timestep t (α, σ).
static double toy_x0(const toy *c, size_t i, double x, double a, double sg) {
    if (c->xstar) return c->xstar[i];
    double v = c->sd * c->sd;
    return c->mu + a * v / (a * a * v + sg * sg) * (x - a * c->mu);
}

// The ideal model of the toy data, returning its prediction type.
static int toy_model(void *vctx, float *out, const float *x, double t, size_t n) {
    toy *c = vctx;
    int ti = (int)t;
    if (c->fail_at == c->calls) return mav_fail(MAV_ERR_ARG, "toy model refuses call %d", c->calls);
    if (c->calls < MAV_DIFFUSION_T_MAX) c->ts[c->calls] = ti;
    c->calls++;
    double a = mav_schedule_alpha(c->s, ti), sg = mav_schedule_sigma(c->s, ti);
    for (size_t i = 0; i < n; i++) {
        double x0 = toy_x0(c, i, x[i], a, sg), e = (x[i] - a * x0) / sg;
        out[i] = (float)(c->pred == MAV_PREDICT_EPS ? e : c->pred == MAV_PREDICT_V ? a * e - sg * x0 : x0);
    }
    return MAV_OK;
}

static toy toy_make(const mav_schedule *s, mav_pred_type pred) {
    toy c;
    memset(&c, 0, sizeof c);
    c.s = s;
    c.pred = pred;
    c.fail_at = -1;
    return c;
}

// Data = a single point x*: the ideal ε-model is (x_t − √ᾱ_t x*)/√(1−ᾱ_t) and every sampler must
// land on x*.
static void test_toy_point(void **state) {
    (void)state;
    const size_t n = 301;
    float *xstar = tu_alloc_f(n), *x = tu_alloc_f(n);
    tu_fill_uniform(xstar, n, -0.9f, 0.9f, 31);
    for (int k = 0; k < 2; k++) {
        mav_schedule s;
        init_sched(&s, (mav_schedule_kind)k, 1000);
        for (int kind = 0; kind < MAV_SAMPLER_COUNT; kind++)
            for (int pr = 0; pr < MAV_PREDICT_COUNT; pr++)
                for (int steps = 25; steps <= 50; steps += 25) {
                    toy c = toy_make(&s, (mav_pred_type)pr);
                    c.xstar = xstar;
                    mav_sampler_params p = mav_sampler_default_params((mav_sampler_kind)kind);
                    p.steps = steps;
                    p.prediction = (mav_pred_type)pr;
                    p.x0_mode = MAV_X0_CLIP;
                    mav_rng rng = mav_rng_make(100 + (uint64_t)kind);
                    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_OK);
                    assert_int_equal(c.calls, steps);
                    char what[128];
                    snprintf(what, sizeof what, "%s %s %s %d steps -> x*", mav_schedule_kind_name(s.kind),
                             mav_sampler_kind_name(p.kind), mav_pred_type_name(p.prediction), steps);
                    // The last step returns the x0 predicted at t = 0, where α ≈ 1 and σ ≤ 0.01:
                    // x0 = (x − σ ε)/α from f32 x and ε is within a few ulps of x*. 1e-6 ≈ 16 ulps
                    // of |x*| ≤ 0.9; a wrong final step would leave O(σ_0) = 1e-2 of noise.
                    tu_check_close(what, x, xstar, n, 1e-6, 0);
                }
    }
    free(xstar);
    free(x);
}

// Exact probability-flow ODE map for Gaussian data N(mu, sd²): x_t ↦ x_t' is the monotone
// map between the marginals N(α mu, α² sd² + σ²), followed by the sampler's final denoise at t = 0.
static double gauss_flow(double xT, double mu, double sd, double aT, double sT, double a0, double s0) {
    double v = sd * sd, x0 = a0 * mu + sqrt(a0 * a0 * v + s0 * s0) * (xT - aT * mu) / sqrt(aT * aT * v + sT * sT);
    return mu + a0 * v / (a0 * a0 * v + s0 * s0) * (x0 - a0 * mu);
}

// Largest |sample − exact ODE solution| over x for a deterministic sampler.
static double ode_error(const mav_schedule *s, mav_sampler_kind kind, int steps, const float *xT, float *x, size_t n,
                        double mu, double sd) {
    toy c = toy_make(s, MAV_PREDICT_EPS);
    c.mu = mu;
    c.sd = sd;
    mav_sampler_params p = mav_sampler_default_params(kind);
    p.steps = steps;
    p.init_noise = 0;
    memcpy(x, xT, n * sizeof *x);
    assert_int_equal(mav_sample(s, &p, toy_model, &c, x, n, NULL, NULL), MAV_OK);
    double aT = mav_schedule_alpha(s, s->T - 1), sT = mav_schedule_sigma(s, s->T - 1);
    double a0 = mav_schedule_alpha(s, 0), s0 = mav_schedule_sigma(s, 0), err = 0;
    for (size_t i = 0; i < n; i++) err = fmax(err, fabs(x[i] - gauss_flow(xT[i], mu, sd, aT, sT, a0, s0)));
    return err;
}

// Gaussian data: DDIM (η = 0) and DPM-Solver++(2M) are ODE solvers of order 1 and 2 whose exact
// answer is known in closed form; their error must be small and shrink at their order.
static void test_toy_gaussian_ode(void **state) {
    (void)state;
    const size_t n = 257;
    const double mu = 0.3, sd = 0.5;
    float *xT = tu_alloc_f(n), *x = tu_alloc_f(n);
    tu_fill_normal(xT, n, 41);
    for (int k = 0; k < 2; k++) {
        mav_schedule s;
        init_sched(&s, (mav_schedule_kind)k, 1000);
        double e_ddim50 = ode_error(&s, MAV_SAMPLER_DDIM, 50, xT, x, n, mu, sd);
        double e_ddim100 = ode_error(&s, MAV_SAMPLER_DDIM, 100, xT, x, n, mu, sd);
        double e_dpm25 = ode_error(&s, MAV_SAMPLER_DPMPP_2M, 25, xT, x, n, mu, sd);
        double e_dpm50 = ode_error(&s, MAV_SAMPLER_DPMPP_2M, 50, xT, x, n, mu, sd);
        double e_dpm100 = ode_error(&s, MAV_SAMPLER_DPMPP_2M, 100, xT, x, n, mu, sd);
        // Measured (max over 257 elements, |x_T| up to ~3): DDIM 50/100 steps 0.072/0.036
        // (linear), 0.039/0.020 (cosine); DPM++2M 25/50/100 0.23/0.071/0.018 (linear),
        // 0.084/0.021/0.0051 (cosine), and 1.6e-4 / 4.8e-5 at 1000 steps, so the closed-form
        // reference is right. Halving the step must divide the error by ~2^order:
        // DDIM (order 1) by 1.6–2.5, DPM++2M (order 2) by ≥ 3 — a wrong second-order weight
        // (r, or the λ of the wrong timestep) falls back to order 1 and fails this.
        const char *sk = mav_schedule_kind_name(s.kind);
        double rd = e_ddim50 / e_ddim100, rp = e_dpm50 / e_dpm100;
        if (rd < 1.6 || rd > 2.5) fail_msg("%s DDIM: error ratio 50/100 steps %.3f (%g / %g), not first order", sk, rd, e_ddim50, e_ddim100);
        if (rp < 3.0) fail_msg("%s DPM++2M: error ratio 50/100 steps %.3f (%g / %g), not second order", sk, rp, e_dpm50, e_dpm100);
        // absolute accuracy with 1.5–2× headroom over the measured values
        if (e_dpm100 > 0.03 || e_ddim100 > 0.06 || e_dpm25 > 0.4)
            fail_msg("%s: ODE errors DDIM(100) %g, DPM++2M(25) %g, DPM++2M(100) %g too large", sk, e_ddim100, e_dpm25, e_dpm100);
        if (e_dpm100 >= e_ddim100) fail_msg("%s: DPM++2M (%g) not better than DDIM (%g) at 100 steps", sk, e_dpm100, e_ddim100);
    }
    free(xT);
    free(x);
}

// DDPM and DDIM(η = 1) on Gaussian data: the sampler is a linear Gaussian recursion
// x ← A x + c + σ_n z whose output mean and variance the test computes exactly in double
// (this catches a wrong posterior mean, variance or final step); the empirical moments of n
// independent elements must match them within 5 standard errors.
static void test_toy_gaussian_ddpm(void **state) {
    (void)state;
    const size_t n = 40001;
    const double mu = 0.3, sd = 0.5, var = sd * sd;
    float *x = tu_alloc_f(n);
    for (int k = 0; k < 2; k++) {
        mav_schedule s;
        init_sched(&s, (mav_schedule_kind)k, 1000);
        for (int run = 0; run < 3; run++) {
            // DDPM and DDIM(η 1) at 20 steps, DDPM at every timestep
            int kind = run == 1, steps = run == 2 ? 1000 : 20;
            toy c = toy_make(&s, MAV_PREDICT_EPS);
            c.mu = mu;
            c.sd = sd;
            mav_sampler_params p = mav_sampler_default_params(kind == 0 ? MAV_SAMPLER_DDPM : MAV_SAMPLER_DDIM);
            p.steps = steps;
            p.eta = 1.0;
            // the 1000-step run mainly checks the recursion (below); fewer elements keep it fast
            size_t nr = steps == 1000 ? 2001 : n;
            mav_rng rng = mav_rng_make(51);
            assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, nr, &rng, NULL), MAV_OK);
            int ts[MAV_DIFFUSION_T_MAX];
            mav_respace(ts, steps, s.T);
            double m = 0, v = 1;  // x_T ~ N(0, 1)
            for (int i = 0; i < steps; i++) {
                double ab = s.alpha_bar[ts[i]], a = sqrt(ab), sg = sqrt(1 - ab);
                double kk = a * var / (a * a * var + sg * sg);  // x̂0 = mu + kk (x − a mu)
                if (i + 1 == steps) {
                    m = mu + kk * (m - a * mu);
                    v = kk * kk * v;
                    break;
                }
                double abp = s.alpha_bar[ts[i + 1]], bp = 1 - ab / abp;
                double c0 = sqrt(abp) * bp / (1 - ab), c1 = sqrt(1 - bp) * (1 - abp) / (1 - ab), pv = (1 - abp) / (1 - ab) * bp;
                m = c0 * (mu + kk * (m - a * mu)) + c1 * m;
                v = (c0 * kk + c1) * (c0 * kk + c1) * v + pv;
            }
            double em = 0, ev = 0;
            for (size_t i = 0; i < nr; i++) em += x[i];
            em /= (double)nr;
            for (size_t i = 0; i < nr; i++) ev += (x[i] - em) * (x[i] - em);
            ev /= (double)(nr - 1);
            // standard errors of the sample mean and variance of nr Gaussian values
            double tm = 5 * sqrt(v / nr), tv = 5 * v * sqrt(2.0 / (nr - 1));
            if (fabs(em - m) > tm || fabs(ev - v) > tv)
                fail_msg("%s %s: sample mean %.5f var %.5f, exact %.5f %.5f (tol %.2g, %.2g)", mav_schedule_kind_name(s.kind),
                         mav_sampler_kind_name(p.kind), em, ev, m, v, tm, tv);
            // With every timestep the recursion must reproduce the data distribution: the mean
            // to 1e-5 and the variance to 2% (measured 1.6% low for linear, 0.8% for cosine:
            // the β̃ variance ignores Var[x0 | x_t], Bao et al. 2022, which is also why 20 steps
            // give 0.15 / 0.18 instead of 0.25). This validates the recursion model above.
            if (steps == 1000 && (fabs(m - mu) > 1e-5 || fabs(v - var) > 0.02 * var))
                fail_msg("%s: exact sampler moments %.6f %.5f far from the data's %.4f %.4f", mav_schedule_kind_name(s.kind), m, v, mu, var);
        }
    }
    free(x);
}

// Linear test model: out = lin_a·x + lin_b·t/1000 (as a v prediction: well conditioned at
// every t, so a double re-computation of the whole chain stays close to the f32 sampler).
static int lin_model(void *vctx, float *out, const float *x, double t, size_t n) {
    toy *c = vctx;
    if (c->calls < MAV_DIFFUSION_T_MAX) c->ts[c->calls] = (int)t;
    c->calls++;
    for (size_t i = 0; i < n; i++) out[i] = (float)(c->lin_a * x[i] + c->lin_b * t / 1000.0 * (1 + (double)(i % 5) / 5));
    return MAV_OK;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Imagen dynamic thresholding in double via a full sort (independent of the quickselect).
static void dyn_ref(double *x0, size_t m, double p) {
    double *w = tu_alloc_d(m);
    for (size_t i = 0; i < m; i++) w[i] = fabs(x0[i]);
    qsort(w, m, sizeof *w, cmp_d);
    double pos = p * (double)(m - 1);
    size_t k = (size_t)floor(pos);
    double q = k + 1 < m ? w[k] + (pos - k) * (w[k + 1] - w[k]) : w[k];
    double s = fmax(1.0, q);
    for (size_t i = 0; i < m; i++) x0[i] = fmin(fmax(x0[i], -s), s) / s;
    free(w);
}

typedef struct { int calls, last_step, bad; } progress_log;
static void progress_cb(void *ctx, int step, int nsteps) {
    progress_log *l = ctx;
    l->calls++;
    if (step != l->last_step + 1 || nsteps <= 0 || step > nsteps) l->bad = 1;
    l->last_step = step;
}

// The whole sampler loop against an independent double re-implementation built from the
// closed forms: timesteps passed to the model, conversion, x0 processing per sample, the
// update rule of each sampler, the second-order history of DPM++, and the documented order
// in which random numbers are drawn.
static void test_sampler_wiring(void **state) {
    (void)state;
    const int B = 3;
    const size_t m = 45, n = (size_t)B * m;
    const int steps = 6;
    float *x = tu_alloc_f(n), *z = tu_alloc_f(n), *scr;
    double *xd = tu_alloc_d(n), *x0 = tu_alloc_d(n), *x0p = tu_alloc_d(n);
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_LINEAR, 1000);
    int ts[MAV_DIFFUSION_T_MAX];
    mav_respace(ts, steps, s.T);
    for (int kind = 0; kind < MAV_SAMPLER_COUNT; kind++)
        for (int mode = 0; mode < MAV_X0_COUNT; mode++) {
            toy c = toy_make(&s, MAV_PREDICT_V);
            c.lin_a = 0.35;
            c.lin_b = -0.8;
            mav_sampler_params p = mav_sampler_default_params((mav_sampler_kind)kind);
            p.steps = steps;
            p.eta = 0.7;
            p.prediction = MAV_PREDICT_V;
            p.x0_mode = (mav_x0_mode)mode;
            p.dyn_percentile = 0.9;
            p.batch = B;
            progress_log plog = {0, 0, 0};
            p.progress = progress_cb;
            p.progress_ctx = &plog;
            scr = tu_alloc_f(mav_sample_scratch_floats(&p, n));  // exact size: ASan catches overruns
            mav_rng rng = mav_rng_make(77 + (uint64_t)kind), rng2 = rng;
            assert_int_equal(mav_sample(&s, &p, lin_model, &c, x, n, &rng, scr), MAV_OK);
            free(scr);
            assert_int_equal(c.calls, steps);
            for (int i = 0; i < steps; i++) assert_int_equal(c.ts[i], ts[i]);
            assert_true(plog.calls == steps && plog.last_step == steps && !plog.bad);

            // reference: x_T first, then per non-final step (stochastic samplers only) n normals
            mav_rng_normal(&rng2, z, n);
            for (size_t i = 0; i < n; i++) xd[i] = z[i];
            int stoch = kind == MAV_SAMPLER_DDPM || kind == MAV_SAMPLER_DDIM;
            for (int i = 0; i < steps; i++) {
                int t = ts[i], last = i + 1 == steps;
                double ab = s.alpha_bar[t], a = sqrt(ab), sg = sqrt(1 - ab), abp = last ? 1.0 : s.alpha_bar[ts[i + 1]];
                for (size_t j = 0; j < n; j++) {
                    double v = c.lin_a * xd[j] + c.lin_b * t / 1000.0 * (1 + (double)(j % 5) / 5);
                    x0[j] = a * xd[j] - sg * v;
                    if (mode == MAV_X0_CLIP) x0[j] = fmin(fmax(x0[j], -1), 1);
                }
                if (mode == MAV_X0_DYNAMIC)
                    for (int b = 0; b < B; b++) dyn_ref(x0 + (size_t)b * m, m, p.dyn_percentile);
                if (stoch && !last) mav_rng_normal(&rng2, z, n);
                if (last) {
                    memcpy(xd, x0, n * sizeof *xd);
                    break;
                }
                for (size_t j = 0; j < n; j++) {
                    double e = (xd[j] - a * x0[j]) / sg;
                    if (kind == MAV_SAMPLER_DDPM) {
                        double bp = 1 - ab / abp, pv = (1 - abp) / (1 - ab) * bp;
                        xd[j] = sqrt(abp) * bp / (1 - ab) * x0[j] + sqrt(1 - bp) * (1 - abp) / (1 - ab) * xd[j] + sqrt(pv) * z[j];
                    } else if (kind == MAV_SAMPLER_DDIM) {
                        double s2 = p.eta * p.eta * (1 - abp) / (1 - ab) * (1 - ab / abp);
                        xd[j] = sqrt(abp) * x0[j] + sqrt(1 - abp - s2) * e + sqrt(s2) * z[j];
                    } else {
                        double lt = log(sqrt(abp / (1 - abp))), ls = log(sqrt(ab / (1 - ab))), h = lt - ls, D = x0[j];
                        if (i > 0) {
                            double ab0 = s.alpha_bar[ts[i - 1]], r = (ls - log(sqrt(ab0 / (1 - ab0)))) / h;
                            D = (1 + 1 / (2 * r)) * x0[j] - 1 / (2 * r) * x0p[j];
                        }
                        xd[j] = sqrt((1 - abp) / (1 - ab)) * xd[j] - sqrt(abp) * (exp(-h) - 1) * D;
                    }
                }
                memcpy(x0p, x0, n * sizeof *x0p);
            }
            char what[96];
            snprintf(what, sizeof what, "%s x0 %s: sampler vs double re-implementation", mav_sampler_kind_name(p.kind),
                     mav_x0_mode_name(p.x0_mode));
            // f32 chain vs double chain: each step rounds the state and x0 once (2^-24
            // relative, |values| ≲ 3) and the linear model / updates have gains ≲ 2, so 6
            // steps stay within ~50 ulps; 1e-5 absolute is ~40 ulps at |x| = 3.
            tu_check_close_d(what, x, xd, n, 1e-5, 0);
            if (rng.offset != rng2.offset || rng.seed != rng2.seed)
                fail_msg("%s: sampler consumed %llu random blocks, the documented order %llu", mav_sampler_kind_name(p.kind),
                         (unsigned long long)rng.offset, (unsigned long long)rng2.offset);
        }
    free(x); free(z); free(xd); free(x0); free(x0p);
}

static int cfg_u_calls, cfg_c_calls;
static int cfg_uncond(void *ctx, float *out, const float *x, double t, size_t n) {
    (void)ctx;
    cfg_u_calls++;
    for (size_t i = 0; i < n; i++) out[i] = (float)(0.2 * x[i] + 1 + t / 1000);
    return MAV_OK;
}
static int cfg_cond(void *ctx, float *out, const float *x, double t, size_t n) {
    (void)ctx;
    cfg_c_calls++;
    for (size_t i = 0; i < n; i++) out[i] = (float)(-0.3 * x[i] + 2 - t / 1000);
    return MAV_OK;
}
// Doubled batch: checks its input is [x; x] and returns [uncond(x); cond(x)].
static int cfg_model2(void *ctx, float *out, const float *x, double t, size_t n2) {
    int *bad = ctx;
    size_t n = n2 / 2;
    if (n2 % 2 || memcmp(x, x + n, n * sizeof *x) != 0) *bad = 1;
    cfg_uncond(NULL, out, x, t, n);
    cfg_cond(NULL, out + n, x + n, t, n);
    return MAV_OK;
}

static void test_cfg(void **state) {
    (void)state;
    const size_t n = 77;
    float *u = tu_alloc_f(n), *c = tu_alloc_f(n), *out = tu_alloc_f(n), *x = tu_alloc_f(n), *tmp = tu_alloc_f(4 * n),
          *out2 = tu_alloc_f(n);
    double *want = tu_alloc_d(n);
    tu_fill_normal(u, n, 61);
    tu_fill_normal(c, n, 62);
    tu_fill_normal(x, n, 63);
    const double scales[4] = {0.0, 1.0, 7.5, -0.5};
    for (int k = 0; k < 4; k++) {
        double sc = scales[k];
        for (size_t i = 0; i < n; i++) want[i] = u[i] + sc * ((double)c[i] - u[i]);  // ε = ε_u + s (ε_c − ε_u)
        mav_cfg_combine(out, u, c, sc, n);
        char what[64];
        snprintf(what, sizeof what, "cfg combine s=%g", sc);
        tu_check_close_d(what, out, want, n, 1e-12, ULP1);  // double formula rounded once
    }
    mav_cfg_combine(out, u, c, 0.0, n);
    tu_check_equal("cfg s=0 is unconditional", out, u, n);
    mav_cfg_combine(out, u, c, 1.0, n);
    tu_check_equal("cfg s=1 is conditional", out, c, n);
    memcpy(out, c, n * sizeof *out);
    mav_cfg_combine(out, u, out, 3.0, n);  // aliasing out_c
    mav_cfg_combine(out2, u, c, 3.0, n);
    tu_check_equal("cfg combine in place", out, out2, n);

    // two callbacks
    mav_cfg_pair pair = {cfg_uncond, cfg_cond, NULL, NULL, 3.0, tmp};
    cfg_u_calls = cfg_c_calls = 0;
    assert_int_equal(mav_cfg_pair_denoise(&pair, out, x, 500, n), MAV_OK);
    assert_true(cfg_u_calls == 1 && cfg_c_calls == 1);
    cfg_uncond(NULL, u, x, 500, n);
    cfg_cond(NULL, c, x, 500, n);
    mav_cfg_combine(out2, u, c, 3.0, n);
    tu_check_equal("cfg pair", out, out2, n);
    pair.scale = 1.0;
    cfg_u_calls = cfg_c_calls = 0;
    assert_int_equal(mav_cfg_pair_denoise(&pair, out, x, 500, n), MAV_OK);
    assert_true(cfg_u_calls == 0 && cfg_c_calls == 1);
    tu_check_equal("cfg pair s=1", out, c, n);
    // one doubled-batch callback gives the same bits
    int bad = 0;
    mav_cfg_batched bat = {cfg_model2, &bad, 3.0, tmp};
    assert_int_equal(mav_cfg_batched_denoise(&bat, out, x, 500, n), MAV_OK);
    assert_false(bad);
    tu_check_equal("cfg batched", out, out2, n);

    // Guiding v outputs equals guiding ε outputs (each is affine in ε at fixed x_t): compare
    // the x0 each implies at t = 300 of the cosine schedule.
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_COSINE, 1000);
    double a = mav_schedule_alpha(&s, 300), sg = mav_schedule_sigma(&s, 300);
    float *x0u = tu_alloc_f(n), *x0c = tu_alloc_f(n), *vu = tu_alloc_f(n), *vc = tu_alloc_f(n), *xe = tu_alloc_f(n),
          *xv = tu_alloc_f(n);
    tu_fill_normal(u, n, 64);  // ε_u, ε_c
    tu_fill_normal(c, n, 65);
    mav_diffusion_x0_from_pred(x0u, u, x, MAV_PREDICT_EPS, a, sg, n);
    mav_diffusion_x0_from_pred(x0c, c, x, MAV_PREDICT_EPS, a, sg, n);
    mav_diffusion_pred_from(vu, x0u, u, MAV_PREDICT_V, a, sg, n);
    mav_diffusion_pred_from(vc, x0c, c, MAV_PREDICT_V, a, sg, n);
    mav_cfg_combine(out, u, c, 4.0, n);
    mav_diffusion_x0_from_pred(xe, out, x, MAV_PREDICT_EPS, a, sg, n);
    mav_cfg_combine(out, vu, vc, 4.0, n);
    mav_diffusion_x0_from_pred(xv, out, x, MAV_PREDICT_V, a, sg, n);
    // a few f32 roundings of values ≲ 40 (|s|·|ε| terms) through conversions with gains ≤ 1/α ≈ 1.6
    tu_check_close("cfg on v == cfg on eps", xv, xe, n, 2e-5, 0);
    free(x0u); free(x0c); free(vu); free(vc); free(xe); free(xv);
    free(u); free(c); free(out); free(x); free(tmp); free(out2); free(want);
}

static void test_dynamic_threshold(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("diffusion");
    size_t n;
    float *x = tu_ref_f32(f, "dyn.x0", &n), *y = tu_alloc_f(n), *sel = tu_alloc_f(n);
    const int B = 3;
    const size_t m = n / B;
    const char *names[3] = {"p995", "p1000", "p600"};
    const double ps[3] = {0.995, 1.0, 0.6};
    for (int k = 0; k < 3; k++) {
        char name[64];
        snprintf(name, sizeof name, "dyn.q_%s", names[k]);
        double *qref = tu_ref_f64(f, name, NULL), q[3];
        for (int b = 0; b < B; b++) q[b] = mav_abs_quantile(x + (size_t)b * m, m, ps[k], sel);
        // interpolation between the same two f32 values in double (torch.lerp's form differs): 1e-14 relative
        tu_check_close_dd(name, q, qref, 3, 0, 1e-14);
        snprintf(name, sizeof name, "dyn.out_%s", names[k]);
        double *oref = tu_ref_f64(f, name, NULL);
        memcpy(y, x, n * sizeof *y);
        mav_x0_process(y, n, B, MAV_X0_DYNAMIC, ps[k], sel);
        tu_check_close_d(name, y, oref, n, 1e-12, ULP1);  // clip and divide in double, rounded once
        free(qref);
        free(oref);
    }
    // sample 0 lies inside [-1, 1]: s = max(1, q) = 1 leaves it bit-identical
    memcpy(y, x, n * sizeof *y);
    mav_x0_process(y, n, B, MAV_X0_DYNAMIC, 0.995, sel);
    tu_check_equal("dynamic threshold leaves an in-range sample alone", y, x, m);
    // static clipping
    memcpy(y, x, n * sizeof *y);
    mav_x0_process(y, n, B, MAV_X0_CLIP, 0, NULL);
    for (size_t i = 0; i < n; i++) {
        float w = x[i] < -1 ? -1.0f : x[i] > 1 ? 1.0f : x[i];
        if (memcmp(&y[i], &w, sizeof w) != 0) fail_msg("clip at %zu: %g -> %g", i, x[i], y[i]);
    }
    memcpy(y, x, n * sizeof *y);
    mav_x0_process(y, n, B, MAV_X0_NONE, 0, NULL);
    tu_check_equal("x0 mode none", y, x, n);
    free(x); free(y); free(sel);
    tu_ref_close(f);

    // quickselect vs a full sort, over awkward sizes, heavy duplicates and every p edge
    mav_rng r = mav_rng_make(71);
    float *v = tu_alloc_f(64), *w = tu_alloc_f(64);
    double *d = tu_alloc_d(64);
    const double qs[6] = {0.0, 0.3, 0.5, 0.77, 0.995, 1.0};
    for (size_t mm = 1; mm <= 64; mm++)
        for (int dup = 0; dup < 2; dup++) {
            mav_rng_normal(&r, v, mm);
            if (dup)
                for (size_t i = 0; i < mm; i++) v[i] = (float)floor(v[i] * 2);  // few distinct values
            for (size_t i = 0; i < mm; i++) d[i] = fabs((double)v[i]);
            qsort(d, mm, sizeof *d, cmp_d);
            for (int k = 0; k < 6; k++) {
                double pos = qs[k] * (double)(mm - 1);
                size_t lo = (size_t)floor(pos);
                double want = lo + 1 < mm ? d[lo] + (pos - lo) * (d[lo + 1] - d[lo]) : d[lo];
                double got = mav_abs_quantile(v, mm, qs[k], w);
                if (got != want) fail_msg("abs quantile m=%zu dup=%d p=%g: %.9g vs sorted %.9g", mm, dup, qs[k], got, want);
            }
        }
    free(v); free(w); free(d);
}

// Same seed → bit-identical samples, at 1 and 2 threads (sizes above every parallel threshold).
static void test_determinism(void **state) {
    (void)state;
    const size_t n = 70002;  // 2 samples of 35001 > 32768 (parallel loops) and n > 65536 (parallel RNG)
    float *a = tu_alloc_f(n), *b = tu_alloc_f(n), *c2 = tu_alloc_f(n);
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_COSINE, 1000);
    int saved = mav_threads_get();
    for (int kind = 0; kind < MAV_SAMPLER_COUNT; kind++) {
        mav_sampler_params p = mav_sampler_default_params((mav_sampler_kind)kind);
        p.steps = 5;
        p.eta = 0.5;
        p.batch = 2;
        p.x0_mode = MAV_X0_DYNAMIC;
        float *outs[3] = {a, b, c2};
        const int threads[3] = {1, 2, 2};
        for (int r = 0; r < 3; r++) {
            mav_threads_set(threads[r]);
            toy c = toy_make(&s, MAV_PREDICT_EPS);
            c.mu = 0.3;
            c.sd = 2.0;  // wider than [-1, 1] so the thresholding acts
            mav_rng rng = mav_rng_make(r < 2 ? 2024 : 2025);
            assert_int_equal(mav_sample(&s, &p, toy_model, &c, outs[r], n, &rng, NULL), MAV_OK);
        }
        tu_check_equal(mav_sampler_kind_name(p.kind), a, b, n);  // 1 vs 2 threads
        size_t same = 0;
        for (size_t i = 0; i < n; i++) same += a[i] == c2[i];
        if (same > n / 100) fail_msg("%s: another seed gives %zu equal values of %zu", mav_sampler_kind_name(p.kind), same, n);
    }
    mav_threads_set(saved);
    free(a); free(b); free(c2);
}

static void test_errors_and_progress(void **state) {
    (void)state;
    const size_t n = 12;
    float x[12];
    mav_schedule s;
    init_sched(&s, MAV_SCHEDULE_LINEAR, 1000);
    toy c = toy_make(&s, MAV_PREDICT_EPS);
    c.mu = 0;
    c.sd = 1;
    mav_rng rng = mav_rng_make(1);
    mav_sampler_params p = mav_sampler_default_params(MAV_SAMPLER_DDIM);
    const int bad_steps[2] = {0, 1001};
    for (int i = 0; i < 2; i++) {
        p.steps = bad_steps[i];
        assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_ERR_ARG);
    }
    p = mav_sampler_default_params(MAV_SAMPLER_DDIM);
    p.batch = 5;  // 12 % 5 != 0
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_ERR_ARG);
    p.batch = 0;
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_ERR_ARG);
    p = mav_sampler_default_params(MAV_SAMPLER_DDIM);
    p.x0_mode = MAV_X0_DYNAMIC;
    p.dyn_percentile = 0;
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_ERR_ARG);
    p = mav_sampler_default_params(MAV_SAMPLER_DDIM);
    p.eta = -1;
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_ERR_ARG);
    p = mav_sampler_default_params(MAV_SAMPLER_DDPM);
    p.init_noise = 0;
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, NULL, NULL), MAV_ERR_ARG);  // DDPM needs noise
    assert_int_equal(c.calls, 0);

    // a failing model aborts with its status and a message naming the step
    p = mav_sampler_default_params(MAV_SAMPLER_DPMPP_2M);
    p.steps = 5;
    c.fail_at = 2;
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &rng, NULL), MAV_ERR_ARG);
    assert_int_equal(c.calls, 2);
    if (!strstr(mav_last_error(), "sampler step 3/5") || !strstr(mav_last_error(), "refuses call 2"))
        fail_msg("error message: %s", mav_last_error());

    // one step: a single model call at t = T−1 and the output is that call's x0
    c = toy_make(&s, MAV_PREDICT_X0);
    c.mu = 0.25;
    c.sd = 0.1;
    p = mav_sampler_default_params(MAV_SAMPLER_DDPM);
    p.prediction = MAV_PREDICT_X0;
    p.steps = 1;
    progress_log plog = {0, 0, 0};
    p.progress = progress_cb;
    p.progress_ctx = &plog;
    mav_rng r1 = mav_rng_make(5), r2 = r1;
    assert_int_equal(mav_sample(&s, &p, toy_model, &c, x, n, &r1, NULL), MAV_OK);
    assert_true(c.calls == 1 && c.ts[0] == 999 && plog.calls == 1 && !plog.bad);
    float xT[12];
    mav_rng_normal(&r2, xT, n);
    assert_true(r1.offset == r2.offset);  // no noise drawn on the last (only) step
    double a = mav_schedule_alpha(&s, 999), sg = mav_schedule_sigma(&s, 999);
    for (size_t i = 0; i < n; i++) {
        float w = (float)toy_x0(&c, i, xT[i], a, sg);
        if (x[i] != w) fail_msg("one-step sample %zu: %g vs x0 %g", i, x[i], w);
    }

    // names
    for (int k = 0; k < MAV_SAMPLER_COUNT; k++) {
        mav_sampler_kind o;
        assert_int_equal(mav_sampler_kind_parse(mav_sampler_kind_name((mav_sampler_kind)k), &o), MAV_OK);
        assert_int_equal(o, k);
    }
    for (int k = 0; k < MAV_X0_COUNT; k++) {
        mav_x0_mode o;
        assert_int_equal(mav_x0_mode_parse(mav_x0_mode_name((mav_x0_mode)k), &o), MAV_OK);
        assert_int_equal(o, k);
    }
    for (int k = 0; k < MAV_SCHEDULE_COUNT; k++) {
        mav_schedule_kind o;
        assert_int_equal(mav_schedule_kind_parse(mav_schedule_kind_name((mav_schedule_kind)k), &o), MAV_OK);
        assert_int_equal(o, k);
    }
    for (int k = 0; k < MAV_PREDICT_COUNT; k++) {
        mav_pred_type o;
        assert_int_equal(mav_pred_type_parse(mav_pred_type_name((mav_pred_type)k), &o), MAV_OK);
        assert_int_equal(o, k);
    }
    mav_sampler_kind sk;
    mav_pred_type pk;
    assert_int_equal(mav_sampler_kind_parse("euler", &sk), MAV_ERR_ARG);
    assert_int_equal(mav_pred_type_parse("epsilon", &pk), MAV_ERR_ARG);
    assert_string_equal(mav_sampler_kind_name(MAV_SAMPLER_DPMPP_2M), "dpm++2m");
}

MAV_TEST_GROUP(diffusion,
               cmocka_unit_test(test_schedule_values),
               cmocka_unit_test(test_respace),
               cmocka_unit_test(test_q_sample_and_targets),
               cmocka_unit_test(test_conversions_roundtrip),
               cmocka_unit_test(test_ddim_step_closed_form),
               cmocka_unit_test(test_ddim_eta1_is_ddpm),
               cmocka_unit_test(test_dpmpp_step_closed_form),
               cmocka_unit_test(test_toy_point),
               cmocka_unit_test(test_toy_gaussian_ode),
               cmocka_unit_test(test_toy_gaussian_ddpm),
               cmocka_unit_test(test_sampler_wiring),
               cmocka_unit_test(test_cfg),
               cmocka_unit_test(test_dynamic_threshold),
               cmocka_unit_test(test_determinism),
               cmocka_unit_test(test_errors_and_progress))
