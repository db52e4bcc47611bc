// test_tconv.c — temporal conv (kernel 3 over frames) forward/backward: reference vs finite
// differences, optimised f32 vs the double reference over awkward shapes and thread counts,
// and vs PyTorch's conv3d with kernel (3, 1, 1) (ops_conv.py).
//
// Tolerances: as in test_conv2d.c. Each f32 result is a sum of n products of f32 values
// (forward n = 3·C_in + bias, dinp n = 3·C_out, dweight/dbias n = B·F·P + the initial value);
// its rounding error is at most γ_n·Σ|terms|, γ_n ≈ n·2⁻²⁴, whatever the summation order.
// Σ|terms| is computed exactly by the double reference on absolute values; we allow
// (n + threads + 4)·2⁻²⁴·max Σ|terms| (slack: thread partial sums, += and final rounding).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "ops/tconv.h"
#include "ref/ref_conv.h"
#include "testutil.h"

#define U24 (1.0 / 16777216.0)  // 2⁻²⁴, unit roundoff of f32

typedef struct { int B, F, C_in, C_out; long P; } tshape;

static size_t in_numel(const tshape *s) { return (size_t)s->B * s->F * s->C_in * (size_t)s->P; }
static size_t out_numel(const tshape *s) { return (size_t)s->B * s->F * s->C_out * (size_t)s->P; }
static size_t w_numel(const tshape *s) { return (size_t)s->C_out * s->C_in * 3; }

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
static double sum_bound(size_t n_terms, int threads, const double *abs_sum, size_t n) {
    return (double)(n_terms + (size_t)threads + 4) * U24 * max_d(abs_sum, n);
}

typedef struct {
    double *out, *dinp, *dw, *db;      // exact results; dw/db start from dw0/db0
    double *aout, *adinp, *adw, *adb;  // Σ|terms| per element
} ref_results;

static ref_results ref_compute(const tshape *s, const float *inp, const float *w, const float *b, const float *dout,
                               const float *dw0, const float *db0) {
    size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
    double *di = tu_to_d(inp, ni), *dwt = tu_to_d(w, nw), *dbs = tu_to_d(b, nb), *dd = tu_to_d(dout, no);
    double *ai = abs_d(di, ni), *aw = abs_d(dwt, nw), *ab = abs_d(dbs, nb), *ad = abs_d(dd, no);
    ref_results r = {tu_alloc_d(no), tu_alloc_d(ni), tu_to_d(dw0, nw), tu_to_d(db0, nb),
                     tu_alloc_d(no), tu_alloc_d(ni), tu_to_d(dw0, nw), tu_to_d(db0, nb)};
    for (size_t i = 0; i < nw; i++) r.adw[i] = fabs(r.adw[i]);
    for (size_t i = 0; i < nb; i++) r.adb[i] = fabs(r.adb[i]);
    ref_tconv_forward(r.out, di, dwt, dbs, s->B, s->F, s->C_in, s->C_out, s->P);
    ref_tconv_backward(r.dinp, r.dw, r.db, dd, di, dwt, s->B, s->F, s->C_in, s->C_out, s->P);
    ref_tconv_forward(r.aout, ai, aw, ab, s->B, s->F, s->C_in, s->C_out, s->P);
    ref_tconv_backward(r.adinp, r.adw, r.adb, ad, ai, aw, s->B, s->F, s->C_in, s->C_out, s->P);
    free(di); free(dwt); free(dbs); free(dd); free(ai); free(aw); free(ab); free(ad);
    return r;
}
static void ref_free(ref_results *r) {
    free(r->out); free(r->dinp); free(r->dw); free(r->db);
    free(r->aout); free(r->adinp); free(r->adw); free(r->adb);
}

static void check_op(const char *tag, const tshape *s, int threads, const float *inp, const float *w, const float *b,
                     const float *dout, const float *dw0, const float *db0, const ref_results *r) {
    size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
    size_t red = (size_t)s->B * s->F * (size_t)s->P;  // terms in each dweight/dbias element
    float *scratch = malloc(sizeof(float) * (mav_tconv_scratch_floats(s->B, s->F, s->C_in, s->C_out, s->P) + 1));
    assert_non_null(scratch);
    float *out = tu_alloc_f(no), *dinp = tu_alloc_f(ni), *dw = tu_alloc_f(nw), *db = tu_alloc_f(nb);
    char what[160];

    mav_tconv_forward(out, inp, w, b, s->B, s->F, s->C_in, s->C_out, s->P, scratch);
    snprintf(what, sizeof what, "%s: out", tag);
    tu_check_close_d(what, out, r->out, no, sum_bound(3 * (size_t)s->C_in + 1, threads, r->aout, no), 0.0);

    for (size_t i = 0; i < ni; i++) dinp[i] = NAN;  // written, never read
    memcpy(dw, dw0, sizeof(float) * nw);
    memcpy(db, db0, sizeof(float) * nb);
    mav_tconv_backward(dinp, dw, db, dout, inp, w, s->B, s->F, s->C_in, s->C_out, s->P, scratch);
    snprintf(what, sizeof what, "%s: dinp", tag);
    tu_check_close_d(what, dinp, r->dinp, ni, sum_bound(3 * (size_t)s->C_out, threads, r->adinp, ni), 0.0);
    snprintf(what, sizeof what, "%s: dweight", tag);
    tu_check_close_d(what, dw, r->dw, nw, sum_bound(red + 1, threads, r->adw, nw), 0.0);
    snprintf(what, sizeof what, "%s: dbias", tag);
    tu_check_close_d(what, db, r->db, nb, sum_bound(red + 1, threads, r->adb, nb), 0.0);

    // Determinism and NULL-skipping: reruns and single-gradient runs are bit-identical.
    float *out2 = tu_alloc_f(no), *dinp2 = tu_alloc_f(ni), *dw2 = tu_alloc_f(nw), *db2 = tu_alloc_f(nb);
    mav_tconv_forward(out2, inp, w, b, s->B, s->F, s->C_in, s->C_out, s->P, scratch);
    snprintf(what, sizeof what, "%s: out rerun", tag);
    tu_check_equal(what, out2, out, no);
    mav_tconv_backward(dinp2, NULL, NULL, dout, inp, w, s->B, s->F, s->C_in, s->C_out, s->P, scratch);
    snprintf(what, sizeof what, "%s: dinp alone", tag);
    tu_check_equal(what, dinp2, dinp, ni);
    memcpy(dw2, dw0, sizeof(float) * nw);
    mav_tconv_backward(NULL, dw2, NULL, dout, inp, w, s->B, s->F, s->C_in, s->C_out, s->P, scratch);
    snprintf(what, sizeof what, "%s: dweight alone", tag);
    tu_check_equal(what, dw2, dw, nw);
    memcpy(db2, db0, sizeof(float) * nb);
    mav_tconv_backward(NULL, NULL, db2, dout, inp, w, s->B, s->F, s->C_in, s->C_out, s->P, scratch);
    snprintf(what, sizeof what, "%s: dbias alone", tag);
    tu_check_equal(what, db2, db, nb);

    free(out2); free(dinp2); free(dw2); free(db2);
    free(out); free(dinp); free(dw); free(db); free(scratch);
}

// ---- 1. reference backward vs finite differences ----

typedef struct {
    const tshape *s;
    double *inp, *w, *b, *dout, *out;
} fd_ctx;

static double fd_loss(void *p) {  // Σ out · dout, in double
    fd_ctx *c = p;
    ref_tconv_forward(c->out, c->inp, c->w, c->b, c->s->B, c->s->F, c->s->C_in, c->s->C_out, c->s->P);
    double l = 0.0;
    for (size_t i = 0; i < out_numel(c->s); i++) l += c->out[i] * c->dout[i];
    return l;
}

static void test_ref_gradcheck(void **state) {
    (void)state;
    const tshape shapes[] = {{2, 4, 2, 3, 3}, {1, 1, 3, 2, 4}, {2, 2, 1, 2, 5}};  // F = 4, 1, 2
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) {
        const tshape *s = &shapes[t];
        size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
        fd_ctx c = {s, tu_alloc_d(ni), tu_alloc_d(nw), tu_alloc_d(nb), tu_alloc_d(no), tu_alloc_d(no)};
        mav_rng r = mav_rng_make(200 + t);
        mav_rng_normal_d(&r, c.inp, ni);
        mav_rng_normal_d(&r, c.w, nw);
        mav_rng_normal_d(&r, c.b, nb);
        mav_rng_normal_d(&r, c.dout, no);
        double *gi = tu_alloc_d(ni), *gw = tu_alloc_d(nw), *gb = tu_alloc_d(nb);
        ref_tconv_backward(gi, gw, gb, c.dout, c.inp, c.w, s->B, s->F, s->C_in, s->C_out, s->P);
        // Loss linear in each input: central differences exact up to rounding (~1e-9 here); tol 1e-6.
        tu_gradcheck("ref tconv dinp", fd_loss, &c, c.inp, ni, gi, 1e-6, 1e-6, 200);
        tu_gradcheck("ref tconv dweight", fd_loss, &c, c.w, nw, gw, 1e-6, 1e-6, 200);
        tu_gradcheck("ref tconv dbias", fd_loss, &c, c.b, nb, gb, 1e-6, 1e-6, 200);
        free(gi); free(gw); free(gb);
        free(c.inp); free(c.w); free(c.b); free(c.dout); free(c.out);
    }
}

// ---- 2. optimised f32 vs the double reference ----

static void run_vs_ref(const tshape *s, uint64_t seed) {
    size_t ni = in_numel(s), no = out_numel(s), nw = w_numel(s), nb = (size_t)s->C_out;
    float *inp = tu_alloc_f(ni), *w = tu_alloc_f(nw), *b = tu_alloc_f(nb), *dout = tu_alloc_f(no);
    float *dw0 = tu_alloc_f(nw), *db0 = tu_alloc_f(nb);
    tu_fill_normal(inp, ni, seed);
    tu_fill_normal(w, nw, seed + 1);
    for (size_t i = 0; i < nw; i++) w[i] /= sqrtf(3.0f * (float)s->C_in);
    tu_fill_normal(b, nb, seed + 2);
    tu_fill_normal(dout, no, seed + 3);
    tu_fill_normal(dw0, nw, seed + 4);  // gradients accumulate: start from non-zero values
    tu_fill_normal(db0, nb, seed + 5);
    ref_results r = ref_compute(s, inp, w, b, dout, dw0, db0);
    int saved = mav_threads_get();
    // 1 thread; 2 and 3 threads (frames over threads plus leftover frames with a threaded GEMM,
    // or all frames one at a time when B·F < threads)
    const int threads[] = {1, 2, 3};
    for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
        mav_threads_set(threads[k]);
        char tag[128];
        snprintf(tag, sizeof tag, "B%d F%d Ci%d Co%d P%ld T%d", s->B, s->F, s->C_in, s->C_out, s->P, threads[k]);
        check_op(tag, s, threads[k], inp, w, b, dout, dw0, db0, &r);
    }
    mav_threads_set(saved);
    ref_free(&r);
    free(inp); free(w); free(b); free(dout); free(dw0); free(db0);
}

static void test_vs_ref(void **state) {
    (void)state;
    const tshape shapes[] = {
        {2, 1, 3, 4, 7},    // F = 1: middle tap only
        {1, 2, 2, 3, 5},    // F = 2: both frames are boundary frames
        {2, 5, 3, 5, 6},    // F = 5
        {3, 3, 1, 9, 1},    // C_in = 1, one pixel, C_out = 9
        {1, 5, 4, 2, 10},   // B·F = 5: leftover frames at 2 and 3 threads
        {1, 1, 1, 1, 1},    // everything 1
        {2, 16, 7, 3, 13},  // the paper's 16 frames
    };
    for (size_t t = 0; t < sizeof shapes / sizeof shapes[0]; t++) run_vs_ref(&shapes[t], 2000 + 10 * t);
}

// Temporal init (SPEC §3: weight[:, :, 1] = I, other taps 0, bias 0) is the identity.
static void test_identity_init(void **state) {
    (void)state;
    tshape s = {2, 5, 6, 6, 11};
    size_t n = in_numel(&s);
    float *inp = tu_alloc_f(n), *out = tu_alloc_f(n), *w = tu_alloc_f(w_numel(&s)), *b = tu_alloc_f(6);
    float *scratch = malloc(sizeof(float) * (mav_tconv_scratch_floats(s.B, s.F, s.C_in, s.C_out, s.P) + 1));
    for (int c = 0; c < 6; c++) w[((long)c * 6 + c) * 3 + 1] = 1.0f;
    tu_fill_normal(inp, n, 7);
    mav_tconv_forward(out, inp, w, b, s.B, s.F, s.C_in, s.C_out, s.P, scratch);
    tu_check_equal("identity temporal conv", out, inp, n);  // 1·x + 0s: exact in f32
    free(inp); free(out); free(w); free(b); free(scratch);
}

// ---- 3. optimised f32 vs PyTorch (conv3d, kernel (3, 1, 1), on [B, C, F, H, W]) ----

static void test_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("tconv");
    const char *cases[] = {"f5", "f1", "f2"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        char name[64], what[96];
#define T_(suffix) (snprintf(name, sizeof name, "%s." suffix, cases[c]), name)
        tshape s;
        s.B = (int)tu_ref_dim(f, T_("inp"), 0);
        s.F = (int)tu_ref_dim(f, T_("inp"), 1);
        s.C_in = (int)tu_ref_dim(f, T_("inp"), 2);
        s.P = (long)tu_ref_dim(f, T_("inp"), 3);
        s.C_out = (int)tu_ref_dim(f, T_("weight"), 0);
        assert_int_equal(tu_ref_dim(f, T_("weight"), 2), 3);
        size_t ni = in_numel(&s), no = out_numel(&s), nw = w_numel(&s), nb = (size_t)s.C_out, n;
        float *inp = tu_ref_f32(f, T_("inp"), &n);
        assert_int_equal(n, ni);
        float *w = tu_ref_f32(f, T_("weight"), NULL);
        float *b = tu_ref_f32(f, T_("bias"), NULL);
        float *dout = tu_ref_f32(f, T_("dout"), &n);
        assert_int_equal(n, no);
        double *t_out = tu_ref_f64(f, T_("out"), NULL);
        double *t_dinp = tu_ref_f64(f, T_("dinp"), NULL);
        double *t_dw = tu_ref_f64(f, T_("dweight"), NULL);
        double *t_db = tu_ref_f64(f, T_("dbias"), NULL);
#undef T_
        float *zw = tu_alloc_f(nw), *zb = tu_alloc_f(nb);
        ref_results r = ref_compute(&s, inp, w, b, dout, zw, zb);
        // double reference vs torch float64: same math, different order: ~1e-15 relative
        snprintf(what, sizeof what, "%s: reference out vs torch", cases[c]);
        tu_check_close_dd(what, r.out, t_out, no, 1e-12, 1e-12);
        snprintf(what, sizeof what, "%s: reference dinp vs torch", cases[c]);
        tu_check_close_dd(what, r.dinp, t_dinp, ni, 1e-12, 1e-12);
        snprintf(what, sizeof what, "%s: reference dweight vs torch", cases[c]);
        tu_check_close_dd(what, r.dw, t_dw, nw, 1e-12, 1e-12);
        snprintf(what, sizeof what, "%s: reference dbias vs torch", cases[c]);
        tu_check_close_dd(what, r.db, t_db, nb, 1e-12, 1e-12);
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

MAV_TEST_GROUP(tconv, cmocka_unit_test(test_ref_gradcheck), cmocka_unit_test(test_vs_ref),
               cmocka_unit_test(test_identity_init), cmocka_unit_test(test_vs_torch))
