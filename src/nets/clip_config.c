// clip_config.c — the CLIP config: named configs, checks, JSON, and OpenAI's build_model
// inference from tensor shapes (SPEC §4, §7).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nets/clip.h"

static const char *const k_names[] = {"vit-b-32", "tiny", NULL};
const char *const *mav_clip_config_names(void) { return k_names; }

mav_status mav_clip_config_named(mav_clip_config *c, const char *name) {
    memset(c, 0, sizeof *c);
    if (strcmp(name, "vit-b-32") == 0) {
        // OpenAI ViT-B/32 (clip.load("ViT-B/32"))
        *c = (mav_clip_config){.embed_dim = 512, .image_resolution = 224, .vision_layers = 12, .vision_width = 768,
                               .vision_patch_size = 32, .vision_heads = 12, .context_length = 77,
                               .vocab_size = 49408, .transformer_width = 512, .transformer_heads = 8,
                               .transformer_layers = 12, .activation = MAV_ACT_QUICK_GELU};
    } else if (strcmp(name, "tiny") == 0) {
        // tests: sizes that are multiples of nothing in particular (5×5 patches + class = 26
        // tokens, head dims 16 and 20, context 9)
        *c = (mav_clip_config){.embed_dim = 24, .image_resolution = 20, .vision_layers = 2, .vision_width = 48,
                               .vision_patch_size = 4, .vision_heads = 3, .context_length = 9, .vocab_size = 61,
                               .transformer_width = 40, .transformer_heads = 2, .transformer_layers = 2,
                               .activation = MAV_ACT_QUICK_GELU};
    } else {
        return mav_fail(MAV_ERR_ARG, "unknown clip config \"%s\" (known: vit-b-32, tiny)", name);
    }
    return MAV_OK;
}

mav_status mav_clip_config_check(const mav_clip_config *c) {
    struct { const char *name; int v; } pos[] = {
        {"embed_dim", c->embed_dim}, {"image_resolution", c->image_resolution}, {"vision_layers", c->vision_layers},
        {"vision_width", c->vision_width}, {"vision_patch_size", c->vision_patch_size},
        {"vision_heads", c->vision_heads}, {"context_length", c->context_length}, {"vocab_size", c->vocab_size},
        {"transformer_width", c->transformer_width}, {"transformer_heads", c->transformer_heads},
        {"transformer_layers", c->transformer_layers}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v < 1 || pos[i].v > 1000000)
            return mav_fail(MAV_ERR_ARG, "clip config: %s must be in 1..1000000, got %d", pos[i].name, pos[i].v);
    if (c->vision_width % c->vision_heads)
        return mav_fail(MAV_ERR_ARG, "clip config: vision_heads %d does not divide vision_width %d", c->vision_heads,
                        c->vision_width);
    if (c->transformer_width % c->transformer_heads)
        return mav_fail(MAV_ERR_ARG, "clip config: transformer_heads %d does not divide transformer_width %d",
                        c->transformer_heads, c->transformer_width);
    if (c->image_resolution % c->vision_patch_size)
        return mav_fail(MAV_ERR_ARG, "clip config: vision_patch_size %d does not divide image_resolution %d",
                        c->vision_patch_size, c->image_resolution);
    if (c->activation != MAV_ACT_QUICK_GELU && c->activation != MAV_ACT_GELU)
        return mav_fail(MAV_ERR_ARG, "clip config: activation must be quick_gelu or gelu");
    return MAV_OK;
}

char *mav_clip_config_to_json(const mav_clip_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "embed_dim", json_integer(c->embed_dim));
    json_object_set_new(o, "image_resolution", json_integer(c->image_resolution));
    json_object_set_new(o, "vision_layers", json_integer(c->vision_layers));
    json_object_set_new(o, "vision_width", json_integer(c->vision_width));
    json_object_set_new(o, "vision_patch_size", json_integer(c->vision_patch_size));
    json_object_set_new(o, "vision_heads", json_integer(c->vision_heads));
    json_object_set_new(o, "context_length", json_integer(c->context_length));
    json_object_set_new(o, "vocab_size", json_integer(c->vocab_size));
    json_object_set_new(o, "transformer_width", json_integer(c->transformer_width));
    json_object_set_new(o, "transformer_heads", json_integer(c->transformer_heads));
    json_object_set_new(o, "transformer_layers", json_integer(c->transformer_layers));
    json_object_set_new(o, "activation", json_string(mav_act_name(c->activation)));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    return s;
}

mav_status mav_clip_config_from_json(mav_clip_config *c, const char *text) {
    memset(c, 0, sizeof *c);
    json_error_t e;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!o) return mav_fail(MAV_ERR_FORMAT, "clip config: not valid JSON (%s, line %d)", e.text, e.line);
    mav_status st = MAV_OK;
    struct { const char *key; int *dst; } ints[] = {
        {"embed_dim", &c->embed_dim}, {"image_resolution", &c->image_resolution},
        {"vision_layers", &c->vision_layers}, {"vision_width", &c->vision_width},
        {"vision_patch_size", &c->vision_patch_size}, {"vision_heads", &c->vision_heads},
        {"context_length", &c->context_length}, {"vocab_size", &c->vocab_size},
        {"transformer_width", &c->transformer_width}, {"transformer_heads", &c->transformer_heads},
        {"transformer_layers", &c->transformer_layers}};
    const size_t n_ints = sizeof ints / sizeof ints[0];
    if (!json_is_object(o)) { st = mav_fail(MAV_ERR_FORMAT, "clip config: not a JSON object"); goto done; }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        int ok = strcmp(key, "activation") == 0;
        for (size_t i = 0; i < n_ints; i++) ok |= strcmp(ints[i].key, key) == 0;
        if (!ok) { st = mav_fail(MAV_ERR_FORMAT, "clip config: unknown field \"%s\"", key); goto done; }
    }
    for (size_t i = 0; i < n_ints; i++) {
        json_t *v = json_object_get(o, ints[i].key);
        if (!v) { st = mav_fail(MAV_ERR_FORMAT, "clip config: \"%s\" is missing", ints[i].key); goto done; }
        if (!json_is_integer(v) || json_integer_value(v) < -1000000000 || json_integer_value(v) > 1000000000) {
            st = mav_fail(MAV_ERR_FORMAT, "clip config: \"%s\" must be an integer", ints[i].key);
            goto done;
        }
        *ints[i].dst = (int)json_integer_value(v);
    }
    json_t *a = json_object_get(o, "activation");
    c->activation = MAV_ACT_QUICK_GELU;  // OpenAI's when absent
    if (a) {
        int k = json_is_string(a) ? mav_act_from_name(json_string_value(a)) : -1;
        if (k != MAV_ACT_QUICK_GELU && k != MAV_ACT_GELU) {
            st = mav_fail(MAV_ERR_FORMAT, "clip config: \"activation\" must be \"quick_gelu\" or \"gelu\"");
            goto done;
        }
        c->activation = (mav_act)k;
    }
    st = mav_clip_config_check(c);
done:
    json_decref(o);
    return st;
}

// ---- inference from shapes (OpenAI clip/model.py build_model) -------------------------------

static const mav_st_tensor *get(const mav_st_file *f, const char *prefix, const char *name) {
    char full[MAV_NAME_MAX + 64];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return mav_st_find(f, full);
}

static mav_status need(const mav_st_tensor **t, const mav_st_file *f, const char *prefix, const char *name, int ndim) {
    *t = get(f, prefix, name);
    if (!*t) return mav_fail(MAV_ERR_SHAPE, "%s: tensor \"%s%s\" is missing (needed to infer the CLIP architecture)",
                             f->path, prefix, name);
    if ((*t)->ndim != ndim)
        return mav_fail(MAV_ERR_SHAPE, "%s: tensor \"%s%s\" has %d dims, expected %d", f->path, prefix, name,
                        (*t)->ndim, ndim);
    return MAV_OK;
}

// Layers = 1 + the largest i among "<prefix><tower>resblocks.<i>.attn.in_proj_weight" (OpenAI
// counts distinct indices; load_weights then requires every block 0..layers−1 to be present).
static int count_layers(const mav_st_file *f, const char *prefix, const char *tower) {
    char head[MAV_NAME_MAX + 64];
    snprintf(head, sizeof head, "%s%sresblocks.", prefix, tower);
    size_t hl = strlen(head);
    int n = 0;
    for (int i = 0; i < f->ntensors; i++) {
        const char *nm = f->tensors[i].name;
        if (strncmp(nm, head, hl) != 0) continue;
        char *end;
        long k = strtol(nm + hl, &end, 10);
        if (end == nm + hl || strcmp(end, ".attn.in_proj_weight") != 0 || k < 0 || k > 100000) continue;
        if (k + 1 > n) n = (int)k + 1;
    }
    return n;
}

// OpenAI's integer scalar (0-dim or one-element tensor of any numeric dtype) must equal `want`.
static mav_status check_scalar(const mav_st_file *f, const char *prefix, const char *name, int want) {
    const mav_st_tensor *t = get(f, prefix, name);
    if (!t) return MAV_OK;
    if (t->numel != 1)
        return mav_fail(MAV_ERR_SHAPE, "%s: \"%s%s\" must be a scalar, has %zu elements", f->path, prefix, name,
                        t->numel);
    float v;
    mav_st_to_f32(t, &v);
    if (v != (float)want)
        return mav_fail(MAV_ERR_SHAPE, "%s: \"%s%s\" is %g but the weights' shapes give %d", f->path, prefix, name,
                        (double)v, want);
    return MAV_OK;
}

mav_status mav_clip_config_infer(mav_clip_config *c, const mav_st_file *f, const char *prefix) {
    memset(c, 0, sizeof *c);
    const mav_st_tensor *conv, *vpos, *tproj, *pos, *tok, *lnf;
    mav_status st;
    if (!get(f, prefix, "visual.proj"))
        return mav_fail(MAV_ERR_SHAPE, "%s: no \"%svisual.proj\": only ViT CLIP models are supported (not ModifiedResNet)",
                        f->path, prefix);
    if ((st = need(&conv, f, prefix, "visual.conv1.weight", 4)) || (st = need(&vpos, f, prefix, "visual.positional_embedding", 2)) ||
        (st = need(&tproj, f, prefix, "text_projection", 2)) || (st = need(&pos, f, prefix, "positional_embedding", 2)) ||
        (st = need(&tok, f, prefix, "token_embedding.weight", 2)) || (st = need(&lnf, f, prefix, "ln_final.weight", 1)))
        return st;
    c->vision_width = (int)conv->shape[0];
    c->vision_layers = count_layers(f, prefix, "visual.transformer.");
    c->vision_patch_size = (int)conv->shape[3];
    int grid = (int)lround(sqrt((double)(vpos->shape[0] - 1)));
    c->image_resolution = c->vision_patch_size * grid;
    c->embed_dim = (int)tproj->shape[1];
    c->context_length = (int)pos->shape[0];
    c->vocab_size = (int)tok->shape[0];
    c->transformer_width = (int)lnf->shape[0];
    c->transformer_heads = c->transformer_width / 64;
    c->transformer_layers = count_layers(f, prefix, "transformer.");
    c->vision_heads = c->vision_width / 64;
    c->activation = MAV_ACT_QUICK_GELU;
    if ((long)grid * grid + 1 != vpos->shape[0])
        return mav_fail(MAV_ERR_SHAPE, "%s: \"%svisual.positional_embedding\" has %lld rows, not a square grid + 1",
                        f->path, prefix, (long long)vpos->shape[0]);
    if (c->vision_heads < 1 || c->vision_width % 64 || c->transformer_heads < 1 || c->transformer_width % 64)
        return mav_fail(MAV_ERR_SHAPE,
                        "%s: widths %d (vision) and %d (text) must be multiples of 64 to infer heads = width/64; "
                        "give the checkpoint a mav.config",
                        f->path, c->vision_width, c->transformer_width);
    if ((st = mav_clip_config_check(c)) != MAV_OK) {
        mav_error_prefix("%s: inferred architecture", f->path);
        return st;
    }
    if ((st = check_scalar(f, prefix, "input_resolution", c->image_resolution)) ||
        (st = check_scalar(f, prefix, "context_length", c->context_length)) ||
        (st = check_scalar(f, prefix, "vocab_size", c->vocab_size)))
        return st;
    return MAV_OK;
}

mav_status mav_clip_read_config(const mav_st_file *f, mav_clip_config *c) {
    const char *kind = mav_st_meta(f, "mav.kind"), *cfg = mav_st_meta(f, "mav.config");
    if (kind && strcmp(kind, "clip") != 0)
        return mav_fail(MAV_ERR_FORMAT, "%s: not a clip checkpoint (mav.kind is %s)", f->path, kind);
    if (!kind || !cfg) return mav_clip_config_infer(c, f, "");
    mav_status st = mav_clip_config_from_json(c, cfg);
    if (st != MAV_OK) mav_error_prefix("%s", f->path);
    return st;
}
