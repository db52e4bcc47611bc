// embedding: token lookup (forward/backward, id validation) and SPEC §2 timestep embedding:
// reference gradient vs finite differences, f32 kernels vs the double reference, PyTorch.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "ops/embedding.h"
#include "ref/ref_misc.h"
#include "testutil.h"

typedef struct { const int32_t *ids; double *table, *wgt, *out; int R, D; } emb_ctx;

static double emb_loss(void *p) {
    emb_ctx *c = p;
    ref_embedding_forward(c->out, c->ids, c->table, c->R, c->D);
    double s = 0;
    for (long i = 0; i < (long)c->R * c->D; i++) s += c->wgt[i] * c->out[i];
    return s;
}

// Reference scatter-add vs central differences; ids repeat (rows 0, 3, 4 share id 2) and one
// id is never used (its gradient must be 0). Linear loss: only rounding error, tol 1e-6.
static void embedding_ref_gradcheck(void **state) {
    (void)state;
    int32_t ids[6] = {2, 0, 4, 2, 2, 1};
    int R = 6, V = 5, D = 3;
    float f[32];
    emb_ctx c = {ids, NULL, NULL, NULL, R, D};
    tu_fill_normal(f, 32, 1); c.table = tu_to_d(f, V * D);
    tu_fill_normal(f, 32, 2); c.wgt = tu_to_d(f, R * D);
    c.out = tu_alloc_d(R * D);
    double *dt = tu_alloc_d(V * D);
    ref_embedding_backward(dt, c.wgt, ids, R, D);
    tu_gradcheck("embedding dtable", emb_loss, &c, c.table, V * D, dt, 1e-6, 1e-6, 100);
    for (int k = 0; k < D; k++) assert_true(dt[3 * D + k] == 0.0);
    free(c.table); free(c.wgt); free(c.out); free(dt);
}

// f32 vs reference. Forward is a copy: exact. Backward adds up to R rows into one table row
// starting from a random value; f32 error ≤ (count)·2^-24·Σ|terms| ≈ R·6e-8·(R·0.8 + 1):
// atol 1e-7·R² + 1e-6 bounds it (R ≤ 300 here).
static void check_emb(int R, int V, int D, uint64_t seed) {
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(R ? R : 1));
    mav_rng rng = mav_rng_make(seed);
    for (int r = 0; r < R; r++) ids[r] = (int32_t)mav_rng_below(&rng, (uint32_t)V);
    float *table = tu_alloc_f((long)V * D), *dout = tu_alloc_f((long)R * D), *out = tu_alloc_f((long)R * D),
          *dt = tu_alloc_f((long)V * D);
    tu_fill_normal(table, (long)V * D, seed + 1);
    tu_fill_normal(dout, (long)R * D, seed + 2);
    tu_fill_normal(dt, (long)V * D, seed + 3);
    double *rt = tu_to_d(table, (long)V * D), *rdo = tu_to_d(dout, (long)R * D), *rout = tu_alloc_d((long)R * D),
           *rdt = tu_to_d(dt, (long)V * D);
    ref_embedding_forward(rout, ids, rt, R, D);
    ref_embedding_backward(rdt, rdo, ids, R, D);
    mav_embedding_forward(out, ids, table, R, V, D);
    mav_embedding_backward(dt, dout, ids, R, V, D);
    tu_check_close_d("embedding out", out, rout, (size_t)R * D, 0, 0);
    tu_check_close_d("embedding dtable", dt, rdt, (size_t)V * D, 1e-7 * R * R + 1e-6, 0);
    free(ids); free(table); free(dout); free(out); free(dt); free(rt); free(rdo); free(rout); free(rdt);
}

static void embedding_vs_reference(void **state) {
    (void)state;
    check_emb(1, 1, 1, 10);      // single id, single column
    check_emb(1, 5, 17, 20);     // R = 1, odd width
    check_emb(40, 7, 37, 30);    // many repeats of few ids, width not a multiple of 16
    check_emb(300, 50, 129, 40); // above the OpenMP threshold: column slices split across threads
}

// The scatter-add splits columns, never rows: bit-identical for 1 and 2 threads.
static void embedding_backward_thread_invariant(void **state) {
    (void)state;
    int R = 300, V = 11, D = 131, prev = mav_threads_get();
    int32_t ids[300];
    for (int r = 0; r < R; r++) ids[r] = (r * 7) % V;
    float *dout = tu_alloc_f((long)R * D), *d1 = tu_alloc_f((long)V * D), *d2 = tu_alloc_f((long)V * D);
    tu_fill_normal(dout, (long)R * D, 5);
    mav_threads_set(1);
    mav_embedding_backward(d1, dout, ids, R, V, D);
    mav_threads_set(2);
    mav_embedding_backward(d2, dout, ids, R, V, D);
    mav_threads_set(prev);
    tu_check_equal("embedding dtable threads 1 vs 2", d1, d2, (size_t)V * D);
    free(dout); free(d1); free(d2);
}

static void embedding_check_ids(void **state) {
    (void)state;
    int32_t good[4] = {0, 9, 3, 9}, high[7] = {1, 2, 3, 4, 5, 10, 0}, neg[3] = {0, -1, 2};
    assert_int_equal(mav_embedding_check_ids(good, 4, 10), MAV_OK);
    assert_int_equal(mav_embedding_check_ids(good, 0, 10), MAV_OK);
    assert_int_equal(mav_embedding_check_ids(high, 7, 10), MAV_ERR_ARG);
    if (!strstr(mav_last_error(), "position 5")) fail_msg("message does not name the position: %s", mav_last_error());
    if (!strstr(mav_last_error(), "10")) fail_msg("message does not name the id: %s", mav_last_error());
    assert_int_equal(mav_embedding_check_ids(neg, 3, 10), MAV_ERR_ARG);
    if (!strstr(mav_last_error(), "position 1")) fail_msg("message does not name the position: %s", mav_last_error());
    mav_clear_error();
}

// Timestep embedding vs the double reference (same formula, computed independently). The only
// difference is the final rounding to f32 (≤ 2^-25 ≈ 3e-8 absolute for values in [-1, 1]) plus
// libm last-bit differences (~1e-16): atol 6e-8. Includes non-integer and large t, d = 2
// (freq 1 only), and widths that are not multiples of 4 or 8.
static void timestep_vs_reference(void **state) {
    (void)state;
    float t[7] = {0.0f, 1.0f, 0.37f, 17.25f, 999.5f, 1000.0f, 30.0f};
    int widths[5] = {2, 6, 64, 90, 320};
    for (int k = 0; k < 5; k++) {
        int d = widths[k];
        float *out = tu_alloc_f(7L * d);
        double *td = tu_to_d(t, 7), *ref = tu_alloc_d(7L * d);
        mav_timestep_embedding(out, t, 7, d);
        ref_timestep_embedding(ref, td, 7, d);
        tu_check_close_d("timestep embedding", out, ref, 7L * d, 6e-8, 0);
        free(out); free(td); free(ref);
    }
    // d = 2: [cos t, sin t] exactly as the definition says (cos first)
    float o2[2], t1 = 2.0f;
    mav_timestep_embedding(o2, &t1, 1, 2);
    assert_true(o2[0] == (float)cos(2.0) && o2[1] == (float)sin(2.0));
}

// PyTorch (float64). Embedding forward is exact; dtable sums ≤ 3 rows of N(0,1): f32 error ≤
// 3·6e-8·3·|x| ≈ 2e-6, atol 5e-6. Timestep embedding at t ∈ {0, 1, 999.5, 1000}, d ∈ {64, 320}:
// f32 rounding 3e-8 and libm/torch last-bit differences: atol 1e-7 (the brief's 1e-6 is looser).
static void embedding_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("misc_embedding");
    int R = (int)tu_ref_dim(f, "ids", 0), V = (int)tu_ref_dim(f, "table", 0), D = (int)tu_ref_dim(f, "table", 1);
    float *idsf = tu_ref_f32(f, "ids", NULL), *table = tu_ref_f32(f, "table", NULL), *dout = tu_ref_f32(f, "dout", NULL);
    double *out_t = tu_ref_f64(f, "out", NULL), *dt_t = tu_ref_f64(f, "dtable", NULL);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)R);
    for (int r = 0; r < R; r++) ids[r] = (int32_t)idsf[r];
    assert_int_equal(mav_embedding_check_ids(ids, R, V), MAV_OK);
    float *out = tu_alloc_f((long)R * D), *dt = tu_alloc_f((long)V * D);
    mav_embedding_forward(out, ids, table, R, V, D);
    mav_embedding_backward(dt, dout, ids, R, V, D);
    tu_check_close_d("torch embedding out", out, out_t, (size_t)R * D, 0, 0);
    tu_check_close_d("torch embedding dtable", dt, dt_t, (size_t)V * D, 5e-6, 0);
    free(idsf); free(table); free(dout); free(out_t); free(dt_t); free(ids); free(out); free(dt);
    tu_ref_close(f);

    f = tu_ref_open("misc_timestep");
    size_t n;
    float *t = tu_ref_f32(f, "t", &n);
    const char *names[2] = {"emb64", "emb320"};
    int widths[2] = {64, 320};
    for (int k = 0; k < 2; k++) {
        double *want = tu_ref_f64(f, names[k], NULL);
        float *got = tu_alloc_f(n * (size_t)widths[k]);
        mav_timestep_embedding(got, t, (int)n, widths[k]);
        tu_check_close_d(names[k], got, want, n * (size_t)widths[k], 1e-7, 0);
        free(want); free(got);
    }
    free(t);
    tu_ref_close(f);
}

MAV_TEST_GROUP(embedding, cmocka_unit_test(embedding_ref_gradcheck), cmocka_unit_test(embedding_vs_reference),
               cmocka_unit_test(embedding_backward_thread_invariant), cmocka_unit_test(embedding_check_ids),
               cmocka_unit_test(timestep_vs_reference), cmocka_unit_test(embedding_vs_torch))
