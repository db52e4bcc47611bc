// cmd_media.c — `mav media info FILE` (JSON description of any image/video mav reads) and
// `mav media convert IN OUT [--fps N] [--size WxH]`.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "media/media.h"

static double g_media_fps = 0;
static const char *g_media_size = NULL;
static int g_media_quality = 0;

const char cmd_media_help[] =
    "mav media info FILE\n"
    "  Prints one JSON object {\"width\",\"height\",\"frames\",\"fps\",\"duration\",\"format\"} for an\n"
    "  image, a video (MP4, WebM, AVI, MPEG, OGV, GIF, animated WebP...) or a frame folder (a\n"
    "  directory of .png/.jpg files sorted by name, 8 fps). Stills have frames 1 and fps 0.\n"
    "mav media convert IN OUT [--fps N] [--size WxH] [--quality Q]\n"
    "  Decodes IN and writes OUT in the format of its extension: .mp4 (H.264, yuv420p), .gif,\n"
    "  .webp (animated when more than one frame), .png (one file per frame: OUT's %04d or\n"
    "  OUT_0000.png...), .jpg (one frame). --size resizes (area average when shrinking,\n"
    "  bilinear when enlarging) and centre-crops to WxH. --fps resamples the frames in time to N\n"
    "  fps keeping the duration (frames are repeated or dropped); for a still or a source of\n"
    "  unknown rate it only sets the output rate. See docs/MEDIA.md.";

const cli_opt media_opts[] = {
    {"fps", OPT_FLOAT, &g_media_fps, "N", "output frame rate (frames resampled in time)", 0.01, 1000},
    {"size", OPT_STRING, &g_media_size, "WxH", "resize and centre-crop to W x H", 0, 0},
    {"quality", OPT_INT, &g_media_quality, "Q", "1..100 (JPEG/WebP quality, H.264 crf = 51(100-Q)/100; WebP 100 = lossless)", 1, 100},
    CLI_OPT_END};

static int media_info(const cli_command *cmd, int npos, char **pos) {
    if (npos != 2) return cli_usage_error(cmd, "media info takes one FILE");
    mav_media_info in;
    if (mav_media_probe(pos[1], &in) != MAV_OK) return cli_fail("media info");
    json_t *o = json_object();
    json_object_set_new(o, "width", json_integer(in.width));
    json_object_set_new(o, "height", json_integer(in.height));
    json_object_set_new(o, "frames", json_integer(in.frames));
    json_object_set_new(o, "fps", json_real(in.fps));
    json_object_set_new(o, "duration", json_real(in.duration));
    json_object_set_new(o, "format", json_string(in.format));
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(10));
    printf("%s\n", s);
    free(s);
    json_decref(o);
    return 0;
}

// Resample f in time from its fps to fps (output frame j shows the source frame on screen at
// time j/fps). Replaces *f.
static int retime(mav_frames *f, double fps) {
    if (!(f->fps > 0) || f->n == 1 || fabs(f->fps - fps) < 1e-9) { f->fps = fps; return 0; }
    long n = lround(f->n * fps / f->fps);
    if (n < 1) n = 1;
    mav_frames g;
    if (mav_frames_alloc(&g, f->w, f->h, (int)n, fps) != MAV_OK) return 1;
    size_t fsz = (size_t)f->w * f->h * 3;
    for (long j = 0; j < n; j++) {
        long s = (long)floor(j * f->fps / fps + 1e-9);
        if (s >= f->n) s = f->n - 1;
        memcpy(g.rgb + j * fsz, f->rgb + s * fsz, fsz);
    }
    mav_frames_free(f);
    *f = g;
    return 0;
}

static int media_convert(const cli_command *cmd, int npos, char **pos) {
    if (npos != 3) return cli_usage_error(cmd, "media convert takes IN and OUT");
    int w = 0, h = 0;
    if (g_media_size) {
        char tail;
        if (sscanf(g_media_size, "%dx%d%c", &w, &h, &tail) != 2 || w <= 0 || h <= 0 || w > MAV_MEDIA_MAX_SIDE ||
            h > MAV_MEDIA_MAX_SIDE)
            return cli_usage_error(cmd, "--size expects WxH with sides in 1..%d, got \"%s\"", MAV_MEDIA_MAX_SIDE,
                                   g_media_size);
    }
    mav_frames f;
    if (mav_media_read(pos[1], 0, &f) != MAV_OK) return cli_fail("media convert");
    if (w > 0) {
        mav_frames r;
        if (mav_frames_resize_crop(&r, &f, w, h) != MAV_OK) { mav_frames_free(&f); return cli_fail("media convert"); }
        mav_frames_free(&f);
        f = r;
    }
    if (g_media_fps > 0 && retime(&f, g_media_fps)) { mav_frames_free(&f); return cli_fail("media convert"); }
    mav_media_write_opts o = {f.fps, g_media_quality};
    mav_status st = mav_media_write(pos[2], &f, &o);
    mav_frames_free(&f);
    return st == MAV_OK ? 0 : cli_fail("media convert");
}

int cmd_media(int argc, char **argv) {
    const cli_command *cmd = cli_find("media");
    char *pos[3];
    int npos = 0;
    int rc = cli_parse(cmd, media_opts, argc, argv, 1, pos, 3, &npos);
    if (rc) return rc;
    if (npos < 1) return cli_usage_error(cmd, "expects a subcommand: info or convert");
    if (strcmp(pos[0], "info") == 0) return media_info(cmd, npos, pos);
    if (strcmp(pos[0], "convert") == 0) return media_convert(cmd, npos, pos);
    return cli_usage_error(cmd, "unknown subcommand \"%s\" (info, convert)", pos[0]);
}
