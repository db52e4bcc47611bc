// `mav forward` on a prior checkpoint (SPEC §9): the reference model and inputs of
// tests/reference/net_prior.py in, x0 out, compared with float64 PyTorch; the mask in another
// dtype (I64) and absent; input errors name the tensor and leave no output file.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "testutil.h"

static char g_tmp[256];

enum { NO_MASK = 1, EXTRA = 2, NO_TEXT_EMB = 4, BAD_X_SHAPE = 8, MASK_TWO = 16, NAN_X = 32, BAD_MASK_SHAPE = 64 };

// The reference inputs (text_tokens, text_emb, t F32; x F64; mask I64), altered by `flags`.
static void write_inputs(const char *path, int flags) {
    mav_st_file *r = tu_ref_open("prior_tiny");
    mav_st_writer w;
    mav_st_writer_init(&w);
    const mav_st_tensor *tt = mav_st_find(r, "text_tokens"), *te = mav_st_find(r, "text_emb");
    const mav_st_tensor *x = mav_st_find(r, "x"), *t = mav_st_find(r, "t"), *mk = mav_st_find(r, "mask");
    float *vtt = tu_ref_f32(r, "text_tokens", NULL), *vte = tu_ref_f32(r, "text_emb", NULL), *vt = tu_ref_f32(r, "t", NULL);
    size_t nx, nm;
    double *vx = tu_ref_f64(r, "x", &nx);
    float *vm = tu_ref_f32(r, "mask", &nm);
    mav_st_writer_add_f32(&w, "text_tokens", tt->ndim, tt->shape, vtt, MAV_F32);
    if (!(flags & NO_TEXT_EMB)) mav_st_writer_add_f32(&w, "text_emb", te->ndim, te->shape, vte, MAV_F32);
    if (flags & NAN_X) vx[3] = NAN;
    int64_t xshape[2] = {x->shape[0], (flags & BAD_X_SHAPE) ? x->shape[1] + 1 : x->shape[1]};
    double *vx2 = calloc((size_t)(xshape[0] * xshape[1]), sizeof(double));
    assert_non_null(vx2);
    memcpy(vx2, vx, nx * sizeof(double));
    mav_st_writer_add_raw(&w, "x", MAV_F64, 2, xshape, vx2);  // doubles of f32 values: exact
    mav_st_writer_add_f32(&w, "t", t->ndim, t->shape, vt, MAV_F32);
    int64_t *m64 = malloc(nm * sizeof *m64);  // the writer keeps pointers until save: all live until then
    assert_non_null(m64);
    float z = 0;
    int64_t one = 1;
    if (!(flags & NO_MASK)) {
        for (size_t i = 0; i < nm; i++) m64[i] = (int64_t)vm[i];
        if (flags & MASK_TWO) m64[1] = 2;
        int64_t mshape[2] = {mk->shape[0], (flags & BAD_MASK_SHAPE) ? mk->shape[1] - 1 : mk->shape[1]};
        mav_st_writer_add_raw(&w, "mask", MAV_I64, 2, mshape, m64);
    }
    if (flags & EXTRA) mav_st_writer_add_f32(&w, "e", 1, &one, &z, MAV_F32);
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    mav_st_writer_free(&w);
    free(vtt); free(vte); free(vt); free(vx); free(vx2); free(vm); free(m64);
    tu_ref_close(r);
}

static float *read_x0(const char *path, size_t n) {
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    const mav_st_tensor *t = mav_st_find(&f, "x0");
    if (!t || t->numel != n || t->ndim != 2) fail_msg("%s: output x0 missing or mis-shaped", path);
    float *v = tu_alloc_f(n);
    mav_st_to_f32(t, v);
    mav_st_close(&f);
    return v;
}

static void forward_prior_matches_reference(void **state) {
    (void)state;
    const char *dir = getenv("MAV_REF_DIR");
    char in[512], out[512], args[2048];
    snprintf(in, sizeof in, "%s/prior_in.safetensors", g_tmp);
    snprintf(out, sizeof out, "%s/prior_out.safetensors", g_tmp);
    snprintf(args, sizeof args, "forward %s/prior_tiny_model.safetensors %s %s", dir, in, out);
    write_inputs(in, 0);
    tu_expect_mav(args, 0, NULL);
    mav_st_file *r = tu_ref_open("prior_tiny");
    size_t n;
    double *want = tu_ref_f64(r, "x0", &n);
    int E = (int)tu_ref_dim(r, "x0", 1);
    float *got = read_x0(out, n);
    // the inputs reach mav exactly (F32 and F64 of f32 values), so test_prior.c's parity
    // tolerance holds: max|err| ≤ 2e-4 · max|ref| (f32 through the network vs float64)
    tu_check_rel_max("mav forward prior x0", got, want, n, 2e-4, 1e-3);
    // without a mask every token is real: sample 0 (all real anyway) is bit-identical, the
    // samples whose masks hid trailing tokens change
    unlink(out);
    write_inputs(in, NO_MASK);
    tu_expect_mav(args, 0, NULL);
    float *nomask = read_x0(out, n);
    tu_check_equal("sample 0 without a mask", nomask, got, (size_t)E);
    double diff = 0;
    for (size_t i = (size_t)E; i < n; i++) diff = fmax(diff, fabs(nomask[i] - got[i]));
    if (!(diff > 1e-3)) fail_msg("dropping the mask changed x0 by only %g", diff);
    free(want); free(got); free(nomask);
    tu_ref_close(r);

    // input errors: each names the tensor; no output file is left behind
    unlink(out);
    write_inputs(in, NO_TEXT_EMB);
    tu_expect_mav(args, 1, "input \"text_emb\" is missing");
    write_inputs(in, EXTRA);
    tu_expect_mav(args, 1, "input \"e\" is not used by a prior");
    write_inputs(in, BAD_X_SHAPE);
    tu_expect_mav(args, 1, "input \"x\" has shape [3, 25], expected [B, 24]");
    write_inputs(in, MASK_TWO);
    tu_expect_mav(args, 1, "input \"mask\"[0][1] is 2");
    write_inputs(in, BAD_MASK_SHAPE);
    tu_expect_mav(args, 1, "mask");
    write_inputs(in, NAN_X);
    tu_expect_mav(args, 1, "non-finite");
    assert_int_not_equal(access(out, F_OK), 0);
}

static int setup(void **state) {
    (void)state;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/mav_cli_prior_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", g_tmp);
    return system(cmd);
}
static int teardown(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_tmp);
    return system(cmd);
}

MAV_TEST_GROUP(cli_prior, cmocka_unit_test_setup_teardown(forward_prior_matches_reference, setup, teardown))
