// The prior (SPEC §5) against the PyTorch reference written from SPEC §5
// (tests/reference/prior_ref.py, data from net_prior.py): the output x0 and *every* parameter
// gradient for the `tiny` config (masks hiding trailing tokens) and an `odd` config (one block,
// L = 3, a mask that also hides SOT, which must stay a key); masked keys truly ignored;
// checkpoint round trip and load errors; configs; and learning: a tiny prior learns a fixed
// mapping from 8 text encodings to 8 unit image embeddings and CFG + DDIM sampling recalls it.
//
// Tolerance (parity), as tests/test_unet.c and tests/test_clip.c: the reference runs in
// float64 from the same f32 weights and inputs; mav runs in f32 through LayerNorms, GEMMs with
// K ≤ 4·width, softmax and the residual stream. Per tensor max|err| ≤ 2e-4 · max|ref|;
// gradients that are small next to the rest carry f32 noise at the scale of the largest one,
// so each gradient tensor is judged against max(its own scale, 1e-3 × the case's largest
// parameter gradient). A wrong index, missing term, transposed weight or wrong mask gives
// errors of O(1) relative. MAV_TEST_VERBOSE=1 prints each ratio.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "optim/lr_schedule.h"
#include "train/prior_train.h"
#include "testutil.h"

static const double TOL = 2e-4;

static mav_prior *load_model(const char *file, int training) {
    mav_st_file *mf = tu_ref_open(file);
    mav_prior_config c;
    if (mav_prior_read_config(mf, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_prior *m = calloc(1, sizeof *m);
    assert_non_null(m);
    if (mav_prior_create(m, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    assert_int_equal(mav_prior_alloc_params(m, training), MAV_OK);
    if (mav_prior_load_weights(m, mf, "") != MAV_OK) fail_msg("%s", mav_last_error());
    tu_ref_close(mf);
    return m;
}

static uint8_t *ref_mask(mav_st_file *f, size_t *n) {
    float *v = tu_ref_f32(f, "mask", n);
    uint8_t *mk = malloc(*n);
    assert_non_null(mk);
    for (size_t i = 0; i < *n; i++) mk[i] = (uint8_t)(v[i] != 0.0f);
    free(v);
    return mk;
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

typedef struct {
    int B;
    float *tt, *te, *x, *t;
    uint8_t *mask;
} inputs;

static inputs read_inputs(mav_st_file *df) {
    inputs in;
    size_t n;
    in.B = (int)tu_ref_dim(df, "x", 0);
    in.tt = tu_ref_f32(df, "text_tokens", NULL);
    in.te = tu_ref_f32(df, "text_emb", NULL);
    in.x = tu_ref_f32(df, "x", NULL);
    in.t = tu_ref_f32(df, "t", NULL);
    in.mask = ref_mask(df, &n);
    return in;
}

static void free_inputs(inputs *in) { free(in->tt); free(in->te); free(in->x); free(in->t); free(in->mask); }

static void parity_case(const char *case_name) {
    char name[128];
    snprintf(name, sizeof name, "prior_%s_model", case_name);
    mav_prior *m = load_model(name, 1);
    snprintf(name, sizeof name, "prior_%s", case_name);
    mav_st_file *df = tu_ref_open(name);
    inputs in = read_inputs(df);
    size_t nx0 = (size_t)in.B * m->cfg.emb_dim;
    if (mav_prior_plan(m, in.B, 1) != MAV_OK) fail_msg("%s", mav_last_error());
    float *x0 = tu_alloc_f(nx0), *x0b = tu_alloc_f(nx0);
    mav_prior_forward(m, x0, in.tt, in.te, in.x, in.t, in.mask);
    check_ref(df, case_name, "x0", x0, nx0, 1e-3);

    float *d_x0 = tu_ref_f32(df, "d_x0", NULL);
    mav_params_zero_grad(&m->params);
    mav_prior_backward(m, d_x0);
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
    mav_prior_forward(m, x0b, in.tt, in.te, in.x, in.t, in.mask);
    tu_check_equal("second forward x0", x0b, x0, nx0);
    assert_int_equal(mav_prior_plan(m, in.B, 0), MAV_OK);
    memset(x0b, 0, nx0 * sizeof(float));
    mav_prior_forward(m, x0b, in.tt, in.te, in.x, in.t, in.mask);
    tu_check_equal("inference plan x0", x0b, x0, nx0);
    free(x0); free(x0b); free(d_x0);
    free_inputs(&in);
    tu_ref_close(df);
    mav_prior_free(m);
    free(m);
}

static void parity_tiny(void **s) { (void)s; parity_case("tiny"); }
static void parity_odd(void **s) { (void)s; parity_case("odd"); }

// Token positions after EOT are not keys: changing their features leaves x0 bit-identical
// (not merely close: a masked key contributes exp(−inf) = 0 exactly). Changing a real token
// does change x0, so the check can fail. Without a mask every position counts.
static void masked_keys_ignored(void **state) {
    (void)state;
    mav_prior *m = load_model("prior_tiny_model", 0);
    mav_st_file *df = tu_ref_open("prior_tiny");
    inputs in = read_inputs(df);
    const mav_prior_config *c = &m->cfg;
    int B = in.B, L = c->text_ctx, TW = c->text_width, E = c->emb_dim;
    size_t ntt = (size_t)B * L * TW, nx0 = (size_t)B * E;
    assert_int_equal(mav_prior_plan(m, B, 0), MAV_OK);
    float *x0 = tu_alloc_f(nx0), *x0b = tu_alloc_f(nx0), *tt2 = tu_alloc_f(ntt);
    mav_prior_forward(m, x0, in.tt, in.te, in.x, in.t, in.mask);
    memcpy(tt2, in.tt, ntt * sizeof(float));
    int hidden = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < L; j++)
            if (!in.mask[b * L + j]) {
                hidden++;
                for (int k = 0; k < TW; k++) tt2[((size_t)b * L + j) * TW + k] += 10.0f * (float)(k % 7 - 3);
            }
    assert_true(hidden >= 10);  // the reference masks hide 5 + 7 trailing positions
    mav_prior_forward(m, x0b, tt2, in.te, in.x, in.t, in.mask);
    tu_check_equal("x0 with changed tokens after EOT", x0b, x0, nx0);
    // sample 1 (EOT at 3): change the real token at 2; only that sample moves
    for (int k = 0; k < TW; k++) tt2[((size_t)1 * L + 2) * TW + k] += 1.0f;
    mav_prior_forward(m, x0b, tt2, in.te, in.x, in.t, in.mask);
    tu_check_equal("x0 of sample 0", x0b, x0, (size_t)E);
    double diff = 0.0;
    for (int k = 0; k < E; k++) diff = fmax(diff, fabs(x0b[E + k] - x0[E + k]));
    if (!(diff > 1e-3)) fail_msg("changing a real token moved x0 by only %g", diff);
    // no mask: the changed padding now matters
    mav_prior_forward(m, x0, in.tt, in.te, in.x, in.t, NULL);
    mav_prior_forward(m, x0b, tt2, in.te, in.x, in.t, NULL);
    diff = 0.0;
    for (int k = 0; k < E; k++) diff = fmax(diff, fabs(x0b[2 * E + k] - x0[2 * E + k]));
    if (!(diff > 1e-3)) fail_msg("without a mask, padding features moved x0 by only %g", diff);
    // the mask of tokenised captions: 1 up to and including EOT (the highest id)
    int32_t tok[2 * 5] = {49406, 320, 49407, 0, 0, 49406, 1, 2, 3, 49407};
    uint8_t mk[10], want[10] = {1, 1, 1, 0, 0, 1, 1, 1, 1, 1};
    mav_prior_mask_from_tokens(mk, tok, 2, 5);
    assert_memory_equal(mk, want, 10);
    free(x0); free(x0b); free(tt2);
    free_inputs(&in);
    tu_ref_close(df);
    mav_prior_free(m);
    free(m);
}

// Save / load round trip (F32 exact, F16 rounded once), and a missing, extra or mis-shaped
// tensor is an error naming it; configs round-trip through JSON and bad ones are refused.
static void checkpoint_and_config(void **state) {
    (void)state;
    mav_prior_config c, rc;
    assert_int_equal(mav_prior_config_named(&c, "tiny"), MAV_OK);
    mav_prior *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_int_equal(mav_prior_create(a, &c), MAV_OK);
    assert_int_equal(mav_prior_alloc_params(a, 0), MAV_OK);
    mav_prior_init_params(a, 7);
    // documented init: LayerNorm gains 1; query and pos small; linears within ±1/sqrt(fan_in)
    assert_true(mav_param_value(&a->params, a->lnf_w)[5] == 1.0f && mav_param_value(&a->params, a->lnf_b)[5] == 0.0f);
    float qmax = 0, wmax = 0;
    for (int k = 0; k < c.width; k++) qmax = fmaxf(qmax, fabsf(mav_param_value(&a->params, a->query)[k]));
    for (int k = 0; k < c.width * c.text_width; k++) wmax = fmaxf(wmax, fabsf(mav_param_value(&a->params, a->tok_w)[k]));
    assert_true(qmax > 0.0f && qmax < 0.1f);
    assert_true(wmax > 0.5f / sqrtf((float)c.text_width) && wmax <= 1.0f / sqrtf((float)c.text_width));
    char path[256];
    snprintf(path, sizeof path, "/tmp/mav_prior_ckpt_%d.safetensors", (int)getpid());
    const char *k1[] = {"mav.step"}, *v1[] = {"12"};
    assert_int_equal(mav_prior_save(a, path, MAV_F32, 1, k1, v1), MAV_OK);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_string_equal(mav_st_meta(&f, "mav.step"), "12");
    assert_int_equal(mav_prior_read_config(&f, &rc), MAV_OK);
    assert_memory_equal(&rc, &c, sizeof c);
    assert_int_equal(mav_prior_create(b, &rc), MAV_OK);
    assert_int_equal(mav_prior_alloc_params(b, 0), MAV_OK);
    assert_int_equal(mav_prior_load_weights(b, &f, ""), MAV_OK);
    tu_check_equal("F32 round trip", b->params.value, a->params.value, a->params.total);
    mav_st_close(&f);
    assert_int_equal(mav_prior_save(a, path, MAV_F16, 0, NULL, NULL), MAV_OK);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_int_equal(mav_prior_load_weights(b, &f, ""), MAV_OK);
    for (size_t i = 0; i < a->params.total; i++)
        assert_true(b->params.value[i] == mav_f16_to_f32(mav_f32_to_f16(a->params.value[i])));
    mav_st_close(&f);

    // hand-written files: one tensor skipped / one extra / one mis-shaped
    static const char *const cases[3] = {"missing", "extra", "shape"};
    for (int cs = 0; cs < 3; cs++) {
        mav_st_writer w;
        mav_st_writer_init(&w);
        char *cfg = mav_prior_config_to_json(&c);
        mav_st_writer_meta(&w, "mav.kind", "prior");
        mav_st_writer_meta(&w, "mav.config", cfg);
        free(cfg);
        for (int k = 0; k < a->params.count; k++) {
            const mav_param *t = &a->params.items[k];
            int64_t shape[MAV_MAX_DIMS];
            memcpy(shape, t->shape, sizeof shape);
            if (cs == 0 && strcmp(t->name, "blocks.1.mlp.fc.bias") == 0) continue;
            if (cs == 2 && strcmp(t->name, "pos") == 0) shape[0] = c.text_ctx + 3, shape[1] = c.width;
            mav_st_writer_add_f32(&w, t->name, t->ndim, shape, mav_param_value(&a->params, k), MAV_F32);
        }
        float z[4] = {0};
        int64_t four = 4;
        if (cs == 1) mav_st_writer_add_f32(&w, "blocks.2.ln1.weight", 1, &four, z, MAV_F32);
        assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
        mav_st_writer_free(&w);
        assert_int_equal(mav_st_open(&f, path), MAV_OK);
        assert_int_equal(mav_prior_load_weights(b, &f, ""), MAV_ERR_SHAPE);
        const char *want = cs == 0 ? "\"blocks.1.mlp.fc.bias\" is missing" : cs == 1 ? "\"blocks.2.ln1.weight\"" : "pos";
        if (!strstr(mav_last_error(), want)) fail_msg("%s: error \"%s\" lacks %s", cases[cs], mav_last_error(), want);
        mav_st_close(&f);
    }
    // not a prior checkpoint
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_st_writer_meta(&w, "mav.kind", "unet");
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    mav_st_writer_free(&w);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_int_equal(mav_prior_read_config(&f, &rc), MAV_ERR_FORMAT);
    assert_non_null(strstr(mav_last_error(), "not a prior checkpoint"));
    mav_st_close(&f);
    unlink(path);

    // configs
    for (const char *const *nm = mav_prior_config_names(); *nm; nm++) {
        assert_int_equal(mav_prior_config_named(&c, *nm), MAV_OK);
        char *js = mav_prior_config_to_json(&c);
        assert_int_equal(mav_prior_config_from_json(&rc, js), MAV_OK);
        assert_memory_equal(&rc, &c, sizeof c);
        free(js);
    }
    assert_int_equal(mav_prior_config_named(&c, "nosuch"), MAV_ERR_ARG);
    struct { const char *json, *needle; } bad[] = {
        {"{\"width\":48,\"layers\":2,\"heads\":5,\"text_width\":40,\"emb_dim\":24,\"text_ctx\":9}", "heads 5 does not divide"},
        {"{\"width\":45,\"layers\":1,\"heads\":5,\"text_width\":40,\"emb_dim\":24,\"text_ctx\":9}", "width must be even"},
        {"{\"width\":48,\"layers\":2,\"heads\":3,\"text_width\":40,\"emb_dim\":24}", "\"text_ctx\" is missing"},
        {"{\"width\":48,\"layers\":2,\"heads\":3,\"text_width\":40,\"emb_dim\":24,\"text_ctx\":9,\"x\":1}", "unknown field \"x\""},
        {"{\"width\":48,\"layers\":0,\"heads\":3,\"text_width\":40,\"emb_dim\":24,\"text_ctx\":9}", "layers must be in"},
        {"[1]", "not a JSON object"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_not_equal(mav_prior_config_from_json(&rc, bad[i].json), MAV_OK);
        if (!strstr(mav_last_error(), bad[i].needle))
            fail_msg("config %s: error \"%s\" lacks \"%s\"", bad[i].json, mav_last_error(), bad[i].needle);
    }
    // plans that cannot work are refused with a reason
    assert_int_equal(mav_prior_plan(b, 0, 0), MAV_ERR_ARG);
    assert_int_equal(mav_prior_plan(b, 2, 1), MAV_ERR_ARG);  // no gradients allocated
    assert_non_null(strstr(mav_last_error(), "gradients"));
    mav_prior_free(a); mav_prior_free(b);
    free(a); free(b);
}

// The pieces around the network: the training step's target is sqrt(E)·y/|y| and its text is
// the caption's or, when dropped, exactly the empty caption's encoding; the guided denoiser
// equals x0_u + s·(x0_c − x0_u) of two separate forwards (and s = 1 is the conditional forward).
static void train_step_and_denoiser(void **state) {
    (void)state;
    mav_prior *m = load_model("prior_tiny_model", 1);
    mav_st_file *df = tu_ref_open("prior_tiny");
    inputs in = read_inputs(df);
    const mav_prior_config *c = &m->cfg;
    int B = in.B, L = c->text_ctx, TW = c->text_width, E = c->emb_dim;
    size_t ntt = (size_t)B * L * TW, ne = (size_t)B * E;
    float *ntok = tu_alloc_f((size_t)L * TW), *nemb = tu_alloc_f((size_t)E), *img = tu_alloc_f(ne);
    uint8_t nmask[16] = {1, 1};
    tu_fill_normal(ntok, (size_t)L * TW, 11);
    tu_fill_normal(nemb, (size_t)E, 12);
    tu_fill_normal(img, ne, 13);
    for (size_t i = 0; i < ne; i++) img[i] *= 3.0f;  // CLIP embeddings are not unit length
    mav_prior_null null = {.text_tokens = ntok, .text_emb = nemb, .mask = nmask};
    mav_prior_trainer tr;
    mav_prior_trainer_init(&tr);
    assert_int_equal(mav_prior_trainer_plan(&tr, m, B), MAV_OK);
    for (int drop = 0; drop <= 1; drop++) {
        tr.text_drop = (float)drop;  // 0: never, 1: always (u < 1)
        mav_rng rng = mav_rng_make(5);
        mav_prior_step_result r = mav_prior_train_step(&tr, m, in.tt, in.te, in.mask, img, &null, &rng, 1, 0.0f);
        assert_false(r.skipped);
        assert_int_equal(r.dropped, drop ? B : 0);
        for (int b = 0; b < B; b++) {
            double n2 = 0, dot = 0, ni = 0;
            for (int k = 0; k < E; k++) {
                n2 += (double)tr.x0[b * E + k] * tr.x0[b * E + k];
                dot += (double)tr.x0[b * E + k] * img[b * E + k];
                ni += (double)img[b * E + k] * img[b * E + k];
            }
            // |x0|² = E up to f32 rounding of E elements (relative ~E·2⁻²⁴); same direction as y
            if (fabs(n2 - E) > 1e-5 * E || fabs(dot / sqrt(n2 * ni) - 1.0) > 1e-6)
                fail_msg("sample %d: |x0|² %.7f (want %d), cosine with y %.8f", b, n2, E, dot / sqrt(n2 * ni));
            const float *want_tt = drop ? ntok : in.tt + (size_t)b * L * TW;
            const float *want_te = drop ? nemb : in.te + (size_t)b * E;
            tu_check_equal("step text_tokens", tr.tt + (size_t)b * L * TW, want_tt, (size_t)L * TW);
            tu_check_equal("step text_emb", tr.te + (size_t)b * E, want_te, (size_t)E);
            assert_memory_equal(tr.mask + b * L, drop ? nmask : in.mask + b * L, (size_t)L);
        }
        // the loss reported is the MSE of the network on x_t against x0
        float *out = tu_alloc_f(ne);
        mav_prior_forward(m, out, tr.tt, tr.te, tr.xt, tr.tf, tr.mask);
        double se = 0;
        for (size_t i = 0; i < ne; i++) se += ((double)out[i] - tr.x0[i]) * ((double)out[i] - tr.x0[i]);
        // lr 0 leaves the weights exactly as they were, so only the summation order differs (double)
        if (fabs(se / ne - r.loss) > 1e-12 * (1 + r.loss)) fail_msg("loss %.10g, recomputed %.10g", r.loss, se / ne);
        free(out);
    }
    mav_prior_trainer_free(&tr);

    // guided denoiser vs two plain forwards (inference plan of B rows)
    const double s = 2.5, t = 417.0;
    float *x = in.x, *xg = tu_alloc_f(ne), *x1 = tu_alloc_f(ne), *xc = tu_alloc_f(ne), *xu = tu_alloc_f(ne);
    float *tntt = tu_alloc_f(ntt), *tnte = tu_alloc_f(ne), tf[8];
    uint8_t tnm[64];
    for (int b = 0; b < B; b++) {
        memcpy(tntt + (size_t)b * L * TW, ntok, (size_t)L * TW * sizeof(float));
        memcpy(tnte + (size_t)b * E, nemb, (size_t)E * sizeof(float));
        memcpy(tnm + b * L, nmask, (size_t)L);
        tf[b] = (float)t;
    }
    mav_prior_denoiser d;
    assert_int_equal(mav_prior_denoiser_init(&d, m, B, in.tt, in.te, in.mask, &null, s), MAV_OK);
    assert_int_equal(mav_prior_denoise(&d, xg, x, t, ne), MAV_OK);
    mav_prior_denoiser_free(&d);
    assert_int_equal(mav_prior_denoiser_init(&d, m, B, in.tt, in.te, in.mask, NULL, 1.0), MAV_OK);
    assert_int_equal(mav_prior_denoise(&d, x1, x, t, ne), MAV_OK);
    mav_prior_denoiser_free(&d);
    assert_int_equal(mav_prior_plan(m, B, 0), MAV_OK);
    mav_prior_forward(m, xc, in.tt, in.te, x, tf, in.mask);
    mav_prior_forward(m, xu, tntt, tnte, x, tf, tnm);
    tu_check_equal("scale 1 = conditional forward", x1, xc, ne);
    // the batched forward (2B rows) equals the per-branch ones up to GEMM blocking, and the
    // combination rounds once more: 1e-5 relative to the scale of |x0_u| + s·|x0_c − x0_u|
    double *want = tu_alloc_d(ne);
    for (size_t i = 0; i < ne; i++) want[i] = xu[i] + s * ((double)xc[i] - xu[i]);
    tu_check_rel_max("guided x0", xg, want, ne, 1e-5, 1.0);
    free(want); free(xg); free(x1); free(xc); free(xu); free(tntt); free(tnte);
    free(ntok); free(nemb); free(img);
    free_inputs(&in);
    tu_ref_close(df);
    mav_prior_free(m);
    free(m);
}

// ---- learning ----------------------------------------------------------------------------
//
// The tiny prior learns a fixed mapping from 8 random "text" encodings (token features with
// EOT at positions 1..8, embeddings) to 8 random unit "image" embeddings, with the usual 10%
// empty-caption dropout. Trained with batch = all 8, AdamW lr 1e-3 (warmup, cosine decay).
// Checks: the x0 MSE on a fixed evaluation set of (caption, t, noise) falls ≥ 10×; CFG
// (scale 2) DDIM sampling (η 0, 25 steps) gives, for every caption, an embedding whose cosine
// with its own target is > 0.9 and the largest among the 8 targets.

enum { NCAP = 8 };

static double now(void) { struct timespec ts; clock_gettime(CLOCK_MONOTONIC, &ts); return ts.tv_sec + 1e-9 * ts.tv_nsec; }

static double eval_loss(mav_prior *m, const mav_schedule *s, const float *tt, const float *te, const uint8_t *mask,
                        const float *x0) {
    static const int ts[4] = {30, 200, 500, 850};
    int E = m->cfg.emb_dim;
    size_t n = (size_t)NCAP * E;
    float *eps = tu_alloc_f(n), *xt = tu_alloc_f(n), *out = tu_alloc_f(n), tf[NCAP];
    int t[NCAP];
    double total = 0;
    for (int k = 0; k < 4; k++) {
        tu_fill_normal(eps, n, 900 + k);
        for (int i = 0; i < NCAP; i++) { t[i] = ts[k]; tf[i] = (float)ts[k]; }
        mav_diffusion_q_sample(s, xt, x0, eps, t, NCAP, (size_t)E);
        mav_prior_forward(m, out, tt, te, xt, tf, mask);
        double se = 0;
        for (size_t j = 0; j < n; j++) se += (double)(out[j] - x0[j]) * (out[j] - x0[j]);
        total += se / n;
    }
    free(eps); free(xt); free(out);
    return total / 4;
}

static void tiny_learns_eight_mappings(void **state) {
    (void)state;
    mav_prior_config c;
    assert_int_equal(mav_prior_config_named(&c, "tiny"), MAV_OK);
    mav_prior *m = calloc(1, sizeof *m);
    assert_int_equal(mav_prior_create(m, &c), MAV_OK);
    assert_int_equal(mav_prior_alloc_params(m, 1), MAV_OK);
    mav_prior_init_params(m, 42);
    int L = c.text_ctx, TW = c.text_width, E = c.emb_dim;
    size_t ntt = (size_t)NCAP * L * TW, ne = (size_t)NCAP * E;
    float *tt = tu_alloc_f(ntt), *te = tu_alloc_f(ne), *img = tu_alloc_f(ne), *x0 = tu_alloc_f(ne);
    float *ntok = tu_alloc_f((size_t)L * TW), *nemb = tu_alloc_f((size_t)E);
    uint8_t mask[NCAP * 16], nmask[16];
    tu_fill_normal(tt, ntt, 1);
    tu_fill_normal(te, ne, 2);
    tu_fill_normal(img, ne, 3);
    mav_prior_normalize(img, img, NCAP, E, 1.0);  // unit "image" embeddings
    tu_fill_normal(ntok, (size_t)L * TW, 4);
    tu_fill_normal(nemb, (size_t)E, 5);
    for (int i = 0; i < NCAP; i++)
        for (int j = 0; j < L; j++) mask[i * L + j] = (uint8_t)(j <= 1 + i % (L - 1));
    for (int j = 0; j < L; j++) nmask[j] = (uint8_t)(j <= 1);  // "" = SOT, EOT
    mav_prior_null null = {.text_tokens = ntok, .text_emb = nemb, .mask = nmask};
    mav_prior_normalize(x0, img, NCAP, E, sqrt((double)E));

    mav_prior_trainer tr;
    mav_prior_trainer_init(&tr);
    assert_int_equal(mav_prior_trainer_plan(&tr, m, NCAP), MAV_OK);
    double before = eval_loss(m, &tr.sched, tt, te, mask, x0);
#if defined(__SANITIZE_ADDRESS__)
    const int steps = 30;  // sanitizer builds: the same code path, a shorter run (see the check below)
#else
    const int steps = 400;
#endif
    mav_lr_schedule ls = {.base_lr = 1e-3, .min_lr = 5e-5, .warmup = 50, .total = steps};
    mav_rng rng = mav_rng_make(2024);
    double t0 = now();
    int dropped = 0;
    for (int s = 1; s <= steps; s++) {
        mav_prior_step_result r =
            mav_prior_train_step(&tr, m, tt, te, mask, img, &null, &rng, s, (float)mav_lr_at(&ls, s));
        if (r.skipped) fail_msg("step %d: non-finite loss or gradients", s);
        dropped += r.dropped;
        if (getenv("MAV_TEST_VERBOSE") && s % 100 == 0)
            printf("  step %d loss %.4f |g| %.3f  (%.2f ms/step)\n", s, r.loss, r.grad_norm, 1e3 * (now() - t0) / s);
    }
    double after = eval_loss(m, &tr.sched, tt, te, mask, x0);
    printf("  tiny prior: eval loss %.4f -> %.4f (%.1fx) in %d steps, %d of %d samples on the empty caption, %.1f s\n",
           before, after, before / after, steps, dropped, steps * NCAP, now() - t0);
    // ~10% of the samples use the empty caption (binomial: 320 ± 17 at 400 steps)
    if (steps * NCAP >= 1000 && (dropped < 0.07 * steps * NCAP || dropped > 0.13 * steps * NCAP))
        fail_msg("%d of %d samples dropped the text; want about 10%%", dropped, steps * NCAP);
#if defined(__SANITIZE_ADDRESS__)
    if (!(after < before)) fail_msg("eval loss did not fall: %g -> %g", before, after);
#else
    if (!(after * 10 <= before)) fail_msg("eval loss fell only %.2fx (%g -> %g); want >= 10x", before / after, before, after);
#endif

    mav_prior_denoiser d;
    assert_int_equal(mav_prior_denoiser_init(&d, m, NCAP, tt, te, mask, &null, 2.0), MAV_OK);
    mav_sampler_params sp = mav_sampler_default_params(MAV_SAMPLER_DDIM);
    sp.steps = 25;
    float *emb = tu_alloc_f(ne);
    mav_rng srng = mav_rng_make(77);
    assert_int_equal(mav_prior_sample(&d, &tr.sched, sp, emb, &srng), MAV_OK);
    for (int i = 0; i < NCAP; i++) {
        double nrm = 0, own = 0, best = -2;
        int arg = -1;
        for (int k = 0; k < E; k++) nrm += (double)emb[i * E + k] * emb[i * E + k];
        if (fabs(nrm - 1.0) > 1e-5) fail_msg("sample %d has norm² %.7f; want a unit vector", i, nrm);
        for (int j = 0; j < NCAP; j++) {
            double cs = 0;
            for (int k = 0; k < E; k++) cs += (double)emb[i * E + k] * img[j * E + k];
            if (j == i) own = cs;
            if (cs > best) { best = cs; arg = j; }
        }
        printf("  caption %d: cosine with its target %.4f, nearest target %d\n", i, own, arg);
#if !defined(__SANITIZE_ADDRESS__)
        if (arg != i || own <= 0.9) fail_msg("caption %d: nearest target %d, cosine with its own %.4f (want itself, > 0.9)", i, arg, own);
#endif
    }
    free(emb);
    mav_prior_denoiser_free(&d);
    // guidance without the empty caption is refused
    assert_int_equal(mav_prior_denoiser_init(&d, m, NCAP, tt, te, mask, NULL, 3.0), MAV_ERR_ARG);
    mav_prior_trainer_free(&tr);
    mav_prior_free(m);
    free(m); free(tt); free(te); free(img); free(x0); free(ntok); free(nemb);
}

MAV_TEST_GROUP(prior,
    cmocka_unit_test(parity_tiny),
    cmocka_unit_test(parity_odd),
    cmocka_unit_test(masked_keys_ignored),
    cmocka_unit_test(checkpoint_and_config),
    cmocka_unit_test(train_step_and_denoiser),
    cmocka_unit_test(tiny_learns_eight_mappings))
