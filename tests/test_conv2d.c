// test_conv2d.c — conv2d forward/backward: reference vs finite differences, optimised f32 vs the
// double reference over awkward shapes and thread counts, and vs PyTorch (ops_conv.py).
//
// Tolerances. Every f32 result is a sum of n products of f32 inputs (the reference sees the same
// f32 values in double, so input rounding plays no part). Whatever order the GEMM adds them in,
// the rounding error of such a sum is at most γ_n·Σ|terms| with γ_n ≈ n·2⁻²⁴ (Higham, Thm 3.1;
// FMA only tightens it). We compute Σ|terms| exactly per element by running the double reference
// on absolute values, and allow (n + slack)·2⁻²⁴·max Σ|terms| with slack = threads + 4 covering the
// bias add, the += into an existing gradient, the partial-sum reduction over threads and the final
// rounding to f32. This is a worst-case bound, still ~10⁻⁵ of a typical value: any indexing bug
// (a dropped or misplaced tap) is orders of magnitude above it.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "ops/conv2d.h"
#include "ref/ref_conv.h"
#include "testutil.h"

#define U24 (1.0 / 16777216.0)  // 2⁻²⁴, unit roundoff of f32

static size_t in_numel(const mav_conv2d_shape *s) { return (size_t)s->N * s->C_in * s->H * s->W; }
static size_t out_numel(const mav_conv2d_shape *s) {
    return (size_t)s->N * s->C_out * mav_conv2d_out_h(s) * mav_conv2d_out_w(s);
}
static size_t w_numel(const mav_conv2d_shape *s) { return (size_t)s->C_out * s->C_in * s->kh * s->kw; }

static double *abs_d(const double *x, size_t n) {
    double *a = tu_alloc_d(n);
    for (size_t i = 0; i < n; i++) a[i] = fabs(x[i]);
    return a;
}
static double max_d(const double *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}
// Worst-case f32 error of sums of n_terms products whose absolute sums are abs_sum[0..n).
static double sum_bound(size_t n_terms, int threads, const double *abs_sum, size_t n) {
    return (double)(n_terms + (size_t)threads + 4) * U24 * max_d(abs_sum, n);
}

// Reference outputs and the Σ|terms| of every output/gradient element, for one set of inputs.
typedef struct {
    double *out, *dinp, *dw, *db;              // exact (double) results; dw/db start from dw0/db0
    double *aout, *adinp, *adw, *adb;          // Σ|terms| per element (dw/db include |dw0|/|db0|)
} ref_results;

static ref_results ref_compute(const mav_conv2d_shape *s, const float *inp, const float *w, const float *b,
                               const float *dout, const float *dw0, const float *db0) {
    size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
    double *di = tu_to_d(inp, ni), *dwt = tu_to_d(w, nw), *dbs = b ? tu_to_d(b, nb) : NULL, *dd = tu_to_d(dout, no);
    double *ai = abs_d(di, ni), *aw = abs_d(dwt, nw), *ab = dbs ? abs_d(dbs, nb) : NULL, *ad = abs_d(dd, no);
    ref_results r = {tu_alloc_d(no), tu_alloc_d(ni), tu_to_d(dw0, nw), tu_to_d(db0, nb),
                     tu_alloc_d(no), tu_alloc_d(ni), tu_to_d(dw0, nw), tu_to_d(db0, nb)};
    for (size_t i = 0; i < nw; i++) r.adw[i] = fabs(r.adw[i]);
    for (size_t i = 0; i < nb; i++) r.adb[i] = fabs(r.adb[i]);
    ref_conv2d_forward(r.out, di, dwt, dbs, s);
    ref_conv2d_backward(r.dinp, r.dw, r.db, dd, di, dwt, s);
    ref_conv2d_forward(r.aout, ai, aw, ab, s);
    ref_conv2d_backward(r.adinp, r.adw, r.adb, ad, ai, aw, s);
    free(di); free(dwt); free(dbs); free(dd); free(ai); free(aw); free(ab); free(ad);
    return r;
}
static void ref_free(ref_results *r) {
    free(r->out); free(r->dinp); free(r->dw); free(r->db);
    free(r->aout); free(r->adinp); free(r->adw); free(r->adb);
}

// Checks the f32 op against ref results r; inp..db0 are the inputs r was computed from.
static void check_op(const char *tag, const mav_conv2d_shape *s, int threads, const float *inp, const float *w,
                     const float *b, const float *dout, const float *dw0, const float *db0, const ref_results *r) {
    size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
    size_t K = (size_t)s->C_in * s->kh * s->kw, L = (size_t)mav_conv2d_out_h(s) * mav_conv2d_out_w(s);
    float *scratch = malloc(sizeof(float) * (mav_conv2d_scratch_floats(s) + 1));  // exact size: ASan sees overruns
    assert_non_null(scratch);
    float *out = tu_alloc_f(no), *dinp = tu_alloc_f(ni), *dw = tu_alloc_f(nw), *db = tu_alloc_f(nb);
    char what[160];

    mav_conv2d_forward(out, inp, w, b, s, scratch);
    snprintf(what, sizeof what, "%s: out", tag);
    tu_check_close_d(what, out, r->out, no, sum_bound(K + 1, threads, r->aout, no), 0.0);

    for (size_t i = 0; i < ni; i++) dinp[i] = NAN;  // dinp is written, never read
    memcpy(dw, dw0, sizeof(float) * nw);
    memcpy(db, db0, sizeof(float) * nb);
    mav_conv2d_backward(dinp, dw, db, dout, inp, w, s, scratch);
    snprintf(what, sizeof what, "%s: dinp", tag);
    tu_check_close_d(what, dinp, r->dinp, ni, sum_bound((size_t)s->C_out * s->kh * s->kw, threads, r->adinp, ni), 0.0);
    snprintf(what, sizeof what, "%s: dweight", tag);
    tu_check_close_d(what, dw, r->dw, nw, sum_bound((size_t)s->N * L + 1, threads, r->adw, nw), 0.0);
    snprintf(what, sizeof what, "%s: dbias", tag);
    tu_check_close_d(what, db, r->db, nb, sum_bound((size_t)s->N * L + 1, threads, r->adb, nb), 0.0);

    // Determinism and NULL-skipping: a second run, and runs with single gradients, are bit-identical.
    float *out2 = tu_alloc_f(no), *dinp2 = tu_alloc_f(ni), *dw2 = tu_alloc_f(nw), *db2 = tu_alloc_f(nb);
    mav_conv2d_forward(out2, inp, w, b, s, scratch);
    snprintf(what, sizeof what, "%s: out rerun", tag);
    tu_check_equal(what, out2, out, no);
    mav_conv2d_backward(dinp2, NULL, NULL, dout, inp, w, s, scratch);
    snprintf(what, sizeof what, "%s: dinp alone", tag);
    tu_check_equal(what, dinp2, dinp, ni);
    memcpy(dw2, dw0, sizeof(float) * nw);
    mav_conv2d_backward(NULL, dw2, NULL, dout, inp, w, s, scratch);
    snprintf(what, sizeof what, "%s: dweight alone", tag);
    tu_check_equal(what, dw2, dw, nw);
    memcpy(db2, db0, sizeof(float) * nb);
    mav_conv2d_backward(NULL, NULL, db2, dout, inp, w, s, scratch);
    snprintf(what, sizeof what, "%s: dbias alone", tag);
    tu_check_equal(what, db2, db, nb);

    free(out2); free(dinp2); free(dw2); free(db2);
    free(out); free(dinp); free(dw); free(db); free(scratch);
}

// ---- 1. reference backward vs finite differences ----

typedef struct {
    const mav_conv2d_shape *s;
    double *inp, *w, *b, *dout, *out;
} fd_ctx;

static double fd_loss(void *p) {  // Σ out · dout, in double
    fd_ctx *c = p;
    ref_conv2d_forward(c->out, c->inp, c->w, c->b, c->s);
    double l = 0.0;
    for (size_t i = 0; i < out_numel(c->s); i++) l += c->out[i] * c->dout[i];
    return l;
}

static void test_ref_gradcheck(void **state) {
    (void)state;
    const mav_conv2d_shape shapes[] = {
        {2, 2, 5, 4, 3, 3, 3, 2, 1},  // stride 2, pad 1
        {1, 3, 4, 5, 2, 2, 2, 1, 1},  // even kernel with padding: output larger than input
        {2, 1, 3, 3, 2, 1, 1, 1, 0},  // 1×1
    };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const mav_conv2d_shape *s = &shapes[t];
        size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
        fd_ctx c = {s, tu_alloc_d(ni), tu_alloc_d(nw), tu_alloc_d(nb), tu_alloc_d(no), tu_alloc_d(no)};
        mav_rng r = mav_rng_make(100 + t);
        mav_rng_normal_d(&r, c.inp, ni);
        mav_rng_normal_d(&r, c.w, nw);
        mav_rng_normal_d(&r, c.b, nb);
        mav_rng_normal_d(&r, c.dout, no);
        double *gi = tu_alloc_d(ni), *gw = tu_alloc_d(nw), *gb = tu_alloc_d(nb);
        ref_conv2d_backward(gi, gw, gb, c.dout, c.inp, c.w, s);
        // The loss is linear in each input, so central differences are exact up to rounding
        // (~1e-16·|loss|/eps ≈ 1e-9 here): tol 1e-6 (relative to max(1, |g|)) is safe and sharp.
        tu_gradcheck("ref conv2d dinp", fd_loss, &c, c.inp, ni, gi, 1e-6, 1e-6, 200);
        tu_gradcheck("ref conv2d dweight", fd_loss, &c, c.w, nw, gw, 1e-6, 1e-6, 200);
        tu_gradcheck("ref conv2d dbias", fd_loss, &c, c.b, nb, gb, 1e-6, 1e-6, 200);
        free(gi); free(gw); free(gb);
        free(c.inp); free(c.w); free(c.b); free(c.dout); free(c.out);
    }
}

// ---- 2. optimised f32 vs the double reference ----

static void run_vs_ref(const mav_conv2d_shape *s, uint64_t seed) {
    size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
    size_t K = (size_t)s->C_in * s->kh * s->kw;
    float *inp = tu_alloc_f(ni), *w = tu_alloc_f(nw), *b = tu_alloc_f(nb), *dout = tu_alloc_f(no);
    float *dw0 = tu_alloc_f(nw), *db0 = tu_alloc_f(nb);
    tu_fill_normal(inp, ni, seed);
    tu_fill_normal(w, nw, seed + 1);
    for (size_t i = 0; i < nw; i++) w[i] /= sqrtf((float)K);
    tu_fill_normal(b, nb, seed + 2);
    tu_fill_normal(dout, no, seed + 3);
    tu_fill_normal(dw0, nw, seed + 4);  // gradients accumulate: start from non-zero values
    tu_fill_normal(db0, nb, seed + 5);
    ref_results r = ref_compute(s, inp, w, b, dout, dw0, db0);

    int saved_threads = mav_threads_get();
    size_t saved_budget = mav_conv2d_col_budget;
    size_t band2 = K * (size_t)mav_conv2d_out_w(s) * 2;  // two output rows per im2col band
    // (threads, column budget): images over threads or one at a time (N < T, N mod T leftovers),
    // whole-image columns, 2-row bands and 1-row bands.
    const struct { int threads; size_t budget; } runs[] = {{1, saved_budget}, {2, saved_budget}, {3, band2}, {2, 1}};
    for (size_t k = 0; k < sizeof runs / sizeof runs[0]; k++) {
        mav_threads_set(runs[k].threads);
        mav_conv2d_col_budget = runs[k].budget;
        char tag[160];
        snprintf(tag, sizeof tag, "N%d Ci%d %dx%d Co%d k%dx%d s%d p%d T%d budget%zu", s->N, s->C_in, s->H, s->W,
                 s->C_out, s->kh, s->kw, s->stride, s->pad, runs[k].threads, runs[k].budget);
        check_op(tag, s, runs[k].threads, inp, w, b, dout, dw0, db0, &r);
    }
    mav_conv2d_col_budget = saved_budget;
    mav_threads_set(saved_threads);

    // bias NULL: the output is the conv alone
    {
        float *scratch = malloc(sizeof(float) * (mav_conv2d_scratch_floats(s) + 1)), *out = tu_alloc_f(no);
        double *want = tu_alloc_d(no);
        for (size_t i = 0; i < no; i++) want[i] = r.out[i] - b[(i / ((size_t)mav_conv2d_out_h(s) * mav_conv2d_out_w(s))) % nb];
        mav_conv2d_forward(out, inp, w, NULL, s, scratch);
        tu_check_close_d("out without bias", out, want, no, sum_bound(K + 2, saved_threads, r.aout, no), 0.0);
        free(scratch); free(out); free(want);
    }
    ref_free(&r);
    free(inp); free(w); free(b); free(dout); free(dw0); free(db0);
}

static void test_vs_ref(void **state) {
    (void)state;
    // {N, C_in, H, W, C_out, kh, kw, stride, pad}
    const mav_conv2d_shape shapes[] = {
        {1, 1, 7, 5, 3, 3, 3, 1, 1},   // N = 1, C_in = 1, odd H×W
        {3, 2, 7, 5, 5, 3, 3, 2, 1},   // stride 2 (downsample), odd sizes
        {2, 3, 6, 7, 9, 1, 1, 1, 0},   // 1×1 direct GEMM path, C_out not a multiple of 8
        {3, 4, 5, 5, 2, 1, 1, 2, 0},   // 1×1 stride 2: general path
        {2, 2, 8, 7, 3, 5, 5, 1, 2},   // 5×5 pad 2
        {2, 3, 9, 6, 4, 2, 2, 1, 0},   // even kernel
        {5, 2, 8, 9, 3, 4, 4, 2, 2},   // even kernel, stride 2, pad 2; N = 5 (leftover images)
        {4, 3, 6, 5, 11, 3, 3, 1, 0},  // no padding
        {2, 2, 3, 3, 3, 5, 5, 1, 2},   // kernel larger than the image
        {3, 2, 1, 1, 3, 3, 3, 1, 1},   // 1×1 image, only the centre tap is inside
        {2, 2, 7, 7, 3, 3, 3, 2, 0},   // stride 2 without padding
        {1, 5, 4, 9, 7, 3, 1, 1, 1},   // non-square kernel 3×1
    };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) run_vs_ref(&shapes[t], 1000 + 10 * t);
}

// ---- 3. optimised f32 vs PyTorch ----

static void test_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("conv2d");
    const char *cases[] = {"s1k3", "s2k3", "s1k1", "s2k4", "s1k5"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64], what[96];
#define T_(suffix) (snprintf(name, sizeof name, "%s." suffix, cases[c]), name)
        const char *st = mav_st_meta(f, T_("stride"));
        const char *pd = mav_st_meta(f, T_("pad"));
        if (!st || !pd) fail_msg("conv2d reference: metadata for %s missing", cases[c]);
        mav_conv2d_shape s;
        s.N = (int)tu_ref_dim(f, T_("inp"), 0);
        s.C_in = (int)tu_ref_dim(f, T_("inp"), 1);
        s.H = (int)tu_ref_dim(f, T_("inp"), 2);
        s.W = (int)tu_ref_dim(f, T_("inp"), 3);
        s.C_out = (int)tu_ref_dim(f, T_("weight"), 0);
        s.kh = (int)tu_ref_dim(f, T_("weight"), 2);
        s.kw = (int)tu_ref_dim(f, T_("weight"), 3);
        s.stride = atoi(st);
        s.pad = atoi(pd);
        size_t ni = in_numel(&s), no = out_numel(&s), nw = w_numel(&s), nb = (size_t)s.C_out, n;
        float *inp = tu_ref_f32(f, T_("inp"), &n);
        assert_int_equal(n, ni);
        float *w = tu_ref_f32(f, T_("weight"), NULL), *b = tu_ref_f32(f, T_("bias"), NULL);
        float *dout = tu_ref_f32(f, T_("dout"), &n);
        assert_int_equal(n, no);
        double *t_out = tu_ref_f64(f, T_("out"), NULL), *t_dinp = tu_ref_f64(f, T_("dinp"), NULL);
        double *t_dw = tu_ref_f64(f, T_("dweight"), NULL), *t_db = tu_ref_f64(f, T_("dbias"), NULL);
#undef T_
        float *zw = tu_alloc_f(nw), *zb = tu_alloc_f(nb);
        ref_results r = ref_compute(&s, inp, w, b, dout, zw, zb);
        // Our double reference against PyTorch's float64: same math, different summation
        // order, so they agree to ~1e-15 relative; 1e-12 absolute on O(1) values is ample.
        snprintf(what, sizeof what, "%s: reference out vs torch", cases[c]);
        tu_check_close_dd(what, r.out, t_out, no, 1e-12, 1e-12);
        snprintf(what, sizeof what, "%s: reference dinp vs torch", cases[c]);
        tu_check_close_dd(what, r.dinp, t_dinp, ni, 1e-12, 1e-12);
        snprintf(what, sizeof what, "%s: reference dweight vs torch", cases[c]);
        tu_check_close_dd(what, r.dw, t_dw, nw, 1e-12, 1e-12);
        snprintf(what, sizeof what, "%s: reference dbias vs torch", cases[c]);
        tu_check_close_dd(what, r.db, t_db, nb, 1e-12, 1e-12);
        // The f32 op against torch's float64 results, with the worst-case rounding bound (top of file).
        memcpy(r.out, t_out, sizeof(double) * no);
        memcpy(r.dinp, t_dinp, sizeof(double) * ni);
        memcpy(r.dw, t_dw, sizeof(double) * nw);
        memcpy(r.db, t_db, sizeof(double) * nb);
        snprintf(what, sizeof what, "torch %s", cases[c]);
        check_op(what, &s, mav_threads_get(), inp, w, b, dout, zw, zb, &r);
        ref_free(&r);
        free(inp); free(w); free(b); free(dout); free(zw); free(zb);
        free(t_out); free(t_dinp); free(t_dw); free(t_db);
    }
    tu_ref_close(f);
}

// Output size formula, including the U-Net shapes (SPEC §3: 3×3 pad 1; downsample stride 2 pad 1).
static void test_out_size(void **state) {
    (void)state;
    mav_conv2d_shape s = {1, 1, 64, 63, 1, 3, 3, 1, 1};
    assert_int_equal(mav_conv2d_out_h(&s), 64);
    assert_int_equal(mav_conv2d_out_w(&s), 63);
    s.stride = 2;
    assert_int_equal(mav_conv2d_out_h(&s), 32);
    assert_int_equal(mav_conv2d_out_w(&s), 32);
    s = (mav_conv2d_shape){1, 1, 8, 7, 1, 4, 4, 2, 2};  // (8+4−4)/2+1 = 5, (7+4−4)/2+1 = 4
    assert_int_equal(mav_conv2d_out_h(&s), 5);
    assert_int_equal(mav_conv2d_out_w(&s), 4);
}

MAV_TEST_GROUP(conv2d, cmocka_unit_test(test_out_size), cmocka_unit_test(test_ref_gradcheck),
               cmocka_unit_test(test_vs_ref), cmocka_unit_test(test_vs_torch))
