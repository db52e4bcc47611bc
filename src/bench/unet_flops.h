// unet_flops.h — analytic FLOP count of one P3D U-Net forward (SPEC §3), for `mav bench unet`.
//
// Convention (the usual one for GFLOP/s figures): 2 flops per multiply-add of every dense
// product — every Conv2d (3×3 and 1×1, incl. the stride-2 downsample and the conv after the
// nearest-2× upsample), every temporal Conv1d (3 taps on every frame, padded taps included,
// as a dense conv computes them), every Linear (conditioning MLPs, emb_out, qkv, ctx_kv,
// proj, tqkv, tproj) and both attention matmuls (Q·Kᵀ and P·V, spatial and temporal; the
// context tokens count as extra keys). Element-wise work (GroupNorm, LayerNorm, SiLU,
// softmax, residual adds, bias adds, the timestep sinusoids) is not counted: it is
// bandwidth, not arithmetic. A training step counts 3× the forward (backward = 2× forward:
// one product for the input gradient, one for the weight gradient); the loss, gradient clip
// and AdamW update are not counted.
//
// The count walks the config as SPEC §3 lays the network out; it does not read mav_unet's
// plan, so it is an independent check of the layout as well as the FLOP figure
// (scripts/bench_torch_unet.py --count-flops counts the PyTorch reference with hooks).
#ifndef MAV_UNET_FLOPS_H
#define MAV_UNET_FLOPS_H

#include "nets/unet_config.h"

typedef struct {
    double conv;       // spatial Conv2d (3×3, 1×1 skips, down/upsample convs)
    double tconv;      // temporal Conv1d
    double linear;     // every Linear (conditioning MLPs, emb_out, qkv, ctx_kv, proj, tqkv, tproj)
    double attn;       // Q·Kᵀ and P·V, spatial and temporal
    double total;      // the sum
} mav_unet_flops;

// FLOPs of one forward on B samples of F frames at H×W (H, W divisible by 2^(levels−1);
// the config is assumed valid: mav_unet_config_check).
mav_unet_flops mav_unet_forward_flops(const mav_unet_config *c, int B, int F, int H, int W);

#endif
