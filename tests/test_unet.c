// The P3D U-Net against the PyTorch reference written from SPEC §3 (tests/reference/
// unet_ref.py, data from net_unet.py): forward output and *every* parameter gradient, for
// `tiny` and one case per role option (interpolation: 7 channels + frame-skip + context at
// every level; SR_l: aug conditioning, no attention levels; SR_h: never temporal). Plus
// inflation, checkpoint round trips and loading errors.
//
// Tolerance: the reference runs in float64 from the same f32 weights and inputs; mav runs in
// f32 through ~20 layers (GEMMs with K up to 9·128, GroupNorm, softmax). Per tensor we
// require max|err| ≤ 2e-4 · max|ref| (measured: ~1e-6–3e-5 on these cases, MAV_TEST_VERBOSE=1
// prints each ratio). A single wrong index, missing term or transposed weight gives O(1).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nets/unet.h"
#include "testutil.h"

static const double TOL = 2e-4;

static mav_unet *load_net(const char *case_name, mav_st_file **model_out) {
    char name[128];
    snprintf(name, sizeof name, "unet_%s_model", case_name);
    mav_st_file *mf = tu_ref_open(name);
    mav_unet_config c;
    if (mav_unet_read_config(mf, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_unet *net = calloc(1, sizeof *net);
    assert_non_null(net);
    if (mav_unet_create(net, &c) != MAV_OK) fail_msg("%s", mav_last_error());
    assert_int_equal(mav_unet_alloc_params(net, 1), MAV_OK);
    if (mav_unet_load_weights(net, mf) != MAV_OK) fail_msg("%s", mav_last_error());
    *model_out = mf;
    return net;
}

static void parity_case(const char *case_name) {
    mav_st_file *mf;
    mav_unet *net = load_net(case_name, &mf);
    const mav_unet_config *c = &net->cfg;
    char name[128];
    snprintf(name, sizeof name, "unet_%s", case_name);
    mav_st_file *df = tu_ref_open(name);
    int B = (int)tu_ref_dim(df, "x", 0), F = (int)tu_ref_dim(df, "x", 2);
    int H = (int)tu_ref_dim(df, "x", 3), W = (int)tu_ref_dim(df, "x", 4);
    long P = (long)H * W;
    if (mav_unet_plan(net, B, F, H, W, 1) != MAV_OK) fail_msg("%s", mav_last_error());
    size_t nx, n;
    float *x = tu_ref_f32(df, "x", &nx), *t = tu_ref_f32(df, "t", NULL);
    float *e = c->emb_dim ? tu_ref_f32(df, "e", NULL) : NULL;
    float *fps = c->cond_fps ? tu_ref_f32(df, "fps", NULL) : NULL;
    float *aug = c->cond_aug ? tu_ref_f32(df, "aug", NULL) : NULL;
    float *xf = tu_alloc_f(nx);
    mav_video_to_frames_major(xf, x, B, c->in_ch, F, P);
    size_t neps = (size_t)B * F * c->out_ch * P;
    float *eps_f = tu_alloc_f(neps), *eps = tu_alloc_f(neps);
    mav_unet_forward(net, eps_f, xf, t, e, fps, aug);
    mav_video_from_frames_major(eps, eps_f, B, c->out_ch, F, P);
    double *want = tu_ref_f64(df, "eps", &n);
    assert_int_equal(n, neps);
    char what[256];
    snprintf(what, sizeof what, "%s: eps", case_name);
    tu_check_rel_max(what, eps, want, n, TOL, 1e-3);
    free(want);

    // backward with loss = sum(eps · dout)
    float *dout = tu_ref_f32(df, "dout", NULL), *dout_f = tu_alloc_f(neps), *dxf = tu_alloc_f(nx), *dx = tu_alloc_f(nx);
    mav_video_to_frames_major(dout_f, dout, B, c->out_ch, F, P);
    mav_params_zero_grad(&net->params);
    mav_unet_backward(net, dxf, dout_f);
    mav_video_from_frames_major(dx, dxf, B, c->in_ch, F, P);
    want = tu_ref_f64(df, "grad.x", &n);
    snprintf(what, sizeof what, "%s: grad.x", case_name);
    tu_check_rel_max(what, dx, want, nx, TOL, 1e-3);
    free(want);
    // Some gradients are exactly 0 in exact arithmetic: a conv bias followed by a GroupNorm
    // with one channel per group (GN removes any per-channel shift). f32 leaves rounding noise
    // there, so each tensor is judged against max(its own scale, 1e-3 × the largest parameter
    // gradient of the case) — the scale of the sums that produced the noise.
    double gmax = 0.0;
    for (int k = 0; k < net->params.count; k++) {
        snprintf(what, sizeof what, "grad.%s", net->params.items[k].name);
        want = tu_ref_f64(df, what, &n);
        for (size_t i = 0; i < n; i++) gmax = fabs(want[i]) > gmax ? fabs(want[i]) : gmax;
        free(want);
    }
    for (int k = 0; k < net->params.count; k++) {
        const mav_param *pt = &net->params.items[k];
        snprintf(what, sizeof what, "grad.%s", pt->name);
        want = tu_ref_f64(df, what, &n);
        assert_int_equal(n, pt->numel);
        snprintf(what, sizeof what, "%s: grad.%s", case_name, pt->name);
        tu_check_rel_max(what, mav_param_grad(&net->params, k), want, n, TOL, 1e-3 * gmax);
        free(want);
    }
    // a second forward/backward on the same plan is bit-identical (determinism, no stale state)
    float *eps2 = tu_alloc_f(neps);
    mav_unet_forward(net, eps2, xf, t, e, fps, aug);
    tu_check_equal("second forward", eps2, eps_f, neps);
    free(x); free(t); free(e); free(fps); free(aug); free(xf); free(eps_f); free(eps); free(eps2);
    free(dout); free(dout_f); free(dxf); free(dx);
    tu_ref_close(df);
    tu_ref_close(mf);
    mav_unet_free(net);
    free(net);
}

static void parity_tiny(void **s) { (void)s; parity_case("tiny"); }
static void parity_interp(void **s) { (void)s; parity_case("interp"); }
static void parity_sr(void **s) { (void)s; parity_case("sr"); }
static void parity_srh(void **s) { (void)s; parity_case("srh"); }

// Inflation (SPEC §1): a temporal net loaded from an image checkpoint computes, frame by
// frame, what the image net computes — the temporal tensors get identity / zero values.
static void inflation_reproduces_image_net(void **state) {
    (void)state;
    mav_unet_config ic;
    assert_int_equal(mav_unet_config_named(&ic, "tiny"), MAV_OK);
    ic.temporal = 0;
    ic.max_frames = 0;
    mav_unet *img = calloc(1, sizeof *img), *vid = calloc(1, sizeof *vid);
    assert_int_equal(mav_unet_create(img, &ic), MAV_OK);
    assert_int_equal(mav_unet_alloc_params(img, 0), MAV_OK);
    mav_unet_init_params(&ic, &img->params, 7);
    // make the zero-init projections non-zero so the test sees the whole image network
    for (size_t i = 0; i < img->params.total; i++) img->params.value[i] += 0.01f * (float)((i * 2654435761u) % 1000) / 1000.0f;
    char path[256];
    snprintf(path, sizeof path, "/tmp/mav_inflate_%d.safetensors", (int)getpid());
    assert_int_equal(mav_unet_save(img, path, MAV_F32, 0, NULL, NULL), MAV_OK);

    mav_unet_config vc = ic;
    vc.temporal = 1;
    vc.max_frames = 8;
    assert_int_equal(mav_unet_create(vid, &vc), MAV_OK);
    assert_int_equal(mav_unet_alloc_params(vid, 0), MAV_OK);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    if (mav_unet_load_weights(vid, &f) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_st_close(&f);
    unlink(path);
    // temporal tensors exactly identity / zero (tqkv is free: its output is multiplied by tproj = 0)
    for (int k = 0; k < vid->params.count; k++) {
        const mav_param *t = &vid->params.items[k];
        if (!mav_unet_is_temporal_param(t->name) || strstr(t->name, ".tqkv.")) continue;
        const float *v = mav_param_value(&vid->params, k);
        for (size_t i = 0; i < t->numel; i++) {
            float want = 0.0f;
            if (strstr(t->name, ".temporal.weight")) want = (i % 3 == 1 && (i / 3) / t->shape[1] == (i / 3) % t->shape[1]) ? 1.0f : 0.0f;
            if (strstr(t->name, ".tnorm.weight")) want = 1.0f;
            if (v[i] != want) fail_msg("%s[%zu] = %g, want %g", t->name, i, v[i], want);
        }
    }
    int B = 2, F = 3, H = 8, W = 8;
    long P = (long)H * W;
    size_t nx = (size_t)B * F * 3 * P;
    float *x = tu_alloc_f(nx), *t = tu_alloc_f(B), *e = tu_alloc_f((size_t)B * 32), *fps = tu_alloc_f(B);
    tu_fill_normal(x, nx, 11);
    tu_fill_normal(e, (size_t)B * 32, 12);
    t[0] = 10; t[1] = 900; fps[0] = 4; fps[1] = 30;
    float *ev = tu_alloc_f(nx), *ei = tu_alloc_f(nx);
    assert_int_equal(mav_unet_plan(vid, B, F, H, W, 0), MAV_OK);
    mav_unet_forward(vid, ev, x, t, e, fps, NULL);
    // the image net sees each frame as its own sample: B·F samples of one frame, with each
    // sample's conditioning repeated for its frames
    float *ti = tu_alloc_f((size_t)B * F), *ei_e = tu_alloc_f((size_t)B * F * 32), *fi = tu_alloc_f((size_t)B * F);
    for (int b = 0; b < B; b++)
        for (int f = 0; f < F; f++) {
            ti[b * F + f] = t[b];
            fi[b * F + f] = fps[b];
            memcpy(ei_e + (b * F + f) * 32, e + b * 32, 32 * sizeof(float));
        }
    assert_int_equal(mav_unet_plan(img, B * F, 1, H, W, 0), MAV_OK);
    mav_unet_forward(img, ei, x, ti, ei_e, fi, NULL);
    double *eid = tu_to_d(ei, nx);
    tu_check_rel_max("inflated vs image net", ev, eid, nx, 1e-6, 1e-3);
    free(eid); free(x); free(t); free(e); free(fps); free(ev); free(ei); free(ti); free(ei_e); free(fi);
    mav_unet_free(img); mav_unet_free(vid);
    free(img); free(vid);
}

// Nothing but inflation is silently filled: a missing, extra or mis-shaped tensor is an
// error naming it; f16 checkpoints load.
static void checkpoint_errors_and_f16(void **state) {
    (void)state;
    mav_unet_config c;
    mav_unet_config_named(&c, "tiny");
    mav_unet *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    assert_int_equal(mav_unet_create(a, &c), MAV_OK);
    assert_int_equal(mav_unet_alloc_params(a, 0), MAV_OK);
    mav_unet_init_params(&c, &a->params, 3);
    char path[256];
    snprintf(path, sizeof path, "/tmp/mav_ckpt_%d.safetensors", (int)getpid());
    assert_int_equal(mav_unet_save(a, path, MAV_F16, 0, NULL, NULL), MAV_OK);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    mav_unet_config rc;
    assert_int_equal(mav_unet_read_config(&f, &rc), MAV_OK);
    assert_memory_equal(&rc, &c, sizeof c);
    assert_int_equal(mav_unet_create(b, &rc), MAV_OK);
    assert_int_equal(mav_unet_alloc_params(b, 0), MAV_OK);
    assert_int_equal(mav_unet_load_weights(b, &f), MAV_OK);
    for (size_t i = 0; i < a->params.total; i++)
        assert_true(b->params.value[i] == mav_f16_to_f32(mav_f32_to_f16(a->params.value[i])));
    mav_st_close(&f);

    // a temporal checkpoint missing one temporal tensor is an error, not inflation
    mav_st_writer w;
    mav_st_writer_init(&w);
    char *cfg = mav_unet_config_to_json(&c);
    mav_st_writer_meta(&w, "mav.kind", "unet");
    mav_st_writer_meta(&w, "mav.config", cfg);
    free(cfg);
    for (int k = 0; k < a->params.count; k++) {
        const mav_param *t = &a->params.items[k];
        if (strcmp(t->name, "mid.attn.tpos") == 0) continue;
        mav_st_writer_add_f32(&w, t->name, t->ndim, t->shape, mav_param_value(&a->params, k), MAV_F32);
    }
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_int_equal(mav_unet_load_weights(b, &f), MAV_ERR_SHAPE);
    assert_non_null(strstr(mav_last_error(), "\"mid.attn.tpos\" is missing"));
    mav_st_close(&f);
    // an extra tensor
    int64_t one = 1;
    float z = 0;
    mav_st_writer_add_f32(&w, "mid.attn.tpos", 2, a->params.items[mav_params_find(&a->params, "mid.attn.tpos")].shape,
                          mav_param_value(&a->params, mav_params_find(&a->params, "mid.attn.tpos")), MAV_F32);
    mav_st_writer_add_f32(&w, "bogus.weight", 1, &one, &z, MAV_F32);
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_int_equal(mav_unet_load_weights(b, &f), MAV_ERR_SHAPE);
    assert_non_null(strstr(mav_last_error(), "bogus.weight"));
    mav_st_close(&f);
    mav_st_writer_free(&w);
    // a mis-shaped tensor
    mav_st_writer_init(&w);
    for (int k = 0; k < a->params.count; k++) {
        const mav_param *t = &a->params.items[k];
        int64_t shape[5];
        memcpy(shape, t->shape, sizeof shape);
        if (strcmp(t->name, "out_norm.weight") == 0) shape[0] = 1, shape[0] = (int64_t)t->numel / 2;
        mav_st_writer_add_f32(&w, t->name, t->ndim, shape, mav_param_value(&a->params, k), MAV_F32);
    }
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_int_equal(mav_unet_load_weights(b, &f), MAV_ERR_SHAPE);
    assert_non_null(strstr(mav_last_error(), "out_norm.weight"));
    mav_st_close(&f);
    mav_st_writer_free(&w);
    unlink(path);
    // plans that cannot work are refused with a reason
    assert_int_equal(mav_unet_plan(b, 1, 9, 16, 16, 0), MAV_ERR_ARG);  // 9 > max_frames 8
    assert_non_null(strstr(mav_last_error(), "max_frames"));
    assert_int_equal(mav_unet_plan(b, 1, 2, 15, 16, 0), MAV_ERR_ARG);  // 15 not divisible by 2
    assert_int_equal(mav_unet_plan(b, 1, 2, 16, 16, 1), MAV_ERR_ARG);  // no gradients allocated
    mav_unet_free(a); mav_unet_free(b);
    free(a); free(b);
}

// The inference plan shares one unit's worth of internal buffers among all units: it must
// compute exactly what the training plan computes, in much less memory.
static void inference_plan_is_smaller_and_identical(void **state) {
    (void)state;
    mav_st_file *mfa, *mfb;
    mav_unet *a = load_net("interp", &mfa), *b = load_net("interp", &mfb);
    const mav_unet_config *c = &a->cfg;
    int B = 2, F = 5, H = 16, W = 16;
    size_t nx = (size_t)B * F * c->in_ch * H * W, ne = (size_t)B * F * c->out_ch * H * W;
    float *x = tu_alloc_f(nx), *e = tu_alloc_f((size_t)B * c->emb_dim), t[2] = {5, 600}, fps[2] = {3, 7};
    tu_fill_normal(x, nx, 1);
    tu_fill_normal(e, (size_t)B * c->emb_dim, 2);
    assert_int_equal(mav_unet_plan(a, B, F, H, W, 1), MAV_OK);
    assert_int_equal(mav_unet_plan(b, B, F, H, W, 0), MAV_OK);
    float *ya = tu_alloc_f(ne), *yb = tu_alloc_f(ne);
    mav_unet_forward(a, ya, x, t, e, fps, NULL);
    mav_unet_forward(b, yb, x, t, e, fps, NULL);
    tu_check_equal("inference plan vs training plan", yb, ya, ne);
    size_t ta = mav_unet_planned_bytes(a), tb = mav_unet_planned_bytes(b);
    if (getenv("MAV_TEST_VERBOSE")) printf("  planned bytes: training %zu, inference %zu\n", ta, tb);
    if (tb * 2 > ta) fail_msg("inference plan %zu bytes is not under half the training plan's %zu", tb, ta);
    free(x); free(e); free(ya); free(yb);
    mav_unet_free(a); mav_unet_free(b);
    free(a); free(b);
    tu_ref_close(mfa);
    tu_ref_close(mfb);
}

MAV_TEST_GROUP(unet,
    cmocka_unit_test(inference_plan_is_smaller_and_identical),
    cmocka_unit_test(parity_tiny),
    cmocka_unit_test(parity_interp),
    cmocka_unit_test(parity_sr),
    cmocka_unit_test(parity_srh),
    cmocka_unit_test(inflation_reproduces_image_net),
    cmocka_unit_test(checkpoint_errors_and_f16))
