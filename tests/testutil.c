#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <libgen.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/rng.h"

mav_st_file *tu_ref_open(const char *name) {
    const char *dir = getenv("MAV_REF_DIR");
    if (!dir) fail_msg("MAV_REF_DIR is not set: run the tests through ctest (which generates the PyTorch references)");
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.safetensors", dir, name);
    mav_st_file *f = calloc(1, sizeof *f);
    if (mav_st_open(f, path) != MAV_OK) fail_msg("reference file: %s", mav_last_error());
    return f;
}

void tu_ref_close(mav_st_file *f) { mav_st_close(f); free(f); }

static const mav_st_tensor *ref_get(mav_st_file *f, const char *tensor) {
    const mav_st_tensor *t = mav_st_find(f, tensor);
    if (!t) fail_msg("%s: reference tensor \"%s\" missing", f->path, tensor);
    return t;
}

float *tu_ref_f32(mav_st_file *f, const char *tensor, size_t *numel) {
    const mav_st_tensor *t = ref_get(f, tensor);
    float *x = tu_alloc_f(t->numel);
    mav_st_to_f32(t, x);
    if (numel) *numel = t->numel;
    return x;
}

double *tu_ref_f64(mav_st_file *f, const char *tensor, size_t *numel) {
    const mav_st_tensor *t = ref_get(f, tensor);
    double *x = tu_alloc_d(t->numel);
    if (t->dtype == MAV_F64) {
        memcpy(x, t->data, t->numel * 8);
    } else {
        float *tmp = tu_alloc_f(t->numel);
        mav_st_to_f32(t, tmp);
        for (size_t i = 0; i < t->numel; i++) x[i] = tmp[i];
        free(tmp);
    }
    if (numel) *numel = t->numel;
    return x;
}

int64_t tu_ref_dim(mav_st_file *f, const char *tensor, int d) {
    const mav_st_tensor *t = ref_get(f, tensor);
    if (d >= t->ndim) fail_msg("%s: tensor \"%s\" has no dim %d", f->path, tensor, d);
    return t->shape[d];
}

static void check_close_generic(const char *what, size_t n, double atol, double rtol, double (*g)(size_t, const void *),
                                const void *gp, double (*w)(size_t, const void *), const void *wp) {
    size_t worst = 0, bad = 0;
    double worst_excess = -1.0, max_abs = 0.0;
    for (size_t i = 0; i < n; i++) {
        double a = g(i, gp), b = w(i, wp);
        double err = fabs(a - b);
        if (!isfinite(a) || !isfinite(b)) {
            // non-finite values must match exactly: both NaN, or the same infinity
            if (!(isnan(a) && isnan(b)) && a != b) fail_msg("%s: non-finite mismatch at %zu: got %g want %g", what, i, a, b);
            continue;
        }
        if (err > max_abs) max_abs = err;
        double excess = err - (atol + rtol * fabs(b));
        if (excess > 0) bad++;
        if (excess > worst_excess) { worst_excess = excess; worst = i; }
    }
    if (bad) {
        fail_msg("%s: %zu of %zu values differ beyond atol %g + rtol %g; worst at %zu: got %.9g want %.9g (max abs err %.3g)",
                 what, bad, n, atol, rtol, worst, g(worst, gp), w(worst, wp), max_abs);
    }
}

static double get_f(size_t i, const void *p) { return ((const float *)p)[i]; }
static double get_d(size_t i, const void *p) { return ((const double *)p)[i]; }

void tu_check_close(const char *what, const float *got, const float *want, size_t n, double atol, double rtol) {
    check_close_generic(what, n, atol, rtol, get_f, got, get_f, want);
}
void tu_check_close_d(const char *what, const float *got, const double *want, size_t n, double atol, double rtol) {
    check_close_generic(what, n, atol, rtol, get_f, got, get_d, want);
}
void tu_check_close_dd(const char *what, const double *got, const double *want, size_t n, double atol, double rtol) {
    check_close_generic(what, n, atol, rtol, get_d, got, get_d, want);
}
void tu_check_equal(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (memcmp(&got[i], &want[i], sizeof(float)) != 0)
            fail_msg("%s: not bit-identical at %zu: %.9g vs %.9g", what, i, got[i], want[i]);
}

void tu_fill_normal(float *x, size_t n, uint64_t seed) { mav_rng r = mav_rng_make(seed); mav_rng_normal(&r, x, n); }

void tu_fill_uniform(float *x, size_t n, float lo, float hi, uint64_t seed) {
    mav_rng r = mav_rng_make(seed);
    mav_rng_uniform(&r, x, n);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * x[i];
}

float *tu_alloc_f(size_t n) { float *p = calloc(n ? n : 1, sizeof(float)); assert_non_null(p); return p; }
double *tu_alloc_d(size_t n) { double *p = calloc(n ? n : 1, sizeof(double)); assert_non_null(p); return p; }
double *tu_to_d(const float *x, size_t n) { double *d = tu_alloc_d(n); for (size_t i = 0; i < n; i++) d[i] = x[i]; return d; }
float *tu_to_f(const double *x, size_t n) { float *f = tu_alloc_f(n); for (size_t i = 0; i < n; i++) f[i] = (float)x[i]; return f; }

void tu_gradcheck(const char *what, tu_loss_fn loss, void *ctx, double *x, size_t n, const double *analytic,
                  double eps, double tol, size_t max_checks) {
    size_t checks = n < max_checks ? n : max_checks;
    for (size_t c = 0; c < checks; c++) {
        size_t i = checks == n ? c : (size_t)((double)c * (double)(n - 1) / (double)(checks - 1 ? checks - 1 : 1));
        double saved = x[i];
        x[i] = saved + eps;
        double lp = loss(ctx);
        x[i] = saved - eps;
        double lm = loss(ctx);
        x[i] = saved;
        double num = (lp - lm) / (2 * eps), ana = analytic[i];
        double scale = fmax(1.0, fmax(fabs(num), fabs(ana)));
        if (fabs(num - ana) > tol * scale)
            fail_msg("%s: gradient [%zu] analytic %.12g vs finite difference %.12g (tol %g)", what, i, ana, num, tol);
    }
}

void tu_check_rel_max(const char *what, const float *got, const double *want, size_t n, double tol, double floor) {
    double maxw = 0.0, maxe = 0.0;
    size_t worst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) fail_msg("%s: non-finite value %g at %zu", what, got[i], i);
        if (fabs(want[i]) > maxw) maxw = fabs(want[i]);
        double e = fabs(got[i] - want[i]);
        if (e > maxe) { maxe = e; worst = i; }
    }
    double scale = maxw > floor ? maxw : floor, ratio = maxe / scale;
    if (getenv("MAV_TEST_VERBOSE")) printf("  %-48s max|err| / max|ref| = %.2e\n", what, ratio);
    if (ratio > tol)
        fail_msg("%s: max|err| %.3g at %zu (got %.9g, want %.9g) is %.2e of max|ref| %.3g; tolerance %.1e", what, maxe,
                 worst, got[worst], want[worst], ratio, maxw, tol);
}

static const char *mav_bin(void) {
    static char path[4096];
    const char *env = getenv("MAV_BIN");
    if (env && *env) return env;
    char self[4000];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) fail_msg("MAV_BIN is not set and /proc/self/exe is unreadable");
    self[n] = 0;
    snprintf(path, sizeof path, "%s/../mav", dirname(self));  // <build>/tests/../mav
    if (access(path, X_OK) != 0) fail_msg("mav binary not found: set MAV_BIN (tried %s)", path);
    return path;
}

int tu_run_mav_ex(const char *args, int with_stderr, char **out) {
    const char *bin = mav_bin();
    size_t len = strlen(bin) + strlen(args) + 32;
    char *cmd = malloc(len);
    assert_non_null(cmd);
    snprintf(cmd, len, "'%s' %s %s", bin, args, with_stderr ? "2>&1" : "2>/dev/null");
    FILE *p = popen(cmd, "r");
    free(cmd);
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, k;
    char *buf = malloc(cap);
    assert_non_null(buf);
    while ((k = fread(buf + n, 1, cap - 1 - n, p)) > 0) {
        n += k;
        if (n + 1 >= cap) { cap *= 2; buf = realloc(buf, cap); assert_non_null(buf); }
    }
    buf[n] = 0;
    int st = pclose(p);
    if (out) *out = buf; else free(buf);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

int tu_run_mav_buf(const char *args, int with_stderr, char *out, size_t cap) {
    char *all;
    int rc = tu_run_mav_ex(args, with_stderr, &all);
    snprintf(out, cap, "%s", all);
    free(all);
    return rc;
}

void tu_expect_mav(const char *args, int code, const char *needle) {
    char *out;
    int rc = tu_run_mav(args, &out);
    if (rc != code) fail_msg("mav %s: exit %d, want %d; output:\n%s", args, rc, code, out);
    if (needle && !strstr(out, needle)) fail_msg("mav %s: output lacks \"%s\":\n%s", args, needle, out);
    free(out);
}
