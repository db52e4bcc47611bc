// bench.c — timing utilities for `mav bench` (see bench.h).
#include "bench/bench.h"

#include <stdlib.h>
#include <time.h>

double mav_bench_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// qsort order for doubles (ascending).
static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double mav_bench_median(double *x, int n) {
    if (n <= 0) return 0.0;
    qsort(x, (size_t)n, sizeof *x, cmp_double);
    return n % 2 ? x[n / 2] : 0.5 * (x[n / 2 - 1] + x[n / 2]);
}

double mav_bench_gflops(double flops, double seconds) { return seconds > 0.0 ? flops / seconds * 1e-9 : 0.0; }

// Runs are recorded in a fixed-size array so the harness itself never allocates between
// timed calls (a malloc/free pair can fault pages and land inside the next measurement).
#define BENCH_MAX_RUNS 1000

mav_bench_timing mav_bench_time(mav_bench_fn fn, void *ctx, double budget_s, int min_runs, int max_runs) {
    static _Thread_local double t[BENCH_MAX_RUNS];
    if (min_runs < 1) min_runs = 1;
    if (max_runs > BENCH_MAX_RUNS) max_runs = BENCH_MAX_RUNS;
    if (max_runs < min_runs) max_runs = min_runs;
    fn(ctx);  // warm-up: first-touch page faults, cold caches, OpenMP/BLAS thread start-up
    double spent = 0.0;
    int n = 0;
    while (n < max_runs && (n < min_runs || spent < budget_s)) {
        double t0 = mav_bench_now();
        fn(ctx);
        t[n] = mav_bench_now() - t0;
        spent += t[n++];
    }
    mav_bench_timing r = {.runs = n};
    r.median_s = mav_bench_median(t, n);  // sorted afterwards
    r.min_s = t[0];
    r.max_s = t[n - 1];
    return r;
}
