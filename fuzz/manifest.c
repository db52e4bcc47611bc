// manifest.c — fuzz target: arbitrary bytes written as a JSONL manifest (manifest.jsonl) next
// to two tiny images (a.png, b.jpg, written at start-up by mav_media_write), opened by
// mav_dataset_open and the items decoded. Items whose path leaves the temp folder (absolute
// paths, "..") are listed but not decoded: a fuzzer must not read /dev/zero or the machine.
#include <stdio.h>
#include <string.h>

#include "data/loader.h"
#include "fuzz_common.h"

#define FUZZ_MAX_ITEMS 4

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    // Two small images for manifest lines to point at, written by mav's own writers.
    mav_frames f;
    if (mav_frames_alloc(&f, 3, 2, 1, 0) != MAV_OK) __builtin_trap();
    for (int i = 0; i < 3 * 2 * 3; i++) f.rgb[i] = (uint8_t)(40 * i);
    char path[512];
    snprintf(path, sizeof path, "%s/a.png", fz_tmpdir());
    if (mav_media_write(path, &f, NULL) != MAV_OK) __builtin_trap();
    snprintf(path, sizeof path, "%s/b.jpg", fz_tmpdir());
    if (mav_media_write(path, &f, NULL) != MAV_OK) __builtin_trap();
    mav_frames_free(&f);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    const char *path = fz_write_file("manifest.jsonl", data, n);
    mav_dataset *ds = NULL;
    if (mav_dataset_open(&ds, path, MAV_DS_IMAGES, NULL) != MAV_OK) return 0;
    size_t dl = strlen(fz_tmpdir());
    int size = mav_dataset_size(ds);
    for (int i = 0, done = 0; i < size && done < FUZZ_MAX_ITEMS; i++) {
        const char *name = mav_dataset_item_name(ds, i);
        if (!name || !mav_dataset_caption(ds, i)) __builtin_trap();  // image items always have captions
        if (strncmp(name, fz_tmpdir(), dl) != 0 || name[dl] != '/' || strstr(name, "..")) continue;
        mav_frames fr;
        if (mav_dataset_read(ds, i, 1, &fr) == MAV_OK) mav_frames_free(&fr);
        done++;
    }
    (void)mav_dataset_skipped_count(ds);
    mav_dataset_close(ds);
    return 0;
}
