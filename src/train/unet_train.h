// unet_train.h — the U-Net as a diffusion model: one training step (SPEC §1 stages 1b–3,
// §6) and a denoiser callback for the samplers, with classifier-free guidance.
//
// Layout: frames-major [B, F, C, H, W] throughout (docs/ENGINE.md). The network input is
// the noisy video (out_ch channels) followed, per frame, by the role's extra channels
// (`cond`, in_ch − out_ch of them: SR's upsampled low-res video, interpolation's masked video
// and mask; SPEC §3 "Roles"), so `cond` is [B, F, in_ch − out_ch, H, W] or NULL.
#ifndef MAV_UNET_TRAIN_H
#define MAV_UNET_TRAIN_H

#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "nets/unet.h"
#include "optim/adamw.h"

typedef struct {
    mav_schedule sched;
    mav_adamw_cfg adamw;
    double grad_clip;    // global-norm clip (0 = off)
    float cond_drop;     // probability of training a sample with e = 0 (CFG, SPEC §3)
    // planned buffers (mav_unet_trainer_plan)
    int B, F, H, W;
    float *mem;
    float *x_in;         // [B, F, in_ch, H, W] network input
    float *eps;          // [B, F, out_ch, H, W] noise
    float *xt;           // noisy video
    float *target, *out, *dout;
    float *e;            // [B, emb_dim] conditioning after CFG dropout
    float *tf;           // [B] timesteps as floats
    int *t;              // [B]
} mav_unet_trainer;

typedef struct {
    double loss;         // MSE against the ε or v target
    double grad_norm;    // before clipping
    int skipped;         // 1: non-finite gradients, no update made
} mav_unet_step_result;

void mav_unet_trainer_init(mav_unet_trainer *tr, mav_schedule_kind schedule);
// Plan the net (training) and the trainer's buffers for batches of B samples × F frames × H×W.
mav_status mav_unet_trainer_plan(mav_unet_trainer *tr, mav_unet *net, int B, int F, int H, int W);
void mav_unet_trainer_free(mav_unet_trainer *tr);
// One step: t ~ U{0..T−1} and ε ~ N(0, I) per sample from `rng`; x_t = q_sample(x0, ε, t);
// e dropped to 0 with probability cond_drop; MSE(net(x_t ⊕ cond), target); backward;
// clip; AdamW at `lr` (step counts from 1). x0 [B, F, out_ch, H, W].
mav_unet_step_result mav_unet_train_step(mav_unet_trainer *tr, mav_unet *net, const float *x0, const float *cond,
                                         const float *e, const float *fps, const float *aug, mav_rng *rng, long step,
                                         float lr);

// The denoiser a sampler calls: the net on x_t ⊕ cond at timestep t, with classifier-free
// guidance `scale` (1 = conditional only; ≠ 1 needs emb_dim > 0 and runs the null and the
// conditional branch as one batch of 2B). Plans the net for inference.
typedef struct {
    mav_unet *net;
    int B, F, H, W, doubled;
    double scale;
    const float *cond, *e, *fps, *aug;
    float *mem, *x_in, *out2, *e2, *fps2, *aug2, *tf;
} mav_unet_denoiser;

mav_status mav_unet_denoiser_init(mav_unet_denoiser *d, mav_unet *net, int B, int F, int H, int W, const float *cond,
                                  const float *e, const float *fps, const float *aug, double scale);
void mav_unet_denoiser_free(mav_unet_denoiser *d);
int mav_unet_denoise(void *ctx /* mav_unet_denoiser */, float *out, const float *x, double t, size_t n);

#endif
