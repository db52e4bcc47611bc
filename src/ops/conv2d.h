// conv2d.h — 2-D convolution (k×k, stride 1 or 2, symmetric zero padding), forward and backward.
//
// Layout [N, C, H, W] with N = batch·frames (docs/ENGINE.md: frames are extra batch).
// Weight [C_out, C_in, kh, kw] (PyTorch), bias [C_out].
//   out[n,co,oy,ox] = bias[co] + Σ_ci Σ_ki Σ_kj weight[co,ci,ki,kj] · inp[n,ci,oy·s+ki−pad,ox·s+kj−pad]
// (taps outside the image read 0). H_out = (H + 2·pad − kh) / stride + 1, likewise W_out.
//
// Implementation: im2col over a band of output rows + mav_sgemm; a 1×1 stride-1 unpadded conv
// is a plain GEMM on the image itself. Images are spread over threads (single-threaded GEMMs)
// when N >= threads, otherwise each image is one threaded GEMM (conv2d.c says why).
// Results are bit-identical run to run at a given thread count.
#ifndef MAV_CONV2D_H
#define MAV_CONV2D_H

#include <stddef.h>

typedef struct { int N, C_in, H, W, C_out, kh, kw, stride, pad; } mav_conv2d_shape;

int mav_conv2d_out_h(const mav_conv2d_shape *s);
int mav_conv2d_out_w(const mav_conv2d_shape *s);

// Scratch (floats) that forward and backward need for shape s at the current thread count
// (mav_threads_get()); the same count must be in force when the op runs.
size_t mav_conv2d_scratch_floats(const mav_conv2d_shape *s);

// out [N, C_out, H_out, W_out]; inp [N, C_in, H, W]; weight [C_out, C_in, kh, kw]; bias [C_out] or NULL
void mav_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                        const mav_conv2d_shape *s, float *scratch);

// dinp [N, C_in, H, W] written (=); dweight [C_out, C_in, kh, kw] and dbias [C_out] accumulated (+=);
// any of the three may be NULL (that work is skipped). dout [N, C_out, H_out, W_out].
void mav_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                         const float *weight, const mav_conv2d_shape *s, float *scratch);

// Tuning knob: floats per im2col column buffer (one band of output rows; at least one row is
// always taken). Tests lower it to exercise banding on small images; set it before sizing scratch.
extern size_t mav_conv2d_col_budget;

#endif
