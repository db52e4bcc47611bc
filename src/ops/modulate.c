#include "ops/modulate.h"

void mav_modulate_forward(float *out, const float *n, const float *ss, int B, int F, int C, long P) {
    #pragma omp parallel for schedule(static) collapse(3)
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int c = 0; c < C; c++) {
                float g = 1.0f + ss[(long)b * 2 * C + c], sh = ss[(long)b * 2 * C + C + c];
                long o = (((long)b * F + f) * C + c) * P;
                for (long p = 0; p < P; p++) out[o + p] = n[o + p] * g + sh;
            }
}

void mav_modulate_backward(float *dn, float *dss, const float *dout, const float *n, const float *ss, int B, int F,
                           int C, long P) {
    // Each (b, c) pair owns its two sums: parallel over them, frames and pixels in order.
    #pragma omp parallel for schedule(static) collapse(2)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float g = 1.0f + ss[(long)b * 2 * C + c];
            double s_scale = 0.0, s_shift = 0.0;
            for (int f = 0; f < F; f++) {
                long o = (((long)b * F + f) * C + c) * P;
                float a = 0.0f, z = 0.0f;  // per-plane partial sums in f32 (P ≤ a few thousand)
                for (long p = 0; p < P; p++) {
                    a += dout[o + p] * n[o + p];
                    z += dout[o + p];
                    if (dn) dn[o + p] = dout[o + p] * g;
                }
                s_scale += a;
                s_shift += z;
            }
            dss[(long)b * 2 * C + c] = (float)s_scale;
            dss[(long)b * 2 * C + C + c] = (float)s_shift;
        }
}
