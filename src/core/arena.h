// arena.h — planned memory: one allocation per lifetime, carved by a bump pointer.
//
// Networks plan their activations per (model, input shape) by running the same layout
// code twice: first on a *measuring* arena (no memory; mav_arena_alloc returns NULL and
// only counts), then on a real arena of exactly the measured size. Nothing is freed
// piecemeal; mav_arena_reset / mav_arena_release reuse it. Every block is 64-byte aligned
// (one cache line, the widest vector load).
#ifndef MAV_ARENA_H
#define MAV_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"

typedef struct {
    uint8_t *base;   // NULL while measuring
    size_t cap;      // bytes available (0 while measuring)
    size_t used;     // bytes handed out
    size_t peak;     // high-water mark of `used`
    int measuring;
} mav_arena;

#define MAV_ALIGN 64

void mav_arena_measure(mav_arena *a);                 // start a measuring pass
mav_status mav_arena_init(mav_arena *a, size_t bytes); // allocate `bytes` (zero-filled)
void mav_arena_free(mav_arena *a);
// 64-byte aligned block; NULL while measuring. Running past `cap` is a planning bug: asserts.
void *mav_arena_alloc(mav_arena *a, size_t bytes);
static inline float *mav_arena_floats(mav_arena *a, size_t n) { return (float *)mav_arena_alloc(a, n * sizeof(float)); }
static inline size_t mav_arena_mark(const mav_arena *a) { return a->used; }
static inline void mav_arena_release(mav_arena *a, size_t mark) { a->used = mark; }
static inline void mav_arena_reset(mav_arena *a) { a->used = 0; }

#endif
