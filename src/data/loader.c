// loader.c — dataset indexing (manifest, webdataset tar, video folders, fluent-emoji caches),
// seeded batches and the prefetch thread (contracts in loader.h).
#include "data/loader.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <jansson.h>

#include "core/threads.h"
#include "data/cache.h"
#include "data/sample.h"

#define MAX_DRAWS 64  // draws per sample before a batch gives up (only when most items are bad)

typedef enum { SRC_FILE, SRC_TAR, SRC_CACHE } src_kind;

typedef struct {
    src_kind src;
    char *name;        // display name: path, "shard.tar:member" or cache key
    char *path;        // SRC_FILE: the file or frame folder
    int shard;         // SRC_TAR: index into ds->shards
    uint64_t off, size;  // SRC_TAR: payload bytes in the (uncompressed) shard
    uint8_t *mem;      // SRC_TAR: payload kept in memory (compressed shards) [size]
    char *caption;     // images: the caption (or the first of captions)
    char **captions;   // fluent-emoji images: every caption template [ncap]
    int ncap;
    int cache_i;       // SRC_CACHE: entry of ds->cache
} ds_item;

struct mav_dataset {
    mav_ds_kind kind;
    ds_item *it;  // [n, cap]
    int n, cap;
    char **shards;  // [nshards]
    int nshards;
    mav_cache cache;
    int has_cache, skipped;
    pthread_mutex_t mu;  // guards the bad list and is_bad (batches decode in parallel)
    char **bad;          // [nbad, capbad] "name: reason"
    int nbad, capbad;
    uint8_t *is_bad;  // [n]
};

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    MAV_ASSERT(d);
    memcpy(d, s, n);
    return d;
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    MAV_ASSERT(s);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static ds_item *add_item(mav_dataset *ds) {
    if (ds->n == ds->cap) {
        ds->cap = ds->cap ? 2 * ds->cap : 64;
        ds->it = realloc(ds->it, (size_t)ds->cap * sizeof *ds->it);
        MAV_ASSERT(ds->it);
    }
    ds_item *t = &ds->it[ds->n++];
    memset(t, 0, sizeof *t);
    return t;
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

// Lower-case extension after the last '.' of the base name ("" when none).
static void ext_of(const char *name, char *ext, size_t cap) {
    const char *base = strrchr(name, '/');
    base = base ? base + 1 : name;
    const char *dot = strrchr(base, '.');
    size_t i = 0;
    if (dot)
        for (dot++; *dot && i + 1 < cap; dot++) ext[i++] = (char)tolower((unsigned char)*dot);
    ext[i] = 0;
}

static int in_list(const char *ext, const char *const *list) {
    for (; *list; list++)
        if (strcmp(ext, *list) == 0) return 1;
    return 0;
}
static const char *const k_image_ext[] = {"png", "jpg", "jpeg", "webp", NULL};
static const char *const k_video_ext[] = {"mp4", "webm", "avi", "mkv", "mov", "mpeg", "mpg", "ogv", "gif", "webp", NULL};

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted names of a directory's entries (no dot files). Returns count; *out malloc'd.
static int list_dir(const char *dir, char ***out) {
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0, cap = 0;
    char **v = NULL;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            v = realloc(v, (size_t)cap * sizeof *v);
            MAV_ASSERT(v);
        }
        v[n++] = xstrdup(e->d_name);
    }
    closedir(d);
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

// ---------------------------------------------------------------- manifest (JSONL)

static mav_status open_manifest(mav_dataset *ds, const char *jsonl) {
    FILE *f = fopen(jsonl, "r");
    if (!f) return mav_fail(MAV_ERR_IO, "%s: %s", jsonl, strerror(errno));
    char *dir = xstrdup(jsonl);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = 0; else strcpy(dir, ".");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        while (len > 0 && isspace((unsigned char)line[len - 1])) line[--len] = 0;
        if (len == 0) continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        const char *img = o ? json_string_value(json_object_get(o, "image")) : NULL;
        const char *cap_s = o ? json_string_value(json_object_get(o, "caption")) : NULL;
        if (!img || !cap_s || !*img) {  // a bad line is skipped and counted, like a bad file
            ds->skipped++;
            json_decref(o);
            continue;
        }
        ds_item *t = add_item(ds);
        t->src = SRC_FILE;
        t->path = img[0] == '/' ? xstrdup(img) : join(dir, img);
        t->name = xstrdup(t->path);
        t->caption = xstrdup(cap_s);
        json_decref(o);
    }
    free(line);
    free(dir);
    fclose(f);
    return MAV_OK;
}

// ---------------------------------------------------------------- webdataset tar shards

typedef struct {
    char *key, *ext, *member;
    uint64_t off, size;
    uint8_t *mem;  // payload in memory ([size]), or NULL when (off, size) locate it in the shard
    int order;
} tar_rec;

static int cmp_rec(const void *a, const void *b) {
    const tar_rec *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->order - y->order;
}

// Read the rest of the current entry after `have` bytes already in buf[0..have) into mem.
static uint8_t *read_entry(struct archive *a, const uint8_t *head, size_t have, uint64_t size) {
    uint8_t *m = malloc(size ? size : 1);
    if (!m) return NULL;
    memcpy(m, head, have);
    size_t got = have;
    while (got < size) {
        la_ssize_t r = archive_read_data(a, m + got, size - got);
        if (r <= 0) { free(m); return NULL; }
        got += (size_t)r;
    }
    return m;
}

// Index one shard: members grouped by webdataset key (the base name up to its first '.').
// Payloads of an uncompressed shard are located by offset (checked against the first bytes
// libarchive returns); otherwise, and for captions, they are read into memory.
static mav_status index_shard(mav_dataset *ds, int shard, tar_rec **recs, int *nrec, int *caprec) {
    const char *path = ds->shards[shard];
    struct archive *a = archive_read_new();
    archive_read_support_filter_all(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        mav_status st = mav_fail(MAV_ERR_IO, "%s: %s", path, archive_error_string(a));
        archive_read_free(a);
        return st;
    }
    int fd = open(path, O_RDONLY);
    struct archive_entry *e;
    int r;
    while ((r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        if (archive_entry_filetype(e) != AE_IFREG) continue;
        const char *name = archive_entry_pathname(e);
        const char *base = strrchr(name, '/');
        base = base ? base + 1 : name;
        const char *dot = strchr(base, '.');
        if (!dot || base[0] == '.') continue;
        char ext[16];
        size_t el = 0;
        for (const char *q = dot + 1; *q && el + 1 < sizeof ext; q++) ext[el++] = (char)tolower((unsigned char)*q);
        ext[el] = 0;
        int want = ds->kind == MAV_DS_IMAGES ? (in_list(ext, k_image_ext) || strcmp(ext, "txt") == 0)
                                             : in_list(ext, k_video_ext);
        if (!want) continue;
        uint64_t size = (uint64_t)archive_entry_size(e);
        uint64_t off = (uint64_t)archive_filter_bytes(a, 0);  // uncompressed position = payload start
        uint8_t head[64];
        la_ssize_t h = archive_read_data(a, head, size < sizeof head ? (size_t)size : sizeof head);
        if (h < 0 || (uint64_t)h != (size < sizeof head ? size : sizeof head)) {
            ds->skipped++;  // truncated member
            continue;
        }
        uint8_t *mem = NULL;
        int by_offset = fd >= 0 && archive_filter_code(a, 0) == ARCHIVE_FILTER_NONE && strcmp(ext, "txt") != 0;
        if (by_offset) {
            uint8_t chk[64];
            by_offset = pread(fd, chk, (size_t)h, (off_t)off) == h && memcmp(chk, head, (size_t)h) == 0;
        }
        if (!by_offset && !(mem = read_entry(a, head, (size_t)h, size))) {
            ds->skipped++;
            continue;
        }
        if (*nrec == *caprec) {
            *caprec = *caprec ? 2 * *caprec : 256;
            *recs = realloc(*recs, (size_t)*caprec * sizeof **recs);
            MAV_ASSERT(*recs);
        }
        tar_rec *t = &(*recs)[(*nrec)++];
        size_t dir_len = (size_t)(base - name);
        t->key = malloc(dir_len + (size_t)(dot - base) + 16);
        MAV_ASSERT(t->key);
        snprintf(t->key, dir_len + (size_t)(dot - base) + 16, "%d/%.*s", shard, (int)(dot - name), name);
        t->ext = xstrdup(ext);
        t->member = xstrdup(name);
        t->off = off;
        t->size = size;
        t->mem = mem;
        t->order = *nrec;
    }
    if (r != ARCHIVE_EOF) ds->skipped++;  // a damaged tail: keep what was indexed
    if (fd >= 0) close(fd);
    archive_read_free(a);
    return MAV_OK;
}

static void rec_to_item(mav_dataset *ds, tar_rec *r, int shard) {
    ds_item *t = add_item(ds);
    t->src = SRC_TAR;
    t->shard = shard;
    t->off = r->off;
    t->size = r->size;
    t->mem = r->mem;
    r->mem = NULL;
    size_t n = strlen(ds->shards[shard]) + strlen(r->member) + 2;
    t->name = malloc(n);
    MAV_ASSERT(t->name);
    snprintf(t->name, n, "%s:%s", ds->shards[shard], r->member);
}

static mav_status open_shards(mav_dataset *ds, char **paths, int np) {
    ds->shards = paths;
    ds->nshards = np;
    tar_rec *recs = NULL;
    int nrec = 0, caprec = 0;
    mav_status st = MAV_OK;
    for (int s = 0; s < np && st == MAV_OK; s++) st = index_shard(ds, s, &recs, &nrec, &caprec);
    if (st == MAV_OK) {
        if (nrec > 0) qsort(recs, (size_t)nrec, sizeof *recs, cmp_rec);  // recs is NULL for an empty shard
        for (int i = 0; i < nrec;) {
            int j = i;
            while (j < nrec && strcmp(recs[j].key, recs[i].key) == 0) j++;
            int shard = atoi(recs[i].key);
            if (ds->kind == MAV_DS_VIDEOS) {
                for (int k = i; k < j; k++) rec_to_item(ds, &recs[k], shard);
            } else {
                tar_rec *img = NULL, *txt = NULL;
                for (int k = i; k < j; k++) {
                    if (strcmp(recs[k].ext, "txt") == 0) { if (!txt) txt = &recs[k]; }
                    else if (!img) img = &recs[k];
                }
                if (img && txt) {
                    rec_to_item(ds, img, shard);
                    char *c = malloc(txt->size + 1);
                    MAV_ASSERT(c);
                    memcpy(c, txt->mem, txt->size);
                    c[txt->size] = 0;
                    size_t L = txt->size;  // trim trailing whitespace / newline
                    while (L > 0 && isspace((unsigned char)c[L - 1])) c[--L] = 0;
                    ds->it[ds->n - 1].caption = c;
                } else {
                    ds->skipped++;  // an image without caption, or a caption without image
                }
            }
            i = j;
        }
    }
    for (int i = 0; i < nrec; i++) {
        free(recs[i].key);
        free(recs[i].ext);
        free(recs[i].member);
        free(recs[i].mem);
    }
    free(recs);
    return st;
}

// ---------------------------------------------------------------- fluent-emoji folders

// The cache <dir>/<prefix>-<res>.mavc with res == want, else the largest one.
static char *pick_cache(const char *dir, const char *prefix, int want) {
    char **names;
    int n = list_dir(dir, &names);
    int best = -1;
    char *path = NULL;
    size_t pl = strlen(prefix);
    for (int i = 0; i < n; i++) {
        char ext[8];
        ext_of(names[i], ext, sizeof ext);
        if (strncmp(names[i], prefix, pl) != 0 || names[i][pl] != '-' || strcmp(ext, "mavc") != 0) continue;
        int r = atoi(names[i] + pl + 1);
        if (r <= 0) continue;
        if ((want > 0 && r == want) || (best != want && r > best)) {
            best = r;
            free(path);
            path = join(dir, names[i]);
        }
    }
    free_names(names, n > 0 ? n : 0);
    return path;
}

static mav_status open_fluent(mav_dataset *ds, const char *dir, const mav_dataset_opts *o) {
    int images = ds->kind == MAV_DS_IMAGES;
    char *path = pick_cache(dir, images ? "images" : "clips", o->res);
    if (!path) return mav_fail(MAV_ERR_IO, "%s: no %s-<res>.mavc cache", dir, images ? "images" : "clips");
    mav_status st = mav_cache_open(&ds->cache, path);
    free(path);
    if (st != MAV_OK) return st;
    ds->has_cache = 1;
    json_t **meta = NULL;  // images: [cache.n] lines of images.jsonl, in cache order
    if (images) {
        char *jl = join(dir, "images.jsonl");
        FILE *f = fopen(jl, "r");
        if (!f) { st = mav_fail(MAV_ERR_IO, "%s: %s", jl, strerror(errno)); free(jl); return st; }
        meta = calloc((size_t)ds->cache.n + 1, sizeof *meta);
        MAV_ASSERT(meta);
        char *line = NULL;
        size_t cap = 0;
        int k = 0;
        while (getline(&line, &cap, f) >= 0 && k < ds->cache.n) {
            json_t *j = json_loads(line, 0, NULL);
            const char *key = json_string_value(json_object_get(j, "key"));
            if (!key || strcmp(key, ds->cache.index[k].key) != 0) {
                json_decref(j);
                st = mav_fail(MAV_ERR_FORMAT, "%s: line %d does not describe cache item \"%s\"", jl, k + 1,
                              ds->cache.index[k].key);
                break;
            }
            meta[k++] = j;
        }
        if (st == MAV_OK && k < ds->cache.n) st = mav_fail(MAV_ERR_FORMAT, "%s: %d lines for %d images", jl, k, ds->cache.n);
        free(line);
        fclose(f);
        free(jl);
    }
    for (int i = 0; i < ds->cache.n && st == MAV_OK; i++) {
        const mav_cache_entry *e = &ds->cache.index[i];
        if (o->split >= 0 && (int)e->split != o->split) continue;
        ds_item *t = add_item(ds);
        t->src = SRC_CACHE;
        t->cache_i = i;
        t->name = xstrdup(e->key);
        if (images) {
            json_t *caps = json_object_get(meta[i], "captions");
            const char *c = json_string_value(json_object_get(meta[i], "caption"));
            t->ncap = (int)json_array_size(caps);
            if (t->ncap > 0) {
                t->captions = calloc((size_t)t->ncap, sizeof *t->captions);
                MAV_ASSERT(t->captions);
                for (int k = 0; k < t->ncap; k++) {
                    const char *s = json_string_value(json_array_get(caps, (size_t)k));
                    t->captions[k] = xstrdup(s ? s : "");
                }
            }
            t->caption = xstrdup(c ? c : t->ncap ? t->captions[0] : e->key);
        }
    }
    if (meta)
        for (int i = 0; i < ds->cache.n; i++) json_decref(meta[i]);
    free(meta);
    return st;
}

// ---------------------------------------------------------------- video folders

static void add_video_folder(mav_dataset *ds, const char *dir) {
    char **names;
    int n = list_dir(dir, &names);
    for (int i = 0; i < n; i++) {
        char *p = join(dir, names[i]);
        char ext[16];
        ext_of(names[i], ext, sizeof ext);
        int take = is_dir(p) || (is_file(p) && in_list(ext, k_video_ext));  // sub-folders: frame folders
        if (take) {
            ds_item *t = add_item(ds);
            t->src = SRC_FILE;
            t->path = p;
            t->name = xstrdup(p);
        } else {
            free(p);
        }
    }
    free_names(names, n > 0 ? n : 0);
}

// ---------------------------------------------------------------- open / close

mav_status mav_dataset_open(mav_dataset **out, const char *path, mav_ds_kind kind, const mav_dataset_opts *o) {
    *out = NULL;
    mav_dataset_opts def = {0, 0, 0};
    if (!o) o = &def;
    if ((unsigned)kind >= MAV_DS_KIND_COUNT) return mav_fail(MAV_ERR_ARG, "bad dataset kind %d", (int)kind);
    mav_dataset *ds = calloc(1, sizeof *ds);
    MAV_ASSERT(ds);
    ds->kind = kind;
    pthread_mutex_init(&ds->mu, NULL);
    char ext[16];
    ext_of(path, ext, sizeof ext);
    mav_status st = MAV_OK;
    if (is_file(path) && strcmp(ext, "jsonl") == 0) {
        st = kind == MAV_DS_IMAGES ? open_manifest(ds, path)
                                   : mav_fail(MAV_ERR_ARG, "%s: a manifest holds images, not videos", path);
    } else if (is_file(path) && (strcmp(ext, "tar") == 0 || strstr(path, ".tar."))) {
        char **one = malloc(sizeof *one);
        MAV_ASSERT(one);
        one[0] = xstrdup(path);
        st = open_shards(ds, one, 1);
    } else if (is_dir(path)) {
        char *fl = join(path, "fluent-emoji.json"), *mf = join(path, "manifest.jsonl");
        if (is_file(fl)) {
            st = open_fluent(ds, path, o);
        } else if (kind == MAV_DS_IMAGES && is_file(mf)) {
            st = open_manifest(ds, mf);
        } else {
            char **names;
            int n = list_dir(path, &names), ns = 0;
            char **shards = calloc((size_t)(n > 0 ? n : 1), sizeof *shards);
            MAV_ASSERT(shards);
            for (int i = 0; i < n; i++) {
                char e2[16];
                ext_of(names[i], e2, sizeof e2);
                if (strcmp(e2, "tar") == 0 || strstr(names[i], ".tar.")) shards[ns++] = join(path, names[i]);
            }
            free_names(names, n > 0 ? n : 0);
            if (ns > 0) st = open_shards(ds, shards, ns);
            else {
                free(shards);
                if (kind == MAV_DS_VIDEOS) add_video_folder(ds, path);
                else st = mav_fail(MAV_ERR_FORMAT, "%s: no manifest.jsonl, .tar shards or fluent-emoji.json", path);
            }
        }
        free(fl);
        free(mf);
    } else {
        st = mav_fail(MAV_ERR_IO, "%s: not a manifest, tar shard or folder", path);
    }
    if (st == MAV_OK && o->max_items > 0 && ds->n > o->max_items) {
        mav_dataset tmp = *ds;  // free the items beyond max_items
        tmp.it = ds->it + o->max_items;
        tmp.n = ds->n - o->max_items;
        for (int i = 0; i < tmp.n; i++) {
            ds_item *t = &tmp.it[i];
            free(t->name); free(t->path); free(t->mem); free(t->caption);
            for (int k = 0; k < t->ncap; k++) free(t->captions[k]);
            free(t->captions);
        }
        ds->n = o->max_items;
    }
    if (st == MAV_OK && ds->n == 0) st = mav_fail(MAV_ERR_FORMAT, "%s: no %s found", path, kind == MAV_DS_IMAGES ? "captioned images" : "videos");
    if (st != MAV_OK) {
        mav_dataset_close(ds);
        return st;
    }
    ds->is_bad = calloc((size_t)ds->n, 1);
    MAV_ASSERT(ds->is_bad);
    *out = ds;
    return MAV_OK;
}

void mav_dataset_close(mav_dataset *ds) {
    if (!ds) return;
    for (int i = 0; i < ds->n; i++) {
        ds_item *t = &ds->it[i];
        free(t->name); free(t->path); free(t->mem); free(t->caption);
        for (int k = 0; k < t->ncap; k++) free(t->captions[k]);
        free(t->captions);
    }
    free(ds->it);
    free_names(ds->shards, ds->nshards);
    if (ds->has_cache) mav_cache_close(&ds->cache);
    free_names(ds->bad, ds->nbad);
    free(ds->is_bad);
    pthread_mutex_destroy(&ds->mu);
    free(ds);
}

int mav_dataset_size(const mav_dataset *ds) { return ds->n; }
const char *mav_dataset_item_name(const mav_dataset *ds, int i) { return ds->it[i].name; }
const char *mav_dataset_caption(const mav_dataset *ds, int i) { return ds->kind == MAV_DS_IMAGES ? ds->it[i].caption : NULL; }
int mav_dataset_skipped_count(const mav_dataset *ds) { return ds->skipped; }

int mav_dataset_bad_count(mav_dataset *ds) {
    pthread_mutex_lock(&ds->mu);
    int n = ds->nbad;
    pthread_mutex_unlock(&ds->mu);
    return n;
}

const char *mav_dataset_bad(mav_dataset *ds, int k) {
    pthread_mutex_lock(&ds->mu);
    const char *s = k >= 0 && k < ds->nbad ? ds->bad[k] : NULL;
    pthread_mutex_unlock(&ds->mu);
    return s;
}

static int known_bad(mav_dataset *ds, int i) {
    pthread_mutex_lock(&ds->mu);
    int b = ds->is_bad[i];
    pthread_mutex_unlock(&ds->mu);
    return b;
}

static void mark_bad(mav_dataset *ds, int i, const char *why) {
    pthread_mutex_lock(&ds->mu);
    if (!ds->is_bad[i]) {
        ds->is_bad[i] = 1;
        if (ds->nbad == ds->capbad) {
            ds->capbad = ds->capbad ? 2 * ds->capbad : 16;
            ds->bad = realloc(ds->bad, (size_t)ds->capbad * sizeof *ds->bad);
            MAV_ASSERT(ds->bad);
        }
        size_t n = strlen(ds->it[i].name) + strlen(why) + 3;
        char *s = malloc(n);
        MAV_ASSERT(s);
        snprintf(s, n, "%s: %s", ds->it[i].name, why);
        ds->bad[ds->nbad++] = s;
    }
    pthread_mutex_unlock(&ds->mu);
}

// Decode item i without touching the bad list.
static mav_status read_item(mav_dataset *ds, int i, int max_frames, mav_frames *out) {
    ds_item *t = &ds->it[i];
    memset(out, 0, sizeof *out);
    if (t->src == SRC_FILE) return mav_media_read(t->path, max_frames, out);
    if (t->src == SRC_CACHE) {
        const mav_cache_entry *e = &ds->cache.index[t->cache_i];
        int n = (int)e->n_frames;
        if (max_frames > 0 && n > max_frames) n = max_frames;
        mav_status st = mav_frames_alloc(out, ds->cache.w, ds->cache.h, n, e->fps);
        if (st == MAV_OK) memcpy(out->rgb, mav_cache_frames(&ds->cache, t->cache_i), (size_t)n * ds->cache.w * ds->cache.h * 3);
        return st;
    }
    if (t->mem) return mav_media_read_memory(t->mem, t->size, t->name, max_frames, out);
    uint8_t *buf = malloc(t->size ? t->size : 1);
    if (!buf) return mav_fail(MAV_ERR_NOMEM, "%s: out of memory", t->name);
    int fd = open(ds->shards[t->shard], O_RDONLY);
    mav_status st = MAV_OK;
    if (fd < 0 || pread(fd, buf, t->size, (off_t)t->off) != (ssize_t)t->size)
        st = mav_fail(MAV_ERR_IO, "%s: short read", t->name);
    if (fd >= 0) close(fd);
    if (st == MAV_OK) st = mav_media_read_memory(buf, t->size, t->name, max_frames, out);
    free(buf);
    return st;
}

mav_status mav_dataset_read(mav_dataset *ds, int i, int max_frames, mav_frames *out) {
    if (i < 0 || i >= ds->n) return mav_fail(MAV_ERR_ARG, "dataset item %d out of range [0, %d)", i, ds->n);
    mav_status st = read_item(ds, i, max_frames, out);
    if (st != MAV_OK) mark_bad(ds, i, mav_last_error());
    return st;
}

// ---------------------------------------------------------------- batches

mav_status mav_batch_alloc(mav_batch *b, int B, int F, int res) {
    memset(b, 0, sizeof *b);
    if (B <= 0 || F <= 0 || res <= 0) return mav_fail(MAV_ERR_ARG, "bad batch shape B=%d F=%d res=%d", B, F, res);
    b->B = B;
    b->F = F;
    b->res = res;
    b->x = malloc((size_t)B * F * 3 * res * res * sizeof *b->x);
    b->fps = calloc((size_t)B, sizeof *b->fps);
    b->caption = calloc((size_t)B, sizeof *b->caption);
    b->item = calloc((size_t)B, sizeof *b->item);
    if (!b->x || !b->fps || !b->caption || !b->item) {
        mav_batch_free(b);
        return mav_fail(MAV_ERR_NOMEM, "batch [%d, %d, 3, %d, %d]: out of memory", B, F, res, res);
    }
    return MAV_OK;
}

void mav_batch_free(mav_batch *b) {
    free(b->x);
    free(b->fps);
    free(b->caption);
    free(b->item);
    memset(b, 0, sizeof *b);
}

// Copy frames idx[F] of src into a new F-frame set, resize/crop to res and write f32 to x.
static mav_status pick_to_f32(float *x, const uint8_t *rgb, int w, int h, const int *idx, int F, double fps, int res) {
    mav_frames sel, out;
    mav_status st = mav_frames_alloc(&sel, w, h, F, fps);
    if (st != MAV_OK) return st;
    size_t fb = (size_t)w * h * 3;
    for (int k = 0; k < F; k++) memcpy(sel.rgb + k * fb, rgb + (size_t)idx[k] * fb, fb);
    st = mav_frames_resize_crop(&out, &sel, res, res);
    mav_frames_free(&sel);
    if (st != MAV_OK) return st;
    mav_frames_to_f32(x, &out);
    mav_frames_free(&out);
    return MAV_OK;
}

// One sample: draw items from r until one decodes (and, for clips, has >= F frames).
static mav_status one_sample(mav_dataset *ds, mav_rng *r, int F, int res, int video, float *x, float *fps,
                             const char **caption, int *item) {
    int n_short = 0;
    for (int draw = 0; draw < MAX_DRAWS; draw++) {
        int i = (int)mav_rng_below(r, (uint32_t)ds->n);
        float u[4];
        mav_rng_uniform(r, u, 4);  // always drawn, so a sample's stream does not depend on outcomes
        // Known-bad items fail again when decoded: skipping them early gives the same result.
        if (known_bad(ds, i)) continue;
        ds_item *t = &ds->it[i];
        int idx[1024];
        if (F > (int)(sizeof idx / sizeof idx[0])) return mav_fail(MAV_ERR_ARG, "F = %d frames is too many", F);
        if (t->src == SRC_CACHE) {  // straight from the mapping: only the frames used are copied
            const mav_cache_entry *e = &ds->cache.index[t->cache_i];
            double f = 0;
            if (video) {
                f = mav_sample_clip((int)e->n_frames, e->fps, F, 1, 30, u[0], u[1], idx);
                if (f < 0) { n_short++; continue; }
            } else {
                idx[0] = 0;
            }
            mav_status st = pick_to_f32(x, mav_cache_frames(&ds->cache, t->cache_i), ds->cache.w, ds->cache.h, idx,
                                        video ? F : 1, e->fps, res);
            if (st != MAV_OK) return st;
            *fps = (float)f;
        } else {
            mav_frames fr;
            mav_status st = read_item(ds, i, video ? 0 : 1, &fr);
            if (st != MAV_OK) {
                mark_bad(ds, i, mav_last_error());
                continue;
            }
            double f = 0;
            if (video) {
                // A source without a rate (a still image read as video) cannot be sampled in time.
                f = mav_sample_clip(fr.n, fr.fps > 0 ? fr.fps : 0, F, 1, 30, u[0], u[1], idx);
                if (f < 0) { mav_frames_free(&fr); n_short++; continue; }
            } else {
                idx[0] = 0;
            }
            st = pick_to_f32(x, fr.rgb, fr.w, fr.h, idx, video ? F : 1, fr.fps, res);
            mav_frames_free(&fr);
            if (st != MAV_OK) return st;
            *fps = (float)f;
        }
        *item = i;
        if (!video) *caption = t->ncap > 0 ? t->captions[(int)(u[2] * (float)t->ncap) % t->ncap] : t->caption;
        return MAV_OK;
    }
    return mav_fail(MAV_ERR_FORMAT, "no usable item after %d draws (%d bad files so far, %d clips shorter than %d frames)",
                    MAX_DRAWS, mav_dataset_bad_count(ds), n_short, F);
}

static mav_status make_batch(mav_dataset *ds, int B, int F, int res, int video, mav_rng *rng, mav_batch *out,
                             int threads) {
    if (out->B != B || out->F != (video ? F : 1) || out->res != res || !out->x)
        return mav_fail(MAV_ERR_ARG, "batch buffers are [%d, %d, %d], need [%d, %d, %d]", out->B, out->F, out->res, B,
                        video ? F : 1, res);
    if (F <= 0 || res <= 0) return mav_fail(MAV_ERR_ARG, "bad F=%d res=%d", F, res);
    uint64_t base = (uint64_t)mav_rng_u32(rng) << 32 | mav_rng_u32(rng);
    size_t per = (size_t)(video ? F : 1) * 3 * res * res;
    mav_status *st = calloc((size_t)B, sizeof *st);
    char(*msg)[256] = calloc((size_t)B, sizeof *msg);
    MAV_ASSERT(st && msg);
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int j = 0; j < B; j++) {
        mav_rng r = mav_rng_fork(base, (uint64_t)j);
        out->caption[j] = NULL;
        st[j] = one_sample(ds, &r, video ? F : 1, res, video, out->x + (size_t)j * per, &out->fps[j], &out->caption[j],
                           &out->item[j]);
        if (st[j] != MAV_OK) snprintf(msg[j], sizeof msg[j], "%s", mav_last_error());
    }
    mav_status s = MAV_OK;
    for (int j = 0; j < B && s == MAV_OK; j++)
        if (st[j] != MAV_OK) s = mav_fail(st[j], "batch sample %d: %s", j, msg[j]);
    free(st);
    free(msg);
    return s;
}

mav_status mav_image_batch(mav_dataset *ds, int B, int res, mav_rng *rng, mav_batch *out) {
    return make_batch(ds, B, 1, res, 0, rng, out, mav_threads_get());
}

mav_status mav_clip_batch(mav_dataset *ds, int B, int F, int res, mav_rng *rng, mav_batch *out) {
    return make_batch(ds, B, F, res, 1, rng, out, mav_threads_get());
}

// ---------------------------------------------------------------- prefetch

struct mav_prefetch {
    mav_dataset *ds;
    int video, B, F, res;
    mav_rng rng;          // state after the batch being prepared / ready
    mav_rng handed_rng;   // state after the last batch handed out
    mav_batch next;
    mav_status st;
    char msg[512];
    int ready, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
};

static void *prefetch_main(void *arg) {
    mav_prefetch *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->ready && !p->stop) pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop) break;
        pthread_mutex_unlock(&p->mu);
        // One decoding thread: the trainer's OpenMP team keeps the cores.
        mav_status st = make_batch(p->ds, p->B, p->F, p->res, p->video, &p->rng, &p->next, 1);
        pthread_mutex_lock(&p->mu);
        p->st = st;
        if (st != MAV_OK) snprintf(p->msg, sizeof p->msg, "%s", mav_last_error());
        p->ready = 1;
        pthread_cond_broadcast(&p->cv);
        if (st != MAV_OK) break;
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

mav_status mav_prefetch_start(mav_prefetch **out, mav_dataset *ds, mav_ds_kind kind, int B, int F, int res, mav_rng rng) {
    *out = NULL;
    mav_prefetch *p = calloc(1, sizeof *p);
    MAV_ASSERT(p);
    p->ds = ds;
    p->video = kind == MAV_DS_VIDEOS;
    p->B = B;
    p->F = p->video ? F : 1;
    p->res = res;
    p->rng = p->handed_rng = rng;
    mav_status st = mav_batch_alloc(&p->next, B, p->F, res);
    if (st != MAV_OK) { free(p); return st; }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->th, NULL, prefetch_main, p) != 0) {
        mav_batch_free(&p->next);
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        free(p);
        return mav_fail(MAV_ERR_NOMEM, "cannot start the prefetch thread");
    }
    *out = p;
    return MAV_OK;
}

mav_status mav_prefetch_next(mav_prefetch *p, mav_batch *out) {
    if (out->B != p->B || out->F != p->F || out->res != p->res)
        return mav_fail(MAV_ERR_ARG, "batch buffers are [%d, %d, %d], prefetch makes [%d, %d, %d]", out->B, out->F,
                        out->res, p->B, p->F, p->res);
    pthread_mutex_lock(&p->mu);
    while (!p->ready) pthread_cond_wait(&p->cv, &p->mu);
    mav_status st = p->st;
    if (st == MAV_OK) {
        mav_batch t = *out;
        *out = p->next;
        p->next = t;
        p->handed_rng = p->rng;
        p->ready = 0;
        pthread_cond_broadcast(&p->cv);
    } else {
        mav_fail(st, "%s", p->msg);
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

mav_rng mav_prefetch_rng(const mav_prefetch *p) { return p->handed_rng; }

void mav_prefetch_stop(mav_prefetch *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    mav_batch_free(&p->next);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
