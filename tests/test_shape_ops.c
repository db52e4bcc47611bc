// shape_ops: channel concat/split and nearest 2× upsample: reference gradients vs finite
// differences, f32 kernels vs the double reference, PyTorch (torch.cat, F.interpolate nearest).
#include <stdlib.h>
#include <string.h>

#include "ops/shape_ops.h"
#include "ref/ref_misc.h"
#include "testutil.h"

typedef struct { double *a, *b, *wgt, *out; int N, Ca, Cb, H, W; long P; } shp_ctx;

static double cat_loss(void *p) {
    shp_ctx *c = p;
    ref_concat_forward(c->out, c->a, c->b, c->N, c->Ca, c->Cb, c->P);
    double s = 0;
    for (long i = 0; i < (long)c->N * (c->Ca + c->Cb) * c->P; i++) s += c->wgt[i] * c->out[i];
    return s;
}

static double up_loss(void *p) {
    shp_ctx *c = p;
    ref_upsample2x_forward(c->out, c->a, c->N, c->Ca, c->H, c->W);
    double s = 0;
    for (long i = 0; i < (long)c->N * c->Ca * 4 * c->H * c->W; i++) s += c->wgt[i] * c->out[i];
    return s;
}

// Both losses are linear in the inputs: only rounding error in the difference quotient, tol 1e-6.
static void shape_ref_gradcheck(void **state) {
    (void)state;
    float f[256];
    shp_ctx c = {0};
    c.N = 2; c.Ca = 2; c.Cb = 3; c.P = 5;
    tu_fill_normal(f, 256, 1); c.a = tu_to_d(f, 20);
    tu_fill_normal(f, 256, 2); c.b = tu_to_d(f, 30);
    tu_fill_normal(f, 256, 3); c.wgt = tu_to_d(f, 50);
    c.out = tu_alloc_d(50);
    double *da = tu_alloc_d(20), *db = tu_alloc_d(30);
    ref_concat_backward(da, db, c.wgt, c.N, c.Ca, c.Cb, c.P);
    tu_gradcheck("concat da", cat_loss, &c, c.a, 20, da, 1e-6, 1e-6, 100);
    tu_gradcheck("concat db", cat_loss, &c, c.b, 30, db, 1e-6, 1e-6, 100);
    free(c.a); free(c.b); free(c.wgt); free(c.out); free(da); free(db);

    shp_ctx u = {0};
    u.N = 2; u.Ca = 1; u.H = 3; u.W = 5;  // 30 inputs, 120 outputs
    tu_fill_normal(f, 256, 4); u.a = tu_to_d(f, 30);
    tu_fill_normal(f, 256, 5); u.wgt = tu_to_d(f, 120);
    u.out = tu_alloc_d(120);
    double *di = tu_alloc_d(30);
    ref_upsample2x_backward(di, u.wgt, u.N, u.Ca, u.H, u.W);
    tu_gradcheck("upsample dinp", up_loss, &u, u.a, 30, di, 1e-6, 1e-6, 100);
    free(u.a); free(u.wgt); free(u.out); free(di);
}

// Concat and split are copies: exact (tolerance 0). Gradient buffers start as garbage (written).
static void check_cat(int N, int Ca, int Cb, long P) {
    long na = (long)N * Ca * P, nb = (long)N * Cb * P, no = na + nb;
    float *a = tu_alloc_f(na), *b = tu_alloc_f(nb), *dout = tu_alloc_f(no), *out = tu_alloc_f(no);
    float *da = tu_alloc_f(na), *db = tu_alloc_f(nb);
    tu_fill_normal(a, na, 1); tu_fill_normal(b, nb, 2); tu_fill_normal(dout, no, 3);
    tu_fill_normal(da, na, 4); tu_fill_normal(db, nb, 5);
    double *ra = tu_to_d(a, na), *rb = tu_to_d(b, nb), *rdo = tu_to_d(dout, no);
    double *rout = tu_alloc_d(no), *rda = tu_alloc_d(na), *rdb = tu_alloc_d(nb);
    ref_concat_forward(rout, ra, rb, N, Ca, Cb, P);
    ref_concat_backward(rda, rdb, rdo, N, Ca, Cb, P);
    mav_concat_forward(out, a, b, N, Ca, Cb, P);
    mav_concat_backward(da, db, dout, N, Ca, Cb, P);
    tu_check_close_d("concat out", out, rout, no, 0, 0);
    tu_check_close_d("concat da", da, rda, na, 0, 0);
    tu_check_close_d("concat db", db, rdb, nb, 0, 0);
    // NULL skips one part and leaves the other right
    memset(db, 0, sizeof(float) * nb);
    mav_concat_backward(NULL, db, dout, N, Ca, Cb, P);
    tu_check_close_d("split db alone", db, rdb, nb, 0, 0);
    free(a); free(b); free(dout); free(out); free(da); free(db); free(ra); free(rb); free(rdo); free(rout); free(rda); free(rdb);
}

static void concat_vs_reference(void **state) {
    (void)state;
    check_cat(1, 1, 3, 1);      // N = 1, one pixel
    check_cat(3, 5, 2, 17);     // odd sizes
    check_cat(2, 0, 4, 6);      // empty first part
    check_cat(2, 64, 32, 1089); // 33×33 planes, above the OpenMP threshold
}

// Forward is a copy: exact. Backward sums 4 f32 values: error ≤ 2·2^-24·Σ|terms| (2 rounding
// levels), Σ|terms| ≈ 3.2 for N(0,1): atol 1e-6.
static void check_up(int N, int C, int H, int W) {
    long ni = (long)N * C * H * W, no = 4 * ni;
    float *inp = tu_alloc_f(ni), *dout = tu_alloc_f(no), *out = tu_alloc_f(no), *dinp = tu_alloc_f(ni);
    tu_fill_normal(inp, ni, 7); tu_fill_normal(dout, no, 8); tu_fill_normal(dinp, ni, 9);
    double *ri = tu_to_d(inp, ni), *rdo = tu_to_d(dout, no), *rout = tu_alloc_d(no), *rdi = tu_alloc_d(ni);
    ref_upsample2x_forward(rout, ri, N, C, H, W);
    ref_upsample2x_backward(rdi, rdo, N, C, H, W);
    mav_upsample2x_forward(out, inp, N, C, H, W);
    mav_upsample2x_backward(dinp, dout, N, C, H, W);
    tu_check_close_d("upsample out", out, rout, no, 0, 0);
    tu_check_close_d("upsample dinp", dinp, rdi, ni, 1e-6, 0);
    free(inp); free(dout); free(out); free(dinp); free(ri); free(rdo); free(rout); free(rdi);
}

static void upsample_vs_reference(void **state) {
    (void)state;
    check_up(1, 1, 1, 1);   // one pixel
    check_up(2, 3, 5, 7);   // odd H and W
    check_up(1, 2, 1, 9);   // one row
    check_up(3, 1, 6, 1);   // one column
    check_up(2, 8, 33, 65); // above the OpenMP threshold
}

// PyTorch. Copies are exact; upsample dinp sums 4 values (atol 1e-6 as above).
static void shape_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("misc_shape");
    int N = (int)tu_ref_dim(f, "cat.a", 0), Ca = (int)tu_ref_dim(f, "cat.a", 1), Cb = (int)tu_ref_dim(f, "cat.b", 1);
    long P = tu_ref_dim(f, "cat.a", 2);
    float *a = tu_ref_f32(f, "cat.a", NULL), *b = tu_ref_f32(f, "cat.b", NULL), *dc = tu_ref_f32(f, "cat.dout", NULL);
    double *out_t = tu_ref_f64(f, "cat.out", NULL), *da_t = tu_ref_f64(f, "cat.da", NULL), *db_t = tu_ref_f64(f, "cat.db", NULL);
    float *out = tu_alloc_f((long)N * (Ca + Cb) * P), *da = tu_alloc_f((long)N * Ca * P), *db = tu_alloc_f((long)N * Cb * P);
    mav_concat_forward(out, a, b, N, Ca, Cb, P);
    mav_concat_backward(da, db, dc, N, Ca, Cb, P);
    tu_check_close_d("torch cat out", out, out_t, (size_t)N * (Ca + Cb) * P, 0, 0);
    tu_check_close_d("torch cat da", da, da_t, (size_t)N * Ca * P, 0, 0);
    tu_check_close_d("torch cat db", db, db_t, (size_t)N * Cb * P, 0, 0);
    free(a); free(b); free(dc); free(out_t); free(da_t); free(db_t); free(out); free(da); free(db);

    int Nu = (int)tu_ref_dim(f, "up.inp", 0), C = (int)tu_ref_dim(f, "up.inp", 1), H = (int)tu_ref_dim(f, "up.inp", 2),
        W = (int)tu_ref_dim(f, "up.inp", 3);
    long ni = (long)Nu * C * H * W;
    float *inp = tu_ref_f32(f, "up.inp", NULL), *du = tu_ref_f32(f, "up.dout", NULL);
    double *uo_t = tu_ref_f64(f, "up.out", NULL), *ud_t = tu_ref_f64(f, "up.dinp", NULL);
    float *uo = tu_alloc_f(4 * ni), *ud = tu_alloc_f(ni);
    mav_upsample2x_forward(uo, inp, Nu, C, H, W);
    mav_upsample2x_backward(ud, du, Nu, C, H, W);
    tu_check_close_d("torch upsample out", uo, uo_t, 4 * ni, 0, 0);
    tu_check_close_d("torch upsample dinp", ud, ud_t, ni, 1e-6, 0);
    free(inp); free(du); free(uo_t); free(ud_t); free(uo); free(ud);
    tu_ref_close(f);
}

MAV_TEST_GROUP(shape_ops, cmocka_unit_test(shape_ref_gradcheck), cmocka_unit_test(concat_vs_reference),
               cmocka_unit_test(upsample_vs_reference), cmocka_unit_test(shape_vs_torch))
