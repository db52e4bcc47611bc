#include "ops/linear.h"

#include <string.h>

#include "core/blas.h"
#include "core/error.h"

void mav_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int R, int C_in,
                        int C_out) {
    mav_linear_forward_strided(out, C_out, inp, C_in, weight, bias, R, C_in, C_out);
}

void mav_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, int R, int C_in, int C_out) {
    mav_linear_backward_strided(dinp, dweight, dbias, dout, C_out, inp, C_in, weight, R, C_in, C_out);
}

void mav_linear_forward_strided(float *out, int ld_out, const float *inp, int ld_inp, const float *weight,
                                const float *bias, int R, int C_in, int C_out) {
    MAV_ASSERT(R >= 0 && C_in >= 0 && C_out >= 0 && ld_inp >= C_in && ld_out >= C_out);
    if (R == 0 || C_out == 0) return;
    // Pre-fill each output row with the bias and let the GEMM accumulate onto it (beta = 1):
    // one pass over `out` for the bias instead of a second read-modify-write after the GEMM.
    if (bias) {
        #pragma omp parallel for schedule(static) if ((long)R * C_out > 32768)
        for (int r = 0; r < R; r++) memcpy(out + (long)r * ld_out, bias, (size_t)C_out * sizeof(float));
    }
    mav_sgemm(0, 1, R, C_out, C_in, 1.0f, inp, ld_inp, weight, C_in, bias ? 1.0f : 0.0f, out, ld_out);
}

// Column sums of dout in double, added to dbias. Each thread owns a contiguous range of
// columns and walks the rows in order, so every sum has a fixed order that does not even
// depend on the thread count. Columns are processed in tiles of 64 so the double
// accumulators stay in registers/L1 and each row segment read is contiguous.
static void bias_grad(float *dbias, const float *dout, int ld_out, int R, int C_out) {
    enum { TILE = 64 };
    int ntiles = (C_out + TILE - 1) / TILE;
    #pragma omp parallel for schedule(static) if ((long)R * C_out > 32768)
    for (int t = 0; t < ntiles; t++) {
        int c0 = t * TILE, nc = C_out - c0 < TILE ? C_out - c0 : TILE;
        double acc[TILE] = {0};
        for (int r = 0; r < R; r++) {
            const float *row = dout + (long)r * ld_out + c0;
            for (int c = 0; c < nc; c++) acc[c] += row[c];
        }
        for (int c = 0; c < nc; c++) dbias[c0 + c] += (float)acc[c];
    }
}

void mav_linear_backward_strided(float *dinp, float *dweight, float *dbias, const float *dout, int ld_out,
                                 const float *inp, int ld_inp, const float *weight, int R, int C_in, int C_out) {
    MAV_ASSERT(R >= 0 && C_in >= 0 && C_out >= 0 && ld_inp >= C_in && ld_out >= C_out);
    if (dinp) {  // dinp[R, C_in] = dout[R, C_out] · weight[C_out, C_in]
        mav_sgemm(0, 0, R, C_in, C_out, 1.0f, dout, ld_out, weight, C_in, 0.0f, dinp, ld_inp);  // C_out = 0 writes 0
    }
    // dweight[C_out, C_in] += doutᵀ[C_out, R] · inp[R, C_in]: one GEMM, K = R is never split.
    if (dweight && R > 0) mav_sgemm(1, 0, C_out, C_in, R, 1.0f, dout, ld_out, inp, ld_inp, 1.0f, dweight, C_in);
    if (dbias && R > 0) bias_grad(dbias, dout, ld_out, R, C_out);
}
