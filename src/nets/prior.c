// prior.c — the prior at run time (SPEC §5): parameter table with the SPEC names,
// initialisation, memory plan, forward and backward, checkpoints.
#include "io/checkpoint.h"
#include "nets/prior.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "ops/activation.h"
#include "ops/embedding.h"
#include "ops/layernorm.h"
#include "ops/linear.h"

static const float LN_EPS = 1e-5f;  // SPEC §2


static int add(mav_params *p, const char *name, int ndim, int64_t d0, int64_t d1) {
    int64_t s[2] = {d0, d1};
    return mav_params_add(p, name, ndim, s);
}

// ---- construction --------------------------------------------------------------------------

// Tensors in sequence order (inputs, time, query, pos), then the blocks and the head. Every
// linear registers its weight immediately before its bias (init relies on it).
static void register_params(mav_prior *m) {
    const mav_prior_config *c = &m->cfg;
    mav_params *p = &m->params;
    int d = c->width, E = c->emb_dim, N = c->text_ctx + 4;
    m->tok_w = add(p, "text_tok_proj.weight", 2, d, c->text_width);
    m->tok_b = add(p, "text_tok_proj.bias", 1, d, 0);
    m->emb_w = add(p, "text_emb_proj.weight", 2, d, E);
    m->emb_b = add(p, "text_emb_proj.bias", 1, d, 0);
    m->te0_w = add(p, "time_embed.0.weight", 2, d, d);
    m->te0_b = add(p, "time_embed.0.bias", 1, d, 0);
    m->te2_w = add(p, "time_embed.2.weight", 2, d, d);
    m->te2_b = add(p, "time_embed.2.bias", 1, d, 0);
    m->img_w = add(p, "image_proj.weight", 2, d, E);
    m->img_b = add(p, "image_proj.bias", 1, d, 0);
    m->query = add(p, "query", 1, d, 0);
    m->pos = add(p, "pos", 2, N, d);
    char n[MAV_NAME_MAX];
    for (int i = 0; i < c->layers; i++) {
        mav_param_name(n, "blocks.%d", i);
        mav_transformer_register(p, n, &mav_transformer_names_prior, d, 4 * d);
    }
    m->lnf_w = add(p, "ln_f.weight", 1, d, 0);
    m->lnf_b = add(p, "ln_f.bias", 1, d, 0);
    m->out_w = add(p, "out_proj.weight", 2, E, d);
    m->out_b = add(p, "out_proj.bias", 1, E, 0);
}

mav_status mav_prior_create(mav_prior *m, const mav_prior_config *c) {
    memset(m, 0, sizeof *m);
    mav_status st = mav_prior_config_check(c);
    if (st != MAV_OK) return st;
    m->cfg = *c;
    mav_params_init(&m->params);
    register_params(m);
    m->blocks = calloc((size_t)c->layers, sizeof *m->blocks);
    if (!m->blocks) {
        mav_prior_free(m);
        return mav_fail(MAV_ERR_NOMEM, "prior: out of memory");
    }
    char n[MAV_NAME_MAX];
    for (int i = 0; i < c->layers; i++) {
        mav_param_name(n, "blocks.%d", i);
        mav_transformer_init(&m->blocks[i], &m->params, n, &mav_transformer_names_prior, c->width, c->heads,
                             4 * c->width, MAV_ACT_GELU, 1);
    }
    return MAV_OK;
}

static void plan_free(mav_prior *m) {
    mav_arena_free(&m->act);
    mav_arena_free(&m->work);
    free(m->xs);
    m->xs = NULL;
    m->n_xs = 0;
    m->B = 0;
}

void mav_prior_free(mav_prior *m) {
    plan_free(m);
    mav_params_free(&m->params);
    free(m->blocks);
    memset(m, 0, sizeof *m);
}

mav_status mav_prior_alloc_params(mav_prior *m, int training) {
    return mav_params_alloc(&m->params, training, training);
}

// ---- initialisation ------------------------------------------------------------------------

void mav_prior_init_params(mav_prior *m, uint64_t seed) {
    mav_params *p = &m->params;
    for (int k = 0; k < p->count; k++) {
        const mav_param *t = &p->items[k];
        float *v = mav_param_value(p, k);
        mav_rng r = mav_rng_fork(seed, (uint64_t)k);
        size_t n = t->numel;
        if (k == m->query || k == m->pos) {
            mav_rng_normal(&r, v, n);
            for (size_t i = 0; i < n; i++) v[i] *= 0.02f;
            continue;
        }
        double fan_in;
        if (t->ndim == 2) {
            fan_in = (double)t->shape[1];  // a linear weight [out, in]
        } else if (k > 0 && p->items[k - 1].ndim == 2 && strstr(t->name, ".bias")) {
            fan_in = (double)p->items[k - 1].shape[1];  // that linear's bias (registered right after it)
        } else {  // LayerNorm: gain 1, shift 0
            float fill = strstr(t->name, ".weight") ? 1.0f : 0.0f;
            for (size_t i = 0; i < n; i++) v[i] = fill;
            continue;
        }
        double bound = 1.0 / sqrt(fan_in);  // nn.Linear's default for weight and bias
        mav_rng_uniform(&r, v, n);
        for (size_t i = 0; i < n; i++) v[i] = (float)((2.0 * v[i] - 1.0) * bound);
    }
}

// ---- planning ------------------------------------------------------------------------------

static void layout(void *net, mav_arena *a) {
    mav_prior *m = net;
    const mav_prior_config *c = &m->cfg;
    size_t B = (size_t)m->B, L = (size_t)c->text_ctx, N = L + 4, d = (size_t)c->width, E = (size_t)c->emb_dim;
    mav_layer_ctx *lc = &m->lc;
    lc->scratch_floats = 0;
    lc->work_bytes = 0;
    if (m->training) {  // backward needs the inputs of the input projections
        m->tt = mav_arena_floats(a, B * L * (size_t)c->text_width);
        m->te = mav_arena_floats(a, B * E);
        m->xe = mav_arena_floats(a, B * E);
    } else {
        m->tt = m->te = m->xe = NULL;
    }
    m->t_in = mav_arena_floats(a, B * d);
    m->t_h = mav_arena_floats(a, B * d);
    m->t_s = mav_arena_floats(a, B * d);
    m->seq = mav_arena_floats(a, B * N * d);
    m->mask = (uint8_t *)mav_arena_alloc(a, B * N);
    for (int i = 0; i < m->n_xs; i++) m->xs[i] = mav_arena_floats(a, B * N * d);
    m->q = mav_arena_floats(a, B * d);
    m->fin = mav_arena_floats(a, B * d);
    m->fin_mean = mav_arena_floats(a, B);
    m->fin_rstd = mav_arena_floats(a, B);
    if (m->training) {
        m->g0 = mav_arena_floats(a, B * N * d);
        m->g1 = mav_arena_floats(a, B * N * d);
    } else {
        m->g0 = m->g1 = NULL;
    }
    for (int i = 0; i < c->layers; i++) mav_transformer_plan(&m->blocks[i], lc, a, (int)N);
    mav_layer_need_scratch(lc, mav_layernorm_scratch_floats((int)d));
    mav_layer_need_work(lc, 2 * mav_work_bytes(B * d));  // backward: d fin and d query rows, later d SiLU(time)
}

mav_status mav_prior_plan(mav_prior *m, int B, int training) {
    if (B < 1 || B > 1000000) return mav_fail(MAV_ERR_ARG, "prior: batch %d must be in 1..1000000", B);
    if (!m->params.value) return mav_fail(MAV_ERR_ARG, "prior: parameters are not allocated");
    if (training && !m->params.grad) return mav_fail(MAV_ERR_ARG, "prior: a training plan needs parameter gradients");
    if (m->act.base && m->B == B && m->training == training) return MAV_OK;
    plan_free(m);
    m->B = B;
    m->training = training;
    m->n_xs = training ? m->cfg.layers : 2;  // training keeps every block's output (the next one's input)
    m->xs = calloc((size_t)m->n_xs, sizeof *m->xs);
    if (!m->xs) { plan_free(m); return mav_fail(MAV_ERR_NOMEM, "prior: out of memory"); }
    m->lc = (mav_layer_ctx){.params = &m->params, .B = B, .F = 1, .training = training};
    mav_status st = mav_layer_plan_memory(&m->lc, &m->act, &m->work, layout, m);
    if (st != MAV_OK) {
        mav_error_prefix("prior: planning batch %d", B);
        plan_free(m);
        return st;
    }
    m->scratch = m->lc.scratch;
    return MAV_OK;
}

size_t mav_prior_planned_bytes(const mav_prior *m) { return m->act.cap + m->work.cap; }

// Output of block i (training: its own buffer; inference: ping-pong).
static float *block_out(const mav_prior *m, int i) { return m->xs[m->training ? i : i % 2]; }

// ---- forward / backward --------------------------------------------------------------------

void mav_prior_forward(mav_prior *m, float *x0, const float *text_tokens, const float *text_emb, const float *x,
                       const float *t, const uint8_t *mask) {
    const mav_prior_config *c = &m->cfg;
    MAV_ASSERT(m->act.base != NULL);
    mav_layer_ctx *lc = &m->lc;
    int B = m->B, L = c->text_ctx, N = L + 4, d = c->width, E = c->emb_dim, TW = c->text_width;
    long ld = (long)N * d;  // one sample's sequence
    if (m->training) {      // keep the projections' inputs for backward
        memcpy(m->tt, text_tokens, (size_t)B * L * TW * sizeof(float));
        memcpy(m->te, text_emb, (size_t)B * E * sizeof(float));
        memcpy(m->xe, x, (size_t)B * E * sizeof(float));
        text_tokens = m->tt; text_emb = m->te; x = m->xe;
    }
    float *seq = m->seq;
    // positions 0..L−1: the token features (one GEMM per sample: its L rows are contiguous)
    for (int b = 0; b < B; b++)
        mav_linear_forward(seq + b * ld, text_tokens + (long)b * L * TW, mav_layer_w(lc, m->tok_w),
                           mav_layer_w(lc, m->tok_b), L, TW, d);
    // L: text embedding; L+1: time; L+2: noised image embedding — one row per sample, stride N·d
    mav_linear_forward_strided(seq + (long)L * d, (int)ld, text_emb, E, mav_layer_w(lc, m->emb_w),
                               mav_layer_w(lc, m->emb_b), B, E, d);
    mav_timestep_embedding(m->t_in, t, B, d);
    mav_linear_forward(m->t_h, m->t_in, mav_layer_w(lc, m->te0_w), mav_layer_w(lc, m->te0_b), B, d, d);
    mav_act_forward(MAV_ACT_SILU, m->t_s, m->t_h, (long)B * d);
    mav_linear_forward_strided(seq + (long)(L + 1) * d, (int)ld, m->t_s, d, mav_layer_w(lc, m->te2_w),
                               mav_layer_w(lc, m->te2_b), B, d, d);
    mav_linear_forward_strided(seq + (long)(L + 2) * d, (int)ld, x, E, mav_layer_w(lc, m->img_w),
                               mav_layer_w(lc, m->img_b), B, E, d);
    const float *query = mav_layer_w(lc, m->query), *pos = mav_layer_w(lc, m->pos);
    for (int b = 0; b < B; b++) memcpy(seq + b * ld + (long)(L + 3) * d, query, (size_t)d * sizeof(float));
    #pragma omp parallel for schedule(static)
    for (long r = 0; r < (long)B * N; r++)
        for (int k = 0; k < d; k++) seq[r * d + k] += pos[(r % N) * d + k];
    // keys: text positions up to EOT (SOT always), then the four extra positions
    for (int b = 0; b < B; b++)
        for (int j = 0; j < N; j++)
            m->mask[(long)b * N + j] = (uint8_t)(j == 0 || j >= L || !mask || mask[(long)b * L + j] != 0);
    const float *h = seq;
    for (int i = 0; i < c->layers; i++) {
        float *out = block_out(m, i);
        mav_transformer_forward(&m->blocks[i], lc, out, h, m->mask);
        h = out;
    }
    for (int b = 0; b < B; b++) memcpy(m->q + (long)b * d, h + b * ld + (long)(L + 3) * d, (size_t)d * sizeof(float));
    mav_layernorm_forward(m->fin, m->fin_mean, m->fin_rstd, m->q, mav_layer_w(lc, m->lnf_w), mav_layer_w(lc, m->lnf_b),
                          B, d, LN_EPS);
    mav_linear_forward(x0, m->fin, mav_layer_w(lc, m->out_w), mav_layer_w(lc, m->out_b), B, d, E);
}

void mav_prior_backward(mav_prior *m, const float *dx0) {
    const mav_prior_config *c = &m->cfg;
    MAV_ASSERT(m->act.base != NULL && m->training && m->params.grad != NULL);
    mav_layer_ctx *lc = &m->lc;
    int B = m->B, L = c->text_ctx, N = L + 4, d = c->width, E = c->emb_dim, TW = c->text_width, nl = c->layers;
    long ld = (long)N * d;
    size_t mark = mav_arena_mark(lc->work);
    // temporaries live either before or after the blocks' backward, which takes its own from work
    float *dfin = mav_arena_floats(lc->work, (size_t)B * d), *dq = mav_arena_floats(lc->work, (size_t)B * d);
    mav_linear_backward(dfin, mav_layer_g(lc, m->out_w), mav_layer_g(lc, m->out_b), dx0, m->fin,
                        mav_layer_w(lc, m->out_w), B, d, E);
    mav_layernorm_backward(dq, mav_layer_g(lc, m->lnf_w), mav_layer_g(lc, m->lnf_b), dfin, m->q, m->fin_mean,
                           m->fin_rstd, mav_layer_w(lc, m->lnf_w), B, d, lc->scratch);
    // only the query rows of the last block's output reach x0
    float *g = m->g0, *h = m->g1;
    memset(g, 0, (size_t)B * ld * sizeof(float));
    for (int b = 0; b < B; b++) memcpy(g + b * ld + (long)(L + 3) * d, dq + (long)b * d, (size_t)d * sizeof(float));
    mav_arena_release(lc->work, mark);
    for (int i = nl - 1; i >= 0; i--) {  // g: gradient of block i's output
        const float *in = i > 0 ? block_out(m, i - 1) : m->seq;
        mav_transformer_backward(&m->blocks[i], lc, h, g, in, m->mask);
        float *s = g; g = h; h = s;
    }
    // g: gradient of the first block's input. pos gets every row summed over the batch, query its row.
    float *dpos = mav_layer_g(lc, m->pos), *dquery = mav_layer_g(lc, m->query);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < ld; i++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) s += g[b * ld + i];
        dpos[i] += (float)s;
    }
    for (int k = 0; k < d; k++) {
        double s = 0.0;
        for (int b = 0; b < B; b++) s += g[b * ld + (long)(L + 3) * d + k];
        dquery[k] += (float)s;
    }
    float *dts = mav_arena_floats(lc->work, (size_t)B * d);
    mav_linear_backward_strided(NULL, mav_layer_g(lc, m->img_w), mav_layer_g(lc, m->img_b), g + (long)(L + 2) * d,
                                (int)ld, m->xe, E, mav_layer_w(lc, m->img_w), B, E, d);
    mav_linear_backward_strided(dts, mav_layer_g(lc, m->te2_w), mav_layer_g(lc, m->te2_b), g + (long)(L + 1) * d,
                                (int)ld, m->t_s, d, mav_layer_w(lc, m->te2_w), B, d, d);
    mav_act_backward(MAV_ACT_SILU, dts, dts, m->t_h, (long)B * d);
    mav_linear_backward(NULL, mav_layer_g(lc, m->te0_w), mav_layer_g(lc, m->te0_b), dts, m->t_in,
                        mav_layer_w(lc, m->te0_w), B, d, d);
    mav_linear_backward_strided(NULL, mav_layer_g(lc, m->emb_w), mav_layer_g(lc, m->emb_b), g + (long)L * d, (int)ld,
                                m->te, E, mav_layer_w(lc, m->emb_w), B, E, d);
    for (int b = 0; b < B; b++)
        mav_linear_backward(NULL, mav_layer_g(lc, m->tok_w), mav_layer_g(lc, m->tok_b), g + b * ld,
                            m->tt + (long)b * L * TW, mav_layer_w(lc, m->tok_w), L, TW, d);
    mav_arena_release(lc->work, mark);
}

void mav_prior_mask_from_tokens(uint8_t *mask, const int32_t *tokens, int B, int L) {
    for (int b = 0; b < B; b++) {
        const int32_t *row = tokens + (long)b * L;
        int eot = 0;
        for (int j = 1; j < L; j++)
            if (row[j] > row[eot]) eot = j;
        for (int j = 0; j < L; j++) mask[(long)b * L + j] = (uint8_t)(j <= eot);
    }
}

// ---- checkpoints ---------------------------------------------------------------------------

mav_status mav_prior_save(const mav_prior *m, const char *path, mav_dtype dtype, int nmeta, const char *const *keys,
                          const char *const *vals) {
    char *cfg = mav_prior_config_to_json(&m->cfg);
    mav_status st = mav_checkpoint_save(&m->params, path, "prior", cfg, dtype, nmeta, keys, vals);
    free(cfg);
    return st;
}

mav_status mav_prior_load_weights(mav_prior *m, const mav_st_file *f, const char *prefix) {
    return mav_checkpoint_load(&m->params, f, prefix, NULL, NULL, NULL);
}
