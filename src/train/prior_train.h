// prior_train.h — the prior as a diffusion model (SPEC §5, §6; stage 1a): one training step
// and a guided denoiser for the samplers, returning CLIP-space unit image embeddings.
//
// Spaces: CLIP's image embedding y (any scale) becomes the diffusion variable
// x0 = sqrt(emb_dim) · y / |y| (per-element variance ≈ 1, like the unit-variance data the
// schedules assume). The network predicts x0 (MSE). A sample is renormalised at the end to a
// *unit* vector y / |y|: the CLIP-space direction the decoder conditions on (docs/PRIOR.md).
//
// Classifier-free guidance (SPEC §5): during training the text is replaced by the CLIP
// encoding of the empty caption (its token features, embedding and mask: `mav_prior_null`,
// computed by the caller with CLIP) with probability text_drop; at sampling the unconditional
// branch uses the same encoding and x0 = x0_u + s·(x0_c − x0_u).
#ifndef MAV_PRIOR_TRAIN_H
#define MAV_PRIOR_TRAIN_H

#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "nets/prior.h"
#include "optim/adamw.h"

// The CLIP encoding of the empty caption "" (SOT, EOT, padding).
typedef struct {
    const float *text_tokens;  // [L, text_width]
    const float *text_emb;     // [emb_dim]
    const uint8_t *mask;       // [L] (NULL = all real)
} mav_prior_null;

// out[b] = scale · v[b] / max(|v[b]|, 1e-12) for B rows of E floats (norm in double; a zero
// row stays zero, as torch.nn.functional.normalize). out may alias v.
void mav_prior_normalize(float *out /* [B, E] */, const float *v /* [B, E] */, int B, int E, double scale);

typedef struct {
    mav_schedule sched;   // cosine, T = 1000 (SPEC §5/§6)
    mav_adamw_cfg adamw;
    double grad_clip;     // global-norm clip (0 = off); default 1
    float text_drop;      // probability of training a sample on the empty caption; default 0.1
    // planned buffers (mav_prior_trainer_plan)
    int B;
    float *mem;
    float *x0, *eps, *xt, *out, *dout;  // [B, emb_dim]
    float *tt, *te;       // [B, L, text_width], [B, emb_dim] text after the CFG drop
    uint8_t *mask;        // [B, L]
    float *tf;            // [B] timesteps as floats
    int *t;               // [B]
} mav_prior_trainer;

typedef struct {
    double loss;          // MSE against x0 (scaled space)
    double grad_norm;     // before clipping
    int skipped;          // 1: non-finite loss or gradients, no update made
    int dropped;          // samples of this batch trained on the empty caption
} mav_prior_step_result;

void mav_prior_trainer_init(mav_prior_trainer *tr);
// Plan the net (training) and the trainer's buffers for batches of B.
mav_status mav_prior_trainer_plan(mav_prior_trainer *tr, mav_prior *net, int B);
void mav_prior_trainer_free(mav_prior_trainer *tr);
// One step: x0 = sqrt(E)·normalize(image_emb); from `rng`, in this order: t ~ U{0..T−1} per
// sample, ε ~ N(0, I), then one uniform per sample for the CFG drop (text replaced by `null`
// when u < text_drop; null may be NULL only when text_drop is 0); x_t = q_sample(x0, ε, t);
// MSE(net(x_t), x0); backward; clip; AdamW at `lr` (step counts from 1).
// text_tokens [B, L, text_width], text_emb [B, E], mask [B, L] or NULL, image_emb [B, E].
mav_prior_step_result mav_prior_train_step(mav_prior_trainer *tr, mav_prior *net, const float *text_tokens,
                                           const float *text_emb, const uint8_t *mask, const float *image_emb,
                                           const mav_prior_null *null, mav_rng *rng, long step, float lr);

// The denoiser a sampler calls (MAV_PREDICT_X0): the net at timestep t for B captions, with
// guidance `scale` (1 = conditional only; otherwise the empty-caption and the conditional
// branch run as one batch of 2B). Plans the net for inference. The inputs are copied.
typedef struct {
    mav_prior *net;
    int B, doubled;
    double scale;
    float *mem;
    float *tt2, *te2, *x2, *out2, *tf;  // doubled batch: rows [0, B) null, [B, 2B) conditional
    uint8_t *mask2;
} mav_prior_denoiser;

mav_status mav_prior_denoiser_init(mav_prior_denoiser *d, mav_prior *net, int B, const float *text_tokens,
                                   const float *text_emb, const uint8_t *mask, const mav_prior_null *null,
                                   double scale);
void mav_prior_denoiser_free(mav_prior_denoiser *d);
int mav_prior_denoise(void *ctx /* mav_prior_denoiser */, float *out, const float *x, double t, size_t n);

// Sample B image embeddings: mav_sample with `p` (its prediction, x0_mode and batch are set
// here: x0, none, B), then each sample renormalised to unit length. emb [B, emb_dim].
mav_status mav_prior_sample(mav_prior_denoiser *d, const mav_schedule *s, mav_sampler_params p, float *emb,
                            mav_rng *rng);

#endif
