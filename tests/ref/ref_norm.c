#include "ref/ref_norm.h"

#include <math.h>
#include <stdlib.h>

// Two-pass mean and biased variance of x[0..k).
static void stats(const double *x, long k, double *mean, double *var) {
    double s = 0.0;
    for (long i = 0; i < k; i++) s += x[i];
    double m = s / (double)k, q = 0.0;
    for (long i = 0; i < k; i++) q += (x[i] - m) * (x[i] - m);
    *mean = m;
    *var = q / (double)k;
}

void ref_groupnorm_forward(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                           const double *bias, int N, int C, int P, int G, double eps) {
    int cg = C / G;
    long k = (long)cg * P;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            long base = ((long)n * C + (long)g * cg) * P;
            double m, v;
            stats(inp + base, k, &m, &v);
            double r = 1.0 / sqrt(v + eps);
            if (mean) mean[n * G + g] = m;
            if (rstd) rstd[n * G + g] = r;
            for (int c = 0; c < cg; c++) {
                int ch = g * cg + c;
                double w = weight ? weight[ch] : 1.0, b = bias ? bias[ch] : 0.0;
                for (int p = 0; p < P; p++) {
                    long i = base + (long)c * P + p;
                    out[i] = (inp[i] - m) * r * w + b;
                }
            }
        }
}

// dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·w, means over the group.
void ref_groupnorm_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, int N, int C, int P, int G, double eps) {
    int cg = C / G;
    long k = (long)cg * P;
    for (int n = 0; n < N; n++)
        for (int g = 0; g < G; g++) {
            long base = ((long)n * C + (long)g * cg) * P;
            double m, v;
            stats(inp + base, k, &m, &v);
            double r = 1.0 / sqrt(v + eps);
            double m1 = 0.0, m2 = 0.0;
            for (int c = 0; c < cg; c++) {
                int ch = g * cg + c;
                double w = weight ? weight[ch] : 1.0;
                for (int p = 0; p < P; p++) {
                    long i = base + (long)c * P + p;
                    double xh = (inp[i] - m) * r;
                    m1 += dout[i] * w;
                    m2 += dout[i] * w * xh;
                    if (dweight) dweight[ch] += dout[i] * xh;
                    if (dbias) dbias[ch] += dout[i];
                }
            }
            m1 /= (double)k;
            m2 /= (double)k;
            if (!dinp) continue;
            for (int c = 0; c < cg; c++) {
                int ch = g * cg + c;
                double w = weight ? weight[ch] : 1.0;
                for (int p = 0; p < P; p++) {
                    long i = base + (long)c * P + p;
                    double xh = (inp[i] - m) * r;
                    dinp[i] = r * (dout[i] * w - m1 - xh * m2);
                }
            }
        }
}

void ref_layernorm_forward(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                           const double *bias, long R, int C, double eps) {
    ref_groupnorm_forward(out, mean, rstd, inp, weight, bias, (int)R, C, 1, 1, eps);
}

void ref_layernorm_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, long R, int C, double eps) {
    ref_groupnorm_backward(dinp, dweight, dbias, dout, inp, weight, (int)R, C, 1, 1, eps);
}
