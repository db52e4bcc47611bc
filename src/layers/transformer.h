// transformer.h — a pre-LN transformer block (OpenAI CLIP's ResidualAttentionBlock; the
// DALL-E 2 prior's block of SPEC §5 is the same computation under other names):
//   x1  = x  + out_proj(MHA(ln_1(x)))       qkv = in_proj(ln_1(x)) = [q | k | v] (SPEC §2 layout)
//   out = x1 + c_proj(act(c_fc(ln_2(x1))))  hidden width mlp_width (4·width in CLIP and the prior)
// Options: heads (head_dim = width / heads), activation (QuickGELU, exact GELU, ...), causal
// mask, a per-call key-padding mask, and the tensor names (OpenAI's or the prior's) under a
// prefix. LayerNorm eps 1e-5.
//
// Sequences are [S, N, width] with S = c->B · c->F sequences of N tokens (docs/ENGINE.md).
// Memory: with c->training the plan takes every saved activation from the activation arena
// (backward needs them: ln outputs and stats, qkv, attention output and lse, x1, the MLP
// pre-activation); otherwise forward takes them from c->work and releases them, so an
// inference stack of any depth needs the memory of one block.
#ifndef MAV_TRANSFORMER_H
#define MAV_TRANSFORMER_H

#include <stdint.h>

#include "layers/layer.h"
#include "ops/activation.h"

// Names of the block's tensors below its prefix (".weight" / ".bias" appended where shown).
typedef struct {
    const char *ln_1, *qkv_w, *qkv_b, *out_proj, *ln_2, *fc, *proj;
} mav_transformer_names;

// OpenAI CLIP: ln_1, attn.in_proj_weight, attn.in_proj_bias, attn.out_proj, ln_2, mlp.c_fc, mlp.c_proj.
extern const mav_transformer_names mav_transformer_names_clip;
// SPEC §5 prior: ln1, attn.qkv.weight, attn.qkv.bias, attn.proj, ln2, mlp.fc, mlp.proj.
extern const mav_transformer_names mav_transformer_names_prior;

typedef struct {
    int width, heads, mlp_width, causal;
    mav_act act;
    int ln1_w, ln1_b, qkv_w, qkv_b, out_w, out_b, ln2_w, ln2_b, fc_w, fc_b, proj_w, proj_b;
    int N;                     // tokens per sequence (planned)
    // saved for backward (training plans; NULL otherwise)
    float *mean1, *rstd1;      // [S·N]
    float *ln1;                // [S, N, width]
    float *qkv;                // [S, N, 3·width]
    float *o, *lse;            // [S, N, width], [S, heads, N]
    float *x1;                 // [S, N, width]
    float *mean2, *rstd2;      // [S·N]
    float *ln2;                // [S, N, width]
    float *h;                  // [S, N, mlp_width] c_fc output (the activation is recomputed in backward)
} mav_transformer;

// Register the block's tensors under `prefix` (e.g. "transformer.resblocks.3").
void mav_transformer_register(mav_params *p, const char *prefix, const mav_transformer_names *n, int width,
                              int mlp_width);
// Bind a registered block (asserts every tensor exists). width % heads == 0.
void mav_transformer_init(mav_transformer *l, const mav_params *p, const char *prefix, const mav_transformer_names *n,
                          int width, int heads, int mlp_width, mav_act act, int causal);
// Plan for S = c->B·c->F sequences of N tokens.
void mav_transformer_plan(mav_transformer *l, mav_layer_ctx *c, mav_arena *act, int N);
// out [S, N, width] from x [S, N, width] (out != x). key_mask [S, N] (1 = may be attended to)
// or NULL; every query must keep at least one visible key.
void mav_transformer_forward(mav_transformer *l, mav_layer_ctx *c, float *out, const float *x,
                             const uint8_t *key_mask);
// dx written (dx != dout), parameter gradients accumulated, from the last forward (training plan)
// with the same x and key_mask.
void mav_transformer_backward(mav_transformer *l, mav_layer_ctx *c, float *dx, const float *dout, const float *x,
                              const uint8_t *key_mask);

#endif
