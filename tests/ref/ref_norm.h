// ref_norm.h — plain double-precision GroupNorm / LayerNorm (textbook two-pass formulas), the
// reference the f32 kernels in src/ops/{groupnorm,layernorm}.c are tested against.
#ifndef MAV_REF_NORM_H
#define MAV_REF_NORM_H

// out: (N, C, P); mean, rstd: (N, G) (either may be NULL); inp: (N, C, P); weight, bias: (C) (NULL = 1 / 0).
void ref_groupnorm_forward(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                           const double *bias, int N, int C, int P, int G, double eps);
// Statistics recomputed from inp. dinp written (NULL to skip); dweight, dbias accumulated (NULL to skip).
void ref_groupnorm_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, int N, int C, int P, int G, double eps);

// LayerNorm over rows of C: exactly GroupNorm with N = R, P = 1, G = 1 (one group holding all
// C "channels" of one-pixel images, weight per channel).
void ref_layernorm_forward(double *out, double *mean, double *rstd, const double *inp, const double *weight,
                           const double *bias, long R, int C, double eps);
void ref_layernorm_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                            const double *weight, long R, int C, double eps);

#endif
