// bench_blas.c — cblas_sgemm GFLOP/s over mav's GEMM shapes, for comparing BLAS libraries.
//
// scripts/bench-blas compiles this file twice, once against OpenBLAS and once against BLIS
// (-DUSE_BLIS), and runs the two binaries alternately (docs/BLAS.md). Standalone on purpose:
// it must not link libmav, whose BLAS is fixed at build time.
//
// usage: bench_blas THREADS BUDGET_SECONDS
// prints one line per shape: "<name> M N K GFLOP/s" (median of >= 5 runs after a warm-up;
// more runs while the shape's budget lasts), and a first line "# <library description>".
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef USE_BLIS
#include <blis.h>  // BLIS's own API (threads, version) plus its CBLAS layer
static void set_threads(int n) { bli_thread_set_num_threads(n); }
static void describe(void) {
    printf("# BLIS %s, kernel %s\n", bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()));
}
#else
#include <cblas.h>  // OpenBLAS's: also declares openblas_set_num_threads and friends
static void set_threads(int n) { openblas_set_num_threads(n); }
static void describe(void) { printf("# %s, kernel %s\n", openblas_get_config(), openblas_get_corename()); }
#endif

typedef struct { const char *name; int M, N, K; } shape;

// The im2col GEMMs of the bench-decoder 3×3 convolutions (M = C_out, K = 9·C_in, N = H·W),
// then square sizes.
static const shape k_shapes[] = {
    {"conv3x3_64-64@64", 64, 4096, 576},    {"conv3x3_128-128@32", 128, 1024, 1152},
    {"conv3x3_192-192@16", 192, 256, 1728}, {"conv3x3_256-256@8", 256, 64, 2304},
    {"conv3x3_64-128@32", 128, 1024, 576},  {"conv3x3_128-192@16", 192, 256, 1152},
    {"conv3x3_192-256@8", 256, 64, 1728},   {"square256", 256, 256, 256},
    {"square512", 512, 512, 512},           {"square1024", 1024, 1024, 1024},
    {"square1536", 1536, 1536, 1536},       {"square2048", 2048, 2048, 2048},
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *filled(size_t n, unsigned h) {
    float *x = aligned_alloc(64, (n * sizeof(float) + 63) / 64 * 64);
    if (!x) { fprintf(stderr, "bench_blas: out of memory\n"); exit(1); }
    for (size_t i = 0; i < n; i++) {
        h = h * 1664525u + 1013904223u;
        x[i] = (float)(h >> 8) * (1.0f / 16777216.0f) - 0.5f;
    }
    return x;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: bench_blas THREADS BUDGET_SECONDS\n"); return 2; }
    int threads = atoi(argv[1]);
    double budget = atof(argv[2]);
    if (threads < 1 || !(budget >= 0)) { fprintf(stderr, "bench_blas: bad THREADS or BUDGET\n"); return 2; }
    set_threads(threads);
    describe();
    enum { MIN_RUNS = 5, MAX_RUNS = 1000 };
    static double t[MAX_RUNS];
    for (size_t s = 0; s < sizeof k_shapes / sizeof k_shapes[0]; s++) {
        const shape *sh = &k_shapes[s];
        float *A = filled((size_t)sh->M * sh->K, 1), *B = filled((size_t)sh->K * sh->N, 2);
        float *C = filled((size_t)sh->M * sh->N, 3);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh->M, sh->N, sh->K, 1.0f, A, sh->K, B, sh->N, 0.0f,
                    C, sh->N);  // warm-up
        int n = 0;
        double spent = 0;
        while (n < MAX_RUNS && (n < MIN_RUNS || spent < budget)) {
            double t0 = now();
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, sh->M, sh->N, sh->K, 1.0f, A, sh->K, B, sh->N,
                        0.0f, C, sh->N);
            t[n] = now() - t0;
            spent += t[n++];
        }
        qsort(t, (size_t)n, sizeof *t, cmp);
        double med = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
        printf("%s %d %d %d %.2f\n", sh->name, sh->M, sh->N, sh->K, 2.0 * sh->M * sh->N * sh->K / med * 1e-9);
        fflush(stdout);
        free(A), free(B), free(C);
    }
    return 0;
}
