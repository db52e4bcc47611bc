#include "layers/resblock.h"

#include <stdio.h>
#include <string.h>

#include "ops/activation.h"
#include "ops/dropout.h"
#include "ops/groupnorm.h"
#include "ops/linear.h"
#include "ops/modulate.h"

enum { GROUPS = 32 };             // SPEC §2: GroupNorm with 32 groups, eps 1e-5
static const float GN_EPS = 1e-5f;

void mav_resblock_init(mav_resblock *l, const mav_params *p, const char *prefix, int cin, int cout, int temb,
                       int temporal, float dropout) {
    memset(l, 0, sizeof *l);
    l->cin = cin;
    l->cout = cout;
    l->temb = temb;
    l->dropout = dropout;
    char a[MAV_NAME_MAX], b[MAV_NAME_MAX];
    snprintf(a, sizeof a, "%s.in_norm", prefix);
    l->in_norm_w = mav_layer_param(p, a, "weight");
    l->in_norm_b = mav_layer_param(p, a, "bias");
    snprintf(a, sizeof a, "%s.out_norm", prefix);
    l->out_norm_w = mav_layer_param(p, a, "weight");
    l->out_norm_b = mav_layer_param(p, a, "bias");
    snprintf(a, sizeof a, "%s.emb_out", prefix);
    l->emb_w = mav_layer_param(p, a, "weight");
    l->emb_b = mav_layer_param(p, a, "bias");
    snprintf(a, sizeof a, "%s.in_conv.spatial", prefix);
    snprintf(b, sizeof b, "%s.in_conv.temporal", prefix);
    mav_p3dconv_init(&l->in_conv, p, a, temporal ? b : NULL, cin, cout, 3, 1);
    snprintf(a, sizeof a, "%s.out_conv.spatial", prefix);
    snprintf(b, sizeof b, "%s.out_conv.temporal", prefix);
    mav_p3dconv_init(&l->out_conv, p, a, temporal ? b : NULL, cout, cout, 3, 1);
    l->has_skip = cin != cout;
    if (l->has_skip) {
        snprintf(a, sizeof a, "%s.skip", prefix);
        mav_p3dconv_init(&l->skip, p, a, NULL, cin, cout, 1, 1);
    }
}

void mav_resblock_plan(mav_resblock *l, mav_layer_ctx *c, mav_arena *act, int H, int W) {
    size_t N = (size_t)c->B * c->F;
    l->P = (long)H * W;
    size_t in = N * l->cin * l->P, out = N * l->cout * l->P;
    l->mean1 = mav_arena_floats(act, N * GROUPS);
    l->rstd1 = mav_arena_floats(act, N * GROUPS);
    l->mean2 = mav_arena_floats(act, N * GROUPS);
    l->rstd2 = mav_arena_floats(act, N * GROUPS);
    l->n1 = mav_arena_floats(act, in);
    l->a1 = mav_arena_floats(act, in);
    l->h1 = mav_arena_floats(act, out);
    l->n2 = mav_arena_floats(act, out);
    l->m2 = mav_arena_floats(act, out);
    l->a2 = mav_arena_floats(act, out);
    l->ss = mav_arena_floats(act, (size_t)c->B * 2 * l->cout);
    mav_p3dconv_plan(&l->in_conv, c, act, H, W);
    mav_p3dconv_plan(&l->out_conv, c, act, H, W);
    if (l->has_skip) mav_p3dconv_plan(&l->skip, c, act, H, W);
    mav_layer_need_scratch(c, mav_groupnorm_scratch_floats((int)N, l->cin));
    mav_layer_need_scratch(c, mav_groupnorm_scratch_floats((int)N, l->cout));
    // forward: the skip conv's output (or the dropout output); backward: two gradient
    // buffers of the larger width + dss + dstemb, plus what a nested P3DConv takes.
    size_t big = in > out ? in : out;
    size_t fwd = mav_work_bytes(out);
    size_t bwd = 2 * mav_work_bytes(big) + mav_work_bytes((size_t)c->B * 2 * l->cout) +
                 mav_work_bytes((size_t)c->B * l->temb);
    size_t nested = mav_p3dconv_work_bytes(&l->in_conv, c);
    size_t n2 = mav_p3dconv_work_bytes(&l->out_conv, c);
    if (n2 > nested) nested = n2;
    mav_layer_need_work(c, fwd);
    mav_layer_need_work(c, bwd + nested);
}

void mav_resblock_forward(mav_resblock *l, mav_layer_ctx *c, float *out, const float *x, const float *stemb) {
    int N = c->B * c->F;
    long in = (long)N * l->cin * l->P, outn = (long)N * l->cout * l->P;
    mav_groupnorm_forward(l->n1, l->mean1, l->rstd1, x, mav_layer_w(c, l->in_norm_w), mav_layer_w(c, l->in_norm_b), N,
                          l->cin, (int)l->P, GROUPS, GN_EPS);
    mav_silu_forward(l->a1, l->n1, in);
    mav_p3dconv_forward(&l->in_conv, c, l->h1, l->a1);
    mav_linear_forward(l->ss, stemb, mav_layer_w(c, l->emb_w), mav_layer_w(c, l->emb_b), c->B, l->temb, 2 * l->cout);
    mav_groupnorm_forward(l->n2, l->mean2, l->rstd2, l->h1, mav_layer_w(c, l->out_norm_w),
                          mav_layer_w(c, l->out_norm_b), N, l->cout, (int)l->P, GROUPS, GN_EPS);
    mav_modulate_forward(l->m2, l->n2, l->ss, c->B, c->F, l->cout, l->P);
    mav_silu_forward(l->a2, l->m2, outn);
    size_t mark = mav_arena_mark(c->work);
    const float *conv_in = l->a2;
    if (c->training && l->dropout > 0.0f) {
        float *d = mav_arena_floats(c->work, (size_t)outn);
        l->drop_at = c->dropout_rng;
        mav_dropout_forward(d, l->a2, outn, l->dropout, l->drop_at);
        c->dropout_rng.offset += mav_dropout_blocks(outn);
        conv_in = d;
    }
    // the dropout output is not kept: backward recomputes it from the saved stream position
    mav_p3dconv_forward(&l->out_conv, c, out, conv_in);
    mav_arena_release(c->work, mark);
    if (l->has_skip) {
        float *s = mav_arena_floats(c->work, (size_t)outn);
        mav_p3dconv_forward(&l->skip, c, s, x);
        #pragma omp parallel for schedule(static)
        for (long i = 0; i < outn; i++) out[i] += s[i];
        mav_arena_release(c->work, mark);
    } else {
        #pragma omp parallel for schedule(static)
        for (long i = 0; i < outn; i++) out[i] += x[i];
    }
}

void mav_resblock_backward(mav_resblock *l, mav_layer_ctx *c, float *dx, float *dstemb, const float *dout,
                           const float *x, const float *stemb) {
    int N = c->B * c->F;
    long in = (long)N * l->cin * l->P, outn = (long)N * l->cout * l->P;
    size_t mark = mav_arena_mark(c->work);
    long big = in > outn ? in : outn;
    float *g1 = mav_arena_floats(c->work, (size_t)big), *g2 = mav_arena_floats(c->work, (size_t)big);
    float *dss = mav_arena_floats(c->work, (size_t)c->B * 2 * l->cout);
    float *dst = mav_arena_floats(c->work, (size_t)c->B * l->temb);

    // skip path writes dx; the main path is added at the end
    if (l->has_skip) mav_p3dconv_backward(&l->skip, c, dx, dout, x);
    else memcpy(dx, dout, (size_t)in * sizeof *dx);

    // out_conv: its input was a2 (or dropout(a2), recomputed here: g2 holds it)
    const float *conv_in = l->a2;
    int dropped = c->training && l->dropout > 0.0f;
    if (dropped) { mav_dropout_forward(g2, l->a2, outn, l->dropout, l->drop_at); conv_in = g2; }
    mav_p3dconv_backward(&l->out_conv, c, g1, dout, conv_in);
    if (dropped) mav_dropout_backward(g1, g1, outn, l->dropout, l->drop_at);
    mav_silu_backward(g1, g1, l->m2, outn);
    mav_modulate_backward(g1, dss, g1, l->n2, l->ss, c->B, c->F, l->cout, l->P);
    mav_linear_backward(dst, mav_layer_g(c, l->emb_w), mav_layer_g(c, l->emb_b), dss, stemb, mav_layer_w(c, l->emb_w),
                        c->B, l->temb, 2 * l->cout);
    for (long i = 0; i < (long)c->B * l->temb; i++) dstemb[i] += dst[i];
    mav_groupnorm_backward(g2, mav_layer_g(c, l->out_norm_w), mav_layer_g(c, l->out_norm_b), g1, l->h1, l->mean2,
                           l->rstd2, mav_layer_w(c, l->out_norm_w), N, l->cout, (int)l->P, GROUPS, c->scratch);
    mav_p3dconv_backward(&l->in_conv, c, g1, g2, l->a1);
    mav_silu_backward(g1, g1, l->n1, in);
    mav_groupnorm_backward(g2, mav_layer_g(c, l->in_norm_w), mav_layer_g(c, l->in_norm_b), g1, x, l->mean1, l->rstd1,
                           mav_layer_w(c, l->in_norm_w), N, l->cin, (int)l->P, GROUPS, c->scratch);
    #pragma omp parallel for schedule(static)
    for (long i = 0; i < in; i++) dx[i] += g2[i];
    mav_arena_release(c->work, mark);
}
