#include "ref/ref_layout.h"

void ref_modulate_forward(double *out, const double *n, const double *ss, int B, int F, int C, long P) {
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int c = 0; c < C; c++)
                for (long p = 0; p < P; p++) {
                    long i = (((long)b * F + f) * C + c) * P + p;
                    out[i] = n[i] * (1.0 + ss[b * 2 * C + c]) + ss[b * 2 * C + C + c];
                }
}

void ref_modulate_backward(double *dn, double *dss, const double *dout, const double *n, const double *ss, int B,
                           int F, int C, long P) {
    for (int i = 0; i < B * 2 * C; i++) dss[i] = 0.0;
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int c = 0; c < C; c++)
                for (long p = 0; p < P; p++) {
                    long i = (((long)b * F + f) * C + c) * P + p;
                    dn[i] = dout[i] * (1.0 + ss[b * 2 * C + c]);
                    dss[b * 2 * C + c] += dout[i] * n[i];
                    dss[b * 2 * C + C + c] += dout[i];
                }
}
