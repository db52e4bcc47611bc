// Media I/O (src/media): round trips through every writer and decoder (PNG, JPEG, WebP,
// MP4/H.264, GIF, PNG frame folders), the committed WebP fixtures made by ffmpeg's libwebp,
// PNG colour types (16-bit, palette + tRNS, gray + alpha), corrupt/truncated/huge files,
// resize+crop on known patterns, f32 conversion, contact sheets, and the `mav media` CLI.
#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "media/media.h"
#include "testutil.h"

// ---- helpers ------------------------------------------------------------------------------

static void make_tmpdir(char *out, size_t cap) {
    snprintf(out, cap, "%s/mav_media_XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(out));
}

static void rm_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[1024];
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) rm_tree(p);
        else unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static const char *fixture(const char *name) {
    static char buf[1024];
    const char *f = __FILE__, *slash = strrchr(f, '/');
    snprintf(buf, sizeof buf, "%.*s/fixtures/media/%s", slash ? (int)(slash - f) : 1, slash ? f : ".", name);
    return buf;
}

// A smooth moving pattern (gradients + a drifting sine), w×h×n at fps: friendly to lossy codecs.
static void make_smooth(mav_frames *f, int w, int h, int n, double fps) {
    assert_int_equal(mav_frames_alloc(f, w, h, n, fps), MAV_OK);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                uint8_t *p = f->rgb + (((size_t)i * h + y) * w + x) * 3;
                p[0] = (uint8_t)(40 + 170.0 * x / (w - 1));
                p[1] = (uint8_t)(40 + 170.0 * y / (h - 1));
                p[2] = (uint8_t)(128 + 80 * sin(0.3 * x + 0.2 * y + 0.5 * i));
            }
}

// Few colours (8), blocky and moving: every lossless-palette format must keep it exactly.
static void make_blocks(mav_frames *f, int w, int h, int n, double fps) {
    static const uint8_t pal[8][3] = {{255, 255, 255}, {0, 0, 0},   {230, 20, 40},  {20, 200, 60},
                                      {30, 60, 220},   {250, 220, 0}, {128, 128, 128}, {7, 99, 201}};
    assert_int_equal(mav_frames_alloc(f, w, h, n, fps), MAV_OK);
    for (int i = 0; i < n; i++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                memcpy(f->rgb + (((size_t)i * h + y) * w + x) * 3, pal[((x + i) / 3 + y / 2 * 3) % 8], 3);
}

static void make_random(mav_frames *f, int w, int h, int n, uint64_t seed) {
    assert_int_equal(mav_frames_alloc(f, w, h, n, 0), MAV_OK);
    uint64_t s = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < (size_t)w * h * 3 * n; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        f->rgb[i] = (uint8_t)(s >> 24);
    }
}

// Max and mean absolute difference of two frame sets over the first w×h of each frame of b
// (a may be larger: padded outputs).
static void diff_stats(const mav_frames *a, const mav_frames *b, int *maxd, double *meand) {
    long sum = 0;
    *maxd = 0;
    for (int i = 0; i < b->n; i++)
        for (int y = 0; y < b->h; y++)
            for (int x = 0; x < b->w; x++)
                for (int c = 0; c < 3; c++) {
                    int d = abs((int)a->rgb[(((size_t)i * a->h + y) * a->w + x) * 3 + c] -
                                (int)b->rgb[(((size_t)i * b->h + y) * b->w + x) * 3 + c]);
                    if (d > *maxd) *maxd = d;
                    sum += d;
                }
    *meand = (double)sum / ((double)b->n * b->h * b->w * 3);
}

static void expect_equal_frames(const char *what, const mav_frames *got, const mav_frames *want) {
    if (got->w != want->w || got->h != want->h || got->n != want->n)
        fail_msg("%s: got %dx%dx%d, want %dx%dx%d", what, got->w, got->h, got->n, want->w, want->h, want->n);
    size_t n = (size_t)want->w * want->h * 3 * want->n;
    for (size_t i = 0; i < n; i++)
        if (got->rgb[i] != want->rgb[i])
            fail_msg("%s: byte %zu (frame %zu) is %d, want %d", what, i, i / ((size_t)want->w * want->h * 3),
                     got->rgb[i], want->rgb[i]);
}

// Reads a file into memory (malloc'd).
static uint8_t *slurp(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) fail_msg("cannot open %s", path);
    fseek(fp, 0, SEEK_END);
    long len = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *d = malloc((size_t)len + 1);
    assert_non_null(d);
    assert_int_equal(fread(d, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    *n = (size_t)len;
    return d;
}

static void spit(const char *path, const void *d, size_t n) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    if (n) assert_int_equal(fwrite(d, 1, n, fp), n);
    fclose(fp);
}

// ffprobe's view of stream 0 (counting frames by decoding). Returns 0 when ffprobe is absent.
static int ffprobe(const char *path, char *codec, char *pixfmt, int *frames, double *fps) {
    if (system("command -v ffprobe >/dev/null 2>&1") != 0) return 0;
    char cmd[1200];
    snprintf(cmd, sizeof cmd,
             "ffprobe -v error -select_streams v:0 -count_frames -show_entries "
             "stream=codec_name,pix_fmt,nb_read_frames,avg_frame_rate -of default=nw=1 '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char line[256];
    codec[0] = pixfmt[0] = 0;
    *frames = -1; *fps = -1;
    while (fgets(line, sizeof line, p)) {
        line[strcspn(line, "\n")] = 0;
        int a, b;
        if (!strncmp(line, "codec_name=", 11)) snprintf(codec, 32, "%.31s", line + 11);
        else if (!strncmp(line, "pix_fmt=", 8)) snprintf(pixfmt, 32, "%.31s", line + 8);
        else if (!strncmp(line, "nb_read_frames=", 15)) *frames = atoi(line + 15);
        else if (sscanf(line, "avg_frame_rate=%d/%d", &a, &b) == 2 && b > 0) *fps = (double)a / b;
    }
    if (pclose(p) != 0) fail_msg("ffprobe failed on %s", path);
    return 1;
}

// ---- round trips --------------------------------------------------------------------------

static void png_roundtrip_exact(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames a, b;
    make_random(&a, 13, 7, 1, 1);  // odd sizes, incompressible content
    snprintf(path, sizeof path, "%s/one.png", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    expect_equal_frames("png 13x7", &b, &a);  // PNG is lossless: exact
    mav_media_info in;
    assert_int_equal(mav_media_probe(path, &in), MAV_OK);
    assert_int_equal(in.width, 13); assert_int_equal(in.height, 7); assert_int_equal(in.frames, 1);
    assert_string_equal(in.format, "png");
    mav_frames_free(&a); mav_frames_free(&b);

    // n > 1 with a pattern: files 000..004 in a sub-folder, read back as a frame folder (8 fps).
    char sub[300];
    snprintf(sub, sizeof sub, "%.250s/frames", dir);
    assert_int_equal(mkdir(sub, 0755), 0);
    make_random(&a, 5, 1, 5, 2);  // a size-1 dimension
    snprintf(path, sizeof path, "%s/f_%%03d.png", sub);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    snprintf(path, sizeof path, "%s/f_004.png", sub);
    assert_int_equal(access(path, F_OK), 0);
    assert_int_equal(mav_media_read(sub, 0, &b), MAV_OK);
    expect_equal_frames("png folder", &b, &a);
    assert_true(b.fps == MAV_MEDIA_FOLDER_FPS);
    mav_frames_free(&b);
    assert_int_equal(mav_media_read(sub, 2, &b), MAV_OK);  // max_frames
    assert_int_equal(b.n, 2);
    mav_frames_free(&b);
    assert_int_equal(mav_media_probe(sub, &in), MAV_OK);
    assert_int_equal(in.frames, 5); assert_string_equal(in.format, "folder");
    assert_true(fabs(in.duration - 5 / MAV_MEDIA_FOLDER_FPS) < 1e-12);

    // No '%': STEM_0000.png ...
    snprintf(path, sizeof path, "%s/clip.png", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    snprintf(path, sizeof path, "%s/clip_0004.png", dir);
    assert_int_equal(access(path, F_OK), 0);
    // A bad pattern is an argument error, not a format-string hazard.
    snprintf(path, sizeof path, "%s/x_%%s.png", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_ERR_ARG);
    mav_frames_free(&a);
    rm_tree(dir);
}

static void jpeg_roundtrip(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames a, b;
    make_smooth(&a, 17, 9, 1, 0);
    snprintf(path, sizeof path, "%s/one.JPG", dir);  // extensions are case-insensitive
    mav_media_write_opts o = {0, 95};
    assert_int_equal(mav_media_write(path, &a, &o), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    assert_int_equal(b.w, 17); assert_int_equal(b.h, 9); assert_int_equal(b.n, 1);
    int maxd; double meand;
    diff_stats(&b, &a, &maxd, &meand);
    // Quality 95 with 4:2:0 chroma (the blue sine is fast-varying chroma that subsampling
    // halves): measured max 16, mean 2.86 here. Bounds are about twice that, for other
    // libjpeg builds; a wrong colour matrix, shift or channel order gives means above 20.
    if (maxd > 32 || meand > 6) fail_msg("jpeg q95: max %d mean %.2f", maxd, meand);
    mav_frames_free(&b);
    mav_frames_free(&a);
    make_smooth(&a, 4, 4, 2, 8);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_ERR_ARG);  // JPEG holds one frame
    mav_frames_free(&a);
    rm_tree(dir);
}

static void mp4_roundtrip(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames a, b;
    make_smooth(&a, 34, 18, 13, 24);  // even, not multiples of 16 (macroblocks)
    snprintf(path, sizeof path, "%s/clip.mp4", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    assert_int_equal(b.w, 34); assert_int_equal(b.h, 18); assert_int_equal(b.n, 13);
    assert_true(fabs(b.fps - 24) < 1e-9);
    int maxd; double meand;
    diff_stats(&b, &a, &maxd, &meand);
    // H.264 at crf 18 in yuv420p (chroma at half resolution, limited-range BT.601 rounding
    // both ways): measured max 24, mean 2.72 here; bounds about twice that (x264 versions
    // differ), far below what a wrong frame order, colour matrix or shift gives (mean > 20).
    if (maxd > 48 || meand > 6) fail_msg("mp4 crf18: max %d mean %.2f", maxd, meand);
    char codec[32], pixfmt[32];
    int frames; double fps;
    if (ffprobe(path, codec, pixfmt, &frames, &fps)) {
        assert_string_equal(codec, "h264");
        assert_string_equal(pixfmt, "yuv420p");
        assert_int_equal(frames, 13);
        assert_true(fabs(fps - 24) < 1e-9);
    }
    mav_media_info in;
    assert_int_equal(mav_media_probe(path, &in), MAV_OK);
    assert_int_equal(in.frames, 13); assert_string_equal(in.format, "mp4");
    assert_true(fabs(in.duration - 13.0 / 24) < 1e-9);

    // From memory, and max_frames.
    size_t n;
    uint8_t *bytes = slurp(path, &n);
    mav_frames c;
    assert_int_equal(mav_media_read_memory(bytes, n, "clip.mp4", 0, &c), MAV_OK);
    expect_equal_frames("mp4 from memory", &c, &b);
    mav_frames_free(&c);
    assert_int_equal(mav_media_read_memory(bytes, n, "clip.mp4", 4, &c), MAV_OK);
    assert_int_equal(c.n, 4);
    mav_frames_free(&c);
    free(bytes);
    mav_frames_free(&a); mav_frames_free(&b);

    // Odd sides and a fractional rate: padded to 34x20 by edge replication, 29.97 fps kept.
    make_smooth(&a, 33, 19, 5, 30000.0 / 1001);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    assert_int_equal(b.w, 34); assert_int_equal(b.h, 20); assert_int_equal(b.n, 5);
    assert_true(fabs(b.fps - 30000.0 / 1001) < 1e-6);
    diff_stats(&b, &a, &maxd, &meand);  // over the original 33x19 region; measured max 20, mean 2.84
    if (maxd > 48 || meand > 6) fail_msg("mp4 odd: max %d mean %.2f", maxd, meand);
    mav_frames_free(&a); mav_frames_free(&b);
    rm_tree(dir);
}

static void gif_roundtrip(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames a, b;
    make_blocks(&a, 21, 11, 6, 10);
    snprintf(path, sizeof path, "%s/clip.gif", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    expect_equal_frames("gif 8 colours", &b, &a);  // <= 256 colours: exact palette
    assert_true(fabs(b.fps - 10) < 1e-9);            // 10 cs delays
    char codec[32], pixfmt[32];
    int frames; double fps;
    if (ffprobe(path, codec, pixfmt, &frames, &fps)) {
        assert_string_equal(codec, "gif");
        assert_int_equal(frames, 6);
    }
    mav_frames_free(&a); mav_frames_free(&b);

    // Two frames: the container states no rate; it is measured from the delays (20 cs).
    make_blocks(&a, 5, 3, 2, 5);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    expect_equal_frames("gif 2 frames", &b, &a);
    assert_true(fabs(b.fps - 5) < 1e-9);
    mav_frames_free(&a); mav_frames_free(&b);

    // Many colours: median cut to 256 entries over 5-bit bins, no dithering: measured max 24,
    // mean 5.46 on this clip; bounds about twice that (a broken palette gives means > 30).
    make_smooth(&a, 40, 30, 3, 10);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    int maxd; double meand;
    diff_stats(&b, &a, &maxd, &meand);
    if (maxd > 48 || meand > 11) fail_msg("gif quantised: max %d mean %.2f", maxd, meand);
    mav_frames_free(&a); mav_frames_free(&b);
    rm_tree(dir);
}

static void webp_roundtrip(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames a, b;
    make_random(&a, 11, 6, 4, 3);
    a.fps = 12;
    snprintf(path, sizeof path, "%s/anim.webp", dir);
    mav_media_write_opts lossless = {0, 100};
    assert_int_equal(mav_media_write(path, &a, &lossless), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    expect_equal_frames("webp lossless anim", &b, &a);
    // Timestamps are whole ms (83, 167, 250, 333): mean duration 83.25 ms -> 12.01 fps.
    assert_true(fabs(b.fps - 12) < 0.05);
    mav_media_info in;
    assert_int_equal(mav_media_probe(path, &in), MAV_OK);
    assert_int_equal(in.frames, 4); assert_string_equal(in.format, "webp");
    mav_frames_free(&b);
    assert_int_equal(mav_media_read(path, 2, &b), MAV_OK);
    assert_int_equal(b.n, 2);
    mav_frames_free(&b);
    mav_frames_free(&a);

    // Lossy still, quality 90 (VP8, 4:2:0 like JPEG): measured max 17, mean 2.91; bounds as
    // for JPEG (about twice, far below a real decoding error).
    make_smooth(&a, 23, 15, 1, 0);
    snprintf(path, sizeof path, "%s/still.webp", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &b), MAV_OK);
    assert_int_equal(b.n, 1); assert_true(b.fps == 0);
    int maxd; double meand;
    diff_stats(&b, &a, &maxd, &meand);
    if (maxd > 34 || meand > 6) fail_msg("webp lossy: max %d mean %.2f", maxd, meand);
    mav_frames_free(&a); mav_frames_free(&b);
    rm_tree(dir);
}

// Fixtures written by ffmpeg's libwebp_anim (tests/fixtures/media/make_fixtures.sh).
static void webp_fixtures(void **state) {
    (void)state;
    mav_frames f;
    assert_int_equal(mav_media_read(fixture("anim.webp"), 0, &f), MAV_OK);
    assert_int_equal(f.w, 24); assert_int_equal(f.h, 16); assert_int_equal(f.n, 6);
    assert_true(fabs(f.fps - 12) < 0.05);  // whole-ms timestamps: 499 ms for 6 frames
    size_t n;
    uint8_t *raw = slurp(fixture("anim.rgb"), &n);
    assert_int_equal(n, (size_t)24 * 16 * 3 * 6);
    mav_frames want = {24, 16, 6, 12, raw};
    expect_equal_frames("anim.webp vs ffmpeg's rgb24", &f, &want);  // lossless
    free(raw);
    mav_frames_free(&f);
    // Alpha 128 over white: round((c·128 + 255·127)/255) for c = (51, 102, 204).
    assert_int_equal(mav_media_read(fixture("alpha.webp"), 0, &f), MAV_OK);
    assert_int_equal(f.w, 8); assert_int_equal(f.h, 6);
    for (int i = 0; i < 8 * 6; i++) {
        const uint8_t *p = f.rgb + 3 * i;
        if (p[0] != 153 || p[1] != 178 || p[2] != 229) fail_msg("alpha.webp pixel %d: %d %d %d", i, p[0], p[1], p[2]);
    }
    mav_frames_free(&f);
}

// ---- PNG colour types (written with libpng directly) ---------------------------------------

static void write_png_raw(const char *path, int w, int h, int depth, int ctype, const uint8_t *rows,
                          const png_color *pal, int npal, const uint8_t *trns, int ntrns) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop pi = png_create_info_struct(png);
    png_init_io(png, fp);
    png_set_IHDR(png, pi, (png_uint_32)w, (png_uint_32)h, depth, ctype, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, pi, pal, npal);
    if (trns) png_set_tRNS(png, pi, trns, ntrns, NULL);
    png_write_info(png, pi);
    size_t rb = png_get_rowbytes(png, pi);
    for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * rb);
    png_write_end(png, pi);
    png_destroy_write_struct(&png, &pi);
    fclose(fp);
}

static void png_colour_types(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames f;
    // 16-bit RGBA, big-endian samples: opaque red-ish, transparent, half-transparent grey.
    const uint8_t rgba16[] = {0xFF, 0xFF, 0x00, 0x00, 0x80, 0x00, 0xFF, 0xFF,   // (255, 0, 128) a=1
                              0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0x00, 0x00,   // a=0 -> white
                              0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x80};  // black, a≈0.502
    snprintf(path, sizeof path, "%s/rgba16.png", dir);
    write_png_raw(path, 3, 1, 16, PNG_COLOR_TYPE_RGB_ALPHA, rgba16, NULL, 0, NULL, 0);
    assert_int_equal(mav_media_read(path, 0, &f), MAV_OK);
    assert_int_equal(f.w, 3); assert_int_equal(f.h, 1);
    // 16->8 bit is scaled with rounding (0x8000 -> 128, 0x8080 -> 128); black at alpha 128 over
    // white gives round(255·127/255) = 127.
    const uint8_t want16[] = {255, 0, 128, 255, 255, 255, 127, 127, 127};
    for (int i = 0; i < 9; i++)
        if (f.rgb[i] != want16[i]) fail_msg("rgba16 byte %d: %d want %d", i, f.rgb[i], want16[i]);
    mav_frames_free(&f);

    // Palette (4-bit) with tRNS: entry 1 fully transparent, entry 2 opaque blue.
    png_color pal[3] = {{10, 20, 30}, {200, 0, 0}, {0, 0, 255}};
    uint8_t trns[2] = {255, 0};
    const uint8_t pal_rows[] = {0x01, 0x20};  // 3 px per row: 0,1,2 -> nibbles 0 1 | 2 (pad)
    snprintf(path, sizeof path, "%s/pal.png", dir);
    write_png_raw(path, 3, 1, 4, PNG_COLOR_TYPE_PALETTE, pal_rows, pal, 3, trns, 2);
    assert_int_equal(mav_media_read(path, 0, &f), MAV_OK);
    const uint8_t wantp[] = {10, 20, 30, 255, 255, 255, 0, 0, 255};
    for (int i = 0; i < 9; i++)
        if (f.rgb[i] != wantp[i]) fail_msg("palette byte %d: %d want %d", i, f.rgb[i], wantp[i]);
    mav_frames_free(&f);

    // Gray + alpha, 8-bit, 1x2: (100, a=255), (0, a=0).
    const uint8_t ga[] = {100, 255, 0, 0};
    snprintf(path, sizeof path, "%s/ga.png", dir);
    write_png_raw(path, 2, 1, 8, PNG_COLOR_TYPE_GRAY_ALPHA, ga, NULL, 0, NULL, 0);
    assert_int_equal(mav_media_read(path, 0, &f), MAV_OK);
    const uint8_t wantg[] = {100, 100, 100, 255, 255, 255};
    for (int i = 0; i < 6; i++)
        if (f.rgb[i] != wantg[i]) fail_msg("gray-alpha byte %d: %d want %d", i, f.rgb[i], wantg[i]);
    mav_frames_free(&f);
    rm_tree(dir);
}

// ---- bad media ----------------------------------------------------------------------------

// A read of path must fail with a message naming it (or, for streams that end early, decode
// fewer frames of the right size).
static void expect_bad(const char *path, int may_partial, int w, int h, int n) {
    mav_frames f;
    mav_status st = mav_media_read(path, 0, &f);
    if (st == MAV_OK) {
        if (!may_partial) fail_msg("%s: read succeeded on a bad file", path);
        if (f.w != w || f.h != h || f.n > n) fail_msg("%s: partial read gave %dx%dx%d", path, f.w, f.h, f.n);
        mav_frames_free(&f);
    } else {
        if (!strstr(mav_last_error(), path)) fail_msg("%s: message does not name the file: %s", path, mav_last_error());
        if (f.rgb) fail_msg("%s: frames left allocated on failure", path);
    }
    mav_media_info in;
    st = mav_media_probe(path, &in);
    if (st != MAV_OK && !strstr(mav_last_error(), path)) fail_msg("%s: probe message: %s", path, mav_last_error());
    if (!may_partial && st == MAV_OK && n > 1) fail_msg("%s: probe succeeded on a bad video", path);
}

static void truncated_files(void **state) {
    (void)state;
    char dir[256], path[512], cut[600];
    make_tmpdir(dir, sizeof dir);
    mav_frames a;
    make_smooth(&a, 22, 14, 5, 10);
    const char *exts[] = {"mp4", "gif", "webp", "png", "jpg"};
    for (int e = 0; e < 5; e++) {
        int still = e >= 3;
        mav_frames one = a;
        if (still) one.n = 1;
        snprintf(path, sizeof path, "%s/v.%s", dir, exts[e]);
        assert_int_equal(mav_media_write(path, &one, NULL), MAV_OK);
        size_t n;
        uint8_t *bytes = slurp(path, &n);
        size_t cuts[] = {0, 1, 7, 30, n / 4, n / 2, n - 9, n - 1};
        for (int k = 0; k < 8; k++) {
            snprintf(cut, sizeof cut, "%s/cut%zu.%s", dir, cuts[k], exts[e]);
            spit(cut, bytes, cuts[k]);
            // GIF and MP4 decoders may legitimately stop at the last whole frame; PNG, JPEG
            // and WebP must say the file is bad. Sizes: MP4 is padded to even sides.
            expect_bad(cut, e == 1 || (e == 0 && cuts[k] > n / 2), e == 0 ? 22 : 22, 14, one.n);
            mav_frames f;
            assert_int_not_equal(mav_media_read_memory(bytes, cuts[k] < 30 ? cuts[k] : 30, cut, 0, &f), MAV_OK);
            unlink(cut);
        }
        free(bytes);
    }
    mav_frames_free(&a);
    rm_tree(dir);
}

static void garbage_and_huge(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    // Random bytes under every extension; the decoder is chosen by content, so all must fail.
    uint8_t junk[4096];
    uint64_t s = 12345;
    for (size_t i = 0; i < sizeof junk; i++) { s ^= s << 13; s ^= s >> 7; s ^= s << 17; junk[i] = (uint8_t)s; }
    const char *exts[] = {"mp4", "gif", "webp", "png", "jpg", "avi", "bin"};
    for (int e = 0; e < 7; e++) {
        snprintf(path, sizeof path, "%s/junk.%s", dir, exts[e]);
        spit(path, junk, sizeof junk);
        expect_bad(path, 0, 0, 0, 0);
    }
    // Magic numbers followed by junk.
    const char *magics[] = {"\x89PNG\r\n\x1a\n", "\xFF\xD8\xFF\xE0", "RIFF\x10\x00\x00\x00WEBPVP8 ", "GIF89a"};
    for (int m = 0; m < 4; m++) {
        memcpy(junk, magics[m], strlen(magics[m]));
        snprintf(path, sizeof path, "%s/magic%d.img", dir, m);
        spit(path, junk, sizeof junk);
        expect_bad(path, 0, 0, 0, 0);
    }
    // Empty file.
    snprintf(path, sizeof path, "%s/empty.png", dir);
    spit(path, "", 0);
    expect_bad(path, 0, 0, 0, 0);
    assert_non_null(strstr(mav_last_error(), "empty"));
    // A PNG whose header claims 1e6 x 1e6 (valid CRC): refused before any allocation.
    uint8_t png[8 + 25];
    memcpy(png, "\x89PNG\r\n\x1a\n", 8);
    uint8_t ihdr[17] = {'I', 'H', 'D', 'R', 0x00, 0x0F, 0x42, 0x40, 0x00, 0x0F, 0x42, 0x40, 8, 2, 0, 0, 0};
    png[8] = 0; png[9] = 0; png[10] = 0; png[11] = 13;
    memcpy(png + 12, ihdr, 17);
    uint32_t crc = (uint32_t)crc32(0, ihdr, 17);
    png[29] = (uint8_t)(crc >> 24); png[30] = (uint8_t)(crc >> 16); png[31] = (uint8_t)(crc >> 8); png[32] = (uint8_t)crc;
    snprintf(path, sizeof path, "%s/huge.png", dir);
    spit(path, png, sizeof png);
    expect_bad(path, 0, 0, 0, 0);
    mav_media_info in;
    assert_int_not_equal(mav_media_probe(path, &in), MAV_OK);
    // A GIF whose screen and image claim 65535 x 65535.
    const uint8_t gif[] = {'G', 'I', 'F', '8', '9', 'a', 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0, 0, 0x2C, 0, 0, 0, 0,
                           0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3B};
    snprintf(path, sizeof path, "%s/huge.gif", dir);
    spit(path, gif, sizeof gif);
    expect_bad(path, 0, 0, 0, 0);
    // Missing file and a folder without frames.
    snprintf(path, sizeof path, "%s/nope.mp4", dir);
    expect_bad(path, 0, 0, 0, 0);
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    expect_bad(path, 0, 0, 0, 0);
    // Writer argument errors.
    mav_frames a;
    make_blocks(&a, 4, 4, 1, 0);
    snprintf(path, sizeof path, "%s/x.tiff", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_ERR_ARG);
    mav_frames_free(&a);
    assert_int_not_equal(mav_frames_alloc(&a, 20000, 2, 1, 0), MAV_OK);
    assert_null(a.rgb);
    rm_tree(dir);
}

// ---- resize / crop, f32, contact sheet ----------------------------------------------------

static void resize_crop_patterns(void **state) {
    (void)state;
    mav_frames s, d;
    // 8x4 of 2x2 blocks -> 4x2: each output is its block's mean (area average, exact here).
    assert_int_equal(mav_frames_alloc(&s, 8, 4, 2, 6), MAV_OK);
    for (int i = 0; i < 2; i++)
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 8; x++)
                for (int c = 0; c < 3; c++)
                    s.rgb[(((size_t)i * 4 + y) * 8 + x) * 3 + c] = (uint8_t)(x * 30 + y * 7 + c + i * 3 + (x & 1) * 2 + (y & 1));
    assert_int_equal(mav_frames_resize_crop(&d, &s, 4, 2), MAV_OK);
    assert_int_equal(d.n, 2); assert_true(d.fps == 6);
    for (int i = 0; i < 2; i++)
        for (int y = 0; y < 2; y++)
            for (int x = 0; x < 4; x++)
                for (int c = 0; c < 3; c++) {
                    int sum = 0;
                    for (int dy = 0; dy < 2; dy++)
                        for (int dx = 0; dx < 2; dx++) sum += s.rgb[(((size_t)i * 4 + 2 * y + dy) * 8 + 2 * x + dx) * 3 + c];
                    int want = (sum + 2) / 4, got = d.rgb[(((size_t)i * 2 + y) * 4 + x) * 3 + c];
                    // The mean is k + 0.5 at worst (sum ≡ 2 mod 4); f32 weights may round either way.
                    if (abs(got - want) > ((sum % 4) == 2 ? 1 : 0)) fail_msg("area (%d,%d,%d,%d): %d want %d", i, y, x, c, got, want);
                }
    mav_frames_free(&d);
    // 8x4 -> 4x4 at scale 1: a centre crop, columns 2..5 exactly.
    assert_int_equal(mav_frames_resize_crop(&d, &s, 4, 4), MAV_OK);
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++)
                assert_int_equal(d.rgb[((size_t)y * 4 + x) * 3 + c], s.rgb[((size_t)y * 8 + x + 2) * 3 + c]);
    mav_frames_free(&d);
    mav_frames_free(&s);
    // 2x1 -> 4x2 enlarging: bilinear at half-pixel centres: 0, 25, 75, 100 (edges clamped).
    assert_int_equal(mav_frames_alloc(&s, 2, 1, 1, 0), MAV_OK);
    memset(s.rgb, 0, 3);
    memset(s.rgb + 3, 100, 3);
    assert_int_equal(mav_frames_resize_crop(&d, &s, 4, 2), MAV_OK);
    const int want[4] = {0, 25, 75, 100};
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++) assert_int_equal(d.rgb[((size_t)y * 4 + x) * 3 + 1], want[x]);
    mav_frames_free(&d);
    mav_frames_free(&s);
    // Non-integer shrink 7x5 -> 3x3 keeps a constant image constant (weights sum to 1).
    assert_int_equal(mav_frames_alloc(&s, 7, 5, 1, 0), MAV_OK);
    memset(s.rgb, 77, 7 * 5 * 3);
    assert_int_equal(mav_frames_resize_crop(&d, &s, 3, 3), MAV_OK);
    for (int i = 0; i < 27; i++) assert_int_equal(d.rgb[i], 77);
    mav_frames_free(&d);
    mav_frames_free(&s);
}

static void f32_conversion(void **state) {
    (void)state;
    mav_frames a, b;
    make_random(&a, 5, 3, 2, 9);
    float *x = tu_alloc_f((size_t)2 * 3 * 5 * 3);
    mav_frames_to_f32(x, &a);
    // Layout [F, 3, H, W]: frame 1, channel 2, pixel (y=2, x=4).
    float v = x[((1 * 3 + 2) * 3 + 2) * 5 + 4];
    assert_true(fabsf(v - (a.rgb[((1 * 3 + 2) * 5 + 4) * 3 + 2] / 127.5f - 1)) < 1e-6f);
    assert_int_equal(mav_frames_alloc(&b, 5, 3, 2, 0), MAV_OK);
    mav_frames_from_f32(&b, x);
    expect_equal_frames("f32 round trip", &b, &a);  // v/127.5-1 then (x+1)·127.5 rounds back exactly
    x[0] = -7.0f; x[1] = 3.0f; x[2] = 0.0f; x[3] = NAN;
    mav_frames_from_f32(&b, x);
    assert_int_equal(b.rgb[0], 0);    // clamped
    assert_int_equal(b.rgb[3], 255);  // clamped
    assert_int_equal(b.rgb[6], 128);  // 127.5 rounds to even
    assert_int_equal(b.rgb[9], 128);  // NaN as mid-grey
    free(x);
    mav_frames_free(&a); mav_frames_free(&b);
}

static void contact_sheet(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    mav_frames v[2];
    make_blocks(&v[0], 9, 7, 3, 8);
    make_smooth(&v[1], 12, 5, 4, 8);
    const char *caps[2] = {"spiral shell", "caf\xc3\xa9 ~ 100%"};
    snprintf(path, sizeof path, "%s/sheet.png", dir);
    assert_int_equal(mav_contact_sheet(path, v, 2, caps), MAV_OK);
    mav_frames s;
    assert_int_equal(mav_media_read(path, 0, &s), MAV_OK);
    int w, h;
    mav_contact_sheet_size(v, 2, 1, &w, &h);
    assert_int_equal(s.w, w); assert_int_equal(s.h, h);
    // Independently: cells 12x7, 4 columns, gaps of 2, caption bands of 11 px.
    assert_int_equal(w, 2 + 4 * (12 + 2));
    assert_int_equal(h, 2 + 2 * (7 + 2 + 11));
    // Row 0 caption band holds black text; row 0 frame 1 is video 0's frame 1 at (16, 13).
    int black = 0;
    for (int y = 2; y < 13; y++)
        for (int x = 0; x < w; x++) black += s.rgb[((size_t)y * w + x) * 3] == 0 && s.rgb[((size_t)y * w + x) * 3 + 1] == 0;
    assert_true(black > 20);
    for (int y = 0; y < 7; y++)
        for (int x = 0; x < 9; x++)
            assert_memory_equal(s.rgb + ((size_t)(13 + y) * w + 16 + x) * 3, v[0].rgb + (((size_t)1 * 7 + y) * 9 + x) * 3, 3);
    mav_frames_free(&s);
    // Without captions.
    assert_int_equal(mav_contact_sheet(path, v, 2, NULL), MAV_OK);
    assert_int_equal(mav_media_read(path, 0, &s), MAV_OK);
    assert_int_equal(s.h, 2 + 2 * (7 + 2));
    mav_frames_free(&s);
    assert_int_equal(mav_contact_sheet(path, v, 0, NULL), MAV_ERR_ARG);
    mav_frames_free(&v[0]); mav_frames_free(&v[1]);
    rm_tree(dir);
}

// ---- CLI ----------------------------------------------------------------------------------

static void cli_media(void **state) {
    (void)state;
    char dir[256], path[512], args[1600], out2[600];
    make_tmpdir(dir, sizeof dir);
    mav_frames a;
    make_blocks(&a, 10, 6, 6, 12);
    snprintf(path, sizeof path, "%s/in.gif", dir);
    assert_int_equal(mav_media_write(path, &a, NULL), MAV_OK);
    mav_frames_free(&a);
    // GIF delays are whole centiseconds: 1/12 s is stored as 8 or 9 cs (mean 8.33).
    snprintf(args, sizeof args, "media info %s", path);
    char *out;
    assert_int_equal(tu_run_mav(args, &out), 0);
    json_error_t je;
    json_t *o = json_loads(out, 0, &je);
    if (!o) fail_msg("media info: not JSON: %s", out);
    assert_int_equal(json_integer_value(json_object_get(o, "width")), 10);
    assert_int_equal(json_integer_value(json_object_get(o, "height")), 6);
    assert_int_equal(json_integer_value(json_object_get(o, "frames")), 6);
    assert_true(fabs(json_real_value(json_object_get(o, "fps")) - 12) < 0.05);
    assert_true(fabs(json_real_value(json_object_get(o, "duration")) - 0.5) < 0.01);
    assert_string_equal(json_string_value(json_object_get(o, "format")), "gif");
    json_decref(o);
    free(out);
    // convert to MP4 with a new size and rate: 6 frames at 12 fps -> 3 frames at 6 fps.
    snprintf(out2, sizeof out2, "%s/out.mp4", dir);
    snprintf(args, sizeof args, "media convert %s %s --size 8x4 --fps 6", path, out2);
    tu_expect_mav(args, 0, NULL);
    mav_media_info in;
    assert_int_equal(mav_media_probe(out2, &in), MAV_OK);
    assert_int_equal(in.width, 8); assert_int_equal(in.height, 4); assert_int_equal(in.frames, 3);
    assert_true(fabs(in.fps - 6) < 1e-9);
    // Errors: usage -> 2, bad files -> 1 with the file named.
    tu_expect_mav("media", 2, "subcommand");
    tu_expect_mav("media frobnicate x", 2, "unknown subcommand");
    tu_expect_mav("media info", 2, "one FILE");
    tu_expect_mav("media info a b", 2, "one FILE");
    snprintf(args, sizeof args, "media convert %s %s --size 8by4", path, out2);
    tu_expect_mav(args, 2, "--size expects WxH");
    snprintf(args, sizeof args, "media convert %s %s --fps 0", path, out2);
    tu_expect_mav(args, 2, "--fps must be in");
    tu_expect_mav("media info /nonexistent/clip.mp4", 1, "/nonexistent/clip.mp4");
    snprintf(path, sizeof path, "%s/junk.mp4", dir);
    spit(path, "not a video at all", 18);
    snprintf(args, sizeof args, "media info %s", path);
    tu_expect_mav(args, 1, path);
    snprintf(args, sizeof args, "media convert %s %s/x.gif", path, dir);
    tu_expect_mav(args, 1, path);
    snprintf(args, sizeof args, "media convert %s %s/x.tiff", out2, dir);
    tu_expect_mav(args, 1, "unknown output format");
    rm_tree(dir);
}

MAV_TEST_GROUP(media, cmocka_unit_test(png_roundtrip_exact), cmocka_unit_test(jpeg_roundtrip),
               cmocka_unit_test(mp4_roundtrip), cmocka_unit_test(gif_roundtrip), cmocka_unit_test(webp_roundtrip),
               cmocka_unit_test(webp_fixtures), cmocka_unit_test(png_colour_types), cmocka_unit_test(truncated_files),
               cmocka_unit_test(garbage_and_huge), cmocka_unit_test(resize_crop_patterns),
               cmocka_unit_test(f32_conversion), cmocka_unit_test(contact_sheet), cmocka_unit_test(cli_media))
