// test_cli_bench_unet.c — `mav bench unet`: usage errors exit 2 naming the problem; the tiny
// config's --json run completes and prints one object with every documented field, consistent
// with itself; the analytic FLOP count equals an independent count on the PyTorch reference.
// Runs the built CLI ($MAV_BIN, set by CTest; otherwise ../mav next to this test binary).
// Speed is never asserted: the machine is shared and timings vary.
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/unet_flops.h"
#include "nets/unet_config.h"
#include "testutil.h"

// Each bad command line exits 2 and says what was wrong (the fragment) on stderr.
static void test_bad_arguments_exit_2(void **state) {
    (void)state;
    static const struct { const char *args, *says; } cases[] = {
        {"bench unet", "needs --config"},
        {"bench unet --config nosuch", "unknown config \"nosuch\""},
        {"bench unet --config", "--config needs a value"},
        {"bench unet --config tiny --mode fast", "--mode must be sample, train or both"},
        {"bench unet --config tiny --runs 0", "--runs must be in"},
        {"bench unet --config tiny --runs x", "--runs expects an integer"},
        {"bench unet --config tiny --budget 1", "unknown option \"--budget\""},  // an ops option
        {"bench unet --config tiny --json=1", "--json takes no value"},
        {"bench unet --config tiny extra", "unexpected argument \"extra\""},
        {"bench unet --config tiny --threads x", "--threads expects an integer"},
        {"bench ops --config tiny", "unknown option \"--config\""},  // a unet option
    };
    char out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = tu_run_mav_buf(cases[i].args, 1, out, sizeof out);
        if (rc != 2) fail_msg("`mav %s` exited %d, want 2; output:\n%s", cases[i].args, rc, out);
        if (!strstr(out, cases[i].says))
            fail_msg("`mav %s`: message lacks \"%s\"; output:\n%s", cases[i].args, cases[i].says, out);
    }
}

static void test_help_describes_unet(void **state) {
    (void)state;
    char out[16384];
    int rc = tu_run_mav_buf("help bench", 1, out, sizeof out);
    if (rc != 0) fail_msg("`mav help bench` exited %d; output:\n%s", rc, out);
    static const char *const want[] = {"unet", "--config", "--mode", "--runs", "--json", "bench-decoder", "ops"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i])) fail_msg("`mav help bench` does not mention \"%s\":\n%s", want[i], out);
}

static json_t *get(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!v) fail_msg("JSON: \"%s\" missing", key);
    return v;
}

static double num(json_t *o, const char *key) {
    json_t *v = get(o, key);
    if (!json_is_number(v)) fail_msg("JSON: \"%s\" is not a number", key);
    return json_number_value(v);
}

// Runs `mav ARGS` that must succeed and print one JSON object (new reference).
static json_t *run_json(const char *args) {
    static char out[1 << 16];
    int rc = tu_run_mav_buf(args, 0, out, sizeof out);
    if (rc != 0) {
        tu_run_mav_buf(args, 1, out, sizeof out);  // again with stderr, for the message
        fail_msg("`mav %s` exited %d; output:\n%.3000s", args, rc, out);
    }
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    if (!root) fail_msg("`mav %s`: output is not JSON (line %d: %s):\n%.2000s", args, err.line, err.text, out);
    if (!json_is_object(root)) fail_msg("`mav %s`: output is not a JSON object", args);
    return root;
}

// gflops[mode] must be flops / median: reals are printed to 9 significant digits (relative
// rounding <= 5e-9 each), so 1e-6 relative fails only on a wrong formula.
static void check_mode(json_t *root, const char *mode, int batch, double step_flops) {
    json_t *m = get(root, mode);
    if (!json_is_object(m)) fail_msg("JSON: \"%s\" is not an object", mode);
    assert_int_equal((int)num(m, "batch"), batch);
    double med = num(m, "median_ms");
    if (!(med > 0) || !(num(m, "min_ms") <= med) || !(med <= num(m, "max_ms")))
        fail_msg("%s: want 0 < min_ms <= median_ms <= max_ms", mode);
    json_t *arr = get(m, "runs_ms");
    if (!json_is_array(arr) || json_array_size(arr) != 1) fail_msg("%s: runs_ms must hold the 1 timed run", mode);
    // one run: the median is that run (both printed from the same double)
    if (json_number_value(json_array_get(arr, 0)) != med) fail_msg("%s: runs_ms[0] != median_ms", mode);
    char key[32];
    snprintf(key, sizeof key, "%s_ms", mode);
    if (num(root, key) != med) fail_msg("%s != %s.median_ms", key, mode);
    double g = num(get(root, "gflops"), mode), want = step_flops / (med * 1e-3) * 1e-9;
    if (fabs(g - want) > 1e-6 * want) fail_msg("gflops.%s = %g, want flops / median = %g", mode, g, want);
    // a process that held the network's parameters and activations: more than 1 MB, and
    // (a sanity bound, not a speed) less than the 24 GiB the machine has
    double rss = num(get(root, "peak_rss_mb"), mode);
    if (!(rss > 1.0 && rss < 24 * 1024.0)) fail_msg("peak_rss_mb.%s = %g is implausible", mode, rss);
    if (!(num(m, "planned_mb") > 0) || !(num(m, "param_mb") > 0)) fail_msg("%s: planned_mb / param_mb not positive", mode);
}

// The quick path the benchmark script's users and CI can afford: tiny, one timed step of each.
static void test_tiny_json(void **state) {
    (void)state;
    json_t *root = run_json("bench unet --config tiny --runs 1 --json --threads 1");
    const char *cfg = json_string_value(get(root, "config"));
    if (!cfg || strcmp(cfg, "tiny") != 0) fail_msg("config is not \"tiny\"");
    assert_int_equal((int)num(root, "threads"), 1);
    assert_int_equal((int)num(root, "runs"), 1);
    json_t *in = get(root, "input");
    assert_int_equal((int)num(in, "F"), 4);
    assert_int_equal((int)num(in, "H"), 16);
    assert_int_equal((int)num(in, "W"), 16);
    assert_int_equal((int)num(in, "batch_sample"), 2);
    assert_int_equal((int)num(in, "batch_train"), 1);
    // parameter count of tiny: the reference's (test_unet_params checks it against PyTorch)
    assert_true(num(root, "params") == 1078465.0);
    json_t *fl = get(root, "flops");
    // the PyTorch-hook count of the reference forward at batch 2 (see test_flops_match_torch)
    if (num(fl, "sample_step") != 1347940352.0) fail_msg("flops.sample_step = %.0f", num(fl, "sample_step"));
    if (num(fl, "train_step") != 3 * num(get(fl, "forward_train_batch"), "total"))
        fail_msg("flops.train_step must be 3x the forward at the training batch");
    if (!(num(root, "fma_peak_gflops") > 0)) fail_msg("fma_peak_gflops not positive");
    check_mode(root, "sample", 2, num(fl, "sample_step"));
    check_mode(root, "train", 1, num(fl, "train_step"));
    if (!isfinite(num(get(root, "train"), "last_loss"))) fail_msg("train.last_loss not finite");
    json_decref(root);
}

// --mode sample runs only the sampling child: train fields are null.
static void test_mode_sample_only(void **state) {
    (void)state;
    json_t *root = run_json("bench unet --config tiny --runs 1 --json --mode sample --threads 1");
    if (!json_is_null(get(root, "train_ms")) || !json_is_null(get(root, "train")) ||
        !json_is_null(get(get(root, "gflops"), "train")) || !json_is_null(get(get(root, "peak_rss_mb"), "train")))
        fail_msg("--mode sample: train_ms, train, gflops.train and peak_rss_mb.train must be null");
    if (!(num(root, "sample_ms") > 0)) fail_msg("--mode sample: sample_ms not positive");
    json_decref(root);
}

// mav_unet_forward_flops against `/usr/bin/python3 scripts/bench_torch_unet.py --count-flops`:
// forward hooks on every nn.Conv2d / nn.Conv1d / nn.Linear of tests/reference/unet_ref.py
// plus a wrapper on its attention() — counted from the executed PyTorch graph, not from the
// layout walk the C code does. FLOP counts are integers: equality is exact.
static void test_flops_match_torch(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int B, F, H, W;
        double conv, tconv, linear, attn;
    } k[] = {
        {"tiny", 2, 4, 16, 16, 960233472.0, 214020096.0, 135938048.0, 37748736.0},
        {"tiny", 1, 4, 16, 16, 480116736.0, 107010048.0, 67969024.0, 18874368.0},
        {"bench-decoder", 2, 16, 64, 64, 462229078016.0, 97046495232.0, 37074108416.0, 9739173888.0},
        {"bench-decoder", 1, 16, 64, 64, 231114539008.0, 48523247616.0, 18537054208.0, 4869586944.0},
        {"bench-sr", 2, 16, 128, 128, 521872080896.0, 112771203072.0, 8591507456.0, 17448304640.0},
        {"bench-sr", 1, 16, 128, 128, 260936040448.0, 56385601536.0, 4295753728.0, 8724152320.0},
        {"bench-image", 32, 1, 64, 64, 462229078016.0, 0.0, 19002294272.0, 9034530816.0},
        {"bench-image", 16, 1, 64, 64, 231114539008.0, 0.0, 9501147136.0, 4517265408.0},
    };
    for (size_t i = 0; i < sizeof k / sizeof k[0]; i++) {
        mav_unet_config c;
        assert_int_equal(mav_unet_config_named(&c, k[i].name), MAV_OK);
        mav_unet_flops f = mav_unet_forward_flops(&c, k[i].B, k[i].F, k[i].H, k[i].W);
        if (f.conv != k[i].conv || f.tconv != k[i].tconv || f.linear != k[i].linear || f.attn != k[i].attn)
            fail_msg("%s B=%d: conv %.0f tconv %.0f linear %.0f attn %.0f; torch hooks: %.0f %.0f %.0f %.0f", k[i].name,
                     k[i].B, f.conv, f.tconv, f.linear, f.attn, k[i].conv, k[i].tconv, k[i].linear, k[i].attn);
        if (f.total != f.conv + f.tconv + f.linear + f.attn) fail_msg("%s: total is not the sum", k[i].name);
    }
}

MAV_TEST_GROUP(cli_bench_unet, cmocka_unit_test(test_bad_arguments_exit_2), cmocka_unit_test(test_help_describes_unet),
               cmocka_unit_test(test_tiny_json), cmocka_unit_test(test_mode_sample_only),
               cmocka_unit_test(test_flops_match_torch))
