// cmd_bench.c — `mav bench BENCHMARK [options]`: speed measurements, each figure reported as
// GFLOP/s and as a percentage of the FMA peak measured in the same run (src/bench/bench.h).
//
// A dispatcher over a table of benchmarks: `ops` (kernels at the bench-decoder shapes) and
// `unet` (whole-network sampling and training steps of the SPEC §8 configs). Each benchmark
// parses its own subset of the option table below; `mav help bench` lists them all.
#include <cblas.h>  // OpenBLAS's: openblas_get_config/corename for the report header
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "bench/unet_flops.h"
#include "cli/cli.h"
#include "core/blas.h"
#include "core/error.h"
#include "core/rng.h"
#include "core/threads.h"
#include "nets/unet.h"
#include "ops/conv2d.h"
#include "train/unet_train.h"

// ---- options ----

static int g_json = 0;
static double g_budget = 0.5;
static const char *g_config = NULL;
static int g_runs = 5;
static const char *g_mode = "both";

#define OPT_BUDGET {"budget", OPT_FLOAT, &g_budget, "SECONDS", \
     "ops: time budget per figure (default 0.5); at least 5 timed runs are always made", 0, 3600}
#define OPT_JSON {"json", OPT_FLAG, &g_json, NULL, "print one JSON object instead of the table", 0, 0}
#define OPT_CONFIG {"config", OPT_STRING, &g_config, "NAME", \
     "unet: SPEC §8 config (tiny, bench-decoder, bench-sr, bench-image); required", 0, 0}
#define OPT_RUNS {"runs", OPT_INT, &g_runs, "N", "unet: timed steps per mode after one warm-up (default 5)", 1, 1000}
#define OPT_MODE {"mode", OPT_STRING, &g_mode, "MODE", \
     "unet: sample, train or both (default both; each in its own child process)", 0, 0}

// What `mav help bench` shows: every option of every benchmark.
static const cli_opt k_bench_opts[] = {OPT_BUDGET, OPT_CONFIG, OPT_RUNS, OPT_MODE, OPT_JSON, CLI_OPT_END};
static const cli_opt k_ops_opts[] = {OPT_BUDGET, OPT_JSON, CLI_OPT_END};
static const cli_opt k_unet_opts[] = {OPT_CONFIG, OPT_RUNS, OPT_MODE, OPT_JSON, CLI_OPT_END};

const cli_opt *cmd_bench_options(void) { return k_bench_opts; }

const char cmd_bench_help[] =
    "Measures how fast mav runs on this machine, against its measured FMA peak.\n\n"
    "benchmarks:\n"
    "  ops    FMA peak (1 thread and --threads); mav_sgemm at the im2col GEMM shapes of the\n"
    "         bench-decoder 3x3 convolutions (M = C_out, K = 9*C_in, N = H*W) and 1024^3;\n"
    "         conv2d forward and backward (dinp + dweight) on the same convolutions, N = 16.\n"
    "         Every figure is the median of at least 5 timed runs after a warm-up; more runs\n"
    "         are made while the figure's time budget (--budget) lasts.\n"
    "  unet   mav bench unet --config NAME [--mode sample|train|both] [--runs N] [--json]\n"
    "         The U-Net of a SPEC section 8 config at its benchmark input (B for train / sampling):\n"
    "           tiny           F=4,  16x16,   B 1 / 2    (a quick check, not a SPEC figure)\n"
    "           bench-decoder  F=16, 64x64,   B 1 / 2\n"
    "           bench-sr       F=16, 128x128, B 1 / 2\n"
    "           bench-image    F=1,  64x64,   B 16 / 32\n"
    "         sampling step: one no-grad forward at the sampling batch (random x, t, e, fps/aug);\n"
    "         training step: mav_unet_train_step at the training batch (q_sample, forward, MSE,\n"
    "         backward, grad-norm clip, AdamW). ms per step = median of --runs timed steps after\n"
    "         one warm-up. GFLOP/s from an analytic count: 2 flops per multiply-add of every\n"
    "         conv, temporal conv, linear and attention matmul (QK^T, PV) of the forward; a\n"
    "         training step counts 3x the forward. Peak RSS (ru_maxrss) of each mode is its own:\n"
    "         each mode runs in a forked child process. Progress goes to stderr. --json prints\n"
    "         sample_ms, train_ms, gflops {sample, train}, peak_rss_mb {sample, train} (null for\n"
    "         a mode not run), flops, per-run times, and the AVX2 FMA peak at --threads.";

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
    int npos, rc = cli_parse(&k_ops_cmd, k_ops_opts, argc, argv, 1, pos, 0, &npos);
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

// ---- mav bench unet ----

// The benchmark input of a named config (SPEC §8 "input" column).
typedef struct {
    const char *name;
    int F, H, W;
    int b_train, b_sample;
} unet_case;

static const unet_case k_unet_cases[] = {
    {"tiny", 4, 16, 16, 1, 2},  // SPEC gives F and size only; B as bench-decoder's
    {"bench-decoder", 16, 64, 64, 1, 2},
    {"bench-sr", 16, 128, 128, 1, 2},
    {"bench-image", 1, 64, 64, 16, 32},
};
#define N_UNET_CASES ((int)(sizeof k_unet_cases / sizeof k_unet_cases[0]))
#define UNET_MAX_RUNS 1000
#define UNET_SEED 1234u  // weights and inputs: any fixed values (timing does not depend on them)

enum { MODE_SAMPLE, MODE_TRAIN, MODE_COUNT };
static const char *const k_mode_names[MODE_COUNT] = {"sample", "train"};

// What a child process sends back through its pipe (plain bytes; parent and child are the
// same binary).
typedef struct {
    int ok;                       // 0: err holds the reason
    int runs;
    double ms[UNET_MAX_RUNS];     // each timed step, in order
    double median_ms, min_ms, max_ms;
    double peak_rss_mb;           // the child's own ru_maxrss
    double planned_mb;            // mav_unet_planned_bytes (activations, scratch)
    double param_mb;              // values (+ grads and both AdamW moments when training)
    double last_loss;             // training: loss of the last step (a sanity figure)
    char err[512];
} unet_result;

// Every input of one step, filled once with fixed random values.
typedef struct {
    mav_unet *net;
    mav_unet_trainer tr;
    int B, F, H, W;
    float *x;      // sample: [B, F, in_ch, H, W] network input; train: x0 [B, F, out_ch, H, W]
    float *cond;   // train, in_ch > out_ch: [B, F, in_ch − out_ch, H, W]; else NULL
    float *out;    // sample: [B, F, out_ch, H, W]
    float *t;      // [B] timesteps (sample)
    float *e;      // [B, emb_dim] or NULL
    float *fps;    // [B] or NULL
    float *aug;    // [B] or NULL
    mav_rng rng;   // train: the step's t, ε and CFG-drop draws
    long step;
    double loss;
} unet_ctx;

// One sampling step: a no-grad (inference-planned) forward.
static void unet_sample_step(unet_ctx *u) { mav_unet_forward(u->net, u->out, u->x, u->t, u->e, u->fps, u->aug); }

// One training step at lr 1e-4 (any value: the work is the same).
static void unet_train_step(unet_ctx *u) {
    mav_unet_step_result r = mav_unet_train_step(&u->tr, u->net, u->x, u->cond, u->e, u->fps, u->aug, &u->rng,
                                                 ++u->step, 1e-4f);
    u->loss = r.loss;
}

// calloc'd floats filled from N(0, 1) (scale s) or the constant v (when s == 0).
static float *unet_input(mav_rng *r, size_t n, float s, float v) {
    float *x = calloc(n ? n : 1, sizeof(float));
    if (!x) return NULL;
    if (s != 0.0f) {
        mav_rng_normal(r, x, n);
        for (size_t i = 0; i < n; i++) x[i] *= s;
    } else {
        for (size_t i = 0; i < n; i++) x[i] = v;
    }
    return x;
}

// Builds the net for `mode`, times runs steps after one warm-up, into *res. Runs in the child.
static void unet_measure(const mav_unet_config *cfg, const unet_case *uc, int mode, int runs, unet_result *res) {
    unet_ctx u = {0};
    mav_status st = MAV_OK;
    const int train = mode == MODE_TRAIN;
    u.B = train ? uc->b_train : uc->b_sample, u.F = uc->F, u.H = uc->H, u.W = uc->W;
    const size_t img = (size_t)u.B * u.F * uc->H * uc->W;
    mav_rng r = mav_rng_make(UNET_SEED);
    u.net = calloc(1, sizeof *u.net);
    if (!u.net) { st = mav_fail(MAV_ERR_NOMEM, "out of memory"); goto done; }
    if ((st = mav_unet_create(u.net, cfg)) != MAV_OK) goto done;
    if ((st = mav_unet_alloc_params(u.net, train)) != MAV_OK) goto done;
    mav_unet_init_params(cfg, &u.net->params, UNET_SEED);
    if (train) {
        mav_unet_trainer_init(&u.tr, MAV_SCHEDULE_COSINE);
        st = mav_unet_trainer_plan(&u.tr, u.net, u.B, u.F, u.H, u.W);
    } else {
        st = mav_unet_plan(u.net, u.B, u.F, u.H, u.W, 0);
    }
    if (st != MAV_OK) goto done;
    // x: the clean video (train, pixel-like scale 0.5) or the noisy network input (sample)
    u.x = unet_input(&r, img * (train ? cfg->out_ch : cfg->in_ch), train ? 0.5f : 1.0f, 0);
    u.cond = train && cfg->in_ch > cfg->out_ch ? unet_input(&r, img * (cfg->in_ch - cfg->out_ch), 0.5f, 0) : NULL;
    u.out = train ? NULL : unet_input(&r, img * cfg->out_ch, 0, 0);
    u.t = unet_input(&r, (size_t)u.B, 0, 500.0f);
    u.e = cfg->emb_dim > 0 ? unet_input(&r, (size_t)u.B * cfg->emb_dim, 1.0f, 0) : NULL;
    u.fps = cfg->cond_fps ? unet_input(&r, (size_t)u.B, 0, 8.0f) : NULL;
    u.aug = cfg->cond_aug ? unet_input(&r, (size_t)u.B, 0, 0.1f) : NULL;
    if (!u.x || !u.t || (train && cfg->in_ch > cfg->out_ch && !u.cond) || (!train && !u.out) ||
        (cfg->emb_dim > 0 && !u.e) || (cfg->cond_fps && !u.fps) || (cfg->cond_aug && !u.aug)) {
        st = mav_fail(MAV_ERR_NOMEM, "out of memory for the inputs");
        goto done;
    }
    u.rng = mav_rng_make(UNET_SEED + 1);
    res->planned_mb = (double)mav_unet_planned_bytes(u.net) / (1 << 20);
    res->param_mb = (double)mav_params_numel(&u.net->params) * sizeof(float) * (train ? 4 : 1) / (1 << 20);

    void (*step)(unet_ctx *) = train ? unet_train_step : unet_sample_step;
    fprintf(stderr, "bench unet %s %s: B=%d F=%d %dx%d, warm-up...\n", uc->name, k_mode_names[mode], u.B, u.F,
            u.H, u.W);
    double t0 = mav_bench_now();
    step(&u);
    fprintf(stderr, "  warm-up %.1f ms\n", (mav_bench_now() - t0) * 1e3);
    double sorted[UNET_MAX_RUNS];
    for (int i = 0; i < runs; i++) {
        t0 = mav_bench_now();
        step(&u);
        res->ms[i] = sorted[i] = (mav_bench_now() - t0) * 1e3;
        fprintf(stderr, "  run %d/%d: %.1f ms\n", i + 1, runs, res->ms[i]);
    }
    res->runs = runs;
    res->median_ms = mav_bench_median(sorted, runs);  // sorts `sorted`
    res->min_ms = sorted[0], res->max_ms = sorted[runs - 1];
    res->last_loss = u.loss;
done:
    if (st != MAV_OK) snprintf(res->err, sizeof res->err, "%s", mav_last_error());
    res->ok = st == MAV_OK;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    res->peak_rss_mb = ru.ru_maxrss / 1024.0;  // Linux: KiB
    free(u.x), free(u.cond), free(u.out), free(u.t), free(u.e), free(u.fps), free(u.aug);
    if (train) mav_unet_trainer_free(&u.tr);
    if (u.net) mav_unet_free(u.net);
    free(u.net);
}

// Runs unet_measure in a forked child so that its ru_maxrss is this mode's peak alone (and a
// child the kernel kills for memory takes only itself down). 0, or 1 with mav_fail set.
static mav_status unet_run_child(const mav_unet_config *cfg, const unet_case *uc, int mode, int runs,
                                 unet_result *res) {
    int fd[2];
    if (pipe(fd) != 0) return mav_fail(MAV_ERR_IO, "pipe: %s", strerror(errno));
    fflush(stdout), fflush(stderr);  // or the child's exit would print buffered text twice
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return mav_fail(MAV_ERR_IO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        close(fd[0]);
        unet_result *r = calloc(1, sizeof *r);
        int rc = 1;
        if (r) {
            unet_measure(cfg, uc, mode, runs, r);
            const char *p = (const char *)r;
            size_t left = sizeof *r;
            while (left > 0) {
                ssize_t w = write(fd[1], p, left);
                if (w < 0 && errno == EINTR) continue;
                if (w <= 0) break;
                p += w, left -= (size_t)w;
            }
            rc = left != 0;
        }
        _exit(rc);  // no atexit handlers, no stdio flush: the parent owns those
    }
    close(fd[1]);
    size_t got = 0;
    char *p = (char *)res;
    while (got < sizeof *res) {
        ssize_t n = read(fd[0], p + got, sizeof *res - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
    if (got != sizeof *res) {
        if (WIFSIGNALED(status))
            return mav_fail(MAV_ERR_IO, "%s child killed by signal %d (out of memory?)", k_mode_names[mode],
                            WTERMSIG(status));
        return mav_fail(MAV_ERR_IO, "%s child exited with status %d before reporting", k_mode_names[mode],
                        WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    }
    if (!res->ok) return mav_fail(MAV_ERR_ARG, "%s", res->err);
    return MAV_OK;
}

// A FLOP count as a JSON integer: exact (sums of integer products < 2^53, so the doubles are).
static json_t *flops_int(double x) { return json_integer((json_int_t)x); }

static json_t *flops_json(const mav_unet_flops *f) {
    json_t *o = json_object();
    json_object_set_new(o, "conv", flops_int(f->conv));
    json_object_set_new(o, "tconv", flops_int(f->tconv));
    json_object_set_new(o, "linear", flops_int(f->linear));
    json_object_set_new(o, "attn", flops_int(f->attn));
    json_object_set_new(o, "total", flops_int(f->total));
    return o;
}

static const cli_command k_unet_cmd = {
    "bench", "", "mav bench unet --config NAME [--mode sample|train|both] [--runs N] [--json] [--threads N]",
    cmd_bench_help, NULL};

// `mav bench unet`: sampling and/or training steps of a named config, each mode in a child.
static int bench_unet(int argc, char **argv) {
    char *pos[1];
    int npos, rc = cli_parse(&k_unet_cmd, k_unet_opts, argc, argv, 1, pos, 0, &npos);
    if (rc) return rc;
    if (!g_config) return cli_usage_error(&k_unet_cmd, "unet needs --config NAME (tiny, bench-decoder, bench-sr, bench-image)");
    const unet_case *uc = NULL;
    for (int i = 0; i < N_UNET_CASES; i++)
        if (strcmp(k_unet_cases[i].name, g_config) == 0) uc = &k_unet_cases[i];
    if (!uc)
        return cli_usage_error(&k_unet_cmd, "unknown config \"%s\" (available: tiny, bench-decoder, bench-sr, bench-image)",
                               g_config);
    int want[MODE_COUNT];
    want[MODE_SAMPLE] = strcmp(g_mode, "sample") == 0 || strcmp(g_mode, "both") == 0;
    want[MODE_TRAIN] = strcmp(g_mode, "train") == 0 || strcmp(g_mode, "both") == 0;
    if (!want[MODE_SAMPLE] && !want[MODE_TRAIN])
        return cli_usage_error(&k_unet_cmd, "--mode must be sample, train or both, got \"%s\"", g_mode);
    mav_unet_config cfg;
    if (mav_unet_config_named(&cfg, uc->name) != MAV_OK) return cli_fail("bench unet");
    const int threads = mav_threads_get(), runs = g_runs;

    // parameter count without allocating: register into a throw-away table
    mav_params pc;
    mav_params_init(&pc);
    if (mav_unet_register_params(&cfg, &pc) != MAV_OK) { mav_params_free(&pc); return cli_fail("bench unet"); }
    const size_t n_params = mav_params_numel(&pc);
    mav_params_free(&pc);

    const int batch[MODE_COUNT] = {uc->b_sample, uc->b_train};
    mav_unet_flops fwd[MODE_COUNT];
    double step_flops[MODE_COUNT];
    for (int m = 0; m < MODE_COUNT; m++) {
        fwd[m] = mav_unet_forward_flops(&cfg, batch[m], uc->F, uc->H, uc->W);
        step_flops[m] = (m == MODE_TRAIN ? 3.0 : 1.0) * fwd[m].total;  // training = 3× forward
    }

    static unet_result res[MODE_COUNT];
    for (int m = 0; m < MODE_COUNT; m++) {
        if (!want[m]) continue;
        if (unet_run_child(&cfg, uc, m, runs, &res[m]) != MAV_OK) return cli_fail("bench unet");
    }
    // The yardstick, measured after the children so it cannot disturb them; it is also this
    // process's first OpenMP region, so every child was forked from a thread-free parent.
    double peak = mav_bench_fma_peak(256, threads, PEAK_SECONDS, PEAK_REPS);
    double gflops[MODE_COUNT] = {0}, pct[MODE_COUNT] = {0};
    for (int m = 0; m < MODE_COUNT; m++) {
        if (!want[m]) continue;
        gflops[m] = mav_bench_gflops(step_flops[m], res[m].median_ms * 1e-3);
        pct[m] = peak > 0 ? 100.0 * gflops[m] / peak : 0.0;
    }

    if (!g_json) {
        printf("mav bench unet: %s (%.2f M params), F=%d %dx%d, %d thread%s, median of %d step%s after a warm-up\n",
               uc->name, n_params * 1e-6, uc->F, uc->H, uc->W, threads, threads == 1 ? "" : "s", runs,
               runs == 1 ? "" : "s");
        printf("FMA peak, AVX2, %d thread%s: %.1f GFLOP/s; BLAS kernel %s\n", threads, threads == 1 ? "" : "s", peak,
               openblas_get_corename());
        printf("GFLOP counts 2*MACs of convs, temporal convs, linears and attention matmuls; train = 3x forward.\n\n");
        printf("%-7s %5s %10s %10s %9s %9s %8s %7s %12s\n", "mode", "batch", "GFLOP", "median ms", "min ms", "max ms",
               "GFLOP/s", "% peak", "peak RSS MB");
        for (int m = 0; m < MODE_COUNT; m++) {
            if (!want[m]) continue;
            printf("%-7s %5d %10.2f %10.1f %9.1f %9.1f %8.1f %6.1f%% %12.1f\n", k_mode_names[m], batch[m],
                   step_flops[m] * 1e-9, res[m].median_ms, res[m].min_ms, res[m].max_ms, gflops[m], pct[m],
                   res[m].peak_rss_mb);
        }
        return 0;
    }

    json_t *root = json_object(), *jin = json_object(), *jfl = json_object();
    json_object_set_new(root, "benchmark", json_string("unet"));
    json_object_set_new(root, "config", json_string(uc->name));
    json_object_set_new(root, "threads", json_integer(threads));
    json_object_set_new(root, "runs", json_integer(runs));
    json_object_set_new(root, "mode", json_string(g_mode));
    json_object_set_new(jin, "F", json_integer(uc->F));
    json_object_set_new(jin, "H", json_integer(uc->H));
    json_object_set_new(jin, "W", json_integer(uc->W));
    json_object_set_new(jin, "batch_sample", json_integer(uc->b_sample));
    json_object_set_new(jin, "batch_train", json_integer(uc->b_train));
    json_object_set_new(root, "input", jin);
    json_object_set_new(root, "params", json_integer((json_int_t)n_params));
    // flops: per step (train = 3× its forward) and the forward's breakdown at each batch
    json_object_set_new(jfl, "sample_step", flops_int(step_flops[MODE_SAMPLE]));
    json_object_set_new(jfl, "train_step", flops_int(step_flops[MODE_TRAIN]));
    json_object_set_new(jfl, "forward_sample_batch", flops_json(&fwd[MODE_SAMPLE]));
    json_object_set_new(jfl, "forward_train_batch", flops_json(&fwd[MODE_TRAIN]));
    json_object_set_new(root, "flops", jfl);
    json_object_set_new(root, "sample_ms", want[MODE_SAMPLE] ? json_real(res[MODE_SAMPLE].median_ms) : json_null());
    json_object_set_new(root, "train_ms", want[MODE_TRAIN] ? json_real(res[MODE_TRAIN].median_ms) : json_null());
    json_t *jg = json_object(), *jr = json_object(), *jp = json_object();
    for (int m = 0; m < MODE_COUNT; m++) {
        json_object_set_new(jg, k_mode_names[m], want[m] ? json_real(gflops[m]) : json_null());
        json_object_set_new(jr, k_mode_names[m], want[m] ? json_real(res[m].peak_rss_mb) : json_null());
        json_object_set_new(jp, k_mode_names[m], want[m] ? json_real(pct[m]) : json_null());
    }
    json_object_set_new(root, "gflops", jg);        // achieved, per mode: step flops / median time
    json_object_set_new(root, "peak_rss_mb", jr);   // per mode (each its own child process)
    json_object_set_new(root, "fma_peak_gflops", json_real(peak));  // AVX2, at `threads`
    json_object_set_new(root, "pct_peak", jp);
    for (int m = 0; m < MODE_COUNT; m++) {
        if (!want[m]) {
            json_object_set_new(root, k_mode_names[m], json_null());
            continue;
        }
        const unet_result *r = &res[m];
        json_t *o = json_object(), *arr = json_array();
        json_object_set_new(o, "batch", json_integer(batch[m]));
        json_object_set_new(o, "median_ms", json_real(r->median_ms));
        json_object_set_new(o, "min_ms", json_real(r->min_ms));
        json_object_set_new(o, "max_ms", json_real(r->max_ms));
        for (int i = 0; i < r->runs; i++) json_array_append_new(arr, json_real(r->ms[i]));
        json_object_set_new(o, "runs_ms", arr);
        json_object_set_new(o, "planned_mb", json_real(r->planned_mb));
        json_object_set_new(o, "param_mb", json_real(r->param_mb));
        if (m == MODE_TRAIN) json_object_set_new(o, "last_loss", json_real(r->last_loss));
        json_object_set_new(root, k_mode_names[m], o);
    }
    json_object_set_new(root, "blas_kernel", json_string(openblas_get_corename()));
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(root);
    if (!s) {
        mav_fail(MAV_ERR_NOMEM, "JSON encoding failed");
        return cli_fail("bench unet");
    }
    puts(s);
    free(s);
    return 0;
}

// ---- dispatcher ----

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);  // argv[0] is the benchmark name
} bench_entry;

static const bench_entry k_benchmarks[] = {{"ops", bench_ops}, {"unet", bench_unet}};
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
