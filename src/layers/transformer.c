#include "layers/transformer.h"

#include <stdio.h>
#include <string.h>

#include "ops/attention.h"
#include "ops/layernorm.h"
#include "ops/linear.h"

static const float LN_EPS = 1e-5f;  // SPEC §2

const mav_transformer_names mav_transformer_names_clip = {
    .ln_1 = "ln_1", .qkv_w = "attn.in_proj_weight", .qkv_b = "attn.in_proj_bias", .out_proj = "attn.out_proj",
    .ln_2 = "ln_2", .fc = "mlp.c_fc", .proj = "mlp.c_proj"};
const mav_transformer_names mav_transformer_names_prior = {
    .ln_1 = "ln1", .qkv_w = "attn.qkv.weight", .qkv_b = "attn.qkv.bias", .out_proj = "attn.proj",
    .ln_2 = "ln2", .fc = "mlp.fc", .proj = "mlp.proj"};

// "prefix.name" or "prefix.name.suffix" (suffix NULL); names longer than MAV_NAME_MAX are a bug.
static void tname(char *out, const char *prefix, const char *name, const char *suffix) {
    int n = suffix ? snprintf(out, MAV_NAME_MAX, "%s.%s.%s", prefix, name, suffix)
                   : snprintf(out, MAV_NAME_MAX, "%s.%s", prefix, name);
    MAV_ASSERT(n > 0 && n < MAV_NAME_MAX);
}

static void reg(mav_params *p, const char *prefix, const char *name, const char *suffix, int ndim, int64_t d0,
                int64_t d1) {
    char full[MAV_NAME_MAX];
    tname(full, prefix, name, suffix);
    int64_t s[2] = {d0, d1};
    mav_params_add(p, full, ndim, s);
}

void mav_transformer_register(mav_params *p, const char *prefix, const mav_transformer_names *n, int width,
                              int mlp_width) {
    reg(p, prefix, n->ln_1, "weight", 1, width, 0);
    reg(p, prefix, n->ln_1, "bias", 1, width, 0);
    reg(p, prefix, n->qkv_w, NULL, 2, 3L * width, width);
    reg(p, prefix, n->qkv_b, NULL, 1, 3L * width, 0);
    reg(p, prefix, n->out_proj, "weight", 2, width, width);
    reg(p, prefix, n->out_proj, "bias", 1, width, 0);
    reg(p, prefix, n->ln_2, "weight", 1, width, 0);
    reg(p, prefix, n->ln_2, "bias", 1, width, 0);
    reg(p, prefix, n->fc, "weight", 2, mlp_width, width);
    reg(p, prefix, n->fc, "bias", 1, mlp_width, 0);
    reg(p, prefix, n->proj, "weight", 2, width, mlp_width);
    reg(p, prefix, n->proj, "bias", 1, width, 0);
}

static int find(const mav_params *p, const char *prefix, const char *name, const char *suffix) {
    char full[MAV_NAME_MAX];
    tname(full, prefix, name, suffix);
    int i = mav_params_find(p, full);
    if (i < 0) fprintf(stderr, "mav: internal error: parameter %s not registered\n", full);
    MAV_ASSERT(i >= 0);
    return i;
}

void mav_transformer_init(mav_transformer *l, const mav_params *p, const char *prefix, const mav_transformer_names *n,
                          int width, int heads, int mlp_width, mav_act act, int causal) {
    memset(l, 0, sizeof *l);
    MAV_ASSERT(width > 0 && heads > 0 && width % heads == 0 && mlp_width > 0);
    l->width = width;
    l->heads = heads;
    l->mlp_width = mlp_width;
    l->act = act;
    l->causal = causal;
    l->ln1_w = find(p, prefix, n->ln_1, "weight"); l->ln1_b = find(p, prefix, n->ln_1, "bias");
    l->qkv_w = find(p, prefix, n->qkv_w, NULL); l->qkv_b = find(p, prefix, n->qkv_b, NULL);
    l->out_w = find(p, prefix, n->out_proj, "weight"); l->out_b = find(p, prefix, n->out_proj, "bias");
    l->ln2_w = find(p, prefix, n->ln_2, "weight"); l->ln2_b = find(p, prefix, n->ln_2, "bias");
    l->fc_w = find(p, prefix, n->fc, "weight"); l->fc_b = find(p, prefix, n->fc, "bias");
    l->proj_w = find(p, prefix, n->proj, "weight"); l->proj_b = find(p, prefix, n->proj, "bias");
}

// q, k, v are column slices of one [S, N, 3C] qkv buffer.
static mav_attn_shape attn_shape(const mav_transformer *l, const mav_layer_ctx *c, const uint8_t *key_mask) {
    int C = l->width;
    mav_attn_shape s = mav_attn_shape_contiguous(c->B * c->F, l->heads, C / l->heads, l->N, l->N, 0);
    s.q_stride = s.k_stride = s.v_stride = 3L * C;
    s.q_bstride = s.k_bstride = s.v_bstride = 3L * C * l->N;
    s.causal = l->causal;
    s.key_mask = key_mask;
    return s;
}

void mav_transformer_plan(mav_transformer *l, mav_layer_ctx *c, mav_arena *act, int N) {
    l->N = N;
    size_t S = (size_t)c->B * c->F, R = S * (size_t)N, C = (size_t)l->width, M = (size_t)l->mlp_width;
    size_t lse_n = S * (size_t)l->heads * (size_t)N;
    mav_attn_shape s = attn_shape(l, c, NULL);
    mav_layer_need_scratch(c, mav_attention_scratch_floats(&s));
    mav_layer_need_scratch(c, mav_layernorm_scratch_floats(l->width));
    if (c->training) {
        l->mean1 = mav_arena_floats(act, R);
        l->rstd1 = mav_arena_floats(act, R);
        l->ln1 = mav_arena_floats(act, R * C);
        l->qkv = mav_arena_floats(act, 3 * R * C);
        l->o = mav_arena_floats(act, R * C);
        l->lse = mav_arena_floats(act, lse_n);
        l->x1 = mav_arena_floats(act, R * C);
        l->mean2 = mav_arena_floats(act, R);
        l->rstd2 = mav_arena_floats(act, R);
        l->ln2 = mav_arena_floats(act, R * C);
        l->h = mav_arena_floats(act, R * M);
        // forward: the activation output; backward: a, da, two [R, C] buffers, dqkv unless da holds it
        mav_layer_need_work(c, mav_work_bytes(R * M));
        mav_layer_need_work(c, 2 * mav_work_bytes(R * M) + 2 * mav_work_bytes(R * C) +
                                   (M >= 3 * C ? 0 : mav_work_bytes(3 * R * C)));
    } else {
        l->mean1 = l->rstd1 = l->ln1 = l->qkv = l->o = l->lse = l->x1 = l->mean2 = l->rstd2 = l->ln2 = l->h = NULL;
        // everything is a temporary: stats (shared by both norms), ln (shared), qkv, o, lse, x1, h
        mav_layer_need_work(c, 2 * mav_work_bytes(R) + mav_work_bytes(R * C) + mav_work_bytes(3 * R * C) +
                                   2 * mav_work_bytes(R * C) + mav_work_bytes(lse_n) + mav_work_bytes(R * M));
    }
}

static float *saved_or_work(float *saved, mav_arena *work, size_t n) {
    return saved ? saved : mav_arena_floats(work, n);
}

void mav_transformer_forward(mav_transformer *l, mav_layer_ctx *c, float *out, const float *x,
                             const uint8_t *key_mask) {
    MAV_ASSERT(out != x);
    int C = l->width, M = l->mlp_width;
    long S = (long)c->B * c->F, R = S * l->N;
    int keep = l->qkv != NULL;  // training plan: buffers are the layer's own
    MAV_ASSERT(keep == (c->training != 0));
    size_t mark = mav_arena_mark(c->work);
    float *mean1 = saved_or_work(l->mean1, c->work, (size_t)R), *rstd1 = saved_or_work(l->rstd1, c->work, (size_t)R);
    float *ln1 = saved_or_work(l->ln1, c->work, (size_t)R * C);
    float *qkv = saved_or_work(l->qkv, c->work, 3 * (size_t)R * C);
    float *o = saved_or_work(l->o, c->work, (size_t)R * C);
    float *lse = saved_or_work(l->lse, c->work, (size_t)S * l->heads * l->N);
    float *x1 = saved_or_work(l->x1, c->work, (size_t)R * C);
    // inference shares the stats and the normalised rows between the two norms
    float *mean2 = keep ? l->mean2 : mean1, *rstd2 = keep ? l->rstd2 : rstd1, *ln2 = keep ? l->ln2 : ln1;
    float *h = saved_or_work(l->h, c->work, (size_t)R * M);

    mav_layernorm_forward(ln1, mean1, rstd1, x, mav_layer_w(c, l->ln1_w), mav_layer_w(c, l->ln1_b), R, C, LN_EPS);
    mav_linear_forward(qkv, ln1, mav_layer_w(c, l->qkv_w), mav_layer_w(c, l->qkv_b), (int)R, C, 3 * C);
    mav_attn_shape s = attn_shape(l, c, key_mask);
    mav_attention_forward(o, lse, qkv, qkv + C, qkv + 2 * C, NULL, NULL, &s, c->scratch);
    mav_linear_forward(x1, o, mav_layer_w(c, l->out_w), mav_layer_w(c, l->out_b), (int)R, C, C);
    long RC = R * C;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < RC; i++) x1[i] += x[i];
    mav_layernorm_forward(ln2, mean2, rstd2, x1, mav_layer_w(c, l->ln2_w), mav_layer_w(c, l->ln2_b), R, C, LN_EPS);
    mav_linear_forward(h, ln2, mav_layer_w(c, l->fc_w), mav_layer_w(c, l->fc_b), (int)R, C, M);
    // training keeps h (the activation's input) for backward; inference activates in place
    float *a = keep ? mav_arena_floats(c->work, (size_t)R * M) : h;
    mav_act_forward(l->act, a, h, R * M);
    mav_linear_forward(out, a, mav_layer_w(c, l->proj_w), mav_layer_w(c, l->proj_b), (int)R, M, C);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < RC; i++) out[i] += x1[i];
    mav_arena_release(c->work, mark);
}

void mav_transformer_backward(mav_transformer *l, mav_layer_ctx *c, float *dx, const float *dout, const float *x,
                              const uint8_t *key_mask) {
    MAV_ASSERT(l->qkv != NULL && dx != dout);
    int C = l->width, M = l->mlp_width;
    long R = (long)c->B * c->F * l->N, RC = R * C;
    size_t mark = mav_arena_mark(c->work);
    float *a = mav_arena_floats(c->work, (size_t)R * M), *da = mav_arena_floats(c->work, (size_t)R * M);
    float *t1 = mav_arena_floats(c->work, (size_t)RC), *dx1 = mav_arena_floats(c->work, (size_t)RC);
    float *dqkv = M >= 3 * C ? da : mav_arena_floats(c->work, 3 * (size_t)RC);

    // MLP branch: out = x1 + c_proj(act(c_fc(ln_2(x1))))
    mav_act_forward(l->act, a, l->h, R * M);
    mav_linear_backward(da, mav_layer_g(c, l->proj_w), mav_layer_g(c, l->proj_b), dout, a, mav_layer_w(c, l->proj_w),
                        (int)R, M, C);
    mav_act_backward(l->act, da, da, l->h, R * M);
    mav_linear_backward(t1, mav_layer_g(c, l->fc_w), mav_layer_g(c, l->fc_b), da, l->ln2, mav_layer_w(c, l->fc_w),
                        (int)R, C, M);
    mav_layernorm_backward(dx1, mav_layer_g(c, l->ln2_w), mav_layer_g(c, l->ln2_b), t1, l->x1, l->mean2, l->rstd2,
                           mav_layer_w(c, l->ln2_w), R, C, c->scratch);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < RC; i++) dx1[i] += dout[i];

    // attention branch: x1 = x + out_proj(MHA(ln_1(x)))
    mav_linear_backward(t1, mav_layer_g(c, l->out_w), mav_layer_g(c, l->out_b), dx1, l->o, mav_layer_w(c, l->out_w),
                        (int)R, C, C);
    mav_attn_shape s = attn_shape(l, c, key_mask);
    mav_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, NULL, NULL, t1, l->o, l->lse, l->qkv, l->qkv + C,
                           l->qkv + 2 * C, NULL, NULL, &s, c->scratch);
    mav_linear_backward(t1, mav_layer_g(c, l->qkv_w), mav_layer_g(c, l->qkv_b), dqkv, l->ln1, mav_layer_w(c, l->qkv_w),
                        (int)R, C, 3 * C);
    mav_layernorm_backward(dx, mav_layer_g(c, l->ln1_w), mav_layer_g(c, l->ln1_b), t1, x, l->mean1, l->rstd1,
                           mav_layer_w(c, l->ln1_w), R, C, c->scratch);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < RC; i++) dx[i] += dx1[i];
    mav_arena_release(c->work, mark);
}
