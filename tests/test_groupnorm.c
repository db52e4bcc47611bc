// test_groupnorm.c — GroupNorm forward/backward (src/ops/groupnorm.c).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "ops/groupnorm.h"
#include "ref/ref_norm.h"
#include "testutil.h"

#define EPS 1e-5f

// f32 tolerance, relative to the scale of the terms each output is formed from (gn_compare):
// each output is a handful of f32 roundings of O(scale) terms (the statistics are exact to f32
// in double), so a few units of 2⁻²⁴. Measured: every case passes at TOL = 2⁻²⁴ and fails at
// 0.3·2⁻²⁴ (so the check is live); 4·2⁻²⁴ leaves margin for other compilers/thread counts.
#define TOL (4.0 * 0x1p-24)

typedef struct { int N, C, P, G; float off, scale; } gn_case;

static double max_abs_d(const double *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

// All the f32 and reference tensors of one case.
typedef struct {
    int N, C, P, G;
    size_t n;
    float *x, *w, *b, *dy, *out, *mean, *rstd, *dx, *dw, *db, *scratch;
    double *xd, *wd, *bd, *dyd, *rout, *rmean, *rrstd, *rdx, *rdw, *rdb;
} gn_data;

static void gn_make(gn_data *d, const gn_case *k, uint64_t seed) {
    memset(d, 0, sizeof *d);
    d->N = k->N; d->C = k->C; d->P = k->P; d->G = k->G;
    d->n = (size_t)k->N * k->C * k->P;
    size_t n = d->n, C = (size_t)k->C, NG = (size_t)k->N * k->G;
    d->x = tu_alloc_f(n); d->w = tu_alloc_f(C); d->b = tu_alloc_f(C); d->dy = tu_alloc_f(n);
    tu_fill_normal(d->x, n, seed);
    for (size_t i = 0; i < n; i++) d->x[i] = k->off + k->scale * d->x[i];
    tu_fill_normal(d->w, C, seed + 1);
    for (size_t i = 0; i < C; i++) d->w[i] = 1.0f + 0.5f * d->w[i];
    tu_fill_normal(d->b, C, seed + 2);
    tu_fill_normal(d->dy, n, seed + 3);
    d->out = tu_alloc_f(n); d->mean = tu_alloc_f(NG); d->rstd = tu_alloc_f(NG); d->dx = tu_alloc_f(n);
    d->dw = tu_alloc_f(C); d->db = tu_alloc_f(C);
    d->scratch = tu_alloc_f(mav_groupnorm_scratch_floats(k->N, k->C));
    d->xd = tu_to_d(d->x, n); d->wd = tu_to_d(d->w, C); d->bd = tu_to_d(d->b, C); d->dyd = tu_to_d(d->dy, n);
    d->rout = tu_alloc_d(n); d->rmean = tu_alloc_d(NG); d->rrstd = tu_alloc_d(NG); d->rdx = tu_alloc_d(n);
    d->rdw = tu_alloc_d(C); d->rdb = tu_alloc_d(C);
    // Parameter gradients accumulate (+=): start both sides from the same nonzero values.
    for (size_t c = 0; c < C; c++) { d->dw[c] = 0.25f; d->db[c] = -0.5f; d->rdw[c] = 0.25; d->rdb[c] = -0.5; }
}

static void gn_free(gn_data *d) {
    float *f[] = {d->x, d->w, d->b, d->dy, d->out, d->mean, d->rstd, d->dx, d->dw, d->db, d->scratch};
    double *g[] = {d->xd, d->wd, d->bd, d->dyd, d->rout, d->rmean, d->rrstd, d->rdx, d->rdw, d->rdb};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) free(f[i]);
    for (size_t i = 0; i < sizeof g / sizeof g[0]; i++) free(g[i]);
}

static void gn_run(gn_data *d) {
    mav_groupnorm_forward(d->out, d->mean, d->rstd, d->x, d->w, d->b, d->N, d->C, d->P, d->G, EPS);
    mav_groupnorm_backward(d->dx, d->dw, d->db, d->dy, d->x, d->mean, d->rstd, d->w, d->N, d->C, d->P, d->G,
                           d->scratch);
}

// Compares the f32 results with want_* (double). Scales: out — its largest |value| (x̂·w + b
// are O(1) terms); dx — max r·|w·dy| over the tensor, the size of the terms dx = r·(w·dy −
// mean(dx̂) − x̂·mean(dx̂·x̂)) cancels down from (for one-value groups dx is exactly 0 while
// each term is r·|w·dy|); dweight, dbias — Σ|terms| per channel bounded by max|value|·√N·…,
// taken as max|value| plus the per-image partial scale (√P, rounding each partial to f32).
static void gn_compare(const char *tag, const gn_data *d, const double *out, const double *mean, const double *rstd,
                       const double *dx, const double *dw, const double *db) {
    char what[96];
    size_t n = d->n, C = (size_t)d->C, NG = (size_t)d->N * d->G;
    int cg = d->C / d->G;
    snprintf(what, sizeof what, "%s out", tag);
    tu_check_close_d(what, d->out, out, n, TOL * max_abs_d(out, n), TOL);
    // mean and rstd: the double statistics rounded once to f32 (≤ 2⁻²⁴ relative); 2× margin.
    // atol 1e-12·(1 + max|mean|) covers means that are 0 up to double summation error.
    snprintf(what, sizeof what, "%s mean", tag);
    tu_check_close_d(what, d->mean, mean, NG, 1e-12 * (1.0 + max_abs_d(mean, NG)), 0x1p-23);
    snprintf(what, sizeof what, "%s rstd", tag);
    tu_check_close_d(what, d->rstd, rstd, NG, 0.0, 0x1p-23);
    double dscale = 0.0;
    for (int i = 0; i < d->N * d->G; i++)
        for (int c = 0; c < cg; c++)
            for (int p = 0; p < d->P; p++) {
                size_t idx = ((size_t)i * cg + c) * d->P + p;
                dscale = fmax(dscale, rstd[i] * fabs(d->wd[(i % d->G) * cg + c] * d->dyd[idx]));
            }
    snprintf(what, sizeof what, "%s dinp", tag);
    tu_check_close_d(what, d->dx, dx, n, TOL * dscale, TOL);
    double pscale = sqrt((double)d->P) * 4.0;  // |Σ_p dy·x̂| per image ~ √P, ×4 for its tail
    snprintf(what, sizeof what, "%s dweight", tag);
    tu_check_close_d(what, d->dw, dw, C, TOL * (max_abs_d(dw, C) + pscale), TOL);
    snprintf(what, sizeof what, "%s dbias", tag);
    tu_check_close_d(what, d->db, db, C, TOL * (max_abs_d(db, C) + pscale), TOL);
}

// (a) Reference backward vs central differences of loss = Σ out·dout, in double. eps 1e-6:
// truncation ~eps²·|f'''| ≈ 1e-12, rounding ~1e-16/eps = 1e-10; tol 1e-6.
typedef struct { const gn_data *d; double *x, *w, *b; double *out; } gn_loss_ctx;
static double gn_loss(void *p) {
    gn_loss_ctx *c = p;
    const gn_data *d = c->d;
    ref_groupnorm_forward(c->out, NULL, NULL, c->x, c->w, c->b, d->N, d->C, d->P, d->G, EPS);
    double s = 0.0;
    for (size_t i = 0; i < d->n; i++) s += c->out[i] * d->dyd[i];
    return s;
}
static void test_ref_gradcheck(void **state) {
    (void)state;
    const gn_case ks[] = {{2, 6, 5, 3, 0.3f, 1.0f}, {1, 4, 3, 1, -2.0f, 0.5f}, {2, 3, 4, 3, 0.0f, 2.0f}};
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        gn_data d;
        gn_make(&d, &ks[t], 100 + t);
        size_t C = (size_t)d.C;
        double *gx = tu_alloc_d(d.n), *gw = tu_alloc_d(C), *gb = tu_alloc_d(C), *tmp = tu_alloc_d(d.n);
        ref_groupnorm_backward(gx, gw, gb, d.dyd, d.xd, d.wd, d.N, d.C, d.P, d.G, EPS);
        gn_loss_ctx c = {&d, d.xd, d.wd, d.bd, tmp};
        tu_gradcheck("groupnorm ref dinp", gn_loss, &c, d.xd, d.n, gx, 1e-6, 1e-6, 200);
        tu_gradcheck("groupnorm ref dweight", gn_loss, &c, d.wd, C, gw, 1e-6, 1e-6, 200);
        tu_gradcheck("groupnorm ref dbias", gn_loss, &c, d.bd, C, gb, 1e-6, 1e-6, 200);
        free(gx); free(gw); free(gb); free(tmp);
        gn_free(&d);
    }
}

// (b) f32 kernels vs the double reference over awkward shapes.
static void test_vs_ref(void **state) {
    (void)state;
    const gn_case ks[] = {
        {3, 6, 7, 3, 0.0f, 1.0f},       // odd everything
        {1, 5, 1, 5, 0.5f, 1.0f},       // G = C and P = 1: one value per group (var 0, rstd 1/√eps)
        {2, 4, 33, 1, 0.0f, 1.0f},      // G = 1
        {1, 3, 1, 1, 0.0f, 2.0f},       // P = 1, G = 1
        {2, 64, 9, 32, -0.5f, 3.0f},    // SPEC's 32 groups, 3×3 image
        {2, 12, 9, 4, 1000.0f, 1.0f},   // |mean| ≫ std: a naive E[x²] − E[x]² loses it all
        {1, 8, 10, 2, -1000.0f, 1e-3f}, // std 1e-3 ≪ eps-scale, and a huge mean
        {2, 64, 301, 32, 0.2f, 1.0f},   // big enough for the OpenMP path; P not a multiple of 8
        {1, 32, 4097, 32, 3.0f, 0.5f},  // one channel per group, long rows
    };
    for (size_t t = 0; t < sizeof ks / sizeof ks[0]; t++) {
        const gn_case *k = &ks[t];
        gn_data d;
        gn_make(&d, k, 200 + t);
        gn_run(&d);
        ref_groupnorm_forward(d.rout, d.rmean, d.rrstd, d.xd, d.wd, d.bd, d.N, d.C, d.P, d.G, EPS);
        ref_groupnorm_backward(d.rdx, d.rdw, d.rdb, d.dyd, d.xd, d.wd, d.N, d.C, d.P, d.G, EPS);
        char tag[96];
        snprintf(tag, sizeof tag, "N%d C%d P%d G%d off %g std %g", k->N, k->C, k->P, k->G, k->off, k->scale);
        gn_compare(tag, &d, d.rout, d.rmean, d.rrstd, d.rdx, d.rdw, d.rdb);
        gn_free(&d);
    }
}

// In place, NULL outputs, and the thread count: all must give bit-identical results (the
// parameter-gradient partials are per image, summed over images in order, so even the
// thread count does not change them).
static void test_variants(void **state) {
    (void)state;
    const gn_case k = {2, 64, 301, 32, 0.1f, 1.0f};
    gn_data d;
    gn_make(&d, &k, 300);
    gn_run(&d);
    size_t n = d.n, C = (size_t)d.C;
    float *y = tu_alloc_f(n), *g = tu_alloc_f(n), *dw = tu_alloc_f(C), *db = tu_alloc_f(C);
    // forward in place, without saved statistics
    memcpy(y, d.x, n * sizeof(float));
    mav_groupnorm_forward(y, NULL, NULL, y, d.w, d.b, d.N, d.C, d.P, d.G, EPS);
    tu_check_equal("forward in place", y, d.out, n);
    // backward in place (dinp == dout), and with dinp NULL
    memcpy(g, d.dy, n * sizeof(float));
    for (size_t c = 0; c < C; c++) { dw[c] = 0.25f; db[c] = -0.5f; }
    mav_groupnorm_backward(g, NULL, NULL, g, d.x, d.mean, d.rstd, d.w, d.N, d.C, d.P, d.G, d.scratch);
    tu_check_equal("backward in place", g, d.dx, n);
    mav_groupnorm_backward(NULL, dw, db, d.dy, d.x, d.mean, d.rstd, d.w, d.N, d.C, d.P, d.G, d.scratch);
    tu_check_equal("dweight without dinp", dw, d.dw, C);
    tu_check_equal("dbias without dinp", db, d.db, C);
    // one thread vs the default
    int th = mav_threads_get();
    mav_threads_set(1);
    float *y1 = tu_alloc_f(n), *g1 = tu_alloc_f(n);
    for (size_t c = 0; c < C; c++) { dw[c] = 0.25f; db[c] = -0.5f; }
    mav_groupnorm_forward(y1, NULL, NULL, d.x, d.w, d.b, d.N, d.C, d.P, d.G, EPS);
    mav_groupnorm_backward(g1, dw, db, d.dy, d.x, d.mean, d.rstd, d.w, d.N, d.C, d.P, d.G, d.scratch);
    mav_threads_set(th);
    tu_check_equal("forward, 1 thread", y1, d.out, n);
    tu_check_equal("dinp, 1 thread", g1, d.dx, n);
    tu_check_equal("dweight, 1 thread", dw, d.dw, C);
    tu_check_equal("dbias, 1 thread", db, d.db, C);
    // no affine parameters: weight NULL = ones, bias NULL = zeros
    float *ones = tu_alloc_f(C), *zeros = tu_alloc_f(C), *y2 = tu_alloc_f(n);
    for (size_t c = 0; c < C; c++) ones[c] = 1.0f;
    mav_groupnorm_forward(y1, NULL, NULL, d.x, NULL, NULL, d.N, d.C, d.P, d.G, EPS);
    mav_groupnorm_forward(y2, NULL, NULL, d.x, ones, zeros, d.N, d.C, d.P, d.G, EPS);
    tu_check_equal("forward, NULL weight and bias", y1, y2, n);
    mav_groupnorm_backward(g1, NULL, NULL, d.dy, d.x, d.mean, d.rstd, NULL, d.N, d.C, d.P, d.G, d.scratch);
    mav_groupnorm_backward(g, NULL, NULL, d.dy, d.x, d.mean, d.rstd, ones, d.N, d.C, d.P, d.G, d.scratch);
    tu_check_equal("backward, NULL weight", g1, g, n);
    free(y); free(g); free(dw); free(db); free(y1); free(g1); free(ones); free(zeros); free(y2);
    gn_free(&d);
}

// (c) PyTorch F.group_norm on [N, C, P] in float64 from the same f32 inputs (ops_norm.py).
static void test_torch(void **state) {
    (void)state;
    const char *files[] = {"groupnorm_spec", "groupnorm_g1", "groupnorm_mean"};
    for (size_t t = 0; t < sizeof files / sizeof files[0]; t++) {
        mav_st_file *f = tu_ref_open(files[t]);
        gn_case k = {(int)tu_ref_dim(f, "x", 0), (int)tu_ref_dim(f, "x", 1), (int)tu_ref_dim(f, "x", 2),
                     (int)tu_ref_dim(f, "mean", 1), 0.0f, 1.0f};
        gn_data d;
        gn_make(&d, &k, 1);
        size_t C = (size_t)k.C;
        free(d.x); free(d.w); free(d.b); free(d.dy); free(d.xd); free(d.wd); free(d.dyd);
        d.x = tu_ref_f32(f, "x", NULL); d.w = tu_ref_f32(f, "weight", NULL); d.b = tu_ref_f32(f, "bias", NULL);
        d.dy = tu_ref_f32(f, "dout", NULL);
        d.xd = tu_to_d(d.x, d.n); d.wd = tu_to_d(d.w, C); d.dyd = tu_to_d(d.dy, d.n);
        for (size_t c = 0; c < C; c++) { d.dw[c] = 0.0f; d.db[c] = 0.0f; }
        gn_run(&d);
        double *out = tu_ref_f64(f, "out", NULL), *mean = tu_ref_f64(f, "mean", NULL), *rstd = tu_ref_f64(f, "rstd", NULL);
        double *dx = tu_ref_f64(f, "dinp", NULL), *dw = tu_ref_f64(f, "dweight", NULL), *db = tu_ref_f64(f, "dbias", NULL);
        gn_compare(files[t], &d, out, mean, rstd, dx, dw, db);
        free(out); free(mean); free(rstd); free(dx); free(dw); free(db);
        gn_free(&d);
        tu_ref_close(f);
    }
}

MAV_TEST_GROUP(groupnorm, cmocka_unit_test(test_ref_gradcheck), cmocka_unit_test(test_vs_ref),
               cmocka_unit_test(test_variants), cmocka_unit_test(test_torch))
