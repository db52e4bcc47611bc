// test_cli_bench.c — `mav bench` as a user meets it: usage errors exit 2 with a message that
// names the problem, and `mav bench ops --json` completes and prints one well-formed JSON
// object. Runs the built CLI ($MAV_BIN, set by CTest; otherwise ../mav next to this test
// binary). Speed is never asserted: the machine is shared and timings vary.
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

// Each bad command line must exit 2 and say what was wrong (the fragment) on stderr.
static void test_bad_arguments_exit_2(void **state) {
    (void)state;
    static const struct { const char *args, *says; } cases[] = {
        {"bench", "expects a benchmark name"},
        {"bench nosuch", "unknown benchmark \"nosuch\""},
        {"bench ops --nosuch", "unknown option \"--nosuch\""},
        {"bench ops --budget", "--budget needs a value"},
        {"bench ops --budget abc", "--budget expects a number"},
        {"bench ops --budget -1", "--budget must be in"},
        {"bench ops --threads x", "--threads expects an integer"},
        {"bench ops --json=1", "--json takes no value"},
        {"bench ops extra", "unexpected argument \"extra\""},
        {"bench ops -x", "unknown option \"-x\""},
    };
    char out[8192];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = tu_run_mav_buf(cases[i].args, 1, out, sizeof out);
        if (rc != 2) fail_msg("`mav %s` exited %d, want 2; output:\n%s", cases[i].args, rc, out);
        if (!strstr(out, cases[i].says))
            fail_msg("`mav %s`: message lacks \"%s\"; output:\n%s", cases[i].args, cases[i].says, out);
    }
}

static void test_help_lists_ops(void **state) {
    (void)state;
    char out[8192];
    int rc = tu_run_mav_buf("help bench", 1, out, sizeof out);
    if (rc != 0) fail_msg("`mav help bench` exited %d; output:\n%s", rc, out);
    if (!strstr(out, "ops") || !strstr(out, "--budget") || !strstr(out, "--json"))
        fail_msg("`mav help bench` does not describe ops, --budget and --json:\n%s", out);
}

static double num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!json_is_number(v)) fail_msg("JSON: \"%s\" missing or not a number", key);
    return json_number_value(v);
}

// The smallest budget still times >= 5 runs per figure: the full table in a few seconds.
static void test_json_output_parses(void **state) {
    (void)state;
    static char out[1 << 20];
    int rc = tu_run_mav_buf("bench ops --json --budget 0 --threads 2", 1, out, sizeof out);
    if (rc != 0) fail_msg("`mav bench ops --json` exited %d; output:\n%.2000s", rc, out);
    json_error_t err;
    json_t *root = json_loads(out, 0, &err);
    if (!root) fail_msg("output is not JSON (line %d: %s):\n%.2000s", err.line, err.text, out);
    if (!json_is_object(root)) fail_msg("output is not a JSON object");
    assert_int_equal((int)num(root, "threads"), 2);
    json_t *peak = json_object_get(root, "fma_peak_gflops");
    if (!json_is_object(peak)) fail_msg("JSON: fma_peak_gflops missing");
    // Positive and finite is all that can be asserted about a speed on a shared machine.
    if (!(num(peak, "threads_1") > 0) || !(num(peak, "threads_n") > 0)) fail_msg("FMA peak not positive");
    json_t *rows = json_object_get(root, "rows");
    if (!json_is_array(rows)) fail_msg("JSON: rows missing");
    // 7 conv shapes: 7 im2col GEMMs + the 1024^3 GEMM, then forward and backward of each conv.
    if (json_array_size(rows) != 22) fail_msg("JSON: %zu rows, want 22", json_array_size(rows));
    int n_sgemm = 0, n_fwd = 0, n_bwd = 0;
    for (size_t i = 0; i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        const char *op = json_string_value(json_object_get(r, "op"));
        if (!op) fail_msg("row %zu: no op", i);
        n_sgemm += strcmp(op, "sgemm") == 0, n_fwd += strcmp(op, "conv2d_fwd") == 0, n_bwd += strcmp(op, "conv2d_bwd") == 0;
        if (num(r, "runs") < 5) fail_msg("row %zu (%s): %g runs, want >= 5", i, op, num(r, "runs"));
        if (!(num(r, "flops") > 0) || !(num(r, "median_s") > 0) || !(num(r, "gflops") > 0))
            fail_msg("row %zu (%s): flops, median_s and gflops must be positive", i, op);
        if (!(num(r, "min_s") <= num(r, "median_s")) || !(num(r, "median_s") <= num(r, "max_s")))
            fail_msg("row %zu (%s): want min_s <= median_s <= max_s", i, op);
        // gflops is flops / median_s; reals are printed to 9 significant digits (relative
        // rounding <= 5e-9 each), so 1e-6 relative only fails on a wrong formula.
        double want = num(r, "flops") / num(r, "median_s") * 1e-9;
        if (fabs(num(r, "gflops") - want) > 1e-6 * want) fail_msg("row %zu (%s): gflops %g, want %g", i, op, num(r, "gflops"), want);
        if (strcmp(op, "sgemm") == 0) {
            double M = num(r, "M"), N = num(r, "N"), K = num(r, "K");
            if (num(r, "flops") != 2 * M * N * K) fail_msg("row %zu: sgemm flops != 2MNK", i);
        } else {
            double fwd = 2 * num(r, "N") * num(r, "C_out") * num(r, "H") * num(r, "W") * num(r, "C_in") * 9;
            double want_flops = strcmp(op, "conv2d_bwd") == 0 ? 2 * fwd : fwd;  // stride 1, pad 1: H_out = H
            if (num(r, "flops") != want_flops) fail_msg("row %zu (%s): flops %g, want %g", i, op, num(r, "flops"), want_flops);
        }
    }
    if (n_sgemm != 8 || n_fwd != 7 || n_bwd != 7) fail_msg("rows: %d sgemm, %d fwd, %d bwd; want 8, 7, 7", n_sgemm, n_fwd, n_bwd);
    json_decref(root);
}

MAV_TEST_GROUP(cli_bench, cmocka_unit_test(test_bad_arguments_exit_2), cmocka_unit_test(test_help_lists_ops),
               cmocka_unit_test(test_json_output_parses))
