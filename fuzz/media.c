// media.c — fuzz target: mav_media_read_memory on arbitrary bytes. The first byte picks the
// name hint (png / jpg / webp / gif / mp4) for the decoder choice, the rest is the file.
// Frames are capped so one input cannot decode a long video.
#include "fuzz_common.h"
#include "media/media.h"

#define FUZZ_MAX_FRAMES 4

static const char *const k_hints[] = {"x.png", "x.jpg", "x.webp", "x.gif", "x.mp4"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    const char *hint = k_hints[data[0] % (sizeof k_hints / sizeof k_hints[0])];
    mav_frames fr;
    if (mav_media_read_memory(data + 1, n - 1, hint, FUZZ_MAX_FRAMES, &fr) == MAV_OK) {
        if (fr.n < 1 || fr.n > FUZZ_MAX_FRAMES || fr.w < 1 || fr.h < 1 || !fr.rgb) __builtin_trap();
        // Touch the last byte: the buffer must hold n·h·w·3 bytes.
        volatile uint8_t last = fr.rgb[(size_t)fr.n * fr.h * fr.w * 3 - 1];
        (void)last;
        mav_frames_free(&fr);
    }
    return 0;
}
