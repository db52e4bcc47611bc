// Layout ops (transpose) and the ResBlock modulation h·(1 + scale) + shift: finite
// differences on the double reference, f32 kernel vs reference, and PyTorch (ops_layout.py).
#include <stdlib.h>
#include <string.h>

#include "ops/modulate.h"
#include "ops/transpose.h"
#include "ref/ref_layout.h"
#include "testutil.h"

static void transpose_is_exact_and_self_inverse(void **state) {
    (void)state;
    static const long shapes[][3] = {{1, 1, 1}, {3, 7, 5}, {2, 33, 65}, {1, 64, 1}, {4, 1, 31}, {2, 100, 37}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = (int)shapes[s][0];
        long R = shapes[s][1], C = shapes[s][2], n = B * R * C;
        float *x = tu_alloc_f(n), *y = tu_alloc_f(n), *z = tu_alloc_f(n);
        tu_fill_normal(x, n, 100 + s);
        mav_transpose_forward(y, x, B, R, C);
        for (int b = 0; b < B; b++)
            for (long r = 0; r < R; r++)
                for (long c = 0; c < C; c++)
                    if (y[(b * C + c) * R + r] != x[(b * R + r) * C + c]) fail_msg("transpose [%d,%ld,%ld] wrong", B, R, C);
        mav_transpose_backward(z, y, B, R, C);  // gradient of a transpose = transpose back
        tu_check_equal("transpose round trip", z, x, n);
        free(x); free(y); free(z);
    }
}

typedef struct { double *n, *ss, *r; int B, F, C; long P; } mod_ctx;

static double mod_loss(void *p) {
    mod_ctx *c = p;
    long n = (long)c->B * c->F * c->C * c->P;
    double *out = malloc(n * sizeof *out), s = 0;
    ref_modulate_forward(out, c->n, c->ss, c->B, c->F, c->C, c->P);
    for (long i = 0; i < n; i++) s += out[i] * c->r[i];
    free(out);
    return s;
}

static void modulate_gradcheck_and_kernel(void **state) {
    (void)state;
    static const int shapes[][4] = {{1, 1, 1, 1}, {2, 3, 5, 7}, {1, 4, 32, 17}, {3, 1, 2, 64}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int B = shapes[s][0], F = shapes[s][1], C = shapes[s][2];
        long P = shapes[s][3], n = (long)B * F * C * P, m = 2L * B * C;
        float *nf = tu_alloc_f(n), *ssf = tu_alloc_f(m), *rf = tu_alloc_f(n);
        tu_fill_normal(nf, n, 1 + s);
        tu_fill_normal(ssf, m, 2 + s);
        tu_fill_normal(rf, n, 3 + s);
        mod_ctx c = {tu_to_d(nf, n), tu_to_d(ssf, m), tu_to_d(rf, n), B, F, C, P};
        double *dn = tu_alloc_d(n), *dss = tu_alloc_d(m);
        ref_modulate_backward(dn, dss, c.r, c.n, c.ss, B, F, C, P);
        // the loss is bilinear in (n, ss): central differences are exact up to rounding
        tu_gradcheck("modulate d n", mod_loss, &c, c.n, n, dn, 1e-6, 1e-7, 200);
        tu_gradcheck("modulate d ss", mod_loss, &c, c.ss, m, dss, 1e-6, 1e-7, 200);
        // f32 kernel vs double reference: one multiply-add per element (2 roundings), and
        // sums over F·P terms for dss (worst case F·P·2^-24 relative to Σ|terms|)
        float *out = tu_alloc_f(n), *dnf = tu_alloc_f(n), *dssf = tu_alloc_f(m);
        double *outd = tu_alloc_d(n);
        mav_modulate_forward(out, nf, ssf, B, F, C, P);
        ref_modulate_forward(outd, c.n, c.ss, B, F, C, P);
        tu_check_close_d("modulate forward", out, outd, n, 1e-6, 3e-7);
        mav_modulate_backward(dnf, dssf, rf, nf, ssf, B, F, C, P);
        tu_check_close_d("modulate d n", dnf, dn, n, 1e-6, 3e-7);
        tu_check_close_d("modulate d ss", dssf, dss, m, 1e-6 * F * P, 1e-6);
        // in place (dn == dout) as the ResBlock uses it
        memcpy(dnf, rf, n * sizeof *dnf);
        mav_modulate_backward(dnf, dssf, dnf, nf, ssf, B, F, C, P);
        tu_check_close_d("modulate d n in place", dnf, dn, n, 1e-6, 3e-7);
        free(nf); free(ssf); free(rf); free(c.n); free(c.ss); free(c.r); free(dn); free(dss);
        free(out); free(dnf); free(dssf); free(outd);
    }
}

static void modulate_vs_pytorch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("layout_modulate");
    int B = (int)tu_ref_dim(f, "n", 0), F = (int)tu_ref_dim(f, "n", 1), C = (int)tu_ref_dim(f, "n", 2);
    long P = tu_ref_dim(f, "n", 3);
    size_t n, m;
    float *nf = tu_ref_f32(f, "n", &n), *ss = tu_ref_f32(f, "ss", &m), *dout = tu_ref_f32(f, "dout", NULL);
    double *out = tu_ref_f64(f, "out", NULL), *dn = tu_ref_f64(f, "dn", NULL), *dss = tu_ref_f64(f, "dss", NULL);
    float *o = tu_alloc_f(n), *g = tu_alloc_f(n), *gs = tu_alloc_f(m);
    mav_modulate_forward(o, nf, ss, B, F, C, P);
    mav_modulate_backward(g, gs, dout, nf, ss, B, F, C, P);
    tu_check_close_d("modulate vs torch: out", o, out, n, 1e-6, 3e-7);
    tu_check_close_d("modulate vs torch: dn", g, dn, n, 1e-6, 3e-7);
    tu_check_close_d("modulate vs torch: dss", gs, dss, m, 1e-6 * F * P, 1e-6);
    free(nf); free(ss); free(dout); free(out); free(dn); free(dss); free(o); free(g); free(gs);
    tu_ref_close(f);
}

MAV_TEST_GROUP(layout,
    cmocka_unit_test(transpose_is_exact_and_self_inverse),
    cmocka_unit_test(modulate_gradcheck_and_kernel),
    cmocka_unit_test(modulate_vs_pytorch))
