#include "core/arena.h"

#include <stdlib.h>
#include <string.h>

void mav_arena_measure(mav_arena *a) { memset(a, 0, sizeof *a); a->measuring = 1; }

mav_status mav_arena_init(mav_arena *a, size_t bytes) {
    memset(a, 0, sizeof *a);
    size_t cap = (bytes + MAV_ALIGN - 1) / MAV_ALIGN * MAV_ALIGN;
    if (cap == 0) cap = MAV_ALIGN;
    void *p = NULL;
    if (posix_memalign(&p, MAV_ALIGN, cap) != 0)
        return mav_fail(MAV_ERR_NOMEM, "cannot allocate %.1f MB", (double)cap / 1048576.0);
    memset(p, 0, cap);  // touch every page once, up front, not in the first forward pass
    a->base = p;
    a->cap = cap;
    return MAV_OK;
}

void mav_arena_free(mav_arena *a) { free(a->base); memset(a, 0, sizeof *a); }

void *mav_arena_alloc(mav_arena *a, size_t bytes) {
    size_t start = (a->used + MAV_ALIGN - 1) / MAV_ALIGN * MAV_ALIGN;
    size_t end = start + bytes;
    a->used = end;
    if (end > a->peak) a->peak = end;
    if (a->measuring) return NULL;
    MAV_ASSERT(end <= a->cap);
    return a->base + start;
}
