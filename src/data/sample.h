// sample.h — which source frames make a training clip (SPEC §1 stage 2: F frames at a random fps).
//
// A source of n frames at src_fps; the clip has F frames at a target fps drawn uniformly from
// [fps_lo, fps_hi] (training uses [1, 30]) and clamped to what the source allows:
//   - never denser than the source (fps <= src_fps: frames are not invented), and
//   - the clip must fit: (F-1)·src_fps/fps <= n-1, i.e. fps >= src_fps·(F-1)/(n-1).
// When those leave no room inside [fps_lo, fps_hi] the nearest allowed rate is used (a 0.5 fps
// slideshow gives 0.5; a short 60 fps clip may give more than 30). The chosen fps is returned:
// it is the decoder's fps condition. Frame k is start + round(k·src_fps/fps); the start is
// uniform over the positions where the clip fits.
#ifndef MAV_DATA_SAMPLE_H
#define MAV_DATA_SAMPLE_H

// Fill idx[F] from two uniforms in [0, 1) and return the fps; returns -1 when the source
// cannot give F distinct-in-time frames (n < F, or n < 1, or src_fps <= 0).
double mav_sample_clip(int n, double src_fps, int F, double fps_lo, double fps_hi, double u_fps, double u_start,
                     int *idx);

#endif
