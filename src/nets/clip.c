// clip.c — the CLIP towers at run time (SPEC §4): parameter table with OpenAI's names,
// initialisation, memory plan, forward and backward of both towers, checkpoints.
#include "nets/clip.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/blas.h"
#include "core/rng.h"
#include "io/checkpoint.h"
#include "ops/embedding.h"
#include "ops/layernorm.h"
#include "ops/linear.h"

static const float LN_EPS = 1e-5f;  // SPEC §2


static int add(mav_params *p, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2, int64_t d3) {
    int64_t s[4] = {d0, d1, d2, d3};
    return mav_params_add(p, name, ndim, s);
}

// ---- construction --------------------------------------------------------------------------

// Tensors in the order of OpenAI's state_dict.
static void register_params(mav_clip *m) {
    const mav_clip_config *c = &m->cfg;
    mav_params *p = &m->params;
    int W = c->transformer_width, V = c->vision_width, E = c->embed_dim, pt = c->vision_patch_size;
    int grid = c->image_resolution / pt;
    char n[MAV_NAME_MAX];
    m->pos_emb = add(p, "positional_embedding", 2, c->context_length, W, 0, 0);
    m->text_proj = add(p, "text_projection", 2, W, E, 0, 0);
    m->logit_scale = add(p, "logit_scale", 0, 0, 0, 0, 0);
    m->cls_emb = add(p, "visual.class_embedding", 1, V, 0, 0, 0);
    m->vpos_emb = add(p, "visual.positional_embedding", 2, (int64_t)grid * grid + 1, V, 0, 0);
    m->vproj = add(p, "visual.proj", 2, V, E, 0, 0);
    m->conv1 = add(p, "visual.conv1.weight", 4, V, 3, pt, pt);
    m->ln_pre_w = add(p, "visual.ln_pre.weight", 1, V, 0, 0, 0);
    m->ln_pre_b = add(p, "visual.ln_pre.bias", 1, V, 0, 0, 0);
    for (int i = 0; i < c->vision_layers; i++) {
        mav_param_name(n, "visual.transformer.resblocks.%d", i);
        mav_transformer_register(p, n, &mav_transformer_names_clip, V, 4 * V);
    }
    m->ln_post_w = add(p, "visual.ln_post.weight", 1, V, 0, 0, 0);
    m->ln_post_b = add(p, "visual.ln_post.bias", 1, V, 0, 0, 0);
    m->tok_emb = add(p, "token_embedding.weight", 2, c->vocab_size, W, 0, 0);
    for (int i = 0; i < c->transformer_layers; i++) {
        mav_param_name(n, "transformer.resblocks.%d", i);
        mav_transformer_register(p, n, &mav_transformer_names_clip, W, 4 * W);
    }
    m->lnf_w = add(p, "ln_final.weight", 1, W, 0, 0, 0);
    m->lnf_b = add(p, "ln_final.bias", 1, W, 0, 0, 0);
}

mav_status mav_clip_create(mav_clip *m, const mav_clip_config *c) {
    memset(m, 0, sizeof *m);
    mav_status st = mav_clip_config_check(c);
    if (st != MAV_OK) return st;
    m->cfg = *c;
    mav_params_init(&m->params);
    register_params(m);
    m->text_layers = calloc((size_t)c->transformer_layers, sizeof *m->text_layers);
    m->vision_layers = calloc((size_t)c->vision_layers, sizeof *m->vision_layers);
    if (!m->text_layers || !m->vision_layers) {
        mav_clip_free(m);
        return mav_fail(MAV_ERR_NOMEM, "clip: out of memory");
    }
    char n[MAV_NAME_MAX];
    for (int i = 0; i < c->transformer_layers; i++) {
        mav_param_name(n, "transformer.resblocks.%d", i);
        mav_transformer_init(&m->text_layers[i], &m->params, n, &mav_transformer_names_clip, c->transformer_width,
                             c->transformer_heads, 4 * c->transformer_width, c->activation, 1);
    }
    for (int i = 0; i < c->vision_layers; i++) {
        mav_param_name(n, "visual.transformer.resblocks.%d", i);
        mav_transformer_init(&m->vision_layers[i], &m->params, n, &mav_transformer_names_clip, c->vision_width,
                             c->vision_heads, 4 * c->vision_width, c->activation, 0);
    }
    return MAV_OK;
}

static void tower_free(mav_clip_tower *t) {
    mav_arena_free(&t->act);
    mav_arena_free(&t->work);
    free(t->xs);
    memset(t, 0, sizeof *t);
}

void mav_clip_free(mav_clip *m) {
    mav_params_free(&m->params);
    tower_free(&m->text);
    tower_free(&m->vision);
    free(m->text_layers);
    free(m->vision_layers);
    memset(m, 0, sizeof *m);
}

mav_status mav_clip_alloc_params(mav_clip *m, int training) { return mav_params_alloc(&m->params, training, training); }

float *mav_clip_logit_scale(mav_clip *m) { return mav_param_value(&m->params, m->logit_scale); }
float *mav_clip_logit_scale_grad(mav_clip *m) {
    return m->params.grad ? mav_param_grad(&m->params, m->logit_scale) : NULL;
}

// ---- initialisation (OpenAI CLIP.initialize_parameters) -------------------------------------

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void fill_normal(float *v, size_t n, double std, mav_rng *r) {
    mav_rng_normal(r, v, n);
    for (size_t i = 0; i < n; i++) v[i] = (float)(v[i] * std);
}

// Both towers' blocks get OpenAI's text-transformer scheme (attn_std = w^-½, proj_std =
// w^-½·(2·layers)^-½, fc_std = (2w)^-½) with zero biases; LayerNorms 1 / 0; token embedding
// N(0, 0.02²), text positions N(0, 0.01²); class embedding, vision positions and both
// projections N(0, w^-1); conv1 PyTorch's default U(±1/sqrt(fan_in)); logit_scale ln(1/0.07).
void mav_clip_init_params(mav_clip *m, uint64_t seed) {
    const mav_clip_config *c = &m->cfg;
    mav_params *p = &m->params;
    for (int k = 0; k < p->count; k++) {
        const mav_param *t = &p->items[k];
        float *v = mav_param_value(p, k);
        mav_rng r = mav_rng_fork(seed, (uint64_t)k);
        const char *nm = t->name;
        int vis = strncmp(nm, "visual.", 7) == 0;
        double w = vis ? c->vision_width : c->transformer_width, layers = vis ? c->vision_layers : c->transformer_layers;
        double attn_std = 1.0 / sqrt(w), proj_std = attn_std / sqrt(2.0 * layers), fc_std = 1.0 / sqrt(2.0 * w);
        memset(v, 0, t->numel * sizeof *v);
        if (k == m->logit_scale) {
            v[0] = (float)log(1.0 / 0.07);
        } else if (k == m->tok_emb) {
            fill_normal(v, t->numel, 0.02, &r);
        } else if (k == m->pos_emb) {
            fill_normal(v, t->numel, 0.01, &r);
        } else if (k == m->cls_emb || k == m->vpos_emb || k == m->vproj || k == m->text_proj) {
            fill_normal(v, t->numel, attn_std, &r);
        } else if (k == m->conv1) {
            double bound = 1.0 / sqrt((double)(t->numel / (size_t)t->shape[0]));
            mav_rng_uniform(&r, v, t->numel);
            for (size_t i = 0; i < t->numel; i++) v[i] = (float)((2.0 * v[i] - 1.0) * bound);
        } else if (ends_with(nm, "in_proj_weight")) {
            fill_normal(v, t->numel, attn_std, &r);
        } else if (ends_with(nm, "out_proj.weight") || ends_with(nm, "c_proj.weight")) {
            fill_normal(v, t->numel, proj_std, &r);
        } else if (ends_with(nm, "c_fc.weight")) {
            fill_normal(v, t->numel, fc_std, &r);
        } else if (t->ndim == 1 && ends_with(nm, "weight")) {  // LayerNorm gains
            for (size_t i = 0; i < t->numel; i++) v[i] = 1.0f;
        }  // biases: 0
    }
}

// ---- planning ------------------------------------------------------------------------------

static void text_layout(void *net, mav_arena *a) {
    mav_clip *m = net;
    const mav_clip_config *c = &m->cfg;
    mav_clip_tower *t = &m->text;
    size_t B = (size_t)t->B, L = (size_t)c->context_length, W = (size_t)c->transformer_width;
    t->lc.scratch_floats = 0;
    t->lc.work_bytes = 0;
    t->ids = (int32_t *)mav_arena_alloc(a, B * L * sizeof(int32_t));
    t->eot = (int *)mav_arena_alloc(a, B * sizeof(int));
    t->x0 = t->xin = mav_arena_floats(a, B * L * W);
    for (int i = 0; i < t->n_xs; i++) t->xs[i] = mav_arena_floats(a, B * L * W);
    t->fin = mav_arena_floats(a, B * L * W);
    t->fin_mean = mav_arena_floats(a, B * L);
    t->fin_rstd = mav_arena_floats(a, B * L);
    t->pooled = mav_arena_floats(a, B * W);
    if (t->training) {
        t->g0 = mav_arena_floats(a, B * L * W);
        t->g1 = mav_arena_floats(a, B * L * W);
    }
    for (int i = 0; i < c->transformer_layers; i++) mav_transformer_plan(&m->text_layers[i], &t->lc, a, (int)L);
    mav_layer_need_scratch(&t->lc, mav_layernorm_scratch_floats((int)W));
    mav_layer_need_work(&t->lc, mav_work_bytes(B * W));  // backward: d pooled
}

static void vision_layout(void *net, mav_arena *a) {
    mav_clip *m = net;
    const mav_clip_config *c = &m->cfg;
    mav_clip_tower *t = &m->vision;
    size_t B = (size_t)t->B, pt = (size_t)c->vision_patch_size, g = (size_t)c->image_resolution / pt;
    size_t N = g * g + 1, W = (size_t)c->vision_width;
    t->lc.scratch_floats = 0;
    t->lc.work_bytes = 0;
    t->patches = mav_arena_floats(a, B * g * g * 3 * pt * pt);
    t->x0 = mav_arena_floats(a, B * N * W);
    t->pre_mean = mav_arena_floats(a, B * N);
    t->pre_rstd = mav_arena_floats(a, B * N);
    t->xin = mav_arena_floats(a, B * N * W);
    for (int i = 0; i < t->n_xs; i++) t->xs[i] = mav_arena_floats(a, B * N * W);
    t->pooled = mav_arena_floats(a, B * W);
    t->fin = mav_arena_floats(a, B * W);
    t->fin_mean = mav_arena_floats(a, B);
    t->fin_rstd = mav_arena_floats(a, B);
    if (t->training) {
        t->g0 = mav_arena_floats(a, B * N * W);
        t->g1 = mav_arena_floats(a, B * N * W);
    }
    for (int i = 0; i < c->vision_layers; i++) mav_transformer_plan(&m->vision_layers[i], &t->lc, a, (int)N);
    mav_layer_need_scratch(&t->lc, mav_layernorm_scratch_floats((int)W));
    mav_layer_need_work(&t->lc, 2 * mav_work_bytes(B * W));  // backward: d ln_post output and input
}

static mav_status plan_tower(mav_clip *m, mav_clip_tower *t, int B, int training, int layers,
                             void (*layout)(void *, mav_arena *), const char *what) {
    if (B == 0) {
        tower_free(t);
        return MAV_OK;
    }
    if (t->act.base && t->B == B && t->training == training) return MAV_OK;
    tower_free(t);
    t->B = B;
    t->training = training;
    t->n_xs = training ? layers : 2;  // training keeps every block's output (the next one's input)
    t->xs = calloc((size_t)t->n_xs, sizeof *t->xs);
    if (!t->xs) return mav_fail(MAV_ERR_NOMEM, "clip: out of memory");
    t->lc = (mav_layer_ctx){.params = &m->params, .B = B, .F = 1, .training = training};
    mav_status st = mav_layer_plan_memory(&t->lc, &t->act, &t->work, layout, m);
    if (st != MAV_OK) {
        mav_error_prefix("clip: planning the %s tower for batch %d", what, B);
        tower_free(t);
        return st;
    }
    t->scratch = t->lc.scratch;
    return MAV_OK;
}

mav_status mav_clip_plan(mav_clip *m, int B_text, int B_image, int training) {
    if (B_text < 0 || B_image < 0) return mav_fail(MAV_ERR_ARG, "clip: batch sizes must be >= 0");
    if (!m->params.value) return mav_fail(MAV_ERR_ARG, "clip: parameters are not allocated");
    if (training && !m->params.grad) return mav_fail(MAV_ERR_ARG, "clip: a training plan needs parameter gradients");
    mav_status st = plan_tower(m, &m->text, B_text, training, m->cfg.transformer_layers, text_layout, "text");
    if (st != MAV_OK) return st;
    return plan_tower(m, &m->vision, B_image, training, m->cfg.vision_layers, vision_layout, "image");
}

size_t mav_clip_planned_bytes(const mav_clip *m) {
    return m->text.act.cap + m->text.work.cap + m->vision.act.cap + m->vision.work.cap;
}

// Output of block i (training: its own buffer; inference: ping-pong).
static float *block_out(const mav_clip_tower *t, int i) { return t->xs[t->training ? i : i % 2]; }

// ---- text tower ----------------------------------------------------------------------------

mav_status mav_clip_encode_text(mav_clip *m, float *text_emb, float *text_tokens, const int32_t *tokens) {
    const mav_clip_config *c = &m->cfg;
    mav_clip_tower *t = &m->text;
    MAV_ASSERT(t->act.base != NULL);
    int B = t->B, L = c->context_length, W = c->transformer_width, E = c->embed_dim;
    long R = (long)B * L;
    mav_status st = mav_embedding_check_ids(tokens, R, c->vocab_size);
    if (st != MAV_OK) {
        mav_error_prefix("clip: tokens");
        return st;
    }
    mav_layer_ctx *lc = &t->lc;
    memcpy(t->ids, tokens, (size_t)R * sizeof(int32_t));
    mav_embedding_forward(t->x0, t->ids, mav_layer_w(lc, m->tok_emb), (int)R, c->vocab_size, W);
    const float *pos = mav_layer_w(lc, m->pos_emb);
    #pragma omp parallel for schedule(static)
    for (long r = 0; r < R; r++)
        for (int k = 0; k < W; k++) t->x0[r * W + k] += pos[(r % L) * W + k];
    const float *x = t->xin;
    for (int i = 0; i < c->transformer_layers; i++) {
        float *out = block_out(t, i);
        mav_transformer_forward(&m->text_layers[i], lc, out, x, NULL);
        x = out;
    }
    mav_layernorm_forward(t->fin, t->fin_mean, t->fin_rstd, x, mav_layer_w(lc, m->lnf_w), mav_layer_w(lc, m->lnf_b), R,
                          W, LN_EPS);
    // the EOT token carries the highest id (OpenAI: text.argmax(dim=-1), first maximum)
    for (int b = 0; b < B; b++) {
        const int32_t *row = t->ids + (long)b * L;
        int best = 0;
        for (int l = 1; l < L; l++)
            if (row[l] > row[best]) best = l;
        t->eot[b] = best;
        memcpy(t->pooled + (long)b * W, t->fin + ((long)b * L + best) * W, (size_t)W * sizeof(float));
    }
    if (text_emb)  // x @ text_projection, P [W, E]
        mav_sgemm(0, 0, B, E, W, 1.0f, t->pooled, W, mav_layer_w(lc, m->text_proj), E, 0.0f, text_emb, E);
    if (text_tokens) memcpy(text_tokens, t->fin, (size_t)R * W * sizeof(float));
    return MAV_OK;
}

// d[b, n, :] summed over the batch into dtable[n, :] (+=), in batch order (each column one owner).
static void sum_over_batch(float *dtable, const float *d, int B, long N, int W) {
    if (!dtable) return;
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < N * W; i++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) s += d[(long)b * N * W + i];
        dtable[i] += (float)s;
    }
}

void mav_clip_backward_text(mav_clip *m, const float *dtext_emb, const float *dtext_tokens) {
    const mav_clip_config *c = &m->cfg;
    mav_clip_tower *t = &m->text;
    MAV_ASSERT(t->act.base != NULL && t->training && m->params.grad != NULL);
    mav_layer_ctx *lc = &t->lc;
    int B = t->B, L = c->context_length, W = c->transformer_width, E = c->embed_dim, nl = c->transformer_layers;
    long R = (long)B * L;
    float *g = t->g0, *h = t->g1;
    if (dtext_tokens) memcpy(g, dtext_tokens, (size_t)R * W * sizeof(float));
    else memset(g, 0, (size_t)R * W * sizeof(float));
    if (dtext_emb) {
        size_t mark = mav_arena_mark(lc->work);
        float *dpool = mav_arena_floats(lc->work, (size_t)B * W);
        float *dP = mav_layer_g(lc, m->text_proj);
        mav_sgemm(1, 0, W, E, B, 1.0f, t->pooled, W, dtext_emb, E, 1.0f, dP, E);  // dP += pooledᵀ·d
        mav_sgemm(0, 1, B, W, E, 1.0f, dtext_emb, E, mav_layer_w(lc, m->text_proj), E, 0.0f, dpool, W);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < W; k++) g[((long)b * L + t->eot[b]) * W + k] += dpool[(long)b * W + k];
        mav_arena_release(lc->work, mark);
    }
    const float *xl = nl > 0 ? block_out(t, nl - 1) : t->xin;
    mav_layernorm_backward(h, mav_layer_g(lc, m->lnf_w), mav_layer_g(lc, m->lnf_b), g, xl, t->fin_mean, t->fin_rstd,
                           mav_layer_w(lc, m->lnf_w), R, W, lc->scratch);
    for (int i = nl - 1; i >= 0; i--) {  // h: gradient of block i's output
        const float *in = i > 0 ? block_out(t, i - 1) : t->xin;
        mav_transformer_backward(&m->text_layers[i], lc, g, h, in, NULL);
        float *s = g; g = h; h = s;
    }
    // h: gradient of x0 = token_embedding[ids] + positional_embedding
    mav_embedding_backward(mav_layer_g(lc, m->tok_emb), h, t->ids, (int)R, c->vocab_size, W);
    sum_over_batch(mav_layer_g(lc, m->pos_emb), h, B, L, W);
}

// ---- vision tower --------------------------------------------------------------------------

void mav_clip_encode_image(mav_clip *m, float *image_emb, const float *image) {
    const mav_clip_config *c = &m->cfg;
    mav_clip_tower *t = &m->vision;
    MAV_ASSERT(t->act.base != NULL);
    mav_layer_ctx *lc = &t->lc;
    int B = t->B, p = c->vision_patch_size, Rs = c->image_resolution, g = Rs / p, P = g * g, N = P + 1;
    int W = c->vision_width, E = c->embed_dim, K = 3 * p * p, nl = c->vision_layers;
    // conv1 (kernel = stride = patch, no bias) as im2col + GEMM: patch row (b, gy, gx) holds
    // image[b, ch, gy·p + ky, gx·p + kx] at column (ch, ky, kx) — conv1.weight's [W, 3, p, p] order
    #pragma omp parallel for schedule(static) collapse(2)
    for (int b = 0; b < B; b++)
        for (int gy = 0; gy < g; gy++)
            for (int gx = 0; gx < g; gx++)
                for (int ch = 0; ch < 3; ch++)
                    for (int ky = 0; ky < p; ky++)
                        memcpy(t->patches + ((long)(b * P + gy * g + gx) * K + (ch * p + ky) * p),
                               image + (((long)b * 3 + ch) * Rs + gy * p + ky) * Rs + gx * p, (size_t)p * sizeof(float));
    for (int b = 0; b < B; b++)  // rows 1..P of sample b are contiguous in x0
        mav_linear_forward(t->x0 + ((long)b * N + 1) * W, t->patches + (long)b * P * K, mav_layer_w(lc, m->conv1), NULL,
                           P, K, W);
    const float *cls = mav_layer_w(lc, m->cls_emb), *pos = mav_layer_w(lc, m->vpos_emb);
    #pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * N; r++) {
        long n = r % N;
        float *row = t->x0 + r * W;
        if (n == 0) memcpy(row, cls, (size_t)W * sizeof(float));
        for (int k = 0; k < W; k++) row[k] += pos[n * W + k];
    }
    mav_layernorm_forward(t->xin, t->pre_mean, t->pre_rstd, t->x0, mav_layer_w(lc, m->ln_pre_w),
                          mav_layer_w(lc, m->ln_pre_b), (long)B * N, W, LN_EPS);
    const float *x = t->xin;
    for (int i = 0; i < nl; i++) {
        float *out = block_out(t, i);
        mav_transformer_forward(&m->vision_layers[i], lc, out, x, NULL);
        x = out;
    }
    for (int b = 0; b < B; b++) memcpy(t->pooled + (long)b * W, x + (long)b * N * W, (size_t)W * sizeof(float));
    mav_layernorm_forward(t->fin, t->fin_mean, t->fin_rstd, t->pooled, mav_layer_w(lc, m->ln_post_w),
                          mav_layer_w(lc, m->ln_post_b), B, W, LN_EPS);
    if (image_emb) mav_sgemm(0, 0, B, E, W, 1.0f, t->fin, W, mav_layer_w(lc, m->vproj), E, 0.0f, image_emb, E);
}

void mav_clip_backward_image(mav_clip *m, const float *dimage_emb) {
    const mav_clip_config *c = &m->cfg;
    mav_clip_tower *t = &m->vision;
    MAV_ASSERT(t->act.base != NULL && t->training && m->params.grad != NULL);
    mav_layer_ctx *lc = &t->lc;
    int B = t->B, p = c->vision_patch_size, g = c->image_resolution / p, P = g * g, N = P + 1;
    int W = c->vision_width, E = c->embed_dim, K = 3 * p * p, nl = c->vision_layers;
    size_t mark = mav_arena_mark(lc->work);
    float *dfin = mav_arena_floats(lc->work, (size_t)B * W), *dpool = mav_arena_floats(lc->work, (size_t)B * W);
    mav_sgemm(1, 0, W, E, B, 1.0f, t->fin, W, dimage_emb, E, 1.0f, mav_layer_g(lc, m->vproj), E);
    mav_sgemm(0, 1, B, W, E, 1.0f, dimage_emb, E, mav_layer_w(lc, m->vproj), E, 0.0f, dfin, W);
    mav_layernorm_backward(dpool, mav_layer_g(lc, m->ln_post_w), mav_layer_g(lc, m->ln_post_b), dfin, t->pooled,
                           t->fin_mean, t->fin_rstd, mav_layer_w(lc, m->ln_post_w), B, W, lc->scratch);
    // only the class token of the last block's output reaches the embedding
    float *gr = t->g0, *h = t->g1;
    memset(gr, 0, (size_t)B * N * W * sizeof(float));
    for (int b = 0; b < B; b++) memcpy(gr + (long)b * N * W, dpool + (long)b * W, (size_t)W * sizeof(float));
    mav_arena_release(lc->work, mark);
    for (int i = nl - 1; i >= 0; i--) {  // gr: gradient of block i's output
        const float *in = i > 0 ? block_out(t, i - 1) : t->xin;
        mav_transformer_backward(&m->vision_layers[i], lc, h, gr, in, NULL);
        float *s = gr; gr = h; h = s;
    }
    // gr: gradient of ln_pre's output
    mav_layernorm_backward(h, mav_layer_g(lc, m->ln_pre_w), mav_layer_g(lc, m->ln_pre_b), gr, t->x0, t->pre_mean,
                           t->pre_rstd, mav_layer_w(lc, m->ln_pre_w), (long)B * N, W, lc->scratch);
    sum_over_batch(mav_layer_g(lc, m->vpos_emb), h, B, N, W);
    float *dcls = mav_layer_g(lc, m->cls_emb);  // the class token row of every sample
    for (int k = 0; k < W; k++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) s += h[(long)b * N * W + k];
        dcls[k] += (float)s;
    }
    for (int b = 0; b < B; b++)
        mav_linear_backward(NULL, mav_layer_g(lc, m->conv1), NULL, h + ((long)b * N + 1) * W,
                            t->patches + (long)b * P * K, NULL, P, K, W);
}

// ---- checkpoints ---------------------------------------------------------------------------

mav_status mav_clip_save(const mav_clip *m, const char *path, mav_dtype dtype, int nmeta, const char *const *keys,
                         const char *const *vals) {
    char *cfg = mav_clip_config_to_json(&m->cfg);
    mav_status st = mav_checkpoint_save(&m->params, path, "clip", cfg, dtype, nmeta, keys, vals);
    free(cfg);
    return st;
}

static int is_openai_scalar(const char *name) {
    return strcmp(name, "input_resolution") == 0 || strcmp(name, "context_length") == 0 ||
           strcmp(name, "vocab_size") == 0;
}

// OpenAI's integer scalars (SPEC §7) are accepted when they agree with the architecture.
static int accept_openai_scalar(void *ctx, const mav_st_file *f, const mav_st_tensor *ft, const char *nm) {
    const mav_clip_config *c = ctx;
    if (!is_openai_scalar(nm)) return 0;
    int want = strcmp(nm, "input_resolution") == 0 ? c->image_resolution
               : strcmp(nm, "context_length") == 0 ? c->context_length : c->vocab_size;
    float v = 0.0f;
    if (ft->numel == 1) mav_st_to_f32(ft, &v);
    if (ft->numel != 1 || v != (float)want) {
        mav_fail(MAV_ERR_SHAPE, "%s: \"%s\" does not match the network (%d)", f->path, ft->name, want);
        return -1;
    }
    return 1;
}

mav_status mav_clip_load_weights(mav_clip *m, const mav_st_file *f, const char *prefix) {
    return mav_checkpoint_load(&m->params, f, prefix, NULL, accept_openai_scalar, &m->cfg);
}
