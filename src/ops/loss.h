// loss.h — training losses: mean squared error (diffusion and prior objectives) and CLIP's
// symmetric contrastive loss with a learnable logit scale (stage 0).
//
// Loss values are returned as double; every sum that forms them accumulates in double
// (ENGINE.md "Precision") in an order fixed by the sizes alone, so values and gradients are
// bit-identical for any thread count.
#ifndef MAV_OPS_LOSS_H
#define MAV_OPS_LOSS_H

// mean over n of (x − y)².
double mav_mse_forward(const float *x,  // [n]
                       const float *y,  // [n]
                       long n);

// dx = 2·(x − y)/n · dloss (written). y is a target and gets no gradient.
void mav_mse_backward(float *dx,        // [n]
                      const float *x,   // [n]
                      const float *y,   // [n]
                      long n, float dloss);

// ---- CLIP contrastive loss (Radford et al. 2021; open_clip ClipLoss) ----
// a_i = img_i/‖img_i‖, b_j = txt_j/‖txt_j‖ (F.normalize: the norm is clamped below at 1e-12),
// logits L = exp(logit_scale)·A·Bᵀ [B, B] (row i: image i against every text),
// loss = (CE(L, arange(B)) + CE(Lᵀ, arange(B))) / 2, each cross-entropy a mean over the batch.
// logit_scale is the log-space parameter itself; CLIP's clamp of it to [0, ln 100] belongs to
// the training step (after the optimiser update), not to the loss.
//
// Forward fills `saved` (mav_clip_loss_saved_floats) with what backward needs: A, B, the
// feature norms, L and the row/column log-sum-exps (kept in double).

// Floats in the `saved` buffer of mav_clip_loss_forward: 2·B·D + B·B + 6·B.
long mav_clip_loss_saved_floats(int B, int D);
// Floats of scratch mav_clip_loss_backward needs: B·B + 2·B (the gradient with respect to
// A·Bᵀ, and per-row partial sums of the logit-scale gradient in double).
long mav_clip_loss_scratch_floats(int B);

// Returns the loss. correct (NULL = skip) receives top-1 hit counts: correct[0] = images whose
// best text is their own (argmax of row i is i), correct[1] = texts whose best image is their
// own (argmax of column j is j); ties go to the lowest index, as torch.argmax.
double mav_clip_loss_forward(float *saved,          // [mav_clip_loss_saved_floats(B, D)]
                             int *correct,          // [2] or NULL
                             const float *img,      // [B, D] image features, not normalised
                             const float *txt,      // [B, D] text features, not normalised
                             float logit_scale,     // log of the logit multiplier
                             int B, int D);

// dimg, dtxt written (NULL = skip), *dlogit_scale accumulated (NULL = skip), all scaled by
// dloss, using the state saved by the forward with the same logit_scale.
void mav_clip_loss_backward(float *dimg,            // [B, D] or NULL
                            float *dtxt,            // [B, D] or NULL
                            float *dlogit_scale,    // scalar or NULL
                            float dloss,
                            const float *saved,     // from mav_clip_loss_forward
                            float logit_scale, int B, int D,
                            float *scratch);        // [mav_clip_loss_scratch_floats(B)]

#endif
