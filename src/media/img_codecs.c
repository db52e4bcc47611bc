// img_codecs.c — PNG (libpng), JPEG (libjpeg-turbo) and WebP (libwebp: still, animated,
// lossless/lossy) decoders and encoders, all from/to memory. Every header's dimensions are
// checked against the limits before anything of that size is allocated.
#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>
#include <png.h>
#include <webp/decode.h>
#include <webp/demux.h>
#include <webp/encode.h>
#include <webp/mux.h>

#include "media/media_internal.h"

static void fill_still_info(mav_media_info *info, int w, int h, const char *fmt) {
    if (!info) return;
    memset(info, 0, sizeof *info);
    info->width = w; info->height = h; info->frames = 1;
    snprintf(info->format, sizeof info->format, "%s", fmt);
}

// ---- PNG --------------------------------------------------------------------------------

typedef struct {
    const uint8_t *data;
    size_t n, pos;
    char msg[160];
} png_mem;

static void png_mem_read(png_structp png, png_bytep out, size_t len) {
    png_mem *m = png_get_io_ptr(png);
    if (len > m->n - m->pos) png_error(png, "truncated file");
    memcpy(out, m->data + m->pos, len);
    m->pos += len;
}

static void png_on_error(png_structp png, png_const_charp msg) {
    png_mem *m = png_get_error_ptr(png);
    snprintf(m->msg, sizeof m->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png; (void)msg; }

mav_status mav_png_decode(const uint8_t *data, size_t n, const char *name, mav_frames *out, mav_media_info *info) {
    png_mem m = {data, n, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &m, png_on_error, png_on_warning);
    if (!png) return mav_fail(MAV_ERR_NOMEM, "%s: libpng init failed", name);
    png_infop pi = png_create_info_struct(png);
    uint8_t *volatile rgba = NULL;
    png_bytep *volatile rows = NULL;
    mav_status st = MAV_OK;
    if (!pi) { png_destroy_read_struct(&png, NULL, NULL); return mav_fail(MAV_ERR_NOMEM, "%s: libpng init failed", name); }
    if (setjmp(png_jmpbuf(png))) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: bad PNG: %s", name, m.msg);
        goto done;
    }
    // libpng refuses larger headers itself (before any allocation of that size).
    png_set_user_limits(png, MAV_MEDIA_MAX_SIDE, MAV_MEDIA_MAX_SIDE);
    png_set_chunk_malloc_max(png, 64u << 20);
    png_set_read_fn(png, &m, png_mem_read);
    png_read_info(png, pi);
    png_uint_32 w = png_get_image_width(png, pi), h = png_get_image_height(png, pi);
    st = mav_media_check_dims(name, (long)w, (long)h, 1);
    if (st != MAV_OK) goto done;
    fill_still_info(info, (int)w, (int)h, "png");
    if (!out) goto done;
    // Everything to 8-bit RGBA: palette and low-bit gray expand, tRNS becomes alpha,
    // 16-bit is scaled (rounded) to 8, opaque images get alpha 255.
    png_set_expand(png);
    png_set_scale_16(png);
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xFF, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, pi);
    if (png_get_rowbytes(png, pi) != (size_t)w * 4) png_error(png, "unexpected row layout");
    rgba = malloc((size_t)w * h * 4);
    rows = malloc(sizeof(png_bytep) * h);
    if (!rgba || !rows) { st = mav_fail(MAV_ERR_NOMEM, "%s: cannot allocate %ux%u", name, w, h); goto done; }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = rgba + (size_t)y * w * 4;
    png_read_image(png, rows);
    png_read_end(png, NULL);  // a file cut after the image data (no IEND) is still truncated
    st = mav_frames_alloc(out, (int)w, (int)h, 1, 0);
    if (st == MAV_OK) mav_media_rgba_to_rgb(out->rgb, rgba, (size_t)w * h);
done:
    png_destroy_read_struct(&png, &pi, NULL);
    free(rgba);
    free(rows);
    return st;
}

static void png_mem_write(png_structp png, png_bytep p, size_t len) {
    mav_membuf *b = png_get_io_ptr(png);
    if (mav_membuf_write(b, p, len) != MAV_OK) png_error(png, "out of memory");
}
static void png_mem_flush(png_structp png) { (void)png; }

mav_status mav_png_encode(mav_membuf *b, const uint8_t *rgb, int w, int h) {
    png_mem m = {NULL, 0, 0, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &m, png_on_error, png_on_warning);
    if (!png) return mav_fail(MAV_ERR_NOMEM, "libpng init failed");
    png_infop pi = png_create_info_struct(png);
    if (!pi) { png_destroy_write_struct(&png, NULL); return mav_fail(MAV_ERR_NOMEM, "libpng init failed"); }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &pi);
        return mav_fail(MAV_ERR_IO, "PNG encoding failed: %s", m.msg);
    }
    png_set_write_fn(png, b, png_mem_write, png_mem_flush);
    png_set_IHDR(png, pi, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_sRGB(png, pi, PNG_sRGB_INTENT_PERCEPTUAL);
    png_write_info(png, pi);
    for (int y = 0; y < h; y++) png_write_row(png, rgb + (size_t)y * w * 3);
    png_write_end(png, pi);
    png_destroy_write_struct(&png, &pi);
    return MAV_OK;
}

// ---- JPEG -------------------------------------------------------------------------------

typedef struct {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    int truncated;  // libjpeg only warns on premature end of data; mav treats it as an error
} jpeg_err;

static void jpeg_on_error(j_common_ptr c) { longjmp(((jpeg_err *)c->err)->jb, 1); }

static void jpeg_on_message(j_common_ptr c, int level) {
    jpeg_err *e = (jpeg_err *)c->err;
    if (level < 0) {
        if (c->err->msg_code == JWRN_JPEG_EOF) e->truncated = 1;
        c->err->num_warnings++;
    }
}

mav_status mav_jpeg_decode(const uint8_t *data, size_t n, const char *name, mav_frames *out, mav_media_info *info) {
    struct jpeg_decompress_struct c;
    jpeg_err e;
    mav_status st = MAV_OK;
    uint8_t *volatile row = NULL;
    memset(&c, 0, sizeof c);
    c.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_on_error;
    e.pub.emit_message = jpeg_on_message;
    e.truncated = 0;
    if (setjmp(e.jb)) {
        char msg[JMSG_LENGTH_MAX];
        e.pub.format_message((j_common_ptr)&c, msg);
        jpeg_destroy_decompress(&c);
        free(row);
        if (out) mav_frames_free(out);
        return mav_fail(MAV_ERR_FORMAT, "%s: bad JPEG: %s", name, msg);
    }
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, data, (unsigned long)n);
    jpeg_read_header(&c, TRUE);
    st = mav_media_check_dims(name, (long)c.image_width, (long)c.image_height, 1);
    if (st == MAV_OK) fill_still_info(info, (int)c.image_width, (int)c.image_height, "jpeg");
    if (st != MAV_OK || !out) { jpeg_destroy_decompress(&c); return st; }
    int cmyk = c.jpeg_color_space == JCS_CMYK || c.jpeg_color_space == JCS_YCCK;
    c.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&c);
    int w = (int)c.output_width, h = (int)c.output_height;
    st = mav_frames_alloc(out, w, h, 1, 0);
    if (st != MAV_OK) { jpeg_destroy_decompress(&c); return st; }
    row = malloc((size_t)w * 4);
    MAV_ASSERT(row != NULL);
    while (c.output_scanline < c.output_height) {
        uint8_t *dst = out->rgb + (size_t)c.output_scanline * w * 3;
        JSAMPROW rp = cmyk ? row : dst;
        jpeg_read_scanlines(&c, &rp, 1);
        if (e.truncated) break;
        if (cmyk)  // Adobe writes CMYK inverted: R = C·K/255 with the stored (inverted) values
            for (int x = 0; x < w; x++)
                for (int k = 0; k < 3; k++) dst[3 * x + k] = (uint8_t)((row[4 * x + k] * row[4 * x + 3] + 127) / 255);
    }
    free(row);
    row = NULL;
    if (e.truncated) {
        jpeg_destroy_decompress(&c);
        mav_frames_free(out);
        return mav_fail(MAV_ERR_FORMAT, "%s: bad JPEG: file is truncated", name);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    if (e.truncated) { mav_frames_free(out); return mav_fail(MAV_ERR_FORMAT, "%s: bad JPEG: file is truncated", name); }
    return MAV_OK;
}

mav_status mav_jpeg_encode(mav_membuf *b, const uint8_t *rgb, int w, int h, int quality) {
    struct jpeg_compress_struct c;
    jpeg_err e;
    unsigned char *volatile mem = NULL;
    unsigned long size = 0;
    memset(&c, 0, sizeof c);
    c.err = jpeg_std_error(&e.pub);
    e.pub.error_exit = jpeg_on_error;
    if (setjmp(e.jb)) {
        char msg[JMSG_LENGTH_MAX];
        e.pub.format_message((j_common_ptr)&c, msg);
        jpeg_destroy_compress(&c);
        free(mem);
        return mav_fail(MAV_ERR_IO, "JPEG encoding failed: %s", msg);
    }
    jpeg_create_compress(&c);
    unsigned char *m = NULL;
    jpeg_mem_dest(&c, &m, &size);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, quality > 0 ? quality : 90, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW rp = (JSAMPROW)(rgb + (size_t)c.next_scanline * w * 3);
        jpeg_write_scanlines(&c, &rp, 1);
    }
    jpeg_finish_compress(&c);
    mem = m;
    mav_status st = mav_membuf_write(b, m, size);
    jpeg_destroy_compress(&c);
    free(m);
    return st;
}

// ---- WebP -------------------------------------------------------------------------------

mav_status mav_webp_decode(const uint8_t *data, size_t n, const char *name, int max_frames, mav_frames *out,
                           mav_media_info *info) {
    WebPData wd = {data, n};
    WebPDemuxer *dmx = WebPDemux(&wd);
    if (!dmx) return mav_fail(MAV_ERR_FORMAT, "%s: bad WebP: cannot parse the container (truncated or corrupt)", name);
    int w = (int)WebPDemuxGetI(dmx, WEBP_FF_CANVAS_WIDTH), h = (int)WebPDemuxGetI(dmx, WEBP_FF_CANVAS_HEIGHT);
    int count = (int)WebPDemuxGetI(dmx, WEBP_FF_FRAME_COUNT);
    mav_status st = mav_media_check_dims(name, w, h, count);
    long total_ms = 0;
    WebPIterator it;
    if (st == MAV_OK && WebPDemuxGetFrame(dmx, 1, &it)) {
        do total_ms += it.duration; while (WebPDemuxNextFrame(&it));
        WebPDemuxReleaseIterator(&it);
    }
    WebPDemuxDelete(dmx);
    if (st != MAV_OK) return st;
    // fps = 1000 / mean frame duration; browsers show 0-duration frames at 10 fps.
    double fps = count > 1 ? (total_ms > 0 ? 1000.0 * count / (double)total_ms : 10.0) : 0.0;
    if (info) {
        memset(info, 0, sizeof *info);
        info->width = w; info->height = h; info->frames = count; info->fps = fps;
        info->duration = count > 1 ? count / fps : 0;
        snprintf(info->format, sizeof info->format, "webp");
    }
    if (!out) return MAV_OK;
    int nf = max_frames > 0 && max_frames < count ? max_frames : count;
    WebPAnimDecoderOptions opt;
    if (!WebPAnimDecoderOptionsInit(&opt)) return mav_fail(MAV_ERR_FORMAT, "%s: libwebp version mismatch", name);
    opt.color_mode = MODE_RGBA;
    opt.use_threads = 0;
    WebPAnimDecoder *dec = WebPAnimDecoderNew(&wd, &opt);
    if (!dec) return mav_fail(MAV_ERR_FORMAT, "%s: bad WebP: cannot start decoding", name);
    st = mav_frames_alloc(out, w, h, nf, fps);
    for (int i = 0; i < nf && st == MAV_OK; i++) {
        uint8_t *buf;
        int ts;
        if (!WebPAnimDecoderHasMoreFrames(dec) || !WebPAnimDecoderGetNext(dec, &buf, &ts))
            st = mav_fail(MAV_ERR_FORMAT, "%s: bad WebP: frame %d does not decode (truncated or corrupt)", name, i);
        else
            mav_media_rgba_to_rgb(out->rgb + (size_t)i * w * h * 3, buf, (size_t)w * h);
    }
    WebPAnimDecoderDelete(dec);
    if (st != MAV_OK) mav_frames_free(out);
    return st;
}

static mav_status webp_picture(WebPPicture *pic, const uint8_t *rgb, int w, int h, int lossless) {
    if (!WebPPictureInit(pic)) return mav_fail(MAV_ERR_IO, "libwebp version mismatch");
    pic->width = w; pic->height = h;
    pic->use_argb = lossless;
    if (!WebPPictureImportRGB(pic, rgb, w * 3)) return mav_fail(MAV_ERR_NOMEM, "WebP: cannot import %dx%d", w, h);
    return MAV_OK;
}

mav_status mav_webp_encode(mav_membuf *b, const mav_frames *f, double fps, int quality) {
    if (f->w > WEBP_MAX_DIMENSION || f->h > WEBP_MAX_DIMENSION)
        return mav_fail(MAV_ERR_ARG, "WebP sides are at most %d px, got %dx%d", WEBP_MAX_DIMENSION, f->w, f->h);
    int lossless = quality == 100, q = quality > 0 ? quality : 90;
    WebPConfig cfg;
    if (!WebPConfigInit(&cfg)) return mav_fail(MAV_ERR_IO, "libwebp version mismatch");
    cfg.lossless = lossless;
    cfg.quality = lossless ? 75.f : (float)q;  // for lossless, quality is effort
    cfg.method = 4;
    size_t fsz = (size_t)f->w * f->h * 3;
    mav_status st = MAV_OK;
    if (f->n == 1) {
        WebPPicture pic;
        WebPMemoryWriter wr;
        st = webp_picture(&pic, f->rgb, f->w, f->h, lossless);
        if (st != MAV_OK) return st;
        WebPMemoryWriterInit(&wr);
        pic.writer = WebPMemoryWrite;
        pic.custom_ptr = &wr;
        if (!WebPEncode(&cfg, &pic)) st = mav_fail(MAV_ERR_IO, "WebP encoding failed (error %d)", (int)pic.error_code);
        else st = mav_membuf_write(b, wr.mem, wr.size);
        WebPMemoryWriterClear(&wr);
        WebPPictureFree(&pic);
        return st;
    }
    WebPAnimEncoderOptions ao;
    if (!WebPAnimEncoderOptionsInit(&ao)) return mav_fail(MAV_ERR_IO, "libwebp version mismatch");
    ao.anim_params.loop_count = 0;
    ao.anim_params.bgcolor = 0xFFFFFFFF;
    WebPAnimEncoder *enc = WebPAnimEncoderNew(f->w, f->h, &ao);
    if (!enc) return mav_fail(MAV_ERR_NOMEM, "WebP: cannot start the animation encoder");
    for (int i = 0; i <= f->n && st == MAV_OK; i++) {
        // Timestamps in ms rounded from i/fps, so long clips do not drift.
        int ts = (int)(1000.0 * i / fps + 0.5);
        if (i == f->n) {
            if (!WebPAnimEncoderAdd(enc, NULL, ts, NULL)) st = mav_fail(MAV_ERR_IO, "WebP: %s", WebPAnimEncoderGetError(enc));
            break;
        }
        WebPPicture pic;
        st = webp_picture(&pic, f->rgb + i * fsz, f->w, f->h, 1);
        if (st == MAV_OK && !WebPAnimEncoderAdd(enc, &pic, ts, &cfg))
            st = mav_fail(MAV_ERR_IO, "WebP: frame %d: %s", i, WebPAnimEncoderGetError(enc));
        WebPPictureFree(&pic);
    }
    WebPData out = {NULL, 0};
    if (st == MAV_OK && !WebPAnimEncoderAssemble(enc, &out)) st = mav_fail(MAV_ERR_IO, "WebP: %s", WebPAnimEncoderGetError(enc));
    if (st == MAV_OK) st = mav_membuf_write(b, out.bytes, out.size);
    WebPDataClear(&out);
    WebPAnimEncoderDelete(enc);
    return st;
}
