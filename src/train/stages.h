// stages.h — the training stages built on the run framework (train/run.h, docs/TRAINING.md):
// stage 0 (CLIP, contrastive) and stage 1a (the prior, CLIP frozen). Each fills a mav_stage
// for mav_run_train; the caller frees it after the run.
#ifndef MAV_TRAIN_STAGES_H
#define MAV_TRAIN_STAGES_H

#include <stddef.h>
#include <stdint.h>

#include "train/run.h"

// Read a whole text file, gzip or plain (zlib reads both), NUL-terminated. *len may be NULL.
mav_status mav_read_text_file(const char *path, char **text, size_t *len);

// ---- stage 0: CLIP ----
// config: a named CLIP config (tiny, vit-b-32), a JSON object, or a JSON file. vocab_size is
// set to the tokenizer's (merges text bpe_text); res > 0 overrides image_resolution.
// Initialises both towers from seed; plans batches of `batch`.
typedef struct mav_clip_stage mav_clip_stage;
mav_status mav_clip_stage_create(mav_clip_stage **cs, mav_stage *s, const char *config, const char *bpe_text,
                                 size_t bpe_len, int res, int batch, uint64_t seed);
void mav_clip_stage_free(mav_clip_stage *cs);

// ---- stage 1a: the prior ----
// clip_path: a `mav.kind = clip` checkpoint; its merges come from its mav.bpe metadata, or
// from merges_path when given. config: a named prior config, JSON object or file (NULL:
// "tiny"); text_width, emb_dim and text_ctx are taken from the CLIP checkpoint. cfg_scale:
// the guidance scale validation samples with.
typedef struct mav_prior_stage mav_prior_stage;
mav_status mav_prior_stage_create(mav_prior_stage **ps, mav_stage *s, const char *clip_path, const char *merges_path,
                                  const char *config, int batch, uint64_t seed, double cfg_scale, int sample_steps);
void mav_prior_stage_free(mav_prior_stage *ps);

#endif
