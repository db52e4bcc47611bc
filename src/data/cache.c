// cache.c — write and map the uint8 frame cache (layout in cache.h).
#include "data/cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER_BYTES 64
#define ENTRY_BYTES 96
_Static_assert(sizeof(mav_cache_entry) == ENTRY_BYTES, "index entries are mapped in place");
static const char k_magic[8] = {'M', 'A', 'V', 'F', 'R', 'M', '0', '1'};

static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint32_t get_u32(const uint8_t *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get_u64(const uint8_t *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

mav_status mav_cache_create(mav_cache_writer *cw, const char *path, int w, int h) {
    memset(cw, 0, sizeof *cw);
    if (w <= 0 || h <= 0 || w > 65536 || h > 65536) return mav_fail(MAV_ERR_ARG, "%s: bad frame size %dx%d", path, w, h);
    cw->w = w;
    cw->h = h;
    cw->path = xstrdup(path);
    size_t n = strlen(path) + 8;
    cw->tmp_path = malloc(n);
    if (!cw->path || !cw->tmp_path) { mav_cache_abort(cw); return mav_fail(MAV_ERR_NOMEM, "%s: out of memory", path); }
    snprintf(cw->tmp_path, n, "%s.part", path);
    cw->f = fopen(cw->tmp_path, "wb");
    if (!cw->f) {
        mav_status st = mav_fail(MAV_ERR_IO, "%s: %s", cw->tmp_path, strerror(errno));
        mav_cache_abort(cw);
        return st;
    }
    uint8_t zero[HEADER_BYTES] = {0};  // placeholder header, rewritten by mav_cache_finish
    if (fwrite(zero, 1, sizeof zero, cw->f) != sizeof zero) {
        mav_status st = mav_fail(MAV_ERR_IO, "%s: write failed", cw->tmp_path);
        mav_cache_abort(cw);
        return st;
    }
    return MAV_OK;
}

mav_status mav_cache_add(mav_cache_writer *cw, const char *key, const uint8_t *rgb, int n_frames, double fps,
                         int split) {
    if (n_frames <= 0) return mav_fail(MAV_ERR_ARG, "%s: item \"%s\" has no frames", cw->path, key);
    if (strlen(key) >= MAV_CACHE_KEY_MAX) return mav_fail(MAV_ERR_ARG, "%s: key \"%s\" too long", cw->path, key);
    if (cw->n == cw->cap) {
        int cap = cw->cap ? 2 * cw->cap : 256;
        mav_cache_entry *ix = realloc(cw->index, (size_t)cap * sizeof *ix);
        if (!ix) return mav_fail(MAV_ERR_NOMEM, "%s: out of memory", cw->path);
        cw->index = ix;
        cw->cap = cap;
    }
    size_t bytes = (size_t)n_frames * (size_t)cw->w * (size_t)cw->h * 3;
    if (fwrite(rgb, 1, bytes, cw->f) != bytes) return mav_fail(MAV_ERR_IO, "%s: write failed", cw->tmp_path);
    mav_cache_entry *e = &cw->index[cw->n++];
    memset(e, 0, sizeof *e);
    e->first_frame = cw->total_frames;
    e->n_frames = (uint32_t)n_frames;
    e->split = (uint32_t)split;
    e->fps = fps;
    memcpy(e->key, key, strlen(key));
    cw->total_frames += (uint64_t)n_frames;
    return MAV_OK;
}

static void writer_free(mav_cache_writer *cw) {
    if (cw->f) fclose(cw->f);
    free(cw->path);
    free(cw->tmp_path);
    free(cw->index);
    memset(cw, 0, sizeof *cw);
}

void mav_cache_abort(mav_cache_writer *cw) {
    if (cw->f) { fclose(cw->f); cw->f = NULL; }
    if (cw->tmp_path) unlink(cw->tmp_path);
    writer_free(cw);
}

mav_status mav_cache_finish(mav_cache_writer *cw) {
    uint64_t data_end = HEADER_BYTES + cw->total_frames * (uint64_t)cw->w * (uint64_t)cw->h * 3u;
    uint64_t index_off = (data_end + 7) & ~(uint64_t)7;  // entries are read in place: 8-byte alignment
    uint8_t pad[8] = {0};
    if (fwrite(pad, 1, (size_t)(index_off - data_end), cw->f) != (size_t)(index_off - data_end)) goto io_error;
    for (int i = 0; i < cw->n; i++) {
        uint8_t b[ENTRY_BYTES] = {0};
        const mav_cache_entry *e = &cw->index[i];
        put_u64(b, e->first_frame);
        put_u32(b + 8, e->n_frames);
        put_u32(b + 12, e->split);
        memcpy(b + 16, &e->fps, 8);  // IEEE double, little-endian hosts only (x86-64, arm64)
        memcpy(b + 24, e->key, MAV_CACHE_KEY_MAX);
        if (fwrite(b, 1, sizeof b, cw->f) != sizeof b) goto io_error;
    }
    uint8_t hd[HEADER_BYTES] = {0};
    memcpy(hd, k_magic, 8);
    put_u32(hd + 8, 1);
    put_u32(hd + 12, (uint32_t)cw->w);
    put_u32(hd + 16, (uint32_t)cw->h);
    put_u32(hd + 20, 3);
    put_u32(hd + 24, (uint32_t)cw->n);
    put_u32(hd + 28, ENTRY_BYTES);
    put_u64(hd + 32, cw->total_frames);
    put_u64(hd + 40, HEADER_BYTES);
    put_u64(hd + 48, index_off);
    if (fseek(cw->f, 0, SEEK_SET) != 0 || fwrite(hd, 1, sizeof hd, cw->f) != sizeof hd) goto io_error;
    if (fclose(cw->f) != 0) { cw->f = NULL; goto io_error; }
    cw->f = NULL;
    if (rename(cw->tmp_path, cw->path) != 0) goto io_error;
    writer_free(cw);
    return MAV_OK;
io_error:;
    mav_status st = mav_fail(MAV_ERR_IO, "%s: %s", cw->tmp_path, strerror(errno));
    mav_cache_abort(cw);
    return st;
}

mav_status mav_cache_open(mav_cache *c, const char *path) {
    memset(c, 0, sizeof *c);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return mav_fail(MAV_ERR_IO, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) { close(fd); return mav_fail(MAV_ERR_IO, "%s: %s", path, strerror(errno)); }
    size_t size = (size_t)sb.st_size;
    if (size < HEADER_BYTES) { close(fd); return mav_fail(MAV_ERR_FORMAT, "%s: too short for a frame cache", path); }
    void *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return mav_fail(MAV_ERR_IO, "%s: mmap: %s", path, strerror(errno));
    c->map = map;
    c->map_size = size;
    const uint8_t *p = map;
    mav_status st = MAV_OK;
    if (memcmp(p, k_magic, 8) != 0) { st = mav_fail(MAV_ERR_FORMAT, "%s: not a mav frame cache", path); goto bad; }
    uint32_t ver = get_u32(p + 8), w = get_u32(p + 12), h = get_u32(p + 16), ch = get_u32(p + 20);
    uint32_t n = get_u32(p + 24), eb = get_u32(p + 28);
    uint64_t total = get_u64(p + 32), data_off = get_u64(p + 40), index_off = get_u64(p + 48);
    if (ver != 1 || ch != 3 || eb != ENTRY_BYTES || w == 0 || h == 0 || w > 65536 || h > 65536 || n > (1u << 30)) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: unsupported cache header (version %u, %ux%ux%u, entry %u)", path, ver, w, h,
                      ch, eb);
        goto bad;
    }
    uint64_t frame_bytes = (uint64_t)w * h * 3;
    if (data_off != HEADER_BYTES || total > (size / frame_bytes) || index_off != ((data_off + total * frame_bytes + 7) & ~(uint64_t)7) ||
        index_off > size || (size - index_off) / ENTRY_BYTES < n || size - index_off != (uint64_t)n * ENTRY_BYTES) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: truncated or inconsistent cache (size %zu)", path, size);
        goto bad;
    }
    c->w = (int)w;
    c->h = (int)h;
    c->n = (int)n;
    c->total_frames = total;
    c->data = p + data_off;
    c->index = (const mav_cache_entry *)(p + index_off);
    for (uint32_t i = 0; i < n; i++) {
        const mav_cache_entry *e = &c->index[i];
        if (e->n_frames == 0 || e->first_frame > total || e->n_frames > total - e->first_frame ||
            memchr(e->key, 0, MAV_CACHE_KEY_MAX) == NULL || !(e->fps > 0)) {
            st = mav_fail(MAV_ERR_FORMAT, "%s: bad index entry %u", path, i);
            goto bad;
        }
    }
    return MAV_OK;
bad:
    mav_cache_close(c);
    return st;
}

void mav_cache_close(mav_cache *c) {
    if (c->map) munmap(c->map, c->map_size);
    memset(c, 0, sizeof *c);
}
