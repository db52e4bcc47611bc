// layer.h — what every layer of the networks shares: where its parameters live and the
// memory it may use.
//
// A layer owns its parameters as indices into the network's mav_params (one layout for
// values, grads and AdamW moments, core/params.h) and has plan / forward / backward:
//   plan     assigns the activations it saves for backward from the network's activation
//            arena, and records its largest op-scratch need — run once on a measuring arena
//            and once on the real one (core/arena.h), so memory is allocated once per shape;
//   forward  reads its input, writes its output and its saved activations;
//   backward reads the gradient of its output and writes (=) the gradient of its input,
//            accumulating (+=) into its parameter gradients (docs/ENGINE.md).
// Temporaries that live only during one call come from `work`, an arena the network resets
// around each call (mark/release), also sized by a measuring pass.
#ifndef MAV_LAYER_H
#define MAV_LAYER_H

#include <stddef.h>

#include "core/arena.h"
#include "core/params.h"
#include "core/rng.h"

typedef struct {
    mav_params *params;
    int B, F;              // samples, frames: N = B·F images
    float *scratch;        // op scratch, at least `scratch_floats` (shared by all ops, used in turn)
    size_t scratch_floats; // planning: the running maximum over all ops
    mav_arena *work;       // call-local temporaries
    size_t work_bytes;     // planning: the running maximum of what one call takes from `work`
    int training;          // forward saves what backward needs; dropout active
    mav_rng dropout_rng;   // stream for dropout masks (advanced by each dropout call)
} mav_layer_ctx;

static inline void mav_layer_need_scratch(mav_layer_ctx *c, size_t floats) {
    if (floats > c->scratch_floats) c->scratch_floats = floats;
}
// Bytes `floats` take from an arena, alignment included (an upper bound).
static inline size_t mav_work_bytes(size_t floats) { return (floats * sizeof(float) + 2 * MAV_ALIGN - 1) / MAV_ALIGN * MAV_ALIGN; }
static inline void mav_layer_need_work(mav_layer_ctx *c, size_t bytes) {
    if (bytes > c->work_bytes) c->work_bytes = bytes;
}
static inline float *mav_layer_w(mav_layer_ctx *c, int idx) { return idx < 0 ? NULL : mav_param_value(c->params, idx); }
static inline float *mav_layer_g(mav_layer_ctx *c, int idx) {
    return (idx < 0 || c->params->grad == NULL) ? NULL : mav_param_grad(c->params, idx);
}
// Plan a network's memory once per shape: run `layout` (which assigns every buffer from the
// arena it is given and records op-scratch and work needs in lc) on a measuring arena,
// allocate `act` (activations + op scratch) and `work` to exactly what it measured, run
// `layout` again on the real arena, and put the op scratch above its high-water mark (a
// layout may release space it reuses). Sets lc->scratch and lc->work.
mav_status mav_layer_plan_memory(mav_layer_ctx *lc, mav_arena *act, mav_arena *work,
                                 void (*layout)(void *net, mav_arena *a), void *net);

// Index of a parameter that must exist (a missing one is a bug in the network's tables).
int mav_layer_param(const mav_params *p, const char *prefix, const char *suffix);
// Index or -1.
int mav_layer_param_opt(const mav_params *p, const char *prefix, const char *suffix);

#endif
