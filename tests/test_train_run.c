// test_train_run.c — the training-run framework through `mav train clip|prior` (group
// train_run): learning on a fixed held-out batch, checkpoint contents, bit-identical resume
// (6 steps straight = 3 steps + --resume 3), leftover checkpoint temp files ignored and
// cleaned, the prior stage from the CLIP checkpoint, usage errors and a missing data folder.
// The dataset is generated here: 16 small PNGs (8 colours × 2 patterns, odd sizes) with
// captions, and BPE merges learned from those captions.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "media/media.h"
#include "testutil.h"
#include "text/bpe.h"

#if defined(__SANITIZE_ADDRESS__)
#define LEARN_STEPS 6  // sanitizer builds: the same code paths, fewer steps
#else
#define LEARN_STEPS 16
#endif

static const char *const k_colours[8] = {"red", "green", "blue", "yellow", "purple", "orange", "black", "white"};
static const unsigned char k_rgb[8][3] = {{220, 30, 30}, {30, 200, 40}, {30, 40, 220},  {240, 230, 20},
                                          {140, 30, 160}, {250, 140, 10}, {10, 10, 10}, {245, 245, 245}};

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = 0;
    fclose(f);
    if (len) *len = (size_t)n;
    return b;
}

static void expect_same_file(const char *a, const char *b) {
    size_t na, nb;
    char *x = read_all(a, &na), *y = read_all(b, &nb);
    if (na != nb || memcmp(x, y, na) != 0) fail_msg("%s and %s differ (%zu vs %zu bytes)", a, b, na, nb);
    free(x);
    free(y);
}

// A scratch folder with the dataset: DIR/manifest.jsonl, 16 PNGs, DIR/merges.txt.
static void make_dataset(char *dir, size_t cap) {
    snprintf(dir, cap, "/tmp/mav_test_train_XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[512], line[256];
    size_t mcap = 4096, caps_len = 0;
    char *manifest = calloc(mcap, 1), *caps = calloc(mcap, 1);
    assert_non_null(manifest);
    assert_non_null(caps);
    for (int c = 0; c < 8; c++)
        for (int s = 0; s < 2; s++) {
            mav_frames f;
            const int w = 23, h = 19;  // odd, and not the CLIP resolution (resize + crop happens)
            assert_int_equal(mav_frames_alloc(&f, w, h, 1, 0), MAV_OK);
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w; x++) {
                    int on = s == 0 ? (x > 5 && x < 18 && y > 4 && y < 15) : (y % 4 < 2);
                    for (int k = 0; k < 3; k++) f.rgb[((size_t)y * w + x) * 3 + k] = on ? k_rgb[c][k] : 128;
                }
            snprintf(path, sizeof path, "%s/%s_%d.png", dir, k_colours[c], s);
            assert_int_equal(mav_media_write(path, &f, NULL), MAV_OK);
            mav_frames_free(&f);
            const char *shape = s ? "stripes" : "square";
            snprintf(line, sizeof line, "{\"image\": \"%s_%d.png\", \"caption\": \"a %s %s\"}\n", k_colours[c], s,
                     k_colours[c], shape);
            strcat(manifest, line);
            caps_len += (size_t)snprintf(caps + caps_len, mcap - caps_len, "a %s %s\n", k_colours[c], shape);
        }
    snprintf(path, sizeof path, "%s/manifest.jsonl", dir);
    write_text(path, manifest);
    char *merges;
    size_t mlen;
    int learned;
    assert_int_equal(mav_bpe_train(caps, caps_len, 40, &merges, &mlen, &learned, NULL), MAV_OK);
    assert_true(learned > 10);
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    write_text(path, merges);
    free(merges);
    free(manifest);
    free(caps);
}

static void rm_tree(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static void run_ok(const char *fmt, const char *dir, const char *extra) {
    char args[2048];
    snprintf(args, sizeof args, fmt, dir, dir, dir, dir, dir);
    strncat(args, extra ? extra : "", sizeof args - strlen(args) - 1);
    tu_expect_mav(args, 0, NULL);
}

// Column `col` (0-based) of every data row of a loss.csv: NAN where empty. Returns rows.
static int csv_column(const char *path, int col, double *out, int cap) {
    char *text = read_all(path, NULL);
    int n = 0;
    char *save = NULL, *line = strtok_r(text, "\n", &save);  // header
    while ((line = strtok_r(NULL, "\n", &save)) != NULL && n < cap) {
        const char *p = line;
        for (int k = 0; k < col && p; k++) {
            p = strchr(p, ',');
            if (p) p++;
        }
        out[n++] = p && *p && *p != ',' ? strtod(p, NULL) : NAN;
    }
    free(text);
    return n;
}

static void test_clip_learns(void **state) {
    (void)state;
    char dir[256], path[600];
    make_dataset(dir, sizeof dir);
    // validation on all 16 items every 4 steps: a fixed batch (the held-out list is fixed and
    // the batch of 16 holds it whole), so its loss is comparable across steps
    char extra[128];
    snprintf(extra, sizeof extra, " --steps %d", LEARN_STEPS);
    run_ok("train clip --data %s --val %s --merges %s/merges.txt --out %s/run --batch 16 --lr 2e-3 --warmup 2 "
           "--val-every 4 --save-every 4 --threads 2 --quiet",
           dir, extra);
    snprintf(path, sizeof path, "%s/run/loss.csv", dir);
    double loss[64], val[64], top1[64];
    int n = csv_column(path, 1, loss, 64);
    assert_int_equal(n, LEARN_STEPS);
    assert_int_equal(csv_column(path, 4, val, 64), LEARN_STEPS);
    csv_column(path, 5, top1, 64);
    for (int i = 0; i < n; i++)
        if (!isfinite(loss[i])) fail_msg("step %d: loss %g", i + 1, loss[i]);
    // val at steps 4, 8, ... and at the last step of the schedule: empty elsewhere
    for (int i = 0; i < n; i++)
        if (((i + 1) % 4 == 0 || i + 1 == n) != (isfinite(val[i]) != 0))
            fail_msg("step %d: val_loss %g present wrongly", i + 1, val[i]);
    double first = val[3], last = val[n - 1];
    printf("  clip: held-out loss %.4f (step 4) -> %.4f (step %d), i2t top-1 %.3f -> %.3f\n", first, last, n, top1[3],
           top1[n - 1]);
    // falling: no tolerance needed, the contrastive loss of 16 separable pairs drops by ~2x here
    if (!(last < first)) fail_msg("held-out loss did not fall: %g -> %g", first, last);
    if (!(top1[n - 1] >= 0 && top1[n - 1] <= 1)) fail_msg("top-1 %g outside [0, 1]", top1[n - 1]);
    // the checkpoint holds weights, EMA, moments, step, rngs, config and the merges
    snprintf(path, sizeof path, "%s/run/checkpoint.safetensors", dir);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_string_equal(mav_st_meta(&f, "mav.kind"), "train_state");
    assert_string_equal(mav_st_meta(&f, "mav.stage"), "clip");
    assert_int_equal(atoi(mav_st_meta(&f, "mav.step")), LEARN_STEPS);
    assert_non_null(mav_st_meta(&f, "mav.rng.data"));
    assert_non_null(mav_st_meta(&f, "mav.rng.noise"));
    assert_non_null(strstr(mav_st_meta(&f, "mav.config"), "embed_dim"));
    assert_non_null(mav_st_meta(&f, "mav.bpe"));
    assert_non_null(mav_st_find(&f, "logit_scale"));
    assert_non_null(mav_st_find(&f, "ema.logit_scale"));
    assert_non_null(mav_st_find(&f, "adam_m.text_projection"));
    assert_non_null(mav_st_find(&f, "adam_v.visual.proj"));
    // logit_scale stays within CLIP's clamp [0, ln 100]
    float ls;
    mav_st_to_f32(mav_st_find(&f, "logit_scale"), &ls);
    if (!(ls >= 0 && ls <= logf(100.0f))) fail_msg("logit_scale %g outside [0, ln 100]", ls);
    mav_st_close(&f);
    // the model file is a self-contained clip checkpoint
    snprintf(path, sizeof path, "%s/run/model.safetensors", dir);
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_string_equal(mav_st_meta(&f, "mav.kind"), "clip");
    assert_non_null(mav_st_meta(&f, "mav.bpe"));
    mav_st_close(&f);
    snprintf(path, sizeof path, "%s/run/loss.svg", dir);
    char *svg = read_all(path, NULL);
    assert_non_null(strstr(svg, "<polyline"));
    free(svg);
    rm_tree(dir);
}

static void test_resume_exact(void **state) {
    (void)state;
    char dir[256], a[600], b[600];
    make_dataset(dir, sizeof dir);
    const char *common = "train clip --data %s --merges %s/merges.txt --steps 6 --batch 5 --warmup 2 --save-every 2 "
                         "--threads 2 --quiet --out %s/";
    run_ok(common, dir, "straight");
    run_ok(common, dir, "split --until 3");
    // what a crash could leave: a half-written checkpoint temp file, and loss.csv rows past the
    // last checkpoint; neither may change the resumed run
    snprintf(a, sizeof a, "%s/split/checkpoint.safetensors.tmp.999999", dir);
    write_text(a, "half a checkpoint");
    snprintf(a, sizeof a, "%s/split/loss.csv", dir);
    FILE *f = fopen(a, "ab");
    assert_non_null(f);
    fputs("4,123,0.1,1,,\n", f);
    fclose(f);
    snprintf(a, sizeof a, "train clip --data %s --out %s/split --resume --threads 2 --quiet", dir, dir);
    tu_expect_mav(a, 0, NULL);
    snprintf(a, sizeof a, "%s/split/checkpoint.safetensors.tmp.999999", dir);
    if (access(a, F_OK) == 0) fail_msg("the leftover temp file %s was not cleaned", a);
    const char *files[] = {"loss.csv", "model.safetensors", "model-ema.safetensors", "checkpoint.safetensors"};
    for (int i = 0; i < 4; i++) {  // bit-identical: losses, weights, EMA, moments, rng states
        snprintf(a, sizeof a, "%s/straight/%s", dir, files[i]);
        snprintf(b, sizeof b, "%s/split/%s", dir, files[i]);
        expect_same_file(a, b);
    }
    double loss[16];
    snprintf(a, sizeof a, "%s/split/loss.csv", dir);
    assert_int_equal(csv_column(a, 1, loss, 16), 6);
    // resuming a finished run with a longer schedule is allowed; a checkpoint of another stage is not
    snprintf(a, sizeof a, "train prior --data %s --out %s/split --resume --threads 2 --quiet", dir, dir);
    tu_expect_mav(a, 1, "stage \"clip\"");
    rm_tree(dir);
}

static void test_prior_stage(void **state) {
    (void)state;
    char dir[256], a[2048], path[600];
    make_dataset(dir, sizeof dir);
    run_ok("train clip --data %s --merges %s/merges.txt --out %s/clip --steps 3 --batch 4 --threads 2 --quiet", dir, NULL);
    snprintf(a, sizeof a,
             "train prior --data %s --val %s --clip %s/clip/model.safetensors --out %s/prior --steps 4 --batch 3 "
             "--val-every 2 --val-items 5 --sample-steps 4 --threads 2",
             dir, dir, dir, dir);
    char *out;
    int rc = tu_run_mav(a, &out);
    if (rc != 0) fail_msg("mav %s: exit %d\n%s", a, rc, out);
    if (!strstr(out, "cos_prior") || !strstr(out, "cos_text_baseline")) fail_msg("no cosine report:\n%s", out);
    free(out);
    snprintf(path, sizeof path, "%s/prior/loss.csv", dir);
    double loss[8], val[8], cs[8];
    assert_int_equal(csv_column(path, 1, loss, 8), 4);
    csv_column(path, 4, val, 8);
    csv_column(path, 5, cs, 8);
    for (int i = 0; i < 4; i++)
        if (!isfinite(loss[i])) fail_msg("prior step %d: loss %g", i + 1, loss[i]);
    if (!isfinite(val[1]) || !isfinite(val[3])) fail_msg("prior validation missing at steps 2 and 4");
    // a mean of cosines computed in double from f32 vectors: within [-1, 1] up to ~1e-7 rounding, 1e-4 is slack
    if (!(cs[3] >= -1.0001 && cs[3] <= 1.0001)) fail_msg("cosine %g outside [-1, 1]", cs[3]);
    snprintf(path, sizeof path, "%s/prior/model.safetensors", dir);
    mav_st_file f;
    assert_int_equal(mav_st_open(&f, path), MAV_OK);
    assert_string_equal(mav_st_meta(&f, "mav.kind"), "prior");
    mav_st_close(&f);
    rm_tree(dir);
}

static void test_errors(void **state) {
    (void)state;
    tu_expect_mav("train", 2, "stage");
    tu_expect_mav("train dance --data x --out y", 2, "unknown stage");
    tu_expect_mav("train clip --data x --merges m --out y --steps abc", 2, "--steps");
    tu_expect_mav("train clip --data x --merges m --out y --bogus 1", 2, "bogus");
    tu_expect_mav("train clip --merges m --out y", 2, "--data");
    tu_expect_mav("train clip --data x --out y", 2, "--merges");
    tu_expect_mav("train prior --data x --out y", 2, "--clip");
    tu_expect_mav("train clip --data x --merges m --out y --set steps", 2, "KEY=VALUE");
    tu_expect_mav("train clip --data x --merges m --out y --set nosuch=1", 2, "nosuch");
    tu_expect_mav("train clip --data x --merges m --out y --set lr=abc", 2, "lr");
    tu_expect_mav("train clip --data x --merges m --out y --steps 5 --until 9", 2, "until");
    tu_expect_mav("train clip --data x --out /nonexistent/mav_run --resume", 1, "checkpoint.safetensors");
    // a missing data folder is a clear error naming it, not a crash
    char dir[256], a[2048];
    make_dataset(dir, sizeof dir);
    snprintf(a, sizeof a, "train clip --data %s/no_such_folder --merges %s/merges.txt --out %s/run --steps 2 --quiet", dir,
             dir, dir);
    tu_expect_mav(a, 1, "no_such_folder");
    snprintf(a, sizeof a, "%s/run", dir);
    if (access(a, F_OK) == 0) fail_msg("a failed start created the output folder %s", a);
    rm_tree(dir);
}

MAV_TEST_GROUP(train_run, cmocka_unit_test(test_clip_learns), cmocka_unit_test(test_resume_exact),
               cmocka_unit_test(test_prior_stage), cmocka_unit_test(test_errors))
