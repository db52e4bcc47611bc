// clip_image.c — CLIP's image preprocessing (SPEC §4): bicubic resize of the short side,
// centre crop, normalisation. The resize is PIL's / torch's antialiased bicubic
// (ImagingResample; aten upsample_bicubic2d_aa): a = −0.5, support 2 stretched by the scale
// factor when downscaling, weights normalised per output pixel over the taps inside the image.
// Only the R×R crop window of the resized image is computed.
#include <math.h>
#include <string.h>

#include "nets/clip.h"

static const float MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};

// Keys' cubic convolution kernel with a = −0.5 (PIL's bicubic_filter).
static double cubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
    if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
    return 0.0;
}

// Taps of output pixel `o` of a resize in_size -> out_size: first input index and up to
// `cap` normalised weights (PIL precompute_coeffs). Returns the tap count.
static int taps(int o, int in_size, int out_size, int *first, double *w, int cap) {
    double scale = (double)in_size / out_size;
    double fscale = scale >= 1.0 ? scale : 1.0;
    double support = 2.0 * fscale, center = (o + 0.5) * scale, ss = 1.0 / fscale;
    long lo = (long)(center - support + 0.5), hi = (long)(center + support + 0.5);  // truncation, as PIL
    if (lo < 0) lo = 0;
    if (hi > in_size) hi = in_size;
    int n = (int)(hi - lo);
    MAV_ASSERT(n >= 1 && n <= cap);
    double total = 0.0;
    for (int j = 0; j < n; j++) total += w[j] = cubic((j + lo - center + 0.5) * ss);
    if (total != 0.0)
        for (int j = 0; j < n; j++) w[j] /= total;
    *first = (int)lo;
    return n;
}

// Resized size of (H, W) whose short side becomes R (torchvision: long = int(R·long/short)).
static void resized(int H, int W, int R, int *rh, int *rw) {
    if (W <= H) { *rw = R; *rh = (int)((long)R * H / W); }
    else { *rh = R; *rw = (int)((long)R * W / H); }
}

// torchvision CenterCrop: top = int(round((size − R) / 2.0)), Python's round (half to even).
static int crop_off(int size, int R) {
    int d = size - R;  // >= 0
    return d % 2 == 0 ? d / 2 : ((d / 2) % 2 == 0 ? d / 2 : d / 2 + 1);
}

size_t mav_clip_preprocess_scratch_floats(int H, int W, int R) {
    (void)W;
    return (size_t)H * R * 3;
}

void mav_clip_preprocess(float *out, const float *img, int H, int W, int R, float *scratch) {
    MAV_ASSERT(H >= 1 && W >= 1 && R >= 1);
    int rh, rw;
    resized(H, W, R, &rh, &rw);
    int top = crop_off(rh, R), left = crop_off(rw, R);
    // taps span at most 2·support + 1 inputs
    int capx = (int)ceil(4.0 * (W > rw ? (double)W / rw : 1.0)) + 2;
    int capy = (int)ceil(4.0 * (H > rh ? (double)H / rh : 1.0)) + 2;
    // horizontal pass: every input row, the R output columns of the crop -> scratch [H, R, 3]
    #pragma omp parallel for schedule(static)
    for (int x = 0; x < R; x++) {
        double w[capx];
        int first, n = taps(left + x, W, rw, &first, w, capx);
        for (int y = 0; y < H; y++) {
            double s0 = 0, s1 = 0, s2 = 0;
            const float *row = img + ((long)y * W + first) * 3;
            for (int j = 0; j < n; j++) { s0 += w[j] * row[3 * j]; s1 += w[j] * row[3 * j + 1]; s2 += w[j] * row[3 * j + 2]; }
            float *o = scratch + ((long)y * R + x) * 3;
            o[0] = (float)s0; o[1] = (float)s1; o[2] = (float)s2;
        }
    }
    // vertical pass over the R output rows of the crop, then normalise into [3, R, R]
    #pragma omp parallel for schedule(static)
    for (int y = 0; y < R; y++) {
        double w[capy];
        int first, n = taps(top + y, H, rh, &first, w, capy);
        for (int x = 0; x < R; x++)
            for (int ch = 0; ch < 3; ch++) {
                double s = 0;
                for (int j = 0; j < n; j++) s += w[j] * scratch[((long)(first + j) * R + x) * 3 + ch];
                out[((long)ch * R + y) * R + x] = ((float)s - MEAN[ch]) / STD[ch];
            }
    }
}
