#include "train/unet_train.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "optim/clip_grad.h"
#include "ops/loss.h"
#include "ops/shape_ops.h"

void mav_unet_trainer_init(mav_unet_trainer *tr, mav_schedule_kind schedule) {
    memset(tr, 0, sizeof *tr);
    MAV_ASSERT(mav_schedule_init(&tr->sched, schedule, MAV_DIFFUSION_T) == MAV_OK);
    tr->adamw = mav_adamw_default_cfg();
    tr->grad_clip = 1.0;
    tr->cond_drop = 0.1f;
}

void mav_unet_trainer_free(mav_unet_trainer *tr) {
    free(tr->mem);
    tr->mem = NULL;
}

mav_status mav_unet_trainer_plan(mav_unet_trainer *tr, mav_unet *net, int B, int F, int H, int W) {
    mav_status st = mav_unet_plan(net, B, F, H, W, 1);
    if (st != MAV_OK) return st;
    const mav_unet_config *c = &net->cfg;
    size_t P = (size_t)H * W, nin = (size_t)B * F * c->in_ch * P, nout = (size_t)B * F * c->out_ch * P;
    size_t ne = (size_t)B * (c->emb_dim > 0 ? c->emb_dim : 1);
    free(tr->mem);
    tr->mem = calloc(nin + 5 * nout + ne + 2 * (size_t)B, sizeof(float));
    if (!tr->mem) return mav_fail(MAV_ERR_NOMEM, "trainer: cannot allocate batch buffers");
    float *m = tr->mem;
    tr->x_in = m; m += nin;
    tr->eps = m; m += nout;
    tr->xt = m; m += nout;
    tr->target = m; m += nout;
    tr->out = m; m += nout;
    tr->dout = m; m += nout;
    tr->e = m; m += ne;
    tr->tf = m; m += B;
    tr->t = (int *)m;
    tr->B = B; tr->F = F; tr->H = H; tr->W = W;
    return MAV_OK;
}

// Network input: per image, the noisy frame's channels then the role's extra channels.
static void assemble_input(float *x_in, const float *xt, const float *cond, const mav_unet_config *c, int N, long P) {
    if (c->in_ch == c->out_ch) memcpy(x_in, xt, (size_t)N * c->out_ch * P * sizeof(float));
    else mav_concat_forward(x_in, xt, cond, N, c->out_ch, c->in_ch - c->out_ch, P);
}

mav_unet_step_result mav_unet_train_step(mav_unet_trainer *tr, mav_unet *net, const float *x0, const float *cond,
                                         const float *e, const float *fps, const float *aug, mav_rng *rng, long step,
                                         float lr) {
    const mav_unet_config *c = &net->cfg;
    int B = tr->B, N = B * tr->F;
    long P = (long)tr->H * tr->W;
    size_t m = (size_t)tr->F * c->out_ch * P, n = (size_t)B * m;
    MAV_ASSERT(c->in_ch == c->out_ch || cond != NULL);
    mav_unet_step_result r = {0};
    // randomness, in a fixed order: t per sample, ε, then the CFG drop decisions
    for (int b = 0; b < B; b++) { tr->t[b] = (int)mav_rng_below(rng, (uint32_t)tr->sched.T); tr->tf[b] = (float)tr->t[b]; }
    mav_rng_normal(rng, tr->eps, n);
    mav_diffusion_q_sample(&tr->sched, tr->xt, x0, tr->eps, tr->t, B, m);
    mav_diffusion_target(&tr->sched, tr->target, x0, tr->eps, tr->t, c->prediction, B, m);
    const float *e_used = NULL;
    if (c->emb_dim > 0 && e) {
        memcpy(tr->e, e, (size_t)B * c->emb_dim * sizeof(float));
        for (int b = 0; b < B; b++) {
            float u;
            mav_rng_uniform(rng, &u, 1);
            if (u < tr->cond_drop) memset(tr->e + (size_t)b * c->emb_dim, 0, (size_t)c->emb_dim * sizeof(float));
        }
        e_used = tr->e;
    }
    assemble_input(tr->x_in, tr->xt, cond, c, N, P);
    mav_unet_forward(net, tr->out, tr->x_in, tr->tf, e_used, fps, aug);
    r.loss = mav_mse_forward(tr->out, tr->target, (long)n);
    mav_mse_backward(tr->dout, tr->out, tr->target, (long)n, 1.0f);
    mav_params_zero_grad(&net->params);
    mav_unet_backward(net, NULL, tr->dout);
    r.grad_norm = tr->grad_clip > 0 ? mav_clip_grad_norm(&net->params, tr->grad_clip)
                                    : mav_grad_norm(net->params.grad, net->params.total);
    if (!isfinite(r.grad_norm) || !isfinite(r.loss)) { r.skipped = 1; return r; }
    mav_adamw_step(&net->params, &tr->adamw, step, lr);
    return r;
}

// ---- denoiser ----------------------------------------------------------------------------

mav_status mav_unet_denoiser_init(mav_unet_denoiser *d, mav_unet *net, int B, int F, int H, int W, const float *cond,
                                  const float *e, const float *fps, const float *aug, double scale) {
    const mav_unet_config *c = &net->cfg;
    memset(d, 0, sizeof *d);
    if (scale != 1.0 && c->emb_dim == 0)
        return mav_fail(MAV_ERR_ARG, "guidance scale %g needs a conditioned network (emb_dim > 0)", scale);
    if (c->in_ch != c->out_ch && !cond)
        return mav_fail(MAV_ERR_ARG, "this network needs %d conditioning channels per frame", c->in_ch - c->out_ch);
    d->net = net;
    d->B = B; d->F = F; d->H = H; d->W = W;
    d->doubled = scale != 1.0;
    d->scale = scale;
    d->cond = cond; d->e = e; d->fps = fps; d->aug = aug;
    int B2 = d->doubled ? 2 * B : B;
    mav_status st = mav_unet_plan(net, B2, F, H, W, 0);
    if (st != MAV_OK) return st;
    size_t P = (size_t)H * W, nin = (size_t)B2 * F * c->in_ch * P, nout = (size_t)B2 * F * c->out_ch * P;
    size_t ne = (size_t)B2 * (c->emb_dim > 0 ? c->emb_dim : 0);
    d->mem = calloc(nin + nout + ne + 3 * (size_t)B2, sizeof(float));
    if (!d->mem) return mav_fail(MAV_ERR_NOMEM, "denoiser: cannot allocate buffers");
    float *m = d->mem;
    d->x_in = m; m += nin;
    d->out2 = m; m += nout;
    d->e2 = ne ? m : NULL; m += ne;
    d->fps2 = m; m += B2;
    d->aug2 = m; m += B2;
    d->tf = m;
    // doubled batch: samples [0, B) are the null branch (e = 0), [B, 2B) the conditional one
    for (int r = 0; r < (d->doubled ? 2 : 1); r++) {
        for (int b = 0; b < B; b++) {
            if (fps) d->fps2[r * B + b] = fps[b];
            if (aug) d->aug2[r * B + b] = aug[b];
        }
        if (ne && e && (!d->doubled || r == 1)) memcpy(d->e2 + (size_t)r * B * c->emb_dim, e, (size_t)B * c->emb_dim * sizeof(float));
    }
    return MAV_OK;
}

void mav_unet_denoiser_free(mav_unet_denoiser *d) { free(d->mem); d->mem = NULL; }

int mav_unet_denoise(void *ctx, float *out, const float *x, double t, size_t n) {
    mav_unet_denoiser *d = ctx;
    mav_unet *net = d->net;
    const mav_unet_config *c = &net->cfg;
    int B = d->B, reps = d->doubled ? 2 : 1, N = B * d->F;
    long P = (long)d->H * d->W;
    size_t per_in = (size_t)N * c->in_ch * P, per_out = (size_t)N * c->out_ch * P;
    MAV_ASSERT(n == per_out);
    for (int r = 0; r < reps; r++) {
        assemble_input(d->x_in + r * per_in, x, d->cond, c, N, P);
        for (int b = 0; b < B; b++) d->tf[r * B + b] = (float)t;
    }
    mav_unet_forward(net, d->out2, d->x_in, d->tf, d->e2, d->fps ? d->fps2 : NULL, d->aug ? d->aug2 : NULL);
    if (d->doubled) mav_cfg_combine(out, d->out2, d->out2 + per_out, d->scale, per_out);
    else memcpy(out, d->out2, per_out * sizeof(float));
    for (size_t i = 0; i < per_out; i++)
        if (!isfinite(out[i])) return mav_fail(MAV_ERR_ARG, "the network produced a non-finite output at t = %g", t);
    return MAV_OK;
}
