// unet.h — the P3D U-Net (SPEC §3): decoder D / D^t, interpolation ↑F, SR_l / SR^t_l, SR_h.
//
// This part: the parameter table (every tensor by its SPEC name, in a fixed order) and the
// initialisation of SPEC §3 (identity temporal convs, zero-init projections, PyTorch's
// default uniform(±1/sqrt(fan_in)) elsewhere).
#ifndef MAV_UNET_H
#define MAV_UNET_H

#include <stdint.h>

#include "core/params.h"
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

#endif
