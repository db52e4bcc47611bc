// sample.c — frame indices of a training clip (rules in sample.h).
#include "data/sample.h"

#include <math.h>

double mav_sample_clip(int n, double src_fps, int F, double fps_lo, double fps_hi, double u_fps, double u_start,
                     int *idx) {
    if (n < 1 || F < 1 || n < F || !(src_fps > 0)) return -1;
    double hi = fmin(fps_hi, src_fps);                              // not denser than the source
    double lo_fit = F > 1 ? src_fps * (F - 1) / (double)(n - 1) : 0;  // slowest rate that fits
    double lo = fmax(fps_lo, lo_fit);
    double fps = lo <= hi ? lo + u_fps * (hi - lo) : fmin(src_fps, fmax(lo_fit, hi));
    double step = src_fps / fps;  // source frames per clip frame, >= 1
    int span = (int)lround((F - 1) * step);
    if (span > n - 1) span = n - 1;  // rounding at the boundary (lo_fit exactly)
    int start = (int)floor(u_start * (double)(n - span));
    if (start > n - 1 - span) start = n - 1 - span;
    if (start < 0) start = 0;
    for (int k = 0; k < F; k++) {
        int j = (int)lround(k * step);
        idx[k] = start + (j > span ? span : j);
    }
    return fps;
}
