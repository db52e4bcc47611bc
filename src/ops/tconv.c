// tconv.c — temporal convolution (kernel 3 along frames) as one GEMM per output frame (tconv.h).
//
// Forward:  out[b,f] [C_out, P]  = Wr [C_out, 3·C_in] · inp[b, f−1 .. f+1] [3·C_in, P]
//           Wr[co][k·C_in + ci] = weight[co, ci, k]
// dinp:     dinp[b,f] [C_in, P]  = Wt [C_in, 3·C_out] · dout[b, f−1 .. f+1] [3·C_out, P]
//           Wt[ci][j·C_out + co] = weight[co, ci, 2−j]   (dout frame f+j−1 used tap 2−j)
// dweight:  dWr [C_out, 3·C_in] += dout[b,f] [C_out, P] · inp[b, f−1 .. f+1]^T [P, 3·C_in]
// At the first/last frame the missing neighbour is dropped by narrowing K to 2·C (taps that
// would read padding contribute 0), so no zero frames are ever materialised.
//
// Threads: the B·F output frames are independent GEMMs. With T threads, the first (B·F/T)·T
// frames are split evenly over threads with single-threaded GEMMs (no barriers; one-thread
// OpenBLAS runs nearer peak), the remainder run one at a time with a threaded GEMM. dweight:
// per-thread partials in scratch, summed in thread order, then the remainder accumulates with
// a threaded GEMM (which never splits K) — bit-identical run to run at a given thread count.
#include "ops/tconv.h"

#include <omp.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "core/threads.h"

// Taps [*lo, *hi) of frame f whose neighbour frame f+k−1 lies inside [0, F).
static void taps(int f, int F, int *lo, int *hi) {
    *lo = f == 0 ? 1 : 0;
    *hi = f == F - 1 ? 2 : 3;
}

// Frames spread over threads (a multiple of T); the rest run one at a time with threaded GEMMs.
static long par_jobs(long jobs, int T) { return T > 1 ? jobs / T * T : 0; }

size_t mav_tconv_scratch_floats(int B, int F, int C_in, int C_out, long P) {
    (void)P;
    int T = mav_threads_get();
    size_t w = (size_t)3 * C_out * C_in;  // repacked weight; also one dW accumulator
    size_t part = par_jobs((long)B * F, T) ? (size_t)T * w : 0;
    return 2 * w + part;  // [repacked weight | dW accumulator | per-thread dW partials]
}

static void check_args(int B, int F, int C_in, int C_out, long P) {
    MAV_ASSERT(B >= 0 && F >= 1 && C_in > 0 && C_out > 0 && P > 0);
    MAV_ASSERT(P <= 0x7fffffffL && 3L * C_in <= 0x7fffffffL && 3L * C_out <= 0x7fffffffL);  // GEMM ints
}

// One output frame: out [C_out, P] = bias + Wr[:, lo·C_in : hi·C_in] · inp frames f+lo−1 .. f+hi−2.
// inp_f: frame f of the sample [C_in, P] (its neighbours are adjacent in memory).
static void forward_frame(float *out, const float *inp_f, const float *Wr, const float *bias, int f, int F, int C_in,
                          int C_out, long P, int par) {
    int lo, hi;
    taps(f, F, &lo, &hi);
    if (bias) {
#pragma omp parallel for schedule(static) if (par)
        for (int co = 0; co < C_out; co++)
            for (long p = 0; p < P; p++) out[co * P + p] = bias[co];
    }
    mav_sgemm(0, 0, C_out, (int)P, (hi - lo) * C_in, 1.0f, Wr + (long)lo * C_in, 3 * C_in, inp_f + (long)(lo - 1) * C_in * P,
              (int)P, bias ? 1.0f : 0.0f, out, (int)P);
}

void mav_tconv_forward(float *out, const float *inp, const float *weight, const float *bias, int B, int F, int C_in,
                       int C_out, long P, float *scratch) {
    check_args(B, F, C_in, C_out, P);
    int T = mav_threads_get();
    float *Wr = scratch;  // [C_out, 3·C_in]
#pragma omp parallel for schedule(static)
    for (int co = 0; co < C_out; co++)
        for (int k = 0; k < 3; k++)
            for (int ci = 0; ci < C_in; ci++) Wr[(long)co * 3 * C_in + k * C_in + ci] = weight[((long)co * C_in + ci) * 3 + k];
    long jobs = (long)B * F, n_par = par_jobs(jobs, T);
    long in_fr = (long)C_in * P, out_fr = (long)C_out * P;
    if (n_par) {
#pragma omp parallel num_threads(T)
        {
            int tid = omp_get_thread_num(), nth = omp_get_num_threads();
            long j0 = n_par * tid / nth, j1 = n_par * (tid + 1) / nth;
            for (long j = j0; j < j1; j++)
                forward_frame(out + j * out_fr, inp + j * in_fr, Wr, bias, (int)(j % F), F, C_in, C_out, P, 0);
        }
    }
    for (long j = n_par; j < jobs; j++)
        forward_frame(out + j * out_fr, inp + j * in_fr, Wr, bias, (int)(j % F), F, C_in, C_out, P, 1);
}

// One frame's backward. dinp frame (=) from Wt and the dout slab; dWr (+=) from dout frame and the inp slab.
// dout_f / inp_f point at frame f of the sample; neighbours are read only inside the valid taps.
static void backward_frame(float *dinp, float *dWr, const float *dout_f, const float *inp_f, const float *Wt,
                           int f, int F, int C_in, int C_out, long P) {
    int lo, hi;
    taps(f, F, &lo, &hi);
    if (dinp)
        mav_sgemm(0, 0, C_in, (int)P, (hi - lo) * C_out, 1.0f, Wt + (long)lo * C_out, 3 * C_out,
                  dout_f + (long)(lo - 1) * C_out * P, (int)P, 0.0f, dinp, (int)P);
    if (dWr)
        mav_sgemm(0, 1, C_out, (hi - lo) * C_in, (int)P, 1.0f, dout_f, (int)P, inp_f + (long)(lo - 1) * C_in * P,
                  (int)P, 1.0f, dWr + (long)lo * C_in, 3 * C_in);
}

void mav_tconv_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, int B, int F, int C_in, int C_out, long P, float *scratch) {
    check_args(B, F, C_in, C_out, P);
    int T = mav_threads_get();
    long jobs = (long)B * F, n_par = par_jobs(jobs, T);
    long in_fr = (long)C_in * P, out_fr = (long)C_out * P;
    if (dbias) {
        // dbias[co] += Σ_{b,f,p} dout: B·F·P terms, summed in double in a fixed order
#pragma omp parallel for schedule(static)
        for (int co = 0; co < C_out; co++) {
            double acc = 0.0;
            for (long j = 0; j < jobs; j++) {
                const float *d = dout + j * out_fr + co * P;
                for (long p = 0; p < P; p++) acc += d[p];
            }
            dbias[co] += (float)acc;
        }
    }
    if (!dinp && !dweight) return;
    size_t w = (size_t)3 * C_out * C_in;
    float *Wt = scratch;       // [C_in, 3·C_out]
    float *acc = scratch + w;  // [C_out, 3·C_in] dW in repacked order
    float *part = acc + w;     // [T][C_out, 3·C_in]
    if (dinp) {
#pragma omp parallel for schedule(static)
        for (int ci = 0; ci < C_in; ci++)
            for (int j = 0; j < 3; j++)
                for (int co = 0; co < C_out; co++)
                    Wt[(long)ci * 3 * C_out + j * C_out + co] = weight[((long)co * C_in + ci) * 3 + (2 - j)];
    }
    if (dweight) memset(acc, 0, sizeof(float) * w);
    if (n_par) {
#pragma omp parallel num_threads(T)
        {
            int tid = omp_get_thread_num(), nth = omp_get_num_threads();
            MAV_ASSERT(nth <= T);
            float *mydw = dweight ? part + tid * w : NULL;
            if (mydw) memset(mydw, 0, sizeof(float) * w);
            long j0 = n_par * tid / nth, j1 = n_par * (tid + 1) / nth;
            for (long j = j0; j < j1; j++)
                backward_frame(dinp ? dinp + j * in_fr : NULL, mydw, dout + j * out_fr, inp + j * in_fr, Wt,
                               (int)(j % F), F, C_in, C_out, P);
            if (dweight) {
#pragma omp barrier
#pragma omp for schedule(static)
                for (size_t i = 0; i < w; i++) {
                    float a = 0.0f;
                    for (int t = 0; t < nth; t++) a += part[t * w + i];  // thread order
                    acc[i] = a;
                }
            }
        }
    }
    for (long j = n_par; j < jobs; j++)
        backward_frame(dinp ? dinp + j * in_fr : NULL, dweight ? acc : NULL, dout + j * out_fr,
                       inp + j * in_fr, Wt, (int)(j % F), F, C_in, C_out, P);
    if (dweight) {
#pragma omp parallel for schedule(static)
        for (int co = 0; co < C_out; co++)
            for (int ci = 0; ci < C_in; ci++)
                for (int k = 0; k < 3; k++)
                    dweight[((long)co * C_in + ci) * 3 + k] += acc[(long)co * 3 * C_in + k * C_in + ci];
    }
}
