// frames_ops.c — resize + centre crop, conversion to and from the networks' f32 videos,
// and PNG contact sheets with a built-in 5×7 font.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "media/media_internal.h"

// ---- resize + crop ----------------------------------------------------------------------

typedef struct {
    int first, count;  // source taps first .. first+count-1
    int off;           // offset into the weight array
} axis_tap;

// Taps for one axis: output i of n_out covers source [x0 + i/s, x0 + (i+1)/s) with
// x0 = (n_in − n_out/s)/2 (the centred crop window). Shrinking (s < 1): each source pixel
// weighs its overlap with that interval (area average). Enlarging or equal (s >= 1):
// bilinear at the interval's centre, edges clamped (s == 1 with an integer offset is a copy).
static float *axis_taps(int n_in, int n_out, double s, axis_tap *taps) {
    double x0 = (n_in - n_out / s) / 2;
    int maxc = s < 1 ? (int)ceil(1 / s) + 2 : 2;
    float *wt = malloc(sizeof(float) * (size_t)n_out * maxc);
    MAV_ASSERT(wt != NULL);
    for (int i = 0; i < n_out; i++) {
        axis_tap *t = &taps[i];
        t->off = i * maxc;
        if (s < 1) {
            double a = x0 + i / s, b = a + 1 / s;
            if (a < 0) a = 0;
            if (b > n_in) b = n_in;
            int j0 = (int)floor(a), j1 = (int)ceil(b);
            if (j1 <= j0) j1 = j0 + 1;
            t->first = j0;
            t->count = 0;
            double total = 0;
            for (int j = j0; j < j1; j++) total += fmin(b, j + 1) - fmax(a, j);
            for (int j = j0; j < j1; j++) {
                double ov = fmin(b, j + 1) - fmax(a, j);
                wt[t->off + t->count++] = (float)(ov / total);
            }
            MAV_ASSERT(t->count <= maxc && j1 <= n_in);
        } else {
            double c = x0 + (i + 0.5) / s - 0.5;
            if (c < 0) c = 0;
            if (c > n_in - 1) c = n_in - 1;
            int j = (int)floor(c);
            double fr = c - j;
            if (j >= n_in - 1) { j = n_in - 1; fr = 0; }
            t->first = j;
            t->count = fr > 0 ? 2 : 1;
            wt[t->off] = (float)(1 - fr);
            if (fr > 0) wt[t->off + 1] = (float)fr;
        }
    }
    return wt;
}

mav_status mav_frames_resize_crop(mav_frames *dst, const mav_frames *src, int w, int h) {
    memset(dst, 0, sizeof *dst);
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0 || src->n <= 0)
        return mav_fail(MAV_ERR_ARG, "resize: empty source");
    mav_status st = mav_frames_alloc(dst, w, h, src->n, src->fps);
    if (st != MAV_OK) return st;
    // One scale for both axes: the smallest that covers w×h (aspect kept, then cropped).
    double s = fmax((double)w / src->w, (double)h / src->h);
    axis_tap *tx = malloc(sizeof *tx * (size_t)w), *ty = malloc(sizeof *ty * (size_t)h);
    MAV_ASSERT(tx && ty);
    float *wx = axis_taps(src->w, w, s, tx), *wy = axis_taps(src->h, h, s, ty);
    float *tmp = malloc(sizeof(float) * (size_t)src->h * w * 3);  // [src h, w, 3] after the x pass
    MAV_ASSERT(tmp != NULL);
    for (int f = 0; f < src->n; f++) {
        const uint8_t *in = src->rgb + (size_t)f * src->w * src->h * 3;
        uint8_t *out = dst->rgb + (size_t)f * w * h * 3;
#pragma omp parallel for schedule(static)
        for (int y = 0; y < src->h; y++)
            for (int x = 0; x < w; x++) {
                float acc[3] = {0, 0, 0};
                for (int k = 0; k < tx[x].count; k++) {
                    const uint8_t *p = in + ((size_t)y * src->w + tx[x].first + k) * 3;
                    float wk = wx[tx[x].off + k];
                    for (int c = 0; c < 3; c++) acc[c] += wk * p[c];
                }
                for (int c = 0; c < 3; c++) tmp[((size_t)y * w + x) * 3 + c] = acc[c];
            }
#pragma omp parallel for schedule(static)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float acc[3] = {0, 0, 0};
                for (int k = 0; k < ty[y].count; k++) {
                    const float *p = tmp + ((size_t)(ty[y].first + k) * w + x) * 3;
                    float wk = wy[ty[y].off + k];
                    for (int c = 0; c < 3; c++) acc[c] += wk * p[c];
                }
                for (int c = 0; c < 3; c++) {
                    float v = acc[c] + 0.5f;
                    out[((size_t)y * w + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
                }
            }
    }
    free(tmp); free(wx); free(wy); free(tx); free(ty);
    return MAV_OK;
}

// ---- f32 videos -------------------------------------------------------------------------

void mav_frames_to_f32(float *dst, const mav_frames *f) {
    size_t hw = (size_t)f->w * f->h;
    for (int i = 0; i < f->n; i++) {
        const uint8_t *in = f->rgb + (size_t)i * hw * 3;
        float *out = dst + (size_t)i * 3 * hw;
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < 3; c++) out[c * hw + p] = in[3 * p + c] * (1.0f / 127.5f) - 1.0f;
    }
}

void mav_frames_from_f32(mav_frames *f, const float *src) {
    size_t hw = (size_t)f->w * f->h;
    for (int i = 0; i < f->n; i++) {
        const float *in = src + (size_t)i * 3 * hw;
        uint8_t *out = f->rgb + (size_t)i * hw * 3;
        for (size_t p = 0; p < hw; p++)
            for (int c = 0; c < 3; c++) {
                float v = in[c * hw + p];
                v = v != v ? 0.0f : v < -1 ? -1.0f : v > 1 ? 1.0f : v;  // NaN -> mid-grey
                out[3 * p + c] = (uint8_t)lrintf((v + 1.0f) * 127.5f);
            }
    }
}

// ---- contact sheets ---------------------------------------------------------------------

// The classic 5×7 LCD font, ASCII 32..126: five columns per glyph, bit 0 = top row.
static const uint8_t k_font[95][5] = {
    {0x00,0x00,0x00,0x00,0x00},{0x00,0x00,0x5F,0x00,0x00},{0x00,0x07,0x00,0x07,0x00},{0x14,0x7F,0x14,0x7F,0x14},
    {0x24,0x2A,0x7F,0x2A,0x12},{0x23,0x13,0x08,0x64,0x62},{0x36,0x49,0x55,0x22,0x50},{0x00,0x05,0x03,0x00,0x00},
    {0x00,0x1C,0x22,0x41,0x00},{0x00,0x41,0x22,0x1C,0x00},{0x08,0x2A,0x1C,0x2A,0x08},{0x08,0x08,0x3E,0x08,0x08},
    {0x00,0x50,0x30,0x00,0x00},{0x08,0x08,0x08,0x08,0x08},{0x00,0x60,0x60,0x00,0x00},{0x20,0x10,0x08,0x04,0x02},
    {0x3E,0x51,0x49,0x45,0x3E},{0x00,0x42,0x7F,0x40,0x00},{0x42,0x61,0x51,0x49,0x46},{0x21,0x41,0x45,0x4B,0x31},
    {0x18,0x14,0x12,0x7F,0x10},{0x27,0x45,0x45,0x45,0x39},{0x3C,0x4A,0x49,0x49,0x30},{0x01,0x71,0x09,0x05,0x03},
    {0x36,0x49,0x49,0x49,0x36},{0x06,0x49,0x49,0x29,0x1E},{0x00,0x36,0x36,0x00,0x00},{0x00,0x56,0x36,0x00,0x00},
    {0x08,0x14,0x22,0x41,0x00},{0x14,0x14,0x14,0x14,0x14},{0x00,0x41,0x22,0x14,0x08},{0x02,0x01,0x51,0x09,0x06},
    {0x32,0x49,0x79,0x41,0x3E},{0x7E,0x11,0x11,0x11,0x7E},{0x7F,0x49,0x49,0x49,0x36},{0x3E,0x41,0x41,0x41,0x22},
    {0x7F,0x41,0x41,0x22,0x1C},{0x7F,0x49,0x49,0x49,0x41},{0x7F,0x09,0x09,0x09,0x01},{0x3E,0x41,0x49,0x49,0x7A},
    {0x7F,0x08,0x08,0x08,0x7F},{0x00,0x41,0x7F,0x41,0x00},{0x20,0x40,0x41,0x3F,0x01},{0x7F,0x08,0x14,0x22,0x41},
    {0x7F,0x40,0x40,0x40,0x40},{0x7F,0x02,0x0C,0x02,0x7F},{0x7F,0x04,0x08,0x10,0x7F},{0x3E,0x41,0x41,0x41,0x3E},
    {0x7F,0x09,0x09,0x09,0x06},{0x3E,0x41,0x51,0x21,0x5E},{0x7F,0x09,0x19,0x29,0x46},{0x46,0x49,0x49,0x49,0x31},
    {0x01,0x01,0x7F,0x01,0x01},{0x3F,0x40,0x40,0x40,0x3F},{0x1F,0x20,0x40,0x20,0x1F},{0x3F,0x40,0x38,0x40,0x3F},
    {0x63,0x14,0x08,0x14,0x63},{0x07,0x08,0x70,0x08,0x07},{0x61,0x51,0x49,0x45,0x43},{0x00,0x7F,0x41,0x41,0x00},
    {0x02,0x04,0x08,0x10,0x20},{0x00,0x41,0x41,0x7F,0x00},{0x04,0x02,0x01,0x02,0x04},{0x40,0x40,0x40,0x40,0x40},
    {0x00,0x01,0x02,0x04,0x00},{0x20,0x54,0x54,0x54,0x78},{0x7F,0x48,0x44,0x44,0x38},{0x38,0x44,0x44,0x44,0x20},
    {0x38,0x44,0x44,0x48,0x7F},{0x38,0x54,0x54,0x54,0x18},{0x08,0x7E,0x09,0x01,0x02},{0x0C,0x52,0x52,0x52,0x3E},
    {0x7F,0x08,0x04,0x04,0x78},{0x00,0x44,0x7D,0x40,0x00},{0x20,0x40,0x44,0x3D,0x00},{0x7F,0x10,0x28,0x44,0x00},
    {0x00,0x41,0x7F,0x40,0x00},{0x7C,0x04,0x18,0x04,0x78},{0x7C,0x08,0x04,0x04,0x78},{0x38,0x44,0x44,0x44,0x38},
    {0x7C,0x14,0x14,0x14,0x08},{0x08,0x14,0x14,0x18,0x7C},{0x7C,0x08,0x04,0x04,0x08},{0x48,0x54,0x54,0x54,0x20},
    {0x04,0x3F,0x44,0x40,0x20},{0x3C,0x40,0x40,0x20,0x7C},{0x1C,0x20,0x40,0x20,0x1C},{0x3C,0x40,0x30,0x40,0x3C},
    {0x44,0x28,0x10,0x28,0x44},{0x0C,0x50,0x50,0x50,0x3C},{0x44,0x64,0x54,0x4C,0x44},{0x00,0x08,0x36,0x41,0x00},
    {0x00,0x00,0x7F,0x00,0x00},{0x00,0x41,0x36,0x08,0x00},{0x08,0x04,0x08,0x10,0x08},
};

enum { SHEET_GAP = 2, GLYPH_W = 6, GLYPH_H = 7, CAPTION_H = GLYPH_H + 4 };

void mav_contact_sheet_size(const mav_frames *videos, int n_videos, int with_captions, int *w, int *h) {
    int cw = 0, ch = 0, cols = 0;
    for (int v = 0; v < n_videos; v++) {
        if (videos[v].w > cw) cw = videos[v].w;
        if (videos[v].h > ch) ch = videos[v].h;
        if (videos[v].n > cols) cols = videos[v].n;
    }
    *w = SHEET_GAP + cols * (cw + SHEET_GAP);
    *h = SHEET_GAP + n_videos * (ch + SHEET_GAP + (with_captions ? CAPTION_H : 0));
}

// Draws text in black from (x, y), clipped to the image; non-ASCII bytes draw as '?'.
static void draw_text(uint8_t *img, int iw, int ih, int x, int y, const char *text) {
    for (const unsigned char *p = (const unsigned char *)text; *p && x < iw; p++, x += GLYPH_W) {
        int g = *p >= 32 && *p <= 126 ? *p - 32 : '?' - 32;
        for (int cx = 0; cx < 5; cx++)
            for (int cy = 0; cy < GLYPH_H; cy++)
                if (k_font[g][cx] >> cy & 1) {
                    int px = x + cx, py = y + cy;
                    if (px >= 0 && px < iw && py >= 0 && py < ih) memset(img + ((size_t)py * iw + px) * 3, 0, 3);
                }
    }
}

mav_status mav_contact_sheet(const char *path, const mav_frames *videos, int n_videos, const char *const *captions) {
    if (n_videos <= 0) return mav_fail(MAV_ERR_ARG, "%s: a contact sheet needs at least one video", path);
    for (int v = 0; v < n_videos; v++)
        if (!videos[v].rgb || videos[v].w <= 0 || videos[v].h <= 0 || videos[v].n <= 0)
            return mav_fail(MAV_ERR_ARG, "%s: video %d is empty", path, v);
    int W, H, cw = 0, ch = 0;
    mav_contact_sheet_size(videos, n_videos, captions != NULL, &W, &H);
    for (int v = 0; v < n_videos; v++) {
        if (videos[v].w > cw) cw = videos[v].w;
        if (videos[v].h > ch) ch = videos[v].h;
    }
    mav_frames sheet;
    mav_status st = mav_frames_alloc(&sheet, W, H, 1, 0);
    if (st != MAV_OK) return mav_fail(st, "%s: contact sheet of %dx%d is too large", path, W, H);
    memset(sheet.rgb, 255, (size_t)W * H * 3);
    int y = SHEET_GAP;
    for (int v = 0; v < n_videos; v++) {
        const mav_frames *f = &videos[v];
        if (captions) {
            if (captions[v]) draw_text(sheet.rgb, W, H, SHEET_GAP, y + 2, captions[v]);
            y += CAPTION_H;
        }
        for (int i = 0; i < f->n; i++) {
            int x = SHEET_GAP + i * (cw + SHEET_GAP);
            for (int r = 0; r < f->h; r++)
                memcpy(sheet.rgb + ((size_t)(y + r) * W + x) * 3, f->rgb + (((size_t)i * f->h + r) * f->w) * 3,
                       (size_t)f->w * 3);
        }
        y += ch + SHEET_GAP;
    }
    mav_membuf b = {0};
    st = mav_png_encode(&b, sheet.rgb, W, H);
    if (st == MAV_OK) st = mav_membuf_save(&b, path);
    mav_membuf_free(&b);
    mav_frames_free(&sheet);
    return st;
}
