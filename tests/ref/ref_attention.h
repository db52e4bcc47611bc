// ref_attention.h — plain double-precision attention (materialised scores), the reference for
// src/ops/attention.c. Same mav_attn_shape (strides, context, causal rule, key mask) as the op.
#ifndef MAV_REF_ATTENTION_H
#define MAV_REF_ATTENTION_H

#include "ops/attention.h"

// out (head channels of each row) and lse [B, H, Nq] (−inf for a query with no visible key,
// whose output is 0). ck/cv may be NULL when Nc = 0.
void ref_attention_forward(double *out, double *lse, const double *q, const double *k, const double *v,
                           const double *ck, const double *cv, const mav_attn_shape *s);

// Gradients of Σ dout∘out, written (=) on the head channels of each row; NULL = skipped.
void ref_attention_backward(double *dq, double *dk, double *dv, double *dck, double *dcv, const double *dout,
                            const double *q, const double *k, const double *v, const double *ck, const double *cv,
                            const mav_attn_shape *s);

#endif
