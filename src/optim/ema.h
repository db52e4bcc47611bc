// ema.h — exponential moving average of the weights (the copy used for sampling).
//
//   ema ← ema − (1 − d)·(ema − p)        (= d·ema + (1 − d)·p)
// written in this form, as LDM's LitEma does, so a weight that stops changing keeps its EMA
// exactly (d·e + (1−d)·e rounds away from e in f32). Initialised as a copy of the weights.
//
// Decay warmup (mav_ema_decay_at with warmup on): d_t = min(decay, (1 + t)/(10 + t)), where t
// is the number of optimiser steps taken so far including this one (t = 1 at the first
// update: d = 2/11). This is TensorFlow's ExponentialMovingAverage num_updates rule, used by
// LDM/Stable Diffusion's LitEma and diffusers' EMAModel. Why: the EMA starts as the random
// initialisation; with a fixed d = 0.9999 it would stay dominated by it for ~10⁴ steps, which
// early samples and checkpoints would show. The warmup lets it follow the fast early changes
// and reaches d = 0.9999 only after ~90 000 steps.
//
// Elementwise, OpenMP over 16-float-aligned static ranges: bit-identical for every thread count.
#ifndef MAV_EMA_H
#define MAV_EMA_H

#include <stddef.h>

// ema = p (n floats).
void mav_ema_init(float *ema,       // (n)
                  const float *p,   // (n)
                  size_t n);
// The decay to use at update t (>= 1): decay, or min(decay, (1+t)/(10+t)) when warmup != 0.
float mav_ema_decay_at(float decay, long t, int warmup);
// One EMA update with decay d in [0, 1].
void mav_ema_update(float *ema,      // (n) updated
                    const float *p,  // (n) current weights
                    size_t n, float d);

#endif
