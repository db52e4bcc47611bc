// resblock.h — the U-Net residual block (SPEC §3):
//   h = in_conv(SiLU(GN(x)))                      P3DConv 3×3
//   scale, shift = split(emb_out(SiLU(temb)), 2)   scale first
//   h = GN(h)·(1 + scale) + shift
//   h = out_conv(Dropout(SiLU(h)))                P3DConv 3×3
//   out = skip(x) + h                             1×1 conv when c_in ≠ c_out
// Activations are frames-major [N = B·F, C, P].
#ifndef MAV_RESBLOCK_H
#define MAV_RESBLOCK_H

#include "layers/p3dconv.h"

typedef struct {
    int cin, cout, temb;  // temb = width of the conditioning vector (4·ch)
    float dropout;
    int in_norm_w, in_norm_b, emb_w, emb_b, out_norm_w, out_norm_b;
    mav_p3dconv in_conv, out_conv;
    int has_skip;
    mav_p3dconv skip;     // 1×1, no temporal part
    long P;               // pixels per frame
    // saved activations
    float *mean1, *rstd1, *mean2, *rstd2;  // [N, 32]
    float *n1, *a1;                        // [N, cin, P]: GN(x), SiLU(GN(x))
    float *h1, *n2, *m2, *a2;              // [N, cout, P]: in_conv out, GN, modulated, SiLU
    float *ss;                             // [B, 2·cout] emb_out(SiLU(temb)) = [scale | shift]
    mav_rng drop_at;                       // dropout stream position of the last forward
} mav_resblock;

void mav_resblock_init(mav_resblock *l, const mav_params *p, const char *prefix, int cin, int cout, int temb,
                       int temporal, float dropout);
void mav_resblock_plan(mav_resblock *l, mav_layer_ctx *c, mav_arena *act, int H, int W);
// out [N, cout, P] from x [N, cin, P] and stemb = SiLU(temb) [B, temb].
void mav_resblock_forward(mav_resblock *l, mav_layer_ctx *c, float *out, const float *x, const float *stemb);
// dx [N, cin, P] written; dstemb [B, temb] accumulated (+=) — every block reads the same temb.
void mav_resblock_backward(mav_resblock *l, mav_layer_ctx *c, float *dx, float *dstemb, const float *dout,
                           const float *x, const float *stemb);

#endif
