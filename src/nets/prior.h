// prior.h — the DALL-E 2-style diffusion prior P (SPEC §5): CLIP text encoding → CLIP image
// embedding. A causal pre-LN transformer of width d over the sequence of N = L + 4 tokens
//
//   pos 0 .. L−1   text_tok_proj(text_tokens[l])           CLIP's ln_final output per position
//   pos L          text_emb_proj(text_emb)                 CLIP's projected text embedding
//   pos L+1        time_embed.2(SiLU(time_embed.0(timestep_embedding(t, d))))
//   pos L+2        image_proj(x_t)                         the noised image embedding
//   pos L+3        query                                   learned [d]
//
// plus the learned `pos` [L+4, d]; blocks `blocks.i.*` (layers/transformer.h, the prior's names,
// exact GELU, causal); the output is out_proj(ln_f(h[L+3])) ∈ R^emb_dim: the predicted clean
// embedding x0 (in the scaled space of SPEC §5, |x0| ≈ sqrt(emb_dim)).
//
// Key mask: text position j < L is a key iff mask[b][j] (1 = real token: SOT … EOT; 0 = the
// padding after EOT); position 0 (SOT) is always a key, whatever the mask says, so no
// attention row is ever empty; the four positions L..L+3 are always keys. Causality applies on
// top. docs/PRIOR.md describes the whole (init, memory, diffusion around it).
//
// Layouts: text_tokens [B, L, text_width]; text_emb, x, x0 [B, emb_dim]; t [B] (float
// timesteps); mask [B, L] uint8 or NULL (= all real). Inside, the sequence is [B, N, d].
#ifndef MAV_PRIOR_H
#define MAV_PRIOR_H

#include <stddef.h>
#include <stdint.h>

#include "core/params.h"
#include "io/safetensors.h"
#include "layers/transformer.h"

typedef struct {
    int width;       // d
    int layers;
    int heads;       // d % heads == 0; d even (timestep embedding)
    int text_width;  // CLIP text transformer width (text_tokens' last dim)
    int emb_dim;     // CLIP embedding dim (text_emb, image embeddings)
    int text_ctx;    // L (CLIP context length)
} mav_prior_config;

// Named configs: "tiny" (tests; pairs with clip "tiny": text_width 40, emb_dim 24, ctx 9) and
// "vit-b-32" (pairs with OpenAI ViT-B/32 CLIP: text_width 512, emb_dim 512, ctx 77; d 768,
// 12 layers, 12 heads — DALL-E 2 used d 2048 × 24 for ViT-H/16, scaled down here).
mav_status mav_prior_config_named(mav_prior_config *c, const char *name);
const char *const *mav_prior_config_names(void);  // NULL-terminated
// Sizes in 1..1000000, heads divide width, width even; the error names the field.
mav_status mav_prior_config_check(const mav_prior_config *c);
// JSON ("mav.config"): malloc'd string / parse (checked; unknown or missing fields rejected).
char *mav_prior_config_to_json(const mav_prior_config *c);
mav_status mav_prior_config_from_json(mav_prior_config *c, const char *json);
// A checkpoint's config (mav.kind must be "prior").
mav_status mav_prior_read_config(const mav_st_file *f, mav_prior_config *c);

// ---- the network at run time ---------------------------------------------------------------
//
// One plan (batch, training flag) sizes everything once with a measuring arena; forward and
// backward allocate nothing. A training plan keeps every block's input and saved activations;
// an inference plan keeps two ping-pong buffers and takes each block's temporaries from the
// work arena.

typedef struct {
    mav_prior_config cfg;
    mav_params params;
    mav_transformer *blocks;  // [layers]
    int tok_w, tok_b, emb_w, emb_b, te0_w, te0_b, te2_w, te2_b, img_w, img_b, query, pos, lnf_w, lnf_b, out_w, out_b;
    // plan
    int B, training;
    mav_arena act, work;
    float *scratch;
    mav_layer_ctx lc;
    float **xs;            // [n_xs] block outputs [B, N, d]
    int n_xs;
    float *seq;            // [B, N, d] the first block's input
    uint8_t *mask;         // [B, N] key mask
    float *tt, *te, *xe;   // input copies: [B, L, text_width], [B, emb_dim], [B, emb_dim]
    float *t_in, *t_h, *t_s;  // [B, d] timestep embedding, time_embed.0 output, its SiLU
    float *q, *fin, *fin_mean, *fin_rstd;  // [B, d] query rows of the last block, ln_f of them, stats [B]
    float *g0, *g1;        // training: gradient ping-pong [B, N, d]
} mav_prior;

// Registers every tensor (checked config); parameters are not allocated yet.
mav_status mav_prior_create(mav_prior *m, const mav_prior_config *c);
void mav_prior_free(mav_prior *m);
// Values (+ gradients and AdamW moments when training).
mav_status mav_prior_alloc_params(mav_prior *m, int training);
// Initial values from `seed` (tensor k from the Philox stream fork(seed, k)): every linear
// PyTorch's default U(±1/sqrt(fan_in)) for weight and bias; LayerNorms 1 / 0; pos and query
// N(0, 0.02²) (as DALL-E 2 prior implementations).
void mav_prior_init_params(mav_prior *m, uint64_t seed);
// Plan batch B (>= 1). training: keep what backward needs (needs gradients allocated).
mav_status mav_prior_plan(mav_prior *m, int B, int training);
size_t mav_prior_planned_bytes(const mav_prior *m);
// x0 [B, emb_dim] from text_tokens [B, L, text_width], text_emb [B, emb_dim], x [B, emb_dim]
// (noised, scaled space), t [B] and mask [B, L] (NULL = all real).
void mav_prior_forward(mav_prior *m, float *x0, const float *text_tokens, const float *text_emb, const float *x,
                       const float *t, const uint8_t *mask);
// Gradients of the last forward (training plan) from dx0 [B, emb_dim]: parameter gradients
// accumulated (+=).
void mav_prior_backward(mav_prior *m, const float *dx0);

// The key mask of CLIP-tokenised captions: mask[b][j] = 1 for j ≤ the EOT position (the
// highest id of row b, first maximum, as CLIP picks its embedding row), else 0.
void mav_prior_mask_from_tokens(uint8_t *mask /* [B, L] */, const int32_t *tokens /* [B, L] */, int B, int L);

// Checkpoints (SPEC §7): mav.kind = "prior", mav.config, tensors by SPEC §5 name.
mav_status mav_prior_save(const mav_prior *m, const char *path, mav_dtype dtype, int nmeta, const char *const *keys,
                          const char *const *vals);
// Load every tensor `prefix` + name (prefix "" or "prior." for a pipeline file). Missing or
// mis-shaped tensors are errors naming them; with prefix "", so is any tensor of the file that
// is not part of the network.
mav_status mav_prior_load_weights(mav_prior *m, const mav_st_file *f, const char *prefix);

#endif
