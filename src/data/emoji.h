// emoji.h — the Fluent Emoji dataset's metadata: hexcodes, emojibase labels, captions, the
// concept split (docs/DATA.md).
//
// File names in the Fluent packages are lower-case hexcodes ("1f44b-1f3fb.webp"), sometimes
// without leading zeros ("23-fe0f-20e3") or with '_' between tag characters
// ("1f3f4-e0067_e0062_e0065_e006e_e0067", no cancel tag); emojibase writes them upper case,
// 4+ digits, with or without the variation selector FE0F. Matching uses the *normalised*
// hexcode: code points separated by '-', each lower case with at least 4 digits, FE0F and the
// cancel tag E007F removed. The *concept* of an emoji is its normalised hexcode with the
// skin-tone modifiers 1f3fb..1f3ff removed too, so "1f44b-1f3fd" (waving hand: medium skin
// tone) belongs to concept "1f44b".
#ifndef MAV_DATA_EMOJI_H
#define MAV_DATA_EMOJI_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MAV_EMOJI_HEX_MAX 96  // longest hexcode string we accept, with its NUL

// Normalise a hexcode ("1F44B-FE0F" -> "1f44b"); fails (MAV_ERR_FORMAT) on anything that is not
// '-'-separated hex groups or that does not fit in cap.
mav_status mav_emoji_norm_hex(char *out, size_t cap, const char *hex);
// The concept key of a hexcode: normalised, skin tones removed.
mav_status mav_emoji_concept(char *out, size_t cap, const char *hex);

// FNV-1a 64-bit hash of a string: the split's fixed, platform-independent ordering.
uint64_t mav_emoji_hash(const char *s);

typedef struct {
    char *hex;    // normalised hexcode
    char *label;  // emojibase label ("waving hand: light skin tone")
    char **tags;  // [ntags]; skin-tone entries inherit their base emoji's tags
    int ntags;
} mav_emoji_entry;

typedef struct {
    mav_emoji_entry *e;  // [n], sorted by hex (strcmp) for mav_emoji_db_find
    int n;
} mav_emoji_db;

// Load emojibase's en/data.json (an array of {hexcode, label, tags, skins: [{hexcode, label}]}).
mav_status mav_emoji_db_load(mav_emoji_db *db, const char *path);
void mav_emoji_db_free(mav_emoji_db *db);
// Find an entry by any spelling of its hexcode (normalised first); NULL when absent.
const mav_emoji_entry *mav_emoji_db_find(const mav_emoji_db *db, const char *hex);

// Caption templates; every one contains the raw label verbatim.
//   0 "{label}"   1 "{label} emoji"   2 "a 3d {label}, {tag}, {tag}"   3 "{label}: {tags}"
#define MAV_EMOJI_N_TEMPLATES 4
// Write the caption of template `tmpl` (taken modulo the count) into out; returns its length,
// truncating at a word-safe point when cap is too small (the label is always kept when it fits).
int mav_emoji_caption(char *out, size_t cap, const char *label, char *const *tags, int ntags, int tmpl);

typedef enum { MAV_SPLIT_TRAIN = 0, MAV_SPLIT_VAL, MAV_SPLIT_TEST, MAV_SPLIT_COUNT } mav_split;
const char *mav_split_name(mav_split s);
int mav_split_from_name(const char *name);  // -1 when unknown; "all" is not a split

// Split n distinct concept keys: ordered by (hash, key), the first n_test are test, the next
// n_val validation, the rest train (counts clamp to n). split[i] receives concept i's split.
// Depends only on the set of keys, never on their order.
void mav_emoji_split(const char *const *concepts, int n, int n_test, int n_val, uint8_t *split);

#endif
