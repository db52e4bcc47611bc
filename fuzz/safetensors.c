// safetensors.c — fuzz target: mav_st_open on arbitrary bytes written to a temp file, then
// every tensor converted to f32, plus the lookups (find, meta, read_f32 with a wrong shape).
#include <stdlib.h>

#include "fuzz_common.h"
#include "io/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fz_write_file("fuzz.safetensors", data, n);
    mav_st_file f;
    if (mav_st_open(&f, path) != MAV_OK) return 0;
    for (int i = 0; i < f.ntensors; i++) {
        const mav_st_tensor *t = &f.tensors[i];
        // The open validated that numel elements of dtype lie inside the file, so this
        // allocation is bounded by the input size (a failure here is a validation bug).
        float *dst = malloc((t->numel ? t->numel : 1) * sizeof *dst);
        if (!dst) abort();
        mav_st_to_f32(t, dst);
        if (mav_st_find(&f, t->name) == NULL) abort();  // every listed tensor must be found
        // A deliberately wrong shape: must be a clean MAV_ERR_SHAPE, never a write to dst.
        int64_t wrong[1] = {(int64_t)t->numel + 1};
        (void)mav_st_read_f32(&f, t->name, 1, wrong, dst);
        free(dst);
    }
    for (int k = 0; k < f.nmeta; k++) (void)mav_st_meta(&f, f.meta_keys[k]);
    (void)mav_st_meta(&f, "mav.kind");
    (void)mav_st_find(&f, "");
    mav_st_close(&f);
    return 0;
}
