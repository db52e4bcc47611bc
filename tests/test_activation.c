// test_activation.c — SiLU, GELU (erf, tanh), QuickGELU forward/backward (src/ops/activation.c).
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops/activation.h"
#include "ref/ref_activation.h"
#include "testutil.h"

#define ULP 5.9604644775390625e-8  // 2⁻²⁴, the f32 unit roundoff

// Bounds in units of 2⁻²⁴ relative (defined at check_ulps; 1 f32 ulp is 1–2 units). Worst
// case by construction: the exp is ≤ 1.4 units (measured over all of [−87, 0] in 2⁻¹⁶ steps),
// then up to three more roundings (1 + e, the division, the product with x): 4.4. Measured
// over the grid below: forward ≤ 3.5, backward ≤ 2.2. A wrong constant or formula shows up as
// thousands of units.
#define FWD_ULP_BOUND 6.0
#define BWD_ULP_BOUND 6.0

// The terms f'(x) is a sum of, in magnitude: the derivative's rounding error is relative to
// these (near a zero of f', e.g. SiLU at x ≈ −1.28, the sum cancels and only an absolute
// error at the scale of its terms is meaningful).
static double deriv_scale(mav_act a, double x) {
    double s, t;
    switch (a) {
    case MAV_ACT_SILU: s = 1.0 / (1.0 + exp(-x)); return s + fabs(x) * s * (1.0 - s);
    case MAV_ACT_QUICK_GELU: s = 1.0 / (1.0 + exp(-1.702 * x)); return s + 1.702 * fabs(x) * s * (1.0 - s);
    // Φ = ½ + ½·erf(x/√2): for x < 0 the two halves cancel (as in the forward), so their
    // magnitude ½ is the scale of Φ's rounding error there.
    case MAV_ACT_GELU:
        return (x < 0 ? 0.5 : 0.0) + 0.5 * erfc(-x / sqrt(2.0)) + fabs(x) * exp(-0.5 * x * x) / sqrt(2.0 * M_PI);
    // The double references (ours and PyTorch's) form 1 + tanh u and 1 − tanh² u, which cancel
    // for |u| ≫ 1: their own absolute error is ~2⁻⁵³ per term, i.e. 2⁻²⁹ in units of 2⁻²⁴.
    case MAV_ACT_GELU_TANH:
        t = tanh(0.7978845608028654 * (x + 0.044715 * x * x * x));
        return 0.5 * (1.0 + t) + 0.5 * fabs(x) * (1.0 - t * t) * 0.7978845608028654 * (1.0 + 3 * 0.044715 * x * x) +
               0x1p-29 * (1.0 + fabs(x) * 0.7978845608028654 * (1.0 + 3 * 0.044715 * x * x));
    default: fail_msg("unknown activation"); return 0.0;
    }
}

// Slack of a forward value (see check_ulps): GELU(x) = x·Φ(x) with Φ = ½(1 + erf(x/√2)): for
// x ≪ 0 the sum cancels and an erf accurate to 1 ulp of 1 gives error ≲ |x|·2⁻²⁴·½ (as
// PyTorch's f32 kernel): slack |x|/2. GELU tanh: the double references compute ½x(1 + tanh u),
// which cancels for u ≪ 0 with error |x|·2⁻⁵³ (our kernel uses σ(2u) and does not): slack
// |x|·2⁻²⁹. All other forward values are checked as plain relative errors.
//
// Tails: σ(v) for v ≪ 0 is ≈ e^v, whose relative error is |v|·(1 − σ(v)) times the relative
// error of the argument v. For GELU tanh, v = 2·√(2/π)·x·(1 + 0.044715x²) is formed in f32 with
// ~4 roundings; for QuickGELU v = 1.702f·x has one rounding plus the f32 constant (0.2 ulp).
// Any f32 kernel (PyTorch's included) has this error; arg_sens is it in units of 2⁻²⁴.
static double arg_sens(mav_act a, double x) {
    double v, k;
    if (a == MAV_ACT_GELU_TANH) { v = 1.5957691216057308 * x * (1.0 + 0.044715 * x * x); k = 4.0; }
    else if (a == MAV_ACT_QUICK_GELU) { v = 1.702 * x; k = 2.0; }
    else return 0.0;
    return k * fabs(v) / (1.0 + exp(fmin(v, 700.0)));  // k·|v|·(1 − σ(v))
}
static double fwd_slack(mav_act a, double x, double want) {
    double s = arg_sens(a, x) * fabs(want);
    if (a == MAV_ACT_GELU && x < 0) s += 0.5 * fabs(x);
    if (a == MAV_ACT_GELU_TANH) s += 0x1p-29 * fabs(x);
    return s;
}

// Largest |got − want| in units of 2⁻²⁴·(|want| + slack_i) + 2⁻¹²⁶: relative error in f32
// ulps, where slack_i is the magnitude of the terms that cancel (0 for a plain value). The
// 2⁻¹²⁶ (FLT_MIN) floor accepts results below the normal range flushed to 0 (the kernels'
// exp does that; e.g. SiLU(−100) ≈ −3.7e−42). Fails on any non-finite result for a finite input.
static double check_ulps(const char *what, const float *x, const float *got, const double *want, const double *slack,
                         long n, double bound) {
    double worst = 0.0;
    long wi = 0;
    for (long i = 0; i < n; i++) {
        if (!isfinite(got[i])) fail_msg("%s: non-finite result %g at x = %.9g", what, got[i], x[i]);
        double u = fabs(got[i] - want[i]) / (ULP * (fabs(want[i]) + (slack ? slack[i] : 0.0)) + FLT_MIN);
        if (u > worst) { worst = u; wi = i; }
    }
    if (worst > bound)
        fail_msg("%s: error %.3g units (bound %g) at x = %.9g: got %.9g want %.17g", what, worst, bound, x[wi], got[wi],
                 want[wi]);
    return worst;
}

// x over [−30, 30] in steps of 1/256 (every binade of f'(x) ≠ 0 sampled), ±2^k for tiny to huge
// k, and specials. Returns the count.
static long make_grid(float *x, long cap) {
    long n = 0;
    for (long i = -30 * 256; i <= 30 * 256; i++) x[n++] = (float)i / 256.0f + 1e-3f * (float)(i % 7);
    for (int k = -140; k <= 100; k += 3) { x[n++] = ldexpf(1.3f, k); x[n++] = -ldexpf(1.3f, k); }
    const float sp[] = {0.0f, -0.0f, 100.0f, -100.0f, 1e4f, -1e4f, 1e30f, -1e30f, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN};
    for (size_t k = 0; k < sizeof sp / sizeof sp[0]; k++) x[n++] = sp[k];
    if (n > cap) fail_msg("grid overflow");
    return n;
}

// (a) The double reference's derivative vs central differences (eps 1e-6: truncation error
// ~eps²·f''' ≈ 1e-12, rounding ~1e-16/eps = 1e-10; tol 1e-6 leaves room and still catches
// any wrong term, which is O(0.01–1)).
typedef struct { mav_act a; double *x, *w; long n; } act_ctx;
static double act_loss(void *p) {
    act_ctx *c = p;
    double s = 0.0;
    for (long i = 0; i < c->n; i++) s += c->w[i] * ref_act_value(c->a, c->x[i]);
    return s;
}
static void test_ref_gradcheck(void **state) {
    (void)state;
    enum { n = 61 };
    double x[n], w[n], g[n];
    float wf[n];
    tu_fill_normal(wf, n, 7);
    for (int i = 0; i < n; i++) { x[i] = -6.0 + 12.0 * i / (n - 1) + 0.013; w[i] = wf[i]; }
    for (int a = 0; a < MAV_ACT_COUNT; a++) {
        act_ctx c = {(mav_act)a, x, w, n};
        ref_act_backward((mav_act)a, g, w, x, n);
        tu_gradcheck(mav_act_name((mav_act)a), act_loss, &c, x, n, g, 1e-6, 1e-6, n);
    }
}

// (b) f32 kernels vs the double reference over the grid: forward and backward (dout = 1 so
// the derivative itself is measured), in-place calls bit-identical to out-of-place.
static void test_vs_double(void **state) {
    (void)state;
    enum { cap = 16000 };
    float *x = tu_alloc_f(cap), *y = tu_alloc_f(cap), *yi = tu_alloc_f(cap), *ones = tu_alloc_f(cap);
    float *dx = tu_alloc_f(cap);
    double *want = tu_alloc_d(cap), *slack = tu_alloc_d(cap), *xd = tu_alloc_d(cap), *od = tu_alloc_d(cap);
    long n = make_grid(x, cap);
    for (long i = 0; i < n; i++) { xd[i] = x[i]; ones[i] = 1.0f; od[i] = 1.0; }
    for (int a = 0; a < MAV_ACT_COUNT; a++) {
        mav_act act = (mav_act)a;
        char what[64];
        mav_act_forward(act, y, x, n);
        ref_act_forward(act, want, xd, n);
        for (long i = 0; i < n; i++) slack[i] = fwd_slack(act, x[i], want[i]);
        snprintf(what, sizeof what, "%s forward", mav_act_name(act));
        double ef = check_ulps(what, x, y, want, slack, n, FWD_ULP_BOUND);
        memcpy(yi, x, (size_t)n * sizeof(float));
        mav_act_forward(act, yi, yi, n);
        snprintf(what, sizeof what, "%s forward in place", mav_act_name(act));
        tu_check_equal(what, yi, y, (size_t)n);
        // Backward, slack = the magnitude of the terms of f'(x), as at deriv_scale.
        mav_act_backward(act, dx, ones, x, n);
        ref_act_backward(act, want, od, xd, n);
        for (long i = 0; i < n; i++) {
            double xc = fmax(fmin(xd[i], 1e3), -1e3);
            slack[i] = deriv_scale(act, xc) * (1.0 + arg_sens(act, xc));
        }
        snprintf(what, sizeof what, "%s backward", mav_act_name(act));
        double eb = check_ulps(what, x, dx, want, slack, n, BWD_ULP_BOUND);
        printf("    %-10s max error: forward %.2f, backward %.2f units of 2^-24\n", mav_act_name(act), ef, eb);
        // dinp == dout with dout = 1 must equal the derivative computed above.
        memcpy(yi, ones, (size_t)n * sizeof(float));
        mav_act_backward(act, yi, yi, x, n);
        snprintf(what, sizeof what, "%s backward in place", mav_act_name(act));
        tu_check_equal(what, yi, dx, (size_t)n);
    }
    free(x); free(y); free(yi); free(ones); free(dx); free(want); free(slack); free(xd); free(od);
}

// Awkward lengths: the < 8 tail goes through a padded copy and the long path through
// OpenMP; both must give exactly the per-element results of one long call.
static void test_lengths(void **state) {
    (void)state;
    enum { big = 70001 };  // > the parallel threshold, not a multiple of 8
    float *x = tu_alloc_f(big), *dy = tu_alloc_f(big), *y = tu_alloc_f(big), *g = tu_alloc_f(big);
    float *ys = tu_alloc_f(big), *gs = tu_alloc_f(big);
    tu_fill_normal(x, big, 11);
    tu_fill_normal(dy, big, 12);
    for (int a = 0; a < MAV_ACT_COUNT; a++) {
        mav_act act = (mav_act)a;
        mav_act_forward(act, y, x, big);
        mav_act_backward(act, g, dy, x, big);
        for (long len = 0; len <= 19; len++) {
            long off = 3 * len;  // unaligned starts
            mav_act_forward(act, ys, x + off, len);
            mav_act_backward(act, gs, dy + off, x + off, len);
            tu_check_equal("short forward", ys, y + off, (size_t)len);
            tu_check_equal("short backward", gs, g + off, (size_t)len);
        }
        // dout scales the derivative elementwise: compare with dy·f'(x) in double.
        double *xd = tu_to_d(x, big), *dd = tu_to_d(dy, big), *want = tu_alloc_d(big);
        ref_act_backward(act, want, dd, xd, big);
        // |dy|·|f'| ≤ ~4·1.2 here; 1e-6 absolute = a few ulps of the largest terms (measured
        // relative errors above are ≤ 3 units of 2⁻²⁴ on each factor).
        tu_check_close_d("backward with dout", g, want, big, 1e-6, 1e-6);
        free(xd); free(dd); free(want);
    }
    free(x); free(dy); free(y); free(g); free(ys); free(gs);
}

// (c) PyTorch (float64 from the same f32 inputs; tests/reference/ops_activation.py).
static void test_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("activation");
    size_t n, nd;
    float *x = tu_ref_f32(f, "x", &n), *dout = tu_ref_f32(f, "dout", &nd);
    assert_int_equal(n, nd);
    float *y = tu_alloc_f(n), *dx = tu_alloc_f(n);
    double *slack = tu_alloc_d(n);
    for (int a = 0; a < MAV_ACT_COUNT; a++) {
        mav_act act = (mav_act)a;
        char name[64], what[64];
        snprintf(name, sizeof name, "%s.out", mav_act_name(act));
        double *want = tu_ref_f64(f, name, NULL);
        mav_act_forward(act, y, x, (long)n);
        for (size_t i = 0; i < n; i++) slack[i] = fwd_slack(act, x[i], want[i]);
        snprintf(what, sizeof what, "%s forward vs torch", mav_act_name(act));
        check_ulps(what, x, y, want, slack, (long)n, FWD_ULP_BOUND);
        free(want);
        snprintf(name, sizeof name, "%s.dinp", mav_act_name(act));
        want = tu_ref_f64(f, name, NULL);
        mav_act_backward(act, dx, dout, x, (long)n);
        for (size_t i = 0; i < n; i++) {
            double xc = fmax(fmin(x[i], 1e3), -1e3);
            slack[i] = fabs(dout[i]) * deriv_scale(act, xc) * (1.0 + arg_sens(act, xc));
        }
        snprintf(what, sizeof what, "%s backward vs torch", mav_act_name(act));
        // One more rounding (the product with dout) than the dout = 1 check: +1 unit.
        check_ulps(what, x, dx, want, slack, (long)n, BWD_ULP_BOUND + 1.0);
        free(want);
    }
    free(x); free(dout); free(y); free(dx); free(slack);
    tu_ref_close(f);
}

static void test_names(void **state) {
    (void)state;
    for (int a = 0; a < MAV_ACT_COUNT; a++) assert_int_equal(mav_act_from_name(mav_act_name((mav_act)a)), a);
    assert_int_equal(mav_act_from_name("relu"), -1);
}

MAV_TEST_GROUP(activation, cmocka_unit_test(test_ref_gradcheck), cmocka_unit_test(test_vs_double),
               cmocka_unit_test(test_lengths), cmocka_unit_test(test_torch), cmocka_unit_test(test_names))
