#include "nets/unet_config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>


static const char *const k_names[] = {"tiny", "bench-decoder", "bench-sr", "bench-image", NULL};
const char *const *mav_unet_config_names(void) { return k_names; }

static void set_levels(mav_unet_config *c, int n, const int *mult, const int *attn) {
    c->n_levels = n;
    for (int i = 0; i < n; i++) { c->ch_mult[i] = mult[i]; c->attn_level[i] = attn[i]; }
}

mav_status mav_unet_config_named(mav_unet_config *c, const char *name) {
    memset(c, 0, sizeof *c);
    c->prediction = MAV_PREDICT_EPS;
    if (strcmp(name, "tiny") == 0) {
        *c = (mav_unet_config){.in_ch = 3, .out_ch = 3, .ch = 32, .num_res_blocks = 1, .head_ch = 16, .emb_dim = 32,
                               .n_ctx = 4, .cond_fps = 1, .temporal = 1, .max_frames = 8};
        set_levels(c, 2, (int[]){1, 2}, (int[]){0, 1});
    } else if (strcmp(name, "bench-decoder") == 0 || strcmp(name, "bench-image") == 0) {
        int temporal = strcmp(name, "bench-decoder") == 0;
        *c = (mav_unet_config){.in_ch = 3, .out_ch = 3, .ch = 64, .num_res_blocks = 2, .head_ch = 32, .emb_dim = 256,
                               .n_ctx = 4, .cond_fps = 1, .temporal = temporal, .max_frames = temporal ? 16 : 0};
        set_levels(c, 4, (int[]){1, 2, 3, 4}, (int[]){0, 0, 1, 1});
    } else if (strcmp(name, "bench-sr") == 0) {
        *c = (mav_unet_config){.in_ch = 6, .out_ch = 3, .ch = 32, .num_res_blocks = 2, .head_ch = 32, .cond_aug = 1,
                               .temporal = 1, .max_frames = 16};
        set_levels(c, 3, (int[]){1, 2, 4}, (int[]){0, 0, 0});
    } else {
        return mav_fail(MAV_ERR_ARG, "unknown config \"%s\" (known: tiny, bench-decoder, bench-sr, bench-image)", name);
    }
    return MAV_OK;
}

static mav_status check_gn(int channels, const char *where) {
    if (channels % 32 != 0)
        return mav_fail(MAV_ERR_ARG, "config: GroupNorm at %s would see %d channels, not a multiple of 32 (SPEC §2)", where,
                        channels);
    return MAV_OK;
}

mav_status mav_unet_config_check(const mav_unet_config *c) {
    if (c->in_ch < 1 || c->out_ch < 1) return mav_fail(MAV_ERR_ARG, "config: in_ch and out_ch must be >= 1");
    if (c->ch < 1) return mav_fail(MAV_ERR_ARG, "config: ch must be >= 1");
    if (c->n_levels < 1 || c->n_levels > MAV_UNET_MAX_LEVELS)
        return mav_fail(MAV_ERR_ARG, "config: ch_mult needs 1..%d levels, got %d", MAV_UNET_MAX_LEVELS, c->n_levels);
    if (c->num_res_blocks < 1) return mav_fail(MAV_ERR_ARG, "config: num_res_blocks must be >= 1");
    if (c->emb_dim < 0 || c->n_ctx < 0) return mav_fail(MAV_ERR_ARG, "config: emb_dim and n_ctx must be >= 0");
    if (c->n_ctx > 0 && c->emb_dim == 0) return mav_fail(MAV_ERR_ARG, "config: n_ctx > 0 needs emb_dim > 0 (SPEC §3)");
    if (c->temporal && c->max_frames < 1) return mav_fail(MAV_ERR_ARG, "config: a temporal net needs max_frames >= 1");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f)) return mav_fail(MAV_ERR_ARG, "config: dropout must be in [0, 1)");
    if (c->head_ch < 1) return mav_fail(MAV_ERR_ARG, "config: head_ch must be >= 1");
    char where[64];
    mav_status st;
    for (int L = 0; L < c->n_levels; L++) {
        int w = c->ch_mult[L] * c->ch;
        if (c->ch_mult[L] < 1) return mav_fail(MAV_ERR_ARG, "config: ch_mult[%d] must be >= 1", L);
        snprintf(where, sizeof where, "level %d (%d = ch_mult[%d]·ch)", L, w, L);
        if ((st = check_gn(w, where)) != MAV_OK) return st;
        if ((c->attn_level[L] || L == c->n_levels - 1) && w % c->head_ch != 0)
            return mav_fail(MAV_ERR_ARG, "config: head_ch %d does not divide the %d channels of level %d", c->head_ch, w, L);
    }
    if ((st = check_gn(c->ch, "in_conv output")) != MAV_OK) return st;
    return MAV_OK;
}

char *mav_unet_config_to_json(const mav_unet_config *c) {
    json_t *o = json_object(), *mult = json_array(), *attn = json_array();
    for (int L = 0; L < c->n_levels; L++) {
        json_array_append_new(mult, json_integer(c->ch_mult[L]));
        if (c->attn_level[L]) json_array_append_new(attn, json_integer(L));
    }
    json_object_set_new(o, "in_ch", json_integer(c->in_ch));
    json_object_set_new(o, "out_ch", json_integer(c->out_ch));
    json_object_set_new(o, "ch", json_integer(c->ch));
    json_object_set_new(o, "ch_mult", mult);
    json_object_set_new(o, "num_res_blocks", json_integer(c->num_res_blocks));
    json_object_set_new(o, "attn_levels", attn);
    json_object_set_new(o, "head_ch", json_integer(c->head_ch));
    json_object_set_new(o, "emb_dim", json_integer(c->emb_dim));
    json_object_set_new(o, "n_ctx", json_integer(c->n_ctx));
    json_object_set_new(o, "cond_fps", json_boolean(c->cond_fps));
    json_object_set_new(o, "cond_aug", json_boolean(c->cond_aug));
    json_object_set_new(o, "temporal", json_boolean(c->temporal));
    json_object_set_new(o, "max_frames", json_integer(c->max_frames));
    json_object_set_new(o, "dropout", json_real(c->dropout));
    json_object_set_new(o, "prediction", json_string(mav_pred_type_name(c->prediction)));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    return s;
}

static mav_status get_int(json_t *o, const char *key, int *out, int required) {
    json_t *v = json_object_get(o, key);
    if (!v) return required ? mav_fail(MAV_ERR_FORMAT, "config: \"%s\" is missing", key) : MAV_OK;
    if (json_is_boolean(v)) { *out = json_is_true(v); return MAV_OK; }
    if (!json_is_integer(v) || json_integer_value(v) < -1000000000 || json_integer_value(v) > 1000000000)
        return mav_fail(MAV_ERR_FORMAT, "config: \"%s\" must be an integer", key);
    *out = (int)json_integer_value(v);
    return MAV_OK;
}

mav_status mav_unet_config_from_json(mav_unet_config *c, const char *text) {
    memset(c, 0, sizeof *c);
    json_error_t e;
    json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &e);
    if (!o) return mav_fail(MAV_ERR_FORMAT, "config: not valid JSON (%s, line %d)", e.text, e.line);
    mav_status st = MAV_OK;
    if (!json_is_object(o)) { st = mav_fail(MAV_ERR_FORMAT, "config: not a JSON object"); goto done; }
    static const char *const known[] = {"in_ch", "out_ch", "ch", "ch_mult", "num_res_blocks", "attn_levels", "head_ch",
                                        "emb_dim", "n_ctx", "cond_fps", "cond_aug", "temporal", "max_frames", "dropout",
                                        "prediction", NULL};
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val) {
        int ok = 0;
        for (int i = 0; known[i]; i++) ok |= strcmp(known[i], key) == 0;
        if (!ok) { st = mav_fail(MAV_ERR_FORMAT, "config: unknown field \"%s\"", key); goto done; }
    }
    if ((st = get_int(o, "in_ch", &c->in_ch, 1)) || (st = get_int(o, "out_ch", &c->out_ch, 1)) ||
        (st = get_int(o, "ch", &c->ch, 1)) || (st = get_int(o, "num_res_blocks", &c->num_res_blocks, 1)) ||
        (st = get_int(o, "head_ch", &c->head_ch, 1)) || (st = get_int(o, "emb_dim", &c->emb_dim, 0)) ||
        (st = get_int(o, "n_ctx", &c->n_ctx, 0)) || (st = get_int(o, "cond_fps", &c->cond_fps, 0)) ||
        (st = get_int(o, "cond_aug", &c->cond_aug, 0)) || (st = get_int(o, "temporal", &c->temporal, 0)) ||
        (st = get_int(o, "max_frames", &c->max_frames, 0)))
        goto done;
    json_t *mult = json_object_get(o, "ch_mult"), *attn = json_object_get(o, "attn_levels");
    if (!json_is_array(mult) || json_array_size(mult) < 1 || json_array_size(mult) > MAV_UNET_MAX_LEVELS) {
        st = mav_fail(MAV_ERR_FORMAT, "config: \"ch_mult\" must be an array of 1..%d integers", MAV_UNET_MAX_LEVELS);
        goto done;
    }
    c->n_levels = (int)json_array_size(mult);
    for (int L = 0; L < c->n_levels; L++) {
        json_t *m = json_array_get(mult, L);
        if (!json_is_integer(m) || json_integer_value(m) < 1 || json_integer_value(m) > 64) {
            st = mav_fail(MAV_ERR_FORMAT, "config: ch_mult[%d] must be an integer in 1..64", L);
            goto done;
        }
        c->ch_mult[L] = (int)json_integer_value(m);
    }
    if (attn && !json_is_array(attn)) { st = mav_fail(MAV_ERR_FORMAT, "config: \"attn_levels\" must be an array"); goto done; }
    for (size_t i = 0; attn && i < json_array_size(attn); i++) {
        json_t *a = json_array_get(attn, i);
        if (!json_is_integer(a) || json_integer_value(a) < 0 || json_integer_value(a) >= c->n_levels) {
            st = mav_fail(MAV_ERR_FORMAT, "config: attn_levels[%zu] is not a level index in 0..%d", i, c->n_levels - 1);
            goto done;
        }
        c->attn_level[json_integer_value(a)] = 1;
    }
    json_t *d = json_object_get(o, "dropout");
    if (d && !json_is_number(d)) { st = mav_fail(MAV_ERR_FORMAT, "config: \"dropout\" must be a number"); goto done; }
    c->dropout = d ? (float)json_number_value(d) : 0.0f;
    json_t *p = json_object_get(o, "prediction");
    if (p) {
        if (!json_is_string(p) || mav_pred_type_parse(json_string_value(p), &c->prediction) != MAV_OK ||
            c->prediction == MAV_PREDICT_X0) {
            st = mav_fail(MAV_ERR_FORMAT, "config: \"prediction\" must be \"eps\" or \"v\"");
            goto done;
        }
    }
    st = mav_unet_config_check(c);
done:
    json_decref(o);
    return st;
}
