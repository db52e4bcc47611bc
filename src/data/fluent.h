// fluent.h — build the Fluent Emoji training set from the raw npm packages (scripts/get-data):
// captioned stills, unlabeled animated clips, the concept split, a summary. docs/DATA.md.
//
// Output folder:
//   images-<res>.mavc   stills (1-frame items) at each size, alpha on white (data/cache.h)
//   images.jsonl        one line per cache item, same order: key, concept, split, label, tags,
//                       caption (template hash(key) mod 4), captions (all templates)
//   clips-<res>.mavc    animated clips (frames > 1), all frames or the first --frames
//   clips.jsonl         key, concept, split, frames, fps per clip (no captions: never read)
//   split.json          the test and validation concept keys
//   fluent-emoji.json   the summary (also printed): counts, frames, sizes, bad files, seconds
#ifndef MAV_DATA_FLUENT_H
#define MAV_DATA_FLUENT_H

#include <stdio.h>

#include "core/error.h"

typedef struct {
    const char *raw;   // folder given to scripts/get-data
    const char *out;   // output folder (created)
    const int *sizes;  // [n_sizes] square resolutions
    int n_sizes;
    int max_frames;    // per clip, 0: all
    int n_test, n_val; // concepts held out (docs/DATA.md: 100 and 100)
    int limit;         // process only the first `limit` files of each kind (tests, smoke runs); 0: all
} mav_fluent_opts;

// Build the dataset; progress lines go to `progress` (may be NULL). *summary receives the
// summary JSON text (malloc'd; may be NULL). Corrupt inputs are skipped, counted and listed.
mav_status mav_fluent_build(const mav_fluent_opts *o, FILE *progress, char **summary);

#endif
