// cache.h — the frame cache: many clips (or images: 1-frame clips) of one resolution in one
// file, uint8 RGB, loadable by mmap (docs/DATA.md "Cache format").
//
// Layout, all integers little-endian:
//   header  64 bytes  "MAVFRM01" | u32 version=1 | u32 w | u32 h | u32 channels=3 | u32 n_items |
//                     u32 entry_bytes=96 | u64 total_frames | u64 data_offset | u64 index_offset (8-aligned) |
//                     8 zero bytes
//   data    at data_offset (64): frames [total_frames, h, w, 3] uint8, clips stored one after another
//   index   at index_offset: n_items entries of 96 bytes:
//                     u64 first_frame | u32 n_frames | u32 split | f64 fps | char key[72] (NUL-padded)
// The index comes last so the writer streams frames without knowing the item count.
#ifndef MAV_DATA_CACHE_H
#define MAV_DATA_CACHE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

#define MAV_CACHE_KEY_MAX 72

typedef struct {
    uint64_t first_frame;
    uint32_t n_frames;
    uint32_t split;  // mav_split (data/emoji.h)
    double fps;
    char key[MAV_CACHE_KEY_MAX];
} mav_cache_entry;

typedef struct {
    FILE *f;
    char *path, *tmp_path;  // written to tmp_path, renamed to path on close (atomic)
    int w, h;
    uint64_t total_frames;
    mav_cache_entry *index;  // [n, cap]
    int n, cap;
} mav_cache_writer;

// Start a cache of w×h RGB frames at path.
mav_status mav_cache_create(mav_cache_writer *cw, const char *path, int w, int h);
// Append one item: rgb [n_frames, h, w, 3].
mav_status mav_cache_add(mav_cache_writer *cw, const char *key, const uint8_t *rgb, int n_frames, double fps,
                         int split);
// Write the index and header, rename into place. Frees the writer either way.
mav_status mav_cache_finish(mav_cache_writer *cw);
void mav_cache_abort(mav_cache_writer *cw);  // discard (removes the temporary file)

typedef struct {
    int w, h, n;
    uint64_t total_frames;
    const mav_cache_entry *index;  // [n] (inside the mapping)
    const uint8_t *data;           // [total_frames, h, w, 3]
    void *map;
    size_t map_size;
} mav_cache;

// Map a cache and validate it: header fields, every entry's frame range inside the data.
mav_status mav_cache_open(mav_cache *c, const char *path);
void mav_cache_close(mav_cache *c);
// Frames of item i: [n_frames, h, w, 3].
static inline const uint8_t *mav_cache_frames(const mav_cache *c, int i) {
    return c->data + c->index[i].first_frame * (uint64_t)c->w * (uint64_t)c->h * 3u;
}

#endif
