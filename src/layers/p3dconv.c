#include "layers/p3dconv.h"

#include "ops/tconv.h"

void mav_p3dconv_init(mav_p3dconv *l, const mav_params *p, const char *spatial_name, const char *temporal_name,
                      int cin, int cout, int k, int stride) {
    *l = (mav_p3dconv){.cin = cin, .cout = cout, .k = k, .stride = stride, .temporal = temporal_name != NULL,
                       .wt = -1, .bt = -1};
    l->ws = mav_layer_param(p, spatial_name, "weight");
    l->bs = mav_layer_param(p, spatial_name, "bias");
    if (temporal_name) {
        l->wt = mav_layer_param(p, temporal_name, "weight");
        l->bt = mav_layer_param(p, temporal_name, "bias");
    }
}

static mav_conv2d_shape shape_of(const mav_p3dconv *l, int N) {
    return (mav_conv2d_shape){.N = N, .C_in = l->cin, .H = l->H, .W = l->W, .C_out = l->cout, .kh = l->k,
                              .kw = l->k, .stride = l->stride, .pad = l->k / 2};
}

int mav_p3dconv_out_h(const mav_p3dconv *l) { mav_conv2d_shape s = shape_of(l, 1); return mav_conv2d_out_h(&s); }
int mav_p3dconv_out_w(const mav_p3dconv *l) { mav_conv2d_shape s = shape_of(l, 1); return mav_conv2d_out_w(&s); }

size_t mav_p3dconv_work_bytes(const mav_p3dconv *l, const mav_layer_ctx *c) {
    mav_conv2d_shape s = shape_of(l, c->B * c->F);
    long P = (long)mav_conv2d_out_h(&s) * mav_conv2d_out_w(&s);
    return l->temporal ? mav_work_bytes((size_t)s.N * l->cout * P) : 0;
}

void mav_p3dconv_plan(mav_p3dconv *l, mav_layer_ctx *c, mav_arena *act, int H, int W) {
    l->H = H;
    l->W = W;
    int N = c->B * c->F;
    mav_conv2d_shape s = shape_of(l, N);
    long P = (long)mav_conv2d_out_h(&s) * mav_conv2d_out_w(&s);
    mav_layer_need_scratch(c, mav_conv2d_scratch_floats(&s));
    if (l->temporal) {
        mav_layer_need_scratch(c, mav_tconv_scratch_floats(c->B, c->F, l->cout, l->cout, P));
        l->mid = mav_arena_floats(act, (size_t)N * l->cout * P);
    }
    mav_layer_need_work(c, mav_p3dconv_work_bytes(l, c));
}

void mav_p3dconv_forward(mav_p3dconv *l, mav_layer_ctx *c, float *out, const float *inp) {
    mav_conv2d_shape s = shape_of(l, c->B * c->F);
    long P = (long)mav_conv2d_out_h(&s) * mav_conv2d_out_w(&s);
    float *ws = mav_layer_w(c, l->ws), *bs = mav_layer_w(c, l->bs);
    if (!l->temporal) { mav_conv2d_forward(out, inp, ws, bs, &s, c->scratch); return; }
    mav_conv2d_forward(l->mid, inp, ws, bs, &s, c->scratch);
    mav_tconv_forward(out, l->mid, mav_layer_w(c, l->wt), mav_layer_w(c, l->bt), c->B, c->F, l->cout, l->cout, P,
                      c->scratch);
}

void mav_p3dconv_backward(mav_p3dconv *l, mav_layer_ctx *c, float *dinp, const float *dout, const float *inp) {
    mav_conv2d_shape s = shape_of(l, c->B * c->F);
    long P = (long)mav_conv2d_out_h(&s) * mav_conv2d_out_w(&s);
    const float *dspatial = dout;
    size_t mark = mav_arena_mark(c->work);
    if (l->temporal) {
        float *dmid = mav_arena_floats(c->work, (size_t)s.N * l->cout * P);
        mav_tconv_backward(dmid, mav_layer_g(c, l->wt), mav_layer_g(c, l->bt), dout, l->mid, mav_layer_w(c, l->wt),
                           c->B, c->F, l->cout, l->cout, P, c->scratch);
        dspatial = dmid;
    }
    mav_conv2d_backward(dinp, mav_layer_g(c, l->ws), mav_layer_g(c, l->bs), dspatial, inp, mav_layer_w(c, l->ws), &s,
                        c->scratch);
    mav_arena_release(c->work, mark);
}
