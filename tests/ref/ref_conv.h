// ref_conv.h — plain double-precision reference kernels for conv2d and the temporal conv
// (straight loops over the definitions in src/ops/conv2d.h and src/ops/tconv.h; no tricks).
// Same conventions as the optimised ops: dinp written (=), dweight/dbias accumulated (+=),
// any gradient pointer may be NULL.
#ifndef MAV_REF_CONV_H
#define MAV_REF_CONV_H

#include "ops/conv2d.h"

// out [N, C_out, H_out, W_out]; inp [N, C_in, H, W]; weight [C_out, C_in, kh, kw]; bias [C_out] or NULL
void ref_conv2d_forward(double *out, const double *inp, const double *weight, const double *bias,
                        const mav_conv2d_shape *s);
void ref_conv2d_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                         const double *weight, const mav_conv2d_shape *s);

// out [B, F, C_out, P]; inp [B, F, C_in, P]; weight [C_out, C_in, 3]; bias [C_out] or NULL
void ref_tconv_forward(double *out, const double *inp, const double *weight, const double *bias, int B, int F,
                       int C_in, int C_out, long P);
void ref_tconv_backward(double *dinp, double *dweight, double *dbias, const double *dout, const double *inp,
                        const double *weight, int B, int F, int C_in, int C_out, long P);

#endif
