#include "nets/unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/rng.h"


// ---- registration ---------------------------------------------------------------------

static void add(mav_params *p, const char *prefix, const char *name, int ndim, int64_t d0, int64_t d1, int64_t d2,
                int64_t d3) {
    char full[MAV_NAME_MAX];
    mav_param_name(full, "%s%s%s", prefix, prefix[0] ? "." : "", name);
    int64_t s[4] = {d0, d1, d2, d3};
    mav_params_add(p, full, ndim, s);
}

static void add_linear(mav_params *p, const char *prefix, int out, int in) {
    add(p, prefix, "weight", 2, out, in, 0, 0);
    add(p, prefix, "bias", 1, out, 0, 0, 0);
}

static void add_conv2d(mav_params *p, const char *prefix, int out, int in, int k) {
    add(p, prefix, "weight", 4, out, in, k, k);
    add(p, prefix, "bias", 1, out, 0, 0, 0);
}

static void add_norm(mav_params *p, const char *prefix, int c) {
    add(p, prefix, "weight", 1, c, 0, 0, 0);
    add(p, prefix, "bias", 1, c, 0, 0, 0);
}

static void add_p3dconv(mav_params *p, const mav_unet_config *c, const char *prefix, int out, int in) {
    char n[MAV_NAME_MAX];
    mav_param_name(n, "%s.spatial", prefix);
    add_conv2d(p, n, out, in, 3);
    if (c->temporal) {
        mav_param_name(n, "%s.temporal", prefix);
        add(p, n, "weight", 3, out, out, 3, 0);
        add(p, n, "bias", 1, out, 0, 0, 0);
    }
}

static void add_mlp_emb(mav_params *p, const char *prefix, int d_in, int d) {
    char n[MAV_NAME_MAX];
    mav_param_name(n, "%s.0", prefix);
    add_linear(p, n, d, d_in);
    mav_param_name(n, "%s.2", prefix);
    add_linear(p, n, d, d);
}

static void add_resblock(mav_params *p, const mav_unet_config *c, const char *prefix, int c_in, int c_out) {
    char n[MAV_NAME_MAX];
    int temb = 4 * c->ch;
    mav_param_name(n, "%s.in_norm", prefix); add_norm(p, n, c_in);
    mav_param_name(n, "%s.in_conv", prefix); add_p3dconv(p, c, n, c_out, c_in);
    mav_param_name(n, "%s.emb_out", prefix); add_linear(p, n, 2 * c_out, temb);
    mav_param_name(n, "%s.out_norm", prefix); add_norm(p, n, c_out);
    mav_param_name(n, "%s.out_conv", prefix); add_p3dconv(p, c, n, c_out, c_out);
    if (c_in != c_out) { mav_param_name(n, "%s.skip", prefix); add_conv2d(p, n, c_out, c_in, 1); }
}

static void add_attn(mav_params *p, const mav_unet_config *c, const char *prefix, int ch) {
    char n[MAV_NAME_MAX];
    mav_param_name(n, "%s.norm", prefix); add_norm(p, n, ch);
    mav_param_name(n, "%s.qkv", prefix); add_linear(p, n, 3 * ch, ch);
    if (c->emb_dim > 0 && c->n_ctx > 0) { mav_param_name(n, "%s.ctx_kv", prefix); add_linear(p, n, 2 * ch, 4 * c->ch); }
    mav_param_name(n, "%s.proj", prefix); add_linear(p, n, ch, ch);
    if (c->temporal) {
        mav_param_name(n, "%s.tnorm", prefix); add_norm(p, n, ch);
        add(p, prefix, "tpos", 2, c->max_frames, ch, 0, 0);
        mav_param_name(n, "%s.tqkv", prefix); add_linear(p, n, 3 * ch, ch);
        mav_param_name(n, "%s.tproj", prefix); add_linear(p, n, ch, ch);
    }
}

mav_status mav_unet_register_params(const mav_unet_config *c, mav_params *p) {
    mav_status st = mav_unet_config_check(c);
    if (st != MAV_OK) return st;
    int temb = 4 * c->ch;
    add_mlp_emb(p, "time_embed", c->ch, temb);
    if (c->emb_dim > 0) {
        add_linear(p, "emb_proj", temb, c->emb_dim);
        if (c->n_ctx > 0) add_linear(p, "ctx_proj", c->n_ctx * temb, c->emb_dim);
    }
    if (c->cond_fps) add_mlp_emb(p, "fps_embed", c->ch, temb);
    if (c->cond_aug) add_mlp_emb(p, "aug_embed", c->ch, temb);
    add_p3dconv(p, c, "in_conv", c->ch, c->in_ch);

    // ADM's skip bookkeeping (SPEC §3 layout): widths of the tensors pushed on the skip stack.
    int skips[1 + MAV_UNET_MAX_LEVELS * 8], nskips = 0;
    int w = c->ch;
    skips[nskips++] = w;
    char n[MAV_NAME_MAX];
    for (int L = 0; L < c->n_levels; L++) {
        int out = c->ch_mult[L] * c->ch;
        for (int i = 0; i < c->num_res_blocks; i++) {
            mav_param_name(n, "down.%d.res.%d", L, i);
            add_resblock(p, c, n, w, out);
            w = out;
            if (c->attn_level[L]) { mav_param_name(n, "down.%d.attn.%d", L, i); add_attn(p, c, n, w); }
            skips[nskips++] = w;
        }
        if (L != c->n_levels - 1) {
            mav_param_name(n, "down.%d.downsample.op", L);
            add_conv2d(p, n, w, w, 3);
            skips[nskips++] = w;
        }
    }
    add_resblock(p, c, "mid.res.0", w, w);
    add_attn(p, c, "mid.attn", w);
    add_resblock(p, c, "mid.res.1", w, w);
    for (int L = c->n_levels - 1; L >= 0; L--) {
        int out = c->ch_mult[L] * c->ch;
        for (int i = 0; i < c->num_res_blocks + 1; i++) {
            mav_param_name(n, "up.%d.res.%d", L, i);
            add_resblock(p, c, n, w + skips[--nskips], out);
            w = out;
            if (c->attn_level[L]) { mav_param_name(n, "up.%d.attn.%d", L, i); add_attn(p, c, n, w); }
        }
        if (L > 0) { mav_param_name(n, "up.%d.upsample.conv", L); add_conv2d(p, n, w, w, 3); }
    }
    MAV_ASSERT(nskips == 0);
    add_norm(p, "out_norm", w);
    add_p3dconv(p, c, "out_conv", c->out_ch, w);
    return MAV_OK;
}

// ---- initialisation ---------------------------------------------------------------------

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

int mav_unet_is_temporal_param(const char *name) {
    return strstr(name, ".temporal.") != NULL || strstr(name, ".tnorm.") != NULL || ends_with(name, ".tpos") ||
           strstr(name, ".tqkv.") != NULL || strstr(name, ".tproj.") != NULL;
}

// PyTorch's default init for Linear / Conv (kaiming_uniform with a = sqrt(5)): weight and
// bias ~ U(−1/sqrt(fan_in), 1/sqrt(fan_in)), fan_in = in · kernel area.
static void init_uniform(const mav_param *t, float *v, int64_t fan_in, mav_rng *r) {
    double bound = 1.0 / sqrt((double)fan_in);
    mav_rng_uniform(r, v, t->numel);
    for (size_t i = 0; i < t->numel; i++) v[i] = (float)((2.0 * v[i] - 1.0) * bound);
}

static int64_t fan_in_of_weight(const mav_params *p, const char *bias_name) {
    char w[MAV_NAME_MAX];
    size_t n = strlen(bias_name) - strlen("bias");
    memcpy(w, bias_name, n);
    strcpy(w + n, "weight");
    int i = mav_params_find(p, w);
    MAV_ASSERT(i >= 0);
    const mav_param *t = &p->items[i];
    return (int64_t)(t->numel / (size_t)t->shape[0]);
}

void mav_unet_init_temporal_param(const mav_param *t, float *v, uint64_t seed) {
    memset(v, 0, t->numel * sizeof *v);
    if (strstr(t->name, ".temporal.") && ends_with(t->name, "weight")) {
        // [out, out, 3]: weight[:, :, 1] = I
        for (int64_t o = 0; o < t->shape[0]; o++) v[(o * t->shape[1] + o) * 3 + 1] = 1.0f;
    } else if (strstr(t->name, ".tnorm.") && ends_with(t->name, "weight")) {
        for (size_t i = 0; i < t->numel; i++) v[i] = 1.0f;
    } else if (strstr(t->name, ".tqkv.")) {
        mav_rng r = mav_rng_make(seed);
        int64_t fan_in = ends_with(t->name, "weight") ? t->shape[1] : t->shape[0] / 3;  // tqkv is [3c, c]
        init_uniform(t, v, fan_in, &r);
    }
    // temporal bias, tnorm.bias, tpos, tproj: 0
}

void mav_unet_init_params(const mav_unet_config *c, mav_params *p, uint64_t seed) {
    (void)c;
    for (int k = 0; k < p->count; k++) {
        const mav_param *t = &p->items[k];
        float *v = mav_param_value(p, k);
        mav_rng r = mav_rng_fork(seed, (uint64_t)k);
        const char *nm = t->name;
        if (mav_unet_is_temporal_param(nm)) {
            mav_unet_init_temporal_param(t, v, r.seed);
        } else if (ends_with(nm, "norm.weight")) {
            for (size_t i = 0; i < t->numel; i++) v[i] = 1.0f;
        } else if (ends_with(nm, "norm.bias")) {
            memset(v, 0, t->numel * sizeof *v);
        } else if ((strstr(nm, ".out_conv.spatial.") && strstr(nm, "res.")) || strstr(nm, ".proj.") ||
                   strncmp(nm, "out_conv.spatial.", 17) == 0) {
            // zero-init (SPEC §3): ResBlock out_conv spatial, attention proj, final out_conv
            memset(v, 0, t->numel * sizeof *v);
        } else if (ends_with(nm, "weight")) {
            init_uniform(t, v, (int64_t)(t->numel / (size_t)t->shape[0]), &r);
        } else {
            init_uniform(t, v, fan_in_of_weight(p, nm), &r);
        }
    }
}
