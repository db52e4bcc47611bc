#include "train/prior_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ops/loss.h"
#include "optim/clip_grad.h"

void mav_prior_normalize(float *out, const float *v, int B, int E, double scale) {
    for (int b = 0; b < B; b++) {
        const float *r = v + (long)b * E;
        double s = 0.0;
        for (int k = 0; k < E; k++) s += (double)r[k] * r[k];
        double f = scale / fmax(sqrt(s), 1e-12);
        for (int k = 0; k < E; k++) out[(long)b * E + k] = (float)(r[k] * f);
    }
}

// Row b of the text inputs: the caption's or the empty caption's encoding. mask NULL = all real.
static void put_text(float *tt, float *te, uint8_t *mask, int b, const mav_prior_config *c, const float *src_tt,
                     const float *src_te, const uint8_t *src_mask) {
    size_t L = (size_t)c->text_ctx, TW = (size_t)c->text_width, E = (size_t)c->emb_dim;
    memcpy(tt + b * L * TW, src_tt, L * TW * sizeof(float));
    memcpy(te + b * E, src_te, E * sizeof(float));
    if (src_mask) memcpy(mask + b * L, src_mask, L);
    else memset(mask + b * L, 1, L);
}

// ---- training ------------------------------------------------------------------------------

void mav_prior_trainer_init(mav_prior_trainer *tr) {
    memset(tr, 0, sizeof *tr);
    MAV_ASSERT(mav_schedule_init(&tr->sched, MAV_SCHEDULE_COSINE, MAV_DIFFUSION_T) == MAV_OK);
    tr->adamw = mav_adamw_default_cfg();
    tr->grad_clip = 1.0;
    tr->text_drop = 0.1f;
}

void mav_prior_trainer_free(mav_prior_trainer *tr) {
    free(tr->mem);
    tr->mem = NULL;
}

mav_status mav_prior_trainer_plan(mav_prior_trainer *tr, mav_prior *net, int B) {
    mav_status st = mav_prior_plan(net, B, 1);
    if (st != MAV_OK) return st;
    const mav_prior_config *c = &net->cfg;
    size_t E = (size_t)c->emb_dim, L = (size_t)c->text_ctx, nb = (size_t)B;
    size_t floats = nb * (6 * E + L * c->text_width + 2) + (nb * L + sizeof(float) - 1) / sizeof(float);
    free(tr->mem);
    tr->mem = calloc(floats, sizeof(float));
    if (!tr->mem) return mav_fail(MAV_ERR_NOMEM, "prior trainer: cannot allocate batch buffers");
    float *m = tr->mem;
    tr->x0 = m; m += nb * E;
    tr->eps = m; m += nb * E;
    tr->xt = m; m += nb * E;
    tr->out = m; m += nb * E;
    tr->dout = m; m += nb * E;
    tr->te = m; m += nb * E;
    tr->tt = m; m += nb * L * c->text_width;
    tr->tf = m; m += nb;
    tr->t = (int *)m; m += nb;
    tr->mask = (uint8_t *)m;
    tr->B = B;
    return MAV_OK;
}

mav_prior_step_result mav_prior_train_step(mav_prior_trainer *tr, mav_prior *net, const float *text_tokens,
                                           const float *text_emb, const uint8_t *mask, const float *image_emb,
                                           const mav_prior_null *null, mav_rng *rng, long step, float lr) {
    const mav_prior_config *c = &net->cfg;
    int B = tr->B, E = c->emb_dim, L = c->text_ctx;
    size_t n = (size_t)B * E;
    MAV_ASSERT(tr->mem != NULL && (null != NULL || tr->text_drop <= 0.0f));
    mav_prior_step_result r = {0};
    mav_prior_normalize(tr->x0, image_emb, B, E, sqrt((double)E));
    for (int b = 0; b < B; b++) { tr->t[b] = (int)mav_rng_below(rng, (uint32_t)tr->sched.T); tr->tf[b] = (float)tr->t[b]; }
    mav_rng_normal(rng, tr->eps, n);
    for (int b = 0; b < B; b++) {
        float u;
        mav_rng_uniform(rng, &u, 1);
        int drop = u < tr->text_drop;
        r.dropped += drop;
        if (drop) put_text(tr->tt, tr->te, tr->mask, b, c, null->text_tokens, null->text_emb, null->mask);
        else put_text(tr->tt, tr->te, tr->mask, b, c, text_tokens + (size_t)b * L * c->text_width,
                      text_emb + (size_t)b * E, mask ? mask + (size_t)b * L : NULL);
    }
    mav_diffusion_q_sample(&tr->sched, tr->xt, tr->x0, tr->eps, tr->t, B, (size_t)E);
    mav_prior_forward(net, tr->out, tr->tt, tr->te, tr->xt, tr->tf, tr->mask);
    r.loss = mav_mse_forward(tr->out, tr->x0, (long)n);
    mav_mse_backward(tr->dout, tr->out, tr->x0, (long)n, 1.0f);
    mav_params_zero_grad(&net->params);
    mav_prior_backward(net, tr->dout);
    r.grad_norm = tr->grad_clip > 0 ? mav_clip_grad_norm(&net->params, tr->grad_clip)
                                    : mav_grad_norm(net->params.grad, net->params.total);
    if (!isfinite(r.grad_norm) || !isfinite(r.loss)) { r.skipped = 1; return r; }
    mav_adamw_step(&net->params, &tr->adamw, step, lr);
    return r;
}

// ---- sampling ------------------------------------------------------------------------------

mav_status mav_prior_denoiser_init(mav_prior_denoiser *d, mav_prior *net, int B, const float *text_tokens,
                                   const float *text_emb, const uint8_t *mask, const mav_prior_null *null,
                                   double scale) {
    const mav_prior_config *c = &net->cfg;
    memset(d, 0, sizeof *d);
    if (!isfinite(scale)) return mav_fail(MAV_ERR_ARG, "prior: guidance scale must be finite");
    if (scale != 1.0 && (!null || !null->text_tokens || !null->text_emb))
        return mav_fail(MAV_ERR_ARG, "prior: guidance scale %g needs the empty caption's CLIP encoding", scale);
    d->net = net;
    d->B = B;
    d->doubled = scale != 1.0;
    d->scale = scale;
    int B2 = d->doubled ? 2 * B : B;
    mav_status st = mav_prior_plan(net, B2, 0);
    if (st != MAV_OK) return st;
    size_t E = (size_t)c->emb_dim, L = (size_t)c->text_ctx, nb = (size_t)B2;
    size_t floats = nb * (L * c->text_width + 3 * E + 1) + (nb * L + sizeof(float) - 1) / sizeof(float);
    d->mem = calloc(floats, sizeof(float));
    if (!d->mem) return mav_fail(MAV_ERR_NOMEM, "prior denoiser: cannot allocate buffers");
    float *m = d->mem;
    d->tt2 = m; m += nb * L * c->text_width;
    d->te2 = m; m += nb * E;
    d->x2 = m; m += nb * E;
    d->out2 = m; m += nb * E;
    d->tf = m; m += nb;
    d->mask2 = (uint8_t *)m;
    int off = d->doubled ? B : 0;
    for (int b = 0; b < B; b++) {
        if (d->doubled) put_text(d->tt2, d->te2, d->mask2, b, c, null->text_tokens, null->text_emb, null->mask);
        put_text(d->tt2, d->te2, d->mask2, off + b, c, text_tokens + (size_t)b * L * c->text_width,
                 text_emb + (size_t)b * E, mask ? mask + (size_t)b * L : NULL);
    }
    return MAV_OK;
}

void mav_prior_denoiser_free(mav_prior_denoiser *d) {
    free(d->mem);
    d->mem = NULL;
}

int mav_prior_denoise(void *ctx, float *out, const float *x, double t, size_t n) {
    mav_prior_denoiser *d = ctx;
    int B = d->B, reps = d->doubled ? 2 : 1, E = d->net->cfg.emb_dim;
    size_t per = (size_t)B * E;
    MAV_ASSERT(n == per);
    for (int r = 0; r < reps; r++) {
        memcpy(d->x2 + r * per, x, per * sizeof(float));
        for (int b = 0; b < B; b++) d->tf[r * B + b] = (float)t;
    }
    mav_prior_forward(d->net, d->out2, d->tt2, d->te2, d->x2, d->tf, d->mask2);
    if (d->doubled) mav_cfg_combine(out, d->out2, d->out2 + per, d->scale, per);
    else memcpy(out, d->out2, per * sizeof(float));
    for (size_t i = 0; i < per; i++)
        if (!isfinite(out[i])) return mav_fail(MAV_ERR_ARG, "prior: the network produced a non-finite output at t = %g", t);
    return MAV_OK;
}

mav_status mav_prior_sample(mav_prior_denoiser *d, const mav_schedule *s, mav_sampler_params p, float *emb,
                            mav_rng *rng) {
    int E = d->net->cfg.emb_dim;
    size_t n = (size_t)d->B * E;
    p.prediction = MAV_PREDICT_X0;
    p.x0_mode = MAV_X0_NONE;
    p.batch = d->B;
    mav_status st = mav_sample(s, &p, mav_prior_denoise, d, emb, n, rng, NULL);
    if (st != MAV_OK) return st;
    mav_prior_normalize(emb, emb, d->B, E, 1.0);  // SPEC §5: renormalised; unit length = CLIP space
    return MAV_OK;
}
