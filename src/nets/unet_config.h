// unet_config.h — the P3D U-Net configuration (SPEC §3) and the named configs of SPEC §8.
#ifndef MAV_UNET_CONFIG_H
#define MAV_UNET_CONFIG_H

#include "core/error.h"
#include "diffusion/schedule.h"

#define MAV_UNET_MAX_LEVELS 8


typedef struct {
    int in_ch, out_ch, ch;
    int n_levels;                        // length of ch_mult
    int ch_mult[MAV_UNET_MAX_LEVELS];
    int num_res_blocks;
    int attn_level[MAV_UNET_MAX_LEVELS]; // 1 if level L has attention (SPEC attn_levels)
    int head_ch;
    int emb_dim;                         // 0 = no image-embedding conditioning
    int n_ctx;                           // context tokens from the embedding (0 = none)
    int cond_fps, cond_aug, temporal;
    int max_frames;
    float dropout;
    mav_pred_type prediction;            // eps or v (SPEC §3); x0 is the prior's, rejected here
} mav_unet_config;

// Named configurations of SPEC §8 ("tiny", "bench-decoder", "bench-sr", "bench-image").
mav_status mav_unet_config_named(mav_unet_config *c, const char *name);
const char *const *mav_unet_config_names(void);  // NULL-terminated
// Every rule of SPEC §2/§3 a config must satisfy (GroupNorm widths multiple of 32, heads
// dividing widths, n_ctx needing emb_dim, ...); the error names the offending field.
mav_status mav_unet_config_check(const mav_unet_config *c);
// JSON (the checkpoint's "mav.config"): to a malloc'd string / from a string (checked).
char *mav_unet_config_to_json(const mav_unet_config *c);
mav_status mav_unet_config_from_json(mav_unet_config *c, const char *json);

#endif
