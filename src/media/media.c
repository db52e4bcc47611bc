// media.c — dispatch: sniff a file's format and call its decoder, frame folders, the
// writer's choice of format by extension, frame buffers, and the shared helpers.
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "io/safetensors.h"
#include "media/media_internal.h"

// ---- frames and helpers -----------------------------------------------------------------

mav_status mav_media_check_dims(const char *name, long w, long h, long n) {
    if (w <= 0 || h <= 0 || n <= 0)
        return mav_fail(MAV_ERR_FORMAT, "%s: empty image or video (%ldx%ld, %ld frames)", name, w, h, n);
    if (w > MAV_MEDIA_MAX_SIDE || h > MAV_MEDIA_MAX_SIDE)
        return mav_fail(MAV_ERR_FORMAT, "%s: %ldx%ld is larger than mav accepts (sides up to %d px)", name, w, h,
                        MAV_MEDIA_MAX_SIDE);
    if (n > MAV_MEDIA_MAX_FRAMES)
        return mav_fail(MAV_ERR_FORMAT, "%s: %ld frames is more than mav accepts (up to %d)", name, n,
                        MAV_MEDIA_MAX_FRAMES);
    if ((unsigned long long)w * (unsigned long long)h * 3ull * (unsigned long long)n > MAV_MEDIA_MAX_BYTES)
        return mav_fail(MAV_ERR_FORMAT, "%s: %ldx%ld x %ld frames needs more than %llu GiB decoded", name, w, h, n,
                        MAV_MEDIA_MAX_BYTES >> 30);
    return MAV_OK;
}

mav_status mav_frames_alloc(mav_frames *f, int w, int h, int n, double fps) {
    memset(f, 0, sizeof *f);
    mav_status st = mav_media_check_dims("frames", w, h, n);
    if (st != MAV_OK) return st;
    f->rgb = calloc((size_t)w * h * 3 * n, 1);
    if (!f->rgb) return mav_fail(MAV_ERR_NOMEM, "frames: cannot allocate %dx%dx%d", w, h, n);
    f->w = w; f->h = h; f->n = n; f->fps = fps;
    return MAV_OK;
}

void mav_frames_free(mav_frames *f) {
    if (!f) return;
    free(f->rgb);
    memset(f, 0, sizeof *f);
}

void mav_media_rgba_to_rgb(uint8_t *rgb, const uint8_t *rgba, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned a = rgba[4 * i + 3], inv = 255 - a;
        // c·a/255 + 255·(1−a/255), rounded: exact for a = 0 and a = 255.
        for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)((rgba[4 * i + c] * a + 255 * inv + 127) / 255);
    }
}

mav_status mav_membuf_write(mav_membuf *b, const void *p, size_t n) {
    if (b->pos + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->pos + n) cap *= 2;
        uint8_t *d = realloc(b->data, cap);
        if (!d) return mav_fail(MAV_ERR_NOMEM, "cannot grow an output buffer to %zu bytes", cap);
        b->data = d;
        b->cap = cap;
    }
    if (b->pos > b->len) memset(b->data + b->len, 0, b->pos - b->len);
    memcpy(b->data + b->pos, p, n);
    b->pos += n;
    if (b->pos > b->len) b->len = b->pos;
    return MAV_OK;
}

void mav_membuf_free(mav_membuf *b) {
    free(b->data);
    memset(b, 0, sizeof *b);
}

mav_status mav_membuf_save(const mav_membuf *b, const char *path) {
    mav_atomic_file a;
    mav_status st = mav_atomic_open(&a, path);
    if (st != MAV_OK) return st;
    st = mav_atomic_write(&a, b->data, b->len);
    if (st != MAV_OK) { mav_atomic_abort(&a); return st; }
    return mav_atomic_commit(&a);
}

mav_media_sniff mav_media_sniff_bytes(const uint8_t *p, size_t n) {
    if (n >= 8 && memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return MAV_FMT_PNG;
    if (n >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return MAV_FMT_JPEG;
    if (n >= 12 && memcmp(p, "RIFF", 4) == 0 && memcmp(p + 8, "WEBP", 4) == 0) return MAV_FMT_WEBP;
    if (n >= 6 && (memcmp(p, "GIF87a", 6) == 0 || memcmp(p, "GIF89a", 6) == 0)) return MAV_FMT_GIF;
    return MAV_FMT_UNKNOWN;
}

// Lower-case extension of path without the dot ("" when none), into ext[cap].
static void extension_of(const char *path, char *ext, size_t cap) {
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    ext[0] = 0;
    if (!dot || (slash && dot < slash)) return;
    size_t i = 0;
    for (dot++; *dot && i + 1 < cap; dot++) ext[i++] = (char)tolower((unsigned char)*dot);
    ext[i] = 0;
}

// Whole file into memory (malloc'd). Empty files and files over 2 GiB are refused.
static mav_status read_file(const char *path, uint8_t **data, size_t *n) {
    *data = NULL; *n = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return mav_fail(MAV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return mav_fail(MAV_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) { fclose(fp); return mav_fail(MAV_ERR_FORMAT, "%s: empty file", path); }
    if (sb.st_size > (2ll << 30)) { fclose(fp); return mav_fail(MAV_ERR_FORMAT, "%s: image file over 2 GiB", path); }
    uint8_t *d = malloc((size_t)sb.st_size);
    if (!d) { fclose(fp); return mav_fail(MAV_ERR_NOMEM, "%s: cannot allocate %lld bytes", path, (long long)sb.st_size); }
    size_t got = fread(d, 1, (size_t)sb.st_size, fp);
    fclose(fp);
    if (got != (size_t)sb.st_size) { free(d); return mav_fail(MAV_ERR_IO, "%s: short read", path); }
    *data = d; *n = got;
    return MAV_OK;
}

// First bytes of a file, for sniffing; returns how many were read (0 on error, message set).
static size_t read_head(const char *path, uint8_t *buf, size_t cap, mav_status *st) {
    *st = MAV_OK;
    FILE *fp = fopen(path, "rb");
    if (!fp) { *st = mav_fail(MAV_ERR_IO, "%s: cannot open: %s", path, strerror(errno)); return 0; }
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    if (n == 0) *st = mav_fail(MAV_ERR_FORMAT, "%s: empty file", path);
    return n;
}

static mav_status decode_memory(const uint8_t *data, size_t n, const char *name, int max_frames, mav_frames *out,
                                mav_media_info *info) {
    if (n == 0) return mav_fail(MAV_ERR_FORMAT, "%s: empty file", name);
    switch (mav_media_sniff_bytes(data, n)) {
    case MAV_FMT_PNG: return mav_png_decode(data, n, name, out, info);
    case MAV_FMT_JPEG: return mav_jpeg_decode(data, n, name, out, info);
    case MAV_FMT_WEBP: return mav_webp_decode(data, n, name, max_frames, out, info);
    default: return mav_ff_decode(NULL, data, n, name, max_frames, out, info);
    }
}

// ---- frame folders ----------------------------------------------------------------------

static int is_frame_name(const char *name) {
    char ext[8];
    extension_of(name, ext, sizeof ext);
    return name[0] != '.' && (!strcmp(ext, "png") || !strcmp(ext, "jpg") || !strcmp(ext, "jpeg"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

// Sorted frame file names of a folder (malloc'd array of malloc'd strings).
static mav_status list_folder(const char *dir, char ***names, int *count) {
    *names = NULL; *count = 0;
    DIR *d = opendir(dir);
    if (!d) return mav_fail(MAV_ERR_IO, "%s: cannot open folder: %s", dir, strerror(errno));
    int cap = 0, n = 0;
    char **v = NULL;
    struct dirent *e;
    mav_status st = MAV_OK;
    while ((e = readdir(d)) != NULL) {
        if (!is_frame_name(e->d_name)) continue;
        if (n >= MAV_MEDIA_MAX_FRAMES) { st = mav_fail(MAV_ERR_FORMAT, "%s: more than %d frames", dir, MAV_MEDIA_MAX_FRAMES); break; }
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, (size_t)cap * sizeof *v);
            MAV_ASSERT(nv != NULL);
            v = nv;
        }
        v[n] = strdup(e->d_name);
        MAV_ASSERT(v[n] != NULL);
        n++;
    }
    closedir(d);
    if (st == MAV_OK && n == 0) st = mav_fail(MAV_ERR_FORMAT, "%s: folder holds no .png/.jpg/.jpeg frames", dir);
    if (st != MAV_OK) {
        for (int i = 0; i < n; i++) free(v[i]);
        free(v);
        return st;
    }
    qsort(v, (size_t)n, sizeof *v, cmp_str);
    *names = v; *count = n;
    return MAV_OK;
}

static char *join_path(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    MAV_ASSERT(p != NULL);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static mav_status decode_file_image(const char *path, mav_frames *out, mav_media_info *info) {
    uint8_t *data; size_t n;
    mav_status st = read_file(path, &data, &n);
    if (st != MAV_OK) return st;
    st = decode_memory(data, n, path, 1, out, info);
    free(data);
    return st;
}

static mav_status folder_read(const char *dir, int max_frames, mav_frames *out, mav_media_info *info) {
    char **names; int count;
    mav_status st = list_folder(dir, &names, &count);
    if (st != MAV_OK) return st;
    int n = max_frames > 0 && max_frames < count ? max_frames : count;
    mav_frames one = {0};
    mav_media_info first;
    char *p = join_path(dir, names[0]);
    st = decode_file_image(p, out ? &one : NULL, &first);
    free(p);
    if (st == MAV_OK && info) {
        memset(info, 0, sizeof *info);
        info->width = first.width; info->height = first.height; info->frames = count;
        info->fps = MAV_MEDIA_FOLDER_FPS; info->duration = count / MAV_MEDIA_FOLDER_FPS;
        snprintf(info->format, sizeof info->format, "folder");
    }
    if (st == MAV_OK && out) {
        st = mav_frames_alloc(out, one.w, one.h, n, MAV_MEDIA_FOLDER_FPS);
        size_t fsz = (size_t)one.w * one.h * 3;
        if (st == MAV_OK) memcpy(out->rgb, one.rgb, fsz);
        for (int i = 1; i < n && st == MAV_OK; i++) {
            mav_frames_free(&one);
            p = join_path(dir, names[i]);
            st = decode_file_image(p, &one, NULL);
            if (st == MAV_OK && (one.w != out->w || one.h != out->h))
                st = mav_fail(MAV_ERR_FORMAT, "%s: %dx%d differs from the folder's first frame (%dx%d)", p, one.w,
                              one.h, out->w, out->h);
            if (st == MAV_OK) memcpy(out->rgb + (size_t)i * fsz, one.rgb, fsz);
            free(p);
        }
        if (st != MAV_OK) mav_frames_free(out);
    }
    mav_frames_free(&one);
    for (int i = 0; i < count; i++) free(names[i]);
    free(names);
    return st;
}

// ---- public entry points ----------------------------------------------------------------

static mav_status read_path(const char *path, int max_frames, mav_frames *out, mav_media_info *info) {
    struct stat sb;
    if (stat(path, &sb) != 0) return mav_fail(MAV_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) return folder_read(path, max_frames, out, info);
    if (!S_ISREG(sb.st_mode)) return mav_fail(MAV_ERR_IO, "%s: not a regular file or folder", path);
    if (sb.st_size == 0) return mav_fail(MAV_ERR_FORMAT, "%s: empty file", path);
    uint8_t head[16];
    mav_status st;
    size_t hn = read_head(path, head, sizeof head, &st);
    if (st != MAV_OK) return st;
    switch (mav_media_sniff_bytes(head, hn)) {
    case MAV_FMT_PNG:
    case MAV_FMT_JPEG:
    case MAV_FMT_WEBP: {
        uint8_t *data; size_t n;
        st = read_file(path, &data, &n);
        if (st != MAV_OK) return st;
        st = decode_memory(data, n, path, max_frames, out, info);
        free(data);
        return st;
    }
    default: return mav_ff_decode(path, NULL, 0, path, max_frames, out, info);
    }
}

mav_status mav_media_probe(const char *path, mav_media_info *info) {
    memset(info, 0, sizeof *info);
    return read_path(path, 0, NULL, info);
}

mav_status mav_media_read(const char *path, int max_frames, mav_frames *out) {
    memset(out, 0, sizeof *out);
    mav_status st = read_path(path, max_frames, out, NULL);
    if (st != MAV_OK) mav_frames_free(out);
    return st;
}

mav_status mav_media_read_memory(const uint8_t *data, size_t n, const char *name_hint, int max_frames,
                                 mav_frames *out) {
    memset(out, 0, sizeof *out);
    mav_status st = decode_memory(data, n, name_hint ? name_hint : "(memory)", max_frames, out, NULL);
    if (st != MAV_OK) mav_frames_free(out);
    return st;
}

// ---- writing ----------------------------------------------------------------------------

// Path of PNG frame i (see media.h): PATH's single %d / %0Nd replaced, or STEM_%04d.png.
static mav_status png_frame_path(const char *path, int i, char *out, size_t cap) {
    const char *pct = strchr(path, '%');
    if (!pct) {
        size_t len = strlen(path);
        char ext[8];
        extension_of(path, ext, sizeof ext);
        size_t stem = len - (ext[0] ? strlen(ext) + 1 : 0);
        if ((size_t)snprintf(out, cap, "%.*s_%04d.png", (int)stem, path, i) >= cap)
            return mav_fail(MAV_ERR_ARG, "%s: path too long", path);
        return MAV_OK;
    }
    const char *q = pct + 1;
    while (*q >= '0' && *q <= '9') q++;
    if (*q != 'd' || strchr(q, '%') || (pct[1] != 'd' && pct[1] != '0'))
        return mav_fail(MAV_ERR_ARG, "%s: a PNG frame pattern takes one %%d or %%0Nd and no other %%", path);
    char fmt[32];
    if ((size_t)(q - pct) + 1 >= sizeof fmt) return mav_fail(MAV_ERR_ARG, "%s: bad frame pattern", path);
    memcpy(fmt, pct, (size_t)(q - pct) + 1);
    fmt[q - pct + 1] = 0;
    char num[48];
    snprintf(num, sizeof num, fmt, i);
    if ((size_t)snprintf(out, cap, "%.*s%s%s", (int)(pct - path), path, num, q + 1) >= cap)
        return mav_fail(MAV_ERR_ARG, "%s: path too long", path);
    return MAV_OK;
}

mav_status mav_media_write(const char *path, const mav_frames *f, const mav_media_write_opts *o) {
    mav_media_write_opts def = {0, 0};
    if (!o) o = &def;
    if (!f || !f->rgb) return mav_fail(MAV_ERR_ARG, "%s: no frames to write", path);
    mav_status st = mav_media_check_dims(path, f->w, f->h, f->n);
    if (st != MAV_OK) return st;
    if (o->quality < 0 || o->quality > 100) return mav_fail(MAV_ERR_ARG, "%s: quality %d is outside 0..100", path, o->quality);
    double fps = o->fps > 0 ? o->fps : f->fps > 0 ? f->fps : 8.0;
    if (!(fps <= 1000)) return mav_fail(MAV_ERR_ARG, "%s: fps %g is outside (0, 1000]", path, fps);
    char ext[8];
    extension_of(path, ext, sizeof ext);
    mav_membuf b = {0};
    if (!strcmp(ext, "png")) {
        size_t fsz = (size_t)f->w * f->h * 3;
        char *fp = malloc(strlen(path) + 64);
        MAV_ASSERT(fp != NULL);
        for (int i = 0; i < f->n && st == MAV_OK; i++) {
            const char *dst = path;
            if (f->n > 1 || strchr(path, '%')) {
                st = png_frame_path(path, i, fp, strlen(path) + 64);
                dst = fp;
            }
            b.len = b.pos = 0;
            if (st == MAV_OK) st = mav_png_encode(&b, f->rgb + i * fsz, f->w, f->h);
            if (st == MAV_OK) st = mav_membuf_save(&b, dst);
        }
        free(fp);
    } else if (!strcmp(ext, "jpg") || !strcmp(ext, "jpeg")) {
        if (f->n != 1) st = mav_fail(MAV_ERR_ARG, "%s: JPEG holds one frame, got %d (write .png frames instead)", path, f->n);
        if (st == MAV_OK) st = mav_jpeg_encode(&b, f->rgb, f->w, f->h, o->quality);
        if (st == MAV_OK) st = mav_membuf_save(&b, path);
    } else if (!strcmp(ext, "webp")) {
        st = mav_webp_encode(&b, f, fps, o->quality);
        if (st == MAV_OK) st = mav_membuf_save(&b, path);
    } else if (!strcmp(ext, "mp4") || !strcmp(ext, "gif")) {
        st = mav_ff_encode(&b, ext, f, fps, o->quality);
        if (st == MAV_OK) st = mav_membuf_save(&b, path);
    } else {
        st = mav_fail(MAV_ERR_ARG, "%s: unknown output format \"%s\" (mp4, gif, webp, png, jpg)", path, ext);
    }
    if (st != MAV_OK && strncmp(mav_last_error(), path, strlen(path)) != 0) mav_error_prefix("%s", path);
    mav_membuf_free(&b);
    return st;
}
