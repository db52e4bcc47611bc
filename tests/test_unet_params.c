// P3D U-Net parameter table and initial values (SPEC §3): names, counts, the rules a
// config must satisfy, and the SPEC's initial values (identity temporal convs, zero-init
// projections, GroupNorm gain 1).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nets/unet.h"
#include "testutil.h"

static mav_params build(const char *name, mav_unet_config *c) {
    assert_int_equal(mav_unet_config_named(c, name), MAV_OK);
    mav_params p;
    mav_params_init(&p);
    if (mav_unet_register_params(c, &p) != MAV_OK) fail_msg("%s: %s", name, mav_last_error());
    return p;
}

// Totals cross-checked with MACHINE-NOTES' PyTorch figures (31.6 M, 4.7 M, 24.7 M) and with
// a hand count for `tiny`; exact parity with tests/reference's PyTorch model is issue 3's test.
static void param_counts_of_named_configs(void **state) {
    (void)state;
    static const struct { const char *name; size_t total; } want[] = {
        {"tiny", 1078465}, {"bench-decoder", 31586337}, {"bench-sr", 4724097}, {"bench-image", 24728643}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        mav_unet_config c;
        mav_params p = build(want[i].name, &c);
        if (mav_params_numel(&p) != want[i].total) fail_msg("%s: %zu params, want %zu", want[i].name, mav_params_numel(&p), want[i].total);
        mav_params_free(&p);
    }
}

static void tensor_names_follow_spec(void **state) {
    (void)state;
    mav_unet_config c;
    mav_params p = build("tiny", &c);
    static const char *const must[] = {
        "time_embed.0.weight", "time_embed.2.bias", "emb_proj.weight", "ctx_proj.weight", "fps_embed.0.weight",
        "in_conv.spatial.weight", "in_conv.temporal.weight", "down.0.res.0.in_norm.weight",
        "down.0.res.0.emb_out.weight", "down.0.downsample.op.weight", "down.1.res.0.skip.weight",
        "down.1.attn.0.ctx_kv.weight", "down.1.attn.0.tpos", "down.1.attn.0.tqkv.weight", "mid.attn.proj.weight",
        "mid.res.1.out_conv.temporal.bias", "up.1.res.1.skip.weight", "up.1.attn.1.tnorm.bias",
        "up.1.upsample.conv.weight", "up.0.res.1.in_norm.weight", "out_norm.weight", "out_conv.spatial.weight",
        "out_conv.temporal.weight"};
    for (size_t i = 0; i < sizeof must / sizeof must[0]; i++)
        if (mav_params_find(&p, must[i]) < 0) fail_msg("tiny lacks %s", must[i]);
    assert_int_equal(mav_params_find(&p, "aug_embed.0.weight"), -1);
    assert_int_equal(mav_params_find(&p, "down.0.attn.0.qkv.weight"), -1);  // level 0 has no attention
    assert_int_equal(mav_params_find(&p, "up.0.upsample.conv.weight"), -1);
    // up.0.res.0 sees cat(h from up.1: 64 channels, the skip from down.0.downsample: 32)
    int k = mav_params_find(&p, "up.0.res.0.in_norm.weight");
    assert_int_equal(p.items[k].shape[0], 64 + 32);
    k = mav_params_find(&p, "down.1.attn.0.tpos");
    assert_int_equal(p.items[k].shape[0], 8);
    assert_int_equal(p.items[k].shape[1], 64);
    mav_params_free(&p);
}

static void initial_values(void **state) {
    (void)state;
    mav_unet_config c;
    mav_params p = build("tiny", &c);
    assert_int_equal(mav_params_alloc(&p, 0, 0), MAV_OK);
    mav_unet_init_params(&c, &p, 1234);
    for (int k = 0; k < p.count; k++) {
        const mav_param *t = &p.items[k];
        const float *v = mav_param_value(&p, k);
        const char *n = t->name;
        if (strstr(n, ".temporal.weight")) {
            for (int64_t o = 0; o < t->shape[0]; o++)
                for (int64_t i = 0; i < t->shape[1]; i++)
                    for (int j = 0; j < 3; j++) {
                        float want = (o == i && j == 1) ? 1.0f : 0.0f;
                        if (v[(o * t->shape[1] + i) * 3 + j] != want) fail_msg("%s not identity at [%lld,%lld,%d]", n, (long long)o, (long long)i, j);
                    }
        } else if (strstr(n, ".tproj.") || strstr(n, ".tpos") || strstr(n, ".temporal.bias") || strstr(n, "tnorm.bias") ||
                   strstr(n, "attn.0.proj.") || strstr(n, "attn.1.proj.") || strstr(n, "mid.attn.proj.") ||
                   strstr(n, "out_conv.spatial") ) {
            for (size_t i = 0; i < t->numel; i++) if (v[i] != 0.0f) fail_msg("%s must start at 0", n);
        } else if (strstr(n, "norm.weight")) {
            for (size_t i = 0; i < t->numel; i++) if (v[i] != 1.0f) fail_msg("%s must start at 1", n);
        } else if (strstr(n, ".weight")) {
            double bound = 1.0 / sqrt((double)(t->numel / (size_t)t->shape[0])), mx = 0;
            for (size_t i = 0; i < t->numel; i++) mx = fmax(mx, fabs(v[i]));
            if (mx > bound || mx < 0.5 * bound) fail_msg("%s: max |w| %g vs bound %g", n, mx, bound);
        }
    }
    // out_conv.spatial of ResBlocks (but not in_conv) is zero
    const float *w = mav_param_value(&p, mav_params_find(&p, "down.0.res.0.in_conv.spatial.weight"));
    assert_true(w[0] != 0.0f);
    // same seed, same values; another seed, other values
    mav_params q = build("tiny", &c);
    assert_int_equal(mav_params_alloc(&q, 0, 0), MAV_OK);
    mav_unet_init_params(&c, &q, 1234);
    tu_check_equal("init determinism", q.value, p.value, p.total);
    mav_unet_init_params(&c, &q, 1235);
    assert_true(memcmp(q.value, p.value, p.total * 4) != 0);
    mav_params_free(&q);
    mav_params_free(&p);
}

static void config_rules_and_json(void **state) {
    (void)state;
    mav_unet_config c, d;
    for (const char *const *n = mav_unet_config_names(); *n; n++) {
        assert_int_equal(mav_unet_config_named(&c, *n), MAV_OK);
        char *js = mav_unet_config_to_json(&c);
        if (mav_unet_config_from_json(&d, js) != MAV_OK) fail_msg("%s: %s", *n, mav_last_error());
        assert_memory_equal(&c, &d, sizeof c);
        free(js);
    }
    assert_int_equal(mav_unet_config_named(&c, "nope"), MAV_ERR_ARG);
    // GroupNorm widths must be multiples of 32
    mav_unet_config_named(&c, "tiny");
    c.ch = 48;
    assert_int_equal(mav_unet_config_check(&c), MAV_ERR_ARG);
    assert_non_null(strstr(mav_last_error(), "multiple of 32"));
    mav_unet_config_named(&c, "tiny");
    c.head_ch = 24;
    assert_int_equal(mav_unet_config_check(&c), MAV_ERR_ARG);
    mav_unet_config_named(&c, "tiny");
    c.emb_dim = 0;
    assert_int_equal(mav_unet_config_check(&c), MAV_ERR_ARG);  // n_ctx 4 needs emb_dim
    assert_int_equal(mav_unet_config_from_json(&c, "{\"in_ch\":3}"), MAV_ERR_FORMAT);
    assert_int_equal(mav_unet_config_from_json(&c, "{\"bogus\":1}"), MAV_ERR_FORMAT);
    assert_non_null(strstr(mav_last_error(), "bogus"));
    assert_int_equal(mav_unet_config_from_json(&c, "not json"), MAV_ERR_FORMAT);
    assert_int_equal(mav_unet_config_from_json(&c,
        "{\"in_ch\":3,\"out_ch\":3,\"ch\":32,\"ch_mult\":[1,2],\"num_res_blocks\":1,\"attn_levels\":[5],\"head_ch\":16}"),
        MAV_ERR_FORMAT);
}

// Names, shapes and totals equal those of the PyTorch reference model (tests/reference/
// unet_ref.py, written from SPEC §3) for every SPEC §8 config.
static void table_matches_pytorch_reference(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("unet_param_table");
    for (const char *const *n = mav_unet_config_names(); *n; n++) {
        mav_unet_config c;
        mav_params p = build(*n, &c);
        char key[64];
        snprintf(key, sizeof key, "count.%s", *n);
        const mav_st_tensor *t = mav_st_find(f, key);
        assert_non_null(t);
        int64_t want;
        memcpy(&want, t->data, 8);
        if ((int64_t)mav_params_numel(&p) != want) fail_msg("%s: %zu params, PyTorch reference %lld", *n, mav_params_numel(&p), (long long)want);
        json_t *table = json_loads(mav_st_meta(f, *n), 0, NULL);
        assert_non_null(table);
        if ((int)json_object_size(table) != p.count) fail_msg("%s: %d tensors, reference %zu", *n, p.count, json_object_size(table));
        for (int k = 0; k < p.count; k++) {
            json_t *shape = json_object_get(table, p.items[k].name);
            if (!shape) fail_msg("%s: tensor %s is not in the reference", *n, p.items[k].name);
            if ((int)json_array_size(shape) != p.items[k].ndim) fail_msg("%s: %s rank differs", *n, p.items[k].name);
            for (int d = 0; d < p.items[k].ndim; d++)
                if (json_integer_value(json_array_get(shape, d)) != p.items[k].shape[d]) fail_msg("%s: %s shape differs", *n, p.items[k].name);
        }
        json_decref(table);
        mav_params_free(&p);
    }
    tu_ref_close(f);
}

MAV_TEST_GROUP(unet_params,
    cmocka_unit_test(table_matches_pytorch_reference),
    cmocka_unit_test(param_counts_of_named_configs),
    cmocka_unit_test(tensor_names_follow_spec),
    cmocka_unit_test(initial_values),
    cmocka_unit_test(config_rules_and_json))
