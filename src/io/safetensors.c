#include "io/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

const char *mav_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int d = 0; d < ndim && n < cap; d++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static char *xstrdup(const char *s) {
    char *d = strdup(s);
    MAV_ASSERT(d != NULL);
    return d;
}

void mav_st_close(mav_st_file *f) {
    if (f->map) munmap(f->map, f->map_size);
    for (int i = 0; i < f->ntensors; i++) free(f->tensors[i].name);
    for (int i = 0; i < f->nmeta; i++) { free(f->meta_keys[i]); free(f->meta_vals[i]); }
    free(f->tensors); free(f->meta_keys); free(f->meta_vals); free(f->path);
    memset(f, 0, sizeof *f);
}

static int cmp_by_offset(const void *a, const void *b) {
    const mav_st_tensor *x = *(const mav_st_tensor *const *)a, *y = *(const mav_st_tensor *const *)b;
    const uint8_t *px = x->data, *py = y->data;
    return px < py ? -1 : px > py ? 1 : 0;
}

// Parse a JSON integer that must be a non-negative value.
static int json_u64(const json_t *j, uint64_t *out) {
    if (!json_is_integer(j)) return -1;
    json_int_t v = json_integer_value(j);
    if (v < 0) return -1;
    *out = (uint64_t)v;
    return 0;
}

static mav_status parse_header(mav_st_file *f, const char *hdr, size_t hlen, const uint8_t *buf, size_t buf_len) {
    json_error_t jerr;
    json_t *root = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return mav_fail(MAV_ERR_FORMAT, "header is not valid JSON (%s at byte %d)", jerr.text, jerr.position);
    mav_status st = MAV_OK;
    if (!json_is_object(root)) { st = mav_fail(MAV_ERR_FORMAT, "header is not a JSON object"); goto done; }
    size_t n = json_object_size(root);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    MAV_ASSERT(f->tensors != NULL);
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (strcmp(key, "__metadata__") == 0) {
            if (!json_is_object(val)) { st = mav_fail(MAV_ERR_FORMAT, "__metadata__ is not an object"); goto done; }
            size_t m = json_object_size(val);
            f->meta_keys = calloc(m ? m : 1, sizeof(char *));
            f->meta_vals = calloc(m ? m : 1, sizeof(char *));
            MAV_ASSERT(f->meta_keys && f->meta_vals);
            const char *mk;
            json_t *mv;
            json_object_foreach(val, mk, mv) {
                if (!json_is_string(mv)) { st = mav_fail(MAV_ERR_FORMAT, "__metadata__ value \"%s\" is not a string", mk); goto done; }
                f->meta_keys[f->nmeta] = xstrdup(mk);
                f->meta_vals[f->nmeta] = xstrdup(json_string_value(mv));
                f->nmeta++;
            }
            continue;
        }
        mav_st_tensor *t = &f->tensors[f->ntensors];
        t->name = xstrdup(key);
        f->ntensors++;
        if (!json_is_object(val)) { st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": entry is not an object", key); goto done; }
        json_t *jd = json_object_get(val, "dtype"), *js = json_object_get(val, "shape"),
               *jo = json_object_get(val, "data_offsets");
        if (!json_is_string(jd) || mav_dtype_from_name(json_string_value(jd), &t->dtype) != 0) {
            st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": unknown or missing dtype %s", key,
                          json_is_string(jd) ? json_string_value(jd) : "(none)");
            goto done;
        }
        if (!json_is_array(js)) { st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": missing shape", key); goto done; }
        if (json_array_size(js) > MAV_MAX_DIMS) {
            st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": %zu dimensions (mav supports at most %d)", key,
                          json_array_size(js), MAV_MAX_DIMS);
            goto done;
        }
        t->ndim = (int)json_array_size(js);
        uint64_t numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            uint64_t s;
            if (json_u64(json_array_get(js, d), &s) != 0 || s > (1ull << 40)) {
                st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": shape entry %d is not a valid size", key, d);
                goto done;
            }
            t->shape[d] = (int64_t)s;
            if (s != 0 && numel > UINT64_MAX / s) { st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": shape overflows", key); goto done; }
            numel *= s;
        }
        uint64_t b, e;
        if (!json_is_array(jo) || json_array_size(jo) != 2 || json_u64(json_array_get(jo, 0), &b) != 0 ||
            json_u64(json_array_get(jo, 1), &e) != 0 || e < b) {
            st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": data_offsets must be [begin, end] with begin <= end", key);
            goto done;
        }
        if (e > buf_len) {
            st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data (%zu bytes)",
                          key, (unsigned long long)b, (unsigned long long)e, buf_len);
            goto done;
        }
        size_t esz = mav_dtype_size(t->dtype);
        if (numel > UINT64_MAX / esz || numel * esz != e - b) {
            char sb[96];
            st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": %s %s needs %llu bytes but data_offsets give %llu", key,
                          mav_dtype_name(t->dtype), mav_shape_str(sb, sizeof sb, t->ndim, t->shape),
                          (unsigned long long)(numel * esz), (unsigned long long)(e - b));
            goto done;
        }
        t->numel = (size_t)numel;
        t->nbytes = (size_t)(e - b);
        t->data = buf + b;
    }
    // Offsets must tile the buffer: sorted, no overlap, no holes, nothing trailing.
    {
        mav_st_tensor **order = malloc((size_t)(f->ntensors ? f->ntensors : 1) * sizeof *order);
        MAV_ASSERT(order != NULL);
        for (int i = 0; i < f->ntensors; i++) order[i] = &f->tensors[i];
        qsort(order, (size_t)f->ntensors, sizeof *order, cmp_by_offset);
        size_t pos = 0;
        for (int i = 0; i < f->ntensors && st == MAV_OK; i++) {
            size_t b = (size_t)((const uint8_t *)order[i]->data - buf);
            if (b < pos)
                st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": data overlaps tensor \"%s\"", order[i]->name, order[i - 1]->name);
            else if (b > pos)
                st = mav_fail(MAV_ERR_FORMAT, "tensor \"%s\": %zu-byte hole before its data (offsets must be contiguous)",
                              order[i]->name, b - pos);
            pos = b + order[i]->nbytes;
        }
        if (st == MAV_OK && pos != buf_len)
            st = mav_fail(MAV_ERR_FORMAT, "%zu bytes of data after the last tensor (header describes %zu of %zu)",
                          buf_len - pos, pos, buf_len);
        free(order);
    }
done:
    json_decref(root);
    return st;
}

mav_status mav_st_open(mav_st_file *f, const char *path) {
    memset(f, 0, sizeof *f);
    f->path = xstrdup(path);
    mav_status st = MAV_OK;
    int fd = open(path, O_RDONLY);
    if (fd < 0) { st = mav_fail(MAV_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); goto fail; }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        st = mav_fail(MAV_ERR_IO, "%s: not a regular file", path);
        goto fail;
    }
    size_t size = (size_t)sb.st_size;
    if (size < 8) { close(fd); st = mav_fail(MAV_ERR_FORMAT, "%s: %zu bytes is too short for a safetensors file", path, size); goto fail; }
    f->map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (f->map == MAP_FAILED) { f->map = NULL; st = mav_fail(MAV_ERR_IO, "%s: mmap failed: %s", path, strerror(errno)); goto fail; }
    f->map_size = size;
    const uint8_t *p = f->map;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | p[i];
    if (hlen > MAV_ST_MAX_HEADER || hlen > size - 8) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: header length %llu is impossible for a %zu-byte file", path,
                      (unsigned long long)hlen, size);
        goto fail;
    }
    if (hlen < 2 || p[8] != '{') { st = mav_fail(MAV_ERR_FORMAT, "%s: header does not start with '{'", path); goto fail; }
    st = parse_header(f, (const char *)p + 8, (size_t)hlen, p + 8 + hlen, size - 8 - (size_t)hlen);
    if (st != MAV_OK) { mav_error_prefix("%s", path); goto fail; }
    return MAV_OK;
fail:
    mav_st_close(f);
    return st;
}

const mav_st_tensor *mav_st_find(const mav_st_file *f, const char *name) {
    for (int i = 0; i < f->ntensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

const char *mav_st_meta(const mav_st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (strcmp(f->meta_keys[i], key) == 0) return f->meta_vals[i];
    return NULL;
}

void mav_st_to_f32(const mav_st_tensor *t, float *dst) {
    // Data in the mapping may be unaligned: convert through an aligned bounce buffer.
    size_t esz = mav_dtype_size(t->dtype);
    enum { CHUNK = 4096 };
    _Alignas(64) uint8_t tmp[CHUNK * 8];
    for (size_t i = 0; i < t->numel; i += CHUNK) {
        size_t n = t->numel - i < CHUNK ? t->numel - i : CHUNK;
        memcpy(tmp, (const uint8_t *)t->data + i * esz, n * esz);
        mav_convert_to_f32(dst + i, tmp, t->dtype, n);
    }
}

mav_status mav_st_read_f32(const mav_st_file *f, const char *name, int ndim, const int64_t *shape, float *dst) {
    const mav_st_tensor *t = mav_st_find(f, name);
    if (!t) return mav_fail(MAV_ERR_SHAPE, "%s: tensor \"%s\" is missing", f->path, name);
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) {
        char a[96], b[96];
        return mav_fail(MAV_ERR_SHAPE, "%s: tensor \"%s\" has shape %s, expected %s", f->path, name,
                        mav_shape_str(a, sizeof a, t->ndim, t->shape), mav_shape_str(b, sizeof b, ndim, shape));
    }
    mav_st_to_f32(t, dst);
    return MAV_OK;
}

// ---- writer ----------------------------------------------------------------------------

void mav_st_writer_init(mav_st_writer *w) { memset(w, 0, sizeof *w); }

void mav_st_writer_free(mav_st_writer *w) {
    for (int i = 0; i < w->count; i++) free(w->entries[i].name);
    for (int i = 0; i < w->nmeta; i++) { free(w->meta_keys[i]); free(w->meta_vals[i]); }
    free(w->entries); free(w->meta_keys); free(w->meta_vals);
    memset(w, 0, sizeof *w);
}

void mav_st_writer_meta(mav_st_writer *w, const char *key, const char *value) {
    for (int i = 0; i < w->nmeta; i++)
        if (strcmp(w->meta_keys[i], key) == 0) { free(w->meta_vals[i]); w->meta_vals[i] = xstrdup(value); return; }
    w->meta_keys = realloc(w->meta_keys, (size_t)(w->nmeta + 1) * sizeof(char *));
    w->meta_vals = realloc(w->meta_vals, (size_t)(w->nmeta + 1) * sizeof(char *));
    MAV_ASSERT(w->meta_keys && w->meta_vals);
    w->meta_keys[w->nmeta] = xstrdup(key);
    w->meta_vals[w->nmeta] = xstrdup(value);
    w->nmeta++;
}

static mav_st_entry *writer_push(mav_st_writer *w, const char *name, mav_dtype dtype, int ndim, const int64_t *shape) {
    MAV_ASSERT(ndim >= 0 && ndim <= MAV_MAX_DIMS);
    if (w->count == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 32;
        w->entries = realloc(w->entries, (size_t)w->cap * sizeof *w->entries);
        MAV_ASSERT(w->entries != NULL);
    }
    mav_st_entry *e = &w->entries[w->count++];
    memset(e, 0, sizeof *e);
    e->name = xstrdup(name);
    e->dtype = dtype;
    e->ndim = ndim;
    for (int d = 0; d < ndim; d++) e->shape[d] = shape[d];
    return e;
}

void mav_st_writer_add_f32(mav_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data,
                           mav_dtype store) {
    MAV_ASSERT(store == MAV_F32 || store == MAV_F16 || store == MAV_BF16 || store == MAV_F64);
    mav_st_entry *e = writer_push(w, name, store, ndim, shape);
    e->src = data;
    e->src_dtype = MAV_F32;
}

void mav_st_writer_add_raw(mav_st_writer *w, const char *name, mav_dtype dtype, int ndim, const int64_t *shape,
                           const void *data) {
    mav_st_entry *e = writer_push(w, name, dtype, ndim, shape);
    e->src = data;
    e->src_dtype = dtype;
}

static size_t entry_numel(const mav_st_entry *e) {
    size_t n = 1;
    for (int d = 0; d < e->ndim; d++) n *= (size_t)e->shape[d];
    return n;
}

mav_status mav_st_writer_save(const mav_st_writer *w, const char *path) {
    json_t *root = json_object();
    if (w->nmeta) {
        json_t *meta = json_object();
        for (int i = 0; i < w->nmeta; i++) json_object_set_new(meta, w->meta_keys[i], json_string(w->meta_vals[i]));
        json_object_set_new(root, "__metadata__", meta);
    }
    size_t off = 0;
    for (int i = 0; i < w->count; i++) {
        const mav_st_entry *e = &w->entries[i];
        size_t nb = entry_numel(e) * mav_dtype_size(e->dtype);
        json_t *shape = json_array();
        for (int d = 0; d < e->ndim; d++) json_array_append_new(shape, json_integer(e->shape[d]));
        json_t *t = json_object();
        json_object_set_new(t, "dtype", json_string(mav_dtype_name(e->dtype)));
        json_object_set_new(t, "shape", shape);
        json_t *offs = json_array();
        json_array_append_new(offs, json_integer((json_int_t)off));
        json_array_append_new(offs, json_integer((json_int_t)(off + nb)));
        json_object_set_new(t, "data_offsets", offs);
        if (json_object_set_new(root, e->name, t) != 0) { json_decref(root); return mav_fail(MAV_ERR_ARG, "%s: bad tensor name", path); }
        off += nb;
    }
    char *hdr = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    MAV_ASSERT(hdr != NULL);
    size_t hlen = strlen(hdr), padded = (hlen + 7) / 8 * 8;  // pad with spaces: data 8-aligned
    uint8_t lenbuf[8];
    for (int i = 0; i < 8; i++) lenbuf[i] = (uint8_t)((uint64_t)padded >> (8 * i));

    mav_atomic_file a;
    mav_status st = mav_atomic_open(&a, path);
    if (st != MAV_OK) { free(hdr); return st; }
    st = mav_atomic_write(&a, lenbuf, 8);
    if (st == MAV_OK) st = mav_atomic_write(&a, hdr, hlen);
    if (st == MAV_OK) st = mav_atomic_write(&a, "        ", padded - hlen);
    free(hdr);
    enum { CHUNK = 1 << 16 };
    uint8_t *buf = malloc(CHUNK * 8);
    MAV_ASSERT(buf != NULL);
    for (int i = 0; i < w->count && st == MAV_OK; i++) {
        const mav_st_entry *e = &w->entries[i];
        size_t n = entry_numel(e), esz = mav_dtype_size(e->dtype);
        if (e->src_dtype == e->dtype) { st = mav_atomic_write(&a, e->src, n * esz); continue; }
        for (size_t j = 0; j < n && st == MAV_OK; j += CHUNK) {
            size_t m = n - j < CHUNK ? n - j : CHUNK;
            mav_convert_from_f32(buf, e->dtype, (const float *)e->src + j, m);
            st = mav_atomic_write(&a, buf, m * esz);
        }
    }
    free(buf);
    if (st != MAV_OK) { mav_atomic_abort(&a); return st; }
    return mav_atomic_commit(&a);
}

// ---- atomic files ------------------------------------------------------------------------

mav_status mav_atomic_open(mav_atomic_file *a, const char *path) {
    memset(a, 0, sizeof *a);
    a->fd = -1;
    a->path = xstrdup(path);
    size_t n = strlen(path) + 32;
    a->tmp_path = malloc(n);
    MAV_ASSERT(a->tmp_path != NULL);
    snprintf(a->tmp_path, n, "%s.tmp.%ld", path, (long)getpid());
    a->fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (a->fd < 0) {
        mav_status st = mav_fail(MAV_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(a->path); free(a->tmp_path);
        memset(a, 0, sizeof *a);
        a->fd = -1;
        return st;
    }
    return MAV_OK;
}

mav_status mav_atomic_write(mav_atomic_file *a, const void *data, size_t n) {
    const uint8_t *p = data;
    while (n > 0) {
        ssize_t k = write(a->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            a->failed = 1;
            return mav_fail(MAV_ERR_IO, "%s: write failed: %s (the previous file, if any, is left intact)", a->path,
                            k < 0 ? strerror(errno) : "no progress");
        }
        p += k;
        n -= (size_t)k;
    }
    return MAV_OK;
}

void mav_atomic_abort(mav_atomic_file *a) {
    if (a->fd >= 0) close(a->fd);
    if (a->tmp_path) unlink(a->tmp_path);
    free(a->path); free(a->tmp_path);
    memset(a, 0, sizeof *a);
    a->fd = -1;
}

mav_status mav_atomic_commit(mav_atomic_file *a) {
    mav_status st = MAV_OK;
    if (fsync(a->fd) != 0) st = mav_fail(MAV_ERR_IO, "%s: fsync failed: %s (previous file left intact)", a->path, strerror(errno));
    if (close(a->fd) != 0 && st == MAV_OK) st = mav_fail(MAV_ERR_IO, "%s: close failed: %s (previous file left intact)", a->path, strerror(errno));
    a->fd = -1;
    if (st == MAV_OK && rename(a->tmp_path, a->path) != 0)
        st = mav_fail(MAV_ERR_IO, "%s: rename failed: %s (previous file left intact)", a->path, strerror(errno));
    if (st != MAV_OK) { mav_atomic_abort(a); return st; }
    char *dir = xstrdup(a->path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) { fsync(dfd); close(dfd); }
    free(dir);
    free(a->path); free(a->tmp_path);
    memset(a, 0, sizeof *a);
    a->fd = -1;
    return MAV_OK;
}
