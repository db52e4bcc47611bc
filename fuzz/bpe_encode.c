// bpe_encode.c — fuzz target: encode arbitrary bytes (invalid UTF-8 included) as text with a
// small vocabulary learned at start-up by mav_bpe_train from built-in captions, then decode.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "text/bpe.h"

static const char k_captions[] =
    "a photo of a cat sitting on a mat\n"
    "a cartoon dog running in the park\n"
    "two red apples on a wooden table\n"
    "an astronaut riding a horse on the moon, 4k\n"
    "the smiling face with heart eyes emoji\n"
    "a teddy bear painting a portrait\n"
    "fireworks over the city at night!!!\n"
    "caf\xc3\xa9 au lait & croissant \xe2\x80\x94 d\xc3\xa9j\xc3\xa0 vu\n"
    "\xe7\x8c\xab\xe3\x81\xa8\xe7\x8a\xac \xf0\x9f\x90\xb1\xf0\x9f\x90\xb6 it's 12:30 o'clock\n"
    "A PHOTO OF A CAT &amp; A DOG   with   spaces\n";

static mav_bpe *g_bpe;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    char *merges = NULL;
    size_t mlen = 0;
    int learned = 0;
    if (mav_bpe_train(k_captions, sizeof k_captions - 1, 300, &merges, &mlen, &learned, NULL) != MAV_OK ||
        mav_bpe_load_text(&g_bpe, merges, mlen, "learned merges") != MAV_OK) {
        fprintf(stderr, "bpe_encode: setup failed: %s\n", mav_last_error());
        abort();
    }
    free(merges);
    return 0;
}

static void check_decode(const int32_t *ids, int n) {
    size_t need = 0;
    (void)mav_bpe_decode(g_bpe, ids, n, NULL, 0, &need);
    char *out = malloc(need + 1);
    if (!out) abort();
    size_t got = 0;
    // Ids from encode are in the vocabulary, so decode must succeed with the measured size.
    if (mav_bpe_decode(g_bpe, ids, n, out, need + 1, &got) != MAV_OK || got != need || strlen(out) != got) abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    char *text = fz_cstr(data, n);
    int vocab = mav_bpe_vocab_size(g_bpe);

    int total = 0;
    (void)mav_bpe_encode(g_bpe, text, NULL, 0, &total);  // measure
    if (total < 2) abort();  // at least SOT and EOT
    int32_t *ids = malloc((size_t)total * sizeof *ids);
    if (!ids) abort();
    int again = 0;
    if (mav_bpe_encode(g_bpe, text, ids, total, &again) != MAV_OK || again != total) abort();
    for (int i = 0; i < total; i++)
        if (ids[i] < 0 || ids[i] >= vocab) abort();
    check_decode(ids, total);

    int32_t ctx[MAV_BPE_CONTEXT];
    int used = 0;
    if (mav_bpe_encode_context(g_bpe, text, ctx, MAV_BPE_CONTEXT, &used) != MAV_OK) abort();
    // The context is the untruncated sequence cut to 77 with EOT last.
    if (used != (total < MAV_BPE_CONTEXT ? total : MAV_BPE_CONTEXT)) abort();
    if (ctx[used - 1] != mav_bpe_eot(g_bpe)) abort();
    check_decode(ctx, MAV_BPE_CONTEXT);

    free(mav_bpe_clean_text(text));
    free(ids);
    free(text);
    return 0;
}
