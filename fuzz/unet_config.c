// unet_config.c — fuzz target: mav_unet_config_from_json (+ its checker) on arbitrary bytes.
#include <stdlib.h>

#include "fuzz_common.h"
#include "nets/unet_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *json = fz_cstr(data, n);
    mav_unet_config c;
    if (mav_unet_config_from_json(&c, json) == MAV_OK) (void)mav_unet_config_check(&c);
    free(json);
    return 0;
}
