// loader.h — training data (SPEC §7): datasets of images (with captions) or videos (without),
// seeded random batches, a prefetch thread. docs/DATA.md describes the formats.
//
// Sources mav_dataset_open understands:
//   images  a JSONL manifest ({"image": "rel/path.png", "caption": "..."}, paths relative to
//           the manifest's folder) or a folder holding manifest.jsonl; a webdataset tar shard
//           (key.jpg|jpeg|png|webp + key.txt) or a folder of .tar shards; a fluent-emoji folder
//           (images-<res>.mavc + images.jsonl, made by `mav data fluent-emoji`).
//   videos  a folder of video files (mp4, webm, avi, mkv, mov, mpeg, mpg, ogv, gif, webp) and/or
//           frame folders (sub-folders of images); a tar shard or folder of shards of video
//           files; a fluent-emoji folder (clips-<res>.mavc). Video captions are never read.
// Decoding goes through src/media (mav_media_read / mav_media_read_memory).
//
// Batches are a pure function of (dataset contents, rng state): sample j of a batch draws from
// its own stream forked from one value taken from the caller's rng, so results do not depend
// on the thread count or on prefetching. A file that fails to decode is recorded (name and
// reason, see mav_dataset_bad) and the sample draws another item: never a crash.
#ifndef MAV_DATA_LOADER_H
#define MAV_DATA_LOADER_H

#include <stdint.h>

#include "core/error.h"
#include "core/rng.h"
#include "media/media.h"

typedef enum { MAV_DS_IMAGES = 0, MAV_DS_VIDEOS, MAV_DS_KIND_COUNT } mav_ds_kind;

typedef struct {
    int split;      // fluent-emoji folders: the mav_split to load (0 = train, the default); -1 all
    int res;        // fluent-emoji folders: prefer the cache of this resolution (0: the largest)
    int max_items;  // keep only the first max_items items (0: all)
} mav_dataset_opts;

typedef struct mav_dataset mav_dataset;

// Open and index a dataset (no decoding happens here). o may be NULL (defaults above).
mav_status mav_dataset_open(mav_dataset **ds, const char *path, mav_ds_kind kind, const mav_dataset_opts *o);
void mav_dataset_close(mav_dataset *ds);
int mav_dataset_size(const mav_dataset *ds);
const char *mav_dataset_item_name(const mav_dataset *ds, int i);  // file, "shard.tar:member", or cache key
const char *mav_dataset_caption(const mav_dataset *ds, int i);    // NULL for videos
// Decode item i in full (max_frames <= 0: all frames) into *out (free with mav_frames_free).
// A failure is recorded in the bad list and returned.
mav_status mav_dataset_read(mav_dataset *ds, int i, int max_frames, mav_frames *out);

// Items that failed to decode so far (each listed once): "name: reason".
int mav_dataset_bad_count(mav_dataset *ds);
const char *mav_dataset_bad(mav_dataset *ds, int k);
// Manifest lines / shard members skipped while indexing (bad JSON, image without caption...).
int mav_dataset_skipped_count(const mav_dataset *ds);

typedef struct {
    int B, F, res;
    float *x;              // [B, F, 3, res, res], [-1, 1]; images have F = 1
    float *fps;            // [B] the clip's sampled fps (the decoder's condition); 0 for images
    const char **caption;  // [B] images: pointers owned by the dataset; NULL for videos
    int *item;             // [B] the item each sample came from
} mav_batch;

mav_status mav_batch_alloc(mav_batch *b, int B, int F, int res);
void mav_batch_free(mav_batch *b);

// B images at res×res (resize to cover, centre crop), captions (a fluent-emoji image picks one
// of its caption templates at random). out must be allocated with (B, 1, res).
mav_status mav_image_batch(mav_dataset *ds, int B, int res, mav_rng *rng, mav_batch *out);
// B clips of F frames at a target fps drawn from [1, 30] (clamped per source: data/sample.h).
// out must be allocated with (B, F, res).
mav_status mav_clip_batch(mav_dataset *ds, int B, int F, int res, mav_rng *rng, mav_batch *out);

// A background thread that prepares batch k+1 while the caller trains on batch k. It owns a
// copy of the rng: the sequence of batches equals calling mav_*_batch with that rng.
typedef struct mav_prefetch mav_prefetch;
mav_status mav_prefetch_start(mav_prefetch **p, mav_dataset *ds, mav_ds_kind kind, int B, int F, int res, mav_rng rng);
// Swap the next ready batch into *out (allocated with the same B, F, res; its old buffers are
// recycled for the following batch). Returns the batch's status (an error stops the thread).
mav_status mav_prefetch_next(mav_prefetch *p, mav_batch *out);
// The rng state after the batches handed out so far (for checkpoints).
mav_rng mav_prefetch_rng(const mav_prefetch *p);
void mav_prefetch_stop(mav_prefetch *p);

#endif
