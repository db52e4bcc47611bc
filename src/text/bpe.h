// bpe.h — CLIP's byte-level BPE tokenizer (OpenAI CLIP simple_tokenizer.py), and learning
// merges from captions. SPEC §4; the full behaviour is written down in docs/TOKENIZER.md.
//
//   mav_bpe *bpe;
//   if (mav_bpe_load(&bpe, "bpe_simple_vocab_16e6.txt.gz") != MAV_OK) die(mav_last_error());
//   int32_t ids[MAV_BPE_CONTEXT];                       // (77,)
//   mav_bpe_encode_context(bpe, "A photo of a cat", ids, MAV_BPE_CONTEXT, NULL);
//   // ids = 49406 320 1125 539 320 2368 49407 0 0 ...
//   mav_bpe_free(bpe);
//
// Text goes through CLIP's cleanup (NFC, html.unescape twice, strip, whitespace collapse,
// lower-case), CLIP's pre-tokenisation pattern, bytes_to_unicode and the merges in rank order.
// Vocabulary: 256 byte symbols, the same 256 ending a word ("</w>"), one token per merge, then
// <|startoftext|> (SOT) and <|endoftext|> (EOT): with CLIP's file 49,408 ids, SOT 49406,
// EOT 49407. A loaded mav_bpe is read-only: encode/decode may run on many threads at once.
// Invalid UTF-8 never fails: each ill-formed sequence reads as U+FFFD (as Python's
// bytes.decode("utf-8", "replace")).
#ifndef MAV_TEXT_BPE_H
#define MAV_TEXT_BPE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/error.h"

#define MAV_BPE_CONTEXT 77         // CLIP's context length
#define MAV_BPE_MAX_MERGES 48894   // merges CLIP reads: lines 2..48895 (vocabulary 49,408)

typedef struct mav_bpe mav_bpe;

// Loads a merges file: a header line (ignored), then one merge "LEFT RIGHT" per line, tokens
// written in bytes_to_unicode form with "</w>" ending a word; gzip or plain. At most the first
// MAV_BPE_MAX_MERGES merges are read (exactly CLIP's merges[1:48895]); a shorter file gives a
// smaller vocabulary. Errors name the file and line (missing file, empty file, a line that is
// not two tokens, a token that is not in the vocabulary).
mav_status mav_bpe_load(mav_bpe **out, const char *path);
// The same from merges text in memory (plain, not gzip), e.g. a pipeline's `mav.bpe`
// metadata; `name` is used in error messages.
mav_status mav_bpe_load_text(mav_bpe **out, const char *text, size_t len, const char *name);
void mav_bpe_free(mav_bpe *bpe);

int mav_bpe_vocab_size(const mav_bpe *bpe);  // 512 + merges + 2
int mav_bpe_n_merges(const mav_bpe *bpe);
int32_t mav_bpe_sot(const mav_bpe *bpe);     // vocab_size - 2
int32_t mav_bpe_eot(const mav_bpe *bpe);     // vocab_size - 1
// A token as written in the merges file ("cat</w>"); NULL for an id out of range.
const char *mav_bpe_token(const mav_bpe *bpe, int32_t id);

// ids = SOT, the tokens of `text` (NUL-terminated UTF-8), EOT; untruncated. *n is always the
// full count; when it exceeds cap only the first cap ids are written and MAV_ERR_ARG is
// returned (call with cap 0 to measure).
mav_status mav_bpe_encode(const mav_bpe *bpe, const char *text, int32_t *ids, int cap, int *n);
// ids[context] = CLIP's tokenize(): SOT, tokens, EOT, then zeros; a longer sequence is cut to
// `context` ids with EOT last. *n (may be NULL) = ids before the padding. context >= 2.
// Stops tokenising once the context is full, so a huge text costs only its cleanup.
mav_status mav_bpe_encode_context(const mav_bpe *bpe, const char *text, int32_t *ids, int context, int *n);
// Text of ids: SOT is skipped and decoding stops at the first EOT (so padding is ignored);
// "</w>" reads as a space, bytes that are not UTF-8 as U+FFFD (CLIP's decode), trailing
// spaces are removed. Writes a NUL-terminated string; *len = its length. When it does not
// fit in cap bytes (with the NUL), returns MAV_ERR_ARG and writes nothing (call with cap 0
// to measure). An id outside the vocabulary is MAV_ERR_ARG.
mav_status mav_bpe_decode(const mav_bpe *bpe, const int32_t *ids, int n, char *out, size_t cap, size_t *len);

// CLIP's text cleanup alone, as tokenisation sees it: malloc'd UTF-8 (caller frees).
char *mav_bpe_clean_text(const char *text);

// ---- learning merges (bpe_train.c) ----

// Learns up to n_merges merges from captions[0..len) (UTF-8, one caption per line) with the
// same cleanup and pre-tokenisation: count word frequencies, then repeatedly merge the most
// frequent adjacent pair of symbols (weighted by word count), every occurrence left to right.
// Ties go to the pair whose left token, then right token, is smaller byte-wise as written
// in the file. Deterministic. Stops early when no pair is left (*n_learned < n_merges).
// *text (malloc'd, caller frees) is a merges file loadable by mav_bpe_load_text. Progress
// lines go to `progress` when it is not NULL.
mav_status mav_bpe_train(const char *captions, size_t len, int n_merges, char **text, size_t *text_len,
                         int *n_learned, FILE *progress);
// The same from a captions file to a merges file, written atomically.
mav_status mav_bpe_train_file(const char *captions_path, int n_merges, const char *out_path, int *n_learned,
                              FILE *progress);

#endif
