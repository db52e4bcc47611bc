// bpe_merges.c — fuzz target: mav_bpe_load_text on arbitrary merges text, then encode and
// decode a fixed sentence with whatever vocabulary loaded.
#include <stdlib.h>

#include "fuzz_common.h"
#include "text/bpe.h"

static const char *k_sentence = "A photo of a cat &amp; a dog, 3 d\xc3\xa9j\xc3\xa0 vu's! \xf0\x9f\x98\x80 <|endoftext|>";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    mav_bpe *bpe = NULL;
    if (mav_bpe_load_text(&bpe, (const char *)data, n, "fuzz.txt") != MAV_OK) return 0;
    int32_t ids[MAV_BPE_CONTEXT];
    int len = 0;
    if (mav_bpe_encode_context(bpe, k_sentence, ids, MAV_BPE_CONTEXT, &len) != MAV_OK) abort();
    int vocab = mav_bpe_vocab_size(bpe);
    for (int i = 0; i < len; i++)
        if (ids[i] < 0 || ids[i] >= vocab || !mav_bpe_token(bpe, ids[i])) abort();  // ids stay in the vocabulary
    size_t need = 0;
    (void)mav_bpe_decode(bpe, ids, MAV_BPE_CONTEXT, NULL, 0, &need);  // measure
    char *out = malloc(need + 1);
    if (!out) abort();
    size_t got = 0;
    // Ids that encode produced always decode (decode only fails on out-of-vocabulary ids).
    if (mav_bpe_decode(bpe, ids, MAV_BPE_CONTEXT, out, need + 1, &got) != MAV_OK || got != need) abort();
    free(out);
    mav_bpe_free(bpe);
    return 0;
}
