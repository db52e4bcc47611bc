// ref_misc.h — plain double-precision reference kernels for the misc ops (linear, embedding,
// timestep embedding, channel concat, nearest 2× upsample, MSE, dropout mask, CLIP loss).
// Written straight from the definitions, no threading, no blocking: the optimised kernels in
// src/ops are tested against these, and these against finite differences.
#ifndef MAV_REF_MISC_H
#define MAV_REF_MISC_H

#include <stdint.h>

// out[r,o] = Σ_i inp[r,i]·w[o,i] + bias[o]
void ref_linear_forward(double *out, const double *inp, const double *w, const double *bias, int R, int Ci, int Co);
// dinp written, dw/db accumulated; NULL = skip.
void ref_linear_backward(double *dinp, double *dw, double *db, const double *dout, const double *inp,
                         const double *w, int R, int Ci, int Co);

void ref_embedding_forward(double *out, const int32_t *ids, const double *table, int R, int D);
void ref_embedding_backward(double *dtable, const double *dout, const int32_t *ids, int R, int D);  // accumulated

void ref_timestep_embedding(double *out, const double *t, int n, int d);  // [n, d], SPEC §2

void ref_concat_forward(double *out, const double *a, const double *b, int N, int Ca, int Cb, long P);
void ref_concat_backward(double *da, double *db, const double *dout, int N, int Ca, int Cb, long P);
void ref_upsample2x_forward(double *out, const double *inp, int N, int C, int H, int W);
void ref_upsample2x_backward(double *dinp, const double *dout, int N, int C, int H, int W);

double ref_mse_forward(const double *x, const double *y, long n);
void ref_mse_backward(double *dx, const double *x, const double *y, long n, double dloss);

// 1 when element i of a dropout call with stream (seed, offset) and rate p is kept: computed
// one element at a time from the definition in src/ops/dropout.h.
int ref_dropout_keep(uint64_t seed, uint64_t offset, long i, double p);

// CLIP loss from its definition; correct[2] as in mav_clip_loss_forward (NULL = skip).
double ref_clip_loss_forward(int *correct, const double *img, const double *txt, double logit_scale, int B, int D);
// dimg, dtxt written; *dls accumulated (NULL = skip each).
void ref_clip_loss_backward(double *dimg, double *dtxt, double *dls, double dloss, const double *img,
                            const double *txt, double logit_scale, int B, int D);

#endif
