// cmd_bench.c — `mav bench BENCHMARK [options]`: speed measurements, each figure reported as
// GFLOP/s and as a percentage of the FMA peak measured in the same run (src/bench/bench.h).
//
// A dispatcher over a table of benchmarks (`ops` now; whole-network benchmarks join the table
// later). Every benchmark shares the option table below, so `mav help bench` lists them all.
#include <cblas.h>  // OpenBLAS's: openblas_get_config/corename for the report header
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/threads.h"
#include "ops/conv2d.h"

// ---- options (shared by every benchmark) ----

static int g_json = 0;
static double g_budget = 0.5;

static const cli_opt k_bench_opts[] = {
    {"budget", OPT_FLOAT, &g_budget, "SECONDS",
     "time budget per figure (default 0.5); at least 5 timed runs are always made", 0, 3600},
    {"json", OPT_FLAG, &g_json, NULL, "print one JSON object instead of the table", 0, 0},
    CLI_OPT_END};

const cli_opt *cmd_bench_options(void) { return k_bench_opts; }

const char cmd_bench_help[] =
    "Measures how fast mav's kernels run on this machine, against its measured FMA peak.\n"
    "Every figure is the median of at least 5 timed runs after a warm-up; more runs are made\n"
    "while the figure's time budget lasts.\n\n"
    "benchmarks:\n"
    "  ops    FMA peak (1 thread and --threads); mav_sgemm at the im2col GEMM shapes of the\n"
    "         bench-decoder 3x3 convolutions (M = C_out, K = 9*C_in, N = H*W) and 1024^3;\n"
    "         conv2d forward and backward (dinp + dweight) on the same convolutions, N = 16.";

#define BENCH_MIN_RUNS 5
#define BENCH_MAX_RUNS 1000
// FMA-peak calls: each calibrated to ~0.2 s (shorter when the budget is smaller), best of 3.
#define PEAK_SECONDS 0.2
#define PEAK_REPS 3

// ---- shapes: the 3×3 convolutions of SPEC §8 bench-decoder (64·(1,2,3,4) channels, 64×64 → 8×8) ----

typedef struct {
    int c_in, c_out, hw;  // input channels, output channels, image side (stride 1, pad 1)
} conv_case;

static const conv_case k_convs[] = {
    {64, 64, 64},  {128, 128, 32}, {192, 192, 16}, {256, 256, 8},  // within a level
    {64, 128, 32}, {128, 192, 16}, {192, 256, 8},                  // first conv after each downsample
};
#define N_CONVS ((int)(sizeof k_convs / sizeof k_convs[0]))
#define CONV_BATCH 16  // a training batch of 1 video × 16 frames (frames are extra batch)
#define SQUARE_GEMM 1024

// ---- one measured row ----

typedef enum { ROW_SGEMM, ROW_CONV_FWD, ROW_CONV_BWD, ROW_KIND_COUNT } row_kind;
static const char *const k_row_names[ROW_KIND_COUNT] = {"sgemm", "conv2d_fwd", "conv2d_bwd"};

typedef struct {
    row_kind kind;
    char shape[64];
    int M, N, K;              // sgemm
    mav_conv2d_shape conv;    // conv rows
    double flops;
    mav_bench_timing t;
    double gflops, pct_peak;
} bench_row;

// ---- workloads (ctx structs passed to mav_bench_time) ----

typedef struct {
    int M, N, K;
    const float *A;  // (M, K)
    const float *B;  // (K, N)
    float *C;        // (M, N)
} sgemm_ctx;

// C = A·B, overwriting C (beta = 0), as a conv forward does with its im2col buffer.
static void run_sgemm(void *p) {
    sgemm_ctx *c = p;
    mav_sgemm(0, 0, c->M, c->N, c->K, 1.0f, c->A, c->K, c->B, c->N, 0.0f, c->C, c->N);
}

typedef struct {
    mav_conv2d_shape s;
    float *out, *dout;           // (N, C_out, H_out, W_out)
    float *inp, *dinp;           // (N, C_in, H, W)
    float *weight, *dweight;     // (C_out, C_in, kh, kw)
    float *bias, *dbias;         // (C_out)
    float *scratch;              // (mav_conv2d_scratch_floats(&s))
} conv_ctx;

// One conv2d forward over the whole batch.
static void run_conv_fwd(void *p) {
    conv_ctx *c = p;
    mav_conv2d_forward(c->out, c->inp, c->weight, c->bias, &c->s, c->scratch);
}

// One conv2d backward (dinp, dweight, dbias). dbias is requested too, as in training; its N·C_out·H·W adds are not counted as flops.
static void run_conv_bwd(void *p) {
    conv_ctx *c = p;
    mav_conv2d_backward(c->dinp, c->dweight, c->dbias, c->dout, c->inp, c->weight, &c->s, c->scratch);
}

// ---- helpers ----

// 64-byte aligned, filled with small deterministic values in [-0.5, 0.5) (touches every page
// before timing, and keeps sums far from overflow or denormals); NULL on failure.
static float *alloc_filled(size_t n, unsigned salt) {
    size_t bytes = (n * sizeof(float) + 63) / 64 * 64;
    float *x = aligned_alloc(64, bytes ? bytes : 64);
    if (!x) return NULL;
    uint32_t h = 2166136261u ^ salt;
    for (size_t i = 0; i < n; i++) {
        h = h * 1664525u + 1013904223u;
        x[i] = (float)(h >> 8) * (1.0f / 16777216.0f) - 0.5f;
    }
    return x;
}

// GFLOP/s and % of `peak` from the row's flops and median time.
static void finish_row(bench_row *r, double peak) {
    r->gflops = mav_bench_gflops(r->flops, r->t.median_s);
    r->pct_peak = peak > 0.0 ? 100.0 * r->gflops / peak : 0.0;
}

// One table line (flushed: the whole table takes seconds to fill).
static void print_row(const bench_row *r) {
    printf("%-11s %-36s %8.3f %9.3f %5d %8.1f %6.1f%%\n", k_row_names[r->kind], r->shape, r->flops * 1e-9,
           r->t.median_s * 1e3, r->t.runs, r->gflops, r->pct_peak);
    fflush(stdout);
}

// Times mav_sgemm at M×N×K into *r (shape text is left to the caller).
static mav_status bench_sgemm(bench_row *r, int M, int N, int K, double budget, double peak) {
    float *A = alloc_filled((size_t)M * K, 1), *B = alloc_filled((size_t)K * N, 2), *C = alloc_filled((size_t)M * N, 3);
    mav_status st = MAV_OK;
    if (!A || !B || !C) {
        st = mav_fail(MAV_ERR_NOMEM, "sgemm %dx%dx%d: out of memory", M, N, K);
        goto done;
    }
    sgemm_ctx c = {M, N, K, A, B, C};
    r->kind = ROW_SGEMM;
    r->M = M, r->N = N, r->K = K;
    r->flops = 2.0 * M * N * K;
    r->t = mav_bench_time(run_sgemm, &c, budget, BENCH_MIN_RUNS, BENCH_MAX_RUNS);
    finish_row(r, peak);
done:
    free(A), free(B), free(C);
    return st;
}

// Measures forward into rows[0] and backward into rows[1] on the same buffers.
static mav_status bench_conv(bench_row rows[2], const conv_case *cc, double budget, double peak) {
    mav_conv2d_shape s = {CONV_BATCH, cc->c_in, cc->hw, cc->hw, cc->c_out, 3, 3, 1, 1};
    size_t n_in = (size_t)s.N * s.C_in * s.H * s.W;
    size_t n_out = (size_t)s.N * s.C_out * mav_conv2d_out_h(&s) * mav_conv2d_out_w(&s);
    size_t n_w = (size_t)s.C_out * s.C_in * s.kh * s.kw;
    conv_ctx c = {.s = s};
    c.inp = alloc_filled(n_in, 11), c.dinp = alloc_filled(n_in, 12);
    c.out = alloc_filled(n_out, 13), c.dout = alloc_filled(n_out, 14);
    c.weight = alloc_filled(n_w, 15), c.dweight = alloc_filled(n_w, 16);
    c.bias = alloc_filled((size_t)s.C_out, 17), c.dbias = alloc_filled((size_t)s.C_out, 18);
    c.scratch = alloc_filled(mav_conv2d_scratch_floats(&s), 19);
    mav_status st = MAV_OK;
    if (!c.inp || !c.dinp || !c.out || !c.dout || !c.weight || !c.dweight || !c.bias || !c.dbias || !c.scratch) {
        st = mav_fail(MAV_ERR_NOMEM, "conv2d %d->%d @%dx%d: out of memory", s.C_in, s.C_out, s.H, s.W);
        goto done;
    }
    double fwd_flops = 2.0 * s.N * s.C_out * mav_conv2d_out_h(&s) * mav_conv2d_out_w(&s) * s.C_in * s.kh * s.kw;
    for (int i = 0; i < 2; i++) {
        bench_row *r = &rows[i];
        r->kind = i ? ROW_CONV_BWD : ROW_CONV_FWD;
        r->conv = s;
        snprintf(r->shape, sizeof r->shape, "N%d 3x3 %d->%d @%dx%d", s.N, s.C_in, s.C_out, s.H, s.W);
        r->flops = i ? 2.0 * fwd_flops : fwd_flops;  // backward: dinp and dweight, one forward's work each
        r->t = mav_bench_time(i ? run_conv_bwd : run_conv_fwd, &c, budget, BENCH_MIN_RUNS, BENCH_MAX_RUNS);
        finish_row(r, peak);
    }
done:
    free(c.inp), free(c.dinp), free(c.out), free(c.dout), free(c.weight), free(c.dweight);
    free(c.bias), free(c.dbias), free(c.scratch);
    return st;
}

// The row as a JSON object (new reference).
static json_t *row_json(const bench_row *r) {
    json_t *o = json_object();
    json_object_set_new(o, "op", json_string(k_row_names[r->kind]));
    json_object_set_new(o, "shape", json_string(r->shape));
    if (r->kind == ROW_SGEMM) {
        json_object_set_new(o, "M", json_integer(r->M));
        json_object_set_new(o, "N", json_integer(r->N));
        json_object_set_new(o, "K", json_integer(r->K));
    } else {
        const mav_conv2d_shape *s = &r->conv;
        json_object_set_new(o, "N", json_integer(s->N));
        json_object_set_new(o, "C_in", json_integer(s->C_in));
        json_object_set_new(o, "C_out", json_integer(s->C_out));
        json_object_set_new(o, "H", json_integer(s->H));
        json_object_set_new(o, "W", json_integer(s->W));
        json_object_set_new(o, "kh", json_integer(s->kh));
        json_object_set_new(o, "kw", json_integer(s->kw));
        json_object_set_new(o, "stride", json_integer(s->stride));
        json_object_set_new(o, "pad", json_integer(s->pad));
    }
    json_object_set_new(o, "flops", json_integer((json_int_t)r->flops));  // exact: an integer < 2^53
    json_object_set_new(o, "median_s", json_real(r->t.median_s));
    json_object_set_new(o, "min_s", json_real(r->t.min_s));
    json_object_set_new(o, "max_s", json_real(r->t.max_s));
    json_object_set_new(o, "runs", json_integer(r->t.runs));
    json_object_set_new(o, "gflops", json_real(r->gflops));
    json_object_set_new(o, "pct_peak", json_real(r->pct_peak));
    return o;
}

// ---- mav bench ops ----

static const cli_command k_ops_cmd = {
    "bench", "", "mav bench ops [--budget SECONDS] [--json] [--threads N]", cmd_bench_help, NULL};

// `mav bench ops`: peaks, then the sgemm and conv2d rows, as a table or one JSON object.
static int bench_ops(int argc, char **argv) {
    char *pos[1];
    int npos, rc = cli_parse(&k_ops_cmd, k_bench_opts, argc, argv, 1, pos, 0, &npos);
    if (rc) return rc;
    const int threads = mav_threads_get();
    const double budget = g_budget;
    double peak_secs = budget < PEAK_SECONDS ? budget : PEAK_SECONDS;
    if (peak_secs < 0.02) peak_secs = 0.02;  // below ~20 ms per call, fork/join and timer noise show

    // The yardstick is the 256-bit (AVX2) peak: the width of OpenBLAS's sgemm kernels and of
    // mav's own intrinsics. A CPU with AVX-512 can go about twice as far; that peak is
    // reported beside it so a figure above 100% reads as what it is.
    double peak1 = mav_bench_fma_peak(256, 1, peak_secs, PEAK_REPS);
    double peak = threads == 1 ? peak1 : mav_bench_fma_peak(256, threads, peak_secs, PEAK_REPS);
    const int has512 = mav_bench_has_fma(512);
    double peak512_1 = has512 ? mav_bench_fma_peak(512, 1, peak_secs, PEAK_REPS) : 0.0;
    double peak512 = has512 && threads != 1 ? mav_bench_fma_peak(512, threads, peak_secs, PEAK_REPS) : peak512_1;
    if (!g_json) {
        printf("mav bench ops: %d thread%s, budget %.2f s per figure (median of >= %d runs after a warm-up)\n",
               threads, threads == 1 ? "" : "s", budget, BENCH_MIN_RUNS);
        printf("FMA peak, AVX2 (12 chains x 8 lanes):     %6.1f GFLOP/s on 1 thread", peak1);
        if (threads != 1) printf(", %6.1f on %d threads", peak, threads);
        if (has512) {
            printf("\nFMA peak, AVX-512 (12 chains x 16 lanes): %6.1f GFLOP/s on 1 thread", peak512_1);
            if (threads != 1) printf(", %6.1f on %d threads", peak512, threads);
        }
        // OpenBLAS picks its kernels from CPUID at load time; a CPU newer than the library
        // gets an older kernel set (docs/BLAS.md), so the choice is part of every sgemm figure.
        printf("\nBLAS: %s, kernel %s\n", openblas_get_config(), openblas_get_corename());
        printf("%% peak below is of the AVX2 peak on %d thread%s.\n", threads, threads == 1 ? "" : "s");
        printf("\n%-11s %-36s %8s %9s %5s %8s %7s\n", "op", "shape", "GFLOP", "median ms", "runs", "GFLOP/s",
               "% peak");
    }

    enum { N_ROWS = N_CONVS + 1 + 2 * N_CONVS };
    static bench_row rows[N_ROWS];
    int n = 0;
    mav_status st = MAV_OK;
    for (int i = 0; i < N_CONVS && st == MAV_OK; i++) {
        const conv_case *cc = &k_convs[i];
        bench_row *r = &rows[n];
        st = bench_sgemm(r, cc->c_out, cc->hw * cc->hw, 9 * cc->c_in, budget, peak);
        snprintf(r->shape, sizeof r->shape, "%dx%dx%d (3x3 %d->%d @%dx%d)", r->M, r->N, r->K, cc->c_in, cc->c_out,
                 cc->hw, cc->hw);
        if (st == MAV_OK && !g_json) print_row(r);
        n += st == MAV_OK;
    }
    if (st == MAV_OK) {
        bench_row *r = &rows[n];
        st = bench_sgemm(r, SQUARE_GEMM, SQUARE_GEMM, SQUARE_GEMM, budget, peak);
        snprintf(r->shape, sizeof r->shape, "%dx%dx%d (square)", r->M, r->N, r->K);
        if (st == MAV_OK && !g_json) print_row(r);
        n += st == MAV_OK;
    }
    for (int i = 0; i < N_CONVS && st == MAV_OK; i++) {
        st = bench_conv(&rows[n], &k_convs[i], budget, peak);
        if (st == MAV_OK && !g_json) print_row(&rows[n]), print_row(&rows[n + 1]);
        n += st == MAV_OK ? 2 : 0;
    }
    if (st != MAV_OK) return cli_fail("bench ops");

    if (g_json) {
        json_t *root = json_object(), *jpeak = json_object(), *jrows = json_array();
        json_object_set_new(root, "benchmark", json_string("ops"));
        json_object_set_new(root, "threads", json_integer(threads));
        json_object_set_new(root, "budget_s", json_real(budget));
        json_object_set_new(root, "min_runs", json_integer(BENCH_MIN_RUNS));
        json_object_set_new(root, "blas", json_string(openblas_get_config()));
        json_object_set_new(root, "blas_kernel", json_string(openblas_get_corename()));
        json_object_set_new(jpeak, "threads_1", json_real(peak1));
        json_object_set_new(jpeak, "threads_n", json_real(peak));
        json_object_set_new(root, "fma_peak_gflops", jpeak);  // AVX2: the pct_peak yardstick
        if (has512) {
            json_t *j512 = json_object();
            json_object_set_new(j512, "threads_1", json_real(peak512_1));
            json_object_set_new(j512, "threads_n", json_real(peak512));
            json_object_set_new(root, "fma_peak_avx512_gflops", j512);
        } else {
            json_object_set_new(root, "fma_peak_avx512_gflops", json_null());
        }
        for (int i = 0; i < n; i++) json_array_append_new(jrows, row_json(&rows[i]));
        json_object_set_new(root, "rows", jrows);
        char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
        json_decref(root);
        if (!s) {
            mav_fail(MAV_ERR_NOMEM, "JSON encoding failed");
            return cli_fail("bench ops");
        }
        puts(s);
        free(s);
    }
    return 0;
}

// ---- dispatcher ----

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  // argv[0] is the benchmark name
} bench_entry;

static const bench_entry k_benchmarks[] = {{"ops", bench_ops}};
#define N_BENCHMARKS ((int)(sizeof k_benchmarks / sizeof k_benchmarks[0]))

// "ops, unet, ..." for error messages, from the table.
static const char *benchmark_names(void) {
    static char buf[256];
    buf[0] = 0;
    for (int i = 0; i < N_BENCHMARKS; i++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? ", " : "", k_benchmarks[i].name);
    return buf;
}

// `mav bench BENCHMARK [options]`: dispatch to the benchmark named by argv[1].
int cmd_bench(int argc, char **argv) {
    const cli_command *cmd = cli_find("bench");
    if (argc < 2) return cli_usage_error(cmd, "expects a benchmark name (available: %s)", benchmark_names());
    const char *name = argv[1];
    if (strcmp(name, "-h") == 0 || strcmp(name, "--help") == 0) {
        cli_print_help(stdout, cmd, k_bench_opts);
        return 0;
    }
    for (int i = 0; i < N_BENCHMARKS; i++)
        if (strcmp(k_benchmarks[i].name, name) == 0) return k_benchmarks[i].run(argc - 1, argv + 1);
    return cli_usage_error(cmd, "unknown benchmark \"%s\" (available: %s)", name, benchmark_names());
}
