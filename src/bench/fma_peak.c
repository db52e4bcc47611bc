// fma_peak.c — the measured single-precision FMA peak (see bench.h).
//
// Why measure instead of computing cores × GHz × 32: this is a KVM guest whose clock and
// sibling load are unknown; the ratio that matters is "how close does a kernel get to what
// this vCPU actually delivers", so the yardstick is taken on the same machine, same run.
#include "bench/bench.h"

#include <immintrin.h>
#include <omp.h>

#include "core/threads.h"

#define FMA_CHAINS 12  // independent accumulators: > latency (4-5 cycles) × 2 FMA ports
#define FMA_LANES 8    // floats per __m256

// iters × 12 dependent-chain FMAs acc = acc·a + b. `seed` is a runtime value so nothing can be
// constant-folded; a < 1 keeps every chain converging to b/(1−a), away from overflow and
// denormals. The returned sum depends on every chain, and callers publish it to a volatile,
// so the loop cannot be removed. noinline keeps the 14 live vectors (12 accumulators, a, b)
// in the 16 ymm registers of one small function.
__attribute__((target("avx2,fma"), noinline)) static float fma_chains(long iters, float seed) {
    const __m256 a = _mm256_set1_ps(1.0f - 1.0f / 1024.0f), b = _mm256_set1_ps(seed * 1e-3f);
    __m256 c0 = _mm256_set1_ps(seed + 0.0f), c1 = _mm256_set1_ps(seed + 1.0f), c2 = _mm256_set1_ps(seed + 2.0f);
    __m256 c3 = _mm256_set1_ps(seed + 3.0f), c4 = _mm256_set1_ps(seed + 4.0f), c5 = _mm256_set1_ps(seed + 5.0f);
    __m256 c6 = _mm256_set1_ps(seed + 6.0f), c7 = _mm256_set1_ps(seed + 7.0f), c8 = _mm256_set1_ps(seed + 8.0f);
    __m256 c9 = _mm256_set1_ps(seed + 9.0f), c10 = _mm256_set1_ps(seed + 10.0f), c11 = _mm256_set1_ps(seed + 11.0f);
    for (long i = 0; i < iters; i++) {
        c0 = _mm256_fmadd_ps(c0, a, b);
        c1 = _mm256_fmadd_ps(c1, a, b);
        c2 = _mm256_fmadd_ps(c2, a, b);
        c3 = _mm256_fmadd_ps(c3, a, b);
        c4 = _mm256_fmadd_ps(c4, a, b);
        c5 = _mm256_fmadd_ps(c5, a, b);
        c6 = _mm256_fmadd_ps(c6, a, b);
        c7 = _mm256_fmadd_ps(c7, a, b);
        c8 = _mm256_fmadd_ps(c8, a, b);
        c9 = _mm256_fmadd_ps(c9, a, b);
        c10 = _mm256_fmadd_ps(c10, a, b);
        c11 = _mm256_fmadd_ps(c11, a, b);
    }
    __m256 s = _mm256_add_ps(_mm256_add_ps(_mm256_add_ps(c0, c1), _mm256_add_ps(c2, c3)),
                             _mm256_add_ps(_mm256_add_ps(c4, c5), _mm256_add_ps(c6, c7)));
    s = _mm256_add_ps(s, _mm256_add_ps(_mm256_add_ps(c8, c9), _mm256_add_ps(c10, c11)));
    float lanes[FMA_LANES];
    _mm256_storeu_ps(lanes, s);
    float r = 0.0f;
    for (int i = 0; i < FMA_LANES; i++) r += lanes[i];
    return r;
}

// The same 12 chains on 16-lane AVX-512 vectors (for CPUs that have it: a 256-bit kernel
// reaches only half of such a core's peak, so both yardsticks are reported).
__attribute__((target("avx512f"), noinline)) static float fma_chains512(long iters, float seed) {
    const __m512 a = _mm512_set1_ps(1.0f - 1.0f / 1024.0f), b = _mm512_set1_ps(seed * 1e-3f);
    __m512 c0 = _mm512_set1_ps(seed + 0.0f), c1 = _mm512_set1_ps(seed + 1.0f), c2 = _mm512_set1_ps(seed + 2.0f);
    __m512 c3 = _mm512_set1_ps(seed + 3.0f), c4 = _mm512_set1_ps(seed + 4.0f), c5 = _mm512_set1_ps(seed + 5.0f);
    __m512 c6 = _mm512_set1_ps(seed + 6.0f), c7 = _mm512_set1_ps(seed + 7.0f), c8 = _mm512_set1_ps(seed + 8.0f);
    __m512 c9 = _mm512_set1_ps(seed + 9.0f), c10 = _mm512_set1_ps(seed + 10.0f), c11 = _mm512_set1_ps(seed + 11.0f);
    for (long i = 0; i < iters; i++) {
        c0 = _mm512_fmadd_ps(c0, a, b);
        c1 = _mm512_fmadd_ps(c1, a, b);
        c2 = _mm512_fmadd_ps(c2, a, b);
        c3 = _mm512_fmadd_ps(c3, a, b);
        c4 = _mm512_fmadd_ps(c4, a, b);
        c5 = _mm512_fmadd_ps(c5, a, b);
        c6 = _mm512_fmadd_ps(c6, a, b);
        c7 = _mm512_fmadd_ps(c7, a, b);
        c8 = _mm512_fmadd_ps(c8, a, b);
        c9 = _mm512_fmadd_ps(c9, a, b);
        c10 = _mm512_fmadd_ps(c10, a, b);
        c11 = _mm512_fmadd_ps(c11, a, b);
    }
    __m512 s = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3)),
                             _mm512_add_ps(_mm512_add_ps(c4, c5), _mm512_add_ps(c6, c7)));
    s = _mm512_add_ps(s, _mm512_add_ps(_mm512_add_ps(c8, c9), _mm512_add_ps(c10, c11)));
    float lanes[16];
    _mm512_storeu_ps(lanes, s);
    float r = 0.0f;
    for (int i = 0; i < 16; i++) r += lanes[i];
    return r;
}

static volatile float g_fma_sink;  // where every result goes, so no run is dead code

// Wall seconds for `threads` threads each running `iters` iterations of the kernel for
// `bits`-wide vectors (fork/join included: microseconds against a ~0.2 s run).
static double fma_run(int bits, int threads, long iters) {
    float sum = 0.0f;
    double t0 = mav_bench_now();
#pragma omp parallel num_threads(threads) reduction(+ : sum)
    {
        float seed = 1.0f + (float)omp_get_thread_num();
        sum += bits == 512 ? fma_chains512(iters, seed) : fma_chains(iters, seed);
    }
    double dt = mav_bench_now() - t0;
    g_fma_sink = sum;
    return dt;
}

int mav_bench_has_fma(int bits) {
    if (bits == 256) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (bits == 512) return __builtin_cpu_supports("avx512f");
    return 0;
}

double mav_bench_fma_peak(int bits, int threads, double seconds, int reps) {
    if (!mav_bench_has_fma(bits)) return 0.0;
    if (threads <= 0) threads = mav_threads_get();
    if (reps < 1) reps = 1;
    // Calibrate (also the warm-up: thread start-up, clock ramp): double until >= 10 ms.
    long iters = 1L << 14;
    double dt = fma_run(bits, threads, iters);
    while (dt < 0.01 && iters < (1L << 40)) dt = fma_run(bits, threads, iters *= 2);
    double scale = seconds / dt;
    if (scale > 1.0) iters = (long)((double)iters * scale);
    // Best, not median, of the calls: a peak is what the core can do, and a neighbour's load
    // only ever slows a call down (on a shared 2-vCPU guest one busy process halves a median).
    double best = 0.0;
    for (int r = 0; r < reps; r++) {
        double t = fma_run(bits, threads, iters);
        if (r == 0 || t < best) best = t;
    }
    double flops = 2.0 * FMA_CHAINS * (bits / 32) * (double)iters * threads;
    return mav_bench_gflops(flops, best);
}
