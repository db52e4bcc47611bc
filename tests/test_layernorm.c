// test_layernorm.c — LayerNorm forward/backward over [R, C] rows (src/ops/layernorm.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "ops/layernorm.h"
#include "ref/ref_norm.h"
#include "testutil.h"

#define EPS 1e-5f

// Same reasoning as test_groupnorm.c: errors relative to the scale of each output's terms are a
// few f32 roundings. Measured: all cases pass at 2⁻²⁴; 4·2⁻²⁴ leaves margin.
#define TOL (4.0 * 0x1p-24)

typedef struct { long R; int C; float off, scale; } ln_case;

typedef struct {
    long R;
    int C;
    size_t n;
    float *x, *w, *b, *dy, *out, *mean, *rstd, *dx, *dw, *db, *scratch;
    double *xd, *wd, *bd, *dyd, *rout, *rmean, *rrstd, *rdx, *rdw, *rdb;
} ln_data;

static double max_abs_d(const double *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static void ln_make(ln_data *d, const ln_case *k, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->R = k->R; d->C = k->C;
    d->n = (size_t)k->R * k->C;
    size_t n = d->n, C = (size_t)k->C, R = (size_t)k->R;
    d->x = tu_alloc_f(n); d->w = tu_alloc_f(C); d->b = tu_alloc_f(C); d->dy = tu_alloc_f(n);
    tu_fill_normal(d->x, n, seed);
    for (size_t i = 0; i < n; i++) d->x[i] = k->off + k->scale * d->x[i];
    tu_fill_normal(d->w, C, seed + 1);
    for (size_t i = 0; i < C; i++) d->w[i] = 1.0f + 0.5f * d->w[i];
    tu_fill_normal(d->b, C, seed + 2);
    tu_fill_normal(d->dy, n, seed + 3);
    d->out = tu_alloc_f(n); d->mean = tu_alloc_f(R); d->rstd = tu_alloc_f(R); d->dx = tu_alloc_f(n);
    d->dw = tu_alloc_f(C); d->db = tu_alloc_f(C);
    // calloc'd by tu_alloc_f: at least 16-byte aligned, as the double partials need.
    d->scratch = tu_alloc_f(mav_layernorm_scratch_floats(k->C));
    d->xd = tu_to_d(d->x, n); d->wd = tu_to_d(d->w, C); d->bd = tu_to_d(d->b, C); d->dyd = tu_to_d(d->dy, n);
    d->rout = tu_alloc_d(n); d->rmean = tu_alloc_d(R); d->rrstd = tu_alloc_d(R); d->rdx = tu_alloc_d(n);
    d->rdw = tu_alloc_d(C); d->rdb = tu_alloc_d(C);
    for (size_t c = 0; c < C; c++) { d->dw[c] = 0.25f; d->db[c] = -0.5f; d->rdw[c] = 0.25; d->rdb[c] = -0.5; }
}

static void ln_free(ln_data *d) {
    float *f[] = {d->x, d->w, d->b, d->dy, d->out, d->mean, d->rstd, d->dx, d->dw, d->db, d->scratch};
    double *g[] = {d->xd, d->wd, d->bd, d->dyd, d->rout, d->rmean, d->rrstd, d->rdx, d->rdw, d->rdb};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) free(g[i]);
}

static void ln_run(ln_data *d) {
    mav_layernorm_forward(d->out, d->mean, d->rstd, d->x, d->w, d->b, d->R, d->C, EPS);
    mav_layernorm_backward(d->dx, d->dw, d->db, d->dy, d->x, d->mean, d->rstd, d->w, d->R, d->C, d->scratch);
}

// Scales as in test_groupnorm.c: out by its max |value|; dinp by max r·|w·dy| (the terms it
// cancels down from); dweight/dbias by max |value| plus √R·4 (the size of a sum of R
// unit-variance terms, to which the f32 rounding of each row's dy·x̂ contributes).
static void ln_compare(const char *tag, const ln_data *d, const double *out, const double *mean, const double *rstd,
                       const double *dx, const double *dw, const double *db) {
    char what[96];
    size_t n = d->n, C = (size_t)d->C, R = (size_t)d->R;
    snprintf(what, sizeof what, "%s out", tag);
    tu_check_close_d(what, d->out, out, n, TOL * max_abs_d(out, n), TOL);
    // One rounding of the double statistics to f32 (≤ 2⁻²⁴ relative), 2× margin.
    snprintf(what, sizeof what, "%s mean", tag);
    tu_check_close_d(what, d->mean, mean, R, 1e-12 * (1.0 + max_abs_d(mean, R)), 0x1p-23);
    snprintf(what, sizeof what, "%s rstd", tag);
    tu_check_close_d(what, d->rstd, rstd, R, 0.0, 0x1p-23);
    double dscale = 0.0;
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++) dscale = fmax(dscale, rstd[r] * fabs(d->wd[c] * d->dyd[r * C + c]));
    snprintf(what, sizeof what, "%s dinp", tag);
    tu_check_close_d(what, d->dx, dx, n, TOL * dscale, TOL);
    double pscale = 4.0 * sqrt((double)R);
    snprintf(what, sizeof what, "%s dweight", tag);
    tu_check_close_d(what, d->dw, dw, C, TOL * (max_abs_d(dw, C) + pscale), TOL);
    snprintf(what, sizeof what, "%s dbias", tag);
    tu_check_close_d(what, d->db, db, C, TOL * (max_abs_d(db, C) + pscale), TOL);
}

// (a) Reference backward vs central differences (eps 1e-6, tol 1e-6: see test_groupnorm.c).
typedef struct { const ln_data *d; double *x, *w, *b, *out; } ln_loss_ctx;
static double ln_loss(void *p) {
    ln_loss_ctx *c = p;
    const ln_data *d = c->d;
    ref_layernorm_forward(c->out, NULL, NULL, c->x, c->w, c->b, d->R, d->C, EPS);
    double s = 0.0;
    for (size_t i = 0; i < d->n; i++) s += c->out[i] * d->dyd[i];
    return s;
}
static void test_ref_gradcheck(void **state) {
    (void)state;
    const ln_case ks[] = {{3, 7, 0.3f, 1.0f}, {2, 2, -1.0f, 0.5f}};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        ln_data d;
        ln_make(&d, &ks[t], 500 + t);
        size_t C = (size_t)d.C;
        double *gx = tu_alloc_d(d.n), *gw = tu_alloc_d(C), *gb = tu_alloc_d(C), *tmp = tu_alloc_d(d.n);
        ref_layernorm_backward(gx, gw, gb, d.dyd, d.xd, d.wd, d.R, d.C, EPS);
        ln_loss_ctx c = {&d, d.xd, d.wd, d.bd, tmp};
        tu_gradcheck("layernorm ref dinp", ln_loss, &c, d.xd, d.n, gx, 1e-6, 1e-6, 200);
        tu_gradcheck("layernorm ref dweight", ln_loss, &c, d.wd, C, gw, 1e-6, 1e-6, 200);
        tu_gradcheck("layernorm ref dbias", ln_loss, &c, d.bd, C, gb, 1e-6, 1e-6, 200);
        free(gx); free(gw); free(gb); free(tmp);
        ln_free(&d);
    }
}

// (b) f32 kernels vs the double reference over awkward shapes.
static void test_vs_ref(void **state) {
    (void)state;
    const ln_case ks[] = {
        {7, 13, 0.0f, 1.0f},        // odd, < one vector + tail
        {1, 1, 0.5f, 1.0f},         // one value per row: var 0, rstd 1/√eps, dinp exactly 0
        {5, 8, 0.0f, 2.0f},         // exactly one vector
        {3, 77, -2.0f, 1.0f},       // CLIP context length as channels
        {9, 40, 1000.0f, 1.0f},     // |mean| ≫ std
        {4, 33, -1000.0f, 1e-3f},   // std below the eps scale, huge mean
        {1000, 33, 0.1f, 1.0f},     // OpenMP path, per-thread partials
        {257, 320, 0.0f, 1.0f},     // SPEC-like width
    };
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        const ln_case *k = &ks[t];
        ln_data d;
        ln_make(&d, k, 600 + t);
        ln_run(&d);
        ref_layernorm_forward(d.rout, d.rmean, d.rrstd, d.xd, d.wd, d.bd, d.R, d.C, EPS);
        ref_layernorm_backward(d.rdx, d.rdw, d.rdb, d.dyd, d.xd, d.wd, d.R, d.C, EPS);
        char tag[96];
        snprintf(tag, sizeof tag, "R%ld C%d off %g std %g", k->R, k->C, k->off, k->scale);
        ln_compare(tag, &d, d.rout, d.rmean, d.rrstd, d.rdx, d.rdw, d.rdb);
        ln_free(&d);
    }
}

// In place, NULL outputs, run-to-run determinism (bit-identical at the same thread count), and
// one thread vs the default (dinp identical: per-row work; dweight/dbias within TOL, as the
// partials are summed per thread).
static void test_variants(void **state) {
    (void)state;
    const ln_case k = {1000, 33, 0.1f, 1.0f};
    ln_data d;
    ln_make(&d, &k, 700);
    ln_run(&d);
    size_t n = d.n, C = (size_t)d.C;
    float *y = tu_alloc_f(n), *g = tu_alloc_f(n), *dw = tu_alloc_f(C), *db = tu_alloc_f(C);
    memcpy(y, d.x, n * sizeof(float));
    mav_layernorm_forward(y, NULL, NULL, y, d.w, d.b, d.R, d.C, EPS);
    tu_check_equal("forward in place", y, d.out, n);
    memcpy(g, d.dy, n * sizeof(float));
    mav_layernorm_backward(g, NULL, NULL, g, d.x, d.mean, d.rstd, d.w, d.R, d.C, NULL);
    tu_check_equal("backward in place", g, d.dx, n);
    for (size_t c = 0; c < C; c++) { dw[c] = 0.25f; db[c] = -0.5f; }
    mav_layernorm_backward(NULL, dw, db, d.dy, d.x, d.mean, d.rstd, d.w, d.R, d.C, d.scratch);
    tu_check_equal("dweight without dinp, same threads", dw, d.dw, C);
    tu_check_equal("dbias without dinp, same threads", db, d.db, C);
    int th = mav_threads_get();
    mav_threads_set(1);
    for (size_t c = 0; c < C; c++) { dw[c] = 0.25f; db[c] = -0.5f; }
    mav_layernorm_backward(g, dw, db, d.dy, d.x, d.mean, d.rstd, d.w, d.R, d.C, d.scratch);
    mav_threads_set(th);
    tu_check_equal("dinp, 1 thread", g, d.dx, n);
    // Sums of R terms in another order: within the ln_compare scale, TOL·4√R.
    tu_check_close("dweight, 1 thread", dw, d.dw, C, TOL * 4.0 * sqrt((double)d.R), TOL);
    tu_check_close("dbias, 1 thread", db, d.db, C, TOL * 4.0 * sqrt((double)d.R), TOL);
    float *ones = tu_alloc_f(C), *zeros = tu_alloc_f(C), *y2 = tu_alloc_f(n);
    for (size_t c = 0; c < C; c++) ones[c] = 1.0f;
    mav_layernorm_forward(y, NULL, NULL, d.x, NULL, NULL, d.R, d.C, EPS);
    mav_layernorm_forward(y2, NULL, NULL, d.x, ones, zeros, d.R, d.C, EPS);
    tu_check_equal("forward, NULL weight and bias", y, y2, n);
    mav_layernorm_backward(g, NULL, NULL, d.dy, d.x, d.mean, d.rstd, NULL, d.R, d.C, NULL);
    mav_layernorm_backward(y2, NULL, NULL, d.dy, d.x, d.mean, d.rstd, ones, d.R, d.C, NULL);
    tu_check_equal("backward, NULL weight", g, y2, n);
    free(y); free(g); free(dw); free(db); free(ones); free(zeros); free(y2);
    ln_free(&d);
}

// (c) PyTorch F.layer_norm in float64 from the same f32 inputs (ops_norm.py).
static void test_torch(void **state) {
    (void)state;
    const char *files[] = {"layernorm_a", "layernorm_mean"};
    for (size_t t = 0; t < sizeof files / sizeof files[0]; t++) {
        mav_st_file *f = tu_ref_open(files[t]);
        ln_case k = {(long)tu_ref_dim(f, "x", 0), (int)tu_ref_dim(f, "x", 1), 0.0f, 1.0f};
        ln_data d;
        ln_make(&d, &k, 1);
        size_t C = (size_t)k.C;
        free(d.x); free(d.w); free(d.b); free(d.dy); free(d.xd); free(d.wd); free(d.dyd);
        d.x = tu_ref_f32(f, "x", NULL); d.w = tu_ref_f32(f, "weight", NULL); d.b = tu_ref_f32(f, "bias", NULL);
        d.dy = tu_ref_f32(f, "dout", NULL);
        d.xd = tu_to_d(d.x, d.n); d.wd = tu_to_d(d.w, C); d.dyd = tu_to_d(d.dy, d.n);
        for (size_t c = 0; c < C; c++) { d.dw[c] = 0.0f; d.db[c] = 0.0f; }
        ln_run(&d);
        double *out = tu_ref_f64(f, "out", NULL), *mean = tu_ref_f64(f, "mean", NULL), *rstd = tu_ref_f64(f, "rstd", NULL);
        double *dx = tu_ref_f64(f, "dinp", NULL), *dw = tu_ref_f64(f, "dweight", NULL), *db = tu_ref_f64(f, "dbias", NULL);
        ln_compare(files[t], &d, out, mean, rstd, dx, dw, db);
        free(out); free(mean); free(rstd); free(dx); free(dw); free(db);
        ln_free(&d);
        tu_ref_close(f);
    }
}

MAV_TEST_GROUP(layernorm, cmocka_unit_test(test_ref_gradcheck), cmocka_unit_test(test_vs_ref),
               cmocka_unit_test(test_variants), cmocka_unit_test(test_torch))
