// prior_config.c — fuzz target: mav_prior_config_from_json (+ its checker) on arbitrary bytes.
#include <stdlib.h>

#include "fuzz_common.h"
#include "nets/prior.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *json = fz_cstr(data, n);
    mav_prior_config c;
    if (mav_prior_config_from_json(&c, json) == MAV_OK) (void)mav_prior_config_check(&c);
    free(json);
    return 0;
}
