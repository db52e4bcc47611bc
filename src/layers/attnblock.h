// attnblock.h — the U-Net attention block (SPEC §3).
//   spatial (every frame): tokens = the H·W pixels of GN(x); qkv; with context, ctx_kv of the
//     n_ctx context tokens gives extra keys/values placed before the pixels'; x += proj(attn).
//   temporal (temporal nets): tokens = the F frames at each pixel of LayerNorm(x) + tpos[0:F];
//     tqkv; no context; x += tproj(attn).
// Heads = channels / head_ch. Activations frames-major [N = B·F, C, P].
#ifndef MAV_ATTNBLOCK_H
#define MAV_ATTNBLOCK_H

#include "layers/layer.h"

typedef struct {
    int C, heads, temb, n_ctx, temporal;
    int norm_w, norm_b, qkv_w, qkv_b, ctx_w, ctx_b, proj_w, proj_b;   // ctx_* = -1 without context
    int tnorm_w, tnorm_b, tpos, tqkv_w, tqkv_b, tproj_w, tproj_b;     // -1 unless temporal
    long P;
    // saved activations (spatial)
    float *mean, *rstd;   // [N, 32]
    float *tok;           // [N, P, C] GN(x) as tokens
    float *qkv;           // [N, P, 3C]
    float *ckv;           // [N, n_ctx, 2C] context keys | values, repeated for every frame
    float *o, *lse;       // [N, P, C], [N, heads, P]
    // saved activations (temporal): token rows are (b, p, f)
    float *tt;            // [B, P, F, C] x1 as per-pixel frame sequences
    float *tmean, *trstd; // [B·P·F]
    float *ln;            // [B, P, F, C] LayerNorm(tt) + tpos
    float *tqkv;          // [B·P·F, 3C]
    float *to, *tlse;     // [B·P, F, C], [B·P, heads, F]
} mav_attnblock;

void mav_attnblock_init(mav_attnblock *l, const mav_params *p, const char *prefix, int C, int head_ch, int temb,
                        int n_ctx, int temporal);
void mav_attnblock_plan(mav_attnblock *l, mav_layer_ctx *c, mav_arena *act, int H, int W);
// out [N, C, P] from x [N, C, P]; ctx [B, n_ctx, temb] context tokens (NULL when n_ctx = 0).
void mav_attnblock_forward(mav_attnblock *l, mav_layer_ctx *c, float *out, const float *x, const float *ctx);
// dx written; dctx [B, n_ctx, temb] accumulated (+=).
void mav_attnblock_backward(mav_attnblock *l, mav_layer_ctx *c, float *dx, float *dctx, const float *dout,
                            const float *x, const float *ctx);

#endif
