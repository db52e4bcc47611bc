// conv2d.c — 2-D convolution as im2col + GEMM (see conv2d.h for the math and layout).
//
// Per image n, with K = C_in·kh·kw and L = H_out·W_out:
//   forward   out_n [C_out, L]  = weight [C_out, K] · col_n [K, L] (+ bias)
//   dweight   dW    [C_out, K] += dout_n [C_out, L] · col_n^T [L, K]
//   dinp      dcol  [K, L]      = weight^T [K, C_out] · dout_n [C_out, L], then col2im (scatter-add)
// col_n is built for a band of output rows at a time (mav_conv2d_col_budget floats), so the
// column buffer stays cache-sized and scratch does not grow with the image or with N. A 1×1
// stride-1 unpadded conv needs no col: col_n is the image itself.
//
// Threads. With T threads, the first (N/T)·T images are split evenly over the threads, each
// running single-threaded GEMMs on its own column buffer; the N mod T images left over are done
// one at a time with a threaded GEMM (and threaded im2col/col2im). Measured on the bench-decoder
// 3×3 convs (2 threads, Zen 3, quiet machine, N = 16; C = 64, 128, 192, 256 at 64², 32², 16², 8²):
// images over threads 164–179 GFLOP/s forward and 146–170 backward, against 100–143 and 113–140
// for one threaded GEMM per image (that also pays a barrier per GEMM, and falls to a few GFLOP/s
// when other processes compete for the cores, where images over threads degrade gracefully).
// Small N (N < threads) still needs the threaded GEMM to use all cores. The band budget
// (mav_conv2d_col_budget, 1 M floats) is a cache-size choice: 64 K to 16 M floats changed nothing
// beyond noise (measured while the machine was shared, so only coarse differences would show).
//
// Determinism. Every output element is written by one thread. dweight: each thread accumulates
// its images into its own partial [C_out, K] in scratch, then the partials are added into dweight
// in thread order (each element owned by one thread); the leftover images then accumulate with a
// threaded GEMM, which splits M and N but never K. dbias sums in double per channel in a fixed
// order. So results are bit-identical run to run at a given thread count.
#include "ops/conv2d.h"

#include <omp.h>
#include <string.h>

#include "core/blas.h"
#include "core/error.h"
#include "core/threads.h"

size_t mav_conv2d_col_budget = (size_t)1 << 20;  // 4 MB per column buffer: L3-resident, GEMM-friendly widths

int mav_conv2d_out_h(const mav_conv2d_shape *s) { return (s->H + 2 * s->pad - s->kh) / s->stride + 1; }
int mav_conv2d_out_w(const mav_conv2d_shape *s) { return (s->W + 2 * s->pad - s->kw) / s->stride + 1; }

// 1×1, stride 1, no padding: the image [C_in, H·W] is already the column matrix.
static int is_direct(const mav_conv2d_shape *s) { return s->kh == 1 && s->kw == 1 && s->stride == 1 && s->pad == 0; }

// Output rows per im2col band: as many as fit the budget (at least one), then evened out over
// the bands so that the last band is not a thin, GEMM-unfriendly remainder.
static int band_rows(const mav_conv2d_shape *s) {
    long K = (long)s->C_in * s->kh * s->kw, Wo = mav_conv2d_out_w(s), Ho = mav_conv2d_out_h(s);
    long r = (long)(mav_conv2d_col_budget / (size_t)(K * Wo));
    r = r < 1 ? 1 : r > Ho ? Ho : r;
    long bands = (Ho + r - 1) / r;
    return (int)((Ho + bands - 1) / bands);
}

// Floats of one thread's column buffer and of one thread's dweight partial.
static size_t col_floats(const mav_conv2d_shape *s) {
    if (is_direct(s)) return 0;
    return (size_t)s->C_in * s->kh * s->kw * (size_t)band_rows(s) * (size_t)mav_conv2d_out_w(s);
}
static size_t dw_floats(const mav_conv2d_shape *s) { return (size_t)s->C_out * s->C_in * s->kh * s->kw; }

size_t mav_conv2d_scratch_floats(const mav_conv2d_shape *s) {
    int T = mav_threads_get();
    size_t col = col_floats(s);
    if (T > 1 && s->N >= T) return (size_t)T * (col + dw_floats(s));  // per thread: col + dW partial
    return col;                                                      // one image at a time
}

// Valid output columns [*lo, *hi) for kernel column kj: those whose input column is inside [0, W).
static void valid_cols(const mav_conv2d_shape *s, int Wo, int kj, int *lo, int *hi) {
    int off = kj - s->pad;  // ix = ox·stride + off
    int l = off >= 0 ? 0 : (-off + s->stride - 1) / s->stride;
    int h = s->W - 1 - off < 0 ? 0 : (s->W - 1 - off) / s->stride + 1;
    if (h > Wo) h = Wo;
    if (l > h) l = h;
    *lo = l;
    *hi = h;
}

// col [K, (oy1−oy0)·W_out] = im2col of one image for output rows [oy0, oy1). inp [C_in, H, W].
static void im2col_band(float *col, const float *inp, const mav_conv2d_shape *s, int oy0, int oy1, int par) {
    int Wo = mav_conv2d_out_w(s), kh = s->kh, kw = s->kw, st = s->stride;
    int K = s->C_in * kh * kw;
    long Lb = (long)(oy1 - oy0) * Wo;
#pragma omp parallel for schedule(static) if (par)
    for (int r = 0; r < K; r++) {
        int ci = r / (kh * kw), ki = (r / kw) % kh, kj = r % kw;
        int lo, hi;
        valid_cols(s, Wo, kj, &lo, &hi);
        const float *src_c = inp + (long)ci * s->H * s->W;
        for (int oy = oy0; oy < oy1; oy++) {
            float *dst = col + r * Lb + (long)(oy - oy0) * Wo;
            int iy = oy * st + ki - s->pad;
            if (iy < 0 || iy >= s->H) { memset(dst, 0, sizeof(float) * (size_t)Wo); continue; }
            const float *src = src_c + (long)iy * s->W + kj - s->pad;  // src[ox·st] for valid ox
            for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
            if (st == 1) memcpy(dst + lo, src + lo, sizeof(float) * (size_t)(hi - lo));
            else for (int ox = lo; ox < hi; ox++) dst[ox] = src[(long)ox * st];
            for (int ox = hi; ox < Wo; ox++) dst[ox] = 0.0f;
        }
    }
}

// dinp [C_in, H, W] += col2im(dcol [K, (oy1−oy0)·W_out]) for output rows [oy0, oy1).
// Parallel over input channels: channel ci owns rows [ci·kh·kw, (ci+1)·kh·kw) of dcol and its plane.
static void col2im_band_add(float *dinp, const float *dcol, const mav_conv2d_shape *s, int oy0, int oy1, int par) {
    int Wo = mav_conv2d_out_w(s), kh = s->kh, kw = s->kw, st = s->stride;
    long Lb = (long)(oy1 - oy0) * Wo;
#pragma omp parallel for schedule(static) if (par)
    for (int ci = 0; ci < s->C_in; ci++) {
        float *dst_c = dinp + (long)ci * s->H * s->W;
        for (int ki = 0; ki < kh; ki++)
            for (int kj = 0; kj < kw; kj++) {
                int lo, hi;
                valid_cols(s, Wo, kj, &lo, &hi);
                const float *src_r = dcol + ((long)ci * kh * kw + ki * kw + kj) * Lb;
                for (int oy = oy0; oy < oy1; oy++) {
                    int iy = oy * st + ki - s->pad;
                    if (iy < 0 || iy >= s->H) continue;
                    const float *src = src_r + (long)(oy - oy0) * Wo;
                    float *dst = dst_c + (long)iy * s->W + kj - s->pad;  // dst[ox·st] for valid ox
                    if (st == 1) for (int ox = lo; ox < hi; ox++) dst[ox] += src[ox];
                    else for (int ox = lo; ox < hi; ox++) dst[(long)ox * st] += src[ox];
                }
            }
    }
}

// One image. out [C_out, L]; inp [C_in, H, W]; col [K, band]. par: threaded im2col (caller not in a parallel region).
static void forward_image(float *out, const float *inp, const float *weight, const float *bias,
                          const mav_conv2d_shape *s, float *col, int par) {
    int Ho = mav_conv2d_out_h(s), Wo = mav_conv2d_out_w(s), K = s->C_in * s->kh * s->kw;
    long L = (long)Ho * Wo;
    if (bias) {
#pragma omp parallel for schedule(static) if (par)
        for (int co = 0; co < s->C_out; co++)
            for (long l = 0; l < L; l++) out[co * L + l] = bias[co];
    }
    float beta = bias ? 1.0f : 0.0f;
    if (is_direct(s)) {
        mav_sgemm(0, 0, s->C_out, (int)L, K, 1.0f, weight, K, inp, (int)L, beta, out, (int)L);
        return;
    }
    int rows = band_rows(s);
    for (int oy0 = 0; oy0 < Ho; oy0 += rows) {
        int oy1 = oy0 + rows < Ho ? oy0 + rows : Ho;
        int Lb = (oy1 - oy0) * Wo;
        im2col_band(col, inp, s, oy0, oy1, par);
        mav_sgemm(0, 0, s->C_out, Lb, K, 1.0f, weight, K, col, Lb, beta, out + (long)oy0 * Wo, (int)L);
    }
}

// One image's dinp (=) and dW (+=); either may be NULL. dout [C_out, L]; col [K, band].
static void backward_image(float *dinp, float *dw, const float *dout, const float *inp, const float *weight,
                           const mav_conv2d_shape *s, float *col, int par) {
    int Ho = mav_conv2d_out_h(s), Wo = mav_conv2d_out_w(s), K = s->C_in * s->kh * s->kw;
    long L = (long)Ho * Wo;
    if (is_direct(s)) {
        if (dw) mav_sgemm(0, 1, s->C_out, K, (int)L, 1.0f, dout, (int)L, inp, (int)L, 1.0f, dw, K);
        if (dinp) mav_sgemm(1, 0, K, (int)L, s->C_out, 1.0f, weight, K, dout, (int)L, 0.0f, dinp, (int)L);
        return;
    }
    if (dinp) {
        long HW = (long)s->H * s->W;
#pragma omp parallel for schedule(static) if (par)
        for (int ci = 0; ci < s->C_in; ci++) memset(dinp + ci * HW, 0, sizeof(float) * (size_t)HW);
    }
    int rows = band_rows(s);
    for (int oy0 = 0; oy0 < Ho; oy0 += rows) {
        int oy1 = oy0 + rows < Ho ? oy0 + rows : Ho;
        int Lb = (oy1 - oy0) * Wo;
        const float *dout_b = dout + (long)oy0 * Wo;
        if (dw) {
            im2col_band(col, inp, s, oy0, oy1, par);
            mav_sgemm(0, 1, s->C_out, K, Lb, 1.0f, dout_b, (int)L, col, Lb, 1.0f, dw, K);
        }
        if (dinp) {  // col is free again: reuse it for dcol
            mav_sgemm(1, 0, K, Lb, s->C_out, 1.0f, weight, K, dout_b, (int)L, 0.0f, col, Lb);
            col2im_band_add(dinp, col, s, oy0, oy1, par);
        }
    }
}

static void check_shape(const mav_conv2d_shape *s) {
    MAV_ASSERT(s->N >= 0 && s->C_in > 0 && s->C_out > 0 && s->kh > 0 && s->kw > 0);
    MAV_ASSERT(s->stride >= 1 && s->pad >= 0);
    MAV_ASSERT(s->H + 2 * s->pad >= s->kh && s->W + 2 * s->pad >= s->kw);
    // GEMM dimensions and leading strides are int
    MAV_ASSERT((long)s->C_in * s->kh * s->kw <= 0x7fffffffL);
    MAV_ASSERT((long)mav_conv2d_out_h(s) * mav_conv2d_out_w(s) <= 0x7fffffffL);
}

void mav_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const mav_conv2d_shape *s, float *scratch) {
    check_shape(s);
    int T = mav_threads_get();
    long in_sz = (long)s->C_in * s->H * s->W, out_sz = (long)s->C_out * mav_conv2d_out_h(s) * mav_conv2d_out_w(s);
    size_t col = col_floats(s);
    int n_par = T > 1 ? s->N / T * T : 0;  // images spread over threads; the rest one at a time
    if (n_par) {
        size_t per = col + dw_floats(s);
#pragma omp parallel num_threads(T)
        {
            int tid = omp_get_thread_num(), nth = omp_get_num_threads();
            MAV_ASSERT(nth <= T);
            long n0 = (long)n_par * tid / nth, n1 = (long)n_par * (tid + 1) / nth;
            for (long n = n0; n < n1; n++)
                forward_image(out + n * out_sz, inp + n * in_sz, weight, bias, s, scratch + tid * per, 0);
        }
    }
    for (long n = n_par; n < s->N; n++) forward_image(out + n * out_sz, inp + n * in_sz, weight, bias, s, scratch, 1);
}

void mav_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, const mav_conv2d_shape *s, float *scratch) {
    check_shape(s);
    int T = mav_threads_get();
    long in_sz = (long)s->C_in * s->H * s->W, L = (long)mav_conv2d_out_h(s) * mav_conv2d_out_w(s);
    long out_sz = (long)s->C_out * L;
    if (dbias) {
        // dbias[co] += Σ_n Σ_l dout[n, co, l]: N·L terms, summed in double in a fixed order
#pragma omp parallel for schedule(static)
        for (int co = 0; co < s->C_out; co++) {
            double acc = 0.0;
            for (long n = 0; n < s->N; n++) {
                const float *d = dout + n * out_sz + co * L;
                for (long l = 0; l < L; l++) acc += d[l];
            }
            dbias[co] += (float)acc;
        }
    }
    if (!dinp && !dweight) return;
    size_t col = col_floats(s), dwn = dw_floats(s);
    int n_par = T > 1 ? s->N / T * T : 0;
    if (n_par) {
        size_t per = col + dwn;
#pragma omp parallel num_threads(T)
        {
            int tid = omp_get_thread_num(), nth = omp_get_num_threads();
            MAV_ASSERT(nth <= T);
            float *mycol = scratch + tid * per, *mydw = dweight ? mycol + col : NULL;
            if (mydw) memset(mydw, 0, sizeof(float) * dwn);
            long n0 = (long)n_par * tid / nth, n1 = (long)n_par * (tid + 1) / nth;
            for (long n = n0; n < n1; n++)
                backward_image(dinp ? dinp + n * in_sz : NULL, mydw, dout + n * out_sz, inp + n * in_sz, weight, s,
                               mycol, 0);
            if (dweight) {
#pragma omp barrier
                // partials added in thread order; each element owned by one thread
#pragma omp for schedule(static)
                for (size_t i = 0; i < dwn; i++) {
                    float acc = dweight[i];
                    for (int t = 0; t < nth; t++) acc += scratch[t * per + col + i];
                    dweight[i] = acc;
                }
            }
        }
    }
    for (long n = n_par; n < s->N; n++)
        backward_image(dinp ? dinp + n * in_sz : NULL, dweight, dout + n * out_sz, inp + n * in_sz, weight, s,
                       scratch, 1);
}
