// linear: reference backward vs finite differences, f32 kernel (plain and strided) vs the double
// reference over awkward shapes, PyTorch (F.linear + autograd in float64).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "ops/linear.h"
#include "ref/ref_misc.h"
#include "testutil.h"

typedef struct { double *inp, *w, *b, *wgt, *out; int R, Ci, Co; } lin_ctx;

// loss = Σ wgt ⊙ linear(inp), so d loss / d out = wgt.
static double lin_loss(void *p) {
    lin_ctx *c = p;
    ref_linear_forward(c->out, c->inp, c->w, c->b, c->R, c->Ci, c->Co);
    double s = 0;
    for (long i = 0; i < (long)c->R * c->Co; i++) s += c->wgt[i] * c->out[i];
    return s;
}

// The reference backward against central differences. The loss is bilinear, so the difference
// quotient has no truncation error; only rounding (~1e-16/eps = 1e-10) remains: tol 1e-6.
static void linear_ref_gradcheck(void **state) {
    (void)state;
    int R = 3, Ci = 5, Co = 4;
    float *f = tu_alloc_f(64);
    lin_ctx c = {0};
    c.R = R; c.Ci = Ci; c.Co = Co;
    tu_fill_normal(f, 64, 1); c.inp = tu_to_d(f, R * Ci);
    tu_fill_normal(f, 64, 2); c.w = tu_to_d(f, Co * Ci);
    tu_fill_normal(f, 64, 3); c.b = tu_to_d(f, Co);
    tu_fill_normal(f, 64, 4); c.wgt = tu_to_d(f, R * Co);
    c.out = tu_alloc_d(R * Co);
    double *dinp = tu_alloc_d(R * Ci), *dw = tu_alloc_d(Co * Ci), *db = tu_alloc_d(Co);
    ref_linear_backward(dinp, dw, db, c.wgt, c.inp, c.w, R, Ci, Co);
    tu_gradcheck("linear dinp", lin_loss, &c, c.inp, R * Ci, dinp, 1e-6, 1e-6, 100);
    tu_gradcheck("linear dweight", lin_loss, &c, c.w, Co * Ci, dw, 1e-6, 1e-6, 100);
    tu_gradcheck("linear dbias", lin_loss, &c, c.b, Co, db, 1e-6, 1e-6, 100);
    free(f); free(c.inp); free(c.w); free(c.b); free(c.wgt); free(c.out); free(dinp); free(dw); free(db);
}

// One shape, f32 kernel vs double reference. ld_in/ld_out > C_in/C_out exercise the strided
// entry points; the padding columns hold a sentinel that must survive. Parameter gradients
// start from random values (they are accumulated), dinp from garbage (it is written).
// Tolerance: each output is a K-term f32 dot product (K = C_in forward, C_out for dinp, R for
// dweight/dbias) of N(0,1) values; f32 rounding is at most K·2^-24 ≈ K·6e-8 times Σ|terms|
// (E|xy| = 2/π ≈ 0.64 for products of standard normals, so ≈ 0.64·K) in the worst case and
// √K-like in practice: atol = 4e-8·K² + 1e-6 is that worst-case bound; rtol 1e-6 covers the
// rounding of the accumulated starting values.
static void check_shape(int R, int Ci, int Co, int ld_in, int ld_out, int with_bias) {
    long ni = (long)R * ld_in, no = (long)R * ld_out;
    float *inp = tu_alloc_f(ni), *w = tu_alloc_f((long)Co * Ci + 1), *b = tu_alloc_f(Co + 1), *dout = tu_alloc_f(no);
    float *out = tu_alloc_f(no), *dinp = tu_alloc_f(ni), *dw = tu_alloc_f((long)Co * Ci + 1), *db = tu_alloc_f(Co + 1);
    tu_fill_normal(inp, ni, 10 + R);
    tu_fill_normal(w, (long)Co * Ci, 20 + Ci);
    tu_fill_normal(b, Co, 30 + Co);
    tu_fill_normal(dout, no, 40);
    tu_fill_normal(dw, (long)Co * Ci, 50);
    tu_fill_normal(db, Co, 60);
    const float SENT = 12345.0f;
    for (long i = 0; i < no; i++) out[i] = SENT;
    for (long i = 0; i < ni; i++) dinp[i] = SENT;
    // contiguous copies for the reference
    double *ri = tu_alloc_d((long)R * Ci), *rdo = tu_alloc_d((long)R * Co), *rw = tu_to_d(w, (long)Co * Ci), *rb = tu_to_d(b, Co);
    for (int r = 0; r < R; r++) {
        for (int i = 0; i < Ci; i++) ri[(long)r * Ci + i] = inp[(long)r * ld_in + i];
        for (int o = 0; o < Co; o++) rdo[(long)r * Co + o] = dout[(long)r * ld_out + o];
    }
    double *rout = tu_alloc_d((long)R * Co), *rdi = tu_alloc_d((long)R * Ci), *rdw = tu_to_d(dw, (long)Co * Ci), *rdb = tu_to_d(db, Co);
    ref_linear_forward(rout, ri, rw, with_bias ? rb : NULL, R, Ci, Co);
    ref_linear_backward(rdi, rdw, with_bias ? rdb : NULL, rdo, ri, rw, R, Ci, Co);

    if (ld_in == Ci && ld_out == Co) {
        mav_linear_forward(out, inp, w, with_bias ? b : NULL, R, Ci, Co);
        mav_linear_backward(dinp, dw, with_bias ? db : NULL, dout, inp, w, R, Ci, Co);
    } else {
        mav_linear_forward_strided(out, ld_out, inp, ld_in, w, with_bias ? b : NULL, R, Ci, Co);
        mav_linear_backward_strided(dinp, dw, with_bias ? db : NULL, dout, ld_out, inp, ld_in, w, R, Ci, Co);
    }
    float *go = tu_alloc_f((long)R * Co), *gi = tu_alloc_f((long)R * Ci);
    for (int r = 0; r < R; r++) {
        for (int o = 0; o < ld_out; o++) {
            if (o < Co) go[(long)r * Co + o] = out[(long)r * ld_out + o];
            else if (out[(long)r * ld_out + o] != SENT) fail_msg("linear out: padding column %d of row %d overwritten", o, r);
        }
        for (int i = 0; i < ld_in; i++) {
            if (i < Ci) gi[(long)r * Ci + i] = dinp[(long)r * ld_in + i];
            else if (dinp[(long)r * ld_in + i] != SENT) fail_msg("linear dinp: padding column %d of row %d overwritten", i, r);
        }
    }
    tu_check_close_d("linear out", go, rout, (size_t)R * Co, 4e-8 * Ci * Ci + 1e-6, 1e-6);
    tu_check_close_d("linear dinp", gi, rdi, (size_t)R * Ci, 4e-8 * Co * Co + 1e-6, 1e-6);
    tu_check_close_d("linear dweight", dw, rdw, (size_t)Co * Ci, 4e-8 * R * R + 1e-6, 1e-6);
    tu_check_close_d("linear dbias", db, rdb, Co, 4e-8 * R * R + 1e-6, 1e-6);
    if (!with_bias) tu_check_close_d("linear dbias untouched", db, rdb, Co, 0, 0);
    free(inp); free(w); free(b); free(dout); free(out); free(dinp); free(dw); free(db);
    free(ri); free(rdo); free(rw); free(rb); free(rout); free(rdi); free(rdw); free(rdb); free(go); free(gi);
}

static void linear_vs_reference(void **state) {
    (void)state;
    check_shape(1, 1, 1, 1, 1, 1);      // everything size 1
    check_shape(1, 17, 9, 17, 9, 1);    // R = 1, odd widths
    check_shape(37, 33, 19, 33, 19, 1); // odd everything
    check_shape(5, 3, 1, 3, 1, 0);      // one output, no bias
    check_shape(70, 70, 130, 70, 130, 1); // > 64 columns: the bias-gradient tiles; above the OpenMP threshold
    check_shape(6, 7, 5, 11, 9, 1);     // strided input and output
    check_shape(9, 4, 13, 4, 20, 0);    // strided output only (a slice of a wider buffer), no bias
}

// NULL gradients are skipped and do not disturb the others.
static void linear_null_grads(void **state) {
    (void)state;
    int R = 4, Ci = 3, Co = 5;
    float inp[12], w[15], dout[20], dw[15] = {0}, dw2[15] = {0}, db[5] = {0}, dinp[12];
    tu_fill_normal(inp, 12, 1); tu_fill_normal(w, 15, 2); tu_fill_normal(dout, 20, 3);
    mav_linear_backward(NULL, dw, NULL, dout, inp, w, R, Ci, Co);
    mav_linear_backward(dinp, dw2, db, dout, inp, w, R, Ci, Co);
    tu_check_equal("dweight with and without the other gradients", dw, dw2, 15);
    float db0[5] = {0};
    mav_linear_backward(NULL, NULL, db0, dout, NULL, NULL, R, Ci, Co);  // inp/weight unused for dbias
    tu_check_equal("dbias alone", db0, db, 5);
}

// The bias gradient is summed per column in a fixed order: bit-identical for 1 and 2 threads.
static void linear_dbias_thread_invariant(void **state) {
    (void)state;
    int R = 600, Co = 200, prev = mav_threads_get();
    float *dout = tu_alloc_f((long)R * Co), *d1 = tu_alloc_f(Co), *d2 = tu_alloc_f(Co);
    tu_fill_normal(dout, (long)R * Co, 7);
    mav_threads_set(1);
    mav_linear_backward(NULL, NULL, d1, dout, NULL, NULL, R, 1, Co);
    mav_threads_set(2);
    mav_linear_backward(NULL, NULL, d2, dout, NULL, NULL, R, 1, Co);
    mav_threads_set(prev);
    tu_check_equal("dbias threads 1 vs 2", d1, d2, Co);
    free(dout); free(d1); free(d2);
}

// PyTorch: out, dinp, dweight, dbias in float64 from the same f32 values. K ≤ 13 terms of N(0,1)
// products: worst-case f32 error 13·6e-8·Σ|terms| (≈ 10) ≈ 8e-6; atol 1e-5, rtol 1e-6.
static void linear_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("misc_linear");
    int R = (int)tu_ref_dim(f, "inp", 0), Ci = (int)tu_ref_dim(f, "inp", 1), Co = (int)tu_ref_dim(f, "weight", 0);
    float *inp = tu_ref_f32(f, "inp", NULL), *w = tu_ref_f32(f, "weight", NULL), *b = tu_ref_f32(f, "bias", NULL),
          *dout = tu_ref_f32(f, "dout", NULL);
    double *out_t = tu_ref_f64(f, "out", NULL), *dinp_t = tu_ref_f64(f, "dinp", NULL),
           *dw_t = tu_ref_f64(f, "dweight", NULL), *db_t = tu_ref_f64(f, "dbias", NULL);
    float *out = tu_alloc_f((long)R * Co), *dinp = tu_alloc_f((long)R * Ci), *dw = tu_alloc_f((long)Co * Ci), *db = tu_alloc_f(Co);
    mav_linear_forward(out, inp, w, b, R, Ci, Co);
    mav_linear_backward(dinp, dw, db, dout, inp, w, R, Ci, Co);
    tu_check_close_d("torch linear out", out, out_t, (size_t)R * Co, 1e-5, 1e-6);
    tu_check_close_d("torch linear dinp", dinp, dinp_t, (size_t)R * Ci, 1e-5, 1e-6);
    tu_check_close_d("torch linear dweight", dw, dw_t, (size_t)Co * Ci, 1e-5, 1e-6);
    tu_check_close_d("torch linear dbias", db, db_t, Co, 1e-5, 1e-6);
    free(inp); free(w); free(b); free(dout); free(out_t); free(dinp_t); free(dw_t); free(db_t);
    free(out); free(dinp); free(dw); free(db);
    tu_ref_close(f);
}

MAV_TEST_GROUP(linear, cmocka_unit_test(linear_ref_gradcheck), cmocka_unit_test(linear_vs_reference),
               cmocka_unit_test(linear_null_grads), cmocka_unit_test(linear_dbias_thread_invariant),
               cmocka_unit_test(linear_vs_torch))
