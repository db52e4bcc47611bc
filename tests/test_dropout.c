// dropout: the mask against a one-element-at-a-time reference of its definition and against
// mav_rng_uniform, backward applying exactly the forward mask, the kept fraction, thread
// invariance, p = 0 and p = 1. (There is no PyTorch comparison: the mask is mav's own Philox
// stream, not torch's generator.)
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "ops/dropout.h"
#include "ref/ref_misc.h"
#include "testutil.h"

// Every element exactly: kept → x·(1/(1−p)) in f32 (the same single rounding PyTorch does),
// dropped → 0. n odd and not a multiple of 4 (a partial last Philox block), offsets nonzero.
static void dropout_vs_reference(void **state) {
    (void)state;
    long sizes[3] = {1, 1003, 100003};  // the last is above the OpenMP threshold
    float ps[3] = {0.1f, 0.5f, 0.9f};
    for (int k = 0; k < 3; k++)
        for (int q = 0; q < 3; q++) {
            long n = sizes[k];
            float p = ps[q], scale = 1.0f / (1.0f - p);
            mav_rng at = {1234 + (uint64_t)k, 77 + (uint64_t)q};
            float *x = tu_alloc_f(n), *out = tu_alloc_f(n), *want = tu_alloc_f(n);
            tu_fill_normal(x, n, 5);
            for (long i = 0; i < n; i++) want[i] = ref_dropout_keep(at.seed, at.offset, i, p) ? x[i] * scale : 0.0f;
            mav_dropout_forward(out, x, n, p, at);
            tu_check_equal("dropout forward vs definition", out, want, n);
            // the stream convention is mav_rng_uniform's: keep iff u_i >= p
            float *u = tu_alloc_f(n);
            mav_rng r = at;
            mav_rng_uniform(&r, u, n);
            assert_true(r.offset == at.offset + mav_dropout_blocks(n));
            for (long i = 0; i < n; i++)
                if ((u[i] >= p) != (out[i] != 0.0f || x[i] == 0.0f))
                    fail_msg("dropout element %ld: u %.9g, p %g, out %g", i, u[i], p, out[i]);
            free(x); free(out); free(want); free(u);
        }
}

// The boundary: an element whose uniform number equals p exactly is kept (u ≥ p), one just
// below is dropped. p is set to an element's own u (a multiple of 2^-24, exact in f32); random
// tests alone would hit u == p only once in ~2^24 draws.
static void dropout_boundary(void **state) {
    (void)state;
    long n = 9;
    mav_rng at = {31, 4};
    float u[9], x[9], out[9];
    mav_rng r = at;
    mav_rng_uniform(&r, u, n);
    for (long i = 0; i < n; i++) x[i] = 1.0f;
    for (long i = 0; i < n; i++) {
        if (u[i] == 0.0f) continue;
        mav_dropout_forward(out, x, n, u[i], at);
        if (out[i] == 0.0f) fail_msg("element %ld with u == p = %.9g was dropped", i, u[i]);
        float below = nextafterf(u[i], 1.0f);  // p just above u: dropped
        mav_dropout_forward(out, x, n, below, at);
        if (out[i] != 0.0f) fail_msg("element %ld with u %.9g < p %.9g was kept", i, u[i], below);
    }
}

// Backward applies exactly the forward mask: with the same `at`, dinp[i] = dout[i]·scale where
// the forward kept element i and 0 where it dropped it, bit for bit; in place works too.
static void dropout_backward_same_mask(void **state) {
    (void)state;
    long n = 40001;
    float p = 0.3f, scale = 1.0f / (1.0f - p);
    mav_rng at = {42, 1000};
    float *x = tu_alloc_f(n), *g = tu_alloc_f(n), *out = tu_alloc_f(n), *dinp = tu_alloc_f(n), *want = tu_alloc_f(n);
    tu_fill_uniform(x, n, 0.5f, 1.5f, 1);  // nonzero, so out == 0 means dropped
    tu_fill_normal(g, n, 2);
    mav_dropout_forward(out, x, n, p, at);
    mav_dropout_backward(dinp, g, n, p, at);
    for (long i = 0; i < n; i++) want[i] = out[i] != 0.0f ? g[i] * scale : 0.0f;
    tu_check_equal("dropout backward mask", dinp, want, n);
    memcpy(want, g, sizeof(float) * n);
    mav_dropout_backward(want, want, n, p, at);  // in place
    tu_check_equal("dropout backward in place", want, dinp, n);
    // a different offset gives a different mask (the stream position matters)
    mav_rng other = {42, 1001};
    mav_dropout_backward(want, g, n, p, other);
    long same = 0;
    for (long i = 0; i < n; i++) same += (want[i] != 0.0f) == (dinp[i] != 0.0f);
    assert_true(same < n);
    free(x); free(g); free(out); free(dinp); free(want);
}

// Kept fraction: the count of kept elements is Binomial(n, 1−p); it must lie within 5 standard
// deviations sqrt(n·p·(1−p)) of n·(1−p) (a false failure has probability ~6e-7 per check).
static void dropout_kept_fraction(void **state) {
    (void)state;
    long n = 200003;
    float ps[4] = {0.05f, 0.3f, 0.5f, 0.8f};
    float *x = tu_alloc_f(n), *out = tu_alloc_f(n);
    for (long i = 0; i < n; i++) x[i] = 1.0f;
    for (int q = 0; q < 4; q++) {
        mav_rng at = mav_rng_fork(9, (uint64_t)q);
        mav_dropout_forward(out, x, n, ps[q], at);
        long kept = 0;
        for (long i = 0; i < n; i++) kept += out[i] != 0.0f;
        double mean = n * (1.0 - ps[q]), sd = sqrt(n * (double)ps[q] * (1.0 - ps[q]));
        if (fabs(kept - mean) > 5 * sd) fail_msg("p %g: kept %ld of %ld, expected %.0f ± 5·%.1f", ps[q], kept, n, mean, sd);
    }
    free(x); free(out);
}

// The mask is a pure function of (seed, offset, i): bit-identical for 1 and 2 threads.
static void dropout_thread_invariant(void **state) {
    (void)state;
    long n = 100001;
    int prev = mav_threads_get();
    mav_rng at = {7, 3};
    float *x = tu_alloc_f(n), *a = tu_alloc_f(n), *b = tu_alloc_f(n);
    tu_fill_normal(x, n, 1);
    mav_threads_set(1);
    mav_dropout_forward(a, x, n, 0.4f, at);
    mav_threads_set(2);
    mav_dropout_forward(b, x, n, 0.4f, at);
    mav_threads_set(prev);
    tu_check_equal("dropout threads 1 vs 2", a, b, n);
    free(x); free(a); free(b);
}

// p = 0 is the identity (bit-exact, also in place); p = 1 drops everything.
static void dropout_edge_rates(void **state) {
    (void)state;
    long n = 1001;
    mav_rng at = {5, 0};
    float *x = tu_alloc_f(n), *out = tu_alloc_f(n), *zero = tu_alloc_f(n);
    tu_fill_normal(x, n, 3);
    mav_dropout_forward(out, x, n, 0.0f, at);
    tu_check_equal("dropout p=0 forward", out, x, n);
    mav_dropout_backward(out, out, n, 0.0f, at);
    tu_check_equal("dropout p=0 backward in place", out, x, n);
    mav_dropout_forward(out, x, n, 1.0f, at);
    tu_check_equal("dropout p=1", out, zero, n);
    free(x); free(out); free(zero);
}

MAV_TEST_GROUP(dropout, cmocka_unit_test(dropout_vs_reference), cmocka_unit_test(dropout_boundary), cmocka_unit_test(dropout_backward_same_mask),
               cmocka_unit_test(dropout_kept_fraction), cmocka_unit_test(dropout_thread_invariant),
               cmocka_unit_test(dropout_edge_rates))
