// prior_config.c — the prior's config (SPEC §5): named configs, checks, JSON.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nets/prior.h"

static const char *const k_names[] = {"tiny", "vit-b-32", NULL};
const char *const *mav_prior_config_names(void) { return k_names; }

mav_status mav_prior_config_named(mav_prior_config *c, const char *name) {
    memset(c, 0, sizeof *c);
    if (strcmp(name, "tiny") == 0) {
        // tests: CLIP tiny's text side (width 40, embed 24, context 9); head dim 16, N = 13 tokens
        *c = (mav_prior_config){.width = 48, .layers = 2, .heads = 3, .text_width = 40, .emb_dim = 24, .text_ctx = 9};
    } else if (strcmp(name, "vit-b-32") == 0) {
        // for OpenAI ViT-B/32 CLIP encodings; head dim 64, N = 81 tokens
        *c = (mav_prior_config){.width = 768, .layers = 12, .heads = 12, .text_width = 512, .emb_dim = 512,
                                .text_ctx = 77};
    } else {
        return mav_fail(MAV_ERR_ARG, "unknown prior config \"%s\" (known: tiny, vit-b-32)", name);
    }
    return MAV_OK;
}

mav_status mav_prior_config_check(const mav_prior_config *c) {
    struct { const char *name; int v; } pos[] = {
        {"width", c->width}, {"layers", c->layers}, {"heads", c->heads}, {"text_width", c->text_width},
        {"emb_dim", c->emb_dim}, {"text_ctx", c->text_ctx}};
    for (size_t i = 0; i < sizeof pos / sizeof pos[0]; i++)
        if (pos[i].v < 1 || pos[i].v > 1000000)
            return mav_fail(MAV_ERR_ARG, "prior config: %s must be in 1..1000000, got %d", pos[i].name, pos[i].v);
    if (c->width % c->heads)
        return mav_fail(MAV_ERR_ARG, "prior config: heads %d does not divide width %d", c->heads, c->width);
    if (c->width % 2)  // timestep_embedding(t, d) has d/2 cosines and d/2 sines
        return mav_fail(MAV_ERR_ARG, "prior config: width must be even, got %d", c->width);
    return MAV_OK;
}

char *mav_prior_config_to_json(const mav_prior_config *c) {
    json_t *o = json_object();
    json_object_set_new(o, "width", json_integer(c->width));
    json_object_set_new(o, "layers", json_integer(c->layers));
    json_object_set_new(o, "heads", json_integer(c->heads));
    json_object_set_new(o, "text_width", json_integer(c->text_width));
    json_object_set_new(o, "emb_dim", json_integer(c->emb_dim));
    json_object_set_new(o, "text_ctx", json_integer(c->text_ctx));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    return s;
}

mav_status mav_prior_config_from_json(mav_prior_config *c, const char *text) {
    memset(c, 0, sizeof *c);
    json_error_t e;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!o) return mav_fail(MAV_ERR_FORMAT, "prior config: not valid JSON (%s, line %d)", e.text, e.line);
    mav_status st = MAV_OK;
    struct { const char *key; int *dst; } ints[] = {
        {"width", &c->width}, {"layers", &c->layers}, {"heads", &c->heads}, {"text_width", &c->text_width},
        {"emb_dim", &c->emb_dim}, {"text_ctx", &c->text_ctx}};
    const size_t n_ints = sizeof ints / sizeof ints[0];
    if (!json_is_object(o)) { st = mav_fail(MAV_ERR_FORMAT, "prior config: not a JSON object"); goto done; }
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        int ok = 0;
        for (size_t i = 0; i < n_ints; i++) ok |= strcmp(ints[i].key, key) == 0;
        if (!ok) { st = mav_fail(MAV_ERR_FORMAT, "prior config: unknown field \"%s\"", key); goto done; }
    }
    for (size_t i = 0; i < n_ints; i++) {
        json_t *v = json_object_get(o, ints[i].key);
        if (!v) { st = mav_fail(MAV_ERR_FORMAT, "prior config: \"%s\" is missing", ints[i].key); goto done; }
        if (!json_is_integer(v) || json_integer_value(v) < -1000000000 || json_integer_value(v) > 1000000000) {
            st = mav_fail(MAV_ERR_FORMAT, "prior config: \"%s\" must be an integer", ints[i].key);
            goto done;
        }
        *ints[i].dst = (int)json_integer_value(v);
    }
    st = mav_prior_config_check(c);
done:
    json_decref(o);
    return st;
}

mav_status mav_prior_read_config(const mav_st_file *f, mav_prior_config *c) {
    const char *kind = mav_st_meta(f, "mav.kind"), *cfg = mav_st_meta(f, "mav.config");
    if (!kind || strcmp(kind, "prior") != 0)
        return mav_fail(MAV_ERR_FORMAT, "%s: not a prior checkpoint (mav.kind is %s)", f->path, kind ? kind : "missing");
    if (!cfg) return mav_fail(MAV_ERR_FORMAT, "%s: mav.config is missing", f->path);
    mav_status st = mav_prior_config_from_json(c, cfg);
    if (st != MAV_OK) mav_error_prefix("%s", f->path);
    return st;
}
