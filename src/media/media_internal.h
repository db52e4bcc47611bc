// media_internal.h — what the files of src/media share: a growable byte buffer (every
// encoder writes into one, then the file is written atomically), the per-format codecs, and
// the limit checks.
#ifndef MAV_MEDIA_INTERNAL_H
#define MAV_MEDIA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "media/media.h"

typedef struct {
    uint8_t *data;
    size_t len, cap, pos;  // pos: write position (FFmpeg's muxers seek back to patch headers)
} mav_membuf;
mav_status mav_membuf_write(mav_membuf *b, const void *p, size_t n);  // at pos, growing len
void mav_membuf_free(mav_membuf *b);
// Write the buffer to path atomically (temp file, fsync, rename).
mav_status mav_membuf_save(const mav_membuf *b, const char *path);

// Checks w, h, n against the MAV_MEDIA_* limits; name is used in the message.
mav_status mav_media_check_dims(const char *name, long w, long h, long n);
// Composite RGBA (straight alpha) onto white into RGB; rgba and rgb may not alias.
void mav_media_rgba_to_rgb(uint8_t *rgb /* [n,3] */, const uint8_t *rgba /* [n,4] */, size_t n);

typedef enum { MAV_FMT_UNKNOWN, MAV_FMT_PNG, MAV_FMT_JPEG, MAV_FMT_WEBP, MAV_FMT_GIF } mav_media_sniff;
mav_media_sniff mav_media_sniff_bytes(const uint8_t *p, size_t n);

// Still-image and WebP decoders from memory. name is for messages. info may be NULL; when
// out is NULL only the header is read to fill info.
mav_status mav_png_decode(const uint8_t *data, size_t n, const char *name, mav_frames *out, mav_media_info *info);
mav_status mav_jpeg_decode(const uint8_t *data, size_t n, const char *name, mav_frames *out, mav_media_info *info);
mav_status mav_webp_decode(const uint8_t *data, size_t n, const char *name, int max_frames, mav_frames *out,
                           mav_media_info *info);

// FFmpeg: decode from a path (data NULL) or from memory. out NULL: probe only (frames
// counted by decoding when the container does not state them).
mav_status mav_ff_decode(const char *path, const uint8_t *data, size_t n, const char *name, int max_frames,
                         mav_frames *out, mav_media_info *info);

// Encoders into a buffer. quality as in mav_media_write_opts (0: default).
mav_status mav_png_encode(mav_membuf *b, const uint8_t *rgb, int w, int h);
mav_status mav_jpeg_encode(mav_membuf *b, const uint8_t *rgb, int w, int h, int quality);
mav_status mav_webp_encode(mav_membuf *b, const mav_frames *f, double fps, int quality);
// container: "mp4" (H.264 yuv420p) or "gif".
mav_status mav_ff_encode(mav_membuf *b, const char *container, const mav_frames *f, double fps, int quality);

#endif
