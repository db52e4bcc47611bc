// clip_config.c — fuzz target: mav_clip_config_from_json (+ its checker) on arbitrary bytes.
#include <stdlib.h>

#include "fuzz_common.h"
#include "nets/clip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *json = fz_cstr(data, n);
    mav_clip_config c;
    if (mav_clip_config_from_json(&c, json) == MAV_OK) (void)mav_clip_config_check(&c);
    free(json);
    return 0;
}
