// The CLIP towers against the PyTorch reference written from SPEC §4 / OpenAI's model.py
// (tests/reference/clip_ref.py, data from net_clip.py): outputs and *every* parameter
// gradient for the `tiny` config and an exact-GELU variant; the generic transformer block
// with the prior's names, causal + key-padding masks; a checkpoint with ViT-B/32's exact names
// and shapes (F16, no mav.config: shape inference and OpenAI's integer scalars); CLIP's image
// preprocessing; configs and checkpoint errors.
//
// Tolerance (parity): the reference runs in float64 from the same f32 weights and inputs; mav
// runs in f32 through LayerNorms, GEMMs with K up to 4·width (3072 in ViT-B/32), softmax and
// the residual stream. Per tensor we require max|err| ≤ 2e-4 · max|ref|, as tests/test_unet.c
// (measured ~1e-6–2e-5 here; MAV_TEST_VERBOSE=1 prints each ratio). A wrong index, a missing
// term, a transposed weight or a wrong mask gives errors of O(1) relative.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/threads.h"
#include "nets/clip.h"
#include "testutil.h"

static const double TOL = 2e-4;

static mav_clip *load_model(const char *file, int training) {
    mav_st_file *mf = tu_ref_open(file);
    mav_clip_config c;
    if (mav_clip_read_config(mf, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_clip *m = calloc(1, sizeof *m);
    assert_non_null(m);
    if (mav_clip_create(m, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    assert_int_equal(mav_clip_alloc_params(m, training), MAV_OK);
    if (mav_clip_load_weights(m, mf, "") != MAV_OK) fail_msg("%s", mav_last_error());
    tu_ref_close(mf);
    return m;
}

static int32_t *ref_i32(mav_st_file *f, const char *name, size_t *n) {
    float *v = tu_ref_f32(f, name, n);  // small ids: exact in f32
    int32_t *ids = malloc(*n * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < *n; i++) ids[i] = (int32_t)v[i];
    free(v);
    return ids;
}

static void check_ref(mav_st_file *df, const char *case_name, const char *tensor, const float *got, size_t n_got,
                      double floor) {
    size_t n;
    double *want = tu_ref_f64(df, tensor, &n);
    assert_int_equal(n, n_got);
    char what[256];
    snprintf(what, sizeof what, "%s: %s", case_name, tensor);
    tu_check_rel_max(what, got, want, n, TOL, floor);
    free(want);
}

static void parity_case(const char *case_name) {
    char name[128];
    snprintf(name, sizeof name, "clip_%s_model", case_name);
    mav_clip *m = load_model(name, 1);
    const mav_clip_config *c = &m->cfg;
    snprintf(name, sizeof name, "clip_%s", case_name);
    mav_st_file *df = tu_ref_open(name);
    int Bt = (int)tu_ref_dim(df, "tokens", 0), Bi = (int)tu_ref_dim(df, "image", 0);
    int L = c->context_length, W = c->transformer_width, E = c->embed_dim;
    if (mav_clip_plan(m, Bt, Bi, 1) != MAV_OK) fail_msg("%s", mav_last_error());
    size_t nt, ni;
    int32_t *tokens = ref_i32(df, "tokens", &nt);
    float *image = tu_ref_f32(df, "image", &ni);
    size_t n_te = (size_t)Bt * E, n_tt = (size_t)Bt * L * W, n_ie = (size_t)Bi * E;
    float *te = tu_alloc_f(n_te), *tt = tu_alloc_f(n_tt), *ie = tu_alloc_f(n_ie);
    if (mav_clip_encode_text(m, te, tt, tokens) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_clip_encode_image(m, ie, image);
    check_ref(df, case_name, "text_emb", te, n_te, 1e-3);
    check_ref(df, case_name, "text_tokens", tt, n_tt, 1e-3);
    check_ref(df, case_name, "image_emb", ie, n_ie, 1e-3);

    float *d_te = tu_ref_f32(df, "d_text_emb", NULL), *d_tt = tu_ref_f32(df, "d_text_tokens", NULL);
    float *d_ie = tu_ref_f32(df, "d_image_emb", NULL);
    mav_params_zero_grad(&m->params);
    mav_clip_backward_text(m, d_te, d_tt);
    mav_clip_backward_image(m, d_ie);
    // Gradients that are small against the rest (e.g. biases feeding a LayerNorm) carry f32
    // noise from sums at the scale of the largest gradient: each tensor is judged against
    // max(its own scale, 1e-3 × the case's largest parameter gradient), as in test_unet.c.
    double gmax = 0.0;
    char what[256];
    size_t n;
    for (int k = 0; k < m->params.count; k++) {
        snprintf(what, sizeof what, "grad.%s", m->params.items[k].name);
        double *want = tu_ref_f64(df, what, &n);
        for (size_t i = 0; i < n; i++) gmax = fabs(want[i]) > gmax ? fabs(want[i]) : gmax;
        free(want);
    }
    for (int k = 0; k < m->params.count; k++) {
        const mav_param *pt = &m->params.items[k];
        snprintf(what, sizeof what, "grad.%s", pt->name);
        check_ref(df, case_name, what, mav_param_grad(&m->params, k), pt->numel, 1e-3 * gmax);
    }
    // a second forward on the same plan is bit-identical (no stale state); an inference plan
    // (ping-pong buffers, temporaries from the work arena) computes the same bits
    float *te2 = tu_alloc_f(n_te), *tt2 = tu_alloc_f(n_tt), *ie2 = tu_alloc_f(n_ie);
    assert_int_equal(mav_clip_encode_text(m, te2, tt2, tokens), MAV_OK);
    mav_clip_encode_image(m, ie2, image);
    tu_check_equal("second forward text_emb", te2, te, n_te);
    tu_check_equal("second forward image_emb", ie2, ie, n_ie);
    assert_int_equal(mav_clip_plan(m, Bt, Bi, 0), MAV_OK);
    memset(te2, 0, n_te * sizeof(float));
    assert_int_equal(mav_clip_encode_text(m, te2, tt2, tokens), MAV_OK);
    mav_clip_encode_image(m, ie2, image);
    tu_check_equal("inference plan text_emb", te2, te, n_te);
    tu_check_equal("inference plan text_tokens", tt2, tt, n_tt);
    tu_check_equal("inference plan image_emb", ie2, ie, n_ie);
    free(tokens); free(image); free(te); free(tt); free(ie); free(te2); free(tt2); free(ie2);
    free(d_te); free(d_tt); free(d_ie);
    tu_ref_close(df);
    mav_clip_free(m);
    free(m);
}

static void parity_tiny(void **s) { (void)s; parity_case("tiny"); }
static void parity_gelu(void **s) { (void)s; parity_case("gelu"); }

// The generic block as the prior will use it: SPEC §5 names under a prefix, exact GELU,
// causal attention with key padding.
static void transformer_block_prior_names_masks(void **state) {
    (void)state;
    mav_st_file *df = tu_ref_open("clip_block");
    int S = (int)tu_ref_dim(df, "x", 0), N = (int)tu_ref_dim(df, "x", 1), C = (int)tu_ref_dim(df, "x", 2), heads = 3;
    mav_params p;
    mav_params_init(&p);
    mav_transformer_register(&p, "blocks.4", &mav_transformer_names_prior, C, 4 * C);
    assert_int_equal(mav_params_alloc(&p, 1, 0), MAV_OK);
    char what[256];
    for (int k = 0; k < p.count; k++) {
        const mav_param *t = &p.items[k];
        snprintf(what, sizeof what, "param.%s", t->name + strlen("blocks.4."));
        float *v = tu_ref_f32(df, what, NULL);
        memcpy(mav_param_value(&p, k), v, t->numel * sizeof(float));
        free(v);
    }
    mav_transformer l;
    mav_transformer_init(&l, &p, "blocks.4", &mav_transformer_names_prior, C, heads, 4 * C, MAV_ACT_GELU, 1);
    mav_layer_ctx lc = {.params = &p, .B = S, .F = 1, .training = 1};
    mav_arena meas, act, work;
    mav_arena_measure(&meas);
    mav_transformer_plan(&l, &lc, &meas, N);
    assert_int_equal(mav_arena_init(&act, meas.peak + lc.scratch_floats * sizeof(float) + MAV_ALIGN), MAV_OK);
    assert_int_equal(mav_arena_init(&work, lc.work_bytes), MAV_OK);
    size_t need_s = lc.scratch_floats;
    mav_transformer_plan(&l, &lc, &act, N);
    lc.scratch = mav_arena_floats(&act, need_s);
    lc.work = &work;
    size_t nx, nm;
    float *x = tu_ref_f32(df, "x", &nx), *mf = tu_ref_f32(df, "mask", &nm);
    uint8_t *mask = malloc(nm);
    for (size_t i = 0; i < nm; i++) mask[i] = (uint8_t)mf[i];
    float *out = tu_alloc_f(nx), *dx = tu_alloc_f(nx), *dout = tu_ref_f32(df, "dout", NULL);
    mav_transformer_forward(&l, &lc, out, x, mask);
    check_ref(df, "block", "out", out, nx, 1e-3);
    mav_params_zero_grad(&p);
    mav_transformer_backward(&l, &lc, dx, dout, x, mask);
    check_ref(df, "block", "grad.x", dx, nx, 1e-3);
    for (int k = 0; k < p.count; k++) {
        const mav_param *t = &p.items[k];
        snprintf(what, sizeof what, "grad.%s", t->name + strlen("blocks.4."));
        check_ref(df, "block", what, mav_param_grad(&p, k), t->numel, 1e-3);
    }
    // the mask matters: without it the output differs far beyond the tolerance
    float *out2 = tu_alloc_f(nx);
    mav_transformer_forward(&l, &lc, out2, x, NULL);
    double diff = 0.0;
    for (size_t i = 0; i < nx; i++) diff = fmax(diff, fabs(out2[i] - out[i]));
    assert_true(diff > 1e-2);
    free(x); free(mf); free(mask); free(out); free(out2); free(dx); free(dout);
    mav_arena_free(&act);
    mav_arena_free(&work);
    mav_params_free(&p);
    tu_ref_close(df);
}

// ViT-B/32's exact names and shapes, F16, no mav.config: the architecture is inferred as
// OpenAI's build_model does, the integer scalars are accepted, and one caption + one image
// match PyTorch (float64 from the same f16 values).
static void vitb32_checkpoint(void **state) {
    (void)state;
    mav_st_file *mf = tu_ref_open("clip_vitb32_model");
    assert_null(mav_st_meta(mf, "mav.config"));
    mav_clip_config c, want;
    if (mav_clip_read_config(mf, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    assert_int_equal(mav_clip_config_named(&want, "vit-b-32"), MAV_OK);
    assert_memory_equal(&c, &want, sizeof c);
    mav_clip *m = calloc(1, sizeof *m);
    assert_int_equal(mav_clip_create(m, &c), MAV_OK);
    assert_int_equal(mav_clip_alloc_params(m, 0), MAV_OK);
    if (mav_clip_load_weights(m, mf, "") != MAV_OK) fail_msg("%s", mav_last_error());
    tu_ref_close(mf);
    mav_st_file *df = tu_ref_open("clip_vitb32");
    size_t nt, ni;
    int32_t *tokens = ref_i32(df, "tokens", &nt);
    float *image = tu_ref_f32(df, "image", &ni);
    assert_int_equal(mav_clip_plan(m, 1, 1, 0), MAV_OK);
    float *te = tu_alloc_f(512), *tt = tu_alloc_f(77 * 512), *ie = tu_alloc_f(512);
    if (mav_clip_encode_text(m, te, tt, tokens) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_clip_encode_image(m, ie, image);
    check_ref(df, "vit-b-32", "text_emb", te, 512, 1e-3);
    check_ref(df, "vit-b-32", "text_tokens", tt, 77 * 512, 1e-3);
    check_ref(df, "vit-b-32", "image_emb", ie, 512, 1e-3);
    free(tokens); free(image); free(te); free(tt); free(ie);
    tu_ref_close(df);
    mav_clip_free(m);
    free(m);
}

// CLIP's preprocessing vs torch (antialiased bicubic, float64): down- and upscaling, odd crop
// offsets, portrait and landscape. Tolerance 2e-6 absolute on normalised values of magnitude
// ≤ ~2.2: the C code sums ≤ 4·scale + 1 taps per pass in double and rounds the intermediate
// to f32 once (relative 2⁻²⁴ on values ≤ ~1.3 after the bicubic overshoot), then normalises in
// f32 (≈ 3 more roundings, /0.26): ≲ 1e-6 in all.
static void preprocess_matches_torch(void **state) {
    (void)state;
    mav_st_file *df = tu_ref_open("clip_preprocess");
    for (int i = 0; i < 5; i++) {
        char a[16], b[16];
        snprintf(a, sizeof a, "img%d", i);
        snprintf(b, sizeof b, "out%d", i);
        int H = (int)tu_ref_dim(df, a, 0), W = (int)tu_ref_dim(df, a, 1), R = (int)tu_ref_dim(df, b, 1);
        float *img = tu_ref_f32(df, a, NULL);
        float *scratch = tu_alloc_f(mav_clip_preprocess_scratch_floats(H, W, R));
        float *out = tu_alloc_f((size_t)3 * R * R);
        mav_clip_preprocess(out, img, H, W, R, scratch);
        size_t n;
        double *want = tu_ref_f64(df, b, &n);
        assert_int_equal(n, (size_t)3 * R * R);
        char what[64];
        snprintf(what, sizeof what, "preprocess %dx%d -> %d", H, W, R);
        tu_check_close_d(what, out, want, n, 2e-6, 0.0);
        free(img); free(scratch); free(out); free(want);
    }
    tu_ref_close(df);
}

static void config_json_and_errors(void **state) {
    (void)state;
    for (const char *const *nm = mav_clip_config_names(); *nm; nm++) {
        mav_clip_config c, r;
        assert_int_equal(mav_clip_config_named(&c, *nm), MAV_OK);
        char *js = mav_clip_config_to_json(&c);
        assert_int_equal(mav_clip_config_from_json(&r, js), MAV_OK);
        assert_memory_equal(&c, &r, sizeof c);
        free(js);
    }
    mav_clip_config c;
    assert_int_equal(mav_clip_config_named(&c, "vit-l-14"), MAV_ERR_ARG);
    const char *base = "{\"embed_dim\":8,\"image_resolution\":8,\"vision_layers\":1,\"vision_width\":8,"
                       "\"vision_patch_size\":4,\"vision_heads\":2,\"context_length\":4,\"vocab_size\":9,"
                       "\"transformer_width\":8,\"transformer_heads\":2,\"transformer_layers\":1";
    char js[512];
    snprintf(js, sizeof js, "%s,\"activation\":\"gelu\"}", base);
    assert_int_equal(mav_clip_config_from_json(&c, js), MAV_OK);
    assert_int_equal(c.activation, MAV_ACT_GELU);
    snprintf(js, sizeof js, "%s,\"activation\":\"silu\"}", base);
    assert_int_equal(mav_clip_config_from_json(&c, js), MAV_ERR_FORMAT);
    snprintf(js, sizeof js, "%s,\"bogus\":1}", base);
    assert_int_equal(mav_clip_config_from_json(&c, js), MAV_ERR_FORMAT);
    assert_non_null(strstr(mav_last_error(), "bogus"));
    assert_int_equal(mav_clip_config_from_json(&c, "{\"embed_dim\":8}"), MAV_ERR_FORMAT);
    mav_clip_config_named(&c, "tiny");
    c.vision_heads = 5;  // does not divide 48
    assert_int_equal(mav_clip_config_check(&c), MAV_ERR_ARG);
    assert_non_null(strstr(mav_last_error(), "vision_heads"));
    mav_clip_config_named(&c, "tiny");
    c.image_resolution = 22;  // not a multiple of the patch
    assert_int_equal(mav_clip_config_check(&c), MAV_ERR_ARG);
}

// Save / load round trip (F16 with mav.config), prefixed loading from a pipeline-like file,
// and the errors: missing, unexpected and mis-shaped tensors, a scalar that disagrees with the
// shapes, token ids outside the vocabulary.
static void checkpoints_and_errors(void **state) {
    (void)state;
    mav_clip_config c;
    mav_clip_config_named(&c, "tiny");
    mav_clip *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_int_equal(mav_clip_create(a, &c), MAV_OK);
    assert_int_equal(mav_clip_alloc_params(a, 0), MAV_OK);
    mav_clip_init_params(a, 9);
    assert_true(fabsf(*mav_clip_logit_scale(a) - logf(1.0f / 0.07f)) < 1e-6f);
    char path[256];
    snprintf(path, sizeof path, "/tmp/mav_clip_%d.safetensors", (int)getpid());
    assert_int_equal(mav_clip_save(a, path, MAV_F16, 0, NULL, NULL), MAV_OK);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    mav_clip_config rc;
    assert_int_equal(mav_clip_read_config(&f, &rc), MAV_OK);
    assert_memory_equal(&rc, &c, sizeof c);
    assert_int_equal(mav_clip_create(b, &rc), MAV_OK);
    assert_int_equal(mav_clip_alloc_params(b, 0), MAV_OK);
    assert_int_equal(mav_clip_load_weights(b, &f, ""), MAV_OK);
    for (size_t i = 0; i < a->params.total; i++)
        assert_true(b->params.value[i] == mav_f16_to_f32(mav_f32_to_f16(a->params.value[i])));
    mav_st_close(&f);

    // a pipeline-like file: every tensor under "clip.", another network's tensor beside them
    mav_st_writer w;
    mav_st_writer_init(&w);
    char name[MAV_NAME_MAX + 8];
    for (int k = 0; k < a->params.count; k++) {
        const mav_param *t = &a->params.items[k];
        snprintf(name, sizeof name, "clip.%s", t->name);
        mav_st_writer_add_f32(&w, name, t->ndim, t->shape, mav_param_value(&a->params, k), MAV_F32);
    }
    int64_t one = 1;
    float z = 0.0f;
    mav_st_writer_add_f32(&w, "prior.pos", 1, &one, &z, MAV_F32);
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    mav_st_writer_free(&w);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_int_equal(mav_clip_config_infer(&rc, &f, "clip."), MAV_ERR_SHAPE);  // tiny widths are not multiples of 64
    assert_non_null(strstr(mav_last_error(), "mav.config"));
    assert_int_equal(mav_clip_load_weights(b, &f, "clip."), MAV_OK);
    for (size_t i = 0; i < a->params.total; i++) assert_true(b->params.value[i] == a->params.value[i]);
    assert_int_equal(mav_clip_load_weights(b, &f, ""), MAV_ERR_SHAPE);  // unprefixed: all unexpected
    mav_st_close(&f);

    // missing / mis-shaped / extra tensors, scalars
    for (int variant = 0; variant < 4; variant++) {
        mav_st_writer_init(&w);
        for (int k = 0; k < a->params.count; k++) {
            const mav_param *t = &a->params.items[k];
            int64_t shape[MAV_MAX_DIMS];
            memcpy(shape, t->shape, sizeof shape);
            if (variant == 0 && strcmp(t->name, "visual.ln_post.bias") == 0) continue;
            if (variant == 1 && strcmp(t->name, "transformer.resblocks.1.attn.in_proj_weight") == 0)
                shape[0] = t->shape[1], shape[1] = t->shape[0];
            mav_st_writer_add_f32(&w, t->name, t->ndim, shape, mav_param_value(&a->params, k), MAV_F32);
        }
        int64_t bad_ctx = 10, good_ctx = 9;
        if (variant == 2) mav_st_writer_add_raw(&w, "context_length", MAV_I64, 0, NULL, &bad_ctx);
        if (variant == 3) {
            mav_st_writer_add_raw(&w, "context_length", MAV_I64, 0, NULL, &good_ctx);
            mav_st_writer_add_f32(&w, "visual.attnpool.weight", 1, &one, &z, MAV_F32);
        }
        assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
        mav_st_writer_free(&w);
        assert_int_equal(mav_st_open(&f, path), MAV_OK);
        assert_int_equal(mav_clip_load_weights(b, &f, ""), MAV_ERR_SHAPE);
        const char *want[] = {"visual.ln_post.bias", "transformer.resblocks.1.attn.in_proj_weight", "context_length",
                              "visual.attnpool.weight"};
        if (!strstr(mav_last_error(), want[variant])) fail_msg("variant %d: %s", variant, mav_last_error());
        mav_st_close(&f);
    }
    unlink(path);

    // token ids outside [0, vocab) are refused before any work
    assert_int_equal(mav_clip_plan(b, 1, 0, 0), MAV_OK);
    int32_t tok[9] = {0, 5, 61, 0, 0, 0, 0, 0, 0};
    assert_int_equal(mav_clip_encode_text(b, NULL, NULL, tok), MAV_ERR_ARG);
    assert_int_equal(mav_clip_plan(b, 1, 1, 1), MAV_ERR_ARG);  // no gradients allocated
    mav_clip_free(a); mav_clip_free(b);
    free(a); free(b);
}

MAV_TEST_GROUP(clip,
    cmocka_unit_test(parity_tiny),
    cmocka_unit_test(parity_gelu),
    cmocka_unit_test(transformer_block_prior_names_masks),
    cmocka_unit_test(preprocess_matches_torch),
    cmocka_unit_test(config_json_and_errors),
    cmocka_unit_test(checkpoints_and_errors),
    cmocka_unit_test(vitb32_checkpoint))
