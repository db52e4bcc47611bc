// emoji.c — hexcode normalisation, emojibase labels, captions and the concept split.
#include "data/emoji.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

// Walk the '-' (or '_') separated code points of hex, drop the modifiers, write the rest canonically.
static mav_status filter_hex(char *out, size_t cap, const char *hex, int drop_tones) {
    if (!hex || !*hex) return mav_fail(MAV_ERR_FORMAT, "empty hexcode");
    size_t o = 0;
    const char *p = hex;
    while (*p) {
        const char *q = p;
        size_t len = 0;
        while (*q && *q != '-' && *q != '_') {
            if (!isxdigit((unsigned char)*q) || ++len > 8) return mav_fail(MAV_ERR_FORMAT, "bad hexcode \"%s\"", hex);
            q++;
        }
        if (len == 0) return mav_fail(MAV_ERR_FORMAT, "bad hexcode \"%s\"", hex);
        // Canonical spelling: the code point's value, lower case, at least 4 digits ("23" == "0023").
        unsigned long cp = strtoul(p, NULL, 16);
        int drop = cp == 0xfe0f || cp == 0xe007f || (drop_tones && cp >= 0x1f3fb && cp <= 0x1f3ff);
        if (!drop) {
            char g[16];
            int gl = snprintf(g, sizeof g, "%04lx", cp);
            if (o + (o > 0) + (size_t)gl + 1 > cap) return mav_fail(MAV_ERR_FORMAT, "hexcode too long \"%s\"", hex);
            if (o > 0) out[o++] = '-';
            memcpy(out + o, g, (size_t)gl);
            o += (size_t)gl;
        }
        p = *q ? q + 1 : q;
        if (*q && !*p) return mav_fail(MAV_ERR_FORMAT, "bad hexcode \"%s\"", hex);
    }
    if (o == 0) return mav_fail(MAV_ERR_FORMAT, "hexcode \"%s\" has no code point besides modifiers", hex);
    out[o] = 0;
    return MAV_OK;
}

mav_status mav_emoji_norm_hex(char *out, size_t cap, const char *hex) { return filter_hex(out, cap, hex, 0); }
mav_status mav_emoji_concept(char *out, size_t cap, const char *hex) { return filter_hex(out, cap, hex, 1); }

uint64_t mav_emoji_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return h;
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const mav_emoji_entry *)a)->hex, ((const mav_emoji_entry *)b)->hex);
}

// Append one entry (hex, label, tags of `tags_src`) to db; db->e has room.
static mav_status add_entry(mav_emoji_db *db, const char *hexcode, const char *label, json_t *tags_src) {
    char hex[MAV_EMOJI_HEX_MAX];
    if (mav_emoji_norm_hex(hex, sizeof hex, hexcode) != MAV_OK) return MAV_ERR_FORMAT;
    mav_emoji_entry *e = &db->e[db->n];
    memset(e, 0, sizeof *e);
    e->hex = xstrdup(hex);
    e->label = xstrdup(label);
    size_t nt = json_is_array(tags_src) ? json_array_size(tags_src) : 0;
    e->tags = calloc(nt ? nt : 1, sizeof *e->tags);
    if (!e->hex || !e->label || !e->tags) return mav_fail(MAV_ERR_NOMEM, "emojibase: out of memory");
    db->n++;
    for (size_t i = 0; i < nt; i++) {
        const char *t = json_string_value(json_array_get(tags_src, i));
        if (!t) continue;
        if (!(e->tags[e->ntags] = xstrdup(t))) return mav_fail(MAV_ERR_NOMEM, "emojibase: out of memory");
        e->ntags++;
    }
    return MAV_OK;
}

mav_status mav_emoji_db_load(mav_emoji_db *db, const char *path) {
    memset(db, 0, sizeof *db);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) return mav_fail(MAV_ERR_FORMAT, "%s:%d: %s", path, jerr.line, jerr.text);
    mav_status st = MAV_OK;
    if (!json_is_array(root)) { st = mav_fail(MAV_ERR_FORMAT, "%s: expected a JSON array", path); goto done; }
    size_t cap = 0, i;
    json_t *it;
    json_array_foreach(root, i, it) cap += 1 + json_array_size(json_object_get(it, "skins"));
    db->e = calloc(cap ? cap : 1, sizeof *db->e);
    if (!db->e) { st = mav_fail(MAV_ERR_NOMEM, "%s: out of memory", path); goto done; }
    json_array_foreach(root, i, it) {
        const char *hex = json_string_value(json_object_get(it, "hexcode"));
        const char *label = json_string_value(json_object_get(it, "label"));
        if (!hex || !label) continue;  // emojibase has no such entries; tolerate them anyway
        json_t *tags = json_object_get(it, "tags");
        if ((st = add_entry(db, hex, label, tags)) != MAV_OK) {
            if (st == MAV_ERR_NOMEM) goto done;
            st = MAV_OK;  // an unparseable hexcode: skip the entry
            continue;
        }
        size_t j;
        json_t *sk;
        json_array_foreach(json_object_get(it, "skins"), j, sk) {
            const char *shex = json_string_value(json_object_get(sk, "hexcode"));
            const char *slabel = json_string_value(json_object_get(sk, "label"));
            if (!shex || !slabel) continue;
            if ((st = add_entry(db, shex, slabel, tags)) == MAV_ERR_NOMEM) goto done;
            st = MAV_OK;
        }
    }
    qsort(db->e, (size_t)db->n, sizeof *db->e, cmp_entry);
done:
    json_decref(root);
    if (st != MAV_OK) mav_emoji_db_free(db);
    return st;
}

void mav_emoji_db_free(mav_emoji_db *db) {
    for (int i = 0; i < db->n; i++) {
        for (int t = 0; t < db->e[i].ntags; t++) free(db->e[i].tags[t]);
        free(db->e[i].tags);
        free(db->e[i].hex);
        free(db->e[i].label);
    }
    free(db->e);
    memset(db, 0, sizeof *db);
}

const mav_emoji_entry *mav_emoji_db_find(const mav_emoji_db *db, const char *hex) {
    char key[MAV_EMOJI_HEX_MAX];
    if (!db->n || mav_emoji_norm_hex(key, sizeof key, hex) != MAV_OK) {
        mav_clear_error();
        return NULL;
    }
    mav_emoji_entry probe = {.hex = key};
    return bsearch(&probe, db->e, (size_t)db->n, sizeof *db->e, cmp_entry);
}

// Append s to out[0..*len) only if all of it fits (so captions never end mid-word).
static int append(char *out, size_t cap, size_t *len, const char *s) {
    size_t n = strlen(s);
    if (*len + n + 1 > cap) return 0;
    memcpy(out + *len, s, n + 1);
    *len += n;
    return 1;
}

int mav_emoji_caption(char *out, size_t cap, const char *label, char *const *tags, int ntags, int tmpl) {
    if (cap == 0) return 0;
    out[0] = 0;
    size_t len = 0;
    tmpl = ((tmpl % MAV_EMOJI_N_TEMPLATES) + MAV_EMOJI_N_TEMPLATES) % MAV_EMOJI_N_TEMPLATES;
    if (tmpl == 2) append(out, cap, &len, "a 3d ");
    if (!append(out, cap, &len, label)) {  // label alone does not fit: truncate it (cap - 1 bytes)
        len = strlen(label) < cap - 1 ? strlen(label) : cap - 1;
        memcpy(out, label, len);
        out[len] = 0;
        return (int)len;
    }
    if (tmpl == 1) append(out, cap, &len, " emoji");
    if (tmpl == 2) {
        for (int t = 0; t < ntags && t < 2; t++)
            if (strcmp(tags[t], label) != 0 && (!append(out, cap, &len, ", ") || !append(out, cap, &len, tags[t]))) break;
    }
    if (tmpl == 3 && ntags > 0) {
        size_t keep = len;
        if (append(out, cap, &len, ":")) {
            int any = 0;
            for (int t = 0; t < ntags; t++) {
                size_t before = len;
                if (!append(out, cap, &len, any ? ", " : " ") || !append(out, cap, &len, tags[t])) {
                    len = before;
                    out[len] = 0;
                    break;
                }
                any = 1;
            }
            if (!any) { len = keep; out[len] = 0; }
        }
    }
    // A dangling ", " can be left when a tag did not fit after its separator: trim it.
    while (len >= 2 && out[len - 2] == ',' && out[len - 1] == ' ') out[len -= 2] = 0;
    return (int)len;
}

static const char *k_split_names[MAV_SPLIT_COUNT] = {"train", "val", "test"};
const char *mav_split_name(mav_split s) { return (unsigned)s < MAV_SPLIT_COUNT ? k_split_names[s] : "?"; }
int mav_split_from_name(const char *name) {
    for (int i = 0; i < MAV_SPLIT_COUNT; i++)
        if (strcmp(name, k_split_names[i]) == 0) return i;
    if (strcmp(name, "validation") == 0) return MAV_SPLIT_VAL;
    return -1;
}

typedef struct {
    uint64_t h;
    const char *key;
    int idx;
} split_item;

static int cmp_split(const void *a, const void *b) {
    const split_item *x = a, *y = b;
    if (x->h != y->h) return x->h < y->h ? -1 : 1;
    return strcmp(x->key, y->key);
}

void mav_emoji_split(const char *const *concepts, int n, int n_test, int n_val, uint8_t *split) {
    split_item *it = malloc((size_t)(n > 0 ? n : 1) * sizeof *it);
    MAV_ASSERT(it);
    for (int i = 0; i < n; i++) it[i] = (split_item){mav_emoji_hash(concepts[i]), concepts[i], i};
    qsort(it, (size_t)n, sizeof *it, cmp_split);
    for (int r = 0; r < n; r++)
        split[it[r].idx] = r < n_test ? MAV_SPLIT_TEST : r < n_test + n_val ? MAV_SPLIT_VAL : MAV_SPLIT_TRAIN;
    free(it);
}
