// test_data.c — the data module: hexcodes, emojibase captions, the concept split, the frame
// cache, clip sampling. All checks are exact (no floating-point tolerances: these are
// integer/string/byte results, or fps values computed by one formula we restate).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/cache.h"
#include "core/threads.h"
#include "data/sample.h"
#include "data/emoji.h"
#include "data/fluent.h"
#include "data/loader.h"
#include "media/media.h"
#include "testutil.h"

// Fixture folder: tests/fixtures/data beside this file.
static const char *fixture(const char *name) {
    static char buf[4096];
    const char *f = __FILE__;
    const char *slash = strrchr(f, '/');
    int dir = slash ? (int)(slash - f) : 1;
    snprintf(buf, sizeof buf, "%.*s/fixtures/data/%s", dir, slash ? f : ".", name);
    return buf;
}

// A private scratch folder under /tmp, removed by the caller with rm_tree.
static void make_tmpdir(char *out, size_t cap) {
    snprintf(out, cap, "/tmp/mav_test_data_XXXXXX");
    assert_non_null(mkdtemp(out));
}
static void rm_tree(const char *dir) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void test_hexcode_norm(void **state) {
    (void)state;
    char out[MAV_EMOJI_HEX_MAX];
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1F44B-FE0F"), MAV_OK);
    assert_string_equal(out, "1f44b");
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "0023-fe0f-20E3"), MAV_OK);
    assert_string_equal(out, "0023-20e3");
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1f44b-1f3fd"), MAV_OK);
    assert_string_equal(out, "1f44b-1f3fd");  // skin tones are kept by normalisation ...
    assert_int_equal(mav_emoji_concept(out, sizeof out, "1F44B-1F3FD"), MAV_OK);
    assert_string_equal(out, "1f44b");        // ... and removed for the concept
    // two people, two tones: both tones go, the ZWJ sequence stays
    assert_int_equal(mav_emoji_concept(out, sizeof out, "1f9d1-1f3fb-200d-1f91d-200d-1f9d1-1f3fc"), MAV_OK);
    assert_string_equal(out, "1f9d1-200d-1f91d-200d-1f9d1");
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "23-fe0f-20e3"), MAV_OK);  // leading zeros restored
    assert_string_equal(out, "0023-20e3");
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "a9-fe0f"), MAV_OK);
    assert_string_equal(out, "00a9");
    // tag sequences: '_' separators in file names, cancel tag E007F only in emojibase
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1f3f4-e0067_e0062_e0065_e006e_e0067"), MAV_OK);
    assert_string_equal(out, "1f3f4-e0067-e0062-e0065-e006e-e0067");
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1F3F4-E0067-E0062-E0065-E006E-E0067-E007F"), MAV_OK);
    assert_string_equal(out, "1f3f4-e0067-e0062-e0065-e006e-e0067");
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1f44b_"), MAV_ERR_FORMAT);
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "123456789"), MAV_ERR_FORMAT);  // > 8 digits
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "FE0F"), MAV_ERR_FORMAT);  // nothing left
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1f44b-"), MAV_ERR_FORMAT);
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, "1f4g"), MAV_ERR_FORMAT);
    assert_int_equal(mav_emoji_norm_hex(out, sizeof out, ""), MAV_ERR_FORMAT);
    assert_int_equal(mav_emoji_norm_hex(out, 4, "1f600"), MAV_ERR_FORMAT);  // does not fit
    // FNV-1a 64 test vectors (Fowler/Noll/Vo reference): "" and "a"
    assert_true(mav_emoji_hash("") == 0xcbf29ce484222325ull);
    assert_true(mav_emoji_hash("a") == 0xaf63dc4c8601ec8cull);
}

static void test_emojibase_lookup(void **state) {
    (void)state;
    mav_emoji_db db;
    assert_int_equal(mav_emoji_db_load(&db, fixture("emojibase-mini.json")), MAV_OK);
    assert_int_equal(db.n, 7);  // 5 entries + 2 skins; the unlabeled and bad-hexcode ones skipped
    const mav_emoji_entry *e = mav_emoji_db_find(&db, "2764");  // file names drop FE0F ...
    assert_non_null(e);
    assert_string_equal(e->label, "red heart");
    assert_non_null(mav_emoji_db_find(&db, "2764-fe0f"));        // ... or keep it
    e = mav_emoji_db_find(&db, "0023-fe0f-20e3");
    assert_non_null(e);
    assert_string_equal(e->label, "keycap: #");
    e = mav_emoji_db_find(&db, "1f44b-1f3ff");
    assert_non_null(e);
    assert_string_equal(e->label, "waving hand: dark skin tone");
    assert_int_equal(e->ntags, 3);  // skins inherit the base emoji's tags
    assert_string_equal(e->tags[1], "wave");
    assert_null(mav_emoji_db_find(&db, "1f44b-1f3fd"));  // a tone emojibase does not list
    assert_null(mav_emoji_db_find(&db, "zz"));
    mav_emoji_db_free(&db);
    assert_int_equal(mav_emoji_db_load(&db, fixture("no-such-file.json")), MAV_ERR_FORMAT);
}

static void test_captions(void **state) {
    (void)state;
    char *tags[] = {"animal", "beach", "conch", "sea", "shell"};
    char out[256];
    assert_int_equal(mav_emoji_caption(out, sizeof out, "spiral shell", tags, 5, 0), 12);
    assert_string_equal(out, "spiral shell");
    mav_emoji_caption(out, sizeof out, "spiral shell", tags, 5, 1);
    assert_string_equal(out, "spiral shell emoji");
    mav_emoji_caption(out, sizeof out, "spiral shell", tags, 5, 2);
    assert_string_equal(out, "a 3d spiral shell, animal, beach");
    mav_emoji_caption(out, sizeof out, "spiral shell", tags, 5, 3);
    assert_string_equal(out, "spiral shell: animal, beach, conch, sea, shell");
    mav_emoji_caption(out, sizeof out, "spiral shell", tags, 0, 3);
    assert_string_equal(out, "spiral shell");
    mav_emoji_caption(out, sizeof out, "spiral shell", tags, 5, 7);  // modulo the template count
    assert_string_equal(out, "spiral shell: animal, beach, conch, sea, shell");
    // Too small for all tags: whole tags only, never a dangling separator; the label stays.
    assert_int_equal(mav_emoji_caption(out, 30, "spiral shell", tags, 5, 3), (int)strlen("spiral shell: animal, beach"));
    assert_string_equal(out, "spiral shell: animal, beach");
    mav_emoji_caption(out, 8, "spiral shell", tags, 5, 1);
    assert_string_equal(out, "spiral ");  // label longer than the buffer: truncated to cap-1
    for (int t = 0; t < MAV_EMOJI_N_TEMPLATES; t++) {  // every template keeps the raw label
        mav_emoji_caption(out, sizeof out, "keycap: #", tags, 2, t);
        assert_non_null(strstr(out, "keycap: #"));
    }
}

static void test_split(void **state) {
    (void)state;
    enum { N = 300 };
    static char keys[N][16];
    const char *k[N], *rev[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "1f%03x", i);
        k[i] = keys[i];
        rev[N - 1 - i] = keys[i];
    }
    uint8_t s1[N], s2[N], s3[N];
    mav_emoji_split(k, N, 100, 20, s1);
    mav_emoji_split(k, N, 100, 20, s2);
    mav_emoji_split(rev, N, 100, 20, s3);
    int count[MAV_SPLIT_COUNT] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(s1[i], s2[i]);          // same input, same split
        assert_int_equal(s1[i], s3[N - 1 - i]);  // independent of the order of the keys
        count[s1[i]]++;
    }
    assert_int_equal(count[MAV_SPLIT_TEST], 100);
    assert_int_equal(count[MAV_SPLIT_VAL], 20);
    assert_int_equal(count[MAV_SPLIT_TRAIN], 180);
    // The rank is by hash: every test key hashes below every val key, which hash below train keys.
    uint64_t max_test = 0, min_val = UINT64_MAX, max_val = 0, min_train = UINT64_MAX;
    for (int i = 0; i < N; i++) {
        uint64_t h = mav_emoji_hash(k[i]);
        if (s1[i] == MAV_SPLIT_TEST && h > max_test) max_test = h;
        if (s1[i] == MAV_SPLIT_VAL && h < min_val) min_val = h;
        if (s1[i] == MAV_SPLIT_VAL && h > max_val) max_val = h;
        if (s1[i] == MAV_SPLIT_TRAIN && h < min_train) min_train = h;
    }
    assert_true(max_test < min_val && max_val < min_train);
    // Adding concepts moves a concept only towards train (it can lose its test rank, never gain one
    // over a key with a smaller hash): the split of the first 300 keys inside 301 keys differs
    // in at most one test and one val slot.
    const char *k2[N + 1];
    memcpy(k2, k, sizeof k);
    k2[N] = "ffff0";
    uint8_t s4[N + 1];
    mav_emoji_split(k2, N + 1, 100, 20, s4);
    int moved = 0;
    for (int i = 0; i < N; i++) moved += s4[i] != s1[i];
    assert_true(moved <= 2);
    assert_int_equal(mav_split_from_name("test"), MAV_SPLIT_TEST);
    assert_int_equal(mav_split_from_name("validation"), MAV_SPLIT_VAL);
    assert_int_equal(mav_split_from_name("nope"), -1);
    assert_string_equal(mav_split_name(MAV_SPLIT_TRAIN), "train");
}

static void test_cache_roundtrip(void **state) {
    (void)state;
    char dir[256], path[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/c.mavc", dir);
    enum { W = 5, H = 3 };  // 45-byte frames: the index needs alignment padding
    const int nf[3] = {1, 7, 2};
    uint8_t *rgb[3];
    mav_cache_writer cw;
    assert_int_equal(mav_cache_create(&cw, path, W, H), MAV_OK);
    for (int i = 0; i < 3; i++) {
        rgb[i] = malloc((size_t)nf[i] * W * H * 3);
        for (int j = 0; j < nf[i] * W * H * 3; j++) rgb[i][j] = (uint8_t)(j * 7 + i * 31);
        char key[16];
        snprintf(key, sizeof key, "item%d", i);
        assert_int_equal(mav_cache_add(&cw, key, rgb[i], nf[i], 10.0 + i, i % 3), MAV_OK);
    }
    assert_int_equal(access(path, F_OK), -1);  // nothing at the final path before finish
    assert_int_equal(mav_cache_finish(&cw), MAV_OK);
    mav_cache c;
    assert_int_equal(mav_cache_open(&c, path), MAV_OK);
    assert_int_equal(c.w, W);
    assert_int_equal(c.h, H);
    assert_int_equal(c.n, 3);
    assert_int_equal((int)c.total_frames, 10);
    for (int i = 0; i < 3; i++) {
        char key[16];
        snprintf(key, sizeof key, "item%d", i);
        assert_string_equal(c.index[i].key, key);
        assert_int_equal(c.index[i].n_frames, nf[i]);
        assert_int_equal(c.index[i].split, i % 3);
        assert_true(c.index[i].fps == 10.0 + i);
        assert_memory_equal(mav_cache_frames(&c, i), rgb[i], (size_t)nf[i] * W * H * 3);
        free(rgb[i]);
    }
    mav_cache_close(&c);
    // Truncation and corruption are errors, not crashes.
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    assert_int_equal(truncate(path, size - 1), 0);
    assert_int_equal(mav_cache_open(&c, path), MAV_ERR_FORMAT);
    f = fopen(path, "wb");
    fputs("MAVFRM01 and then garbage that is not a header at all, long enough", f);
    fclose(f);
    assert_int_equal(mav_cache_open(&c, path), MAV_ERR_FORMAT);
    assert_int_equal(mav_cache_open(&c, "/nonexistent/c.mavc"), MAV_ERR_IO);
    // an aborted writer leaves nothing behind
    snprintf(path, sizeof path, "%s/d.mavc", dir);
    assert_int_equal(mav_cache_create(&cw, path, W, H), MAV_OK);
    mav_cache_abort(&cw);
    assert_int_equal(access(path, F_OK), -1);
    rm_tree(dir);
}

static void test_clip_plan(void **state) {
    (void)state;
    int idx[16];
    // 24 fps source of 60 frames, 8 frames: fps range [max(1, 24·7/59), min(30, 24)] = [2.847, 24].
    double lo = 24.0 * 7 / 59;
    double fps = mav_sample_clip(60, 24, 8, 1, 30, 0.0, 0.0, idx);
    assert_true(fabs(fps - lo) < 1e-12);  // u_fps = 0 -> slowest rate that fits
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[7], 59);  // spans the whole clip
    fps = mav_sample_clip(60, 24, 8, 1, 30, 0.5, 0.999, idx);
    assert_true(fabs(fps - (lo + 0.5 * (24 - lo))) < 1e-12);
    double step = 24 / fps;
    int span = (int)lround(7 * step);
    assert_int_equal(idx[7], 59);  // u_start -> 1: the clip ends at the last frame
    for (int k = 0; k < 8; k++) assert_int_equal(idx[k] - idx[0], (int)lround(k * step) > span ? span : (int)lround(k * step));
    // fps = source fps: consecutive frames
    fps = mav_sample_clip(60, 24, 8, 1, 30, 0.99999999, 0.5, idx);
    for (int k = 1; k < 8; k++) assert_int_equal(idx[k] - idx[k - 1], 1);
    // a 60 fps source is capped at 30: every other frame
    fps = mav_sample_clip(200, 60, 4, 1, 30, 0.99999999, 0.0, idx);
    assert_true(fabs(fps - 30) < 1e-6);
    assert_int_equal(idx[1] - idx[0], 2);
    assert_int_equal(idx[3] - idx[0], 6);
    // short fast clip: no rate <= 30 fits, the slowest that fits (60·3/4 = 45 fps) is used
    fps = mav_sample_clip(5, 60, 4, 1, 30, 0.3, 0.3, idx);
    assert_true(fabs(fps - 45) < 1e-12);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[3], 4);
    // slideshow slower than 1 fps: its own rate
    fps = mav_sample_clip(10, 0.5, 3, 1, 30, 0.7, 0.0, idx);
    assert_true(fps == 0.5);
    assert_int_equal(idx[2] - idx[0], 2);
    // exactly F frames: all of them
    fps = mav_sample_clip(16, 24, 16, 1, 30, 0.8, 0.8, idx);
    assert_true(fabs(fps - 24) < 1e-12);
    for (int k = 0; k < 16; k++) assert_int_equal(idx[k], k);
    // F = 1: any rate in [1, min(30, src)], any frame
    fps = mav_sample_clip(10, 24, 1, 1, 30, 1.0 / 23, 0.95, idx);
    assert_true(fabs(fps - 2) < 1e-12);
    assert_int_equal(idx[0], 9);
    // impossible
    assert_true(mav_sample_clip(3, 24, 4, 1, 30, 0.5, 0.5, idx) < 0);
    assert_true(mav_sample_clip(10, 0, 4, 1, 30, 0.5, 0.5, idx) < 0);
    // exhaustive invariants over a grid of sources and uniforms
    for (int n = 1; n <= 40; n += 3)
        for (int F = 1; F <= n && F <= 16; F += 2)
            for (double src = 0.7; src < 70; src *= 1.9)
                for (int a = 0; a < 5; a++)
                    for (int b = 0; b < 5; b++) {
                        fps = mav_sample_clip(n, src, F, 1, 30, a / 5.0, b / 5.0, idx);
                        assert_true(fps > 0 && fps <= src + 1e-9);
                        for (int k = 0; k < F; k++) {
                            assert_true(idx[k] >= 0 && idx[k] < n);
                            if (k) assert_true(idx[k] > idx[k - 1]);  // distinct, increasing
                        }
                    }
}


// ---------------------------------------------------------------- loaders (need src/media)

// Write a w×h×n solid-grey clip (frame k has value v0 + dv·k) to path at fps (lossless formats).
static void write_clip(const char *path, int w, int h, int n, int v0, int dv, double fps) {
    mav_frames f;
    assert_int_equal(mav_frames_alloc(&f, w, h, n, fps), MAV_OK);
    for (int k = 0; k < n; k++) memset(f.rgb + (size_t)k * w * h * 3, v0 + dv * k, (size_t)w * h * 3);
    mav_media_write_opts o = {fps, 100};
    assert_int_equal(mav_media_write(path, &f, &o), MAV_OK);
    mav_frames_free(&f);
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

// Every pixel of sample j's frame k equals v/127.5 - 1 (solid frames survive resize exactly:
// averaging or interpolating a constant gives the constant).
static int frame_value(const mav_batch *b, int j, int k) {
    size_t plane = (size_t)b->res * b->res;
    const float *x = b->x + ((size_t)j * b->F + k) * 3 * plane;
    int v = (int)lround((x[0] + 1) * 127.5);
    for (size_t i = 0; i < 3 * plane; i++)
        if (fabsf(x[i] - x[0]) > 0) fail_msg("sample %d frame %d is not solid", j, k);
    return v;
}

static void test_manifest_loader(void **state) {
    (void)state;
    char dir[256], p[512];
    make_tmpdir(dir, sizeof dir);
    const int vals[3] = {30, 120, 250}, ws[3] = {7, 9, 4}, hs[3] = {5, 9, 6};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/img%d.png", dir, i);
        write_clip(p, ws[i], hs[i], 1, vals[i], 0, 0);
    }
    snprintf(p, sizeof p, "%s/broken.png", dir);
    write_text(p, "\x89PNG\r\n\x1a\n not really a png");
    snprintf(p, sizeof p, "%s/manifest.jsonl", dir);
    write_text(p, "{\"image\": \"img0.png\", \"caption\": \"dark\"}\n"
                  "\n"
                  "{\"image\": \"img1.png\", \"caption\": \"mid\"}\n"
                  "{not json}\n"
                  "{\"image\": \"broken.png\", \"caption\": \"broken\"}\n"
                  "{\"image\": \"img2.png\"}\n"
                  "{\"image\": \"img2.png\", \"caption\": \"light\"}\n");
    mav_dataset *ds;
    assert_int_equal(mav_dataset_open(&ds, dir, MAV_DS_IMAGES, NULL), MAV_OK);  // folder with manifest.jsonl
    assert_int_equal(mav_dataset_size(ds), 4);
    assert_int_equal(mav_dataset_skipped_count(ds), 2);  // the bad JSON line and the caption-less one
    assert_string_equal(mav_dataset_caption(ds, 3), "light");
    mav_batch b;
    assert_int_equal(mav_batch_alloc(&b, 5, 1, 3), MAV_OK);
    mav_rng rng = mav_rng_make(7);
    for (int round = 0; round < 20; round++) {
        assert_int_equal(mav_image_batch(ds, 5, 3, &rng, &b), MAV_OK);
        for (int j = 0; j < 5; j++) {
            int it = b.item[j];
            assert_true(it != 2);  // the broken file is never in a batch
            int want = it == 0 ? 30 : it == 1 ? 120 : 250;
            assert_int_equal(frame_value(&b, j, 0), want);
            assert_string_equal(b.caption[j], mav_dataset_caption(ds, it));
            assert_true(b.fps[j] == 0);
        }
    }
    assert_int_equal(mav_dataset_bad_count(ds), 1);  // 100 draws over 4 items: drawn surely, listed once
    assert_non_null(strstr(mav_dataset_bad(ds, 0), "broken.png"));
    mav_batch_free(&b);
    mav_dataset_close(ds);
    snprintf(p, sizeof p, "%s/manifest.jsonl", dir);
    assert_int_equal(mav_dataset_open(&ds, p, MAV_DS_VIDEOS, NULL), MAV_ERR_ARG);  // manifests hold images
    assert_int_equal(mav_dataset_open(&ds, "/nonexistent/x", MAV_DS_IMAGES, NULL), MAV_ERR_IO);
    rm_tree(dir);
}

static void test_tar_loader(void **state) {
    (void)state;
    char dir[256], p[512], cmd[2048];
    make_tmpdir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/src", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    const char *keys[3] = {"a", "b", "sub/c"};
    snprintf(p, sizeof p, "%s/src/sub", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/src/%s.png", dir, keys[i]);
        write_clip(p, 6 + i, 5, 1, 40 + 50 * i, 0, 0);
        snprintf(p, sizeof p, "%s/src/%s.txt", dir, keys[i]);
        char cap[64];
        snprintf(cap, sizeof cap, "caption of %s\n", keys[i]);
        write_text(p, cap);
    }
    snprintf(p, sizeof p, "%s/src/lonely.jpg", dir);  // no caption: skipped
    write_text(p, "xx");
    snprintf(p, sizeof p, "%s/src/bad.png", dir);  // caption but corrupt image: bad at read time
    write_text(p, "garbage");
    snprintf(p, sizeof p, "%s/src/bad.txt", dir);
    write_text(p, "a broken image");
    snprintf(cmd, sizeof cmd, "cd '%s/src' && tar -cf ../shards/s0.tar a.png a.txt bad.png bad.txt lonely.jpg && "
                              "tar -czf ../shards/s1.tar.gz b.txt b.png sub/c.png sub/c.txt", dir);
    snprintf(p, sizeof p, "%s/shards", dir);
    assert_int_equal(mkdir(p, 0777), 0);
    assert_int_equal(system(cmd), 0);
    mav_dataset *ds;
    assert_int_equal(mav_dataset_open(&ds, p, MAV_DS_IMAGES, NULL), MAV_OK);
    assert_int_equal(mav_dataset_size(ds), 4);
    assert_int_equal(mav_dataset_skipped_count(ds), 1);
    int seen = 0;
    for (int i = 0; i < 4; i++) {
        const char *name = mav_dataset_item_name(ds, i);
        mav_frames f;
        mav_status st = mav_dataset_read(ds, i, 0, &f);
        if (strstr(name, "bad.png")) {
            assert_int_not_equal(st, MAV_OK);
            assert_string_equal(mav_dataset_caption(ds, i), "a broken image");
            continue;
        }
        assert_int_equal(st, MAV_OK);
        int k = strstr(name, "a.png") ? 0 : strstr(name, "b.png") ? 1 : 2;
        seen |= 1 << k;
        char cap[64];
        snprintf(cap, sizeof cap, "caption of %s", keys[k]);
        assert_string_equal(mav_dataset_caption(ds, i), cap);  // trailing newline trimmed
        assert_int_equal(f.w, 6 + k);
        assert_int_equal(f.n, 1);
        assert_int_equal(f.rgb[0], 40 + 50 * k);
        mav_frames_free(&f);
    }
    assert_int_equal(seen, 7);  // offsets into the plain shard and in-memory members of the gzip one
    assert_int_equal(mav_dataset_bad_count(ds), 1);
    mav_dataset_close(ds);
    rm_tree(dir);
}

static void check_same_batch(const mav_batch *a, const mav_batch *b) {
    assert_memory_equal(a->item, b->item, (size_t)a->B * sizeof *a->item);
    assert_memory_equal(a->fps, b->fps, (size_t)a->B * sizeof *a->fps);
    assert_memory_equal(a->x, b->x, (size_t)a->B * a->F * 3 * a->res * a->res * sizeof *a->x);
}

static void test_clip_batches(void **state) {
    (void)state;
    char dir[256], p[512];
    make_tmpdir(dir, sizeof dir);
    snprintf(p, sizeof p, "%s/v0.webp", dir);
    write_clip(p, 10, 8, 24, 0, 10, 10.0);  // 24 frames at 10 fps, frame k = 10k
    snprintf(p, sizeof p, "%s/v1.gif", dir);
    write_clip(p, 8, 8, 12, 5, 20, 20.0);   // 12 frames at 20 fps (GIF: 5 cs per frame), frame k = 5 + 20k
    snprintf(p, sizeof p, "%s/corrupt.mp4", dir);
    write_text(p, "this is not an mp4 file at all");
    snprintf(p, sizeof p, "%s/notes.txt", dir);  // not a video: ignored
    write_text(p, "x");
    mav_dataset *ds;
    assert_int_equal(mav_dataset_open(&ds, dir, MAV_DS_VIDEOS, NULL), MAV_OK);
    assert_int_equal(mav_dataset_size(ds), 3);
    assert_null(mav_dataset_caption(ds, 0));
    enum { B = 6, F = 4, R = 4, NB = 3 };
    mav_batch a[NB], b;
    mav_rng rng = mav_rng_make(42);
    for (int k = 0; k < NB; k++) {
        assert_int_equal(mav_batch_alloc(&a[k], B, F, R), MAV_OK);
        assert_int_equal(mav_clip_batch(ds, B, F, R, &rng, &a[k]), MAV_OK);
        for (int j = 0; j < B; j++) {
            const char *name = mav_dataset_item_name(ds, a[k].item[j]);
            assert_null(strstr(name, "corrupt"));
            int v1 = strstr(name, "v1.gif") != NULL;
            double src = v1 ? 20 : 10, fps = a[k].fps[j];
            int n = v1 ? 12 : 24, v0 = v1 ? 5 : 0, dv = v1 ? 20 : 10;
            assert_true(fps >= 1 - 1e-6 && fps <= src + 1e-4);
            assert_true(fps >= src * (F - 1) / (n - 1) - 1e-4);  // the clip fits
            int first = (frame_value(&a[k], j, 0) - v0) / dv;
            for (int f = 0; f < F; f++) {  // frame f is source frame first + round(f·src/fps)
                int want = v0 + dv * (first + (int)lround(f * src / (double)fps));
                int got = frame_value(&a[k], j, f);
                // exact: lossless WebP / GIF keep the grey levels; b.fps is the f32 of the fps used, and
                // k·src/fps lands on no .5 rounding boundary for these draws
                if (got != want)
                    fail_msg("batch %d sample %d frame %d: value %d, want %d (fps %g)", k, j, f, got, want, fps);
            }
        }
    }
    assert_int_equal(mav_dataset_bad_count(ds), 1);
    // same seed, other thread count: identical batches
    assert_int_equal(mav_batch_alloc(&b, B, F, R), MAV_OK);
    int threads = mav_threads_get();
    mav_threads_set(threads == 1 ? 2 : 1);
    rng = mav_rng_make(42);
    for (int k = 0; k < NB; k++) {
        assert_int_equal(mav_clip_batch(ds, B, F, R, &rng, &b), MAV_OK);
        check_same_batch(&a[k], &b);
    }
    mav_threads_set(threads);
    // prefetch: the same sequence
    mav_prefetch *pf;
    assert_int_equal(mav_prefetch_start(&pf, ds, MAV_DS_VIDEOS, B, F, R, mav_rng_make(42)), MAV_OK);
    for (int k = 0; k < NB; k++) {
        assert_int_equal(mav_prefetch_next(pf, &b), MAV_OK);
        check_same_batch(&a[k], &b);
    }
    mav_rng after = mav_prefetch_rng(pf);
    assert_true(after.seed == rng.seed && after.offset == rng.offset);
    mav_prefetch_stop(pf);
    // another seed gives other batches
    rng = mav_rng_make(43);
    assert_int_equal(mav_clip_batch(ds, B, F, R, &rng, &b), MAV_OK);
    assert_true(memcmp(a[0].x, b.x, (size_t)B * F * 3 * R * R * sizeof(float)) != 0);
    // clips longer than every source: an error, not a hang
    mav_batch big;
    assert_int_equal(mav_batch_alloc(&big, 1, 30, R), MAV_OK);
    assert_int_equal(mav_clip_batch(ds, 1, 30, R, &rng, &big), MAV_ERR_FORMAT);
    mav_batch_free(&big);
    mav_batch_free(&b);
    for (int k = 0; k < NB; k++) mav_batch_free(&a[k]);
    mav_dataset_close(ds);
    rm_tree(dir);
}

// A raw tree like scripts/get-data's, with generated files: build, then load the caches.
static void test_fluent_build_and_load(void **state) {
    (void)state;
    char dir[256], p[1024], cmd[8192];
    make_tmpdir(dir, sizeof dir);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && mkdir -p raw/emojibase-data/package/en raw/fluent-emoji-3d/package/assets "
             "raw/fluent-emoji-anim-1/package/assets raw/fluent-emoji-anim-2/package/assets "
             "raw/fluent-emoji-anim-3/package/assets raw/fluent-emoji-anim-4/package/assets && "
             "cp '%s' raw/emojibase-data/package/en/data.json", dir, fixture("emojibase-mini.json"));
    assert_int_equal(system(cmd), 0);
    const char *stills[] = {"1f600", "1f44b", "1f44b-1f3fb", "1f44b-1f3ff", "1f41a", "2764", "e000"};
    for (int i = 0; i < 7; i++) {
        snprintf(p, sizeof p, "%s/raw/fluent-emoji-3d/package/assets/%s.webp", dir, stills[i]);
        write_clip(p, 12, 12, 1, 20 * i, 0, 0);
    }
    snprintf(p, sizeof p, "%s/raw/fluent-emoji-3d/package/assets/002764.webp", dir);  // "2764" spelled again
    write_clip(p, 12, 12, 1, 99, 0, 0);
    snprintf(p, sizeof p, "%s/raw/fluent-emoji-3d/package/assets/0023-fe0f-20e3.webp", dir);
    write_text(p, "RIFF\x10\0\0\0WEBPVP8 garbage");  // labeled, but corrupt
    snprintf(p, sizeof p, "%s/raw/fluent-emoji-anim-1/package/assets/1f44b-1f3fb.webp", dir);
    write_clip(p, 12, 12, 6, 0, 30, 12.0);
    snprintf(p, sizeof p, "%s/raw/fluent-emoji-anim-3/package/assets/1f600.webp", dir);
    write_clip(p, 12, 12, 9, 0, 20, 24.0);
    snprintf(p, sizeof p, "%s/raw/fluent-emoji-anim-2/package/assets/1f41a.webp", dir);
    write_clip(p, 12, 12, 1, 0, 0, 0);  // a still in an anim package: not a clip
    char raw[512], out[512];
    snprintf(raw, sizeof raw, "%s/raw", dir);
    snprintf(out, sizeof out, "%s/out", dir);
    const int sizes[2] = {8, 5};
    mav_fluent_opts o = {raw, out, sizes, 2, 0, 1, 1, 0};
    char *summary = NULL;
    assert_int_equal(mav_fluent_build(&o, NULL, &summary), MAV_OK);
    assert_non_null(summary);
    assert_non_null(strstr(summary, "\"images\": 6"));  // 8 stills - e000 (unlabeled) - the corrupt keycap
    assert_non_null(strstr(summary, "\"images_unlabeled\": 1"));
    assert_non_null(strstr(summary, "\"clips\": 2"));
    assert_non_null(strstr(summary, "\"clip_frames\": 15"));
    assert_non_null(strstr(summary, "\"bad_count\": 1"));
    assert_non_null(strstr(summary, "0023-fe0f-20e3.webp"));
    assert_non_null(strstr(summary, "\"duplicates\": [\n    \"")); // one duplicate: the later spelling
    assert_non_null(strstr(summary, "assets/2764.webp\""));
    free(summary);
    mav_cache c5, c8;
    snprintf(p, sizeof p, "%s/images-5.mavc", out);
    assert_int_equal(mav_cache_open(&c5, p), MAV_OK);
    snprintf(p, sizeof p, "%s/images-8.mavc", out);
    assert_int_equal(mav_cache_open(&c8, p), MAV_OK);
    assert_int_equal(c5.n, 6);
    assert_int_equal(c8.w, 8);
    int wave_split = -1;
    for (int i = 0; i < c8.n; i++) {
        assert_string_equal(c5.index[i].key, c8.index[i].key);
        if (strncmp(c8.index[i].key, "1f44b", 5) == 0) {  // skin tones share their concept's split
            if (wave_split < 0) wave_split = (int)c8.index[i].split;
            assert_int_equal((int)c8.index[i].split, wave_split);
        }
        if (strcmp(c8.index[i].key, "1f600") == 0) assert_int_equal(mav_cache_frames(&c8, i)[0], 0);
    }
    mav_cache_close(&c5);
    mav_cache_close(&c8);
    // concepts: 1f600, 1f44b, 1f41a, 2764 (e000 is unlabeled but still a concept) -> 1 test, 1 val
    snprintf(p, sizeof p, "%s/fluent-emoji.json", out);
    FILE *f = fopen(p, "r");
    assert_non_null(f);
    fclose(f);
    mav_dataset_opts all = {-1, 8, 0};
    mav_dataset *ds;
    assert_int_equal(mav_dataset_open(&ds, out, MAV_DS_IMAGES, &all), MAV_OK);
    assert_int_equal(mav_dataset_size(ds), 6);
    for (int i = 0; i < 6; i++) assert_non_null(mav_dataset_caption(ds, i));
    mav_batch b;
    assert_int_equal(mav_batch_alloc(&b, 4, 1, 8), MAV_OK);
    mav_rng rng = mav_rng_make(1);
    assert_int_equal(mav_image_batch(ds, 4, 8, &rng, &b), MAV_OK);
    for (int j = 0; j < 4; j++) {  // the caption is one of the templates: it contains the label
        const char *key = mav_dataset_item_name(ds, b.item[j]);
        if (strcmp(key, "1f41a") == 0) assert_non_null(strstr(b.caption[j], "spiral shell"));
        if (strcmp(key, "2764") == 0) assert_non_null(strstr(b.caption[j], "red heart"));
    }
    mav_batch_free(&b);
    mav_dataset_close(ds);
    // videos: both clips, F = 6 fits only the 9-frame one... and the 6-frame one exactly
    assert_int_equal(mav_dataset_open(&ds, out, MAV_DS_VIDEOS, &all), MAV_OK);
    assert_int_equal(mav_dataset_size(ds), 2);
    assert_null(mav_dataset_caption(ds, 0));
    assert_int_equal(mav_batch_alloc(&b, 3, 6, 8), MAV_OK);
    assert_int_equal(mav_clip_batch(ds, 3, 6, 8, &rng, &b), MAV_OK);
    for (int j = 0; j < 3; j++) assert_true(b.fps[j] > 0);
    mav_batch_free(&b);
    mav_dataset_close(ds);
    // the default split (train) never includes test concepts
    mav_dataset_opts tr = {MAV_SPLIT_TRAIN, 0, 0};
    if (mav_dataset_open(&ds, out, MAV_DS_IMAGES, &tr) == MAV_OK) {
        snprintf(p, sizeof p, "%s/split.json", out);
        FILE *sf = fopen(p, "r");
        char sj[4096] = {0};
        assert_true(fread(sj, 1, sizeof sj - 1, sf) > 0);
        fclose(sf);
        for (int i = 0; i < mav_dataset_size(ds); i++) {
            char concept[MAV_EMOJI_HEX_MAX], quoted[MAV_EMOJI_HEX_MAX + 2];
            assert_int_equal(mav_emoji_concept(concept, sizeof concept, mav_dataset_item_name(ds, i)), MAV_OK);
            snprintf(quoted, sizeof quoted, "\"%s\"", concept);
            assert_null(strstr(sj, quoted));  // neither test nor val lists it
        }
        mav_dataset_close(ds);
    }
    rm_tree(dir);
}

MAV_TEST_GROUP(data, cmocka_unit_test(test_hexcode_norm), cmocka_unit_test(test_emojibase_lookup),
               cmocka_unit_test(test_captions), cmocka_unit_test(test_split), cmocka_unit_test(test_cache_roundtrip),
               cmocka_unit_test(test_clip_plan), cmocka_unit_test(test_manifest_loader),
               cmocka_unit_test(test_tar_loader), cmocka_unit_test(test_clip_batches),
               cmocka_unit_test(test_fluent_build_and_load))
