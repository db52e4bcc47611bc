#include "ref/ref_conv.h"

#include <string.h>

// Input index of output (oy, ox) at tap (ki, kj), or −1 when the tap reads padding.
static long tap_index(const mav_conv2d_shape *s, int oy, int ox, int ki, int kj) {
    int iy = oy * s->stride + ki - s->pad, ix = ox * s->stride + kj - s->pad;
    if (iy < 0 || iy >= s->H || ix < 0 || ix >= s->W) return -1;
    return (long)iy * s->W + ix;
}

void ref_conv2d_forward(double *out, const double *inp, const double *weight, const double *bias,
                        const mav_conv2d_shape *s) {
    int Ho = mav_conv2d_out_h(s), Wo = mav_conv2d_out_w(s);
    for (int n = 0; n < s->N; n++)
        for (int co = 0; co < s->C_out; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < s->C_in; ci++)
                        for (int ki = 0; ki < s->kh; ki++)
                            for (int kj = 0; kj < s->kw; kj++) {
                                long t = tap_index(s, oy, ox, ki, kj);
                                if (t < 0) continue;
                                acc += weight[((long)(co * s->C_in + ci) * s->kh + ki) * s->kw + kj] *
                                       inp[((long)n * s->C_in + ci) * s->H * s->W + t];
                            }
                    out[(((long)n * s->C_out + co) * Ho + oy) * Wo + ox] = acc;
                }
}

void ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                         const double *weight, const mav_conv2d_shape *s) {
    int Ho = mav_conv2d_out_h(s), Wo = mav_conv2d_out_w(s);
    if (dinp) memset(dinp, 0, sizeof(double) * (size_t)s->N * s->C_in * s->H * s->W);
    for (int n = 0; n < s->N; n++)
        for (int co = 0; co < s->C_out; co++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double g = dout[(((long)n * s->C_out + co) * Ho + oy) * Wo + ox];
                    if (dbias) dbias[co] += g;
                    for (int ci = 0; ci < s->C_in; ci++)
                        for (int ki = 0; ki < s->kh; ki++)
                            for (int kj = 0; kj < s->kw; kj++) {
                                long t = tap_index(s, oy, ox, ki, kj);
                                if (t < 0) continue;
                                long wi = ((long)(co * s->C_in + ci) * s->kh + ki) * s->kw + kj;
                                long ii = ((long)n * s->C_in + ci) * s->H * s->W + t;
                                if (dweight) dweight[wi] += g * inp[ii];
                                if (dinp) dinp[ii] += g * weight[wi];
                            }
                }
}

void ref_tconv_forward(double *out, const double *inp, const double *weight, const double *bias, int B, int F,
                       int C_in, int C_out, long P) {
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int co = 0; co < C_out; co++)
                for (long p = 0; p < P; p++) {
                    double acc = bias ? bias[co] : 0.0;
                    for (int ci = 0; ci < C_in; ci++)
                        for (int k = 0; k < 3; k++) {
                            int g = f + k - 1;
                            if (g < 0 || g >= F) continue;
                            acc += weight[((long)co * C_in + ci) * 3 + k] * inp[(((long)b * F + g) * C_in + ci) * P + p];
                        }
                    out[(((long)b * F + f) * C_out + co) * P + p] = acc;
                }
}

void ref_tconv_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                        const double *weight, int B, int F, int C_in, int C_out, long P) {
    if (dinp) memset(dinp, 0, sizeof(double) * (size_t)B * F * C_in * P);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++)
            for (int co = 0; co < C_out; co++)
                for (long p = 0; p < P; p++) {
                    double d = dout[(((long)b * F + f) * C_out + co) * P + p];
                    if (dbias) dbias[co] += d;
                    for (int ci = 0; ci < C_in; ci++)
                        for (int k = 0; k < 3; k++) {
                            int g = f + k - 1;
                            if (g < 0 || g >= F) continue;
                            long wi = ((long)co * C_in + ci) * 3 + k, ii = (((long)b * F + g) * C_in + ci) * P + p;
                            if (dweight) dweight[wi] += d * inp[ii];
                            if (dinp) dinp[ii] += d * weight[wi];
                        }
                }
}
