// ref_attention.c — the textbook formulation, written for obviousness rather than speed:
// S = scale·Q·Kᵀ over [context | keys], masked entries excluded, P = softmax(S), O = P·V;
// backward dV = Pᵀ·dO, dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
#include "ref/ref_attention.h"

#include <math.h>
#include <stdlib.h>

typedef struct {
    const double *x, *cx;
    long st, bst, cst, cbst;
} kv_view;

static const double *row_of(const kv_view *w, const mav_attn_shape *s, int b, int h, int j) {
    return j < s->Nc ? w->cx + b * w->cbst + (long)j * w->cst + (long)h * s->head_dim
                     : w->x + b * w->bst + (long)(j - s->Nc) * w->st + (long)h * s->head_dim;
}

static double *drow_of(double *x, double *cx, long st, long bst, long cst, long cbst, const mav_attn_shape *s, int b,
                       int h, int j) {
    double *base = j < s->Nc ? cx : x;
    if (!base) return NULL;
    return j < s->Nc ? cx + b * cbst + (long)j * cst + (long)h * s->head_dim
                     : x + b * bst + (long)(j - s->Nc) * st + (long)h * s->head_dim;
}

static int visible(const mav_attn_shape *s, int b, int i, int j) {
    int Nt = s->Nc + s->Nk;
    if (s->key_mask && !s->key_mask[(long)b * Nt + j]) return 0;
    if (s->causal && j >= s->Nc && (j - s->Nc) > i + (s->Nk - s->Nq)) return 0;
    return 1;
}

static double scale_of(const mav_attn_shape *s) {
    return s->scale != 0.0f ? (double)s->scale : 1.0 / sqrt((double)s->head_dim);
}

// P[Nq, Nt] (0 where masked) and lse[Nq] for one (b, h); returns nothing, rows with no key are 0.
static void probs(double *P, double *lse, const double *q, const kv_view *kw, const mav_attn_shape *s, int b, int h) {
    const int Nt = s->Nc + s->Nk, hd = s->head_dim;
    const double scale = scale_of(s);
    for (int i = 0; i < s->Nq; i++) {
        const double *qi = q + b * s->q_bstride + (long)i * s->q_stride + (long)h * hd;
        double mx = -INFINITY;
        for (int j = 0; j < Nt; j++) {
            double dot = 0;
            const double *kj = row_of(kw, s, b, h, j);
            for (int d = 0; d < hd; d++) dot += qi[d] * kj[d];
            P[(long)i * Nt + j] = visible(s, b, i, j) ? scale * dot : -INFINITY;
            if (P[(long)i * Nt + j] > mx) mx = P[(long)i * Nt + j];
        }
        if (mx == -INFINITY) {
            for (int j = 0; j < Nt; j++) P[(long)i * Nt + j] = 0.0;
            lse[i] = -INFINITY;
            continue;
        }
        double sum = 0;
        for (int j = 0; j < Nt; j++) sum += exp(P[(long)i * Nt + j] - mx);
        lse[i] = mx + log(sum);
        for (int j = 0; j < Nt; j++) P[(long)i * Nt + j] = exp(P[(long)i * Nt + j] - lse[i]);
    }
}

void ref_attention_forward(double *out, double *lse, const double *q, const double *k, const double *v,
                           const double *ck, const double *cv, const mav_attn_shape *s) {
    const int Nt = s->Nc + s->Nk, hd = s->head_dim;
    kv_view kw = {k, ck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride};
    kv_view vw = {v, cv, s->v_stride, s->v_bstride, s->cv_stride, s->cv_bstride};
    double *P = malloc(sizeof(double) * ((size_t)s->Nq * Nt + 1));
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            double *l = lse + ((long)b * s->H + h) * s->Nq;
            probs(P, l, q, &kw, s, b, h);
            for (int i = 0; i < s->Nq; i++) {
                double *o = out + b * s->o_bstride + (long)i * s->o_stride + (long)h * hd;
                for (int d = 0; d < hd; d++) o[d] = 0.0;
                for (int j = 0; j < Nt; j++) {
                    const double *vj = row_of(&vw, s, b, h, j);
                    for (int d = 0; d < hd; d++) o[d] += P[(long)i * Nt + j] * vj[d];
                }
            }
        }
    free(P);
}

void ref_attention_backward(double *dq, double *dk, double *dv, double *dck, double *dcv, const double *dout,
                            const double *q, const double *k, const double *v, const double *ck, const double *cv,
                            const mav_attn_shape *s) {
    const int Nt = s->Nc + s->Nk, hd = s->head_dim, Nq = s->Nq;
    const double scale = scale_of(s);
    kv_view kw = {k, ck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride};
    kv_view vw = {v, cv, s->v_stride, s->v_bstride, s->cv_stride, s->cv_bstride};
    double *P = malloc(sizeof(double) * ((size_t)Nq * Nt + 1));
    double *dS = malloc(sizeof(double) * ((size_t)Nq * Nt + 1));
    double *lse = malloc(sizeof(double) * ((size_t)Nq + 1));
    for (int b = 0; b < s->B; b++)
        for (int h = 0; h < s->H; h++) {
            probs(P, lse, q, &kw, s, b, h);
            for (int i = 0; i < Nq; i++) {
                const double *go = dout + b * s->o_bstride + (long)i * s->o_stride + (long)h * hd;
                double rs = 0;
                for (int j = 0; j < Nt; j++) {
                    const double *vj = row_of(&vw, s, b, h, j);
                    double dp = 0;
                    for (int d = 0; d < hd; d++) dp += go[d] * vj[d];
                    dS[(long)i * Nt + j] = dp;
                    rs += P[(long)i * Nt + j] * dp;
                }
                for (int j = 0; j < Nt; j++) dS[(long)i * Nt + j] = P[(long)i * Nt + j] * (dS[(long)i * Nt + j] - rs);
            }
            if (dq)
                for (int i = 0; i < Nq; i++) {
                    double *g = dq + b * s->q_bstride + (long)i * s->q_stride + (long)h * hd;
                    for (int d = 0; d < hd; d++) g[d] = 0.0;
                    for (int j = 0; j < Nt; j++) {
                        const double *kj = row_of(&kw, s, b, h, j);
                        for (int d = 0; d < hd; d++) g[d] += scale * dS[(long)i * Nt + j] * kj[d];
                    }
                }
            for (int j = 0; j < Nt; j++) {
                double *gk = drow_of(dk, dck, s->k_stride, s->k_bstride, s->ck_stride, s->ck_bstride, s, b, h, j);
                double *gv = drow_of(dv, dcv, s->v_stride, s->v_bstride, s->cv_stride, s->cv_bstride, s, b, h, j);
                for (int d = 0; d < hd; d++) {
                    if (gk) gk[d] = 0.0;
                    if (gv) gv[d] = 0.0;
                }
                for (int i = 0; i < Nq; i++) {
                    const double *qi = q + b * s->q_bstride + (long)i * s->q_stride + (long)h * hd;
                    const double *go = dout + b * s->o_bstride + (long)i * s->o_stride + (long)h * hd;
                    for (int d = 0; d < hd; d++) {
                        if (gk) gk[d] += scale * dS[(long)i * Nt + j] * qi[d];
                        if (gv) gv[d] += P[(long)i * Nt + j] * go[d];
                    }
                }
            }
        }
    free(P);
    free(dS);
    free(lse);
}
