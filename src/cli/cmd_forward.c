// cmd_forward.c — `mav forward MODEL INPUTS OUT`: run one network on named input tensors
// from a safetensors file and write its outputs (SPEC §9), for debugging and for checking
// mav against other implementations of SPEC.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/safetensors.h"
#include "nets/clip.h"
#include "nets/prior.h"
#include "nets/unet.h"

const cli_opt forward_opts[] = {CLI_OPT_END};

// Read input `name` as f32 with the given shape; `required` 0 returns NULL when absent.
static float *read_input(const mav_st_file *f, const char *name, int ndim, const int64_t *shape, int required,
                         mav_status *st) {
    const mav_st_tensor *t = mav_st_find(f, name);
    if (!t) {
        if (required) *st = mav_fail(MAV_ERR_SHAPE, "%s: input \"%s\" is missing", f->path, name);
        return NULL;
    }
    if (t->dtype == MAV_BOOL) { *st = mav_fail(MAV_ERR_FORMAT, "%s: input \"%s\" must be numeric, not BOOL", f->path, name); return NULL; }
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) { *st = mav_fail(MAV_ERR_NOMEM, "input \"%s\": out of memory", name); return NULL; }
    *st = mav_st_read_f32(f, name, ndim, shape, x);
    if (*st != MAV_OK) { free(x); return NULL; }
    for (size_t i = 0; i < n; i++)
        if (x[i] != x[i] || x[i] - x[i] != 0.0f) {
            *st = mav_fail(MAV_ERR_FORMAT, "%s: input \"%s\" holds a non-finite value at element %zu", f->path, name, i);
            free(x);
            return NULL;
        }
    return x;
}

static int forward_unet(const mav_st_file *mf, const mav_st_file *inf, const char *out_path) {
    mav_unet_config c;
    if (mav_unet_read_config(mf, &c) != MAV_OK) return cli_fail("forward");
    mav_unet *net = calloc(1, sizeof *net);
    float *x = NULL, *xf = NULL, *t = NULL, *e = NULL, *fps = NULL, *aug = NULL, *eps = NULL, *epsf = NULL;
    int rc = 1;
    mav_status st = MAV_OK;
    if (!net || mav_unet_create(net, &c) != MAV_OK || mav_unet_alloc_params(net, 0) != MAV_OK ||
        mav_unet_load_weights(net, mf) != MAV_OK) {
        rc = cli_fail("forward");
        goto done;
    }
    const mav_st_tensor *xt = mav_st_find(inf, "x");
    if (!xt) { fprintf(stderr, "mav forward: %s: input \"x\" [B, %d, F, H, W] is missing\n", inf->path, c.in_ch); goto done; }
    if (xt->ndim != 5 || xt->shape[1] != c.in_ch) {
        char sb[96];
        fprintf(stderr, "mav forward: %s: input \"x\" has shape %s, expected [B, %d, F, H, W]\n", inf->path,
                mav_shape_str(sb, sizeof sb, xt->ndim, xt->shape), c.in_ch);
        goto done;
    }
    int B = (int)xt->shape[0], F = (int)xt->shape[2], H = (int)xt->shape[3], W = (int)xt->shape[4];
    if (B < 1 || F < 1 || H < 1 || W < 1 || (int64_t)B * F * H * W > (1LL << 31)) {
        fprintf(stderr, "mav forward: %s: input \"x\" has an empty or oversized shape\n", inf->path);
        goto done;
    }
    int64_t sb1[1] = {B}, se[2] = {B, c.emb_dim};
    if (!(x = read_input(inf, "x", 5, xt->shape, 1, &st)) || !(t = read_input(inf, "t", 1, sb1, 1, &st))) goto fail;
    if (c.emb_dim > 0 && !(e = read_input(inf, "e", 2, se, 0, &st)) && st != MAV_OK) goto fail;
    if (c.cond_fps && !(fps = read_input(inf, "fps", 1, sb1, 1, &st))) goto fail;
    if (c.cond_aug && !(aug = read_input(inf, "aug", 1, sb1, 1, &st))) goto fail;
    for (int i = 0; i < inf->ntensors; i++) {
        const char *n = inf->tensors[i].name;
        int known = !strcmp(n, "x") || !strcmp(n, "t") || (!strcmp(n, "e") && c.emb_dim > 0) ||
                    (!strcmp(n, "fps") && c.cond_fps) || (!strcmp(n, "aug") && c.cond_aug);
        if (!known) { st = mav_fail(MAV_ERR_SHAPE, "%s: input \"%s\" is not used by this network", inf->path, n); goto fail; }
    }
    if ((st = mav_unet_plan(net, B, F, H, W, 0)) != MAV_OK) goto fail;
    long P = (long)H * W;
    size_t nx = (size_t)B * F * c.in_ch * P, ne = (size_t)B * F * c.out_ch * P;
    xf = malloc(nx * sizeof *xf);
    eps = malloc(ne * sizeof *eps);
    epsf = malloc(ne * sizeof *epsf);
    if (!xf || !eps || !epsf) { st = mav_fail(MAV_ERR_NOMEM, "out of memory"); goto fail; }
    mav_video_to_frames_major(xf, x, B, c.in_ch, F, P);
    mav_unet_forward(net, epsf, xf, t, e, fps, aug);
    mav_video_from_frames_major(eps, epsf, B, c.out_ch, F, P);
    mav_st_writer w;
    mav_st_writer_init(&w);
    int64_t so[5] = {B, c.out_ch, F, H, W};
    mav_st_writer_add_f32(&w, "eps", 5, so, eps, MAV_F32);
    st = mav_st_writer_save(&w, out_path);
    mav_st_writer_free(&w);
    if (st != MAV_OK) goto fail;
    rc = 0;
    goto done;
fail:
    rc = cli_fail("forward");
done:
    free(x); free(xf); free(t); free(e); free(fps); free(aug); free(eps); free(epsf);
    if (net) mav_unet_free(net);
    free(net);
    return rc;
}

// CLIP (SPEC §9): tokens [B, ctx] (I32/I64) -> text_emb, text_tokens; image [B, 3, R, R]
// (already normalised) -> image_emb. Either or both inputs.
static int forward_clip(const mav_st_file *mf, const mav_st_file *inf, const char *out_path) {
    mav_clip_config c;
    mav_status st = mav_clip_read_config(mf, &c);
    if (st != MAV_OK) return cli_fail("forward");
    mav_clip *net = calloc(1, sizeof *net);
    int32_t *ids = NULL;
    float *image = NULL, *text_emb = NULL, *text_tokens = NULL, *image_emb = NULL;
    int rc = 1, Bt = 0, Bi = 0;
    if (!net || (st = mav_clip_create(net, &c)) != MAV_OK || (st = mav_clip_alloc_params(net, 0)) != MAV_OK ||
        (st = mav_clip_load_weights(net, mf, "")) != MAV_OK)
        goto fail;
    const mav_st_tensor *tt = mav_st_find(inf, "tokens"), *it = mav_st_find(inf, "image");
    if (!tt && !it) { st = mav_fail(MAV_ERR_SHAPE, "%s: needs input \"tokens\" [B, %d] and/or \"image\" [B, 3, %d, %d]", inf->path, c.context_length, c.image_resolution, c.image_resolution); goto fail; }
    for (int i = 0; i < inf->ntensors; i++)
        if (strcmp(inf->tensors[i].name, "tokens") && strcmp(inf->tensors[i].name, "image")) {
            st = mav_fail(MAV_ERR_SHAPE, "%s: input \"%s\" is not used by a clip model", inf->path, inf->tensors[i].name);
            goto fail;
        }
    if (tt) {
        if (tt->ndim != 2 || tt->shape[1] != c.context_length || tt->shape[0] < 1 || tt->shape[0] > 65536 ||
            (tt->dtype != MAV_I32 && tt->dtype != MAV_I64)) {
            char sb[96];
            st = mav_fail(MAV_ERR_SHAPE, "%s: input \"tokens\" is %s %s, expected I32 or I64 [B, %d]", inf->path,
                          mav_dtype_name(tt->dtype), mav_shape_str(sb, sizeof sb, tt->ndim, tt->shape), c.context_length);
            goto fail;
        }
        Bt = (int)tt->shape[0];
        ids = malloc(tt->numel * sizeof *ids);
        for (size_t k = 0; k < tt->numel; k++) {
            int64_t v;
            if (tt->dtype == MAV_I32) { int32_t w; memcpy(&w, (const char *)tt->data + 4 * k, 4); v = w; }
            else memcpy(&v, (const char *)tt->data + 8 * k, 8);
            if (v < 0 || v >= c.vocab_size) {
                st = mav_fail(MAV_ERR_ARG, "%s: tokens[%zu][%zu] = %lld is outside the vocabulary [0, %d)", inf->path,
                              k / (size_t)c.context_length, k % (size_t)c.context_length, (long long)v, c.vocab_size);
                goto fail;
            }
            ids[k] = (int32_t)v;
        }
    }
    if (it) {
        int R = c.image_resolution;
        if (it->ndim != 4 || it->shape[1] != 3 || it->shape[2] != R || it->shape[3] != R || it->shape[0] < 1 ||
            it->shape[0] > 65536) {
            char sb[96];
            st = mav_fail(MAV_ERR_SHAPE, "%s: input \"image\" has shape %s, expected [B, 3, %d, %d]", inf->path,
                          mav_shape_str(sb, sizeof sb, it->ndim, it->shape), R, R);
            goto fail;
        }
        Bi = (int)it->shape[0];
        if (!(image = read_input(inf, "image", 4, it->shape, 1, &st))) goto fail;
    }
    if ((st = mav_clip_plan(net, Bt, Bi, 0)) != MAV_OK) goto fail;
    mav_st_writer w;
    mav_st_writer_init(&w);
    if (Bt) {
        text_emb = malloc((size_t)Bt * c.embed_dim * sizeof(float));
        text_tokens = malloc((size_t)Bt * c.context_length * c.transformer_width * sizeof(float));
        if ((st = mav_clip_encode_text(net, text_emb, text_tokens, ids)) != MAV_OK) { mav_st_writer_free(&w); goto fail; }
        int64_t s1[2] = {Bt, c.embed_dim}, s2[3] = {Bt, c.context_length, c.transformer_width};
        mav_st_writer_add_f32(&w, "text_emb", 2, s1, text_emb, MAV_F32);
        mav_st_writer_add_f32(&w, "text_tokens", 3, s2, text_tokens, MAV_F32);
    }
    if (Bi) {
        image_emb = malloc((size_t)Bi * c.embed_dim * sizeof(float));
        mav_clip_encode_image(net, image_emb, image);
        int64_t s3[2] = {Bi, c.embed_dim};
        mav_st_writer_add_f32(&w, "image_emb", 2, s3, image_emb, MAV_F32);
    }
    st = mav_st_writer_save(&w, out_path);
    mav_st_writer_free(&w);
    if (st != MAV_OK) goto fail;
    rc = 0;
    goto done;
fail:
    rc = cli_fail("forward");
done:
    free(ids); free(image); free(text_emb); free(text_tokens); free(image_emb);
    if (net) mav_clip_free(net);
    free(net);
    return rc;
}

// Prior (SPEC §9): text_tokens [B, L, text_width], text_emb [B, emb_dim], x [B, emb_dim] (noised,
// scaled space), t [B], optional mask [B, L] (1 = real token, 0 = after EOT; any numeric
// dtype; absent = all real) -> x0 [B, emb_dim].
static int forward_prior(const mav_st_file *mf, const mav_st_file *inf, const char *out_path) {
    mav_prior_config c;
    mav_status st = mav_prior_read_config(mf, &c);
    if (st != MAV_OK) return cli_fail("forward");
    mav_prior *net = calloc(1, sizeof *net);
    float *tt = NULL, *te = NULL, *x = NULL, *t = NULL, *mf32 = NULL, *x0 = NULL;
    uint8_t *mask = NULL;
    int rc = 1;
    if (!net) { st = mav_fail(MAV_ERR_NOMEM, "out of memory"); goto fail; }
    if ((st = mav_prior_create(net, &c)) != MAV_OK || (st = mav_prior_alloc_params(net, 0)) != MAV_OK ||
        (st = mav_prior_load_weights(net, mf, "")) != MAV_OK)
        goto fail;
    const mav_st_tensor *xt = mav_st_find(inf, "x");
    if (!xt) { st = mav_fail(MAV_ERR_SHAPE, "%s: input \"x\" [B, %d] is missing", inf->path, c.emb_dim); goto fail; }
    if (xt->ndim != 2 || xt->shape[1] != c.emb_dim || xt->shape[0] < 1 || xt->shape[0] > 65536) {
        char sb[96];
        st = mav_fail(MAV_ERR_SHAPE, "%s: input \"x\" has shape %s, expected [B, %d]", inf->path,
                      mav_shape_str(sb, sizeof sb, xt->ndim, xt->shape), c.emb_dim);
        goto fail;
    }
    int B = (int)xt->shape[0], L = c.text_ctx;
    int64_t s_tt[3] = {B, L, c.text_width}, s_e[2] = {B, c.emb_dim}, s_t[1] = {B}, s_m[2] = {B, L};
    for (int i = 0; i < inf->ntensors; i++) {
        const char *n = inf->tensors[i].name;
        if (strcmp(n, "text_tokens") && strcmp(n, "text_emb") && strcmp(n, "x") && strcmp(n, "t") && strcmp(n, "mask")) {
            st = mav_fail(MAV_ERR_SHAPE, "%s: input \"%s\" is not used by a prior", inf->path, n);
            goto fail;
        }
    }
    if (!(tt = read_input(inf, "text_tokens", 3, s_tt, 1, &st)) || !(te = read_input(inf, "text_emb", 2, s_e, 1, &st)) ||
        !(x = read_input(inf, "x", 2, s_e, 1, &st)) || !(t = read_input(inf, "t", 1, s_t, 1, &st)))
        goto fail;
    if (!(mf32 = read_input(inf, "mask", 2, s_m, 0, &st)) && st != MAV_OK) goto fail;
    if (mf32) {
        mask = malloc((size_t)B * L);
        if (!mask) { st = mav_fail(MAV_ERR_NOMEM, "out of memory"); goto fail; }
        for (long i = 0; i < (long)B * L; i++) {
            if (mf32[i] != 0.0f && mf32[i] != 1.0f) {
                st = mav_fail(MAV_ERR_ARG, "%s: input \"mask\"[%ld][%ld] is %g; want 1 (real token) or 0 (after EOT)",
                              inf->path, i / L, i % L, mf32[i]);
                goto fail;
            }
            mask[i] = (uint8_t)(mf32[i] != 0.0f);
        }
    }
    if ((st = mav_prior_plan(net, B, 0)) != MAV_OK) goto fail;
    x0 = malloc((size_t)B * c.emb_dim * sizeof *x0);
    if (!x0) { st = mav_fail(MAV_ERR_NOMEM, "out of memory"); goto fail; }
    mav_prior_forward(net, x0, tt, te, x, t, mask);
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_st_writer_add_f32(&w, "x0", 2, s_e, x0, MAV_F32);
    st = mav_st_writer_save(&w, out_path);
    mav_st_writer_free(&w);
    if (st != MAV_OK) goto fail;
    rc = 0;
    goto done;
fail:
    rc = cli_fail("forward");
done:
    free(tt); free(te); free(x); free(t); free(mf32); free(mask); free(x0);
    if (net) mav_prior_free(net);
    free(net);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    const cli_command *cmd = cli_find("forward");
    char *pos[3];
    int npos = 0;
    int rc = cli_parse(cmd, forward_opts, argc, argv, 1, pos, 3, &npos);
    if (rc) return rc;
    if (npos != 3) return cli_usage_error(cmd, "expects MODEL INPUTS OUT");
    mav_st_file mf, inf;
    if (mav_st_open(&mf, pos[0]) != MAV_OK) return cli_fail("forward");
    if (mav_st_open(&inf, pos[1]) != MAV_OK) { mav_st_close(&mf); return cli_fail("forward"); }
    const char *kind = mav_st_meta(&mf, "mav.kind");
    if (kind && strcmp(kind, "unet") == 0) rc = forward_unet(&mf, &inf, pos[2]);
    else if ((kind && strcmp(kind, "clip") == 0) || (!kind && mav_st_find(&mf, "text_projection")))
        rc = forward_clip(&mf, &inf, pos[2]);  // OpenAI checkpoints carry no mav.kind
    else if (kind && strcmp(kind, "prior") == 0) rc = forward_prior(&mf, &inf, pos[2]);
    else {
        fprintf(stderr, "mav forward: %s: mav.kind is %s; supported: unet, clip, prior\n", pos[0], kind ? kind : "missing");
        rc = 1;
    }
    mav_st_close(&mf);
    mav_st_close(&inf);
    return rc;
}
