// cmd_data.c — `mav data fluent-emoji` (build the Fluent Emoji training set from scripts/get-data's
// packages) and `mav data check` (open a dataset, draw batches, report bad files). docs/DATA.md.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/rng.h"
#include "data/emoji.h"
#include "data/fluent.h"
#include "data/loader.h"

static const char *g_from = NULL, *g_out = NULL, *g_sizes = "32,64,128", *g_split = "train";
static int g_frames = 0, g_limit = 0, g_videos = 0, g_batches = 2, g_batch = 4, g_res = 64, g_seed = 0;

const cli_opt data_opts[] = {
    {"from", OPT_STRING, &g_from, "RAW", "fluent-emoji: folder filled by scripts/get-data (default data/raw)", 0, 0},
    {"out", OPT_STRING, &g_out, "DIR", "fluent-emoji: output folder", 0, 0},
    {"sizes", OPT_STRING, &g_sizes, "LIST", "fluent-emoji: cache resolutions, comma-separated (default 32,64,128)", 0, 0},
    {"frames", OPT_INT, &g_frames, "N", "fluent-emoji: keep at most N frames per clip (default all); check: clip length F", 0, 100000},
    {"limit", OPT_INT, &g_limit, "N", "fluent-emoji: only the first N files of each kind (smoke runs)", 0, 1 << 30},
    {"videos", OPT_FLAG, &g_videos, NULL, "check: the dataset holds videos (default: captioned images)", 0, 0},
    {"split", OPT_STRING, &g_split, "NAME", "check: fluent-emoji split train|val|test|all (default train)", 0, 0},
    {"batches", OPT_INT, &g_batches, "N", "check: batches to draw (default 2)", 0, 1 << 20},
    {"batch", OPT_INT, &g_batch, "B", "check: batch size (default 4)", 1, 4096},
    {"res", OPT_INT, &g_res, "R", "check: resolution (default 64)", 1, 4096},
    {"seed", OPT_INT, &g_seed, "S", "check: seed (default 0)", 0, 2147483647},
    CLI_OPT_END};

const char cmd_data_help[] =
    "mav data fluent-emoji --from RAW --out DIR [--sizes 32,64,128] [--frames N]\n"
    "  Builds the Fluent Emoji set: captioned stills (emojibase label + tags) and unlabeled\n"
    "  animated clips in uint8 caches per resolution, a concept split (100 test, 100 val concepts;\n"
    "  skin tones stay together), and a summary (printed, and DIR/fluent-emoji.json).\n"
    "  Progress goes to stderr; corrupt files are skipped, counted and listed.\n"
    "mav data check PATH [--videos] [--batches N --batch B --res R --frames F --seed S]\n"
    "  Opens a dataset (manifest, tar shards, video folder, fluent-emoji folder), draws batches\n"
    "  and prints item counts and the files that failed to decode. See docs/DATA.md.";

static int parse_sizes(const char *s, int *out, int max) {
    int n = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || v > 4096 || n == max) return -1;
        out[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

static int run_fluent(const cli_command *cmd) {
    int sizes[8];
    int ns = parse_sizes(g_sizes, sizes, 8);
    if (ns <= 0) return cli_usage_error(cmd, "--sizes expects 1 to 8 comma-separated sizes in [1, 4096], got \"%s\"", g_sizes);
    if (!g_out) return cli_usage_error(cmd, "fluent-emoji needs --out DIR");
    mav_fluent_opts o = {g_from ? g_from : "data/raw", g_out, sizes, ns, g_frames, 100, 100, g_limit};
    char *summary = NULL;
    if (mav_fluent_build(&o, stderr, &summary) != MAV_OK) return cli_fail("data fluent-emoji");
    printf("%s\n", summary);
    free(summary);
    return 0;
}

static int run_check(const cli_command *cmd, const char *path) {
    mav_dataset_opts o = {0, g_res, 0};
    o.split = strcmp(g_split, "all") == 0 ? -1 : mav_split_from_name(g_split);
    if (o.split < -1 || (o.split == -1 && strcmp(g_split, "all") != 0))
        return cli_usage_error(cmd, "--split expects train, val, test or all, got \"%s\"", g_split);
    mav_ds_kind kind = g_videos ? MAV_DS_VIDEOS : MAV_DS_IMAGES;
    mav_dataset *ds;
    if (mav_dataset_open(&ds, path, kind, &o) != MAV_OK) return cli_fail("data check");
    int F = g_videos ? (g_frames > 0 ? g_frames : 8) : 1;
    mav_batch b;
    if (mav_batch_alloc(&b, g_batch, F, g_res) != MAV_OK) { mav_dataset_close(ds); return cli_fail("data check"); }
    mav_rng rng = mav_rng_make((uint64_t)g_seed);
    int rc = 0;
    for (int k = 0; k < g_batches && !rc; k++) {
        mav_status st = g_videos ? mav_clip_batch(ds, g_batch, F, g_res, &rng, &b) : mav_image_batch(ds, g_batch, g_res, &rng, &b);
        if (st != MAV_OK) { rc = cli_fail("data check"); break; }
        for (int j = 0; j < g_batch; j++) {
            if (g_videos) fprintf(stderr, "batch %d/%d: %s fps %.3g\n", k, j, mav_dataset_item_name(ds, b.item[j]), b.fps[j]);
            else fprintf(stderr, "batch %d/%d: %s \"%s\"\n", k, j, mav_dataset_item_name(ds, b.item[j]), b.caption[j]);
        }
    }
    printf("{\"items\": %d, \"skipped_entries\": %d, \"bad_count\": %d, \"bad\": [", mav_dataset_size(ds),
           mav_dataset_skipped_count(ds), mav_dataset_bad_count(ds));
    for (int k = 0; k < mav_dataset_bad_count(ds); k++) {
        printf(k ? ", \"" : "\"");
        for (const char *s = mav_dataset_bad(ds, k); *s; s++) {
            if (*s == '"' || *s == '\\') printf("\\%c", *s);
            else if ((unsigned char)*s < 0x20) printf("\\u%04x", *s);
            else putchar(*s);
        }
        printf("\"");
    }
    printf("]}\n");
    mav_batch_free(&b);
    mav_dataset_close(ds);
    return rc;
}

int cmd_data(int argc, char **argv) {
    const cli_command *cmd = cli_find("data");
    char *pos[2];
    int npos;
    int rc = cli_parse(cmd, data_opts, argc, argv, 1, pos, 2, &npos);
    if (rc) return rc;
    if (npos >= 1 && strcmp(pos[0], "fluent-emoji") == 0) {
        if (npos != 1) return cli_usage_error(cmd, "fluent-emoji takes no positional arguments");
        return run_fluent(cmd);
    }
    if (npos == 2 && strcmp(pos[0], "check") == 0) return run_check(cmd, pos[1]);
    return cli_usage_error(cmd, "expects fluent-emoji or check PATH");
}
