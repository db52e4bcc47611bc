// cmd_train.c — `mav train clip|prior`: the training stages on the run framework
// (train/run.h, train/stages.h, docs/TRAINING.md).
//
// Run options come, later ones winning, from: the defaults, the checkpoint (with --resume),
// --train-config FILE (JSON object), each --set key=value, then the plain flags.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "train/run.h"
#include "train/stages.h"

static const char *g_data, *g_val, *g_merges, *g_config, *g_out, *g_train_config, *g_clip, *g_set_dummy;
static int g_steps = -1, g_batch = -1, g_res = 0, g_warmup = -1, g_save_every = -1, g_val_every = -1,
           g_log_every = -1, g_until = -1, g_seed = -1, g_val_items = -1, g_resume, g_quiet, g_sample_steps = 25;
static double g_lr = -1, g_min_lr = -1, g_cfg_scale = 3.0;

const cli_opt train_opts[] = {
    {"data", OPT_STRING, &g_data, "DIR|FILE", "training set: manifest.jsonl / folder / tar shards / fluent-emoji folder", 0, 0},
    {"val", OPT_STRING, &g_val, "DIR|FILE", "held-out set for validation (fluent-emoji folders: the val split)", 0, 0},
    {"out", OPT_STRING, &g_out, "DIR", "output folder: checkpoint, model files, loss.csv, loss.svg", 0, 0},
    {"merges", OPT_STRING, &g_merges, "FILE", "clip: BPE merges (embedded in the checkpoint as mav.bpe)", 0, 0},
    {"config", OPT_STRING, &g_config, "NAME|JSON|FILE", "network config (clip: tiny, vit-b-32; prior: tiny, vit-b-32)", 0, 0},
    {"clip", OPT_STRING, &g_clip, "FILE", "prior: the frozen CLIP checkpoint (from mav train clip)", 0, 0},
    {"res", OPT_INT, &g_res, "R", "clip: image resolution (overrides the config's)", 8, 4096},
    {"steps", OPT_INT, &g_steps, "N", "total optimiser steps (default 1000)", 1, 1e9},
    {"until", OPT_INT, &g_until, "N", "stop after step N this time (checkpoint written; continue with --resume)", 1, 1e9},
    {"batch", OPT_INT, &g_batch, "B", "batch size (default 32)", 1, 65536},
    {"lr", OPT_FLOAT, &g_lr, "X", "peak learning rate (default 3e-4)", 1e-12, 10},
    {"min-lr", OPT_FLOAT, &g_min_lr, "X", "final learning rate of the cosine (default lr/10)", 0, 10},
    {"warmup", OPT_INT, &g_warmup, "N", "linear warmup steps (default 100)", 0, 1e9},
    {"save-every", OPT_INT, &g_save_every, "N", "checkpoint every N steps, 0 = only at the end (default 500)", 0, 1e9},
    {"val-every", OPT_INT, &g_val_every, "N", "validation every N steps, 0 = only at the end (default 250)", 0, 1e9},
    {"val-items", OPT_INT, &g_val_items, "N", "held-out items validation uses (default all)", 0, 1e9},
    {"log-every", OPT_INT, &g_log_every, "N", "progress line every N steps (default 10)", 1, 1e9},
    {"seed", OPT_INT, &g_seed, "S", "seed of the initialisation, data order and noise (default 0)", 0, 2147483647},
    {"train-config", OPT_STRING, &g_train_config, "FILE", "run options as a JSON object (keys as --set)", 0, 0},
    {"set", OPT_STRING, &g_set_dummy, "KEY=VALUE", "one run option (repeatable): steps, lr, ema_decay, grad_clip, ...", 0, 0},
    {"resume", OPT_FLAG, &g_resume, NULL, "continue from OUT/checkpoint.safetensors (bit-identical losses)", 0, 0},
    {"cfg-scale", OPT_FLOAT, &g_cfg_scale, "S", "prior: guidance scale of validation samples (default 3)", 0, 100},
    {"sample-steps", OPT_INT, &g_sample_steps, "N", "prior: DDIM steps of validation samples (default 25)", 1, 1000},
    {"quiet", OPT_FLAG, &g_quiet, NULL, "no progress lines", 0, 0},
    CLI_OPT_END};

const char cmd_train_help[] =
    "subcommands:\n"
    "  clip   stage 0: contrastive training of CLIP's two towers on image-caption pairs\n"
    "         (needs --data, --merges unless resuming, --out; --config default tiny).\n"
    "         Validation (with --val): contrastive loss and image<->text retrieval top-1/top-5.\n"
    "  prior  stage 1a: the diffusion prior with CLIP frozen (needs --data, --clip, --out).\n"
    "         Validation: loss, and the mean cosine of DDIM+CFG samples with the true image\n"
    "         embeddings next to the text-embedding baseline.\n"
    "Run options (--set KEY=VALUE, --train-config FILE): steps warmup until batch lr min_lr\n"
    "weight_decay beta1 beta2 eps grad_clip ema_decay save_every val_every log_every val_items seed.\n"
    "Writes OUT/checkpoint.safetensors (weights, EMA, AdamW moments, step, rng states, config;\n"
    "atomic), OUT/model.safetensors and OUT/model-ema.safetensors, OUT/loss.csv, OUT/loss.svg.\n"
    "--resume continues from the checkpoint with the same losses as an uninterrupted run\n"
    "(same --threads). See docs/TRAINING.md.";

// Apply the plain flags that were given on top of o.
static void apply_flags(mav_run_opts *o) {
    if (g_steps > 0) o->steps = g_steps;
    if (g_until > 0) o->until = g_until;
    if (g_batch > 0) o->batch = g_batch;
    if (g_lr > 0) {
        o->lr = g_lr;
        if (g_min_lr < 0) o->min_lr = g_lr / 10;
    }
    if (g_min_lr >= 0) o->min_lr = g_min_lr;
    if (g_warmup >= 0) o->warmup = g_warmup;
    if (g_save_every >= 0) o->save_every = g_save_every;
    if (g_val_every >= 0) o->val_every = g_val_every;
    if (g_val_items >= 0) o->val_items = g_val_items;
    if (g_log_every > 0) o->log_every = g_log_every;
    if (g_seed >= 0) o->seed = (uint64_t)g_seed;
}

int cmd_train(int argc, char **argv) {
    const cli_command *cmd = cli_find("train");
    if (argc < 2) return cli_usage_error(cmd, "expects a stage (available: clip, prior)");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        cli_print_help(stdout, cmd, train_opts);
        return 0;
    }
    const char *stage = argv[1];
    if (strcmp(stage, "clip") != 0 && strcmp(stage, "prior") != 0)
        return cli_usage_error(cmd, "unknown stage \"%s\" (available: clip, prior)", stage);
    // --set KEY=VALUE may repeat: collect them here, parse the rest with the shared parser.
    char **av = malloc(((size_t)argc + 1) * sizeof *av), **sets = malloc(((size_t)argc + 1) * sizeof *sets);
    if (!av || !sets) { free(av); free(sets); mav_fail(MAV_ERR_NOMEM, "out of memory"); return cli_fail("train"); }
    int ac = 0, ns = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--set") == 0) {
            if (i + 1 >= argc) { free(av); free(sets); return cli_usage_error(cmd, "--set needs KEY=VALUE"); }
            sets[ns++] = argv[++i];
        } else if (strncmp(argv[i], "--set=", 6) == 0) {
            sets[ns++] = argv[i] + 6;
        } else {
            av[ac++] = argv[i];
        }
    }
    av[ac] = NULL;
    char *pos[1];
    int npos;
    int rc = cli_parse(cmd, train_opts, ac, av, 2, pos, 0, &npos);
    free(av);
    if (rc) { free(sets); return rc; }
    for (int i = 0; i < ns; i++)
        if (!strchr(sets[i], '=')) { rc = cli_usage_error(cmd, "--set expects KEY=VALUE, got \"%s\"", sets[i]); free(sets); return rc; }
    if (!g_data) { free(sets); return cli_usage_error(cmd, "needs --data DIR|FILE"); }
    if (!g_out) { free(sets); return cli_usage_error(cmd, "needs --out DIR"); }
    int is_clip = strcmp(stage, "clip") == 0;
    if (is_clip && !g_merges && !g_resume) { free(sets); return cli_usage_error(cmd, "clip needs --merges FILE"); }
    if (!is_clip && !g_clip && !g_resume) { free(sets); return cli_usage_error(cmd, "prior needs --clip FILE"); }

    mav_run_opts o;
    mav_run_opts_default(&o);
    char *stored_config = NULL, *stored_extra = NULL;
    mav_status st = MAV_OK;
    if (g_resume) {
        st = mav_run_peek(g_out, &o, "mav.config", &stored_config);
        if (st == MAV_OK) st = mav_run_peek(g_out, NULL, is_clip ? "mav.bpe" : "mav.clip", &stored_extra);
        char *stored_stage = NULL;
        if (st == MAV_OK) st = mav_run_peek(g_out, NULL, "mav.stage", &stored_stage);
        if (st == MAV_OK && (!stored_stage || strcmp(stored_stage, stage) != 0))
            st = mav_fail(MAV_ERR_ARG, "%s/%s is a checkpoint of stage \"%s\", not \"%s\"", g_out, MAV_RUN_CHECKPOINT,
                          stored_stage ? stored_stage : "?", stage);
        free(stored_stage);
        if (st == MAV_OK && (!stored_config || !stored_extra))
            st = mav_fail(MAV_ERR_FORMAT, "%s/%s: lacks mav.config or %s", g_out, MAV_RUN_CHECKPOINT,
                          is_clip ? "mav.bpe" : "mav.clip");
        o.until = 0;  // a stop point of the interrupted session does not carry over
    }
    if (st != MAV_OK) { free(sets); free(stored_config); free(stored_extra); return cli_fail("train"); }
    if (g_train_config) st = mav_run_opts_load_file(&o, g_train_config);
    for (int i = 0; st == MAV_OK && i < ns; i++) {
        char key[64];
        const char *eq = strchr(sets[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - sets[i]), sets[i]);
        st = mav_run_opts_set(&o, key, eq + 1);
    }
    free(sets);
    if (st != MAV_OK) {  // a bad --set or --train-config is a usage error too
        free(stored_config); free(stored_extra);
        return cli_usage_error(cmd, "%s", mav_last_error());
    }
    apply_flags(&o);
    if (mav_run_opts_check(&o) != MAV_OK) {
        free(stored_config); free(stored_extra);
        return cli_usage_error(cmd, "%s", mav_last_error());
    }

    mav_stage s;
    mav_clip_stage *cs = NULL;
    mav_prior_stage *ps = NULL;
    if (is_clip) {
        char *bpe = stored_extra;
        size_t len = bpe ? strlen(bpe) : 0;
        if (!bpe) st = mav_read_text_file(g_merges, &bpe, &len);
        const char *config = stored_config ? stored_config : g_config ? g_config : "tiny";
        if (st == MAV_OK) st = mav_clip_stage_create(&cs, &s, config, bpe, len, stored_config ? 0 : g_res, o.batch, o.seed);
        if (bpe != stored_extra) free(bpe);
    } else {
        const char *clip = stored_extra ? stored_extra : g_clip;
        const char *config = stored_config ? stored_config : g_config;
        st = mav_prior_stage_create(&ps, &s, clip, g_merges, config, o.batch, o.seed, g_cfg_scale, g_sample_steps);
    }
    free(stored_config);
    free(stored_extra);
    if (st == MAV_OK) {
        mav_run_io io = {.data = g_data, .val = g_val, .out_dir = g_out, .resume = g_resume, .quiet = g_quiet};
        st = mav_run_train(&s, &o, &io);
    }
    mav_clip_stage_free(cs);
    mav_prior_stage_free(ps);
    return st == MAV_OK ? 0 : cli_fail(is_clip ? "train clip" : "train prior");
}
