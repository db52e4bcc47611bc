// unicode.c — UTF-8, NFC, str.lower() and html.unescape() over code-point arrays, driven by
// the generated tables in unicode_tables.c (see unicode.h for the contracts).
#include "text/unicode.h"

#include <stdlib.h>
#include <string.h>

#include "core/error.h"

void mav_u32buf_push(mav_u32buf *b, uint32_t c) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 64;
        uint32_t *p = realloc(b->p, cap * sizeof *p);
        MAV_ASSERT(p != NULL);
        b->p = p;
        b->cap = cap;
    }
    b->p[b->n++] = c;
}

void mav_u32buf_free(mav_u32buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

// ---- UTF-8 ----

void mav_utf8_decode(const char *s, size_t n, mav_u32buf *out) {
    const uint8_t *u = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        uint32_t b = u[i];
        if (b < 0x80) { mav_u32buf_push(out, b); i++; continue; }
        int need;
        uint32_t lo = 0x80, hi = 0xBF, cp;  // allowed range of the second byte (Unicode Table 3-7)
        if (b >= 0xC2 && b <= 0xDF) { need = 1; cp = b & 0x1F; }
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2; cp = b & 0x0F;
            if (b == 0xE0) lo = 0xA0;  // no overlongs
            if (b == 0xED) hi = 0x9F;  // no surrogates
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3; cp = b & 0x07;
            if (b == 0xF0) lo = 0x90;  // no overlongs
            if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
        } else { mav_u32buf_push(out, 0xFFFD); i++; continue; }  // C0, C1, F5..FF, continuation
        size_t j = i + 1;
        int k = 0;
        for (; k < need && j < n; k++, j++) {
            uint32_t c = u[j];
            if (c < (k == 0 ? lo : 0x80) || c > (k == 0 ? hi : 0xBF)) break;
            cp = (cp << 6) | (c & 0x3F);
        }
        // Complete: the code point. Otherwise the maximal valid prefix [i, j) is one U+FFFD and
        // decoding resumes at the byte that broke it (as Python's "replace" handler does).
        mav_u32buf_push(out, k == need ? cp : 0xFFFD);
        i = j;
    }
}

size_t mav_utf8_encode(const uint32_t *cp, size_t n, char *out) {
    uint8_t *o = (uint8_t *)out;
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = cp[i];
        if (c < 0x80) o[m++] = (uint8_t)c;
        else if (c < 0x800) { o[m++] = (uint8_t)(0xC0 | c >> 6); o[m++] = (uint8_t)(0x80 | (c & 0x3F)); }
        else if (c < 0x10000) {
            o[m++] = (uint8_t)(0xE0 | c >> 12);
            o[m++] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            o[m++] = (uint8_t)(0x80 | (c & 0x3F));
        } else {
            o[m++] = (uint8_t)(0xF0 | c >> 18);
            o[m++] = (uint8_t)(0x80 | ((c >> 12) & 0x3F));
            o[m++] = (uint8_t)(0x80 | ((c >> 6) & 0x3F));
            o[m++] = (uint8_t)(0x80 | (c & 0x3F));
        }
    }
    return m;
}

// ---- table lookups ----

// Value of the run containing c in a run table of (start << shift | value) words.
static uint32_t run_value(const uint32_t *runs, int len, int shift, uint32_t c) {
    int lo = 0, hi = len - 1;  // runs[0] starts at 0
    while (lo < hi) {
        int mid = (lo + hi + 1) / 2;
        if ((runs[mid] >> shift) <= c) lo = mid;
        else hi = mid - 1;
    }
    return runs[lo] & ((1u << shift) - 1);
}

// Index of the record whose first word is key, in a table of `stride`-word records sorted
// by that word; -1 when absent.
static int find_record(const uint32_t *t, int len, int stride, uint32_t key) {
    int lo = 0, hi = len / stride - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint32_t k = t[mid * stride];
        if (k == key) return mid;
        if (k < key) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int mav_ucls(uint32_t c) { return c < 256 ? mav_ucls_latin1[c] : (int)run_value(mav_ucls_runs, mav_ucls_runs_len, 3, c); }

static int ccc_of(uint32_t c) { return c < 0x300 ? 0 : (int)run_value(mav_ccc_runs, mav_ccc_runs_len, 8, c); }

// ---- NFC (UAX #15: full canonical decomposition, canonical ordering, composition) ----

enum { S_BASE = 0xAC00, L_BASE = 0x1100, V_BASE = 0x1161, T_BASE = 0x11A7,
       L_COUNT = 19, V_COUNT = 21, T_COUNT = 28, N_COUNT = V_COUNT * T_COUNT, S_COUNT = L_COUNT * N_COUNT };

static void decompose(uint32_t c, mav_u32buf *out) {
    if (c >= S_BASE && c < S_BASE + S_COUNT) {
        uint32_t s = c - S_BASE;
        mav_u32buf_push(out, L_BASE + s / N_COUNT);
        mav_u32buf_push(out, V_BASE + (s % N_COUNT) / T_COUNT);
        if (s % T_COUNT) mav_u32buf_push(out, T_BASE + s % T_COUNT);
        return;
    }
    int r = c < 0xC0 ? -1 : find_record(mav_decomp, mav_decomp_len, 3, c);
    if (r < 0) { mav_u32buf_push(out, c); return; }
    for (uint32_t k = 0; k < mav_decomp[3 * r + 2]; k++) mav_u32buf_push(out, mav_decomp_pool[mav_decomp[3 * r + 1] + k]);
}

// Primary composite of the pair (a, b), or 0.
static uint32_t compose(uint32_t a, uint32_t b) {
    if (a >= L_BASE && a < L_BASE + L_COUNT && b >= V_BASE && b < V_BASE + V_COUNT)
        return S_BASE + ((a - L_BASE) * V_COUNT + (b - V_BASE)) * T_COUNT;
    if (a >= S_BASE && a < S_BASE + S_COUNT && (a - S_BASE) % T_COUNT == 0 && b > T_BASE && b < T_BASE + T_COUNT)
        return a + (b - T_BASE);
    uint64_t key = ((uint64_t)a << 21) | b;
    int lo = 0, hi = mav_comp_len / 3 - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        uint64_t k = ((uint64_t)mav_comp[3 * mid] << 32) | mav_comp[3 * mid + 1];
        if (k == key) return mav_comp[3 * mid + 2];
        if (k < key) lo = mid + 1;
        else hi = mid - 1;
    }
    return 0;
}

void mav_nfc(const uint32_t *in, size_t n, mav_u32buf *out) {
    // Text below U+0300 is already NFC: nothing there decomposes except precomposed letters
    // that recompose to themselves, and no composition pair has a second character below U+0300
    // (checked against unicodedata by the generator's Unicode version).
    size_t k = 0;
    while (k < n && in[k] < 0x300) k++;
    if (k == n) {
        for (size_t i = 0; i < n; i++) mav_u32buf_push(out, in[i]);
        return;
    }
    mav_u32buf d = {0};
    for (size_t i = 0; i < n; i++) decompose(in[i], &d);
    // Canonical ordering: a stable insertion sort of each run of non-starters by class.
    for (size_t i = 1; i < d.n; i++) {
        int cc = ccc_of(d.p[i]);
        if (cc == 0) continue;
        for (size_t j = i; j > 0 && ccc_of(d.p[j - 1]) > cc; j--) {
            uint32_t t = d.p[j]; d.p[j] = d.p[j - 1]; d.p[j - 1] = t;
        }
    }
    // Composition (the Unicode sample algorithm): a character joins the last starter unless a
    // character between them has class 0 or a class >= its own ("blocked").
    long starter = -1;  // index in out of the last starter, -1 before the first
    int last_cc = 0;
    for (size_t i = 0; i < d.n; i++) {
        uint32_t c = d.p[i];
        int cc = ccc_of(c);
        if (starter >= 0 && (last_cc < cc || (last_cc == 0 && (size_t)starter == out->n - 1))) {
            uint32_t comp = compose(out->p[starter], c);
            if (comp) { out->p[starter] = comp; continue; }
        }
        if (cc == 0) starter = (long)out->n;
        last_cc = cc;
        mav_u32buf_push(out, c);
    }
    mav_u32buf_free(&d);
}

// ---- str.lower() ----

static int case_bits(uint32_t c) { return (int)run_value(mav_case_runs, mav_case_runs_len, 2, c); }
#define CASED 1
#define CASE_IGNORABLE 2

// Python's handle_capital_sigma: final form when preceded by a cased character (skipping
// case-ignorables) and not followed by one.
static uint32_t lower_sigma(const uint32_t *in, size_t n, size_t i) {
    long j = (long)i - 1;
    while (j >= 0 && (case_bits(in[j]) & CASE_IGNORABLE)) j--;
    int final = j >= 0 && (case_bits(in[j]) & CASED);
    if (final && i + 1 < n) {
        size_t k = i + 1;
        while (k < n && (case_bits(in[k]) & CASE_IGNORABLE)) k++;
        final = k == n || !(case_bits(in[k]) & CASED);
    }
    return final ? 0x3C2 : 0x3C3;
}

void mav_lower(const uint32_t *in, size_t n, mav_u32buf *out) {
    for (size_t i = 0; i < n; i++) {
        uint32_t c = in[i];
        if (c < 0x80) { mav_u32buf_push(out, c >= 'A' && c <= 'Z' ? c + 32 : c); continue; }
        if (c == 0x3A3) { mav_u32buf_push(out, lower_sigma(in, n, i)); continue; }
        int r = find_record(mav_lower_multi, mav_lower_multi_len, 5, c);
        if (r >= 0) {
            for (uint32_t k = 0; k < mav_lower_multi[5 * r + 1]; k++) mav_u32buf_push(out, mav_lower_multi[5 * r + 2 + k]);
            continue;
        }
        r = find_record(mav_lower1, mav_lower1_len, 2, c);
        mav_u32buf_push(out, r >= 0 ? mav_lower1[2 * r + 1] : c);
    }
}

// ---- html.unescape() ----

// The HTML5 entity named by code points s[0..n) (which must be ASCII), or NULL.
static const mav_html_entity *find_entity(const uint32_t *s, size_t n) {
    char name[40];
    if (n >= sizeof name) return NULL;
    for (size_t i = 0; i < n; i++) {
        if (s[i] >= 0x80) return NULL;
        name[i] = (char)s[i];
    }
    name[n] = 0;
    int lo = 0, hi = mav_html5_len - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int cmp = strcmp(mav_html5[mid].name, name);
        if (cmp == 0) return &mav_html5[mid];
        if (cmp < 0) lo = mid + 1;
        else hi = mid - 1;
    }
    return NULL;
}

static void push_numeric(uint32_t num, mav_u32buf *out) {
    int r = find_record(mav_html_remap, mav_html_remap_len, 2, num);
    if (r >= 0) { mav_u32buf_push(out, mav_html_remap[2 * r + 1]); return; }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) { mav_u32buf_push(out, 0xFFFD); return; }
    if (find_record(mav_html_drop, mav_html_drop_len, 1, num) >= 0) return;
    mav_u32buf_push(out, num);
}

static int hexval(uint32_t c) {
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

// Python's pattern: &(#[0-9]+;? | #[xX][0-9a-fA-F]+;? | [^\t\n\f <&#;]{1,32};?)
void mav_html_unescape(const uint32_t *in, size_t n, mav_u32buf *out) {
    size_t i = 0;
    if (out->cap < out->n + n) {  // one allocation: the output is never longer than the input
        out->cap = out->n + n + 16;
        out->p = realloc(out->p, out->cap * sizeof *out->p);
        MAV_ASSERT(out->p != NULL);
    }
    while (i < n) {
        if (in[i] != '&') { mav_u32buf_push(out, in[i++]); continue; }
        size_t j = i + 1;
        if (j < n && in[j] == '#') {
            int base = 10;
            size_t k = j + 1;
            if (k < n && (in[k] == 'x' || in[k] == 'X') && k + 1 < n && hexval(in[k + 1]) >= 0) { base = 16; k++; }
            if (k >= n || hexval(in[k]) < 0 || (base == 10 && in[k] > '9')) {
                mav_u32buf_push(out, in[i++]);  // "&#" not followed by digits: no reference
                continue;
            }
            uint32_t num = 0;  // saturates above U+10FFFF (Python's int is unbounded; the result is the same U+FFFD)
            for (; k < n && hexval(in[k]) >= 0 && (base == 16 || in[k] <= '9'); k++) {
                num = num * (uint32_t)base + (uint32_t)hexval(in[k]);
                if (num > 0x110000) num = 0x110000;
            }
            if (k < n && in[k] == ';') k++;
            push_numeric(num, out);
            i = k;
            continue;
        }
        size_t k = j;
        while (k < n && k - j < 32) {
            uint32_t c = in[k];
            if (c == '\t' || c == '\n' || c == '\f' || c == ' ' || c == '<' || c == '&' || c == '#' || c == ';') break;
            k++;
        }
        if (k == j) { mav_u32buf_push(out, in[i++]); continue; }  // nothing name-like after '&'
        if (k < n && in[k] == ';') k++;
        const uint32_t *s = in + j;  // s = the name with its ';' if any, as in Python
        size_t len = k - j;
        const mav_html_entity *e = find_entity(s, len);
        size_t used = len;
        for (size_t x = len - 1; !e && x >= 2; x--) {  // longest known prefix, at least 2 long
            e = find_entity(s, x);
            used = x;
        }
        if (e) {
            for (int q = 0; q < e->n; q++) mav_u32buf_push(out, e->cp[q]);
            for (size_t q = used; q < len; q++) mav_u32buf_push(out, s[q]);
        } else {
            for (size_t q = i; q < k; q++) mav_u32buf_push(out, in[q]);
        }
        i = k;
    }
}
