// clip.h — OpenAI CLIP (SPEC §4): the text transformer and the ViT image tower, forward and
// backward, with OpenAI's tensor names so converted OpenAI / open_clip ViT checkpoints load
// unchanged; the config (JSON, named configs, inference from tensor shapes as OpenAI's
// build_model does) and CLIP's image preprocessing. docs/CLIP.md describes the whole.
//
// Layouts: tokens [B, ctx] int32; text_tokens [B, ctx, text_width]; images [B, 3, R, R]
// (already normalised); embeddings [B, embed_dim] (projected, not normalised). Inside, token
// sequences are [B, N, C] (docs/ENGINE.md).
#ifndef MAV_CLIP_H
#define MAV_CLIP_H

#include <stddef.h>
#include <stdint.h>

#include "core/params.h"
#include "io/safetensors.h"
#include "layers/transformer.h"
#include "ops/activation.h"

typedef struct {
    int embed_dim;
    int image_resolution, vision_layers, vision_width, vision_patch_size, vision_heads;
    int context_length, vocab_size, transformer_width, transformer_heads, transformer_layers;
    mav_act activation;  // MAV_ACT_QUICK_GELU (OpenAI) or MAV_ACT_GELU
} mav_clip_config;

// Named configs: "vit-b-32" (OpenAI ViT-B/32) and "tiny" (tests: awkward sizes).
mav_status mav_clip_config_named(mav_clip_config *c, const char *name);
const char *const *mav_clip_config_names(void);  // NULL-terminated
// Every rule a config must satisfy (sizes >= 1, heads divide widths, patch divides the
// resolution, activation quick_gelu|gelu); the error names the field.
mav_status mav_clip_config_check(const mav_clip_config *c);
// JSON (the checkpoint's "mav.config"): malloc'd string / parse (checked; unknown fields rejected).
char *mav_clip_config_to_json(const mav_clip_config *c);
mav_status mav_clip_config_from_json(mav_clip_config *c, const char *json);
// The architecture from tensor shapes, as OpenAI's build_model (heads = width / 64, QuickGELU),
// for tensors named `prefix` + OpenAI name (prefix "" or e.g. "clip."). The integer scalars
// input_resolution, context_length, vocab_size, when present, must agree with it.
mav_status mav_clip_config_infer(mav_clip_config *c, const mav_st_file *f, const char *prefix);
// A checkpoint's config: "mav.config" when the file says mav.kind = "clip", otherwise inferred
// from the shapes (OpenAI checkpoints converted to safetensors carry no metadata).
mav_status mav_clip_read_config(const mav_st_file *f, mav_clip_config *c);

// ---- the network at run time ---------------------------------------------------------------
//
// One parameter layout (core/params.h) for both towers and logit_scale. Each tower has its own
// plan (batch, training flag, activation arena, work arena, op scratch): mav_clip_plan sizes
// both once; forward and backward allocate nothing. A training plan keeps every layer's input
// and saved activations for backward; an inference plan keeps two ping-pong buffers and takes
// each layer's temporaries from the work arena, so its memory does not grow with depth.

typedef struct {
    int B, training;         // planned batch (0 = tower not planned)
    mav_arena act, work;
    float *scratch;
    mav_layer_ctx lc;
    float **xs;              // [n_xs] residual stream buffers [B, N, width]
    int n_xs;
    // text: x0 = token + positional embedding; vision: x0 = [class | patches] + positional, before ln_pre
    float *x0;               // [B, N, width]
    float *xin;              // [B, N, width] the first block's input (text: = x0; vision: ln_pre(x0))
    float *pre_mean, *pre_rstd;   // vision ln_pre statistics [B·N]
    float *patches;          // vision: [B·g², 3·p·p] im2col of the image
    int32_t *ids;            // text: [B, ctx] copy of the tokens
    int *eot;                // text: [B] position of the highest token id
    float *fin, *fin_mean, *fin_rstd;  // text: ln_final output [B, ctx, width] + stats; vision: ln_post [B, width] + stats
    float *pooled;           // text: fin at the EOT rows [B, width]; vision: class-token rows of the last layer [B, width]
    float *g0, *g1;          // training: gradient ping-pong [B, N, width]
} mav_clip_tower;

typedef struct {
    mav_clip_config cfg;
    mav_params params;
    mav_transformer *text_layers, *vision_layers;  // [transformer_layers], [vision_layers]
    int tok_emb, pos_emb, lnf_w, lnf_b, text_proj;
    int conv1, cls_emb, vpos_emb, ln_pre_w, ln_pre_b, ln_post_w, ln_post_b, vproj, logit_scale;
    mav_clip_tower text, vision;
} mav_clip;

// Registers every tensor (checked config); parameters are not allocated yet.
mav_status mav_clip_create(mav_clip *m, const mav_clip_config *c);
void mav_clip_free(mav_clip *m);
// Values (+ gradients and AdamW moments when training).
mav_status mav_clip_alloc_params(mav_clip *m, int training);
// OpenAI's initialisation (CLIP.initialize_parameters) drawn from `seed` (tensor k from
// the Philox stream fork(seed, k)); logit_scale = ln(1/0.07).
void mav_clip_init_params(mav_clip *m, uint64_t seed);
// Plan B_text captions and B_image images (0 = that tower is not used). training: keep what
// backward needs (needs gradients allocated).
mav_status mav_clip_plan(mav_clip *m, int B_text, int B_image, int training);
size_t mav_clip_planned_bytes(const mav_clip *m);
// text_emb [B, embed] and text_tokens [B, ctx, width] (either may be NULL) from tokens
// [B, ctx]. Fails (MAV_ERR_ARG) on a token id outside [0, vocab).
mav_status mav_clip_encode_text(mav_clip *m, float *text_emb, float *text_tokens, const int32_t *tokens);
// image_emb [B, embed] from image [B, 3, R, R] (normalised).
void mav_clip_encode_image(mav_clip *m, float *image_emb, const float *image);
// Gradients of the last encode_text (training plan): dtext_emb [B, embed] and dtext_tokens
// [B, ctx, width] (either NULL = 0); parameter gradients accumulated (+=).
void mav_clip_backward_text(mav_clip *m, const float *dtext_emb, const float *dtext_tokens);
// Gradients of the last encode_image (training plan), from dimage_emb [B, embed].
void mav_clip_backward_image(mav_clip *m, const float *dimage_emb);
// Pointer to logit_scale's value / gradient (the contrastive loss, ops/loss.h, uses them).
float *mav_clip_logit_scale(mav_clip *m);
float *mav_clip_logit_scale_grad(mav_clip *m);

// Checkpoints (SPEC §7): mav.kind = "clip", mav.config, tensors by OpenAI name.
mav_status mav_clip_save(const mav_clip *m, const char *path, mav_dtype dtype, int nmeta, const char *const *keys,
                         const char *const *vals);
// Load every tensor `prefix` + name (prefix "" or "clip." for a pipeline file). Missing or
// mis-shaped tensors are errors naming them; with prefix "", so is any tensor in the file that
// is not part of the network, except OpenAI's integer scalars input_resolution, context_length,
// vocab_size, which are checked against the config instead.
mav_status mav_clip_load_weights(mav_clip *m, const mav_st_file *f, const char *prefix);

// ---- image preprocessing (SPEC §4) ----------------------------------------------------------
// CLIP's transform: resize the short side to R with bicubic (a = −0.5, PIL / torch antialias:
// when downscaling the kernel is stretched by the scale factor; weights normalised per output
// pixel, taps outside the image dropped), long side int(R·long/short) as torchvision; centre
// crop R×R (offset round((size − R)/2)); normalise with CLIP's mean and std.
// Floats of scratch mav_clip_preprocess needs.
size_t mav_clip_preprocess_scratch_floats(int H, int W, int R);
// out [3, R, R] from img [H, W, 3] (RGB interleaved, values in [0, 1]).
void mav_clip_preprocess(float *out, const float *img, int H, int W, int R, float *scratch);

#endif
