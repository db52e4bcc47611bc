// loss: MSE and the CLIP contrastive loss: reference gradients vs finite differences, f32
// kernels vs the double reference, thread invariance, PyTorch (F.mse_loss; CLIP written from
// its definition with F.normalize and F.cross_entropy).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "ops/loss.h"
#include "ref/ref_misc.h"
#include "testutil.h"

// ---------------------------------------------------------------- MSE

typedef struct { double *x, *y; long n; } mse_ctx;
static double mse_loss(void *p) { mse_ctx *c = p; return ref_mse_forward(c->x, c->y, c->n); }

// Quadratic loss: the central difference is exact up to rounding (~1e-16/1e-6): tol 1e-6.
static void mse_ref_gradcheck(void **state) {
    (void)state;
    float f[37];
    mse_ctx c = {NULL, NULL, 37};
    tu_fill_normal(f, 37, 1); c.x = tu_to_d(f, 37);
    tu_fill_normal(f, 37, 2); c.y = tu_to_d(f, 37);
    double *dx = tu_alloc_d(37);
    ref_mse_backward(dx, c.x, c.y, 37, 1.0);
    tu_gradcheck("mse dx", mse_loss, &c, c.x, 37, dx, 1e-6, 1e-6, 100);
    free(c.x); free(c.y); free(dx);
}

// The value is the same double computation as the reference except for summation order:
// rtol 1e-12. dx = (x − y)·(2·dloss/n) with two f32 roundings of the operands' exact values
// plus one of the product: ≤ 1.5·2^-23 relative, rtol 2.4e-7 (= 2^-22).
static void mse_vs_reference(void **state) {
    (void)state;
    long sizes[5] = {1, 7, 4097, 65537, 300001};  // one chunk; several; above the OpenMP threshold
    for (int k = 0; k < 5; k++) {
        long n = sizes[k];
        float *x = tu_alloc_f(n), *y = tu_alloc_f(n), *dx = tu_alloc_f(n);
        tu_fill_normal(x, n, 10 + k); tu_fill_normal(y, n, 20 + k);
        double *rx = tu_to_d(x, n), *ry = tu_to_d(y, n), *rdx = tu_alloc_d(n);
        double want = ref_mse_forward(rx, ry, n), got = mav_mse_forward(x, y, n);
        tu_check_close_dd("mse value", &got, &want, 1, 0, 1e-12);
        ref_mse_backward(rdx, rx, ry, n, 0.3);
        mav_mse_backward(dx, x, y, n, 0.3f);
        // the reference uses dloss = 0.3 in double; the kernel gets 0.3f: rescale the reference
        for (long i = 0; i < n; i++) rdx[i] *= (double)0.3f / 0.3;
        tu_check_close_d("mse dx", dx, rdx, n, 0, 2.4e-7);
        free(x); free(y); free(dx); free(rx); free(ry); free(rdx);
    }
}

// Chunk bounds depend on n only: the loss is bit-identical for 1 and 2 threads.
static void mse_thread_invariant(void **state) {
    (void)state;
    long n = 500003;
    int prev = mav_threads_get();
    float *x = tu_alloc_f(n), *y = tu_alloc_f(n);
    tu_fill_normal(x, n, 3); tu_fill_normal(y, n, 4);
    mav_threads_set(1);
    double a = mav_mse_forward(x, y, n);
    mav_threads_set(2);
    double b = mav_mse_forward(x, y, n);
    mav_threads_set(prev);
    if (memcmp(&a, &b, sizeof a) != 0) fail_msg("mse threads 1 vs 2: %.17g vs %.17g", a, b);
    free(x); free(y);
}

// PyTorch F.mse_loss (float64 from the f32 inputs): value rtol 1e-12 (summation order only),
// dx rtol 2.4e-7 as above.
static void mse_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("misc_mse");
    size_t n;
    float *x = tu_ref_f32(f, "x", &n), *y = tu_ref_f32(f, "y", NULL), *dl = tu_ref_f32(f, "dloss", NULL);
    double *loss_t = tu_ref_f64(f, "loss", NULL), *dx_t = tu_ref_f64(f, "dx", NULL);
    float *dx = tu_alloc_f(n);
    double loss = mav_mse_forward(x, y, (long)n);
    mav_mse_backward(dx, x, y, (long)n, dl[0]);
    tu_check_close_dd("torch mse value", &loss, loss_t, 1, 0, 1e-12);
    tu_check_close_d("torch mse dx", dx, dx_t, n, 0, 2.4e-7);
    free(x); free(y); free(dl); free(loss_t); free(dx_t); free(dx);
    tu_ref_close(f);
}

// ---------------------------------------------------------------- CLIP

typedef struct { double *img, *txt, *ls; int B, D; } clip_ctx;
static double clip_loss(void *p) { clip_ctx *c = p; return ref_clip_loss_forward(NULL, c->img, c->txt, c->ls[0], c->B, c->D); }

// Smooth loss: central-difference truncation error ~eps²·|f'''| ≈ 1e-12 and rounding ~1e-10:
// tol 1e-6. Features of different scales (the normalisation must cancel them).
static void clip_ref_gradcheck(void **state) {
    (void)state;
    int B = 4, D = 5;
    float f[20];
    clip_ctx c = {NULL, NULL, NULL, B, D};
    tu_fill_normal(f, 20, 1); c.img = tu_to_d(f, 20);
    tu_fill_normal(f, 20, 2); c.txt = tu_to_d(f, 20);
    for (int k = 0; k < 20; k++) { c.img[k] *= 1 + k % 3; c.txt[k] += 0.5 * c.img[k]; }
    double ls = log(1 / 0.07);
    c.ls = &ls;
    double *di = tu_alloc_d(20), *dt = tu_alloc_d(20), dls = 0;
    ref_clip_loss_backward(di, dt, &dls, 1.0, c.img, c.txt, ls, B, D);
    tu_gradcheck("clip dimg", clip_loss, &c, c.img, 20, di, 1e-6, 1e-6, 100);
    tu_gradcheck("clip dtxt", clip_loss, &c, c.txt, 20, dt, 1e-6, 1e-6, 100);
    tu_gradcheck("clip dlogit_scale", clip_loss, &c, c.ls, 1, &dls, 1e-6, 1e-6, 100);
    free(c.img); free(c.txt); free(di); free(dt);
}

// f32 kernel vs the double reference. Each logit is s·(a·b), a D-term f32 dot product of unit
// vectors (Σ|a_k b_k| ≤ 1), so its error is ≤ s·D·2^-24 in the worst case and ≈ s·√D·2^-24
// typically: ≈ 2e-6 at s = 100, D = 9 (the largest case). The loss is 2-Lipschitz in the
// logits and the softmax gradients inherit the same size of error, scaled by s·dloss/(2B) and
// carried through one B-term GEMM of unit vectors and the normalisation (÷‖x‖ ≈ √D ≥ 1 here).
// Observed errors are ≤ 2e-7; atol 1e-5 (5× the typical logit error, 50× what is seen) with
// rtol 1e-6 (loss) / 1e-5 (gradients, up to ~1.2 in size) keeps the check meaningful. The
// strict worst-case bound (≈ 1e-2 for the gradients at s = 100) would test nothing.
static void check_clip(int B, int D, float ls, uint64_t seed) {
    long n = (long)B * D;
    float *img = tu_alloc_f(n), *txt = tu_alloc_f(n), *noise = tu_alloc_f(n);
    tu_fill_normal(img, n, seed);
    tu_fill_normal(noise, n, seed + 1);
    for (long k = 0; k < n; k++) txt[k] = img[k] + 1.5f * noise[k];
    float *saved = tu_alloc_f(mav_clip_loss_saved_floats(B, D)), *scratch = tu_alloc_f(mav_clip_loss_scratch_floats(B));
    float *di = tu_alloc_f(n), *dt = tu_alloc_f(n), dls = 0.25f;  // dlogit_scale is accumulated
    tu_fill_normal(di, n, 99);  // written, so garbage first
    int correct[2], rcorrect[2];
    double loss = mav_clip_loss_forward(saved, correct, img, txt, ls, B, D);
    mav_clip_loss_backward(di, dt, &dls, 0.8f, saved, ls, B, D, scratch);
    double *ri = tu_to_d(img, n), *rt = tu_to_d(txt, n), *rdi = tu_alloc_d(n), *rdt = tu_alloc_d(n), rdls = 0.25;
    double rloss = ref_clip_loss_forward(rcorrect, ri, rt, ls, B, D);
    ref_clip_loss_backward(rdi, rdt, &rdls, 0.8, ri, rt, ls, B, D);
    tu_check_close_dd("clip loss", &loss, &rloss, 1, 1e-5, 1e-6);
    tu_check_close_d("clip dimg", di, rdi, n, 1e-5, 1e-5);
    tu_check_close_d("clip dtxt", dt, rdt, n, 1e-5, 1e-5);
    tu_check_close_d("clip dlogit_scale", &dls, &rdls, 1, 1e-5, 1e-5);
    // Accuracy counts: argmax over f32 vs double logits can only differ on near-ties, which
    // these random features do not produce.
    assert_int_equal(correct[0], rcorrect[0]);
    assert_int_equal(correct[1], rcorrect[1]);
    // NULL outputs are skipped without disturbing the others
    float *dt2 = tu_alloc_f(n);
    mav_clip_loss_backward(NULL, dt2, NULL, 0.8f, saved, ls, B, D, scratch);
    tu_check_equal("clip dtxt alone", dt2, dt, n);
    free(img); free(txt); free(noise); free(saved); free(scratch); free(di); free(dt); free(dt2);
    free(ri); free(rt); free(rdi); free(rdt);
}

static void clip_vs_reference(void **state) {
    (void)state;
    check_clip(1, 1, 2.6592600f, 1);   // B = 1: loss 0, gradients 0
    check_clip(5, 3, 2.6592600f, 2);   // CLIP's initial scale ln(1/0.07)
    check_clip(17, 33, 0.0f, 3);       // scale 1
    check_clip(130, 9, 4.6051702f, 4); // the clamp ln(100); B·B above the OpenMP threshold
}

// With B = 1 the only logit is its own label: loss 0, and every gradient 0 exactly up to the
// rounding of softmax(single) = exp(L − lse) (= 1 up to 1 ulp of the double lse): atol 1e-6.
static void clip_single_pair(void **state) {
    (void)state;
    float img[4] = {1, 2, 3, 4}, txt[4] = {-1, 0.5f, 2, 0}, saved[32], scratch[8], di[4], dt[4], dls = 0, zero[4] = {0};
    assert_true(mav_clip_loss_saved_floats(1, 4) <= 32 && mav_clip_loss_scratch_floats(1) <= 8);
    int correct[2];
    double loss = mav_clip_loss_forward(saved, correct, img, txt, 2.0f, 1, 4);
    mav_clip_loss_backward(di, dt, &dls, 1.0f, saved, 2.0f, 1, 4, scratch);
    assert_true(fabs(loss) < 1e-6);
    assert_int_equal(correct[0], 1);
    assert_int_equal(correct[1], 1);
    tu_check_close("clip B=1 dimg", di, zero, 4, 1e-6, 0);
    tu_check_close("clip B=1 dtxt", dt, zero, 4, 1e-6, 0);
    tu_check_close("clip B=1 dls", &dls, zero, 1, 1e-6, 0);
}

// PyTorch (float64 from the same f32 inputs; B = 6, D = 10, ls = ln(1/0.07), dloss 1.3): the
// same error budget as clip_vs_reference: atol 1e-5; rtol 1e-6 (loss), 1e-5 (gradients).
static void clip_vs_torch(void **state) {
    (void)state;
    mav_st_file *f = tu_ref_open("misc_clip");
    int B = (int)tu_ref_dim(f, "img", 0), D = (int)tu_ref_dim(f, "img", 1);
    float *img = tu_ref_f32(f, "img", NULL), *txt = tu_ref_f32(f, "txt", NULL), *ls = tu_ref_f32(f, "logit_scale", NULL),
          *dl = tu_ref_f32(f, "dloss", NULL), *cf = tu_ref_f32(f, "correct", NULL);
    double *loss_t = tu_ref_f64(f, "loss", NULL), *di_t = tu_ref_f64(f, "dimg", NULL), *dt_t = tu_ref_f64(f, "dtxt", NULL),
           *dls_t = tu_ref_f64(f, "dlogit_scale", NULL);
    float *saved = tu_alloc_f(mav_clip_loss_saved_floats(B, D)), *scratch = tu_alloc_f(mav_clip_loss_scratch_floats(B));
    float *di = tu_alloc_f((long)B * D), *dt = tu_alloc_f((long)B * D), dls = 0;
    int correct[2];
    double loss = mav_clip_loss_forward(saved, correct, img, txt, ls[0], B, D);
    mav_clip_loss_backward(di, dt, &dls, dl[0], saved, ls[0], B, D, scratch);
    tu_check_close_dd("torch clip loss", &loss, loss_t, 1, 1e-5, 1e-6);
    tu_check_close_d("torch clip dimg", di, di_t, (size_t)B * D, 1e-5, 1e-5);
    tu_check_close_d("torch clip dtxt", dt, dt_t, (size_t)B * D, 1e-5, 1e-5);
    tu_check_close_d("torch clip dlogit_scale", &dls, dls_t, 1, 1e-5, 1e-5);
    assert_int_equal(correct[0], (int)cf[0]);
    assert_int_equal(correct[1], (int)cf[1]);
    free(img); free(txt); free(ls); free(dl); free(cf); free(loss_t); free(di_t); free(dt_t); free(dls_t);
    free(saved); free(scratch); free(di); free(dt);
    tu_ref_close(f);
}

MAV_TEST_GROUP(loss, cmocka_unit_test(mse_ref_gradcheck), cmocka_unit_test(mse_vs_reference),
               cmocka_unit_test(mse_thread_invariant), cmocka_unit_test(mse_vs_torch),
               cmocka_unit_test(clip_ref_gradcheck), cmocka_unit_test(clip_vs_reference),
               cmocka_unit_test(clip_single_pair), cmocka_unit_test(clip_vs_torch))
