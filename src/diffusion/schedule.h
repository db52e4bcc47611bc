// schedule.h — diffusion noise schedules, timestep respacing, prediction-type conversions and
// the training-side forward process (SPEC §6). Independent of any network.
//
// Notation (SPEC §6, docs/DIFFUSION.md): T training timesteps t = 0..T−1, β_t the schedule,
// ᾱ_t = Π_{i≤t} (1 − β_i), α_t = √ᾱ_t (signal scale), σ_t = √(1 − ᾱ_t) (noise scale),
// x_t = α_t x0 + σ_t ε. A network predicts one of
//   eps: ε                      (ADM, GLIDE, the U-Nets by default)
//   v:   v = α_t ε − σ_t x0      (Salimans & Ho 2022)
//   x0:  x0 itself               (the DALL-E 2 prior, SPEC §5)
// Everything here is computed in double and rounded to f32 once at the end.
#ifndef MAV_DIFFUSION_SCHEDULE_H
#define MAV_DIFFUSION_SCHEDULE_H

#include <stddef.h>

#include "core/error.h"

#define MAV_DIFFUSION_T 1000      // SPEC §6
#define MAV_DIFFUSION_T_MAX 1000  // the largest T a mav_schedule holds

typedef enum { MAV_SCHEDULE_LINEAR, MAV_SCHEDULE_COSINE, MAV_SCHEDULE_COUNT } mav_schedule_kind;
// What a network outputs: the U-Net config uses eps or v (SPEC §3); x0 is the prior's (SPEC §5).
typedef enum { MAV_PREDICT_EPS, MAV_PREDICT_V, MAV_PREDICT_X0, MAV_PREDICT_COUNT } mav_pred_type;

typedef struct {
    mav_schedule_kind kind;
    int T;
    double beta[MAV_DIFFUSION_T_MAX];       // [T] β_t (cosine: clipped at 0.999)
    double alpha_bar[MAV_DIFFUSION_T_MAX];  // [T] ᾱ_t = cumulative product of (1 − β)
} mav_schedule;

// Fills s for T steps (2 ≤ T ≤ MAV_DIFFUSION_T_MAX). The formulas are ADM's
// (improved-diffusion gaussian_diffusion.py), evaluated in the same order so values agree
// to the last bit with the same libm:
//   linear: β = linspace(1e-4·1000/T, 0.02·1000/T, T)
//   cosine: f(u) = cos((u + 0.008)/1.008 · π/2)², β_i = min(1 − f((i+1)/T)/f(i/T), 0.999)
mav_status mav_schedule_init(mav_schedule *s, mav_schedule_kind kind, int T);

// α_t = √ᾱ_t and σ_t = √(1 − ᾱ_t) for an integer timestep (t = −1 means "clean": α 1, σ 0).
double mav_schedule_alpha(const mav_schedule *s, int t);
double mav_schedule_sigma(const mav_schedule *s, int t);

// Respacing ("linspace" rule, docs/DIFFUSION.md): the n sampling timesteps in sampling
// order (strictly decreasing), ts[k] = round_half_even((T−1)·(n−1−k)/(n−1)) in exact integer
// arithmetic, so ts[0] = T−1 and ts[n−1] = 0; n = 1 gives {T−1}. Requires 1 ≤ n ≤ T.
mav_status mav_respace(int *ts /* [n] */, int n, int T);

// ---- prediction-type conversions at one noise level (alpha = α_t, sigma = σ_t) ----
// Outputs may alias any input (each element is read before it is written).

// x0 from the network output `pred` of type `type` at x_t:
//   eps: x0 = (x − σ ε)/α;  v: x0 = α x − σ v;  x0: copy.
void mav_diffusion_x0_from_pred(float *x0 /* [n] */, const float *pred /* [n] */, const float *x /* [n] */,
                                mav_pred_type type, double alpha, double sigma, size_t n);
// ε from x0 at x_t: ε = (x − α x0)/σ (σ > 0).
void mav_diffusion_eps_from_x0(float *eps /* [n] */, const float *x0 /* [n] */, const float *x /* [n] */,
                               double alpha, double sigma, size_t n);
// The network output of type `type` that corresponds to (x0, ε): eps → ε, v → α ε − σ x0, x0 → x0.
void mav_diffusion_pred_from(float *pred /* [n] */, const float *x0 /* [n] */, const float *eps /* [n] */,
                             mav_pred_type type, double alpha, double sigma, size_t n);

// ---- training side: per-sample timesteps t[b], sample b owns elements [b·m, (b+1)·m) ----

// Forward process q(x_t | x0): x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε.
void mav_diffusion_q_sample(const mav_schedule *s, float *xt /* [B, m] */, const float *x0 /* [B, m] */,
                            const float *eps /* [B, m] */, const int *t /* [B] */, int B, size_t m);
// The regression target of an unweighted MSE for prediction type `type` (ε, v or x0).
void mav_diffusion_target(const mav_schedule *s, float *target /* [B, m] */, const float *x0 /* [B, m] */,
                          const float *eps /* [B, m] */, const int *t /* [B] */, mav_pred_type type, int B, size_t m);

// ---- names for the CLI and checkpoint configs ("linear"/"cosine", "eps"/"v"/"x0") ----
const char *mav_schedule_kind_name(mav_schedule_kind k);
mav_status mav_schedule_kind_parse(const char *name, mav_schedule_kind *out);
const char *mav_pred_type_name(mav_pred_type p);
mav_status mav_pred_type_parse(const char *name, mav_pred_type *out);

#endif
