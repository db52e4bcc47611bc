#include "ops/shape_ops.h"

#include <string.h>

#include "core/error.h"

// Copies the channel range [c0, c0 + C) of every image between a tensor with Cs channels and
// a tensor with Cd channels (one plane of P floats per channel), parallel over (n, c).
static void copy_channels(float *dst, int Cd, int dc0, const float *src, int Cs, int sc0, int N, int C, long P) {
    long planes = (long)N * C;
    #pragma omp parallel for schedule(static) if (planes * P > 65536)
    for (long q = 0; q < planes; q++) {
        long n = q / C, c = q % C;
        memcpy(dst + ((n * Cd) + dc0 + c) * P, src + ((n * Cs) + sc0 + c) * P, (size_t)P * sizeof(float));
    }
}

void mav_concat_forward(float *out, const float *a, const float *b, int N, int Ca, int Cb, long P) {
    MAV_ASSERT(N >= 0 && Ca >= 0 && Cb >= 0 && P >= 0);
    copy_channels(out, Ca + Cb, 0, a, Ca, 0, N, Ca, P);
    copy_channels(out, Ca + Cb, Ca, b, Cb, 0, N, Cb, P);
}

void mav_concat_backward(float *da, float *db, const float *dout, int N, int Ca, int Cb, long P) {
    MAV_ASSERT(N >= 0 && Ca >= 0 && Cb >= 0 && P >= 0);
    if (da) copy_channels(da, Ca, 0, dout, Ca + Cb, 0, N, Ca, P);
    if (db) copy_channels(db, Cb, 0, dout, Ca + Cb, Ca, N, Cb, P);
}

void mav_upsample2x_forward(float *out, const float *inp, int N, int C, int H, int W) {
    MAV_ASSERT(N >= 0 && C >= 0 && H >= 0 && W >= 0);
    long rows = (long)N * C * H;  // every input row makes two identical output rows
    #pragma omp parallel for schedule(static) if (rows * W > 32768)
    for (long r = 0; r < rows; r++) {
        const float *src = inp + r * W;
        float *d0 = out + r * 4 * W, *d1 = d0 + 2 * W;  // output rows 2y and 2y+1 of the plane
        for (int x = 0; x < W; x++) d0[2 * x] = d0[2 * x + 1] = src[x];
        memcpy(d1, d0, (size_t)2 * W * sizeof(float));
    }
}

void mav_upsample2x_backward(float *dinp, const float *dout, int N, int C, int H, int W) {
    MAV_ASSERT(N >= 0 && C >= 0 && H >= 0 && W >= 0);
    long rows = (long)N * C * H;
    #pragma omp parallel for schedule(static) if (rows * W > 32768)
    for (long r = 0; r < rows; r++) {
        const float *s0 = dout + r * 4 * W, *s1 = s0 + 2 * W;
        float *dst = dinp + r * W;
        for (int x = 0; x < W; x++) dst[x] = (s0[2 * x] + s0[2 * x + 1]) + (s1[2 * x] + s1[2 * x + 1]);
    }
}
