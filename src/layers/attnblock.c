#include "layers/attnblock.h"

#include <stdio.h>
#include <string.h>

#include "ops/attention.h"
#include "ops/groupnorm.h"
#include "ops/layernorm.h"
#include "ops/linear.h"
#include "ops/transpose.h"

enum { GROUPS = 32 };
static const float NORM_EPS = 1e-5f;  // SPEC §2: GroupNorm and LayerNorm eps

void mav_attnblock_init(mav_attnblock *l, const mav_params *p, const char *prefix, int C, int head_ch, int temb,
                        int n_ctx, int temporal) {
    memset(l, 0, sizeof *l);
    MAV_ASSERT(C % head_ch == 0);
    l->C = C;
    l->heads = C / head_ch;
    l->temb = temb;
    l->n_ctx = n_ctx;
    l->temporal = temporal;
    char a[MAV_NAME_MAX];
#define PARAM(field, sub, suffix) do { snprintf(a, sizeof a, "%s.%s", prefix, sub); l->field = mav_layer_param(p, a, suffix); } while (0)
    PARAM(norm_w, "norm", "weight"); PARAM(norm_b, "norm", "bias");
    PARAM(qkv_w, "qkv", "weight"); PARAM(qkv_b, "qkv", "bias");
    PARAM(proj_w, "proj", "weight"); PARAM(proj_b, "proj", "bias");
    l->ctx_w = l->ctx_b = -1;
    if (n_ctx > 0) { PARAM(ctx_w, "ctx_kv", "weight"); PARAM(ctx_b, "ctx_kv", "bias"); }
    l->tnorm_w = l->tnorm_b = l->tpos = l->tqkv_w = l->tqkv_b = l->tproj_w = l->tproj_b = -1;
    if (temporal) {
        PARAM(tnorm_w, "tnorm", "weight"); PARAM(tnorm_b, "tnorm", "bias");
        PARAM(tqkv_w, "tqkv", "weight"); PARAM(tqkv_b, "tqkv", "bias");
        PARAM(tproj_w, "tproj", "weight"); PARAM(tproj_b, "tproj", "bias");
        l->tpos = mav_params_find(p, (snprintf(a, sizeof a, "%s.tpos", prefix), a));
        MAV_ASSERT(l->tpos >= 0);
    }
#undef PARAM
}

static mav_attn_shape spatial_shape(const mav_attnblock *l, const mav_layer_ctx *c) {
    int N = c->B * c->F, C = l->C;
    mav_attn_shape s = mav_attn_shape_contiguous(N, l->heads, C / l->heads, (int)l->P, (int)l->P, l->n_ctx);
    s.q_stride = s.k_stride = s.v_stride = 3L * C;
    s.q_bstride = s.k_bstride = s.v_bstride = 3L * C * l->P;
    s.ck_stride = s.cv_stride = 2L * C;
    s.ck_bstride = s.cv_bstride = 2L * C * l->n_ctx;
    return s;
}

static mav_attn_shape temporal_shape(const mav_attnblock *l, const mav_layer_ctx *c) {
    int C = l->C;
    mav_attn_shape s = mav_attn_shape_contiguous(c->B * (int)l->P, l->heads, C / l->heads, c->F, c->F, 0);
    s.q_stride = s.k_stride = s.v_stride = 3L * C;
    s.q_bstride = s.k_bstride = s.v_bstride = 3L * C * c->F;
    return s;
}

void mav_attnblock_plan(mav_attnblock *l, mav_layer_ctx *c, mav_arena *act, int H, int W) {
    size_t N = (size_t)c->B * c->F, C = (size_t)l->C;
    l->P = (long)H * W;
    size_t P = (size_t)l->P, act_n = N * C * P;
    l->mean = mav_arena_floats(act, N * GROUPS);
    l->rstd = mav_arena_floats(act, N * GROUPS);
    l->tok = mav_arena_floats(act, act_n);
    l->qkv = mav_arena_floats(act, 3 * act_n);
    l->ckv = l->n_ctx ? mav_arena_floats(act, N * l->n_ctx * 2 * C) : NULL;
    l->o = mav_arena_floats(act, act_n);
    l->lse = mav_arena_floats(act, N * l->heads * P);
    mav_attn_shape ss = spatial_shape(l, c);
    mav_layer_need_scratch(c, mav_attention_scratch_floats(&ss));
    mav_layer_need_scratch(c, mav_groupnorm_scratch_floats((int)N, l->C));
    // forward temporaries: proj output + its transpose (+ the ctx_kv output per sample)
    size_t ctxb = l->n_ctx ? mav_work_bytes((size_t)c->B * l->n_ctx * 2 * C) : 0;
    size_t fwd = 2 * mav_work_bytes(act_n) + ctxb;
    // backward: dqkv (3×), two activation-sized buffers, dckv (repeated and per sample), dctx
    size_t bwd = mav_work_bytes(3 * act_n) + 2 * mav_work_bytes(act_n) +
                 (l->n_ctx ? mav_work_bytes(N * l->n_ctx * 2 * C) + ctxb +
                                 mav_work_bytes((size_t)c->B * l->n_ctx * l->temb) : 0);
    if (l->temporal) {
        l->tt = mav_arena_floats(act, act_n);
        l->tmean = mav_arena_floats(act, N * P);
        l->trstd = mav_arena_floats(act, N * P);
        l->ln = mav_arena_floats(act, act_n);
        l->tqkv = mav_arena_floats(act, 3 * act_n);
        l->to = mav_arena_floats(act, act_n);
        l->tlse = mav_arena_floats(act, N * l->heads * P);
        mav_attn_shape ts = temporal_shape(l, c);
        mav_layer_need_scratch(c, mav_attention_scratch_floats(&ts));
        mav_layer_need_scratch(c, mav_layernorm_scratch_floats(l->C));
        size_t tb = mav_work_bytes(3 * act_n) + 3 * mav_work_bytes(act_n);
        if (tb > bwd) bwd = tb;
    }
    mav_layer_need_work(c, fwd);
    mav_layer_need_work(c, bwd);
}

void mav_attnblock_forward(mav_attnblock *l, mav_layer_ctx *c, float *out, const float *x, const float *ctx) {
    int N = c->B * c->F, C = l->C, F = c->F;
    long P = l->P, act_n = (long)N * C * P;
    size_t mark = mav_arena_mark(c->work);
    // --- spatial ---
    float *g = mav_arena_floats(c->work, (size_t)act_n);
    mav_groupnorm_forward(g, l->mean, l->rstd, x, mav_layer_w(c, l->norm_w), mav_layer_w(c, l->norm_b), N, C, (int)P,
                          GROUPS, NORM_EPS);
    mav_transpose_forward(l->tok, g, N, C, P);
    mav_linear_forward(l->qkv, l->tok, mav_layer_w(c, l->qkv_w), mav_layer_w(c, l->qkv_b), (int)(N * P), C, 3 * C);
    if (l->n_ctx) {
        // ctx_kv of the sample's context tokens, the same for each of its frames
        float *kvb = mav_arena_floats(c->work, (size_t)c->B * l->n_ctx * 2 * C);
        mav_linear_forward(kvb, ctx, mav_layer_w(c, l->ctx_w), mav_layer_w(c, l->ctx_b), c->B * l->n_ctx, l->temb,
                           2 * C);
        size_t per = (size_t)l->n_ctx * 2 * C;
        for (int n = 0; n < N; n++) memcpy(l->ckv + n * per, kvb + (n / F) * per, per * sizeof(float));
    }
    mav_attn_shape ss = spatial_shape(l, c);
    mav_attention_forward(l->o, l->lse, l->qkv, l->qkv + C, l->qkv + 2 * C, l->ckv, l->ckv ? l->ckv + C : NULL, &ss,
                          c->scratch);
    float *pr = g;  // reuse: [N, P, C]
    mav_linear_forward(pr, l->o, mav_layer_w(c, l->proj_w), mav_layer_w(c, l->proj_b), (int)(N * P), C, C);
    float *prt = mav_arena_floats(c->work, (size_t)act_n);
    mav_transpose_forward(prt, pr, N, P, C);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < act_n; i++) out[i] = x[i] + prt[i];  // x1 (the temporal part adds to it)
    mav_arena_release(c->work, mark);
    if (!l->temporal) return;

    // --- temporal: rows (b, p, f) ---
    long R = act_n / C;  // B·P·F token rows
    mav_transpose_forward(l->tt, out, c->B, (long)F * C, P);  // [B, F·C, P] -> [B, P, F·C]
    mav_layernorm_forward(l->ln, l->tmean, l->trstd, l->tt, mav_layer_w(c, l->tnorm_w), mav_layer_w(c, l->tnorm_b), R,
                          C, NORM_EPS);
    const float *tpos = mav_layer_w(c, l->tpos);
    #pragma omp parallel for schedule(static)
    for (long r = 0; r < R; r++)
        for (int ch = 0; ch < C; ch++) l->ln[r * C + ch] += tpos[(r % F) * C + ch];
    mav_linear_forward(l->tqkv, l->ln, mav_layer_w(c, l->tqkv_w), mav_layer_w(c, l->tqkv_b), (int)R, C, 3 * C);
    mav_attn_shape ts = temporal_shape(l, c);
    mav_attention_forward(l->to, l->tlse, l->tqkv, l->tqkv + C, l->tqkv + 2 * C, NULL, NULL, &ts, c->scratch);
    float *tpr = mav_arena_floats(c->work, (size_t)act_n), *tprt = mav_arena_floats(c->work, (size_t)act_n);
    mav_linear_forward(tpr, l->to, mav_layer_w(c, l->tproj_w), mav_layer_w(c, l->tproj_b), (int)R, C, C);
    mav_transpose_forward(tprt, tpr, c->B, P, (long)F * C);  // back to [B, F·C, P]
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < act_n; i++) out[i] += tprt[i];
    mav_arena_release(c->work, mark);
}

void mav_attnblock_backward(mav_attnblock *l, mav_layer_ctx *c, float *dx, float *dctx, const float *dout,
                            const float *x, const float *ctx) {
    int N = c->B * c->F, C = l->C, F = c->F;
    long P = l->P, act_n = (long)N * C * P;
    size_t mark = mav_arena_mark(c->work);
    // dx starts as the gradient of x1 (the residual passes it through)
    if (l->temporal) {
        long R = act_n / C;
        float *dqkv = mav_arena_floats(c->work, 3 * (size_t)act_n);
        float *t1 = mav_arena_floats(c->work, (size_t)act_n), *t2 = mav_arena_floats(c->work, (size_t)act_n);
        float *t3 = mav_arena_floats(c->work, (size_t)act_n);
        mav_transpose_forward(t1, dout, c->B, (long)F * C, P);  // d tproj output, rows (b, p, f)
        mav_linear_backward(t2, mav_layer_g(c, l->tproj_w), mav_layer_g(c, l->tproj_b), t1, l->to,
                            mav_layer_w(c, l->tproj_w), (int)R, C, C);
        mav_attn_shape ts = temporal_shape(l, c);
        mav_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, NULL, NULL, t2, l->to, l->tlse, l->tqkv, l->tqkv + C,
                               l->tqkv + 2 * C, NULL, NULL, &ts, c->scratch);
        mav_linear_backward(t1, mav_layer_g(c, l->tqkv_w), mav_layer_g(c, l->tqkv_b), dqkv, l->ln,
                            mav_layer_w(c, l->tqkv_w), (int)R, C, 3 * C);
        float *dtpos = mav_layer_g(c, l->tpos);
        if (dtpos) {
            // each (f, ch) owns one sum over the B·P rows of frame f, in row order
            #pragma omp parallel for schedule(static) collapse(2)
            for (int f = 0; f < F; f++)
                for (int ch = 0; ch < C; ch++) {
                    double s = 0.0;
                    for (long r = f; r < R; r += F) s += t1[r * C + ch];
                    dtpos[f * C + ch] += (float)s;
                }
        }
        mav_layernorm_backward(t2, mav_layer_g(c, l->tnorm_w), mav_layer_g(c, l->tnorm_b), t1, l->tt, l->tmean,
                               l->trstd, mav_layer_w(c, l->tnorm_w), R, C, c->scratch);
        mav_transpose_forward(t3, t2, c->B, P, (long)F * C);  // back to [B, F·C, P]
        #pragma omp parallel for schedule(static)
        for (long i = 0; i < act_n; i++) dx[i] = dout[i] + t3[i];
        mav_arena_release(c->work, mark);
    } else {
        memcpy(dx, dout, (size_t)act_n * sizeof *dx);
    }
    // spatial: dx holds d x1
    float *dqkv = mav_arena_floats(c->work, 3 * (size_t)act_n);
    float *t1 = mav_arena_floats(c->work, (size_t)act_n), *t2 = mav_arena_floats(c->work, (size_t)act_n);
    float *dckv = l->n_ctx ? mav_arena_floats(c->work, (size_t)N * l->n_ctx * 2 * C) : NULL;
    mav_transpose_forward(t1, dx, N, C, P);  // d proj output [N, P, C]
    mav_linear_backward(t2, mav_layer_g(c, l->proj_w), mav_layer_g(c, l->proj_b), t1, l->o, mav_layer_w(c, l->proj_w),
                        (int)(N * P), C, C);
    mav_attn_shape ss = spatial_shape(l, c);
    mav_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, dckv, dckv ? dckv + C : NULL, t2, l->o, l->lse, l->qkv,
                           l->qkv + C, l->qkv + 2 * C, l->ckv, l->ckv ? l->ckv + C : NULL, &ss, c->scratch);
    if (l->n_ctx) {
        size_t per = (size_t)l->n_ctx * 2 * C;
        float *dkvb = mav_arena_floats(c->work, (size_t)c->B * per);
        float *dctx_tmp = mav_arena_floats(c->work, (size_t)c->B * l->n_ctx * l->temb);
        for (int b = 0; b < c->B; b++)
            for (size_t i = 0; i < per; i++) {
                float s = 0.0f;
                for (int f = 0; f < F; f++) s += dckv[((size_t)b * F + f) * per + i];
                dkvb[b * per + i] = s;
            }
        mav_linear_backward(dctx_tmp, mav_layer_g(c, l->ctx_w), mav_layer_g(c, l->ctx_b), dkvb, ctx,
                            mav_layer_w(c, l->ctx_w), c->B * l->n_ctx, l->temb, 2 * C);
        for (long i = 0; i < (long)c->B * l->n_ctx * l->temb; i++) dctx[i] += dctx_tmp[i];
    }
    mav_linear_backward(t1, mav_layer_g(c, l->qkv_w), mav_layer_g(c, l->qkv_b), dqkv, l->tok, mav_layer_w(c, l->qkv_w),
                        (int)(N * P), C, 3 * C);
    mav_transpose_forward(t2, t1, N, P, C);  // d GN output [N, C, P]
    mav_groupnorm_backward(t1, mav_layer_g(c, l->norm_w), mav_layer_g(c, l->norm_b), t2, x, l->mean, l->rstd,
                           mav_layer_w(c, l->norm_w), N, C, (int)P, GROUPS, c->scratch);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < act_n; i++) dx[i] += t1[i];
    mav_arena_release(c->work, mark);
}
