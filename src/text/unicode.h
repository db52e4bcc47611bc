// unicode.h — the Unicode text handling behind CLIP's tokenizer: UTF-8 with replacement,
// NFC, Python's str.lower() (full mappings, Final_Sigma), Python's html.unescape(), and the
// character classes of CLIP's pre-tokenisation regex. Data comes from
// src/text/unicode_tables.c, generated from Python's own databases by
// scripts/gen_unicode_tables.py (Unicode version: mav_unicode_version).
//
// Text is handled as arrays of code points (uint32_t) in a growable mav_u32buf; every
// function appends to its output buffer. Allocation failure is fatal (MAV_ASSERT): these
// buffers are a few times the size of a caption.
#ifndef MAV_TEXT_UNICODE_H
#define MAV_TEXT_UNICODE_H

#include <stddef.h>
#include <stdint.h>

// Classes for CLIP's regex (see the generator for the exact definitions).
enum {
    MAV_UCLS_P = 0,           // [^\s\p{L}\p{N}]: punctuation, symbols, controls, marks...
    MAV_UCLS_L = 1,           // \p{L}
    MAV_UCLS_N = 2,           // \p{N}
    MAV_UCLS_WS = 3,          // regex \s (Unicode White_Space); also str.isspace()
    MAV_UCLS_SPACE_ONLY = 4,  // str.isspace() but not regex \s (U+001C..U+001F)
    MAV_UCLS_NONE = 5,        // matches no alternative of the pattern (U+0345 under IGNORECASE)
};

typedef struct {
    uint32_t *p;  // [cap]
    size_t n, cap;
} mav_u32buf;

void mav_u32buf_push(mav_u32buf *b, uint32_t c);
void mav_u32buf_free(mav_u32buf *b);

// Appends the code points of UTF-8 bytes s[0..n) to out. Invalid input never fails: each
// maximal ill-formed subsequence becomes one U+FFFD, exactly like Python's
// bytes.decode("utf-8", "replace") (overlongs, surrogates, > U+10FFFF, stray continuations,
// truncated sequences).
void mav_utf8_decode(const char *s, size_t n, mav_u32buf *out);
// Writes the UTF-8 encoding of cp[0..n) to out (at least 4*n bytes); returns the byte count.
size_t mav_utf8_encode(const uint32_t *cp, size_t n, char *out);

int mav_ucls(uint32_t c);  // MAV_UCLS_* of one code point
static inline int mav_uisspace(uint32_t c) {  // Python's str.isspace() (what str.strip() removes)
    int k = mav_ucls(c);
    return k == MAV_UCLS_WS || k == MAV_UCLS_SPACE_ONLY;
}

// Appends NFC(in) (unicodedata.normalize("NFC", ...)).
void mav_nfc(const uint32_t *in, size_t n, mav_u32buf *out);
// Appends Python's str.lower() of in (full case mappings; U+03A3 by Final_Sigma context).
void mav_lower(const uint32_t *in, size_t n, mav_u32buf *out);
// Appends Python's html.unescape(in): named references (HTML5 list, longest-prefix rule for
// names without ';'), decimal and hex references with the same remapping and dropping.
void mav_html_unescape(const uint32_t *in, size_t n, mav_u32buf *out);

// ---- generated tables (unicode_tables.c) ----
typedef struct {
    const char *name;  // "amp;", "AElig" ...
    int n;             // 1 or 2 code points
    uint32_t cp[2];
} mav_html_entity;

extern const char mav_unicode_version[];
extern const uint8_t mav_ucls_latin1[256];
extern const uint32_t mav_ucls_runs[], mav_lower1[], mav_lower_multi[], mav_case_runs[], mav_ccc_runs[],
    mav_decomp[], mav_decomp_pool[], mav_comp[], mav_html_remap[], mav_html_drop[];
extern const int mav_ucls_runs_len, mav_lower1_len, mav_lower_multi_len, mav_case_runs_len, mav_ccc_runs_len,
    mav_decomp_len, mav_decomp_pool_len, mav_comp_len, mav_html_remap_len, mav_html_drop_len;
extern const mav_html_entity mav_html5[];
extern const int mav_html5_len;

#endif
