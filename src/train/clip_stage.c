// clip_stage.c — stage 0: CLIP's contrastive training of both towers (docs/TRAINING.md).
// Captions are tokenised with the run's BPE merges; images from the loader ([-1, 1]) are
// mapped to [0, 1] and normalised with CLIP's mean/std (SPEC §4). After every AdamW update
// logit_scale is clamped to [0, ln 100] (CLIP's rule). Validation: contrastive loss over the
// held-out items in chunks of the batch, and image↔text retrieval top-1/top-5 over all of them.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "nets/clip.h"
#include "ops/loss.h"
#include "optim/adamw.h"
#include "optim/clip_grad.h"
#include "text/bpe.h"
#include "train/stages.h"

static const float k_mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float k_std[3] = {0.26862954f, 0.26130258f, 0.27577711f};

struct mav_clip_stage {
    mav_clip net;
    mav_bpe *bpe;
    char *bpe_text, *config_json;
    int B, D, ctx, R;
    int32_t *tokens;                 // [B, ctx]
    float *img;                      // [B, 3, R, R] normalised
    float *temb, *iemb, *dt, *di;    // [B, D]
    float *saved, *scratch;          // contrastive loss state / scratch
    // held-out cache (first validation)
    int n_val;
    int32_t *vtok;                   // [n, ctx]
    float *vimg;                     // [n, 3, R, R] normalised
    float *vt, *vi;                  // [n, D] embeddings
    const char *keys[2], *vals[2];
};

mav_status mav_read_text_file(const char *path, char **text, size_t *len) {
    gzFile g = gzopen(path, "rb");
    if (!g) return mav_fail(MAV_ERR_IO, "cannot open %s", path);
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    int k;
    while (buf && (k = gzread(g, buf + n, (unsigned)(cap - n - 1))) > 0) {
        n += (size_t)k;
        if (cap - n < 2) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) { free(buf); buf = NULL; break; }
            buf = nb;
            cap *= 2;
        }
    }
    int err = 0;
    const char *msg = gzerror(g, &err);
    mav_status st = MAV_OK;
    if (!buf) st = mav_fail(MAV_ERR_NOMEM, "out of memory reading %s", path);
    else if (err < 0) st = mav_fail(MAV_ERR_IO, "%s: %s", path, msg);
    gzclose(g);
    if (st != MAV_OK) { free(buf); return st; }
    buf[n] = 0;
    *text = buf;
    if (len) *len = n;
    return MAV_OK;
}

// Loader pixels [-1, 1] -> CLIP input: (x + 1)/2 then (v - mean[c]) / std[c].
static void normalise(float *out, const float *x, int B, int R) {
    size_t plane = (size_t)R * R;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < 3; c++) {
            const float *src = x + ((size_t)b * 3 + c) * plane;
            float *dst = out + ((size_t)b * 3 + c) * plane;
            for (size_t i = 0; i < plane; i++) dst[i] = ((src[i] + 1.0f) * 0.5f - k_mean[c]) / k_std[c];
        }
}

static mav_status tokenize(mav_clip_stage *cs, int32_t *ids, const char *caption) {
    return mav_bpe_encode_context(cs->bpe, caption ? caption : "", ids, cs->ctx, NULL);
}

static void clamp_logit_scale(mav_clip *m) {
    float *ls = mav_clip_logit_scale(m);
    const float hi = logf(100.0f);
    if (*ls > hi) *ls = hi;
    if (*ls < 0.0f) *ls = 0.0f;
}

static mav_status clip_step(void *ctx, const mav_batch *b, const mav_run_opts *o, long step, float lr, mav_rng *noise,
                            mav_run_step_out *out) {
    (void)noise;  // CLIP training draws no noise (no dropout in CLIP)
    mav_clip_stage *cs = ctx;
    int B = cs->B, D = cs->D;
    for (int i = 0; i < B; i++) {
        mav_status st = tokenize(cs, cs->tokens + (size_t)i * cs->ctx, b->caption[i]);
        if (st != MAV_OK) return st;
    }
    normalise(cs->img, b->x, B, cs->R);
    mav_params *p = &cs->net.params;
    mav_params_zero_grad(p);
    mav_status st = mav_clip_encode_text(&cs->net, cs->temb, NULL, cs->tokens);
    if (st != MAV_OK) return st;
    mav_clip_encode_image(&cs->net, cs->iemb, cs->img);
    float ls = *mav_clip_logit_scale(&cs->net);
    double loss = mav_clip_loss_forward(cs->saved, NULL, cs->iemb, cs->temb, ls, B, D);
    mav_clip_loss_backward(cs->di, cs->dt, mav_clip_logit_scale_grad(&cs->net), 1.0f, cs->saved, ls, B, D, cs->scratch);
    mav_clip_backward_text(&cs->net, cs->dt, NULL);
    mav_clip_backward_image(&cs->net, cs->di);
    double gn = o->grad_clip > 0 ? mav_clip_grad_norm(p, o->grad_clip) : mav_grad_norm(p->grad, p->total);
    out->loss = loss;
    out->grad_norm = gn;
    out->skipped = !isfinite(loss) || !isfinite(gn);
    if (out->skipped) return MAV_OK;
    mav_adamw_cfg ac = {(float)o->beta1, (float)o->beta2, (float)o->eps, (float)o->weight_decay};
    mav_adamw_step(p, &ac, step, lr);
    clamp_logit_scale(&cs->net);
    return MAV_OK;
}

// Encode the cached held-out items [0, n) in chunks of B (the last chunk padded by repeating
// item 0; padded rows are dropped), accumulating the contrastive loss of each chunk's real rows.
static double encode_val(mav_clip_stage *cs, mav_status *st) {
    int B = cs->B, D = cs->D, n = cs->n_val;
    size_t isz = (size_t)3 * cs->R * cs->R;
    double loss_sum = 0;
    *st = MAV_OK;
    for (int c0 = 0; c0 < n; c0 += B) {
        int nb = n - c0 < B ? n - c0 : B;
        for (int j = 0; j < B; j++) {
            int i = j < nb ? c0 + j : 0;
            memcpy(cs->tokens + (size_t)j * cs->ctx, cs->vtok + (size_t)i * cs->ctx, (size_t)cs->ctx * sizeof(int32_t));
            memcpy(cs->img + j * isz, cs->vimg + i * isz, isz * sizeof(float));
        }
        if ((*st = mav_clip_encode_text(&cs->net, cs->temb, NULL, cs->tokens)) != MAV_OK) return NAN;
        mav_clip_encode_image(&cs->net, cs->iemb, cs->img);
        loss_sum += nb * mav_clip_loss_forward(cs->saved, NULL, cs->iemb, cs->temb, *mav_clip_logit_scale(&cs->net), nb, D);
        memcpy(cs->vt + (size_t)c0 * D, cs->temb, (size_t)nb * D * sizeof(float));
        memcpy(cs->vi + (size_t)c0 * D, cs->iemb, (size_t)nb * D * sizeof(float));
    }
    return loss_sum / n;
}

static void unit_rows(float *x, int n, int D) {
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < D; k++) s += (double)x[(size_t)i * D + k] * x[(size_t)i * D + k];
        double r = 1.0 / fmax(sqrt(s), 1e-12);
        for (int k = 0; k < D; k++) x[(size_t)i * D + k] = (float)(x[(size_t)i * D + k] * r);
    }
}

// Rank of the true match of query i among all n candidates: candidates scoring higher, plus
// those scoring equal with a lower index (ties go to the lowest index, as argmax).
static int rank_of(const float *q, const float *cand, int n, int D, int i) {
    double own = 0;
    for (int k = 0; k < D; k++) own += (double)q[k] * cand[(size_t)i * D + k];
    int r = 0;
    for (int j = 0; j < n; j++) {
        if (j == i) continue;
        double s = 0;
        for (int k = 0; k < D; k++) s += (double)q[k] * cand[(size_t)j * D + k];
        if (s > own || (s == own && j < i)) r++;
    }
    return r;
}

static mav_status clip_validate(void *ctx, mav_dataset *val, int n, const mav_run_opts *o, double *val_loss,
                                double *met) {
    (void)o;
    mav_clip_stage *cs = ctx;
    size_t isz = (size_t)3 * cs->R * cs->R;
    if (cs->n_val != n) {  // first call: read, tokenise and normalise the held-out items once
        free(cs->vtok); free(cs->vimg); free(cs->vt); free(cs->vi);
        cs->n_val = n;
        cs->vtok = malloc((size_t)n * cs->ctx * sizeof(int32_t));
        cs->vimg = malloc((size_t)n * isz * sizeof(float));
        cs->vt = malloc((size_t)n * cs->D * sizeof(float));
        cs->vi = malloc((size_t)n * cs->D * sizeof(float));
        float *raw = malloc(isz * sizeof(float));
        if (!cs->vtok || !cs->vimg || !cs->vt || !cs->vi || !raw) {
            free(raw);
            cs->n_val = 0;
            return mav_fail(MAV_ERR_NOMEM, "out of memory (held-out set of %d items)", n);
        }
        for (int i = 0; i < n; i++) {
            mav_status st = mav_run_read_image(val, i, cs->R, raw);
            if (st == MAV_OK) st = tokenize(cs, cs->vtok + (size_t)i * cs->ctx, mav_dataset_caption(val, i));
            if (st != MAV_OK) { free(raw); cs->n_val = 0; return st; }
            normalise(cs->vimg + i * isz, raw, 1, cs->R);
        }
        free(raw);
    }
    mav_status st;
    *val_loss = encode_val(cs, &st);
    if (st != MAV_OK) return st;
    unit_rows(cs->vt, n, cs->D);
    unit_rows(cs->vi, n, cs->D);
    int hit[4] = {0};
    for (int i = 0; i < n; i++) {
        int ri = rank_of(cs->vi + (size_t)i * cs->D, cs->vt, n, cs->D, i);  // image -> texts
        int rt = rank_of(cs->vt + (size_t)i * cs->D, cs->vi, n, cs->D, i);  // text -> images
        hit[0] += ri < 1; hit[1] += ri < 5; hit[2] += rt < 1; hit[3] += rt < 5;
    }
    for (int k = 0; k < 4; k++) met[k] = (double)hit[k] / n;
    return MAV_OK;
}

static mav_status clip_export(void *ctx, const char *path, const float *values) {
    mav_clip_stage *cs = ctx;
    float *keep = cs->net.params.value;
    cs->net.params.value = (float *)values;  // same layout: save these values instead
    const char *k[1] = {"mav.bpe"}, *v[1] = {cs->bpe_text};
    mav_status st = mav_clip_save(&cs->net, path, MAV_F32, 1, k, v);
    cs->net.params.value = keep;
    return st;
}

static mav_status parse_config(mav_clip_config *c, const char *config) {
    if (config[0] == '{') return mav_clip_config_from_json(c, config);
    for (const char *const *n = mav_clip_config_names(); *n; n++)
        if (strcmp(*n, config) == 0) return mav_clip_config_named(c, config);
    char *text;
    mav_status st = mav_read_text_file(config, &text, NULL);
    if (st != MAV_OK) return mav_fail(st, "clip config \"%s\" is no named config (tiny, vit-b-32), JSON, or readable file", config);
    st = mav_clip_config_from_json(c, text);
    free(text);
    return st;
}

void mav_clip_stage_free(mav_clip_stage *cs) {
    if (!cs) return;
    mav_clip_free(&cs->net);
    mav_bpe_free(cs->bpe);
    free(cs->bpe_text); free(cs->config_json);
    free(cs->tokens); free(cs->img); free(cs->temb); free(cs->iemb); free(cs->dt); free(cs->di);
    free(cs->saved); free(cs->scratch);
    free(cs->vtok); free(cs->vimg); free(cs->vt); free(cs->vi);
    free(cs);
}

mav_status mav_clip_stage_create(mav_clip_stage **out, mav_stage *s, const char *config, const char *bpe_text,
                                 size_t bpe_len, int res, int batch, uint64_t seed) {
    *out = NULL;
    mav_clip_stage *cs = calloc(1, sizeof *cs);
    if (!cs) return mav_fail(MAV_ERR_NOMEM, "out of memory");
    mav_clip_config c;
    mav_status st = parse_config(&c, config);
    if (st == MAV_OK) st = mav_bpe_load_text(&cs->bpe, bpe_text, bpe_len, "merges");
    if (st != MAV_OK) { mav_clip_stage_free(cs); return st; }
    cs->bpe_text = malloc(bpe_len + 1);
    if (!cs->bpe_text) { mav_clip_stage_free(cs); return mav_fail(MAV_ERR_NOMEM, "out of memory"); }
    memcpy(cs->bpe_text, bpe_text, bpe_len);
    cs->bpe_text[bpe_len] = 0;
    int vocab = mav_bpe_vocab_size(cs->bpe);
    if (c.vocab_size != vocab) {
        fprintf(stderr, "clip: vocab_size %d -> %d (the tokenizer's)\n", c.vocab_size, vocab);
        c.vocab_size = vocab;
    }
    if (res > 0) c.image_resolution = res;
    if ((st = mav_clip_config_check(&c)) != MAV_OK || (st = mav_clip_create(&cs->net, &c)) != MAV_OK ||
        (st = mav_clip_alloc_params(&cs->net, 1)) != MAV_OK) {
        mav_clip_stage_free(cs);
        return st;
    }
    mav_clip_init_params(&cs->net, seed);
    if ((st = mav_clip_plan(&cs->net, batch, batch, 1)) != MAV_OK) { mav_clip_stage_free(cs); return st; }
    cs->config_json = mav_clip_config_to_json(&c);
    cs->B = batch;
    cs->D = c.embed_dim;
    cs->ctx = c.context_length;
    cs->R = c.image_resolution;
    size_t bd = (size_t)batch * c.embed_dim;
    cs->tokens = malloc((size_t)batch * cs->ctx * sizeof(int32_t));
    cs->img = malloc((size_t)batch * 3 * cs->R * cs->R * sizeof(float));
    cs->temb = malloc(bd * sizeof(float));
    cs->iemb = malloc(bd * sizeof(float));
    cs->dt = malloc(bd * sizeof(float));
    cs->di = malloc(bd * sizeof(float));
    cs->saved = malloc((size_t)mav_clip_loss_saved_floats(batch, cs->D) * sizeof(float));
    cs->scratch = malloc((size_t)mav_clip_loss_scratch_floats(batch) * sizeof(float));
    if (!cs->config_json || !cs->tokens || !cs->img || !cs->temb || !cs->iemb || !cs->dt || !cs->di || !cs->saved ||
        !cs->scratch) {
        mav_clip_stage_free(cs);
        return mav_fail(MAV_ERR_NOMEM, "clip stage: out of memory");
    }
    cs->keys[0] = "mav.config"; cs->vals[0] = cs->config_json;
    cs->keys[1] = "mav.bpe"; cs->vals[1] = cs->bpe_text;
    *s = (mav_stage){.name = "clip", .ctx = cs, .params = &cs->net.params, .res = cs->R, .step = clip_step,
                     .validate = clip_validate, .metric_names = "i2t_top1,i2t_top5,t2i_top1,t2i_top5",
                     .export_model = clip_export, .nmeta = 2, .meta_keys = cs->keys, .meta_vals = cs->vals};
    *out = cs;
    return MAV_OK;
}
