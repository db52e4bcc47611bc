// bpe_internal.h — pieces shared by the tokenizer (bpe.c) and merge learning (bpe_train.c).
#ifndef MAV_TEXT_BPE_INTERNAL_H
#define MAV_TEXT_BPE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/error.h"
#include "text/unicode.h"

// CLIP's bytes_to_unicode(): byte b is written as code point k_byte_cp[b]; byte b's symbol
// id is k_byte_rank[b] (its position in that dict's order); the same byte ending a word is
// 256 + k_byte_rank[b].
void bpe_byte_tables(uint32_t byte_cp[256], int byte_rank[256]);

// Appends the UTF-8 "written form" of raw bytes (bytes_to_unicode) to a growing string.
typedef struct {
    char *p;  // [cap]
    size_t n, cap;
} bpe_str;
void bpe_str_append(bpe_str *s, const void *data, size_t n);
void bpe_str_free(bpe_str *s);

// CLIP's whitespace_clean(basic_clean(text)).lower() as code points, appended to out (which
// should be empty): NFC, html.unescape twice, strip, \s+ -> ' ', strip, lower.
void bpe_clean(const char *text, size_t len, mav_u32buf *out);

// CLIP's pre-tokenisation regex
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (re.IGNORECASE): finds the next match at or after *pos in t[0..n), sets [*start, *end) and
// moves *pos past it; returns 0 when there is none. *special is 1 for an exact
// "<|startoftext|>", 2 for "<|endoftext|>" (these become SOT/EOT), else 0.
int bpe_next_pretoken(const uint32_t *t, size_t n, size_t *pos, size_t *start, size_t *end, int *special);

// Whole file into memory (gzip is inflated; see bpe.c). *data is malloc'd, NUL-terminated.
mav_status bpe_read_file(const char *path, char **data, size_t *len);

#endif
