// modulate.h — the ResBlock's conditioning (SPEC §3): h = n · (1 + scale) + shift, where
// scale and shift come from the conditioning vector and are constant over the frames and
// pixels of a sample: `emb_out(SiLU(temb))` gives [B, 2C], scale first, then shift.
//
// Layout frames-major: n, out [B, F, C, P]; ss [B, 2C] = [scale | shift].
#ifndef MAV_OPS_MODULATE_H
#define MAV_OPS_MODULATE_H

void mav_modulate_forward(float *out, const float *n, const float *ss, int B, int F, int C, long P);
// dn = dout · (1 + scale) (written, NULL = skip); dss [B, 2C] written:
// dscale[b,c] = Σ_{f,p} dout·n, dshift[b,c] = Σ_{f,p} dout (sums in double, fixed order).
void mav_modulate_backward(float *dn, float *dss, const float *dout, const float *n, const float *ss, int B, int F,
                           int C, long P);

#endif
