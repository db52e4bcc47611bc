// Double-precision reference kernels for the layout ops (transpose) and the ResBlock's
// scale-shift modulation (SPEC §3), written as plain loops.
#ifndef MAV_REF_LAYOUT_H
#define MAV_REF_LAYOUT_H

void ref_modulate_forward(double *out, const double *n, const double *ss, int B, int F, int C, long P);
void ref_modulate_backward(double *dn, double *dss, const double *dout, const double *n, const double *ss, int B,
                           int F, int C, long P);

#endif
