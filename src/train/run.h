// run.h — the training-run framework every stage shares (issue 6 item 1; docs/TRAINING.md).
//
// A run is (stage, run options, data, output folder). The framework owns what is the same for
// every stage: the data (training set through the prefetch thread, held-out set), the step loop
// with warmup + cosine learning rate, EMA weights, a progress line on stderr, OUT/loss.csv and
// OUT/loss.svg, validation every val_every steps, and the training checkpoint
// OUT/checkpoint.safetensors written atomically every save_every steps and at the end.
// A stage (clip_stage.c, prior_stage.c, later the U-Net stages) supplies the network and one
// optimiser step; it never touches files of the run except through its export callback.
//
// Checkpoint (ONE safetensors file): tensors NAME (weights), ema.NAME, adam_m.NAME, adam_v.NAME
// for every parameter; metadata mav.kind = "train_state", mav.stage, mav.step, mav.rng.data
// and mav.rng.noise ("SEED OFFSET", decimal), mav.run (the run options as JSON), and the
// stage's own pairs (mav.config, mav.bpe, ...). Resuming restores all of it, so the losses of
// a resumed run equal those of an uninterrupted run bit for bit at the same thread count.
#ifndef MAV_TRAIN_RUN_H
#define MAV_TRAIN_RUN_H

#include <stdint.h>

#include "core/error.h"
#include "core/params.h"
#include "core/rng.h"
#include "data/loader.h"

// Run options: the config-file keys (JSON object) and `--set key=value` names are the field names.
typedef struct {
    long steps;          // total optimiser steps (the cosine reaches min_lr here)
    long warmup;         // linear warmup steps
    long until;          // stop after this step this time (0 = steps); the checkpoint is written
    int batch;           // training batch
    double lr, min_lr;   // peak and final learning rate
    double weight_decay, beta1, beta2, eps;  // AdamW
    double grad_clip;    // global-norm clip (0 = off)
    double ema_decay;    // EMA decay (with the warmup of optim/ema.h)
    long save_every;     // checkpoint every N steps (0 = only at the end)
    long val_every;      // validation every N steps (0 = only at the end, when there is a val set)
    long log_every;      // progress line every N steps
    int val_items;       // held-out items used by validation (0 = all)
    uint64_t seed;       // init, data and noise streams all derive from it
} mav_run_opts;

void mav_run_opts_default(mav_run_opts *o);
// One option from text (config file value or --set); MAV_ERR_ARG names an unknown key or bad value.
mav_status mav_run_opts_set(mav_run_opts *o, const char *key, const char *value);
// Every "key=value" of a JSON object (numbers or strings); unknown keys are errors.
mav_status mav_run_opts_from_json(mav_run_opts *o, const char *json);
mav_status mav_run_opts_load_file(mav_run_opts *o, const char *path);
char *mav_run_opts_to_json(const mav_run_opts *o);  // malloc'd
mav_status mav_run_opts_check(const mav_run_opts *o);

typedef struct {
    double loss, grad_norm;
    int skipped;  // non-finite loss or gradients: no update was made
} mav_run_step_out;

#define MAV_RUN_MAX_METRICS 8

typedef struct {
    const char *name;        // "clip", "prior": mav.stage and the progress prefix
    void *ctx;
    mav_params *params;      // trained parameters: value, grad, m, v allocated
    int res;                 // image resolution of the batches
    // One optimiser step on batch b (1-based step, learning rate lr): gradients, clipping,
    // AdamW, any post-update rule. noise: the stage's own random stream (checkpointed).
    mav_status (*step)(void *ctx, const mav_batch *b, const mav_run_opts *o, long step, float lr, mav_rng *noise,
                       mav_run_step_out *out);
    // Validation on the held-out set (may be NULL): *val_loss and up to MAV_RUN_MAX_METRICS
    // metrics named by metric_names (comma-separated; they become loss.csv columns). The
    // held-out items are items[0..n) of val (fixed, so values are comparable across steps).
    mav_status (*validate)(void *ctx, mav_dataset *val, int n, const mav_run_opts *o, double *val_loss,
                           double *metrics);
    const char *metric_names;
    // Write the model file (the stage's own checkpoint kind) with parameter values `values`
    // (the weights or the EMA weights, same layout as params->value).
    mav_status (*export_model)(void *ctx, const char *path, const float *values);
    // Extra metadata stored in the training checkpoint (e.g. mav.config, mav.bpe).
    int nmeta;
    const char *const *meta_keys, *const *meta_vals;
} mav_stage;

typedef struct {
    const char *data;      // training set (mav_dataset_open path)
    const char *val;       // held-out set or NULL
    const char *out_dir;   // created when missing
    int resume;            // continue from out_dir/checkpoint.safetensors
    int quiet;             // no progress lines
} mav_run_io;

#define MAV_RUN_CHECKPOINT "checkpoint.safetensors"

// Train stage s. Before calling: the stage's parameters hold their initial values (a fresh
// run) — on resume they, the moments, EMA, step and rngs are replaced from the checkpoint.
// Writes OUT/loss.csv, OUT/loss.svg, OUT/checkpoint.safetensors, OUT/model.safetensors
// (weights) and OUT/model-ema.safetensors (EMA weights) at the end.
mav_status mav_run_train(mav_stage *s, const mav_run_opts *o, const mav_run_io *io);

// For resuming: open OUT/checkpoint.safetensors and return its run options and its metadata
// value `key` (malloc'd copy, NULL when absent). Either output may be NULL.
mav_status mav_run_peek(const char *out_dir, mav_run_opts *o, const char *key, char **value);

// Read item i of ds as one image [3, res, res] in [-1, 1] (resize to cover, centre crop), the
// same pixels mav_image_batch gives for it. Validation uses it to walk a fixed held-out list.
mav_status mav_run_read_image(mav_dataset *ds, int i, int res, float *x);

// SVG line plot of loss.csv (loss, and val_loss points when present) to svg_path (atomic).
mav_status mav_run_plot(const char *csv_path, const char *svg_path);

#endif
