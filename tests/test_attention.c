// test_attention.c — group `attention`: flash-style attention (src/ops/attention.c) against the
// double reference (tests/ref/ref_attention.c), the reference against finite differences, and
// both against PyTorch (tests/reference/ops_attention.py).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/threads.h"
#include "ops/attention.h"
#include "ref/ref_attention.h"
#include "testutil.h"

// One attention problem laid out in memory the way callers use it. All inputs live in one
// float arena `in` (gradients in an arena `din` of the same layout), so a test can compare or
// finite-difference every input at once; rows and batches have gaps that must stay untouched.
typedef struct {
    const char *name;
    int B, H, hd, Nq, Nk, Nc;
    int causal, mask;  // mask: key mask with masked keys, the last batch fully masked (B > 1)
    int packed;        // q, k, v as views into one [B, N, 3C] qkv buffer (needs Nq = Nk), ck/cv in [B, Nc, 2C]
    float scale;       // 0 = default
} acase;

typedef struct {
    mav_attn_shape s;
    size_t n_in, n_out;
    long off[5];  // q, k, v, ck, cv offsets in the input arena
    uint8_t *mask;
} layout;

static layout make_layout(const acase *c) {
    layout L;
    memset(&L, 0, sizeof L);
    const long C = (long)c->H * c->hd;
    L.s = mav_attn_shape_contiguous(c->B, c->H, c->hd, c->Nq, c->Nk, c->Nc);
    mav_attn_shape *s = &L.s;
    if (c->packed) {
        MAV_ASSERT(c->Nq == c->Nk);
        s->q_stride = s->k_stride = s->v_stride = 3 * C;
        s->q_bstride = s->k_bstride = s->v_bstride = (long)c->Nq * 3 * C;
        L.off[0] = 0, L.off[1] = C, L.off[2] = 2 * C;
        long ctx = (long)c->B * c->Nq * 3 * C;
        s->ck_stride = s->cv_stride = 2 * C;
        s->ck_bstride = s->cv_bstride = (long)c->Nc * 2 * C;
        L.off[3] = ctx, L.off[4] = ctx + C;
        L.n_in = (size_t)(ctx + (long)c->B * c->Nc * 2 * C);
    } else {  // separate tensors, each with a row gap of 2 and a batch gap of 5
        const int rows[5] = {c->Nq, c->Nk, c->Nk, c->Nc, c->Nc};
        long *st[5] = {&s->q_stride, &s->k_stride, &s->v_stride, &s->ck_stride, &s->cv_stride};
        long *bst[5] = {&s->q_bstride, &s->k_bstride, &s->v_bstride, &s->ck_bstride, &s->cv_bstride};
        long at = 0;
        for (int t = 0; t < 5; t++) {
            *st[t] = C + 2;
            *bst[t] = rows[t] * (C + 2) + 5;
            L.off[t] = at;
            at += c->B * *bst[t];
        }
        L.n_in = (size_t)at;
    }
    s->o_stride = C + 1;
    s->o_bstride = (long)c->Nq * (C + 1) + 3;
    L.n_out = (size_t)(c->B * s->o_bstride);
    s->causal = c->causal;
    s->scale = c->scale;
    if (c->mask) {
        const int Nt = c->Nc + c->Nk;
        L.mask = malloc((size_t)c->B * Nt + 1);
        for (int b = 0; b < c->B; b++)
            for (int j = 0; j < Nt; j++) {
                int m = (j * 7 + b * 3) % 5 != 0;  // about 1 key in 5 masked
                if (b == 0 && j == c->Nc) m = 0;   // first k/v key: early causal rows see only context (or none)
                if (c->B > 1 && b == c->B - 1) m = 0;  // every row of this batch fully masked
                L.mask[(long)b * Nt + j] = (uint8_t)m;
            }
        s->key_mask = L.mask;
    }
    return L;
}

// Pointers into an arena (float or double) at the layout's offsets; ck/cv NULL when Nc = 0.
#define VIEWS(T, base, L)                                                       \
    T *v_q = (base) + (L).off[0], *v_k = (base) + (L).off[1], *v_v = (base) + (L).off[2]; \
    T *v_ck = (L).s.Nc ? (base) + (L).off[3] : NULL, *v_cv = (L).s.Nc ? (base) + (L).off[4] : NULL

// lse entries that are −inf in the reference must be exactly −inf (tu_check_close accepts any
// pair of infinities), and finite ones finite.
static void check_lse_inf(const char *what, const float *got, const double *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (isinf(want[i]) != isinf(got[i]) || (isinf(want[i]) && (want[i] < 0) != (got[i] < 0)))
            fail_msg("%s: lse[%zu] got %g want %g", what, i, got[i], want[i]);
}

// Tolerances for f32 flash vs double reference (inputs N(0,1), |scores| ≲ 6, |out| ≲ 3):
//   scores carry ~√hd·2⁻²⁴ relative error (≈ 5e-7 absolute at hd 64), softmax weights inherit it,
//   and outputs are convex combinations of |v| ≲ 4 summed over up to 134 keys in f32 with a
//   per-block f32 row sum (√N·2⁻²⁴ relative). Observed over all cases: max |err| 8e-7 on out and
//   lse. atol = rtol = 4e-6 leaves 5× headroom while any real bug (a wrong mask, a missed block,
//   a lost rescale) moves outputs by O(0.1).
//   Gradients sum up to 130 queries' (or keys') terms, and dS = P∘(dP − D) cancels terms of size
//   |dO||v| ≈ 3: observed max |err| 2.2e-6 (hd 64), so atol = rtol = 1.5e-5 (7× headroom).
#define TOL_OUT_ATOL 4e-6
#define TOL_OUT_RTOL 4e-6
#define TOL_GRAD_ATOL 1.5e-5
#define TOL_GRAD_RTOL 1.5e-5

static void run_case(const acase *c) {
    layout L = make_layout(c);
    const size_t nl = (size_t)c->B * c->H * c->Nq;
    float *in = tu_alloc_f(L.n_in), *out = tu_alloc_f(L.n_out), *dout = tu_alloc_f(L.n_out);
    float *lse = tu_alloc_f(nl + 1), *din = tu_alloc_f(L.n_in);
    tu_fill_normal(in, L.n_in, 1000 + (uint64_t)c->Nq * 31 + (uint64_t)c->hd);
    tu_fill_normal(dout, L.n_out, 77 + (uint64_t)c->Nk);
    for (size_t i = 0; i < L.n_out; i++) out[i] = 777.0f;  // gaps must stay untouched
    for (size_t i = 0; i < L.n_in; i++) din[i] = 777.0f;
    float *scratch = tu_alloc_f(mav_attention_scratch_floats(&L.s));
    {
        VIEWS(float, in, L);
        float *g_q = din + L.off[0], *g_k = din + L.off[1], *g_v = din + L.off[2];
        float *g_ck = c->Nc ? din + L.off[3] : NULL, *g_cv = c->Nc ? din + L.off[4] : NULL;
        mav_attention_forward(out, lse, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
        mav_attention_backward(g_q, g_k, g_v, g_ck, g_cv, dout, out, lse, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
    }
    double *ind = tu_to_d(in, L.n_in), *doutd = tu_to_d(dout, L.n_out);
    double *outd = tu_alloc_d(L.n_out), *lsed = tu_alloc_d(nl + 1), *dind = tu_alloc_d(L.n_in);
    for (size_t i = 0; i < L.n_out; i++) outd[i] = 777.0;
    for (size_t i = 0; i < L.n_in; i++) dind[i] = 777.0;
    {
        VIEWS(double, ind, L);
        double *g_q = dind + L.off[0], *g_k = dind + L.off[1], *g_v = dind + L.off[2];
        double *g_ck = c->Nc ? dind + L.off[3] : NULL, *g_cv = c->Nc ? dind + L.off[4] : NULL;
        ref_attention_forward(outd, lsed, v_q, v_k, v_v, v_ck, v_cv, &L.s);
        ref_attention_backward(g_q, g_k, g_v, g_ck, g_cv, doutd, v_q, v_k, v_v, v_ck, v_cv, &L.s);
    }
    char what[160];
    snprintf(what, sizeof what, "%s: out", c->name);
    tu_check_close_d(what, out, outd, L.n_out, TOL_OUT_ATOL, TOL_OUT_RTOL);
    snprintf(what, sizeof what, "%s: lse", c->name);
    check_lse_inf(what, lse, lsed, nl);
    tu_check_close_d(what, lse, lsed, nl, TOL_OUT_ATOL, TOL_OUT_RTOL);
    snprintf(what, sizeof what, "%s: gradients (q, k, v, ck, cv)", c->name);
    tu_check_close_d(what, din, dind, L.n_in, TOL_GRAD_ATOL, TOL_GRAD_RTOL);

    // Run to run: bit-identical.
    float *out2 = tu_alloc_f(L.n_out), *lse2 = tu_alloc_f(nl + 1), *din2 = tu_alloc_f(L.n_in);
    memcpy(out2, out, sizeof(float) * L.n_out);
    memcpy(din2, din, sizeof(float) * L.n_in);
    {
        VIEWS(float, in, L);
        float *g_q = din2 + L.off[0], *g_k = din2 + L.off[1], *g_v = din2 + L.off[2];
        float *g_ck = c->Nc ? din2 + L.off[3] : NULL, *g_cv = c->Nc ? din2 + L.off[4] : NULL;
        mav_attention_forward(out2, lse2, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
        mav_attention_backward(g_q, g_k, g_v, g_ck, g_cv, dout, out2, lse2, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
    }
    snprintf(what, sizeof what, "%s: rerun out", c->name);
    tu_check_equal(what, out2, out, L.n_out);
    snprintf(what, sizeof what, "%s: rerun gradients", c->name);
    tu_check_equal(what, din2, din, L.n_in);

    free(in), free(out), free(dout), free(lse), free(din), free(scratch), free(ind), free(doutd), free(outd);
    free(lsed), free(dind), free(out2), free(lse2), free(din2), free(L.mask);
}

// (b) f32 flash kernel vs double reference. Block sizes are 32 queries × 64 keys, so 1, 3, 17,
// 65, 130 cross block edges in every way; hd 1, 5 exercise channel padding to 8.
static const acase k_cases[] = {
    // name                         B  H  hd  Nq   Nk  Nc causal mask packed scale
    {"single query and key",        2, 1, 1,  1,   1,  0, 0, 0, 0, 0},
    {"hd5 Nq3 Nk17",                1, 3, 5,  3,   17, 0, 0, 0, 0, 0},
    {"hd16 Nq17 Nk65 context",      2, 1, 16, 17,  65, 4, 0, 0, 0, 0},
    {"hd64 Nq65 Nk3 context mask",  3, 3, 64, 65,  3,  4, 0, 1, 0, 0},
    {"packed causal N130",          1, 3, 16, 130, 130, 0, 1, 0, 1, 0},
    {"packed causal mask ctx N65",  3, 1, 64, 65,  65, 4, 1, 1, 1, 0},
    {"causal Nq130 Nk65 (empty rows)", 2, 3, 5, 130, 65, 0, 1, 1, 0, 0},
    {"causal Nq17 Nk130 ctx",       2, 1, 16, 17,  130, 4, 1, 0, 0, 0.3f},
    {"temporal-like N16",           37, 2, 16, 16, 16, 0, 0, 0, 1, 0},
    {"context only (Nk 0)",         2, 3, 5,  17,  0,  4, 1, 1, 0, 0},
    {"hd1 causal mask Nq3 Nk1",     3, 3, 1,  3,   1,  4, 1, 1, 0, 0},
    {"hd64 Nq65 Nk130 mask ctx",    2, 1, 64, 65,  130, 4, 0, 1, 0, 0},
    {"hd33 packed causal mask N130", 2, 2, 33, 130, 130, 4, 1, 1, 1, 0},
};

static void test_flash_vs_reference(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof k_cases / sizeof k_cases[0]; i++) run_case(&k_cases[i]);
}

// Results do not depend on the thread count (each output has one owner and the per-row
// arithmetic does not depend on how query blocks are split among threads).
static void test_thread_count_invariance(void **state) {
    (void)state;
    const acase c = {"threads", 3, 3, 16, 65, 65, 4, 1, 1, 1, 0};
    layout L = make_layout(&c);
    const size_t nl = (size_t)c.B * c.H * c.Nq;
    float *in = tu_alloc_f(L.n_in), *dout = tu_alloc_f(L.n_out);
    tu_fill_normal(in, L.n_in, 5);
    tu_fill_normal(dout, L.n_out, 6);
    float *out[2], *lse[2], *din[2];
    const int prev = mav_threads_get();
    for (int t = 0; t < 2; t++) {
        mav_threads_set(t == 0 ? 1 : (prev > 1 ? prev : 2));
        out[t] = tu_alloc_f(L.n_out), lse[t] = tu_alloc_f(nl), din[t] = tu_alloc_f(L.n_in);
        float *scratch = tu_alloc_f(mav_attention_scratch_floats(&L.s));
        VIEWS(float, in, L);
        float *g = din[t];
        mav_attention_forward(out[t], lse[t], v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
        mav_attention_backward(g + L.off[0], g + L.off[1], g + L.off[2], g + L.off[3], g + L.off[4], dout, out[t],
                               lse[t], v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
        free(scratch);
    }
    mav_threads_set(prev);
    tu_check_equal("threads: out", out[1], out[0], L.n_out);
    tu_check_equal("threads: lse", lse[1], lse[0], nl);
    tu_check_equal("threads: gradients", din[1], din[0], L.n_in);
    for (int t = 0; t < 2; t++) free(out[t]), free(lse[t]), free(din[t]);
    free(in), free(dout), free(L.mask);
}

// NULL gradients are skipped and do not change the others.
static void test_null_gradients(void **state) {
    (void)state;
    const acase c = {"nulls", 2, 3, 5, 17, 17, 4, 1, 1, 0, 0};
    layout L = make_layout(&c);
    const size_t nl = (size_t)c.B * c.H * c.Nq;
    float *in = tu_alloc_f(L.n_in), *dout = tu_alloc_f(L.n_out), *out = tu_alloc_f(L.n_out), *lse = tu_alloc_f(nl);
    float *full = tu_alloc_f(L.n_in), *part = tu_alloc_f(L.n_in);
    tu_fill_normal(in, L.n_in, 8);
    tu_fill_normal(dout, L.n_out, 9);
    float *scratch = tu_alloc_f(mav_attention_scratch_floats(&L.s));
    VIEWS(float, in, L);
    mav_attention_forward(out, lse, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
    mav_attention_backward(full + L.off[0], full + L.off[1], full + L.off[2], full + L.off[3], full + L.off[4], dout,
                           out, lse, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
    for (int which = 0; which < 5; which++) {  // compute only gradient `which`
        float *g[5] = {NULL, NULL, NULL, NULL, NULL};
        g[which] = part + L.off[which];
        memset(part, 0, sizeof(float) * L.n_in);
        mav_attention_backward(g[0], g[1], g[2], g[3], g[4], dout, out, lse, v_q, v_k, v_v, v_ck, v_cv, &L.s, scratch);
        const long end = which < 4 ? L.off[which + 1] : (long)L.n_in;  // layout order q, k, v, ck, cv
        for (long i = 0; i < (long)L.n_in; i++) {
            const float want = i >= L.off[which] && i < end ? full[i] : 0.0f;
            if (memcmp(&part[i], &want, sizeof(float)) != 0)
                fail_msg("nulls: only gradient %d requested: element %ld is %g, want %g", which, i, part[i], want);
        }
    }
    free(in), free(dout), free(out), free(lse), free(full), free(part), free(scratch), free(L.mask);
}

// (a) the double reference's backward vs central finite differences of Σ W∘out, over every
// input at once (q, k, v, context k/v; the layout's gaps must get zero gradient).
typedef struct {
    layout *L;
    double *in, *out, *lse, *w;
} gc_ctx;

static double gc_loss(void *p) {
    gc_ctx *g = p;
    VIEWS(double, g->in, *g->L);
    memset(g->out, 0, sizeof(double) * g->L->n_out);
    ref_attention_forward(g->out, g->lse, v_q, v_k, v_v, v_ck, v_cv, &g->L->s);
    double sum = 0;
    for (size_t i = 0; i < g->L->n_out; i++) sum += g->w[i] * g->out[i];
    return sum;
}

static void test_reference_gradcheck(void **state) {
    (void)state;
    const acase cases[] = {
        // context, causal, key mask with a fully masked batch and rows that see no key
        {"gc causal mask ctx", 3, 2, 3, 4, 5, 2, 1, 1, 0, 0},
        {"gc packed causal Nq=Nk", 2, 2, 4, 5, 5, 0, 1, 1, 1, 0},
        {"gc plain Nq>Nk scale", 1, 1, 2, 6, 3, 1, 0, 0, 0, 0.7f},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        layout L = make_layout(&cases[t]);
        gc_ctx g = {&L, tu_alloc_d(L.n_in), tu_alloc_d(L.n_out), tu_alloc_d((size_t)L.s.B * L.s.H * L.s.Nq + 1),
                    tu_alloc_d(L.n_out)};
        mav_rng r = mav_rng_make(40 + t);
        mav_rng_normal_d(&r, g.in, L.n_in);
        mav_rng_normal_d(&r, g.w, L.n_out);
        double *ana = tu_alloc_d(L.n_in);  // gaps stay 0
        VIEWS(double, g.in, L);
        double *gq = ana + L.off[0], *gk = ana + L.off[1], *gv = ana + L.off[2];
        double *gck = L.s.Nc ? ana + L.off[3] : NULL, *gcv = L.s.Nc ? ana + L.off[4] : NULL;
        ref_attention_backward(gq, gk, gv, gck, gcv, g.w, v_q, v_k, v_v, v_ck, v_cv, &L.s);
        // eps 1e-6 in double: truncation O(eps²·f''') ≈ 1e-12, rounding ≈ 1e-16·|loss|/eps ≈ 1e-9,
        // so 1e-6 (the brief's tolerance) catches any formula error (which is O(1)).
        tu_gradcheck(cases[t].name, gc_loss, &g, g.in, L.n_in, ana, 1e-6, 1e-6, 100000);
        free(g.in), free(g.out), free(g.lse), free(g.w), free(ana), free(L.mask);
    }
}

// (c) PyTorch float64 attention from the same f32 inputs (tests/reference/ops_attention.py).
// Tolerances: as for the double reference (the only error is our f32 arithmetic).
static void check_torch(const char *file, int B, int H, int hd, int N, int Nc, int causal) {
    mav_st_file *f = tu_ref_open(file);
    const long C = (long)H * hd;
    size_t n_qkv, n_ctx = 0, n_out;
    float *qkv = tu_ref_f32(f, "qkv", &n_qkv);
    float *dout = tu_ref_f32(f, "dout", &n_out);
    assert_int_equal(n_qkv, (size_t)B * N * 3 * C);
    assert_int_equal(n_out, (size_t)B * N * C);
    float *ctx = Nc ? tu_ref_f32(f, "ctxkv", &n_ctx) : NULL;
    if (Nc) assert_int_equal(n_ctx, (size_t)B * Nc * 2 * C);
    uint8_t *mask = NULL;
    if (causal) {  // key-padding mask: keys after EOT masked
        size_t nm;
        float *mf = tu_ref_f32(f, "mask", &nm);
        assert_int_equal(nm, (size_t)B * (Nc + N));
        mask = malloc(nm);
        for (size_t i = 0; i < nm; i++) mask[i] = mf[i] != 0.0f;
        free(mf);
    }
    double *want_out = tu_ref_f64(f, "out", NULL), *want_lse = tu_ref_f64(f, "lse", NULL);
    double *want_dqkv = tu_ref_f64(f, "dqkv", NULL), *want_dctx = Nc ? tu_ref_f64(f, "dctxkv", NULL) : NULL;

    mav_attn_shape s = mav_attn_shape_contiguous(B, H, hd, N, N, Nc);
    s.q_stride = s.k_stride = s.v_stride = 3 * C;
    s.q_bstride = s.k_bstride = s.v_bstride = (long)N * 3 * C;
    s.ck_stride = s.cv_stride = 2 * C;
    s.ck_bstride = s.cv_bstride = (long)Nc * 2 * C;
    s.causal = causal;
    s.key_mask = mask;
    float *out = tu_alloc_f(n_out), *lse = tu_alloc_f((size_t)B * H * N), *dqkv = tu_alloc_f(n_qkv);
    float *dctx = Nc ? tu_alloc_f(n_ctx) : NULL;
    float *scratch = tu_alloc_f(mav_attention_scratch_floats(&s));
    mav_attention_forward(out, lse, qkv, qkv + C, qkv + 2 * C, ctx, Nc ? ctx + C : NULL, &s, scratch);
    mav_attention_backward(dqkv, dqkv + C, dqkv + 2 * C, dctx, Nc ? dctx + C : NULL, dout, out, lse, qkv, qkv + C,
                           qkv + 2 * C, ctx, Nc ? ctx + C : NULL, &s, scratch);
    char what[128];
    snprintf(what, sizeof what, "%s: out vs torch", file);
    tu_check_close_d(what, out, want_out, n_out, TOL_OUT_ATOL, TOL_OUT_RTOL);
    snprintf(what, sizeof what, "%s: lse vs torch", file);
    tu_check_close_d(what, lse, want_lse, (size_t)B * H * N, TOL_OUT_ATOL, TOL_OUT_RTOL);
    snprintf(what, sizeof what, "%s: dqkv vs torch", file);
    tu_check_close_d(what, dqkv, want_dqkv, n_qkv, TOL_GRAD_ATOL, TOL_GRAD_RTOL);
    if (Nc) {
        snprintf(what, sizeof what, "%s: dctxkv vs torch", file);
        tu_check_close_d(what, dctx, want_dctx, n_ctx, TOL_GRAD_ATOL, TOL_GRAD_RTOL);
    }
    free(qkv), free(dout), free(ctx), free(mask), free(want_out), free(want_lse), free(want_dqkv), free(want_dctx);
    free(out), free(lse), free(dqkv), free(dctx), free(scratch);
    tu_ref_close(f);
}

// Shapes must match ops_attention.py.
static void test_torch_spatial_context(void **state) {
    (void)state;
    check_torch("attention_spatial", 3, 2, 16, 63, 4, 0);
}

static void test_torch_causal_keymask(void **state) {
    (void)state;
    check_torch("attention_causal", 2, 3, 8, 13, 0, 1);
}

MAV_TEST_GROUP(attention,
               cmocka_unit_test(test_reference_gradcheck),
               cmocka_unit_test(test_flash_vs_reference),
               cmocka_unit_test(test_thread_count_invariance),
               cmocka_unit_test(test_null_gradients),
               cmocka_unit_test(test_torch_spatial_context),
               cmocka_unit_test(test_torch_causal_keymask))
