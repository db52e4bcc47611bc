// bench.h — timing for `mav bench`: a monotonic clock, warm-up, repeat-until-budget, medians,
// and the machine's measured FMA peak (the yardstick every GFLOP/s figure is compared with).
//
// A figure is the median of at least `min_runs` timed calls made after one untimed warm-up
// call; more calls are made while the time spent stays under the budget (and below
// `max_runs`). The median, not the mean or the best, because this is a shared 2-vCPU guest
// whose neighbours produce occasional slow outliers (MACHINE-NOTES.md: ±10–20%).
#ifndef MAV_BENCH_H
#define MAV_BENCH_H

#include <stdint.h>

// Seconds on CLOCK_MONOTONIC (arbitrary origin; only differences mean anything).
double mav_bench_now(void);

// Median of x[0..n) (sorts x in place); 0 for n <= 0.
double mav_bench_median(double *x, int n);

typedef struct {
    double median_s;  // median seconds per call
    double min_s, max_s;
    int runs;         // timed calls (warm-up excluded)
} mav_bench_timing;

typedef void (*mav_bench_fn)(void *ctx);

// Times fn(ctx): one warm-up call, then at least min_runs (>= 1) timed calls, continuing while
// the timed calls so far have taken less than budget_s in total and runs < max_runs.
mav_bench_timing mav_bench_time(mav_bench_fn fn, void *ctx, double budget_s, int min_runs, int max_runs);

// GFLOP/s for `flops` floating-point operations done in `seconds` (0 when seconds <= 0).
double mav_bench_gflops(double flops, double seconds);

// Whether this CPU runs the `bits`-wide FMA peak kernel (256: AVX2+FMA, 512: AVX-512F).
int mav_bench_has_fma(int bits);

// Measured single-precision FMA peak in GFLOP/s with `bits`-wide vectors (256 or 512) on
// `threads` OpenMP threads (<= 0: mav_threads_get()): every thread runs 12 independent FMA
// chains held in registers (more than FMA latency × FMA ports on Zen 3/4/5 and Intel cores
// since Haswell), each call calibrated to last about `seconds`; the best of `reps` calls.
// Counts 2 flops per lane. Returns 0 when !mav_bench_has_fma(bits).
double mav_bench_fma_peak(int bits, int threads, double seconds, int reps);

#endif
