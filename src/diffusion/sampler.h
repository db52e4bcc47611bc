// sampler.h — diffusion samplers as pure functions over a model callback (STYLE.md §9, SPEC §6):
// DDPM (ancestral), DDIM (η) and DPM-Solver++(2M), each on a respaced subset of the training
// timesteps (mav_respace), with x0 clipping / Imagen dynamic thresholding and
// classifier-free guidance as combinators over model outputs.
//
// Usage:
//   mav_schedule sch;  mav_schedule_init(&sch, MAV_SCHEDULE_COSINE, MAV_DIFFUSION_T);
//   mav_sampler_params p = mav_sampler_default_params(MAV_SAMPLER_DPMPP_2M);
//   p.steps = 25; p.batch = B; p.x0_mode = MAV_X0_CLIP;
//   mav_rng rng = mav_rng_make(seed);
//   mav_status st = mav_sample(&sch, &p, my_model, my_ctx, x /* [n] out */, n, &rng, NULL);
//
// Random numbers (the same seed gives bit-identical samples at any thread count): mav_sample
// draws, from `rng` and in this order, (1) x_T: n normals (unless p.init_noise is 0 and x
// already holds the starting point), then (2) for a stochastic sampler (DDPM, or DDIM with
// η > 0) n normals at every step except the last, right after that step's model call.
// Nothing else consumes the stream; the model callback should use its own stream.
#ifndef MAV_DIFFUSION_SAMPLER_H
#define MAV_DIFFUSION_SAMPLER_H

#include <stddef.h>

#include "core/error.h"
#include "core/rng.h"
#include "diffusion/schedule.h"

// The model: given x_t ([n] floats: the whole batch) at the integer training timestep t
// (0..T−1, passed as a double because the timestep embedding takes a float) writes its raw
// output (ε, v or x0, whatever the model predicts) into out [n]. Returns MAV_OK, or a
// mav_status set with mav_fail, which aborts sampling and is returned by mav_sample.
typedef int (*mav_denoise_fn)(void *ctx, float *out, const float *x, double t, size_t n);

// Called after sampling step `step` (1..nsteps) has updated x.
typedef void (*mav_progress_fn)(void *ctx, int step, int nsteps);

typedef enum { MAV_SAMPLER_DDPM, MAV_SAMPLER_DDIM, MAV_SAMPLER_DPMPP_2M, MAV_SAMPLER_COUNT } mav_sampler_kind;

// What happens to the predicted x0 before it is used (docs/DIFFUSION.md):
//   none:    nothing (latent or embedding models, e.g. the prior);
//   clip:    clip to [−1, 1] (pixel models);
//   dynamic: Imagen's dynamic thresholding: q = quantile_p(|x0|) per sample (linear
//            interpolation, as torch.quantile), s = max(1, q), x0 = clip(x0, −s, s)/s.
typedef enum { MAV_X0_NONE, MAV_X0_CLIP, MAV_X0_DYNAMIC, MAV_X0_COUNT } mav_x0_mode;

typedef struct {
    mav_sampler_kind kind;
    int steps;                  // sampling steps = model calls (1..T), respaced with mav_respace
    double eta;                 // DDIM only: 0 = deterministic DDIM, 1 = DDPM posterior variance
    mav_pred_type prediction;  // what the model outputs
    mav_x0_mode x0_mode;
    double dyn_percentile;      // dynamic thresholding quantile p ∈ (0, 1] (Imagen: 0.995)
    int batch;                  // samples in x; thresholding is per sample (n % batch == 0)
    int init_noise;             // 1: draw x_T from rng; 0: x holds the starting x_T on entry
    mav_progress_fn progress;   // optional
    void *progress_ctx;
} mav_sampler_params;

// Defaults: 50 steps (DDPM), 50 (DDIM, η 0), 25 (DPM++ 2M); eps prediction, no x0 clipping,
// percentile 0.995, batch 1, init_noise 1, no progress callback.
mav_sampler_params mav_sampler_default_params(mav_sampler_kind kind);

// Work floats mav_sample needs for an x of n floats (caller-owned scratch).
size_t mav_sample_scratch_floats(const mav_sampler_params *p, size_t n);

// Runs the sampler: x [n] ends as the sample x0 (on entry: x_T if !p->init_noise). scratch:
// mav_sample_scratch_floats(p, n) floats, or NULL to have mav_sample allocate it once for
// this call (a sampler call is not a hot op: the model calls dominate).
mav_status mav_sample(const mav_schedule *s, const mav_sampler_params *p, mav_denoise_fn model, void *model_ctx,
                      float *x /* [n] */, size_t n, mav_rng *rng, float *scratch);

// ---- single steps (exposed for tests and for custom loops) ----
// Each moves x from timestep t (ᾱ = ab_t) to the next sampling timestep (ᾱ = ab_prev >
// ab_t; ab_prev = 1 is the clean end, where every sampler returns x0 exactly). x0 is the
// (clipped) prediction at t. x_out may alias x_in. Arithmetic in double, rounded once.

// DDIM (Song et al. 2021, eq. 12): ε̂ = (x − √ab_t x0)/√(1−ab_t),
// x_prev = √ab_prev x0 + √(1 − ab_prev − σ²) ε̂ + σ z with σ = mav_ddim_sigma(ab_t, ab_prev, eta).
// noise may be NULL when σ = 0.
void mav_ddim_step(float *x_out /* [n] */, const float *x_in /* [n] */, const float *x0 /* [n] */,
                   const float *noise /* [n] or NULL */, double ab_t, double ab_prev, double eta, size_t n);
// σ_η = η √((1 − ab_prev)/(1 − ab_t)) √(1 − ab_t/ab_prev); at η = 1 σ² is the DDPM posterior variance β̃.
double mav_ddim_sigma(double ab_t, double ab_prev, double eta);

// DDPM ancestral step on a respaced chain (Ho et al. 2020 eqs. 6–7 with β' = 1 − ab_t/ab_prev):
// x_prev = c0 x0 + c1 x + √β̃ z, c0 = √ab_prev β'/(1−ab_t), c1 = √(1−β') (1−ab_prev)/(1−ab_t),
// β̃ = (1−ab_prev)/(1−ab_t) β' (the "fixed small" posterior variance). noise may be NULL at ab_prev = 1.
void mav_ddpm_step(float *x_out /* [n] */, const float *x_in /* [n] */, const float *x0 /* [n] */,
                   const float *noise /* [n] or NULL */, double ab_t, double ab_prev, size_t n);

// DPM-Solver++(2M) (Lu et al. 2022, alg. 2) from s (ab_s) to t (ab_t), λ = log(α/σ),
// h = λ_t − λ_s: x_t = (σ_t/σ_s) x_s − α_t (e^{−h} − 1) D with D = x0_s (first order: x0_prev
// NULL) or D = (1 + 1/(2r)) x0_s − 1/(2r) x0_prev, r = h_prev/h, h_prev = λ_s − λ_{prev}
// (ab_prev_s: ᾱ at the sampling timestep before s, where x0_prev was predicted).
void mav_dpmpp_2m_step(float *x_out /* [n] */, const float *x_in /* [n] */, const float *x0 /* [n] */,
                       const float *x0_prev /* [n] or NULL */, double ab_s, double ab_t, double ab_prev_s, size_t n);

// Applies mode to x0 in place; `batch` samples of n/batch floats each. sel: n/batch floats of
// work memory for MAV_X0_DYNAMIC (may be NULL otherwise).
void mav_x0_process(float *x0 /* [batch, n/batch] */, size_t n, int batch, mav_x0_mode mode, double percentile,
                    float *sel /* [n/batch] */);
// The linear-interpolation quantile p of |x| over m floats (as torch.quantile(x.abs(), p)).
// work: m floats (overwritten).
double mav_abs_quantile(const float *x /* [m] */, size_t m, double p, float *work /* [m] */);

// ---- classifier-free guidance ----
// out = out_u + scale·(out_c − out_u) (SPEC §6). Because every prediction type is an affine
// function of ε at fixed x_t, guiding v or x0 outputs equals guiding ε. out may alias either input.
void mav_cfg_combine(float *out /* [n] */, const float *out_u /* [n] */, const float *out_c /* [n] */, double scale,
                     size_t n);

// A guided model from two callbacks (unconditional and conditional; often the same function
// with two contexts). tmp: n floats for the unconditional output. scale 1 skips the
// unconditional call.
typedef struct {
    mav_denoise_fn uncond, cond;
    void *uncond_ctx, *cond_ctx;
    double scale;
    float *tmp;  // [n]
} mav_cfg_pair;
int mav_cfg_pair_denoise(void *cfg /* mav_cfg_pair */, float *out, const float *x, double t, size_t n);

// A guided model from one callback that evaluates a doubled batch in one call: its input is
// [x; x] (2n floats: the same B samples twice, batch-major) and its output is [out_u; out_c]
// (the first B samples run with the null condition, the last B with the condition).
// tmp: 4n floats (the doubled input, then the doubled output).
typedef struct {
    mav_denoise_fn model2;
    void *ctx;
    double scale;
    float *tmp;  // [4n]
} mav_cfg_batched;
int mav_cfg_batched_denoise(void *cfg /* mav_cfg_batched */, float *out, const float *x, double t, size_t n);

// ---- names for the CLI ("ddpm", "ddim", "dpm++2m"; "none", "clip", "dynamic") ----
const char *mav_sampler_kind_name(mav_sampler_kind k);
mav_status mav_sampler_kind_parse(const char *name, mav_sampler_kind *out);
const char *mav_x0_mode_name(mav_x0_mode m);
mav_status mav_x0_mode_parse(const char *name, mav_x0_mode *out);

#endif
