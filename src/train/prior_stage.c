// prior_stage.c — stage 1a: the diffusion prior with CLIP frozen (docs/TRAINING.md, PRIOR.md).
// Each batch: captions tokenised with the CLIP checkpoint's merges, CLIP's text tokens, text
// embedding and image embedding computed (inference plan), the key mask from the tokens, then
// mav_prior_train_step with the empty caption's encoding as the CFG null. Validation on the
// first n held-out pairs (CLIP encodings cached once: CLIP never changes): the x0 loss at fixed
// timesteps and noise, and the mean cosine of DDIM + CFG samples with the true image embeddings
// next to the baseline of using the normalised text embedding itself.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion/sampler.h"
#include "nets/clip.h"
#include "nets/prior.h"
#include "ops/loss.h"
#include "text/bpe.h"
#include "train/prior_train.h"
#include "train/stages.h"

static const float k_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float k_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct mav_prior_stage {
    mav_clip clip;
    mav_bpe *bpe;
    mav_prior net;
    mav_prior_trainer tr;
    char *config_json, *clip_path;
    int B, L, W, E, R, sample_steps;
    double cfg_scale;
    int32_t *tokens;           // [B, L]
    uint8_t *mask;             // [B, L]
    float *img, *tt, *te, *ie; // [B,3,R,R], [B,L,W], [B,E], [B,E]
    float *null_tt, *null_te;  // [L, W], [E]
    uint8_t *null_mask;        // [L]
    mav_prior_null null;
    // held-out cache
    int n_val;
    float *vtt, *vte, *vie;    // [n, L, W], [n, E], [n, E]
    uint8_t *vmask;            // [n, L]
    const char *keys[2], *vals[2];
};

static void normalise(float *out, const float *x, int B, int R) {
    size_t plane = (size_t)R * R;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++) {
            const float *src = x + ((size_t)b * 3 + c) * plane;
            float *dst = out + ((size_t)b * 3 + c) * plane;
            for (size_t i = 0; i < plane; i++) dst[i] = ((src[i] + 1.0f) * 0.5f - k_mean[c]) / k_std[c];
        }
}

// CLIP encodings of B captions (and images when img != NULL) into ps->tt/te/mask (/ie).
static mav_status encode(mav_prior_stage *ps, const char *const *captions, const float *img) {
    for (int b = 0; b < ps->B; b++) {
        mav_status st = mav_bpe_encode_context(ps->bpe, captions[b] ? captions[b] : "", ps->tokens + (size_t)b * ps->L,
                                               ps->L, NULL);
        if (st != MAV_OK) return st;
    }
    mav_prior_mask_from_tokens(ps->mask, ps->tokens, ps->B, ps->L);
    mav_status st = mav_clip_encode_text(&ps->clip, ps->te, ps->tt, ps->tokens);
    if (st != MAV_OK) return st;
    if (img) {
        normalise(ps->img, img, ps->B, ps->R);
        mav_clip_encode_image(&ps->clip, ps->ie, ps->img);
    }
    return MAV_OK;
}

static mav_status prior_step(void *ctx, const mav_batch *b, const mav_run_opts *o, long step, float lr, mav_rng *noise,
                             mav_run_step_out *out) {
    mav_prior_stage *ps = ctx;
    mav_status st = encode(ps, b->caption, b->x);
    if (st != MAV_OK) return st;
    ps->tr.adamw = (mav_adamw_cfg){(float)o->beta1, (float)o->beta2, (float)o->eps, (float)o->weight_decay};
    ps->tr.grad_clip = o->grad_clip;
    mav_prior_step_result r = mav_prior_train_step(&ps->tr, &ps->net, ps->tt, ps->te, ps->mask, ps->ie, &ps->null, noise,
                                                   step, lr);
    out->loss = r.loss;
    out->grad_norm = r.grad_norm;
    out->skipped = r.skipped;
    return MAV_OK;
}

static double cosine(const float *a, const float *b, int E) {
    double ab = 0, aa = 0, bb = 0;
    for (int k = 0; k < E; k++) { ab += (double)a[k] * b[k]; aa += (double)a[k] * a[k]; bb += (double)b[k] * b[k]; }
    return ab / fmax(sqrt(aa * bb), 1e-24);
}

static mav_status prior_validate(void *ctx, mav_dataset *val, int n, const mav_run_opts *o, double *val_loss,
                                 double *met) {
    mav_prior_stage *ps = ctx;
    int B = ps->B, L = ps->L, W = ps->W, E = ps->E;
    size_t isz = (size_t)3 * ps->R * ps->R;
    mav_status st = MAV_OK;
    if (ps->n_val != n) {  // first call: CLIP-encode the held-out pairs once
        free(ps->vtt); free(ps->vte); free(ps->vie); free(ps->vmask);
        ps->vtt = malloc((size_t)n * L * W * sizeof(float));
        ps->vte = malloc((size_t)n * E * sizeof(float));
        ps->vie = malloc((size_t)n * E * sizeof(float));
        ps->vmask = malloc((size_t)n * L);
        float *raw = malloc((size_t)B * isz * sizeof(float));
        const char **cap = malloc((size_t)B * sizeof *cap);
        if (!ps->vtt || !ps->vte || !ps->vie || !ps->vmask || !raw || !cap) st = mav_fail(MAV_ERR_NOMEM, "out of memory");
        for (int c0 = 0; st == MAV_OK && c0 < n; c0 += B) {
            int nb = n - c0 < B ? n - c0 : B;
            for (int j = 0; j < B && st == MAV_OK; j++) {
                int i = j < nb ? c0 + j : c0;  // padding rows repeat the chunk's first item
                cap[j] = mav_dataset_caption(val, i);
                st = mav_run_read_image(val, i, ps->R, raw + j * isz);
            }
            if (st == MAV_OK) st = encode(ps, cap, raw);
            if (st != MAV_OK) break;
            memcpy(ps->vtt + (size_t)c0 * L * W, ps->tt, (size_t)nb * L * W * sizeof(float));
            memcpy(ps->vte + (size_t)c0 * E, ps->te, (size_t)nb * E * sizeof(float));
            memcpy(ps->vie + (size_t)c0 * E, ps->ie, (size_t)nb * E * sizeof(float));
            memcpy(ps->vmask + (size_t)c0 * L, ps->mask, (size_t)nb * L);
        }
        free(raw);
        free(cap);
        if (st != MAV_OK) return st;
        ps->n_val = n;
    }
    // Fixed timesteps and noise for every validation (comparable across steps): their own stream.
    mav_rng vr = mav_rng_fork(o->seed, 77);
    float *x0 = malloc((size_t)B * E * sizeof(float)), *eps = malloc((size_t)B * E * sizeof(float)),
          *xt = malloc((size_t)B * E * sizeof(float)), *pred = malloc((size_t)B * E * sizeof(float)),
          *emb = malloc((size_t)B * E * sizeof(float)), *tf = malloc((size_t)B * sizeof(float));
    int *t = malloc((size_t)B * sizeof(int));
    double loss_sum = 0, cos_s = 0, cos_b = 0;
    if (!x0 || !eps || !xt || !pred || !emb || !tf || !t) st = mav_fail(MAV_ERR_NOMEM, "out of memory");
    for (int c0 = 0; st == MAV_OK && c0 < n; c0 += B) {
        int nb = n - c0 < B ? n - c0 : B;
        for (int j = 0; j < B; j++) {
            int i = j < nb ? c0 + j : c0;
            memcpy(ps->tt + (size_t)j * L * W, ps->vtt + (size_t)i * L * W, (size_t)L * W * sizeof(float));
            memcpy(ps->te + (size_t)j * E, ps->vte + (size_t)i * E, (size_t)E * sizeof(float));
            memcpy(ps->ie + (size_t)j * E, ps->vie + (size_t)i * E, (size_t)E * sizeof(float));
            memcpy(ps->mask + (size_t)j * L, ps->vmask + (size_t)i * L, (size_t)L);
        }
        // loss: x0 prediction MSE at fixed t, eps (training plan: the trainer's)
        mav_prior_normalize(x0, ps->ie, B, E, sqrt((double)E));
        for (int j = 0; j < B; j++) {
            t[j] = (int)mav_rng_below(&vr, (uint32_t)ps->tr.sched.T);
            tf[j] = (float)t[j];
        }
        mav_rng_normal(&vr, eps, (size_t)B * E);
        mav_diffusion_q_sample(&ps->tr.sched, xt, x0, eps, t, B, (size_t)E);
        mav_prior_forward(&ps->net, pred, ps->tt, ps->te, xt, tf, ps->mask);
        loss_sum += nb * mav_mse_forward(pred, x0, (long)nb * E);
        // samples: DDIM with CFG from a fixed stream
        mav_prior_denoiser d;
        st = mav_prior_denoiser_init(&d, &ps->net, B, ps->tt, ps->te, ps->mask, &ps->null, ps->cfg_scale);
        if (st != MAV_OK) break;
        mav_sampler_params sp = mav_sampler_default_params(MAV_SAMPLER_DDIM);
        sp.steps = ps->sample_steps;
        mav_rng srng = mav_rng_fork(o->seed, 78 + (uint64_t)c0);
        st = mav_prior_sample(&d, &ps->tr.sched, sp, emb, &srng);
        mav_prior_denoiser_free(&d);
        if (st == MAV_OK) st = mav_prior_plan(&ps->net, B, 1);  // back to the training plan
        if (st != MAV_OK) break;
        for (int j = 0; j < nb; j++) {
            cos_s += cosine(emb + (size_t)j * E, ps->ie + (size_t)j * E, E);
            cos_b += cosine(ps->te + (size_t)j * E, ps->ie + (size_t)j * E, E);
        }
    }
    free(x0); free(eps); free(xt); free(pred); free(emb); free(tf); free(t);
    if (st != MAV_OK) return st;
    *val_loss = loss_sum / n;
    met[0] = cos_s / n;
    met[1] = cos_b / n;
    return MAV_OK;
}

static mav_status prior_export(void *ctx, const char *path, const float *values) {
    mav_prior_stage *ps = ctx;
    float *keep = ps->net.params.value;
    ps->net.params.value = (float *)values;
    const char *k[1] = {"mav.clip"}, *v[1] = {ps->clip_path};
    mav_status st = mav_prior_save(&ps->net, path, MAV_F32, 1, k, v);
    ps->net.params.value = keep;
    return st;
}

void mav_prior_stage_free(mav_prior_stage *ps) {
    if (!ps) return;
    mav_clip_free(&ps->clip);
    mav_bpe_free(ps->bpe);
    mav_prior_trainer_free(&ps->tr);
    mav_prior_free(&ps->net);
    free(ps->config_json); free(ps->clip_path);
    free(ps->tokens); free(ps->mask); free(ps->img); free(ps->tt); free(ps->te); free(ps->ie);
    free(ps->null_tt); free(ps->null_te); free(ps->null_mask);
    free(ps->vtt); free(ps->vte); free(ps->vie); free(ps->vmask);
    free(ps);
}

static mav_status parse_config(mav_prior_config *c, const char *config) {
    if (!config) config = "tiny";
    if (config[0] == '{') return mav_prior_config_from_json(c, config);
    for (const char *const *n = mav_prior_config_names(); *n; n++)
        if (strcmp(*n, config) == 0) return mav_prior_config_named(c, config);
    char *text;
    mav_status st = mav_read_text_file(config, &text, NULL);
    if (st != MAV_OK) return mav_fail(st, "prior config \"%s\" is no named config (tiny, vit-b-32), JSON, or readable file", config);
    st = mav_prior_config_from_json(c, text);
    free(text);
    return st;
}

// CLIP from its checkpoint (frozen, inference plan for B) and its tokenizer.
static mav_status load_clip(mav_prior_stage *ps, const char *path, const char *merges_path, int B) {
    mav_st_file f;
    mav_status st = mav_st_open(&f, path);
    if (st != MAV_OK) return st;
    mav_clip_config c;
    st = mav_clip_read_config(&f, &c);
    if (st == MAV_OK) st = mav_clip_create(&ps->clip, &c);
    if (st == MAV_OK) st = mav_clip_alloc_params(&ps->clip, 0);
    if (st == MAV_OK) st = mav_clip_load_weights(&ps->clip, &f, "");
    if (st == MAV_OK) {
        const char *bpe = mav_st_meta(&f, "mav.bpe");
        if (merges_path) st = mav_bpe_load(&ps->bpe, merges_path);
        else if (bpe) st = mav_bpe_load_text(&ps->bpe, bpe, strlen(bpe), path);
        else st = mav_fail(MAV_ERR_ARG, "%s has no mav.bpe (not made by mav train clip): give --merges FILE", path);
    }
    mav_st_close(&f);
    if (st != MAV_OK) return st;
    if (mav_bpe_vocab_size(ps->bpe) > c.vocab_size)
        return mav_fail(MAV_ERR_ARG, "the tokenizer has %d ids but CLIP's vocabulary only %d", mav_bpe_vocab_size(ps->bpe),
                        c.vocab_size);
    return mav_clip_plan(&ps->clip, B, B, 0);
}

mav_status mav_prior_stage_create(mav_prior_stage **out, mav_stage *s, const char *clip_path, const char *merges_path,
                                  const char *config, int batch, uint64_t seed, double cfg_scale, int sample_steps) {
    *out = NULL;
    mav_prior_stage *ps = calloc(1, sizeof *ps);
    if (!ps) return mav_fail(MAV_ERR_NOMEM, "out of memory");
    mav_prior_trainer_init(&ps->tr);
    mav_status st = load_clip(ps, clip_path, merges_path, batch);
    mav_prior_config c;
    if (st == MAV_OK) st = parse_config(&c, config);
    if (st != MAV_OK) { mav_prior_stage_free(ps); return st; }
    const mav_clip_config *cc = &ps->clip.cfg;
    c.text_width = cc->transformer_width;  // the prior pairs with this CLIP
    c.emb_dim = cc->embed_dim;
    c.text_ctx = cc->context_length;
    if ((st = mav_prior_config_check(&c)) != MAV_OK || (st = mav_prior_create(&ps->net, &c)) != MAV_OK ||
        (st = mav_prior_alloc_params(&ps->net, 1)) != MAV_OK) {
        mav_prior_stage_free(ps);
        return st;
    }
    mav_prior_init_params(&ps->net, seed);
    if ((st = mav_prior_trainer_plan(&ps->tr, &ps->net, batch)) != MAV_OK) { mav_prior_stage_free(ps); return st; }
    ps->B = batch; ps->L = c.text_ctx; ps->W = c.text_width; ps->E = c.emb_dim; ps->R = cc->image_resolution;
    ps->cfg_scale = cfg_scale;
    ps->sample_steps = sample_steps;
    size_t B = (size_t)batch, L = (size_t)ps->L, W = (size_t)ps->W, E = (size_t)ps->E;
    ps->config_json = mav_prior_config_to_json(&c);
    ps->clip_path = strdup(clip_path);
    ps->tokens = malloc(B * L * sizeof(int32_t));
    ps->mask = malloc(B * L);
    ps->img = malloc(B * 3 * ps->R * ps->R * sizeof(float));
    ps->tt = malloc(B * L * W * sizeof(float));
    ps->te = malloc(B * E * sizeof(float));
    ps->ie = malloc(B * E * sizeof(float));
    ps->null_tt = malloc(L * W * sizeof(float));
    ps->null_te = malloc(E * sizeof(float));
    ps->null_mask = malloc(L);
    if (!ps->config_json || !ps->clip_path || !ps->tokens || !ps->mask || !ps->img || !ps->tt || !ps->te || !ps->ie ||
        !ps->null_tt || !ps->null_te || !ps->null_mask) {
        mav_prior_stage_free(ps);
        return mav_fail(MAV_ERR_NOMEM, "prior stage: out of memory");
    }
    // The CFG null: CLIP's encoding of the empty caption (row 0 of a batch of "").
    const char **empty = calloc(B, sizeof *empty);
    if (!empty) { mav_prior_stage_free(ps); return mav_fail(MAV_ERR_NOMEM, "out of memory"); }
    st = encode(ps, empty, NULL);
    free(empty);
    if (st != MAV_OK) { mav_prior_stage_free(ps); return st; }
    memcpy(ps->null_tt, ps->tt, L * W * sizeof(float));
    memcpy(ps->null_te, ps->te, E * sizeof(float));
    memcpy(ps->null_mask, ps->mask, L);
    ps->null = (mav_prior_null){.text_tokens = ps->null_tt, .text_emb = ps->null_te, .mask = ps->null_mask};
    ps->keys[0] = "mav.config"; ps->vals[0] = ps->config_json;
    ps->keys[1] = "mav.clip"; ps->vals[1] = ps->clip_path;
    *s = (mav_stage){.name = "prior", .ctx = ps, .params = &ps->net.params, .res = ps->R, .step = prior_step,
                     .validate = prior_validate, .metric_names = "cos_prior,cos_text_baseline",
                     .export_model = prior_export, .nmeta = 2, .meta_keys = ps->keys, .meta_vals = ps->vals};
    *out = ps;
    return MAV_OK;
}
