// p3dconv.h — P3DConv (SPEC §3): a k×k conv2d on every frame, then (temporal nets) a
// kernel-3 conv along frames at every pixel. Also used without its temporal part for the
// plain per-frame convs (skip 1×1, downsample, upsample conv) by passing temporal = 0.
#ifndef MAV_P3DCONV_H
#define MAV_P3DCONV_H

#include "layers/layer.h"
#include "ops/conv2d.h"

typedef struct {
    int cin, cout, k, stride, temporal;
    int ws, bs, wt, bt;  // parameter indices (wt, bt = -1 without the temporal part)
    int H, W;            // input size (planned)
    float *mid;          // [N, cout, Ho·Wo] conv2d output = temporal input (saved; temporal only)
} mav_p3dconv;

// `spatial_name` is the conv2d's prefix ("in_conv.spatial", "down.0.downsample.op");
// `temporal_name` the temporal conv's prefix or NULL.
void mav_p3dconv_init(mav_p3dconv *l, const mav_params *p, const char *spatial_name, const char *temporal_name,
                      int cin, int cout, int k, int stride);
void mav_p3dconv_plan(mav_p3dconv *l, mav_layer_ctx *c, mav_arena *act, int H, int W);
// Bytes backward takes from c->work (its caller adds this to its own needs).
size_t mav_p3dconv_work_bytes(const mav_p3dconv *l, const mav_layer_ctx *c);
int mav_p3dconv_out_h(const mav_p3dconv *l);
int mav_p3dconv_out_w(const mav_p3dconv *l);
// out [N, cout, Ho, Wo] from inp [N, cin, H, W].
void mav_p3dconv_forward(mav_p3dconv *l, mav_layer_ctx *c, float *out, const float *inp);
// dinp (NULL = not needed) from dout; inp is the forward's input. Uses c->work.
void mav_p3dconv_backward(mav_p3dconv *l, mav_layer_ctx *c, float *dinp, const float *dout, const float *inp);

#endif
