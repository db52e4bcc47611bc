// unet_flops.c — walks SPEC §3's layout and adds up 2·MACs per dense product (unet_flops.h).
#include "bench/unet_flops.h"

typedef struct {
    const mav_unet_config *c;
    double B, F;          // samples, frames (doubles: products reach 1e12)
    double N;             // B·F images
    mav_unet_flops f;
} counter;

// Linear in→out applied to `rows` vectors.
static void linear(counter *k, double rows, int in, int out) { k->f.linear += 2.0 * rows * in * out; }

// Conv2d cin→cout, ksize×ksize, producing an Ho×Wo map on every image.
static void conv2d(counter *k, int cin, int cout, int ksize, int Ho, int Wo) {
    k->f.conv += 2.0 * k->N * Ho * Wo * (double)cout * cin * ksize * ksize;
}

// P3DConv cin→cout at H×W: the 3×3 conv on every frame, then (temporal nets) the
// 3-tap cout→cout Conv1d along frames at every pixel.
static void p3dconv(counter *k, int cin, int cout, int H, int W) {
    conv2d(k, cin, cout, 3, H, W);
    if (k->c->temporal) k->f.tconv += 2.0 * k->B * H * W * k->F * (double)cout * cout * 3;
}

// ResBlock cin→cout at H×W: in_conv, emb_out (4ch → 2·cout per sample), out_conv, 1×1 skip.
static void resblock(counter *k, int cin, int cout, int H, int W) {
    p3dconv(k, cin, cout, H, W);
    linear(k, k->B, 4 * k->c->ch, 2 * cout);
    p3dconv(k, cout, cout, H, W);
    if (cin != cout) conv2d(k, cin, cout, 1, H, W);
}

// AttnBlock(c) at H×W. Spatial: H·W tokens per image, qkv, n_ctx extra keys from ctx_kv
// (computed once per sample, before repeating over frames), Q·Kᵀ and P·V over all heads
// (heads × head_ch = c), proj. Temporal (temporal nets): F tokens per pixel, no context.
static void attnblock(counter *k, int c, int H, int W) {
    const mav_unet_config *cfg = k->c;
    double T = (double)H * W;
    int n_ctx = cfg->emb_dim > 0 && cfg->n_ctx > 0 ? cfg->n_ctx : 0;
    linear(k, k->N * T, c, 3 * c);
    if (n_ctx) linear(k, k->B * n_ctx, 4 * cfg->ch, 2 * c);
    k->f.attn += 2.0 * 2.0 * k->N * T * (T + n_ctx) * c;  // Q·Kᵀ and P·V
    linear(k, k->N * T, c, c);
    if (cfg->temporal) {
        double seqs = k->B * T;
        linear(k, seqs * k->F, c, 3 * c);
        k->f.attn += 2.0 * 2.0 * seqs * k->F * k->F * c;
        linear(k, seqs * k->F, c, c);
    }
}

// Width of entry `p` of the skip stack (0: in_conv's output; then, per level, one entry per
// ResBlock and one for the downsample, all m·ch wide), computed rather than stored so no
// config size needs a fixed-size array.
static int skip_width(const mav_unet_config *c, int p) {
    if (p == 0) return c->ch;
    p--;
    for (int L = 0; L < c->n_levels; L++) {
        int n = c->num_res_blocks + (L != c->n_levels - 1);
        if (p < n) return c->ch_mult[L] * c->ch;
        p -= n;
    }
    return 0;  // unreachable for a valid config
}

mav_unet_flops mav_unet_forward_flops(const mav_unet_config *c, int B, int F, int H, int W) {
    counter k = {.c = c, .B = B, .F = F, .N = (double)B * F};
    const int ch = c->ch, temb = 4 * ch;
    // conditioning: time (and fps / aug) MLPs ch → 4ch → 4ch, emb_proj, ctx_proj; per sample
    int mlps = 1 + (c->cond_fps != 0) + (c->cond_aug != 0);
    for (int i = 0; i < mlps; i++) linear(&k, B, ch, temb), linear(&k, B, temb, temb);
    if (c->emb_dim > 0) {
        linear(&k, B, c->emb_dim, temb);
        if (c->n_ctx > 0) linear(&k, B, c->emb_dim, c->n_ctx * temb);
    }

    int n_skips = 0;  // entries on the skip stack (their widths: skip_width)
    p3dconv(&k, c->in_ch, ch, H, W);
    n_skips++;
    int w = ch, h = H, wd = W;
    for (int L = 0; L < c->n_levels; L++) {
        for (int i = 0; i < c->num_res_blocks; i++) {
            resblock(&k, w, c->ch_mult[L] * ch, h, wd);
            w = c->ch_mult[L] * ch;
            if (c->attn_level[L]) attnblock(&k, w, h, wd);
            n_skips++;
        }
        if (L != c->n_levels - 1) {
            h /= 2, wd /= 2;
            conv2d(&k, w, w, 3, h, wd);  // stride 2: the output map is the half-size one
            n_skips++;
        }
    }
    resblock(&k, w, w, h, wd);
    attnblock(&k, w, h, wd);
    resblock(&k, w, w, h, wd);
    for (int L = c->n_levels - 1; L >= 0; L--) {
        for (int i = 0; i <= c->num_res_blocks; i++) {
            int cin = w + skip_width(c, --n_skips);
            w = c->ch_mult[L] * ch;
            resblock(&k, cin, w, h, wd);
            if (c->attn_level[L]) attnblock(&k, w, h, wd);
        }
        if (L > 0) {
            h *= 2, wd *= 2;
            conv2d(&k, w, w, 3, h, wd);  // after nearest 2×: at the doubled size
        }
    }
    p3dconv(&k, w, c->out_ch, H, W);
    k.f.total = k.f.conv + k.f.tconv + k.f.linear + k.f.attn;
    return k.f;
}
