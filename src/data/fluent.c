// fluent.c — `mav data fluent-emoji`: raw npm packages -> caches, manifests, split, summary.
#include "data/fluent.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>

#include "core/threads.h"
#include "data/cache.h"
#include "data/emoji.h"
#include "media/media.h"

#define CHUNK 32  // files decoded in parallel before being appended in order (bounded memory)

typedef struct {
    char *key;      // file stem: the lower-case hexcode
    char *path;
    char concept[MAV_EMOJI_HEX_MAX];
    char norm[MAV_EMOJI_HEX_MAX];  // normalised hexcode ("" when the name is not one)
    int order;                     // position in the list (dedupe keeps the first)
    int split;
    int frames;     // clips: from the probe
    const mav_emoji_entry *e;  // stills: emojibase entry (NULL: unlabeled)
} src_file;

typedef struct {
    src_file *v;
    int n, cap;
} file_list;

typedef struct {  // the bad-file list of the summary
    char **v;
    int n, cap;
} str_list;

static void str_push(str_list *l, const char *a, const char *b) {
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
        MAV_ASSERT(l->v);
    }
    size_t n = strlen(a) + strlen(b) + 3;
    l->v[l->n] = malloc(n);
    MAV_ASSERT(l->v[l->n]);
    snprintf(l->v[l->n++], n, "%s: %s", a, b);
}

static int cmp_file(const void *a, const void *b) { return strcmp(((const src_file *)a)->key, ((const src_file *)b)->key); }

// Append dir's *.webp files (sorted by name) to l; a missing folder is an error.
static mav_status list_webp(const char *dir, file_list *l) {
    DIR *d = opendir(dir);
    if (!d) return mav_fail(MAV_ERR_IO, "%s: %s (run scripts/get-data first)", dir, strerror(errno));
    int first = l->n;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len < 6 || strcmp(e->d_name + len - 5, ".webp") != 0 || e->d_name[0] == '.') continue;
        if (l->n == l->cap) {
            l->cap = l->cap ? 2 * l->cap : 1024;
            l->v = realloc(l->v, (size_t)l->cap * sizeof *l->v);
            MAV_ASSERT(l->v);
        }
        src_file *f = &l->v[l->n++];
        memset(f, 0, sizeof *f);
        f->key = strndup(e->d_name, len - 5);
        size_t pn = strlen(dir) + len + 2;
        f->path = malloc(pn);
        MAV_ASSERT(f->key && f->path);
        snprintf(f->path, pn, "%s/%s", dir, e->d_name);
    }
    closedir(d);
    qsort(l->v + first, (size_t)(l->n - first), sizeof *l->v, cmp_file);
    return MAV_OK;
}

static void free_list(file_list *l) {
    for (int i = 0; i < l->n; i++) { free(l->v[i].key); free(l->v[i].path); }
    free(l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_norm(const void *a, const void *b) {
    const src_file *x = a, *y = b;
    int c = strcmp(x->norm, y->norm);
    return c ? c : x->order - y->order;
}
static int cmp_order(const void *a, const void *b) { return ((const src_file *)a)->order - ((const src_file *)b)->order; }

// Drop files whose normalised hexcode repeats an earlier one ("23-fe0f-20e3" after
// "0023-fe0f-20e3": the 3d package ships both spellings); they are listed in dups.
static void dedupe(file_list *l, json_t *dups) {
    for (int i = 0; i < l->n; i++) {
        l->v[i].order = i;
        if (mav_emoji_norm_hex(l->v[i].norm, sizeof l->v[i].norm, l->v[i].key) != MAV_OK) {
            l->v[i].norm[0] = 0;
            mav_clear_error();
        }
    }
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_norm);
    int m = 0;
    for (int i = 0; i < l->n; i++) {
        if (m > 0 && l->v[i].norm[0] && strcmp(l->v[i].norm, l->v[m - 1].norm) == 0) {
            json_array_append_new(dups, json_string(l->v[i].path));
            free(l->v[i].key);
            free(l->v[i].path);
            continue;
        }
        l->v[m++] = l->v[i];
    }
    l->n = m;
    qsort(l->v, (size_t)l->n, sizeof *l->v, cmp_order);
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Decoded and resized versions of one file: rs[s] is the file at sizes[s] (n frames each).
typedef struct {
    mav_status st;
    char msg[256];
    mav_frames rs[8];
} decoded;

static void decode_one(const src_file *f, int max_frames, const int *sizes, int n_sizes, decoded *d) {
    mav_frames fr;
    memset(d, 0, sizeof *d);
    d->st = mav_media_read(f->path, max_frames, &fr);
    for (int s = 0; s < n_sizes && d->st == MAV_OK; s++) d->st = mav_frames_resize_crop(&d->rs[s], &fr, sizes[s], sizes[s]);
    if (d->st != MAV_OK) snprintf(d->msg, sizeof d->msg, "%s", mav_last_error());
    mav_frames_free(&fr);
}

static void decoded_free(decoded *d, int n_sizes) {
    for (int s = 0; s < n_sizes; s++) mav_frames_free(&d->rs[s]);
}

static mav_status open_caches(mav_cache_writer *cw, const mav_fluent_opts *o, const char *prefix) {
    for (int s = 0; s < o->n_sizes; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s-%d.mavc", o->out, prefix, o->sizes[s]);
        mav_status st = mav_cache_create(&cw[s], path, o->sizes[s], o->sizes[s]);
        if (st != MAV_OK) {
            for (int k = 0; k < s; k++) mav_cache_abort(&cw[k]);
            return st;
        }
    }
    return MAV_OK;
}

// Decode files[0..n) in parallel chunks and append them, in order, to the caches; write_meta
// adds each item's JSONL line. Failures go to bad.
static mav_status encode_all(const mav_fluent_opts *o, src_file *files, int n, int max_frames, mav_cache_writer *cw,
                             FILE *jsonl, int clips, str_list *bad, int *n_ok, long *frames, int by_split[3],
                             FILE *progress) {
    decoded *d = calloc(CHUNK, sizeof *d);
    MAV_ASSERT(d);
    mav_status st = MAV_OK;
    for (int c0 = 0; c0 < n && st == MAV_OK; c0 += CHUNK) {
        int m = n - c0 < CHUNK ? n - c0 : CHUNK;
#pragma omp parallel for schedule(dynamic, 1) num_threads(mav_threads_get())
        for (int k = 0; k < m; k++) decode_one(&files[c0 + k], max_frames, o->sizes, o->n_sizes, &d[k]);
        for (int k = 0; k < m && st == MAV_OK; k++) {  // in file order: the output is deterministic
            src_file *f = &files[c0 + k];
            if (d[k].st != MAV_OK) {
                str_push(bad, f->path, d[k].msg);
            } else if (clips && d[k].rs[0].n < 2) {
                str_push(bad, f->path, "probed as animated but decoded to one frame");
            } else {
                double fps = d[k].rs[0].fps > 0 ? d[k].rs[0].fps : 1;  // a still has no rate; the cache needs one
                for (int s = 0; s < o->n_sizes && st == MAV_OK; s++)
                    st = mav_cache_add(&cw[s], f->key, d[k].rs[s].rgb, d[k].rs[s].n, fps, f->split);
                json_t *j = json_object();
                json_object_set_new(j, "key", json_string(f->key));
                json_object_set_new(j, "concept", json_string(f->concept));
                json_object_set_new(j, "split", json_string(mav_split_name((mav_split)f->split)));
                if (clips) {
                    json_object_set_new(j, "frames", json_integer(d[k].rs[0].n));
                    json_object_set_new(j, "fps", json_real(fps));
                } else {
                    const mav_emoji_entry *e = f->e;
                    json_t *tags = json_array(), *caps = json_array();
                    for (int t = 0; t < e->ntags; t++) json_array_append_new(tags, json_string(e->tags[t]));
                    char cap[512];
                    for (int t = 0; t < MAV_EMOJI_N_TEMPLATES; t++) {
                        mav_emoji_caption(cap, sizeof cap, e->label, e->tags, e->ntags, t);
                        json_array_append_new(caps, json_string(cap));
                    }
                    mav_emoji_caption(cap, sizeof cap, e->label, e->tags, e->ntags, (int)(mav_emoji_hash(f->key) % MAV_EMOJI_N_TEMPLATES));
                    json_object_set_new(j, "label", json_string(e->label));
                    json_object_set_new(j, "tags", tags);
                    json_object_set_new(j, "caption", json_string(cap));
                    json_object_set_new(j, "captions", caps);
                }
                char *line = json_dumps(j, JSON_COMPACT | JSON_ENSURE_ASCII);
                fprintf(jsonl, "%s\n", line);
                free(line);
                json_decref(j);
                (*n_ok)++;
                *frames += d[k].rs[0].n;
                by_split[f->split]++;
            }
        }
        for (int k = 0; k < m; k++) decoded_free(&d[k], o->n_sizes);
        if (progress) fprintf(progress, "\r%s: %d/%d", clips ? "clips" : "images", c0 + m, n), fflush(progress);
    }
    if (progress) fprintf(progress, "\n");
    free(d);
    return st;
}

mav_status mav_fluent_build(const mav_fluent_opts *o, FILE *progress, char **summary) {
    if (summary) *summary = NULL;
    if (o->n_sizes < 1 || o->n_sizes > 8) return mav_fail(MAV_ERR_ARG, "1 to 8 sizes, got %d", o->n_sizes);
    for (int s = 0; s < o->n_sizes; s++)
        if (o->sizes[s] < 1 || o->sizes[s] > 4096) return mav_fail(MAV_ERR_ARG, "bad size %d", o->sizes[s]);
    double t0 = now_s();
    char path[4096];
    mav_emoji_db db;
    snprintf(path, sizeof path, "%s/emojibase-data/package/en/data.json", o->raw);
    mav_status st = mav_emoji_db_load(&db, path);
    if (st != MAV_OK) {
        mav_error_prefix("%s is not a scripts/get-data folder (run scripts/get-data %s)", o->raw, o->raw);
        return st;
    }
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST) {
        mav_emoji_db_free(&db);
        return mav_fail(MAV_ERR_IO, "%s: %s", o->out, strerror(errno));
    }
    file_list stills = {0}, anim = {0}, clips = {0};
    str_list bad = {0};
    FILE *jl = NULL;
    json_t *sum = NULL;
    mav_cache_writer cw[8];
    snprintf(path, sizeof path, "%s/fluent-emoji-3d/package/assets", o->raw);
    if ((st = list_webp(path, &stills)) != MAV_OK) goto done;
    for (int p = 1; p <= 4 && st == MAV_OK; p++) {
        snprintf(path, sizeof path, "%s/fluent-emoji-anim-%d/package/assets", o->raw, p);
        st = list_webp(path, &anim);
    }
    if (st != MAV_OK) goto done;
    int n_stills_all = stills.n, n_anim = anim.n;
    for (int pass = 0; pass < 2 && o->limit > 0; pass++) {  // keep the first `limit` of each kind
        file_list *l = pass ? &anim : &stills;
        for (int i = o->limit; i < l->n; i++) { free(l->v[i].key); free(l->v[i].path); }
        if (l->n > o->limit) l->n = o->limit;
    }
    // Animated files: probe headers; frames > 1 makes a clip.
    int *frames = calloc((size_t)anim.n + 1, sizeof *frames);
    char(*pmsg)[256] = calloc((size_t)anim.n + 1, sizeof *pmsg);
    MAV_ASSERT(frames && pmsg);
#pragma omp parallel for schedule(dynamic, 16) num_threads(mav_threads_get())
    for (int i = 0; i < anim.n; i++) {
        mav_media_info info;
        if (mav_media_probe(anim.v[i].path, &info) == MAV_OK) frames[i] = info.frames;
        else { frames[i] = -1; snprintf(pmsg[i], sizeof pmsg[i], "%s", mav_last_error()); }
    }
    for (int i = 0; i < anim.n; i++) {
        if (frames[i] < 0) str_push(&bad, anim.v[i].path, pmsg[i]);
        if (frames[i] < 2) continue;
        if (clips.n == clips.cap) {
            clips.cap = clips.cap ? 2 * clips.cap : 256;
            clips.v = realloc(clips.v, (size_t)clips.cap * sizeof *clips.v);
            MAV_ASSERT(clips.v);
        }
        clips.v[clips.n] = anim.v[i];
        clips.v[clips.n].key = strdup(anim.v[i].key);
        clips.v[clips.n].path = strdup(anim.v[i].path);
        clips.v[clips.n++].frames = frames[i];
    }
    free(frames);
    free(pmsg);
    if (progress) fprintf(progress, "fluent-emoji: %d stills, %d animated files probed, %d clips\n", stills.n, anim.n, clips.n);

    json_t *dups = json_array();
    dedupe(&stills, dups);
    dedupe(&clips, dups);
    // Concepts of every still and clip; the split is over their union.
    int n_unlabeled = 0, n_bad_name = 0;
    json_t *unlabeled = json_array();
    const char **concepts = calloc((size_t)(stills.n + clips.n) + 1, sizeof *concepts);
    MAV_ASSERT(concepts);
    int nc = 0;
    for (int pass = 0; pass < 2; pass++) {
        file_list *l = pass ? &clips : &stills;
        for (int i = 0; i < l->n; i++) {
            src_file *f = &l->v[i];
            if (mav_emoji_concept(f->concept, sizeof f->concept, f->key) != MAV_OK) {
                str_push(&bad, f->path, "file name is not a hexcode");
                f->concept[0] = 0;
                n_bad_name++;
                continue;
            }
            if (!pass) {
                f->e = mav_emoji_db_find(&db, f->key);
                if (!f->e) { n_unlabeled++; json_array_append_new(unlabeled, json_string(f->key)); }
            }
            concepts[nc++] = f->concept;
        }
    }
    qsort(concepts, (size_t)nc, sizeof *concepts, cmp_cstr);
    int nu = 0;
    for (int i = 0; i < nc; i++)
        if (nu == 0 || strcmp(concepts[nu - 1], concepts[i]) != 0) concepts[nu++] = concepts[i];
    uint8_t *split = calloc((size_t)nu + 1, 1);
    MAV_ASSERT(split);
    mav_emoji_split(concepts, nu, o->n_test, o->n_val, split);
    int concepts_by_split[3] = {0};
    json_t *js = json_object(), *jtest = json_array(), *jval = json_array();
    for (int i = 0; i < nu; i++) {
        concepts_by_split[split[i]]++;
        if (split[i] == MAV_SPLIT_TEST) json_array_append_new(jtest, json_string(concepts[i]));
        if (split[i] == MAV_SPLIT_VAL) json_array_append_new(jval, json_string(concepts[i]));
    }
    json_object_set_new(js, "rule", json_string("concepts (hexcode without fe0f and skin tones) ordered by FNV-1a 64 hash; first n_test: test, next n_val: val"));
    json_object_set_new(js, "test", jtest);
    json_object_set_new(js, "val", jval);
    snprintf(path, sizeof path, "%s/split.json", o->out);
    if (json_dump_file(js, path, JSON_INDENT(1)) != 0) st = mav_fail(MAV_ERR_IO, "%s: cannot write", path);
    json_decref(js);
    for (int pass = 0; pass < 2; pass++) {
        file_list *l = pass ? &clips : &stills;
        for (int i = 0; i < l->n; i++) {
            src_file *f = &l->v[i];
            if (!f->concept[0]) continue;
            const char **hit = bsearch(&(const char *){f->concept}, concepts, (size_t)nu, sizeof *concepts, cmp_cstr);
            MAV_ASSERT(hit);
            f->split = split[hit - concepts];
        }
    }
    // Stills with a label (and a hexcode name) become text-image pairs.
    file_list pairs = {0};
    pairs.v = calloc((size_t)stills.n + 1, sizeof *pairs.v);
    MAV_ASSERT(pairs.v);
    for (int i = 0; i < stills.n; i++)
        if (stills.v[i].concept[0] && stills.v[i].e) pairs.v[pairs.n++] = stills.v[i];
    int img_ok = 0, clip_ok = 0, img_split[3] = {0}, clip_split[3] = {0};
    long img_frames = 0, clip_frames = 0;
    if (st == MAV_OK && (st = open_caches(cw, o, "images")) == MAV_OK) {
        snprintf(path, sizeof path, "%s/images.jsonl", o->out);
        if (!(jl = fopen(path, "w"))) st = mav_fail(MAV_ERR_IO, "%s: %s", path, strerror(errno));
        if (st == MAV_OK)
            st = encode_all(o, pairs.v, pairs.n, 1, cw, jl, 0, &bad, &img_ok, &img_frames, img_split, progress);
        if (jl && fclose(jl) != 0 && st == MAV_OK) st = mav_fail(MAV_ERR_IO, "%s: write failed", path);
        jl = NULL;
        for (int s = 0; s < o->n_sizes; s++) {
            if (st == MAV_OK) st = mav_cache_finish(&cw[s]);
            else mav_cache_abort(&cw[s]);
        }
    }
    free(pairs.v);  // (entries alias stills)
    // Clips: only those whose name parsed.
    int nclip = 0;
    for (int i = 0; i < clips.n; i++)
        if (clips.v[i].concept[0]) clips.v[nclip++] = clips.v[i]; else { free(clips.v[i].key); free(clips.v[i].path); }
    clips.n = nclip;
    if (st == MAV_OK && (st = open_caches(cw, o, "clips")) == MAV_OK) {
        snprintf(path, sizeof path, "%s/clips.jsonl", o->out);
        if (!(jl = fopen(path, "w"))) st = mav_fail(MAV_ERR_IO, "%s: %s", path, strerror(errno));
        if (st == MAV_OK)
            st = encode_all(o, clips.v, clips.n, o->max_frames, cw, jl, 1, &bad, &clip_ok, &clip_frames, clip_split,
                            progress);
        if (jl && fclose(jl) != 0 && st == MAV_OK) st = mav_fail(MAV_ERR_IO, "%s: write failed", path);
        jl = NULL;
        for (int s = 0; s < o->n_sizes; s++) {
            if (st == MAV_OK) st = mav_cache_finish(&cw[s]);
            else mav_cache_abort(&cw[s]);
        }
    }
    if (st == MAV_OK) {
        sum = json_object();
        json_t *sz = json_array(), *jb = json_array();
        for (int s = 0; s < o->n_sizes; s++) json_array_append_new(sz, json_integer(o->sizes[s]));
        for (int i = 0; i < bad.n; i++) json_array_append_new(jb, json_string(bad.v[i]));
        json_object_set_new(sum, "stills_found", json_integer(n_stills_all));
        json_object_set_new(sum, "animated_files_found", json_integer(n_anim));
        json_object_set_new(sum, "images", json_integer(img_ok));
        json_object_set_new(sum, "images_unlabeled", json_integer(n_unlabeled));
        json_object_set_new(sum, "unlabeled", unlabeled);
        unlabeled = NULL;
        json_object_set_new(sum, "duplicates", dups);
        dups = NULL;
        json_object_set_new(sum, "clips", json_integer(clip_ok));
        json_object_set_new(sum, "clip_frames", json_integer(clip_frames));
        json_object_set_new(sum, "sizes", sz);
        json_object_set_new(sum, "max_frames", json_integer(o->max_frames));
        json_t *c = json_object(), *im = json_object(), *cl = json_object();
        for (int s = 0; s < 3; s++) {
            json_object_set_new(c, mav_split_name((mav_split)s), json_integer(concepts_by_split[s]));
            json_object_set_new(im, mav_split_name((mav_split)s), json_integer(img_split[s]));
            json_object_set_new(cl, mav_split_name((mav_split)s), json_integer(clip_split[s]));
        }
        json_object_set_new(sum, "concepts", c);
        json_object_set_new(sum, "images_by_split", im);
        json_object_set_new(sum, "clips_by_split", cl);
        json_object_set_new(sum, "bad_count", json_integer(bad.n));
        json_object_set_new(sum, "bad", jb);
        json_object_set_new(sum, "seconds", json_real(now_s() - t0));
        snprintf(path, sizeof path, "%s/fluent-emoji.json", o->out);
        if (json_dump_file(sum, path, JSON_INDENT(2)) != 0) st = mav_fail(MAV_ERR_IO, "%s: cannot write", path);
        if (summary) *summary = json_dumps(sum, JSON_INDENT(2));
    }
    (void)n_bad_name;
    json_decref(unlabeled);
    json_decref(dups);
    free(concepts);
    free(split);
done:
    json_decref(sum);
    for (int i = 0; i < bad.n; i++) free(bad.v[i]);
    free(bad.v);
    free_list(&stills);
    free_list(&anim);
    free_list(&clips);
    mav_emoji_db_free(&db);
    return st;
}
