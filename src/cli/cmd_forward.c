// cmd_forward.c — `mav forward MODEL INPUTS OUT`: run one network on named input tensors
// from a safetensors file and write its outputs (SPEC §9), for debugging and for checking
// mav against other implementations of SPEC.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "io/safetensors.h"
#include "nets/unet.h"

const cli_opt forward_opts[] = {CLI_OPT_END};

// Read input `name` as f32 with the given shape; `required` 0 returns NULL when absent.
static float *read_input(const mav_st_file *f, const char *name, int ndim, const int64_t *shape, int required,
                         mav_status *st) {
    const mav_st_tensor *t = mav_st_find(f, name);
    if (!t) {
        if (required) *st = mav_fail(MAV_ERR_SHAPE, "%s: input \"%s\" is missing", f->path, name);
        return NULL;
    }
    if (t->dtype == MAV_BOOL) { *st = mav_fail(MAV_ERR_FORMAT, "%s: input \"%s\" must be numeric, not BOOL", f->path, name); return NULL; }
    size_t n = 1;
    for (int d = 0; d < ndim; d++) n *= (size_t)shape[d];
    float *x = malloc((n ? n : 1) * sizeof *x);
    if (!x) { *st = mav_fail(MAV_ERR_NOMEM, "input \"%s\": out of memory", name); return NULL; }
    *st = mav_st_read_f32(f, name, ndim, shape, x);
    if (*st != MAV_OK) { free(x); return NULL; }
    for (size_t i = 0; i < n; i++)
        if (x[i] != x[i] || x[i] - x[i] != 0.0f) {
            *st = mav_fail(MAV_ERR_FORMAT, "%s: input \"%s\" holds a non-finite value at element %zu", f->path, name, i);
            free(x);
            return NULL;
        }
    return x;
}

static int forward_unet(const mav_st_file *mf, const mav_st_file *inf, const char *out_path) {
    mav_unet_config c;
    if (mav_unet_read_config(mf, &c) != MAV_OK) return cli_fail("forward");
    mav_unet *net = calloc(1, sizeof *net);
    float *x = NULL, *xf = NULL, *t = NULL, *e = NULL, *fps = NULL, *aug = NULL, *eps = NULL, *epsf = NULL;
    int rc = 1;
    mav_status st = MAV_OK;
    if (!net || mav_unet_create(net, &c) != MAV_OK || mav_unet_alloc_params(net, 0) != MAV_OK ||
        mav_unet_load_weights(net, mf) != MAV_OK) {
        rc = cli_fail("forward");
        goto done;
    }
    const mav_st_tensor *xt = mav_st_find(inf, "x");
    if (!xt) { fprintf(stderr, "mav forward: %s: input \"x\" [B, %d, F, H, W] is missing\n", inf->path, c.in_ch); goto done; }
    if (xt->ndim != 5 || xt->shape[1] != c.in_ch) {
        char sb[96];
        fprintf(stderr, "mav forward: %s: input \"x\" has shape %s, expected [B, %d, F, H, W]\n", inf->path,
                mav_shape_str(sb, sizeof sb, xt->ndim, xt->shape), c.in_ch);
        goto done;
    }
    int B = (int)xt->shape[0], F = (int)xt->shape[2], H = (int)xt->shape[3], W = (int)xt->shape[4];
    if (B < 1 || F < 1 || H < 1 || W < 1 || (int64_t)B * F * H * W > (1LL << 31)) {
        fprintf(stderr, "mav forward: %s: input \"x\" has an empty or oversized shape\n", inf->path);
        goto done;
    }
    int64_t sb1[1] = {B}, se[2] = {B, c.emb_dim};
    if (!(x = read_input(inf, "x", 5, xt->shape, 1, &st)) || !(t = read_input(inf, "t", 1, sb1, 1, &st))) goto fail;
    if (c.emb_dim > 0 && !(e = read_input(inf, "e", 2, se, 0, &st)) && st != MAV_OK) goto fail;
    if (c.cond_fps && !(fps = read_input(inf, "fps", 1, sb1, 1, &st))) goto fail;
    if (c.cond_aug && !(aug = read_input(inf, "aug", 1, sb1, 1, &st))) goto fail;
    for (int i = 0; i < inf->ntensors; i++) {
        const char *n = inf->tensors[i].name;
        int known = !strcmp(n, "x") || !strcmp(n, "t") || (!strcmp(n, "e") && c.emb_dim > 0) ||
                    (!strcmp(n, "fps") && c.cond_fps) || (!strcmp(n, "aug") && c.cond_aug);
        if (!known) { st = mav_fail(MAV_ERR_SHAPE, "%s: input \"%s\" is not used by this network", inf->path, n); goto fail; }
    }
    if ((st = mav_unet_plan(net, B, F, H, W, 0)) != MAV_OK) goto fail;
    long P = (long)H * W;
    size_t nx = (size_t)B * F * c.in_ch * P, ne = (size_t)B * F * c.out_ch * P;
    xf = malloc(nx * sizeof *xf);
    eps = malloc(ne * sizeof *eps);
    epsf = malloc(ne * sizeof *epsf);
    if (!xf || !eps || !epsf) { st = mav_fail(MAV_ERR_NOMEM, "out of memory"); goto fail; }
    mav_video_to_frames_major(xf, x, B, c.in_ch, F, P);
    mav_unet_forward(net, epsf, xf, t, e, fps, aug);
    mav_video_from_frames_major(eps, epsf, B, c.out_ch, F, P);
    mav_st_writer w;
    mav_st_writer_init(&w);
    int64_t so[5] = {B, c.out_ch, F, H, W};
    mav_st_writer_add_f32(&w, "eps", 5, so, eps, MAV_F32);
    st = mav_st_writer_save(&w, out_path);
    mav_st_writer_free(&w);
    if (st != MAV_OK) goto fail;
    rc = 0;
    goto done;
fail:
    rc = cli_fail("forward");
done:
    free(x); free(xf); free(t); free(e); free(fps); free(aug); free(eps); free(epsf);
    if (net) mav_unet_free(net);
    free(net);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    const cli_command *cmd = cli_find("forward");
    char *pos[3];
    int npos = 0;
    int rc = cli_parse(cmd, forward_opts, argc, argv, 1, pos, 3, &npos);
    if (rc) return rc;
    if (npos != 3) return cli_usage_error(cmd, "expects MODEL INPUTS OUT");
    mav_st_file mf, inf;
    if (mav_st_open(&mf, pos[0]) != MAV_OK) return cli_fail("forward");
    if (mav_st_open(&inf, pos[1]) != MAV_OK) { mav_st_close(&mf); return cli_fail("forward"); }
    const char *kind = mav_st_meta(&mf, "mav.kind");
    if (kind && strcmp(kind, "unet") == 0) rc = forward_unet(&mf, &inf, pos[2]);
    else {
        fprintf(stderr, "mav forward: %s: mav.kind is %s; supported: unet\n", pos[0], kind ? kind : "missing");
        rc = 1;
    }
    mav_st_close(&mf);
    mav_st_close(&inf);
    return rc;
}
