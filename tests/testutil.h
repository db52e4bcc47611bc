// testutil.h — the test registry and the checks every op test uses.
//
// Registry: each tests/test_<group>.c ends with MAV_TEST_GROUP(<group>, cmocka_unit_test(...), ...).
// The group registers itself at start-up; `mav_tests <group-glob> [<test-glob>]` runs the
// matching groups (CTest runs one group per entry, `ctest -R conv2d`).
//
// Three ways every op is checked (DEVELOPERS brief, "Engineering standards"):
//   1. reference kernel (double, tests/ref/) backward vs central finite differences: tu_gradcheck;
//   2. optimised f32 kernel vs the double reference kernel: tu_check_close_d;
//   3. optimised f32 kernel vs PyTorch: tensors written by tests/reference/*.py, tu_ref_*.
// Every check fails the test (cmocka fail_msg) — there is no "print and continue".
#ifndef MAV_TESTUTIL_H
#define MAV_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "core/rng.h"
#include "io/safetensors.h"

void tu_register(const char *name, const struct CMUnitTest *tests, size_t count);

#define MAV_TEST_GROUP(gname, ...)                                                               \
    static const struct CMUnitTest gname##_group_tests[] = {__VA_ARGS__};                        \
    __attribute__((constructor)) static void gname##_group_register(void) {                     \
        tu_register(#gname, gname##_group_tests, sizeof gname##_group_tests / sizeof gname##_group_tests[0]); \
    }

// ---- PyTorch reference files ($MAV_REF_DIR/<name>.safetensors, made by tests/reference) ----
mav_st_file *tu_ref_open(const char *name);         // fails the test if absent
void tu_ref_close(mav_st_file *f);
float *tu_ref_f32(mav_st_file *f, const char *tensor, size_t *numel);   // malloc'd copy
double *tu_ref_f64(mav_st_file *f, const char *tensor, size_t *numel);  // malloc'd copy (exact for F64)
int64_t tu_ref_dim(mav_st_file *f, const char *tensor, int d);

// ---- comparisons: fail when |got - want| > atol + rtol·|want| anywhere; non-finite values
// must match exactly (both NaN, or the same infinity) ----
void tu_check_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol);
void tu_check_close_d(const char *what, const float *got, const double *want, size_t n, double atol, double rtol);
void tu_check_close_dd(const char *what, const double *got, const double *want, size_t n, double atol, double rtol);
void tu_check_equal(const char *what, const float *got, const float *want, size_t n);  // bit-identical

// ---- data ----
void tu_fill_normal(float *x, size_t n, uint64_t seed);
void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed);
double *tu_to_d(const float *x, size_t n);  // malloc'd
float *tu_to_f(const double *x, size_t n);  // malloc'd
float *tu_alloc_f(size_t n);                // calloc, asserted
double *tu_alloc_d(size_t n);

// ---- finite differences (double) ----
// loss(ctx) evaluates a scalar in double from the current contents of x. Checks
// analytic[i] against (loss(x+eps·e_i) − loss(x−eps·e_i)) / 2eps for up to `max_checks`
// indices spread evenly over x (all of them when n <= max_checks), failing when
// |num − ana| > tol · max(1, |num|, |ana|). x is restored.
typedef double (*tu_loss_fn)(void *ctx);
void tu_gradcheck(const char *what, tu_loss_fn loss, void *ctx, double *x, size_t n, const double *analytic,
                  double eps, double tol, size_t max_checks);

// ---- the mav binary ($MAV_BIN, set by CTest; otherwise ../mav next to the test binary) ----
// Run `mav ARGS` (shell words); stdout (and stderr when with_stderr, else it is discarded)
// captured into *out (malloc'd, may be NULL to discard). Returns the exit status (128 when
// killed by a signal).
int tu_run_mav_ex(const char *args, int with_stderr, char **out);
static inline int tu_run_mav(const char *args, char **out) { return tu_run_mav_ex(args, 1, out); }
// The same into a caller's buffer (at most cap − 1 bytes kept, NUL-terminated).
int tu_run_mav_buf(const char *args, int with_stderr, char *out, size_t cap);
// Fails unless `mav ARGS` exits with `code` and its output contains `needle` (NULL: any).
void tu_expect_mav(const char *args, int code, const char *needle);

// Scale-aware check for whole-network tensors: fails when
// max|got − want| > tol · max(max|want|, floor). Prints the measured ratio either way
// when MAV_TEST_VERBOSE is set.
void tu_check_rel_max(const char *what, const float *got, const double *want, size_t n, double tol, double floor);
#endif
