// test_data.c — the data module: hexcodes, emojibase captions, the concept split, the frame
// cache, clip sampling. All checks are exact (no floating-point tolerances: these are
// integer/string/byte results, or fps values computed by one formula we restate).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/cache.h"
#include "data/sample.h"
#include "data/emoji.h"
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

MAV_TEST_GROUP(data, cmocka_unit_test(test_hexcode_norm), cmocka_unit_test(test_emojibase_lookup),
               cmocka_unit_test(test_captions), cmocka_unit_test(test_split), cmocka_unit_test(test_cache_roundtrip),
               cmocka_unit_test(test_clip_plan))
