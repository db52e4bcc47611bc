// The container formats mav reads through FFmpeg's libraries (issue 5: MP4, WebM, AVI, MPEG,
// OGV, GIF), each made here by the `ffmpeg` tool from one known clip: 12 frames of 64×48 at
// 12 fps (MPEG-1, which has no 12 fps, gets the same frames at 25 fps), a bright square moving 4 px per frame. mav must read
// the right size, frame count and fps, and see the square where it is (the codecs are lossy:
// only the square's position and a coarse pixel bound are compared).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "media/media.h"
#include "testutil.h"

enum { W = 64, H = 48, N = 12 };

// Column of the square's centre in frame k.
static int square_x(int k) { return 8 + 4 * k; }

static void write_source(const char *path) {
    mav_frames f = {0};
    assert_int_equal(mav_frames_alloc(&f, W, H, N, 12.0), MAV_OK);
    for (int k = 0; k < N; k++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int in = abs(x - square_x(k)) <= 4 && abs(y - H / 2) <= 4;
                uint8_t *p = f.rgb + (((size_t)k * H + y) * W + x) * 3;
                p[0] = in ? 240 : 20; p[1] = in ? 200 : 30; p[2] = in ? 40 : 60;
            }
    if (mav_media_write(path, &f, NULL) != MAV_OK) fail_msg("%s", mav_last_error());
    mav_frames_free(&f);
}

// The red-weighted centroid column of frame k above the background level (the square's
// centre; codec noise moves it by well under a pixel).
static double square_centre(const mav_frames *f, int k) {
    double sw = 0, sx = 0;
    for (int y = 0; y < f->h; y++)
        for (int x = 0; x < f->w; x++) {
            double r = f->rgb[(((size_t)k * f->h + y) * f->w + x) * 3] - 130.0;  // halfway between 20 and 240
            if (r > 0) { sw += r; sx += r * x; }
        }
    return sw > 0 ? sx / sw : -1;
}

static void ffmpeg_containers(void **state) {
    (void)state;
    if (system("command -v ffmpeg >/dev/null 2>&1") != 0) skip();  // scripts/setup --with-tests installs it
    char dir[256], src[300], out[300], cmd[1200];
    snprintf(dir, sizeof dir, "/tmp/mav_formats_%d", (int)getpid());
    snprintf(cmd, sizeof cmd, "mkdir -p %s", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(src, sizeof src, "%s/src.png", dir);  // PNG frames: src_0000.png ...
    write_source(src);
    static const struct { const char *ext, *args; int fps; } fmt[] = {
        {"mp4", "-c:v libx264 -pix_fmt yuv420p", 12},
        {"webm", "-c:v libvpx -b:v 1M", 12},
        {"avi", "-c:v mjpeg -q:v 3", 12},
        {"mpg", "-c:v mpeg1video -q:v 3", 25},
        {"ogv", "-c:v libtheora -q:v 8", 12},
        {"gif", "", 12},
    };
    for (size_t i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
        snprintf(out, sizeof out, "%s/clip.%s", dir, fmt[i].ext);
        snprintf(cmd, sizeof cmd, "ffmpeg -v error -y -framerate %d -i %s/src_%%04d.png %s %s", fmt[i].fps, dir,
                 fmt[i].args, out);
        if (system(cmd) != 0) fail_msg("ffmpeg could not make %s", out);
        mav_media_info info;
        if (mav_media_probe(out, &info) != MAV_OK) fail_msg("%s: %s", fmt[i].ext, mav_last_error());
        mav_frames f = {0};
        if (mav_media_read(out, 0, &f) != MAV_OK) fail_msg("%s: %s", fmt[i].ext, mav_last_error());
        if (f.w != W || f.h != H) fail_msg("%s: %dx%d, want %dx%d", fmt[i].ext, f.w, f.h, W, H);
        // GIF stores delays in whole centiseconds (1/12 s = 8.33 cs becomes a mix of 8 and 9)
        double fps_tol = strcmp(fmt[i].ext, "gif") == 0 ? 0.25 : 0.01;
        if (fabs(f.fps - fmt[i].fps) > fps_tol) fail_msg("%s: fps %g, want %d", fmt[i].ext, f.fps, fmt[i].fps);
        if (f.n != N) fail_msg("%s: %d frames, want %d", fmt[i].ext, f.n, N);
        if (info.frames != f.n) fail_msg("%s: probe says %d frames, reading gives %d", fmt[i].ext, info.frames, f.n);
        // the square is where it should be in every frame
        for (int k = 0; k < f.n; k++) {
            double x = square_centre(&f, k);
            if (fabs(x - square_x(k)) > 1.0) fail_msg("%s frame %d: square at x=%.2f, want %d", fmt[i].ext, k, x, square_x(k));
        }
        mav_frames_free(&f);
    }
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
}

MAV_TEST_GROUP(media_formats, cmocka_unit_test(ffmpeg_containers))
