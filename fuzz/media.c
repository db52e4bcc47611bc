// media.c — fuzz target: mav_media_read_memory on arbitrary bytes. The first byte picks the
// name hint (png / jpg / webp / gif / mp4) for the decoder choice, the rest is the file.
// Frames are capped so one input cannot decode a long video. mav_media_probe runs first (on
// the bytes written to a temp file): inputs that declare more than FUZZ_MAX_PIXELS decoded
// pixels are probed but not decoded. They are legal (mav allows 16384² sides, 8 GiB per
// read), but a 140-byte WebP declaring a huge canvas costs seconds and GiBs under ASan and
// would stop every run as a timeout/OOM (docs/FUZZING.md, findings).
#include <stdio.h>

#include "fuzz_common.h"
#include "media/media.h"

#define FUZZ_MAX_FRAMES 4
#define FUZZ_MAX_PIXELS (4u << 20)  // w·h·frames decoded

static const char *const k_hints[] = {"x.png", "x.jpg", "x.webp", "x.gif", "x.mp4"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 1) return 0;
    const char *hint = k_hints[data[0] % (sizeof k_hints / sizeof k_hints[0])];
    mav_media_info info;
    if (mav_media_probe(fz_write_file(hint, data + 1, n - 1), &info) == MAV_OK) {
        int nf = info.frames < FUZZ_MAX_FRAMES ? info.frames : FUZZ_MAX_FRAMES;
        if (info.width < 1 || info.height < 1) __builtin_trap();  // a successful probe has a size
        if ((double)info.width * info.height * (nf > 1 ? nf : 1) > FUZZ_MAX_PIXELS) return 0;
    }
    mav_frames fr;
    if (mav_media_read_memory(data + 1, n - 1, hint, FUZZ_MAX_FRAMES, &fr) == MAV_OK) {
        if (fr.n < 1 || fr.n > FUZZ_MAX_FRAMES || fr.w < 1 || fr.h < 1 || !fr.rgb) __builtin_trap();
        if ((double)fr.w * fr.h * fr.n > 2.0 * FUZZ_MAX_PIXELS) return mav_frames_free(&fr), 0;
        // Touch the last byte: the buffer must hold n·h·w·3 bytes.
        volatile uint8_t last = fr.rgb[(size_t)fr.n * fr.h * fr.w * 3 - 1];
        (void)last;
        mav_frames_free(&fr);
    }
    return 0;
}
