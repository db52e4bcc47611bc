// Real Fluent Emoji files (tests/fixtures/emoji, MIT) through mav's readers: the animated
// WebP path (libwebp's WebPAnimDecoder; FFmpeg 5.1 cannot decode these), the still path,
// alpha composited on white, resizing to a training resolution, and `mav media info`.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "media/media.h"
#include "testutil.h"

static const char *fixture(const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/fixtures/emoji/%s", MAV_TESTS_DIR, name);
    return path;
}

// A pixel well away from the emoji (the top-left corner) is transparent in these files:
// after compositing on white it must be exactly white. The emoji itself must be there: at
// least 1% of the pixels are not white.
static void check_frames(const mav_frames *f, const char *name) {
    for (int k = 0; k < f->n; k++) {
        const uint8_t *fr = f->rgb + (size_t)k * f->w * f->h * 3;
        if (fr[0] != 255 || fr[1] != 255 || fr[2] != 255) fail_msg("%s frame %d: corner %d,%d,%d is not white", name, k, fr[0], fr[1], fr[2]);
        size_t coloured = 0, npix = (size_t)f->w * f->h;
        for (size_t q = 0; q < npix; q++) coloured += fr[3 * q] < 250 || fr[3 * q + 1] < 250 || fr[3 * q + 2] < 250;
        if (coloured * 100 < npix) fail_msg("%s frame %d: only %zu of %zu pixels are not white", name, k, coloured, npix);
    }
}

static void animated_files(void **state) {
    (void)state;
    static const struct { const char *name; int frames; double fps; } want[] = {{"1fac0.webp", 13, 23.897}, {"1f9e0.webp", 28, 23.810}};
    for (int i = 0; i < 2; i++) {
        mav_frames f = {0};
        if (mav_media_read(fixture(want[i].name), 0, &f) != MAV_OK) fail_msg("%s", mav_last_error());
        assert_int_equal(f.w, 256);
        assert_int_equal(f.h, 256);
        assert_int_equal(f.n, want[i].frames);
        // fps = 1000 / mean frame duration (ms): as `webpinfo` reports the durations
        if (f.fps < want[i].fps - 0.01 || f.fps > want[i].fps + 0.01) fail_msg("%s: fps %g, want %g", want[i].name, f.fps, want[i].fps);
        check_frames(&f, want[i].name);
        // the animation moves: consecutive frames differ
        size_t fs = (size_t)f.w * f.h * 3;
        assert_true(memcmp(f.rgb, f.rgb + fs, fs) != 0);
        // down to a training resolution
        mav_frames s = {0};
        assert_int_equal(mav_frames_resize_crop(&s, &f, 32, 32), MAV_OK);
        assert_int_equal(s.n, f.n);
        check_frames(&s, want[i].name);
        mav_frames_free(&s);
        mav_frames_free(&f);
    }
}

static void still_files_and_cli(void **state) {
    (void)state;
    static const char *const stills[] = {"1f93f.webp", "2716-fe0f.webp"};
    for (int i = 0; i < 2; i++) {
        mav_frames f = {0};
        if (mav_media_read(fixture(stills[i]), 0, &f) != MAV_OK) fail_msg("%s", mav_last_error());
        assert_int_equal(f.n, 1);
        assert_int_equal(f.w, 256);
        check_frames(&f, stills[i]);
        mav_frames_free(&f);
    }
    char args[1200];
    snprintf(args, sizeof args, "media info %s", fixture("1f9e0.webp"));
    tu_expect_mav(args, 0, "\"frames\": 28");
}

MAV_TEST_GROUP(emoji_files,
    cmocka_unit_test(animated_files),
    cmocka_unit_test(still_files_and_cli))
