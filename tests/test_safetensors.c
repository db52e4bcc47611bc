// safetensors: round trips in every storage dtype, atomic writes, and a validation test for
// each way a header can be wrong (every error must name the file and, where it applies, the
// tensor — tested by substring).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/dtype.h"
#include "io/safetensors.h"
#include "testutil.h"

static char g_dir[256];

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "/tmp/mav_st_test_%ld", (long)getpid());
    mkdir(g_dir, 0755);
    return 0;
}
static int teardown_dir(void **state) {
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : 0;
}

static const char *tmp_path(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", g_dir, name);
    return p;
}

static void roundtrip_all_dtypes(void **state) {
    (void)state;
    float x[24];
    for (int i = 0; i < 24; i++) x[i] = (float)(i - 12) * 0.37f + (i == 5 ? 1e-6f : 0.0f);
    int32_t ids[5] = {49406, 1, -2, 0, 49407};
    int64_t big = 77;
    int64_t s_x[3] = {2, 3, 4}, s_ids[1] = {5};
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_st_writer_meta(&w, "mav.kind", "unet");
    mav_st_writer_meta(&w, "mav.config", "{\"ch\": 32}");
    mav_st_writer_add_f32(&w, "x32", 3, s_x, x, MAV_F32);
    mav_st_writer_add_f32(&w, "x16", 3, s_x, x, MAV_F16);
    mav_st_writer_add_f32(&w, "xbf", 3, s_x, x, MAV_BF16);
    mav_st_writer_add_raw(&w, "ids", MAV_I32, 1, s_ids, ids);
    mav_st_writer_add_raw(&w, "scalar", MAV_I64, 0, NULL, &big);
    const char *path = tmp_path("rt.safetensors");
    assert_int_equal(mav_st_writer_save(&w, path), MAV_OK);
    mav_st_writer_free(&w);

    mav_st_file f;
    if (mav_st_open(&f, path) != MAV_OK) fail_msg("%s", mav_last_error());
    assert_int_equal(f.ntensors, 5);
    assert_string_equal(mav_st_meta(&f, "mav.kind"), "unet");
    assert_string_equal(mav_st_meta(&f, "mav.config"), "{\"ch\": 32}");
    assert_null(mav_st_meta(&f, "nope"));
    float y[24];
    assert_int_equal(mav_st_read_f32(&f, "x32", 3, s_x, y), MAV_OK);
    tu_check_equal("f32 round trip", y, x, 24);
    assert_int_equal(mav_st_read_f32(&f, "x16", 3, s_x, y), MAV_OK);
    for (int i = 0; i < 24; i++) assert_true(y[i] == mav_f16_to_f32(mav_f32_to_f16(x[i])));
    assert_int_equal(mav_st_read_f32(&f, "xbf", 3, s_x, y), MAV_OK);
    for (int i = 0; i < 24; i++) assert_true(y[i] == mav_bf16_to_f32(mav_f32_to_bf16(x[i])));
    const mav_st_tensor *t = mav_st_find(&f, "ids");
    assert_non_null(t);
    assert_int_equal(t->dtype, MAV_I32);
    assert_memory_equal(t->data, ids, sizeof ids);
    t = mav_st_find(&f, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->numel, 1);
    // shape mismatch and missing tensors are errors that name the tensor
    int64_t wrong[3] = {2, 4, 3};
    assert_int_equal(mav_st_read_f32(&f, "x32", 3, wrong, y), MAV_ERR_SHAPE);
    assert_non_null(strstr(mav_last_error(), "\"x32\""));
    assert_non_null(strstr(mav_last_error(), "[2, 3, 4]"));
    assert_int_equal(mav_st_read_f32(&f, "absent", 3, s_x, y), MAV_ERR_SHAPE);
    assert_non_null(strstr(mav_last_error(), "\"absent\""));
    mav_st_close(&f);
    // no temp files left behind
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", g_dir);
    assert_int_not_equal(system(cmd), 0);
}

// Write a raw file: 8-byte length, header text, then `ndata` bytes of 0x11.
static const char *write_raw(const char *name, const char *header, long declared_len, size_t ndata) {
    const char *path = tmp_path(name);
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    uint64_t n = declared_len >= 0 ? (uint64_t)declared_len : strlen(header);
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)(n >> (8 * i));
    fwrite(len, 1, 8, fp);
    fwrite(header, 1, strlen(header), fp);
    for (size_t i = 0; i < ndata; i++) fputc(0x11, fp);
    fclose(fp);
    return path;
}

static void expect_error(const char *name, const char *header, long declared, size_t ndata, mav_status want,
                         const char *needle) {
    const char *path = write_raw(name, header, declared, ndata);
    mav_st_file f;
    mav_status st = mav_st_open(&f, path);
    if (st == MAV_OK) { mav_st_close(&f); fail_msg("%s: accepted a bad file (%s)", name, header); }
    if (st != want) fail_msg("%s: status %s, want %s (%s)", name, mav_status_name(st), mav_status_name(want), mav_last_error());
    if (!strstr(mav_last_error(), name)) fail_msg("%s: error does not name the file: %s", name, mav_last_error());
    if (needle && !strstr(mav_last_error(), needle)) fail_msg("%s: error lacks \"%s\": %s", name, needle, mav_last_error());
}

static void rejects_malformed_headers(void **state) {
    (void)state;
    const char *ok = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    // sanity: the well-formed version opens
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, write_raw("good.st", ok, -1, 8)), MAV_OK);
    mav_st_close(&f);

    expect_error("short.st", "", 0, 0, MAV_ERR_FORMAT, NULL);  // 8 bytes, header length 0
    expect_error("hugelen.st", ok, 1L << 40, 8, MAV_ERR_FORMAT, "header length");
    expect_error("pastend.st", ok, 1000, 8, MAV_ERR_FORMAT, "header length");
    expect_error("notjson.st", "{\"a\":{\"dtype\":", -1, 0, MAV_ERR_FORMAT, "JSON");
    expect_error("array.st", "[1,2]", -1, 0, MAV_ERR_FORMAT, "'{'");
    expect_error("dtype.st", "{\"a\":{\"dtype\":\"F33\",\"shape\":[2],\"data_offsets\":[0,8]}}", -1, 8, MAV_ERR_FORMAT, "\"a\"");
    expect_error("size.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", -1, 8, MAV_ERR_FORMAT, "needs 12 bytes");
    expect_error("beyond.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", -1, 8, MAV_ERR_FORMAT, "past the end");
    expect_error("negshape.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", -1, 8, MAV_ERR_FORMAT, "shape");
    expect_error("reversed.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", -1, 8, MAV_ERR_FORMAT, "begin <= end");
    expect_error("overlap.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                 "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, MAV_ERR_FORMAT, "overlaps");
    expect_error("hole.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", -1, 12, MAV_ERR_FORMAT, "hole");
    expect_error("trailing.st", ok, -1, 12, MAV_ERR_FORMAT, "after the last tensor");
    expect_error("dupkey.st",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", -1, 8, MAV_ERR_FORMAT, "JSON");
    expect_error("sixdims.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,2],\"data_offsets\":[0,8]}}", -1, 8,
                 MAV_ERR_FORMAT, "dimensions");
    expect_error("meta.st", "{\"__metadata__\":{\"k\":3}}", -1, 0, MAV_ERR_FORMAT, "\"k\"");
    expect_error("overflow.st",
                 "{\"a\":{\"dtype\":\"F64\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}", -1, 8,
                 MAV_ERR_FORMAT, "\"a\"");
    expect_error("offstr.st", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[\"0\",8]}}", -1, 8, MAV_ERR_FORMAT, "data_offsets");
    // empty file, missing file and a directory
    FILE *fp = fopen(tmp_path("empty.st"), "wb");
    fclose(fp);
    assert_int_equal(mav_st_open(&f, tmp_path("empty.st")), MAV_ERR_FORMAT);
    assert_int_equal(mav_st_open(&f, tmp_path("missing.st")), MAV_ERR_IO);
    assert_non_null(strstr(mav_last_error(), "missing.st"));
    assert_int_equal(mav_st_open(&f, g_dir), MAV_ERR_IO);
}

static void failed_write_keeps_previous_file(void **state) {
    (void)state;
    float x[4] = {1, 2, 3, 4};
    int64_t s[1] = {4};
    mav_st_writer w;
    mav_st_writer_init(&w);
    mav_st_writer_add_f32(&w, "x", 1, s, x, MAV_F32);
    // a folder that does not exist: clear error, nothing created
    char bad[300];
    snprintf(bad, sizeof bad, "%s/no/such/dir/out.safetensors", g_dir);
    assert_int_equal(mav_st_writer_save(&w, bad), MAV_ERR_IO);
    assert_non_null(strstr(mav_last_error(), "out.safetensors"));
    // overwrite an existing file atomically; a failed rename (target is a non-empty folder)
    // leaves the folder as it was and removes the temp file
    const char *good = tmp_path("keep.safetensors");
    assert_int_equal(mav_st_writer_save(&w, good), MAV_OK);
    x[0] = 9;
    assert_int_equal(mav_st_writer_save(&w, good), MAV_OK);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, good), MAV_OK);
    float y[4];
    assert_int_equal(mav_st_read_f32(&f, "x", 1, s, y), MAV_OK);
    assert_true(y[0] == 9);
    mav_st_close(&f);
    char dirpath[300];
    snprintf(dirpath, sizeof dirpath, "%s/adir", g_dir);
    mkdir(dirpath, 0755);
    snprintf(bad, sizeof bad, "%s/adir/inner", g_dir);
    mkdir(bad, 0755);
    assert_int_equal(mav_st_writer_save(&w, dirpath), MAV_ERR_IO);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", g_dir);
    assert_int_not_equal(system(cmd), 0);
    mav_st_writer_free(&w);
}

MAV_TEST_GROUP(safetensors,
    cmocka_unit_test_setup_teardown(roundtrip_all_dtypes, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(rejects_malformed_headers, setup_dir, teardown_dir),
    cmocka_unit_test_setup_teardown(failed_write_keeps_previous_file, setup_dir, teardown_dir))
