// unet_model.c — the P3D U-Net at run time: unit list (SPEC §3 layout), memory plan,
// forward, backward, checkpoint load/save with inflation.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "io/checkpoint.h"
#include "nets/unet.h"
#include "ops/activation.h"
#include "ops/embedding.h"
#include "ops/groupnorm.h"
#include "ops/linear.h"
#include "ops/shape_ops.h"

enum { GROUPS = 32 };
static const float GN_EPS = 1e-5f;

// ---- construction --------------------------------------------------------------------------

static int pidx(const mav_params *p, const char *name) { return mav_params_find(p, name); }

static mav_unet_unit *new_unit(mav_unet *net, mav_unit_kind kind, int level) {
    MAV_ASSERT(net->n_units < MAV_UNET_MAX_UNITS);
    mav_unet_unit *u = &net->units[net->n_units++];
    memset(u, 0, sizeof *u);
    u->kind = kind;
    u->level = level;
    u->skip_push = u->skip_pop = -1;
    return u;
}

mav_status mav_unet_create(mav_unet *net, const mav_unet_config *c) {
    memset(net, 0, sizeof *net);
    net->cfg = *c;
    mav_params_init(&net->params);
    mav_status st = mav_unet_register_params(c, &net->params);
    if (st != MAV_OK) return st;
    const mav_params *p = &net->params;
    int temporal = c->temporal, temb = 4 * c->ch, n_ctx = c->emb_dim > 0 ? c->n_ctx : 0;
    net->te0w = pidx(p, "time_embed.0.weight"); net->te0b = pidx(p, "time_embed.0.bias");
    net->te2w = pidx(p, "time_embed.2.weight"); net->te2b = pidx(p, "time_embed.2.bias");
    net->embw = pidx(p, "emb_proj.weight"); net->embb = pidx(p, "emb_proj.bias");
    net->ctxw = pidx(p, "ctx_proj.weight"); net->ctxb = pidx(p, "ctx_proj.bias");
    net->fe0w = pidx(p, "fps_embed.0.weight"); net->fe0b = pidx(p, "fps_embed.0.bias");
    net->fe2w = pidx(p, "fps_embed.2.weight"); net->fe2b = pidx(p, "fps_embed.2.bias");
    net->ae0w = pidx(p, "aug_embed.0.weight"); net->ae0b = pidx(p, "aug_embed.0.bias");
    net->ae2w = pidx(p, "aug_embed.2.weight"); net->ae2b = pidx(p, "aug_embed.2.bias");
    net->onw = pidx(p, "out_norm.weight"); net->onb = pidx(p, "out_norm.bias");
    mav_p3dconv_init(&net->in_conv, p, "in_conv.spatial", temporal ? "in_conv.temporal" : NULL, c->in_ch, c->ch, 3, 1);

    // Units in forward order, with ADM's skip bookkeeping (SPEC §3 "Layout").
    char a[MAV_NAME_MAX], b[MAV_NAME_MAX];
    int w = c->ch, nsk = 0, stack[MAV_UNET_MAX_UNITS], top = 0;
    net->skip_c[nsk] = w;
    stack[top++] = nsk++;
    mav_unet_unit *u;
    for (int L = 0; L < c->n_levels; L++) {
        int out = c->ch_mult[L] * c->ch;
        for (int i = 0; i < c->num_res_blocks; i++) {
            u = new_unit(net, MAV_UNIT_RES, L);
            snprintf(a, sizeof a, "down.%d.res.%d", L, i);
            mav_resblock_init(&u->res, p, a, w, out, temb, temporal, c->dropout);
            u->cin = w; u->cout = out; w = out;
            if (c->attn_level[L]) {
                u->has_attn = 1;
                snprintf(a, sizeof a, "down.%d.attn.%d", L, i);
                mav_attnblock_init(&u->attn, p, a, w, c->head_ch, temb, n_ctx, temporal);
            }
            net->skip_c[nsk] = w; u->skip_push = nsk; stack[top++] = nsk++;
        }
        if (L != c->n_levels - 1) {
            u = new_unit(net, MAV_UNIT_DOWNSAMPLE, L + 1);
            snprintf(a, sizeof a, "down.%d.downsample.op", L);
            mav_p3dconv_init(&u->conv, p, a, NULL, w, w, 3, 2);
            u->cin = u->cout = w;
            net->skip_c[nsk] = w; u->skip_push = nsk; stack[top++] = nsk++;
        }
    }
    int last = c->n_levels - 1;
    u = new_unit(net, MAV_UNIT_RES, last);
    mav_resblock_init(&u->res, p, "mid.res.0", w, w, temb, temporal, c->dropout);
    u->cin = u->cout = w; u->has_attn = 1;
    mav_attnblock_init(&u->attn, p, "mid.attn", w, c->head_ch, temb, n_ctx, temporal);
    u = new_unit(net, MAV_UNIT_RES, last);
    mav_resblock_init(&u->res, p, "mid.res.1", w, w, temb, temporal, c->dropout);
    u->cin = u->cout = w;
    for (int L = c->n_levels - 1; L >= 0; L--) {
        int out = c->ch_mult[L] * c->ch;
        for (int i = 0; i < c->num_res_blocks + 1; i++) {
            u = new_unit(net, MAV_UNIT_RES, L);
            u->skip_pop = stack[--top];
            int cin = w + net->skip_c[u->skip_pop];
            snprintf(a, sizeof a, "up.%d.res.%d", L, i);
            mav_resblock_init(&u->res, p, a, cin, out, temb, temporal, c->dropout);
            u->cin = cin; u->cout = out; w = out;
            if (c->attn_level[L]) {
                u->has_attn = 1;
                snprintf(a, sizeof a, "up.%d.attn.%d", L, i);
                mav_attnblock_init(&u->attn, p, a, w, c->head_ch, temb, n_ctx, temporal);
            }
        }
        if (L > 0) {
            u = new_unit(net, MAV_UNIT_UPSAMPLE, L - 1);
            snprintf(a, sizeof a, "up.%d.upsample.conv", L);
            mav_p3dconv_init(&u->conv, p, a, NULL, w, w, 3, 1);
            u->cin = u->cout = w;
        }
    }
    MAV_ASSERT(top == 0);
    net->n_skips = nsk;
    snprintf(a, sizeof a, "out_conv.spatial");
    snprintf(b, sizeof b, "out_conv.temporal");
    mav_p3dconv_init(&net->out_conv, p, a, temporal ? b : NULL, w, c->out_ch, 3, 1);
    return MAV_OK;
}

void mav_unet_free(mav_unet *net) {
    mav_params_free(&net->params);
    mav_arena_free(&net->act);
    mav_arena_free(&net->work);
    memset(net, 0, sizeof *net);
}

mav_status mav_unet_alloc_params(mav_unet *net, int training) {
    return mav_params_alloc(&net->params, training, training);
}

// ---- planning ------------------------------------------------------------------------------

// Assign every buffer from `act` (measuring or real) and record scratch/work needs in lc.
static void layout(mav_unet *net, mav_arena *act, int training) {
    const mav_unet_config *c = &net->cfg;
    mav_layer_ctx *lc = &net->lc;
    int B = net->B, N = net->B * net->F, temb = 4 * c->ch;
    size_t P0 = (size_t)net->H * net->W, biggest = 0;
    lc->scratch_floats = 0;
    lc->work_bytes = 0;
    net->t_in = mav_arena_floats(act, (size_t)B * c->ch);
    net->t_h = mav_arena_floats(act, (size_t)B * temb);
    net->t_s = mav_arena_floats(act, (size_t)B * temb);
    if (c->cond_fps) {
        net->f_in = mav_arena_floats(act, (size_t)B * c->ch);
        net->f_h = mav_arena_floats(act, (size_t)B * temb);
        net->f_s = mav_arena_floats(act, (size_t)B * temb);
    }
    if (c->cond_aug) {
        net->a_in = mav_arena_floats(act, (size_t)B * c->ch);
        net->a_h = mav_arena_floats(act, (size_t)B * temb);
        net->a_s = mav_arena_floats(act, (size_t)B * temb);
    }
    if (c->emb_dim > 0) net->e_in = mav_arena_floats(act, (size_t)B * c->emb_dim);
    if (c->emb_dim > 0 && c->n_ctx > 0) net->ctx = mav_arena_floats(act, (size_t)B * c->n_ctx * temb);
    net->temb = mav_arena_floats(act, (size_t)B * temb);
    net->stemb = mav_arena_floats(act, (size_t)B * temb);
    net->x = mav_arena_floats(act, (size_t)N * c->in_ch * P0);
    net->h0 = mav_arena_floats(act, (size_t)N * c->ch * P0);
    mav_p3dconv_plan(&net->in_conv, lc, act, net->H, net->W);
    net->skips[0] = net->h0;
    biggest = (size_t)N * (c->in_ch > c->ch ? c->in_ch : c->ch) * P0;
    int H = net->H, W = net->W;
    for (int i = 0; i < net->n_units; i++) {
        mav_unet_unit *u = &net->units[i];
        int Hin = H, Win = W;
        if (u->kind == MAV_UNIT_DOWNSAMPLE) { H = (H + 1) / 2; W = (W + 1) / 2; }
        if (u->kind == MAV_UNIT_UPSAMPLE) { H *= 2; W *= 2; }
        u->H = H;
        u->W = W;
        size_t P = (size_t)H * W;
        // The unit's output lives on (the next unit's input, a skip); what it keeps inside is
        // needed again only by its backward. Without a backward (inference plan) every unit
        // reuses the same space for its insides: memory ~ the outputs + one unit's worth.
        u->out = mav_arena_floats(act, (size_t)N * u->cout * P);
        size_t unit_mark = mav_arena_mark(act);
        switch (u->kind) {
        case MAV_UNIT_RES:
            if (u->skip_pop >= 0) u->in = mav_arena_floats(act, (size_t)N * u->cin * P);
            mav_resblock_plan(&u->res, lc, act, H, W);
            if (u->has_attn) {
                u->mid = mav_arena_floats(act, (size_t)N * u->cout * P);
                mav_attnblock_plan(&u->attn, lc, act, H, W);
            }
            break;
        case MAV_UNIT_DOWNSAMPLE:
            mav_p3dconv_plan(&u->conv, lc, act, Hin, Win);
            break;
        case MAV_UNIT_UPSAMPLE:
            u->in = mav_arena_floats(act, (size_t)N * u->cin * P);
            mav_p3dconv_plan(&u->conv, lc, act, H, W);
            break;
        default: MAV_ASSERT(0);
        }
        if (!training) mav_arena_release(act, unit_mark);
        if (u->skip_push >= 0) net->skips[u->skip_push] = u->out;
        size_t sz = (size_t)N * (u->cin > u->cout ? u->cin : u->cout) * P;
        if (sz > biggest) biggest = sz;
    }
    MAV_ASSERT(H == net->H && W == net->W);
    int w = net->units[net->n_units - 1].cout;
    net->on = mav_arena_floats(act, (size_t)N * w * P0);
    net->oa = mav_arena_floats(act, (size_t)N * w * P0);
    net->on_mean = mav_arena_floats(act, (size_t)N * GROUPS);
    net->on_rstd = mav_arena_floats(act, (size_t)N * GROUPS);
    net->eps = mav_arena_floats(act, (size_t)N * c->out_ch * P0);
    mav_p3dconv_plan(&net->out_conv, lc, act, net->H, net->W);
    mav_layer_need_scratch(lc, mav_groupnorm_scratch_floats(N, w));
    if (training) {
        for (int s = 0; s < net->n_skips; s++) {
            // skip s has the size of its activation; find it from the units
            size_t sz = (size_t)N * net->skip_c[s] * P0;  // upper bound at level 0
            for (int i = 0; i < net->n_units; i++)
                if (net->units[i].skip_push == s) sz = (size_t)N * net->skip_c[s] * net->units[i].H * net->units[i].W;
            net->dskips[s] = mav_arena_floats(act, sz);
        }
        net->g0 = mav_arena_floats(act, biggest);
        net->g1 = mav_arena_floats(act, biggest);
        net->dstemb = mav_arena_floats(act, (size_t)B * temb);
        net->dctx = (c->emb_dim > 0 && c->n_ctx > 0) ? mav_arena_floats(act, (size_t)B * c->n_ctx * temb) : NULL;
        // conditioning backward temporaries
        mav_layer_need_work(lc, 4 * mav_work_bytes((size_t)B * temb) +
                                    mav_work_bytes((size_t)B * (c->n_ctx > 0 ? c->n_ctx : 1) * temb));
    }
    mav_layer_need_work(lc, mav_work_bytes((size_t)B * temb));
}

static void layout_cb(void *net, mav_arena *a) { layout(net, a, ((mav_unet *)net)->lc.training); }

mav_status mav_unet_plan(mav_unet *net, int B, int F, int H, int W, int training) {
    const mav_unet_config *c = &net->cfg;
    if (B < 1 || F < 1 || H < 1 || W < 1)
        return mav_fail(MAV_ERR_ARG, "unet: batch %d, frames %d, size %dx%d: all must be >= 1", B, F, H, W);
    if (c->temporal && F > c->max_frames)
        return mav_fail(MAV_ERR_ARG, "unet: %d frames exceed the network's max_frames %d", F, c->max_frames);
    int div = 1 << (c->n_levels - 1);
    if (H % div || W % div)
        return mav_fail(MAV_ERR_ARG, "unet: %dx%d is not divisible by %d (2^(levels-1)) in both dimensions", W, H, div);
    if (!net->params.value) return mav_fail(MAV_ERR_ARG, "unet: parameters are not allocated");
    if (training && !net->params.grad) return mav_fail(MAV_ERR_ARG, "unet: a training plan needs parameter gradients");
    if (net->act.base && net->B == B && net->F == F && net->H == H && net->W == W &&
        net->planned_training >= training && net->lc.scratch_floats > 0)
        return MAV_OK;
    mav_arena_free(&net->act);
    mav_arena_free(&net->work);
    net->B = B; net->F = F; net->H = H; net->W = W;
    net->lc = (mav_layer_ctx){.params = &net->params, .B = B, .F = F, .training = training};
    mav_status st = mav_layer_plan_memory(&net->lc, &net->act, &net->work, layout_cb, net);
    if (st != MAV_OK) {
        mav_error_prefix("unet: planning %dx%dx%dx%d", B, F, H, W);
        return st;
    }
    net->scratch = net->lc.scratch;
    net->planned_training = training;
    return MAV_OK;
}

size_t mav_unet_planned_bytes(const mav_unet *net) { return net->act.cap + net->work.cap; }

// ---- forward -------------------------------------------------------------------------------

// h = linear2(SiLU(linear1(timestep_embedding(t)))), saving the intermediates.
static void mlp_emb_forward(mav_unet *net, float *out, float *in, float *h, float *s, const float *t, int w0, int b0,
                            int w2, int b2) {
    int B = net->B, ch = net->cfg.ch, temb = 4 * ch;
    mav_layer_ctx *lc = &net->lc;
    mav_timestep_embedding(in, t, B, ch);
    mav_linear_forward(h, in, mav_layer_w(lc, w0), mav_layer_w(lc, b0), B, ch, temb);
    mav_silu_forward(s, h, (long)B * temb);
    mav_linear_forward(out, s, mav_layer_w(lc, w2), mav_layer_w(lc, b2), B, temb, temb);
}

void mav_unet_forward(mav_unet *net, float *eps, const float *x, const float *t, const float *e, const float *fps,
                      const float *aug) {
    const mav_unet_config *c = &net->cfg;
    mav_layer_ctx *lc = &net->lc;
    MAV_ASSERT(net->act.base != NULL);
    int B = net->B, N = B * net->F, temb = 4 * c->ch;
    size_t P0 = (size_t)net->H * net->W;
    size_t mark = mav_arena_mark(&net->work);
    float *tmp = mav_arena_floats(&net->work, (size_t)B * temb);

    // conditioning vector temb (SPEC §3)
    mlp_emb_forward(net, net->temb, net->t_in, net->t_h, net->t_s, t, net->te0w, net->te0b, net->te2w, net->te2b);
    if (c->emb_dim > 0) {
        if (e) memcpy(net->e_in, e, (size_t)B * c->emb_dim * sizeof(float));
        else memset(net->e_in, 0, (size_t)B * c->emb_dim * sizeof(float));
        mav_linear_forward(tmp, net->e_in, mav_layer_w(lc, net->embw), mav_layer_w(lc, net->embb), B, c->emb_dim, temb);
        for (int i = 0; i < B * temb; i++) net->temb[i] += tmp[i];
        if (net->ctx)
            mav_linear_forward(net->ctx, net->e_in, mav_layer_w(lc, net->ctxw), mav_layer_w(lc, net->ctxb), B,
                               c->emb_dim, c->n_ctx * temb);
    }
    if (c->cond_fps) {
        MAV_ASSERT(fps != NULL);
        mlp_emb_forward(net, tmp, net->f_in, net->f_h, net->f_s, fps, net->fe0w, net->fe0b, net->fe2w, net->fe2b);
        for (int i = 0; i < B * temb; i++) net->temb[i] += tmp[i];
    }
    if (c->cond_aug) {
        MAV_ASSERT(aug != NULL);
        float level[B];
        for (int b = 0; b < B; b++) level[b] = 1000.0f * aug[b];  // SPEC: timestep_embedding(1000·aug)
        mlp_emb_forward(net, tmp, net->a_in, net->a_h, net->a_s, level, net->ae0w, net->ae0b, net->ae2w, net->ae2b);
        for (int i = 0; i < B * temb; i++) net->temb[i] += tmp[i];
    }
    mav_silu_forward(net->stemb, net->temb, (long)B * temb);
    mav_arena_release(&net->work, mark);

    memcpy(net->x, x, (size_t)N * c->in_ch * P0 * sizeof(float));
    mav_p3dconv_forward(&net->in_conv, lc, net->h0, net->x);
    const float *prev = net->h0;
    int prev_c = c->ch;
    for (int i = 0; i < net->n_units; i++) {
        mav_unet_unit *u = &net->units[i];
        long P = (long)u->H * u->W;
        switch (u->kind) {
        case MAV_UNIT_RES: {
            const float *in = prev;
            if (u->skip_pop >= 0) {
                mav_concat_forward(u->in, prev, net->skips[u->skip_pop], N, prev_c, net->skip_c[u->skip_pop], P);
                in = u->in;
            }
            mav_resblock_forward(&u->res, lc, u->has_attn ? u->mid : u->out, in, net->stemb);
            if (u->has_attn) mav_attnblock_forward(&u->attn, lc, u->out, u->mid, net->ctx);
            break;
        }
        case MAV_UNIT_DOWNSAMPLE: mav_p3dconv_forward(&u->conv, lc, u->out, prev); break;
        case MAV_UNIT_UPSAMPLE:
            mav_upsample2x_forward(u->in, prev, N, u->cin, u->H / 2, u->W / 2);
            mav_p3dconv_forward(&u->conv, lc, u->out, u->in);
            break;
        default: MAV_ASSERT(0);
        }
        prev = u->out;
        prev_c = u->cout;
    }
    mav_groupnorm_forward(net->on, net->on_mean, net->on_rstd, prev, mav_layer_w(lc, net->onw), mav_layer_w(lc, net->onb),
                          N, prev_c, (int)P0, GROUPS, GN_EPS);
    mav_silu_forward(net->oa, net->on, (long)N * prev_c * P0);
    mav_p3dconv_forward(&net->out_conv, lc, net->eps, net->oa);
    if (eps) memcpy(eps, net->eps, (size_t)N * c->out_ch * P0 * sizeof(float));
}

// ---- backward ------------------------------------------------------------------------------

static void mlp_emb_backward(mav_unet *net, const float *dout, const float *in, const float *h, const float *s, int w0,
                             int b0, int w2, int b2, float *t1) {
    int B = net->B, ch = net->cfg.ch, temb = 4 * ch;
    mav_layer_ctx *lc = &net->lc;
    mav_linear_backward(t1, mav_layer_g(lc, w2), mav_layer_g(lc, b2), dout, s, mav_layer_w(lc, w2), B, temb, temb);
    mav_silu_backward(t1, t1, h, (long)B * temb);
    mav_linear_backward(NULL, mav_layer_g(lc, w0), mav_layer_g(lc, b0), t1, in, mav_layer_w(lc, w0), B, ch, temb);
}

void mav_unet_backward(mav_unet *net, float *dx, const float *deps) {
    const mav_unet_config *c = &net->cfg;
    mav_layer_ctx *lc = &net->lc;
    MAV_ASSERT(net->planned_training && net->params.grad != NULL);
    int B = net->B, N = B * net->F, temb = 4 * c->ch;
    long P0 = (long)net->H * net->W;
    memset(net->dstemb, 0, (size_t)B * temb * sizeof(float));
    if (net->dctx) memset(net->dctx, 0, (size_t)B * c->n_ctx * temb * sizeof(float));

    int w = net->units[net->n_units - 1].cout;
    float *g = net->g0, *h = net->g1;
    mav_p3dconv_backward(&net->out_conv, lc, g, deps, net->oa);
    mav_silu_backward(g, g, net->on, (long)N * w * P0);
    mav_groupnorm_backward(h, mav_layer_g(lc, net->onw), mav_layer_g(lc, net->onb), g, net->units[net->n_units - 1].out,
                           net->on_mean, net->on_rstd, mav_layer_w(lc, net->onw), N, w, (int)P0, GROUPS, lc->scratch);
    float *t = g; g = h; h = t;  // g: gradient of the last unit's output

    for (int i = net->n_units - 1; i >= 0; i--) {
        mav_unet_unit *u = &net->units[i];
        long P = (long)u->H * u->W;
        const float *in = i > 0 ? net->units[i - 1].out : net->h0;
        int in_c = i > 0 ? net->units[i - 1].cout : c->ch;
        if (u->skip_push >= 0) {
            const float *ds = net->dskips[u->skip_push];
            long n = (long)N * u->cout * P;
            #pragma omp parallel for schedule(static)
            for (long k = 0; k < n; k++) g[k] += ds[k];
        }
        switch (u->kind) {
        case MAV_UNIT_RES: {
            const float *res_in = u->skip_pop >= 0 ? u->in : in;
            const float *gres = g;
            if (u->has_attn) {
                mav_attnblock_backward(&u->attn, lc, h, net->dctx, g, u->mid, net->ctx);
                gres = h;
                t = g; g = h; h = t;
            }
            mav_resblock_backward(&u->res, lc, h, net->dstemb, gres, res_in, net->stemb);
            if (u->skip_pop >= 0) {
                // split the concat gradient: previous unit's part continues, the skip's part waits
                mav_concat_backward(g, net->dskips[u->skip_pop], h, N, in_c, net->skip_c[u->skip_pop], P);
                continue;  // g holds the gradient of `in`
            }
            break;
        }
        case MAV_UNIT_DOWNSAMPLE: mav_p3dconv_backward(&u->conv, lc, h, g, in); break;
        case MAV_UNIT_UPSAMPLE: {
            mav_p3dconv_backward(&u->conv, lc, h, g, u->in);  // h: d(upsampled input)
            mav_upsample2x_backward(g, h, N, u->cin, u->H / 2, u->W / 2);
            continue;
        }
        default: MAV_ASSERT(0);
        }
        t = g; g = h; h = t;
    }
    {  // in_conv: its output is skip 0
        const float *ds = net->dskips[0];
        long n = (long)N * c->ch * P0;
        #pragma omp parallel for schedule(static)
        for (long k = 0; k < n; k++) g[k] += ds[k];
        mav_p3dconv_backward(&net->in_conv, lc, dx ? h : NULL, g, net->x);
        if (dx) memcpy(dx, h, (size_t)N * c->in_ch * P0 * sizeof(float));
    }

    // conditioning: dtemb = SiLU'(temb)·dstemb, then into every MLP that added to temb
    size_t mark = mav_arena_mark(&net->work);
    float *dtemb = mav_arena_floats(&net->work, (size_t)B * temb);
    float *t1 = mav_arena_floats(&net->work, (size_t)B * temb);
    mav_silu_backward(dtemb, net->dstemb, net->temb, (long)B * temb);
    mlp_emb_backward(net, dtemb, net->t_in, net->t_h, net->t_s, net->te0w, net->te0b, net->te2w, net->te2b, t1);
    if (c->emb_dim > 0) {
        mav_linear_backward(NULL, mav_layer_g(lc, net->embw), mav_layer_g(lc, net->embb), dtemb, net->e_in,
                            mav_layer_w(lc, net->embw), B, c->emb_dim, temb);
        if (net->ctx)
            mav_linear_backward(NULL, mav_layer_g(lc, net->ctxw), mav_layer_g(lc, net->ctxb), net->dctx, net->e_in,
                                mav_layer_w(lc, net->ctxw), B, c->emb_dim, c->n_ctx * temb);
    }
    if (c->cond_fps)
        mlp_emb_backward(net, dtemb, net->f_in, net->f_h, net->f_s, net->fe0w, net->fe0b, net->fe2w, net->fe2b, t1);
    if (c->cond_aug)
        mlp_emb_backward(net, dtemb, net->a_in, net->a_h, net->a_s, net->ae0w, net->ae0b, net->ae2w, net->ae2b, t1);
    mav_arena_release(&net->work, mark);
}

// ---- layout conversion ---------------------------------------------------------------------

static void swap_axes(float *out, const float *in, int B, int X, int Y, long P) {
    // in [B, X, Y, P] -> out [B, Y, X, P]
    #pragma omp parallel for schedule(static) collapse(3)
    for (int b = 0; b < B; b++)
        for (int y = 0; y < Y; y++)
            for (int x = 0; x < X; x++)
                memcpy(out + (((long)b * Y + y) * X + x) * P, in + (((long)b * X + x) * Y + y) * P, (size_t)P * sizeof(float));
}

void mav_video_to_frames_major(float *out, const float *in, int B, int C, int F, long P) { swap_axes(out, in, B, C, F, P); }
void mav_video_from_frames_major(float *out, const float *in, int B, int C, int F, long P) { swap_axes(out, in, B, F, C, P); }

// ---- checkpoints ---------------------------------------------------------------------------

mav_status mav_unet_save(const mav_unet *net, const char *path, mav_dtype dtype, int nmeta, const char *const *keys,
                         const char *const *vals) {
    char *cfg = mav_unet_config_to_json(&net->cfg);
    mav_status st = mav_checkpoint_save(&net->params, path, "unet", cfg, dtype, nmeta, keys, vals);
    free(cfg);
    return st;
}

mav_status mav_unet_read_config(const mav_st_file *f, mav_unet_config *c) {
    const char *kind = mav_st_meta(f, "mav.kind"), *cfg = mav_st_meta(f, "mav.config");
    if (!kind || strcmp(kind, "unet") != 0)
        return mav_fail(MAV_ERR_FORMAT, "%s: not a unet checkpoint (mav.kind is %s)", f->path, kind ? kind : "missing");
    if (!cfg) return mav_fail(MAV_ERR_FORMAT, "%s: mav.config is missing", f->path);
    mav_status st = mav_unet_config_from_json(c, cfg);
    if (st != MAV_OK) mav_error_prefix("%s", f->path);
    return st;
}

// Inflation (SPEC §1, §7): an image checkpoint loaded into a temporal net — only then are the
// temporal tensors allowed to be missing, and they get their initial values.
static int inflate_missing(void *ctx, const mav_param *t, float *value) {
    const int *inflate = ctx;
    if (!*inflate || !mav_unet_is_temporal_param(t->name)) return 0;
    // tqkv's random values (irrelevant while tproj is 0) come from a stream named by the tensor
    uint64_t h = 1469598103934665603ull;  // FNV-1a of the name
    for (const char *q = t->name; *q; q++) h = (h ^ (uint8_t)*q) * 1099511628211ull;
    mav_unet_init_temporal_param(t, value, mav_rng_fork(0x1f1a7e, h).seed);
    return 1;
}

mav_status mav_unet_load_weights(mav_unet *net, const mav_st_file *f) {
    int file_temporal = 0;
    for (int i = 0; i < f->ntensors; i++) file_temporal |= mav_unet_is_temporal_param(f->tensors[i].name);
    int inflate = net->cfg.temporal && !file_temporal;
    return mav_checkpoint_load(&net->params, f, "", inflate_missing, NULL, &inflate);
}
