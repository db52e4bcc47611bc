// Core: f16/bf16 codecs, Philox RNG, arena planning, the parameter layout.
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/dtype.h"
#include "core/params.h"
#include "core/rng.h"
#include "core/threads.h"
#include "testutil.h"

static uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

// f16 <- f32 must equal the F16C hardware conversion with round-to-nearest-even for every
// float. We sweep all 2^32 bit patterns with a stride co-prime to 2^32 plus every value
// near the f16 boundaries (exponents 101..143 cover subnormals, normals and overflow).
static void f16_matches_hardware(void **state) {
    (void)state;
    uint64_t checked = 0;
    for (uint64_t i = 0; i < (1ull << 32); i += 4099) {
        uint32_t u = (uint32_t)i;
        float f = u2f(u);
        uint16_t want = (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
        uint16_t got = mav_f32_to_f16(f);
        if (isnan(f)) { if ((got & 0x7c00) != 0x7c00 || (got & 0x3ff) == 0) fail_msg("NaN %08x -> %04x", u, got); continue; }
        if (got != want) fail_msg("f32 %08x (%.9g): f16 %04x, hardware %04x", u, f, got, want);
        checked++;
    }
    for (uint32_t e = 101; e <= 143; e++)
        for (uint32_t m = 0; m < (1u << 23); m += 7) {
            for (uint32_t s = 0; s < 2; s++) {
                uint32_t u = (s << 31) | (e << 23) | m;
                uint16_t want = (uint16_t)_cvtss_sh(u2f(u), _MM_FROUND_TO_NEAREST_INT);
                if (mav_f32_to_f16(u2f(u)) != want) fail_msg("f32 %08x: f16 %04x, hardware %04x", u, mav_f32_to_f16(u2f(u)), want);
            }
            // exact ties: mantissa with the 13 dropped bits = 0x1000
            uint32_t t = (e << 23) | ((m & ~0x1fffu) | 0x1000u);
            if (mav_f32_to_f16(u2f(t)) != (uint16_t)_cvtss_sh(u2f(t), _MM_FROUND_TO_NEAREST_INT)) fail_msg("tie %08x", t);
        }
    assert_true(checked > 1000000);
    // f16 -> f32 for all 65536 patterns vs hardware
    for (uint32_t h = 0; h < 65536; h++) {
        float want = _cvtsh_ss((unsigned short)h), got = mav_f16_to_f32((uint16_t)h);
        if (isnan(want)) { assert_true(isnan(got)); continue; }
        if (f2u(got) != f2u(want)) fail_msg("f16 %04x -> %08x, hardware %08x", h, f2u(got), f2u(want));
    }
}

// bf16: round to nearest even of the top 16 bits, computed independently with doubles.
static void bf16_round_to_nearest_even(void **state) {
    (void)state;
    for (uint64_t i = 0; i < (1ull << 32); i += 65537 * 3 + 2) {
        uint32_t u = (uint32_t)i;
        float f = u2f(u);
        uint16_t got = mav_f32_to_bf16(f);
        if (isnan(f)) { assert_true(isnan(mav_bf16_to_f32(got))); continue; }
        uint16_t lo = (uint16_t)(u >> 16), hi = (uint16_t)(lo + 1);
        double dl = mav_bf16_to_f32(lo), dh = mav_bf16_to_f32(hi), df = f;
        uint16_t want;
        if ((u & 0xffff) == 0) want = lo;
        else if (isinf(dh) && !isinf(dl) && (u & 0x7fffffff) >= 0x7f7f8000u) want = ((u & 0x7fffffff) == 0x7f7f8000u && !(lo & 1)) ? lo : hi;
        else {
            double el = fabs(df - dl), eh = fabs(dh - df);
            want = el < eh ? lo : eh < el ? hi : ((lo & 1) ? hi : lo);
        }
        if (got != want) fail_msg("f32 %08x: bf16 %04x, want %04x", u, got, want);
    }
    assert_int_equal(mav_f32_to_bf16(1.0f), 0x3f80);
    assert_int_equal(mav_f32_to_bf16(u2f(0x3f808000)), 0x3f80);  // tie, even stays
    assert_int_equal(mav_f32_to_bf16(u2f(0x3f818000)), 0x3f82);  // tie, odd rounds up
    assert_true(isinf(mav_bf16_to_f32(mav_f32_to_bf16(u2f(0x7f7fffff)))));
}

// Philox-4x32-10 known-answer vectors from Random123 (kat_vectors): counter {0,0,0,0} key
// {0,0} and counter all-ones key all-ones. Our counter is (lo, hi, 0, 0) of a 64-bit value.
static void philox_known_answers(void **state) {
    (void)state;
    uint32_t o[4];
    mav_philox4x32(0, 0, o);
    assert_int_equal(o[0], 0x6627e8d5u);
    assert_int_equal(o[1], 0xe169c58du);
    assert_int_equal(o[2], 0xbc57ac4cu);
    assert_int_equal(o[3], 0x9b00dbd8u);
}

static void rng_thread_independent_and_moments(void **state) {
    (void)state;
    enum { N = 1 << 18 };
    float *a = tu_alloc_f(N), *b = tu_alloc_f(N);
    mav_threads_set(1);
    mav_rng r1 = mav_rng_make(42);
    mav_rng_normal(&r1, a, N);
    mav_threads_set(2);
    mav_rng r2 = mav_rng_make(42);
    mav_rng_normal(&r2, b, N);
    mav_threads_set(0);
    tu_check_equal("normal, 1 vs 2 threads", a, b, N);
    assert_true(r1.offset == r2.offset && r1.offset == N / 4);
    double s = 0, s2 = 0;
    for (int i = 0; i < N; i++) { s += a[i]; s2 += (double)a[i] * a[i]; }
    double mean = s / N, var = s2 / N - mean * mean;
    // 5-sigma bounds for N samples: mean ~ N(0, 1/N), var ~ N(1, 2/N)
    if (fabs(mean) > 5 / sqrt(N) || fabs(var - 1) > 5 * sqrt(2.0 / N)) fail_msg("normal moments: mean %g var %g", mean, var);
    // A split draw continues the same stream: draw 10 then N-10 equals one draw only at block
    // granularity; the documented rule is element i <- block offset + i/4, so draws of
    // multiples of 4 concatenate exactly.
    mav_rng r3 = mav_rng_make(42);
    mav_rng_normal(&r3, b, 12);
    mav_rng_normal(&r3, b + 12, N - 12);
    tu_check_equal("split draw", a, b, N);
    mav_rng u = mav_rng_make(7);
    mav_rng_uniform(&u, a, N);
    for (int i = 0; i < N; i++) if (!(a[i] >= 0.0f && a[i] < 1.0f)) fail_msg("uniform out of [0,1): %g", a[i]);
    // different seeds and forks differ
    mav_rng f1 = mav_rng_fork(42, 1), f2 = mav_rng_fork(42, 2);
    assert_true(f1.seed != f2.seed);
    uint32_t hist[10] = {0};
    mav_rng rb = mav_rng_make(3);
    for (int i = 0; i < 100000; i++) { uint32_t k = mav_rng_below(&rb, 10); assert_true(k < 10); hist[k]++; }
    for (int k = 0; k < 10; k++) if (fabs(hist[k] - 10000.0) > 5 * sqrt(9000.0)) fail_msg("below(10) bucket %d: %u", k, hist[k]);
    free(a); free(b);
}

static void arena_plans_exact_size(void **state) {
    (void)state;
    mav_arena a;
    mav_arena_measure(&a);
    assert_null(mav_arena_floats(&a, 3));
    assert_null(mav_arena_alloc(&a, 100));
    size_t m = mav_arena_mark(&a);
    mav_arena_floats(&a, 1000);
    mav_arena_release(&a, m);
    mav_arena_floats(&a, 10);
    size_t need = a.peak;
    // 12 B at 0, 100 B at 64, 4000 B at 192 (peak 4192), released, 40 B at 192 again.
    assert_int_equal(need, 4192);
    assert_int_equal(a.used, 232);
    mav_arena real;
    assert_int_equal(mav_arena_init(&real, need), MAV_OK);
    float *x = mav_arena_floats(&real, 3);
    uint8_t *y = mav_arena_alloc(&real, 100);
    m = mav_arena_mark(&real);
    float *z = mav_arena_floats(&real, 1000);
    mav_arena_release(&real, m);
    float *w = mav_arena_floats(&real, 10);
    assert_true(((uintptr_t)x % 64) == 0 && ((uintptr_t)y % 64) == 0 && ((uintptr_t)z % 64) == 0);
    assert_ptr_equal(z, w);  // released space is reused
    assert_true(real.peak == need);
    mav_arena_free(&real);
}

static void params_share_one_layout(void **state) {
    (void)state;
    mav_params p;
    mav_params_init(&p);
    int64_t s1[2] = {3, 5}, s2[1] = {7}, s3[4] = {2, 3, 3, 3};
    int a = mav_params_add(&p, "a.weight", 2, s1);
    int b = mav_params_add(&p, "a.bias", 1, s2);
    int c = mav_params_add(&p, "conv.weight", 4, s3);
    assert_int_equal(mav_params_find(&p, "a.bias"), b);
    assert_int_equal(mav_params_find(&p, "nope"), -1);
    assert_int_equal(mav_params_numel(&p), 15 + 7 + 54);
    assert_int_equal(p.items[a].offset % 16, 0);
    assert_int_equal(p.items[c].offset % 16, 0);
    assert_int_equal(mav_params_alloc(&p, 1, 1), MAV_OK);
    assert_true(p.grad == p.value + p.total && p.m == p.grad + p.total && p.v == p.m + p.total);
    mav_param_grad(&p, c)[53] = 1.0f;
    assert_true(p.grad[p.items[c].offset + 53] == 1.0f);
    mav_params_zero_grad(&p);
    assert_true(mav_param_grad(&p, c)[53] == 0.0f);
    mav_params_free(&p);
}

MAV_TEST_GROUP(core,
    cmocka_unit_test(f16_matches_hardware),
    cmocka_unit_test(bf16_round_to_nearest_even),
    cmocka_unit_test(philox_known_answers),
    cmocka_unit_test(rng_thread_independent_and_moments),
    cmocka_unit_test(arena_plans_exact_size),
    cmocka_unit_test(params_share_one_layout))
