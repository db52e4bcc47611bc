// ref_activation.h — the activations and their derivatives in double, written from the
// definitions (erfc/tanh/exp from libm), for testing src/ops/activation.c.
#ifndef MAV_REF_ACTIVATION_H
#define MAV_REF_ACTIVATION_H

#include "ops/activation.h"

double ref_act_value(mav_act a, double x);  // f(x)
double ref_act_deriv(mav_act a, double x);  // f'(x)
// out[i] = f(inp[i]);  dinp[i] = dout[i]·f'(inp[i])
void ref_act_forward(mav_act a, double *out, const double *inp, long n);
void ref_act_backward(mav_act a, double *dinp, const double *dout, const double *inp, long n);

#endif
