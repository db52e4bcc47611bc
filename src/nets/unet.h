// unet.h — the P3D U-Net (SPEC §3): decoder D / D^t, interpolation ↑F, SR_l / SR^t_l, SR_h.
//
// This part: the parameter table (every tensor by its SPEC name, in a fixed order) and the
// initialisation of SPEC §3 (identity temporal convs, zero-init projections, PyTorch's
// default uniform(±1/sqrt(fan_in)) elsewhere).
#ifndef MAV_UNET_H
#define MAV_UNET_H

#include <stdint.h>

#include "core/params.h"
#include "io/safetensors.h"
#include "layers/attnblock.h"
#include "layers/resblock.h"
#include "nets/unet_config.h"

// Register every tensor of the net described by `c` (checked first) into `p`.
mav_status mav_unet_register_params(const mav_unet_config *c, mav_params *p);
// Fill allocated values with the SPEC §3 initial values; random parts drawn from `seed`
// (tensor k uses the Philox stream fork(seed, k), so one tensor's values do not depend on
// the others).
void mav_unet_init_params(const mav_unet_config *c, mav_params *p, uint64_t seed);
// Is this tensor one of the temporal ones (SPEC §3 "temporal initial values"): temporal
// convs, tnorm, tpos, tqkv, tproj. These are the tensors inflation fills in.
int mav_unet_is_temporal_param(const char *name);
// Write the initial value of one temporal tensor (identity / 0 / 1; tqkv from `seed`).
void mav_unet_init_temporal_param(const mav_param *t, float *value, uint64_t seed);


// ---- the network at run time ---------------------------------------------------------------
//
// Activations are frames-major [B, F, C, H, W] (docs/ENGINE.md); mav_video_* convert from and
// to the SPEC's logical [B, C, F, H, W]. Memory: mav_unet_plan(B, F, H, W) measures every
// activation the forward saves, the backward's gradient buffers, the largest op scratch and
// the largest per-call temporaries, then allocates each once; a later plan with the same
// shape is free. Nothing is allocated in forward or backward.

typedef enum { MAV_UNIT_RES, MAV_UNIT_DOWNSAMPLE, MAV_UNIT_UPSAMPLE, MAV_UNIT_KIND_COUNT } mav_unit_kind;

typedef struct {
    mav_unit_kind kind;
    int level, H, W;        // resolution the unit works at (its output's)
    int cin, cout;
    int skip_push;          // index in the skip stack this unit's output becomes (-1: none)
    int skip_pop;           // up ResBlocks: skip concatenated to the input (-1: none)
    int has_attn;
    mav_resblock res;
    mav_attnblock attn;
    mav_p3dconv conv;       // downsample (stride 2) or the upsample's conv
    float *in;              // concat (up ResBlock) or nearest-2× (upsample) input; else NULL
    float *mid;             // ResBlock output when attention follows
    float *out;             // [N, cout, H·W]
} mav_unet_unit;

#define MAV_UNET_MAX_UNITS 128

typedef struct {
    mav_unet_config cfg;
    mav_params params;
    int n_units;
    mav_unet_unit units[MAV_UNET_MAX_UNITS];
    int n_skips;
    int skip_c[MAV_UNET_MAX_UNITS];  // channels of each skip entry
    mav_p3dconv in_conv, out_conv;
    int te0w, te0b, te2w, te2b, embw, embb, ctxw, ctxb, fe0w, fe0b, fe2w, fe2b, ae0w, ae0b, ae2w, ae2b, onw, onb;
    // plan
    int B, F, H, W, planned_training;
    mav_arena act, work;
    float *scratch;
    mav_layer_ctx lc;
    // saved conditioning activations ([B, ·])
    float *t_in, *t_h, *t_s, *f_in, *f_h, *f_s, *a_in, *a_h, *a_s, *e_in, *temb, *stemb, *ctx;
    float *x;               // [N, in_ch, P] the input (frames-major copy)
    float *h0;              // in_conv output
    float *on, *on_mean, *on_rstd, *oa;  // out_norm, SiLU
    float *eps;             // [N, out_ch, P] output
    float *skips[MAV_UNET_MAX_UNITS];    // pointers to the skip activations
    float *dskips[MAV_UNET_MAX_UNITS];   // their gradients from the up path (training)
    float *g0, *g1;         // gradient ping-pong buffers (training)
    float *dstemb, *dctx;
} mav_unet;

// A network with registered (not yet allocated) parameters.
mav_status mav_unet_create(mav_unet *net, const mav_unet_config *c);
void mav_unet_free(mav_unet *net);
// Allocate parameter values (+ gradients and AdamW moments for training).
mav_status mav_unet_alloc_params(mav_unet *net, int training);
// Plan activation memory for B samples of F frames at H×W (checks: F ≤ max_frames for
// temporal nets, H and W divisible by 2^(levels−1), sizes > 0). training: keep what backward needs.
mav_status mav_unet_plan(mav_unet *net, int B, int F, int H, int W, int training);
size_t mav_unet_planned_bytes(const mav_unet *net);
// eps [B, F, out_ch, H, W] from x [B, F, in_ch, H, W] (frames-major), t [B]; e [B, emb_dim] or
// NULL (= zeros: the unconditional branch of classifier-free guidance); fps [B] when
// cond_fps; aug [B] when cond_aug. Outputs stay valid until the next forward.
void mav_unet_forward(mav_unet *net, float *eps, const float *x, const float *t, const float *e, const float *fps,
                      const float *aug);
// Gradients of the last forward (training plan): parameter grads accumulated (+=), dx
// [B, F, in_ch, H, W] written when not NULL.
void mav_unet_backward(mav_unet *net, float *dx, const float *deps);

// Checkpoints (SPEC §7): safetensors with mav.kind = "unet" and mav.config.
mav_status mav_unet_save(const mav_unet *net, const char *path, mav_dtype dtype, int nmeta, const char *const *keys,
                         const char *const *vals);
// Read the config of a checkpoint.
mav_status mav_unet_read_config(const mav_st_file *f, mav_unet_config *c);
// Load weights into an allocated net. Tensors must match names and shapes exactly, with one
// exception (inflation): when the file holds an image model (no temporal tensors) and the
// net is temporal, the temporal tensors get their initial values (identity / zero).
mav_status mav_unet_load_weights(mav_unet *net, const mav_st_file *f);

// [B, C, F, P] <-> [B, F, C, P] (the SPEC's logical video layout <-> frames-major).
void mav_video_to_frames_major(float *out, const float *in, int B, int C, int F, long P);
void mav_video_from_frames_major(float *out, const float *in, int B, int C, int F, long P);

#endif
