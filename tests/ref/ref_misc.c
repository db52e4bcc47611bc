#include "ref/ref_misc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"

void ref_linear_forward(double *out, const double *inp, const double *w, const double *bias, int R, int Ci, int Co) {
    for (int r = 0; r < R; r++)
        for (int o = 0; o < Co; o++) {
            double s = bias ? bias[o] : 0.0;
            for (int i = 0; i < Ci; i++) s += inp[(long)r * Ci + i] * w[(long)o * Ci + i];
            out[(long)r * Co + o] = s;
        }
}

void ref_linear_backward(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                         const double *w, int R, int Ci, int Co) {
    for (int r = 0; r < R; r++) {
        if (dinp)
            for (int i = 0; i < Ci; i++) {
                double s = 0;
                for (int o = 0; o < Co; o++) s += dout[(long)r * Co + o] * w[(long)o * Ci + i];
                dinp[(long)r * Ci + i] = s;
            }
        for (int o = 0; o < Co; o++) {
            double g = dout[(long)r * Co + o];
            if (db) db[o] += g;
            if (dw)
                for (int i = 0; i < Ci; i++) dw[(long)o * Ci + i] += g * inp[(long)r * Ci + i];
        }
    }
}

void ref_embedding_forward(double *out, const int32_t *ids, const double *table, int R, int D) {
    for (int r = 0; r < R; r++)
        for (int k = 0; k < D; k++) out[(long)r * D + k] = table[(long)ids[r] * D + k];
}

void ref_embedding_backward(double *dtable, const double *dout, const int32_t *ids, int R, int D) {
    for (int r = 0; r < R; r++)
        for (int k = 0; k < D; k++) dtable[(long)ids[r] * D + k] += dout[(long)r * D + k];
}

void ref_timestep_embedding(double *out, const double *t, int n, int d) {
    int half = d / 2;
    for (int b = 0; b < n; b++)
        for (int i = 0; i < half; i++) {
            double f = exp(-log(10000.0) * i / half);
            out[(long)b * d + i] = cos(t[b] * f);
            out[(long)b * d + half + i] = sin(t[b] * f);
        }
}

void ref_concat_forward(double *out, const double *a, const double *b, int N, int Ca, int Cb, long P) {
    int C = Ca + Cb;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (long p = 0; p < P; p++)
                out[((long)n * C + c) * P + p] = c < Ca ? a[((long)n * Ca + c) * P + p] : b[((long)n * Cb + c - Ca) * P + p];
}

void ref_concat_backward(double *da, double *db, const double *dout, int N, int Ca, int Cb, long P) {
    int C = Ca + Cb;
    for (int n = 0; n < N; n++)
        for (int c = 0; c < C; c++)
            for (long p = 0; p < P; p++) {
                double g = dout[((long)n * C + c) * P + p];
                if (c < Ca) { if (da) da[((long)n * Ca + c) * P + p] = g; }
                else if (db) db[((long)n * Cb + c - Ca) * P + p] = g;
            }
}

void ref_upsample2x_forward(double *out, const double *inp, int N, int C, int H, int W) {
    for (long q = 0; q < (long)N * C; q++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++) out[(q * 2 * H + y) * 2 * W + x] = inp[(q * H + y / 2) * W + x / 2];
}

void ref_upsample2x_backward(double *dinp, const double *dout, int N, int C, int H, int W) {
    memset(dinp, 0, sizeof(double) * (size_t)N * C * H * W);
    for (long q = 0; q < (long)N * C; q++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++) dinp[(q * H + y / 2) * W + x / 2] += dout[(q * 2 * H + y) * 2 * W + x];
}

double ref_mse_forward(const double *x, const double *y, long n) {
    double s = 0;
    for (long i = 0; i < n; i++) s += (x[i] - y[i]) * (x[i] - y[i]);
    return s / n;
}

void ref_mse_backward(double *dx, const double *x, const double *y, long n, double dloss) {
    for (long i = 0; i < n; i++) dx[i] = 2.0 * (x[i] - y[i]) / n * dloss;
}

int ref_dropout_keep(uint64_t seed, uint64_t offset, long i, double p) {
    uint32_t o[4];
    mav_philox4x32(seed, offset + (uint64_t)(i / 4), o);
    double u = (double)(o[i % 4] >> 8) / 16777216.0;
    return u >= p;
}

// Normalised rows (F.normalize, eps 1e-12) and logits L = e^ls·A·Bᵀ, malloc'd by the caller.
static void clip_logits(double *L, double *a, double *b, double *na, double *nb, const double *img, const double *txt,
                        double ls, int B, int D) {
    for (int i = 0; i < B; i++) {
        double sa = 0, sb = 0;
        for (int k = 0; k < D; k++) { sa += img[(long)i * D + k] * img[(long)i * D + k]; sb += txt[(long)i * D + k] * txt[(long)i * D + k]; }
        na[i] = sqrt(sa); nb[i] = sqrt(sb);
        for (int k = 0; k < D; k++) {
            a[(long)i * D + k] = img[(long)i * D + k] / fmax(na[i], 1e-12);
            b[(long)i * D + k] = txt[(long)i * D + k] / fmax(nb[i], 1e-12);
        }
    }
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++) {
            double s = 0;
            for (int k = 0; k < D; k++) s += a[(long)i * D + k] * b[(long)j * D + k];
            L[(long)i * B + j] = exp(ls) * s;
        }
}

static double lse(const double *v, long stride, int n) {
    double m = -INFINITY, s = 0;
    for (int k = 0; k < n; k++) m = fmax(m, v[k * stride]);
    for (int k = 0; k < n; k++) s += exp(v[k * stride] - m);
    return m + log(s);
}

static int argmax(const double *v, long stride, int n) {
    int am = 0;
    for (int k = 1; k < n; k++) if (v[k * stride] > v[am * stride]) am = k;
    return am;
}

double ref_clip_loss_forward(int *correct, const double *img, const double *txt, double ls, int B, int D) {
    double *L = malloc(sizeof(double) * ((size_t)B * B + 2 * (size_t)B * D + 2 * B));
    double *a = L + (long)B * B, *b = a + (long)B * D, *na = b + (long)B * D, *nb = na + B;
    clip_logits(L, a, b, na, nb, img, txt, ls, B, D);
    double loss = 0;
    int c0 = 0, c1 = 0;
    for (int i = 0; i < B; i++) {
        loss += lse(L + (long)i * B, 1, B) - L[(long)i * B + i];
        loss += lse(L + i, B, B) - L[(long)i * B + i];
        c0 += argmax(L + (long)i * B, 1, B) == i;
        c1 += argmax(L + i, B, B) == i;
    }
    if (correct) { correct[0] = c0; correct[1] = c1; }
    free(L);
    return loss / (2.0 * B);
}

void ref_clip_loss_backward(double *dimg, double *dtxt, double *dls, double dloss, const double *img,
                            const double *txt, double ls, int B, int D) {
    size_t sz = (size_t)B * B * 2 + 4 * (size_t)B * D + 2 * B;
    double *L = malloc(sizeof(double) * sz);
    double *G = L + (long)B * B, *a = G + (long)B * B, *b = a + (long)B * D, *da = b + (long)B * D,
           *db = da + (long)B * D, *na = db + (long)B * D, *nb = na + B;
    clip_logits(L, a, b, na, nb, img, txt, ls, B, D);
    // G = d loss / d L: row softmax (image→text CE) + column softmax (text→image CE) − 2·I, / 2B
    for (int i = 0; i < B; i++) {
        double lr = lse(L + (long)i * B, 1, B);
        for (int j = 0; j < B; j++) G[(long)i * B + j] = exp(L[(long)i * B + j] - lr) - (i == j);
    }
    for (int j = 0; j < B; j++) {
        double lc = lse(L + j, B, B);
        for (int i = 0; i < B; i++) G[(long)i * B + j] += exp(L[(long)i * B + j] - lc) - (i == j);
    }
    double g_ls = 0;
    for (long k = 0; k < (long)B * B; k++) { G[k] *= dloss / (2.0 * B); g_ls += G[k] * L[k]; }
    if (dls) *dls += g_ls;
    // L_ij = e^ls · a_i·b_j
    memset(da, 0, sizeof(double) * 2 * (size_t)B * D);
    for (int i = 0; i < B; i++)
        for (int j = 0; j < B; j++)
            for (int k = 0; k < D; k++) {
                double g = exp(ls) * G[(long)i * B + j];
                da[(long)i * D + k] += g * b[(long)j * D + k];
                db[(long)j * D + k] += g * a[(long)i * D + k];
            }
    // a = x / max(‖x‖, eps): dx = (da − a(a·da))/‖x‖, or da/eps when clamped
    for (int pass = 0; pass < 2; pass++) {
        double *dx = pass ? dtxt : dimg;
        const double *u = pass ? b : a, *du = pass ? db : da, *nrm = pass ? nb : na;
        if (!dx) continue;
        for (int i = 0; i < B; i++) {
            double dot = 0;
            for (int k = 0; k < D; k++) dot += u[(long)i * D + k] * du[(long)i * D + k];
            for (int k = 0; k < D; k++)
                dx[(long)i * D + k] = nrm[i] > 1e-12 ? (du[(long)i * D + k] - u[(long)i * D + k] * dot) / nrm[i]
                                                     : du[(long)i * D + k] / 1e-12;
        }
    }
    free(L);
}
