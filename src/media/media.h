// media.h — image and video I/O: decode anything mav reads into 8-bit RGB frames, write
// MP4 / GIF / WebP / PNG / JPEG, resize+crop, convert to and from the f32 [-1, 1] video
// tensors the networks use, and PNG contact sheets. See docs/MEDIA.md.
//
// Decoders: PNG (libpng: 8/16-bit, palette, gray, alpha), JPEG (libjpeg-turbo), WebP still
// and animated (libwebp's WebPAnimDecoder; FFmpeg 5.1 cannot decode animated WebP), frame
// folders (a directory of .png/.jpg/.jpeg files sorted by name, 8 fps), and everything else
// through FFmpeg's libraries (MP4, WebM, AVI, MPEG, OGV, GIF, ...).
// Alpha is always composited on white. Frames are 8-bit sRGB, rows top to bottom.
//
// Limits (bad input is an error naming the file, never a crash): sides <= MAV_MEDIA_MAX_SIDE,
// frames <= MAV_MEDIA_MAX_FRAMES, total decoded bytes <= MAV_MEDIA_MAX_BYTES.
#ifndef MAV_MEDIA_H
#define MAV_MEDIA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

#define MAV_MEDIA_MAX_SIDE 16384
#define MAV_MEDIA_MAX_FRAMES 100000
#define MAV_MEDIA_MAX_BYTES (8ull << 30)  // decoded RGB bytes of one read
#define MAV_MEDIA_FOLDER_FPS 8.0          // fps of a frame folder

typedef struct {
    int width, height, frames;  // frames: 1 for a still image
    double fps, duration;       // fps 0 for a still image; duration = frames / fps (0 for stills)
    char format[16];            // "png", "jpeg", "webp", "folder", or FFmpeg's demuxer name ("mov,mp4..." cut)
} mav_media_info;

typedef struct {
    int w, h, n;
    double fps;    // 0 when unknown / a still image
    uint8_t *rgb;  // [n, h, w, 3], 8-bit sRGB; alpha composited on white
} mav_frames;

// Describe a file or a frame folder; reads headers only where the format allows (PNG, JPEG,
// WebP, containers that state their frame count), else decodes to count frames.
mav_status mav_media_probe(const char *path, mav_media_info *info);
// Decode up to max_frames frames (max_frames <= 0: all) of a file or frame folder into *out
// (allocated here; free with mav_frames_free). *out is zeroed on failure.
mav_status mav_media_read(const char *path, int max_frames, mav_frames *out);
// The same from memory; name_hint's extension picks the decoder when the bytes do not
// (PNG/JPEG/WebP/GIF are sniffed by magic; the rest goes to FFmpeg through an AVIOContext).
mav_status mav_media_read_memory(const uint8_t *data, size_t n, const char *name_hint, int max_frames,
                                 mav_frames *out);
void mav_frames_free(mav_frames *f);
// Allocate rgb for n frames of w×h (zero-filled); checks the limits above.
mav_status mav_frames_alloc(mav_frames *f, int w, int h, int n, double fps);

typedef struct {
    double fps;   // 0: use the frames' fps, else 8
    int quality;  // 0..100, the format's default when 0 (JPEG 90, WebP 90, H.264 crf 18)
} mav_media_write_opts;

// Write frames; the format comes from the extension (case-insensitive):
//   .mp4   H.264 (libx264) yuv420p at the given fps. Odd widths/heights are padded by one
//          pixel (edge replicated) since yuv420p needs even sizes.
//   .gif   FFmpeg's GIF encoder with a per-file palette (exact when <= 256 colours).
//   .webp  lossless when quality is 100, else lossy; animated (WebPAnimEncoder) when n > 1.
//   .png   one file per frame: n == 1 writes PATH; n > 1 writes PATH with its single "%0Nd"
//          (or "%d") replaced by the frame index, or, when PATH has no '%', STEM_0000.png ...
//   .jpg/.jpeg  a single frame (n must be 1).
// o may be NULL. Each file is written atomically (temp file, fsync, rename).
mav_status mav_media_write(const char *path, const mav_frames *f, const mav_media_write_opts *o);

// Scale src to cover w×h keeping the aspect ratio (area averaging per axis when shrinking,
// bilinear with half-pixel centres when enlarging), then centre-crop to w×h. dst is
// allocated here (free with mav_frames_free); fps is copied.
mav_status mav_frames_resize_crop(mav_frames *dst, const mav_frames *src, int w, int h);

// f32 [-1, 1] video [F, 3, H, W] (frames-major, one sample) <-> frames: x = v/127.5 - 1.
void mav_frames_to_f32(float *dst /* [n,3,h,w] */, const mav_frames *f);
// f must be allocated with the right w, h, n; clamps to [-1, 1] and rounds to nearest.
void mav_frames_from_f32(mav_frames *f, const float *src /* [n,3,h,w] */);

// A PNG contact sheet: one row per video, its frames left to right, a caption line (built-in
// 5×7 bitmap font, ASCII; other bytes as '?') above each row when captions is non-NULL
// (a NULL entry means no caption text for that row). Videos may differ in size and length:
// cells are the largest w×h, white background.
mav_status mav_contact_sheet(const char *path, const mav_frames *videos, int n_videos,
                             const char *const *captions /* [n_videos] or NULL */);
// Size of the sheet mav_contact_sheet writes (for tests and callers that want to check).
void mav_contact_sheet_size(const mav_frames *videos, int n_videos, int with_captions, int *w, int *h);

#endif
