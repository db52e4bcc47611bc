// tar_shard.c — fuzz target: arbitrary bytes written as a webdataset shard (.tar), opened by
// mav_dataset_open as images and as videos, and the first items decoded (frames capped).
#include "data/loader.h"
#include "fuzz_common.h"

#define FUZZ_MAX_ITEMS 4
#define FUZZ_MAX_FRAMES 2

static void read_some(mav_dataset *ds) {
    int n = mav_dataset_size(ds);
    for (int i = 0; i < n && i < FUZZ_MAX_ITEMS; i++) {
        if (!mav_dataset_item_name(ds, i)) __builtin_trap();
        (void)mav_dataset_caption(ds, i);
        mav_frames fr;
        if (mav_dataset_read(ds, i, FUZZ_MAX_FRAMES, &fr) == MAV_OK) mav_frames_free(&fr);
    }
    for (int k = 0; k < mav_dataset_bad_count(ds); k++)
        if (!mav_dataset_bad(ds, k)) __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fz_write_file("shard.tar", data, n);
    for (int kind = 0; kind < MAV_DS_KIND_COUNT; kind++) {
        mav_dataset *ds = NULL;
        if (mav_dataset_open(&ds, path, (mav_ds_kind)kind, NULL) != MAV_OK) continue;
        read_some(ds);
        mav_dataset_close(ds);
    }
    return 0;
}
