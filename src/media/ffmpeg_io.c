// ffmpeg_io.c — video decoding through FFmpeg's libraries (any container/codec libavformat
// knows, from a path or from memory) and MP4 (H.264) / GIF encoding into memory.
//
// FFmpeg logs to stderr by default; mav silences it (errors come back as mav messages)
// unless MAV_FFMPEG_LOG is set in the environment.
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"

static pthread_once_t g_log_once = PTHREAD_ONCE_INIT;
static void init_log(void) { av_log_set_level(getenv("MAV_FFMPEG_LOG") ? AV_LOG_INFO : AV_LOG_QUIET); }

static const char *averr(int e, char *buf, size_t cap) {
    av_strerror(e, buf, cap);
    return buf;
}

// ---- memory input -----------------------------------------------------------------------

typedef struct {
    const uint8_t *data;
    size_t n, pos;
} mem_in;

static int mem_read(void *opaque, uint8_t *buf, int size) {
    mem_in *m = opaque;
    size_t left = m->n - m->pos, k = (size_t)size < left ? (size_t)size : left;
    if (k == 0) return AVERROR_EOF;
    memcpy(buf, m->data + m->pos, k);
    m->pos += k;
    return (int)k;
}

static int64_t mem_seek(void *opaque, int64_t off, int whence) {
    mem_in *m = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return (int64_t)m->n;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)m->pos : (int64_t)m->n;
    int64_t p = base + off;
    if (p < 0 || p > (int64_t)m->n) return AVERROR(EINVAL);
    m->pos = (size_t)p;
    return p;
}

// ---- decoding ---------------------------------------------------------------------------

typedef struct {
    AVFormatContext *fmt;
    AVIOContext *avio;
    AVCodecContext *dec;
    AVFrame *frame;
    AVPacket *pkt;
    struct SwsContext *sws;
    uint8_t *rgba;  // [h, w, 4] conversion buffer when the source has alpha
    mem_in mem;
} ff_dec;

static void ff_dec_close(ff_dec *d) {
    sws_freeContext(d->sws);
    av_packet_free(&d->pkt);
    av_frame_free(&d->frame);
    avcodec_free_context(&d->dec);
    avformat_close_input(&d->fmt);
    if (d->avio) av_freep(&d->avio->buffer);
    avio_context_free(&d->avio);
    free(d->rgba);
}

// Converts the decoded frame to RGB (compositing alpha on white) into dst [h, w, 3] of the
// output size w×h (the first frame's; later frames of another size are scaled to it).
static mav_status convert_frame(ff_dec *d, const char *name, uint8_t *dst, int w, int h) {
    AVFrame *fr = d->frame;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fr->format);
    if (!desc) return mav_fail(MAV_ERR_FORMAT, "%s: frame has no pixel format", name);
    int alpha = (desc->flags & AV_PIX_FMT_FLAG_ALPHA) != 0;
    enum AVPixelFormat ofmt = alpha ? AV_PIX_FMT_RGBA : AV_PIX_FMT_RGB24;
    d->sws = sws_getCachedContext(d->sws, fr->width, fr->height, fr->format, w, h, ofmt,
                                  SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (!d->sws) return mav_fail(MAV_ERR_FORMAT, "%s: cannot convert %s frames to RGB", name, desc->name);
    uint8_t *out = dst;
    if (alpha) {
        if (!d->rgba) d->rgba = malloc((size_t)w * h * 4);
        if (!d->rgba) return mav_fail(MAV_ERR_NOMEM, "%s: cannot allocate a frame", name);
        out = d->rgba;
    }
    uint8_t *planes[4] = {out, NULL, NULL, NULL};
    int strides[4] = {w * (alpha ? 4 : 3), 0, 0, 0};
    sws_scale(d->sws, (const uint8_t *const *)fr->data, fr->linesize, 0, fr->height, planes, strides);
    if (alpha) mav_media_rgba_to_rgb(dst, d->rgba, (size_t)w * h);
    return MAV_OK;
}

mav_status mav_ff_decode(const char *path, const uint8_t *data, size_t n, const char *name, int max_frames,
                         mav_frames *out, mav_media_info *info) {
    pthread_once(&g_log_once, init_log);
    ff_dec d;
    memset(&d, 0, sizeof d);
    char eb[128];
    mav_status st = MAV_OK;
    int e;
    d.fmt = avformat_alloc_context();
    MAV_ASSERT(d.fmt != NULL);
    if (!path) {
        if (n == 0) { avformat_free_context(d.fmt); return mav_fail(MAV_ERR_FORMAT, "%s: empty file", name); }
        d.mem = (mem_in){data, n, 0};
        uint8_t *buf = av_malloc(65536);
        MAV_ASSERT(buf != NULL);
        d.avio = avio_alloc_context(buf, 65536, 0, &d.mem, mem_read, NULL, mem_seek);
        MAV_ASSERT(d.avio != NULL);
        d.fmt->pb = d.avio;
        d.fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
    }
    if ((e = avformat_open_input(&d.fmt, path ? path : name, NULL, NULL)) < 0) {
        d.fmt = NULL;  // freed by avformat_open_input on failure
        st = mav_fail(MAV_ERR_FORMAT, "%s: not a readable image or video (%s)", name, averr(e, eb, sizeof eb));
        goto done;
    }
    if ((e = avformat_find_stream_info(d.fmt, NULL)) < 0) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: cannot read stream info (%s)", name, averr(e, eb, sizeof eb));
        goto done;
    }
    int si = av_find_best_stream(d.fmt, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (si < 0) { st = mav_fail(MAV_ERR_FORMAT, "%s: no video stream", name); goto done; }
    AVStream *vs = d.fmt->streams[si];
    AVCodecParameters *par = vs->codecpar;
    int w = par->width, h = par->height;
    st = mav_media_check_dims(name, w, h, 1);
    if (st != MAV_OK) goto done;
    // The stream's average rate when the container knows it; otherwise (GIF with few frames,
    // odd files) the rate measured from the decoded frames' timestamps below, and only as a
    // last resort r_frame_rate (often just the time base).
    AVRational fr = vs->avg_frame_rate;
    // GIF delays vary frame to frame and FFmpeg's estimate skips the last one: always measure.
    int fps_known = fr.num > 0 && fr.den > 0 && av_q2d(fr) <= 1000 && strcmp(d.fmt->iformat->name, "gif") != 0;
    double fps = fps_known ? av_q2d(fr) : 0.0;
    if (!fps_known && vs->r_frame_rate.num > 0 && vs->r_frame_rate.den > 0 && av_q2d(vs->r_frame_rate) <= 1000)
        fps = av_q2d(vs->r_frame_rate);
    long stated = vs->nb_frames > 0 ? (long)vs->nb_frames : 0;
    if (stated > MAV_MEDIA_MAX_FRAMES) { st = mav_media_check_dims(name, w, h, stated); goto done; }
    if (info) {
        memset(info, 0, sizeof *info);
        info->width = w; info->height = h; info->fps = fps;
        const char *fn = d.fmt->iformat->name, *comma = strchr(fn, ',');
        // "mov,mp4,m4a,..." names a family; say mp4 for it, else the first name.
        if (strncmp(fn, "mov,", 4) == 0) snprintf(info->format, sizeof info->format, "mp4");
        else snprintf(info->format, sizeof info->format, "%.*s", (int)(comma ? comma - fn : (long)strlen(fn)), fn);
        if (!strcmp(info->format, "image2") || !strcmp(info->format, "gif") || !strncmp(info->format, "png", 3))
            snprintf(info->format, sizeof info->format, "%s", avcodec_get_name(par->codec_id));
    }
    if (!out && stated > 0 && fps_known) {  // probe: the container states the count
        info->frames = (int)stated;
        info->duration = fps > 0 ? stated / fps : 0;
        goto done;
    }
    const AVCodec *codec = avcodec_find_decoder(par->codec_id);
    if (!codec) { st = mav_fail(MAV_ERR_FORMAT, "%s: no decoder for codec %s", name, avcodec_get_name(par->codec_id)); goto done; }
    d.dec = avcodec_alloc_context3(codec);
    MAV_ASSERT(d.dec != NULL);
    if ((e = avcodec_parameters_to_context(d.dec, par)) < 0 || (e = avcodec_open2(d.dec, codec, NULL)) < 0) {
        st = mav_fail(MAV_ERR_FORMAT, "%s: cannot open the %s decoder (%s)", name, codec->name, averr(e, eb, sizeof eb));
        goto done;
    }
    d.frame = av_frame_alloc();
    d.pkt = av_packet_alloc();
    MAV_ASSERT(d.frame && d.pkt);
    // Without max_frames, decode one past the cap so an over-long video is an error, not cut.
    long limit = max_frames > 0 ? max_frames : MAV_MEDIA_MAX_FRAMES + 1L;
    long count = 0, cap = 0;
    size_t fsz = (size_t)w * h * 3;
    uint8_t *rgb = NULL;
    int draining = 0, done_reading = 0;
    int64_t ts_first = AV_NOPTS_VALUE, ts_end = AV_NOPTS_VALUE;  // stream time base
    while (st == MAV_OK && count < limit && !done_reading) {
        if (!draining) {
            e = av_read_frame(d.fmt, d.pkt);
            if (e == AVERROR_EOF) {
                draining = 1;
                avcodec_send_packet(d.dec, NULL);
            } else if (e < 0) {
                st = mav_fail(MAV_ERR_FORMAT, "%s: read error after %ld frames (%s)", name, count, averr(e, eb, sizeof eb));
                break;
            } else {
                if (d.pkt->stream_index == si) {
                    e = avcodec_send_packet(d.dec, d.pkt);
                    if (e < 0 && e != AVERROR(EAGAIN)) {
                        av_packet_unref(d.pkt);
                        st = mav_fail(MAV_ERR_FORMAT, "%s: corrupt video data after %ld frames (%s)", name, count,
                                      averr(e, eb, sizeof eb));
                        break;
                    }
                }
                av_packet_unref(d.pkt);
            }
        }
        for (;;) {
            e = avcodec_receive_frame(d.dec, d.frame);
            if (e == AVERROR(EAGAIN)) break;
            if (e == AVERROR_EOF) { done_reading = 1; break; }
            if (e < 0) {
                st = mav_fail(MAV_ERR_FORMAT, "%s: corrupt video data after %ld frames (%s)", name, count, averr(e, eb, sizeof eb));
                break;
            }
            if (count >= limit) { av_frame_unref(d.frame); continue; }
            if (count >= MAV_MEDIA_MAX_FRAMES) {
                st = mav_media_check_dims(name, w, h, count + 1);
                break;
            }
            int64_t ts = d.frame->best_effort_timestamp;
            if (ts != AV_NOPTS_VALUE) {
                if (ts_first == AV_NOPTS_VALUE || ts < ts_first) ts_first = ts;
                int64_t end = ts + (d.frame->pkt_duration > 0 ? d.frame->pkt_duration : 0);
                if (ts_end == AV_NOPTS_VALUE || end > ts_end) ts_end = end;
            }
            if (out) {
                if (count == cap) {
                    long ncap = cap ? cap * 2 : 16;
                    if (ncap > limit) ncap = limit;
                    st = mav_media_check_dims(name, w, h, ncap);
                    uint8_t *nr = st == MAV_OK ? realloc(rgb, fsz * (size_t)ncap) : NULL;
                    if (st == MAV_OK && !nr) st = mav_fail(MAV_ERR_NOMEM, "%s: cannot hold %ld frames", name, ncap);
                    if (st != MAV_OK) { av_frame_unref(d.frame); break; }
                    rgb = nr; cap = ncap;
                }
                st = convert_frame(&d, name, rgb + (size_t)count * fsz, w, h);
            }
            av_frame_unref(d.frame);
            count++;
            if (st != MAV_OK) break;
        }
    }
    if (st == MAV_OK && count == 0) st = mav_fail(MAV_ERR_FORMAT, "%s: no video frame decodes (truncated or corrupt)", name);
    if (st == MAV_OK && !fps_known && ts_first != AV_NOPTS_VALUE && ts_end > ts_first) {
        double span = (double)(ts_end - ts_first) * av_q2d(vs->time_base);
        double m = count / span;
        if (m > 0 && m <= 1000) fps = m;
    }
    if (st == MAV_OK && info) {
        info->frames = (int)count;
        info->fps = fps;
        info->duration = fps > 0 ? count / fps : 0;
    }
    if (st == MAV_OK && out) {
        out->w = w; out->h = h; out->n = (int)count; out->fps = fps; out->rgb = rgb;
        rgb = NULL;
    }
    free(rgb);
done:
    ff_dec_close(&d);
    return st;
}

// ---- encoding ---------------------------------------------------------------------------

static int mem_write(void *opaque, uint8_t *buf, int size) {  // FFmpeg 5.1: non-const buf
    return mav_membuf_write(opaque, buf, (size_t)size) == MAV_OK ? size : AVERROR(ENOMEM);
}

static int64_t mem_wseek(void *opaque, int64_t off, int whence) {
    mav_membuf *b = opaque;
    whence &= ~AVSEEK_FORCE;
    if (whence == AVSEEK_SIZE) return (int64_t)b->len;
    int64_t base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)b->pos : (int64_t)b->len;
    int64_t p = base + off;
    if (p < 0) return AVERROR(EINVAL);
    b->pos = (size_t)p;
    return p;
}

// A 256-colour palette for GIF over the clip's 5-bit-per-channel histogram: the exact colours
// when there are at most 256 (one colour per bin), otherwise median cut (split the box with
// the widest channel range at its pixel-weighted median until there are 256 boxes; each
// entry is its box's mean colour). idx maps every 15-bit bin to its palette entry (nearest),
// so frames index with one lookup per pixel.
static _Thread_local const uint64_t (*g_sort_key)[4];  // per bin: r, g, b (5-bit), count
static _Thread_local int g_sort_axis;
static int cmp_bin(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    int d = (int)g_sort_key[x][g_sort_axis] - (int)g_sort_key[y][g_sort_axis];
    return d ? d : x - y;
}

static void gif_palette(const mav_frames *f, uint32_t pal[256], uint8_t *idx /* [32768] */, int *exact) {
    size_t np = (size_t)f->w * f->h * f->n;
    uint64_t(*key)[4] = calloc(32768, sizeof *key);  // 5-bit r, g, b; pixel count
    uint64_t(*sum)[3] = calloc(32768, sizeof *sum);
    uint32_t *first = malloc(32768 * sizeof *first);
    int *bins = malloc(32768 * sizeof *bins);
    MAV_ASSERT(key && sum && first && bins);
    int distinct_exact = 1;
    for (size_t i = 0; i < np; i++) {
        const uint8_t *p = f->rgb + 3 * i;
        uint32_t c = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        int bin = (p[0] >> 3) << 10 | (p[1] >> 3) << 5 | (p[2] >> 3);
        if (key[bin][3] == 0) first[bin] = c;
        else if (first[bin] != c) distinct_exact = 0;  // two colours share a bin
        key[bin][3]++;
        for (int k = 0; k < 3; k++) sum[bin][k] += p[k];
    }
    int used = 0;
    for (int b = 0; b < 32768; b++)
        if (key[b][3]) {
            key[b][0] = (uint64_t)(b >> 10 & 31); key[b][1] = (uint64_t)(b >> 5 & 31); key[b][2] = (uint64_t)(b & 31);
            bins[used++] = b;
        }
    *exact = distinct_exact && used <= 256;
    typedef struct { int lo, hi; } box;  // bins[lo, hi)
    box boxes[256];
    int nbox = 1;
    boxes[0] = (box){0, used};
    g_sort_key = (const uint64_t(*)[4])key;
    while (nbox < 256) {
        int best = -1, best_axis = 0, best_range = 0;
        for (int i = 0; i < nbox; i++) {
            if (boxes[i].hi - boxes[i].lo < 2) continue;
            for (int a = 0; a < 3; a++) {
                int mn = 31, mx = 0;
                for (int j = boxes[i].lo; j < boxes[i].hi; j++) {
                    int v = (int)key[bins[j]][a];
                    if (v < mn) mn = v;
                    if (v > mx) mx = v;
                }
                if (mx - mn > best_range) { best_range = mx - mn; best = i; best_axis = a; }
            }
        }
        if (best < 0) break;  // every box is a single bin
        box *bx = &boxes[best];
        g_sort_axis = best_axis;
        qsort(bins + bx->lo, (size_t)(bx->hi - bx->lo), sizeof *bins, cmp_bin);
        uint64_t total = 0, acc = 0;
        for (int j = bx->lo; j < bx->hi; j++) total += key[bins[j]][3];
        int cut = bx->lo + 1;
        for (int j = bx->lo; j < bx->hi - 1; j++) {
            acc += key[bins[j]][3];
            cut = j + 1;
            if (2 * acc >= total) break;
        }
        boxes[nbox++] = (box){cut, bx->hi};
        bx->hi = cut;
    }
    for (int i = 0; i < nbox; i++) {
        uint64_t s[3] = {0, 0, 0}, cnt = 0;
        for (int j = boxes[i].lo; j < boxes[i].hi; j++) {
            cnt += key[bins[j]][3];
            for (int k = 0; k < 3; k++) s[k] += sum[bins[j]][k];
        }
        uint32_t c[3];
        for (int k = 0; k < 3; k++) c[k] = cnt ? (uint32_t)((s[k] + cnt / 2) / cnt) : 0;
        pal[i] = 0xFF000000u | c[0] << 16 | c[1] << 8 | c[2];
    }
    for (int i = nbox; i < 256; i++) pal[i] = 0xFF000000u;
    memset(idx, 0, 32768);
    for (int j = 0; j < used; j++) {
        int b = bins[j];
        int r = (int)(sum[b][0] / key[b][3]), g = (int)(sum[b][1] / key[b][3]), bl = (int)(sum[b][2] / key[b][3]);
        int bi = 0, bd = 1 << 30;
        for (int i = 0; i < nbox; i++) {
            int dr = r - (int)(pal[i] >> 16 & 255), dg = g - (int)(pal[i] >> 8 & 255), db = bl - (int)(pal[i] & 255);
            int dd = dr * dr + dg * dg + db * db;
            if (dd < bd) { bd = dd; bi = i; }
        }
        idx[b] = (uint8_t)bi;
    }
    free(key); free(sum); free(first); free(bins);
}

// Sends one frame (or NULL to flush) and writes every packet that comes out.
static mav_status encode_send(AVCodecContext *c, AVFormatContext *oc, AVStream *s, AVFrame *fr, AVPacket *pkt) {
    char eb[128];
    int e = avcodec_send_frame(c, fr);
    if (e < 0) return mav_fail(MAV_ERR_IO, "encoder: %s", averr(e, eb, sizeof eb));
    for (;;) {
        e = avcodec_receive_packet(c, pkt);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return MAV_OK;
        if (e < 0) return mav_fail(MAV_ERR_IO, "encoder: %s", averr(e, eb, sizeof eb));
        av_packet_rescale_ts(pkt, c->time_base, s->time_base);
        pkt->stream_index = s->index;
        e = av_interleaved_write_frame(oc, pkt);
        if (e < 0) return mav_fail(MAV_ERR_IO, "muxer: %s", averr(e, eb, sizeof eb));
    }
}

mav_status mav_ff_encode(mav_membuf *b, const char *container, const mav_frames *f, double fps, int quality) {
    pthread_once(&g_log_once, init_log);
    int gif = !strcmp(container, "gif");
    char eb[128];
    mav_status st = MAV_OK;
    AVFormatContext *oc = NULL;
    AVCodecContext *c = NULL;
    AVFrame *fr = NULL;
    AVPacket *pkt = NULL;
    AVIOContext *avio = NULL;
    struct SwsContext *sws = NULL;
    uint8_t *padded = NULL, *gidx = NULL;
    uint32_t pal[256];
    int e, exact = 0;
    if (gif && (f->w > 65535 || f->h > 65535)) return mav_fail(MAV_ERR_ARG, "GIF sides are at most 65535 px");
    const AVCodec *codec = gif ? avcodec_find_encoder(AV_CODEC_ID_GIF) : avcodec_find_encoder_by_name("libx264");
    if (!codec && !gif) codec = avcodec_find_encoder(AV_CODEC_ID_H264);
    if (!codec) return mav_fail(MAV_ERR_IO, "this FFmpeg has no %s encoder", gif ? "GIF" : "H.264");
    if ((e = avformat_alloc_output_context2(&oc, NULL, container, NULL)) < 0 || !oc)
        return mav_fail(MAV_ERR_IO, "no %s muxer (%s)", container, averr(e, eb, sizeof eb));
    uint8_t *iobuf = av_malloc(65536);
    MAV_ASSERT(iobuf != NULL);
    avio = avio_alloc_context(iobuf, 65536, 1, b, NULL, mem_write, mem_wseek);
    MAV_ASSERT(avio != NULL);
    oc->pb = avio;
    oc->flags |= AVFMT_FLAG_CUSTOM_IO;
    // yuv420p needs even sides: pad by one replicated row/column (documented in media.h).
    int W = gif ? f->w : (f->w + 1) & ~1, H = gif ? f->h : (f->h + 1) & ~1;
    AVStream *s = avformat_new_stream(oc, NULL);
    c = avcodec_alloc_context3(codec);
    MAV_ASSERT(s && c);
    c->width = W;
    c->height = H;
    AVRational rate = av_d2q(fps, 100000);
    if (gif) {
        c->time_base = (AVRational){1, 100};  // GIF delays are in centiseconds
        c->pix_fmt = AV_PIX_FMT_PAL8;
    } else {
        c->time_base = av_inv_q(rate);
        c->framerate = rate;
        c->pix_fmt = AV_PIX_FMT_YUV420P;
        c->gop_size = 12;
        int crf = quality > 0 ? (100 - quality) * 51 / 100 : 18;
        char crfs[16];
        snprintf(crfs, sizeof crfs, "%d", crf);
        av_opt_set(c->priv_data, "crf", crfs, 0);
        av_opt_set(c->priv_data, "preset", "medium", 0);
    }
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((e = avcodec_open2(c, codec, NULL)) < 0) { st = mav_fail(MAV_ERR_IO, "cannot open the %s encoder (%s)", codec->name, averr(e, eb, sizeof eb)); goto done; }
    if ((e = avcodec_parameters_from_context(s->codecpar, c)) < 0) { st = mav_fail(MAV_ERR_IO, "encoder parameters (%s)", averr(e, eb, sizeof eb)); goto done; }
    s->time_base = c->time_base;
    s->avg_frame_rate = rate;
    s->r_frame_rate = rate;
    if (gif) {  // the muxer repeats the previous delay for the last frame unless told
        int64_t last = llround(f->n * 100.0 / fps) - llround((f->n - 1) * 100.0 / fps);
        av_opt_set_int(oc->priv_data, "final_delay", last > 0 ? last : 1, 0);
    }
    if ((e = avformat_write_header(oc, NULL)) < 0) { st = mav_fail(MAV_ERR_IO, "cannot write the %s header (%s)", container, averr(e, eb, sizeof eb)); goto done; }
    fr = av_frame_alloc();
    pkt = av_packet_alloc();
    MAV_ASSERT(fr && pkt);
    fr->format = c->pix_fmt;
    fr->width = W;
    fr->height = H;
    if ((e = av_frame_get_buffer(fr, 0)) < 0) { st = mav_fail(MAV_ERR_NOMEM, "frame buffer (%s)", averr(e, eb, sizeof eb)); goto done; }
    if (gif) {
        gidx = malloc(32768);
        MAV_ASSERT(gidx);
        gif_palette(f, pal, gidx, &exact);
    } else {
        padded = malloc((size_t)W * H * 3);
        MAV_ASSERT(padded);
        // Same colour conversion as the decoder's default (BT.601, limited range).
        sws = sws_getContext(W, H, AV_PIX_FMT_RGB24, W, H, AV_PIX_FMT_YUV420P,
                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INP, NULL, NULL, NULL);
        MAV_ASSERT(sws);
    }
    size_t fsz = (size_t)f->w * f->h * 3;
    for (int i = 0; i < f->n && st == MAV_OK; i++) {
        if ((e = av_frame_make_writable(fr)) < 0) { st = mav_fail(MAV_ERR_NOMEM, "frame buffer (%s)", averr(e, eb, sizeof eb)); break; }
        const uint8_t *src = f->rgb + i * fsz;
        if (gif) {
            for (int y = 0; y < H; y++)
                for (int x = 0; x < W; x++) {
                    const uint8_t *p = src + ((size_t)y * W + x) * 3;
                    uint32_t c24 = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
                    int k = gidx[(p[0] >> 3) << 10 | (p[1] >> 3) << 5 | (p[2] >> 3)];
                    if (exact)  // bins hold one colour each: the entry is that colour
                        MAV_ASSERT((pal[k] & 0xFFFFFF) == c24);
                    fr->data[0][(size_t)y * fr->linesize[0] + x] = (uint8_t)k;
                }
            memcpy(fr->data[1], pal, sizeof pal);
            fr->pts = (int64_t)llround(i * 100.0 / fps);
            // Delays are whole centiseconds; each frame lasts until the next one's rounded
            // start, so the total is the clip's duration (the muxer uses this for the last).
            fr->pkt_duration = (int64_t)llround((i + 1) * 100.0 / fps) - fr->pts;
        } else {
            for (int y = 0; y < H; y++) {
                const uint8_t *row = src + (size_t)(y < f->h ? y : f->h - 1) * f->w * 3;
                memcpy(padded + (size_t)y * W * 3, row, (size_t)f->w * 3);
                if (W > f->w) memcpy(padded + ((size_t)y * W + f->w) * 3, row + (f->w - 1) * 3, 3);
            }
            const uint8_t *planes[1] = {padded};
            int stride[1] = {W * 3};
            sws_scale(sws, planes, stride, 0, H, fr->data, fr->linesize);
            fr->pts = i;
        }
        st = encode_send(c, oc, s, fr, pkt);
    }
    if (st == MAV_OK) st = encode_send(c, oc, s, NULL, pkt);
    if (st == MAV_OK && (e = av_write_trailer(oc)) < 0) st = mav_fail(MAV_ERR_IO, "cannot finish the %s file (%s)", container, averr(e, eb, sizeof eb));
    if (st == MAV_OK) avio_flush(avio);
done:
    sws_freeContext(sws);
    free(padded);
    free(gidx);
    av_packet_free(&pkt);
    av_frame_free(&fr);
    avcodec_free_context(&c);
    if (avio) av_freep(&avio->buffer);
    avio_context_free(&avio);
    avformat_free_context(oc);
    return st;
}
