// bpe.c — CLIP's byte-level BPE: loading merges (gzip or plain), cleanup, pre-tokenisation,
// encoding with a merge-rank hash map and a priority queue per word, decoding.
//
// Token identity follows CLIP's Python exactly: tokens are strings, so two merges that spell
// the same string are the same token, and its id is the last one in vocabulary order (what
// `dict(zip(vocab, range(len(vocab))))` keeps). Symbols below are those canonical ids.
#include "text/bpe.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "text/bpe_internal.h"

#define EOW "</w>"
#define SOT_TEXT "<|startoftext|>"
#define EOT_TEXT "<|endoftext|>"

struct mav_bpe {
    int n_merges, vocab;      // vocab = 512 + n_merges + 2
    int32_t sot, eot;
    uint32_t *str_off;        // (vocab + 1,) token i is strs[str_off[i] .. str_off[i+1]-1), NUL-terminated
    char *strs;               // written forms ("cat</w>")
    uint32_t *raw_off;        // (vocab + 1,) token i's bytes: raw[raw_off[i] .. raw_off[i+1])
    uint8_t *raw;             // bytes_to_unicode undone ("cat</w>" as 7 bytes)
    int32_t byte_sym[256];    // symbol of byte b inside a word
    int32_t byte_sym_eow[256];  // symbol of byte b ending a word
    uint64_t *mkey;           // (mcap,) merge map: left << 32 | right; UINT64_MAX = empty
    int32_t *mrank, *mres;    // (mcap,) merge rank (0 = first merge line) and the merged symbol
    uint64_t mmask;
};

// ---- bytes_to_unicode ----

void bpe_byte_tables(uint32_t byte_cp[256], int byte_rank[256]) {
    // Printable Latin-1 bytes map to themselves and come first; the other 68 follow in byte
    // order, mapped to 256, 257, ...
    int r = 0;
    for (int b = 0; b < 256; b++)
        if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)) {
            byte_cp[b] = (uint32_t)b;
            byte_rank[b] = r++;
        }
    uint32_t extra = 256;
    for (int b = 0; b < 256; b++)
        if (!((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))) {
            byte_cp[b] = extra++;
            byte_rank[b] = r++;
        }
}

void bpe_str_append(bpe_str *s, const void *data, size_t n) {
    if (s->n + n + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 256;
        while (cap < s->n + n + 1) cap *= 2;
        char *p = realloc(s->p, cap);
        MAV_ASSERT(p != NULL);
        s->p = p;
        s->cap = cap;
    }
    memcpy(s->p + s->n, data, n);
    s->n += n;
    s->p[s->n] = 0;
}

void bpe_str_free(bpe_str *s) {
    free(s->p);
    memset(s, 0, sizeof *s);
}

// ---- cleanup and pre-tokenisation ----

void bpe_clean(const char *text, size_t len, mav_u32buf *out) {
    mav_u32buf a = {0}, b = {0};
    mav_utf8_decode(text, len, &a);
    mav_nfc(a.p, a.n, &b);  // ftfy.fix_text is not reproduced; its NFC step is (docs/TOKENIZER.md)
    a.n = 0;
    mav_html_unescape(b.p, b.n, &a);
    b.n = 0;
    mav_html_unescape(a.p, a.n, &b);
    // strip (str.isspace), then every regex \s run -> one space, then strip again.
    size_t lo = 0, hi = b.n;
    while (lo < hi && mav_uisspace(b.p[lo])) lo++;
    while (hi > lo && mav_uisspace(b.p[hi - 1])) hi--;
    a.n = 0;
    for (size_t i = lo; i < hi;) {
        if (mav_ucls(b.p[i]) == MAV_UCLS_WS) {
            while (i < hi && mav_ucls(b.p[i]) == MAV_UCLS_WS) i++;
            mav_u32buf_push(&a, ' ');
        } else {
            mav_u32buf_push(&a, b.p[i++]);
        }
    }
    lo = 0, hi = a.n;
    while (lo < hi && mav_uisspace(a.p[lo])) lo++;
    while (hi > lo && mav_uisspace(a.p[hi - 1])) hi--;
    if (hi > lo) mav_lower(a.p + lo, hi - lo, out);  // a.p is NULL when the text is empty
    mav_u32buf_free(&a);
    mav_u32buf_free(&b);
}

// Under re.IGNORECASE the pattern's letters match their case variants; after lower() the only
// one left is U+017F (long s), which matches 's'.
static int pat_char_eq(uint32_t c, char p) { return c == (uint32_t)p || (p == 's' && c == 0x17F); }

// Length of a case-insensitive match of the ASCII pattern p at t[i..n) (0 if none); *exact
// tells whether it matched character for character.
static size_t match_lit(const uint32_t *t, size_t n, size_t i, const char *p, int *exact) {
    size_t m = strlen(p);
    if (n - i < m) return 0;
    *exact = 1;
    for (size_t k = 0; k < m; k++) {
        if (!pat_char_eq(t[i + k], p[k])) return 0;
        if (t[i + k] != (uint32_t)p[k]) *exact = 0;
    }
    return m;
}

int bpe_next_pretoken(const uint32_t *t, size_t n, size_t *pos, size_t *start, size_t *end, int *special) {
    static const char *const k_contractions[] = {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"};
    for (size_t i = *pos; i < n; i++) {
        uint32_t c = t[i];
        size_t m = 0;
        int exact = 0;
        *special = 0;
        if (c == '<') {
            if ((m = match_lit(t, n, i, SOT_TEXT, &exact))) *special = exact ? 1 : 0;
            else if ((m = match_lit(t, n, i, EOT_TEXT, &exact))) *special = exact ? 2 : 0;
        } else if (c == '\'') {
            for (int k = 0; k < 7 && !m; k++) m = match_lit(t, n, i, k_contractions[k], &exact);
        }
        if (!m) {
            int k = mav_ucls(c);
            if (k == MAV_UCLS_L) {
                for (m = 1; i + m < n && mav_ucls(t[i + m]) == MAV_UCLS_L; m++) {}
            } else if (k == MAV_UCLS_N) {
                m = 1;
            } else if (k == MAV_UCLS_P || k == MAV_UCLS_SPACE_ONLY) {  // [^\s\p{L}\p{N}]+
                for (m = 1; i + m < n; m++) {
                    int kk = mav_ucls(t[i + m]);
                    if (kk != MAV_UCLS_P && kk != MAV_UCLS_SPACE_ONLY) break;
                }
            } else {
                continue;  // \s, or a character no alternative matches (U+0345): skipped
            }
        }
        *start = i;
        *end = i + m;
        *pos = i + m;
        return 1;
    }
    *pos = n;
    return 0;
}

// ---- reading files (gzip through zlib) ----

static mav_status gunzip(const char *path, const uint8_t *in, size_t n, char **data, size_t *len) {
    mav_status st = MAV_OK;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 15 + 32) != Z_OK) return mav_fail(MAV_ERR_NOMEM, "%s: zlib init failed", path);
    size_t cap = n * 4 + 1024, m = 0;
    char *out = malloc(cap);
    MAV_ASSERT(out != NULL);
    z.next_in = (Bytef *)in;
    int rc = Z_OK;
    size_t left = n;
    while (rc != Z_STREAM_END) {
        if (cap - m < 2) {
            cap *= 2;
            out = realloc(out, cap);
            MAV_ASSERT(out != NULL);
        }
        uInt chunk_in = left > (1u << 30) ? (1u << 30) : (uInt)left;
        uInt chunk_out = cap - m - 1 > (1u << 30) ? (1u << 30) : (uInt)(cap - m - 1);
        z.avail_in = chunk_in;
        z.next_out = (Bytef *)out + m;
        z.avail_out = chunk_out;
        rc = inflate(&z, Z_NO_FLUSH);
        left -= chunk_in - z.avail_in;
        m += chunk_out - z.avail_out;
        if (rc == Z_STREAM_END) break;
        if (rc != Z_OK && rc != Z_BUF_ERROR) break;
        if (rc == Z_BUF_ERROR && left == 0 && z.avail_out > 0) break;  // truncated input
    }
    const char *msg = z.msg ? z.msg : "unexpected end of data";
    if (rc != Z_STREAM_END) st = mav_fail(MAV_ERR_FORMAT, "%s: corrupt or truncated gzip data (zlib: %s)", path, msg);
    inflateEnd(&z);
    if (st != MAV_OK) { free(out); return st; }
    out[m] = 0;
    *data = out;
    *len = m;
    return MAV_OK;
}

mav_status bpe_read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return mav_fail(MAV_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bpe_str s = {0};
    char buf[1 << 16];
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0) bpe_str_append(&s, buf, k);
    int err = ferror(f);
    fclose(f);
    if (err) { bpe_str_free(&s); return mav_fail(MAV_ERR_IO, "%s: read failed", path); }
    if (!s.p) bpe_str_append(&s, "", 0);
    if (s.n >= 2 && (uint8_t)s.p[0] == 0x1F && (uint8_t)s.p[1] == 0x8B) {
        mav_status st = gunzip(path, (const uint8_t *)s.p, s.n, data, len);
        bpe_str_free(&s);
        return st;
    }
    *data = s.p;
    *len = s.n;
    return MAV_OK;
}

// ---- hash maps ----

static uint64_t hash_bytes(const char *s, size_t n) {  // FNV-1a, then a finaliser mix
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {  // splitmix64 finaliser
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static size_t pow2_at_least(size_t n) {
    size_t c = 16;
    while (c < n) c *= 2;
    return c;
}

static int32_t merge_find(const mav_bpe *b, int32_t left, int32_t right, int32_t *res) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    for (uint64_t h = hash_u64(key) & b->mmask;; h = (h + 1) & b->mmask) {
        if (b->mkey[h] == key) { *res = b->mres[h]; return b->mrank[h]; }
        if (b->mkey[h] == UINT64_MAX) return -1;
    }
}

// ---- loading ----

static int is_field_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// Canonical id of a written form, from an open-addressing table of ids (-1 = empty) keyed by
// the token strings; -1 when absent.
static int32_t str_find(const mav_bpe *b, const int32_t *tab, size_t mask, const char *s, size_t n) {
    for (size_t h = hash_bytes(s, n) & mask;; h = (h + 1) & mask) {
        int32_t id = tab[h];
        if (id < 0) return -1;
        const char *t = b->strs + b->str_off[id];
        if (b->str_off[id + 1] - b->str_off[id] - 1 == n && memcmp(t, s, n) == 0) return id;
    }
}

mav_status mav_bpe_load_text(mav_bpe **out, const char *text, size_t len, const char *name) {
    *out = NULL;
    if (len == 0) return mav_fail(MAV_ERR_FORMAT, "%s: empty file (expected a header line, then one merge per line)", name);
    // Pass 1: the merge lines (after the header), up to MAV_BPE_MAX_MERGES.
    typedef struct { const char *a, *b; uint32_t na, nb; int line; } merge_line;
    int cap_m = 1024, nm = 0;
    merge_line *ml = malloc((size_t)cap_m * sizeof *ml);
    MAV_ASSERT(ml != NULL);
    const char *p = memchr(text, '\n', len), *endp = text + len;
    p = p ? p + 1 : endp;  // skip the header line
    int line = 1;
    mav_status st = MAV_OK;
    while (p < endp && nm < MAV_BPE_MAX_MERGES) {
        line++;
        const char *e = memchr(p, '\n', (size_t)(endp - p));
        if (!e) e = endp;
        const char *f[3];
        size_t fl[3];
        int nf = 0;
        for (const char *q = p; q < e;) {
            while (q < e && is_field_space(*q)) q++;
            if (q == e) break;
            const char *s = q;
            while (q < e && !is_field_space(*q)) q++;
            if (nf < 3) { f[nf] = s; fl[nf] = (size_t)(q - s); }
            nf++;
        }
        if (nf != 2) {
            st = mav_fail(MAV_ERR_FORMAT, "%s:%d: expected a merge \"LEFT RIGHT\" (two tokens separated by a space), got %s%.*s%s",
                          name, line, nf ? "\"" : "", nf ? (int)(e - p > 60 ? 60 : e - p) : 0, p,
                          nf ? "\"" : "an empty line");
            goto fail_ml;
        }
        if (nm == cap_m) {
            cap_m *= 2;
            ml = realloc(ml, (size_t)cap_m * sizeof *ml);
            MAV_ASSERT(ml != NULL);
        }
        ml[nm++] = (merge_line){f[0], f[1], (uint32_t)fl[0], (uint32_t)fl[1], line};
        p = e + 1;
    }

    mav_bpe *b = calloc(1, sizeof *b);
    MAV_ASSERT(b != NULL);
    b->n_merges = nm;
    b->vocab = 512 + nm + 2;
    b->sot = b->vocab - 2;
    b->eot = b->vocab - 1;
    // Written forms: byte symbols, the same with </w>, merges (LEFT + RIGHT), the specials.
    uint32_t byte_cp[256];
    int rank[256], byte_of_rank[256];
    bpe_byte_tables(byte_cp, rank);
    for (int i = 0; i < 256; i++) byte_of_rank[rank[i]] = i;
    bpe_str s = {0};
    b->str_off = malloc((size_t)(b->vocab + 1) * sizeof *b->str_off);
    MAV_ASSERT(b->str_off != NULL);
    for (int i = 0; i < 512; i++) {
        char u[8];
        size_t k = mav_utf8_encode(&byte_cp[byte_of_rank[i % 256]], 1, u);
        b->str_off[i] = (uint32_t)s.n;
        bpe_str_append(&s, u, k);
        if (i >= 256) bpe_str_append(&s, EOW, 4);
        bpe_str_append(&s, "", 1);
    }
    for (int m = 0; m < nm; m++) {
        b->str_off[512 + m] = (uint32_t)s.n;
        bpe_str_append(&s, ml[m].a, ml[m].na);
        bpe_str_append(&s, ml[m].b, ml[m].nb);
        bpe_str_append(&s, "", 1);
    }
    b->str_off[b->sot] = (uint32_t)s.n;
    bpe_str_append(&s, SOT_TEXT, sizeof SOT_TEXT);
    b->str_off[b->eot] = (uint32_t)s.n;
    bpe_str_append(&s, EOT_TEXT, sizeof EOT_TEXT);
    b->str_off[b->vocab] = (uint32_t)s.n;
    b->strs = s.p;

    // String -> canonical id (the last id with that string wins, as in CLIP's encoder dict).
    size_t scap = pow2_at_least(2 * (size_t)b->vocab), smask = scap - 1;
    int32_t *stab = malloc(scap * sizeof *stab);
    MAV_ASSERT(stab != NULL);
    memset(stab, 0xFF, scap * sizeof *stab);
    for (int32_t id = 0; id < b->vocab; id++) {
        const char *t = b->strs + b->str_off[id];
        size_t n = b->str_off[id + 1] - b->str_off[id] - 1;
        size_t h = hash_bytes(t, n) & smask;
        for (;; h = (h + 1) & smask) {
            int32_t o = stab[h];
            if (o < 0 || (b->str_off[o + 1] - b->str_off[o] - 1 == n && memcmp(b->strs + b->str_off[o], t, n) == 0)) break;
        }
        stab[h] = id;
    }
#define CANON(id) str_find(b, stab, smask, b->strs + b->str_off[id], b->str_off[(id) + 1] - b->str_off[id] - 1)
    for (int i = 0; i < 256; i++) {
        b->byte_sym[i] = CANON(rank[i]);
        b->byte_sym_eow[i] = CANON(256 + rank[i]);
    }

    // Merge map: (left, right) -> rank and merged symbol; a repeated pair keeps its last rank
    // (dict(zip(merges, range(len(merges))))).
    size_t mcap = pow2_at_least(2 * (size_t)nm + 2);
    b->mmask = mcap - 1;
    b->mkey = malloc(mcap * sizeof *b->mkey);
    b->mrank = malloc(mcap * sizeof *b->mrank);
    b->mres = malloc(mcap * sizeof *b->mres);
    MAV_ASSERT(b->mkey && b->mrank && b->mres);
    memset(b->mkey, 0xFF, mcap * sizeof *b->mkey);
    for (int m = 0; m < nm; m++) {
        int32_t l = str_find(b, stab, smask, ml[m].a, ml[m].na), r = str_find(b, stab, smask, ml[m].b, ml[m].nb);
        if (l < 0 || r < 0) {
            const char *bad = l < 0 ? ml[m].a : ml[m].b;
            int nbad = (int)(l < 0 ? ml[m].na : ml[m].nb);
            st = mav_fail(MAV_ERR_FORMAT,
                          "%s:%d: token \"%.*s\" is not in the vocabulary (neither a byte symbol, with or "
                          "without </w>, nor the result of a merge)",
                          name, ml[m].line, nbad > 60 ? 60 : nbad, bad);
            free(stab);
            mav_bpe_free(b);
            goto fail_ml;
        }
        uint64_t key = (uint64_t)(uint32_t)l << 32 | (uint32_t)r;
        uint64_t h = hash_u64(key) & b->mmask;
        while (b->mkey[h] != UINT64_MAX && b->mkey[h] != key) h = (h + 1) & b->mmask;
        b->mkey[h] = key;
        b->mrank[h] = m;
        b->mres[h] = CANON(512 + m);
    }
#undef CANON
    free(stab);
    free(ml);

    // Raw bytes of each token (the written form with bytes_to_unicode undone).
    uint8_t inv[0x144];
    memset(inv, 0, sizeof inv);
    for (int i = 0; i < 256; i++) inv[byte_cp[i]] = (uint8_t)i;
    b->raw_off = malloc((size_t)(b->vocab + 1) * sizeof *b->raw_off);
    b->raw = malloc(b->str_off[b->vocab]);
    MAV_ASSERT(b->raw_off && b->raw);
    mav_u32buf cps = {0};
    uint32_t r = 0;
    for (int32_t id = 0; id < b->vocab; id++) {
        b->raw_off[id] = r;
        cps.n = 0;
        mav_utf8_decode(b->strs + b->str_off[id], b->str_off[id + 1] - b->str_off[id] - 1, &cps);
        for (size_t k = 0; k < cps.n; k++) b->raw[r++] = cps.p[k] < 0x144 ? inv[cps.p[k]] : (uint8_t)'?';
    }
    b->raw_off[b->vocab] = r;
    mav_u32buf_free(&cps);
    *out = b;
    return MAV_OK;

fail_ml:
    free(ml);
    return st;
}

mav_status mav_bpe_load(mav_bpe **out, const char *path) {
    *out = NULL;
    char *data;
    size_t len;
    mav_status st = bpe_read_file(path, &data, &len);
    if (st != MAV_OK) return st;
    st = mav_bpe_load_text(out, data, len, path);
    free(data);
    return st;
}

void mav_bpe_free(mav_bpe *b) {
    if (!b) return;
    free(b->str_off); free(b->strs); free(b->raw_off); free(b->raw);
    free(b->mkey); free(b->mrank); free(b->mres);
    free(b);
}

int mav_bpe_vocab_size(const mav_bpe *b) { return b->vocab; }
int mav_bpe_n_merges(const mav_bpe *b) { return b->n_merges; }
int32_t mav_bpe_sot(const mav_bpe *b) { return b->sot; }
int32_t mav_bpe_eot(const mav_bpe *b) { return b->eot; }

const char *mav_bpe_token(const mav_bpe *b, int32_t id) {
    return id >= 0 && id < b->vocab ? b->strs + b->str_off[id] : NULL;
}

// ---- encoding ----

typedef struct {
    int32_t rank, pos;     // merge rank; position (first byte) of the left symbol
    int32_t left, right;   // the pair's symbols when pushed (stale entries are skipped)
} bpe_cand;

typedef struct {          // per-call work memory, grown to the longest word
    int cap;
    int32_t *sym, *next, *prev;  // (cap,) symbols as a linked list over byte positions
    bpe_cand *heap, *pend;       // (3*cap,), (2*cap,) priority queue, pairs made in the current round
    int nheap, npend;
    char *bytes;                 // (4*cap,) UTF-8 of the pre-token
} bpe_work;

static void work_reserve(bpe_work *w, size_t n) {
    if ((size_t)w->cap >= n) return;
    MAV_ASSERT(n < INT32_MAX / 8);
    int cap = (int)n;
    free(w->sym); free(w->next); free(w->prev); free(w->heap); free(w->pend); free(w->bytes);
    w->sym = malloc((size_t)cap * sizeof *w->sym);
    w->next = malloc((size_t)cap * sizeof *w->next);
    w->prev = malloc((size_t)cap * sizeof *w->prev);
    w->heap = malloc(3 * (size_t)cap * sizeof *w->heap);  // pushes per word: n - 1 initial + 2 per merge
    w->pend = malloc(2 * (size_t)cap * sizeof *w->pend);
    w->bytes = malloc(4 * (size_t)cap);
    MAV_ASSERT(w->sym && w->next && w->prev && w->heap && w->pend && w->bytes);
    w->cap = cap;
}

static void work_free(bpe_work *w) {
    free(w->sym); free(w->next); free(w->prev); free(w->heap); free(w->pend); free(w->bytes);
    memset(w, 0, sizeof *w);
}

static int cand_less(const bpe_cand *a, const bpe_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_work *w, bpe_cand c) {
    int i = w->nheap++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!cand_less(&c, &w->heap[p])) break;
        w->heap[i] = w->heap[p];
        i = p;
    }
    w->heap[i] = c;
}

static void heap_pop(bpe_work *w) {
    bpe_cand last = w->heap[--w->nheap];
    int i = 0, n = w->nheap;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && cand_less(&w->heap[c + 1], &w->heap[c])) c++;
        if (!cand_less(&w->heap[c], &last)) break;
        w->heap[i] = w->heap[c];
        i = c;
    }
    if (n > 0) w->heap[i] = last;
}

// Candidate for the pair starting at symbol position l (whose right neighbour is next[l]).
static void add_pair(const mav_bpe *b, bpe_work *w, int l, int n, int pending) {
    int r = w->next[l];
    if (r >= n) return;
    int32_t res;
    int32_t rank = merge_find(b, w->sym[l], w->sym[r], &res);
    if (rank < 0) return;
    bpe_cand c = {rank, l, w->sym[l], w->sym[r]};
    if (pending) w->pend[w->npend++] = c;
    else heap_push(w, c);
}

// BPE of one pre-token (bytes[0..n), n >= 1): writes its symbols in order to w->sym via the
// list and returns the first position. CLIP's loop merges, each round, every occurrence of the
// lowest-ranked pair left to right; a queue ordered by (rank, position) does the same in
// O(n log n), provided pairs created during a round wait until the round ends.
static void bpe_word(const mav_bpe *b, bpe_work *w, const uint8_t *bytes, int n) {
    for (int i = 0; i < n; i++) {
        w->sym[i] = i == n - 1 ? b->byte_sym_eow[bytes[i]] : b->byte_sym[bytes[i]];
        w->next[i] = i + 1;
        w->prev[i] = i - 1;
    }
    w->nheap = w->npend = 0;
    for (int i = 0; i + 1 < n; i++) add_pair(b, w, i, n, 0);
    int32_t round = -1;
    for (;;) {
        if (w->nheap == 0) {
            if (w->npend == 0) break;
            for (int k = 0; k < w->npend; k++) heap_push(w, w->pend[k]);
            w->npend = 0;
            round = -1;
        }
        bpe_cand c = w->heap[0];
        int l = c.pos, r = w->next[l];
        // Stale: l was absorbed (prev of a dead node is set to -2), or a side changed.
        if (w->prev[l] == -2 || r >= n || w->sym[l] != c.left || w->sym[r] != c.right) { heap_pop(w); continue; }
        if (c.rank != round && w->npend > 0) {  // round over: release the pairs it created
            for (int k = 0; k < w->npend; k++) heap_push(w, w->pend[k]);
            w->npend = 0;
            round = -1;
            continue;
        }
        heap_pop(w);
        round = c.rank;
        int32_t res;
        merge_find(b, c.left, c.right, &res);
        w->sym[l] = res;
        w->next[l] = w->next[r];
        if (w->next[r] < n) w->prev[w->next[r]] = l;
        w->prev[r] = -2;
        if (w->prev[l] >= 0) add_pair(b, w, w->prev[l], n, 1);
        add_pair(b, w, l, n, 1);
    }
}

typedef struct {
    int32_t *ids;  // (cap,) may be NULL when cap is 0
    int cap, n;    // n counts every token, written or not
    int limit;     // stop tokenising once n >= limit
} bpe_sink;

static void sink_push(bpe_sink *s, int32_t id) {
    if (s->n < s->cap) s->ids[s->n] = id;
    s->n++;
}

// Tokens of text (no SOT/EOT) into the sink.
static void encode_tokens(const mav_bpe *b, const char *text, bpe_sink *s) {
    mav_u32buf t = {0};
    bpe_clean(text, strlen(text), &t);
    bpe_work w = {0};
    size_t pos = 0, st, en;
    int special;
    while (s->n < s->limit && bpe_next_pretoken(t.p, t.n, &pos, &st, &en, &special)) {
        if (special) { sink_push(s, special == 1 ? b->sot : b->eot); continue; }
        work_reserve(&w, 4 * (en - st));
        int nb = (int)mav_utf8_encode(t.p + st, en - st, w.bytes);
        bpe_word(b, &w, (const uint8_t *)w.bytes, nb);
        for (int i = 0; i < nb; i = w.next[i]) sink_push(s, w.sym[i]);
    }
    work_free(&w);
    mav_u32buf_free(&t);
}

mav_status mav_bpe_encode(const mav_bpe *b, const char *text, int32_t *ids, int cap, int *n) {
    bpe_sink s = {ids, cap < 0 ? 0 : cap, 0, INT_MAX};
    sink_push(&s, b->sot);
    encode_tokens(b, text, &s);
    sink_push(&s, b->eot);
    *n = s.n;
    if (s.n > s.cap) return mav_fail(MAV_ERR_ARG, "tokenize: %d ids do not fit in a buffer of %d", s.n, s.cap);
    return MAV_OK;
}

mav_status mav_bpe_encode_context(const mav_bpe *b, const char *text, int32_t *ids, int context, int *n) {
    if (context < 2) return mav_fail(MAV_ERR_ARG, "tokenize: context %d is too short for SOT and EOT", context);
    bpe_sink s = {ids, context, 0, context - 1};  // SOT + context-2 tokens is enough
    sink_push(&s, b->sot);
    encode_tokens(b, text, &s);
    int used = s.n + 1 > context ? context : s.n + 1;
    ids[used - 1] = b->eot;
    for (int i = used; i < context; i++) ids[i] = 0;
    if (n) *n = used;
    return MAV_OK;
}

// ---- decoding ----

mav_status mav_bpe_decode(const mav_bpe *b, const int32_t *ids, int n, char *out, size_t cap, size_t *len) {
    bpe_str raw = {0};
    bpe_str_append(&raw, "", 0);
    for (int i = 0; i < n; i++) {
        int32_t id = ids[i];
        if (id < 0 || id >= b->vocab) {
            bpe_str_free(&raw);
            return mav_fail(MAV_ERR_ARG, "decode: id %d at position %d is outside the vocabulary (0..%d)", id, i, b->vocab - 1);
        }
        if (id == b->eot) break;
        if (id == b->sot) continue;
        bpe_str_append(&raw, b->raw + b->raw_off[id], b->raw_off[id + 1] - b->raw_off[id]);
    }
    // UTF-8 with replacement, then "</w>" -> " " (ASCII, so the order of the two is immaterial).
    mav_u32buf cps = {0};
    mav_utf8_decode(raw.p, raw.n, &cps);
    bpe_str_free(&raw);
    size_t m = 0;
    for (size_t i = 0; i < cps.n; i++) {
        if (cps.p[i] == '<' && i + 3 < cps.n && cps.p[i + 1] == '/' && cps.p[i + 2] == 'w' && cps.p[i + 3] == '>') {
            cps.p[m++] = ' ';
            i += 3;
        } else {
            cps.p[m++] = cps.p[i];
        }
    }
    while (m > 0 && cps.p[m - 1] == ' ') m--;
    char *tmp = malloc(4 * m + 1);
    MAV_ASSERT(tmp != NULL);
    size_t k = mav_utf8_encode(cps.p, m, tmp);
    mav_u32buf_free(&cps);
    *len = k;
    if (k + 1 > cap) {
        free(tmp);
        return mav_fail(MAV_ERR_ARG, "decode: %zu bytes do not fit in a buffer of %zu", k + 1, cap);
    }
    memcpy(out, tmp, k);
    out[k] = 0;
    free(tmp);
    return MAV_OK;
}

char *mav_bpe_clean_text(const char *text) {
    mav_u32buf t = {0};
    bpe_clean(text, strlen(text), &t);
    char *s = malloc(4 * t.n + 1);
    MAV_ASSERT(s != NULL);
    s[mav_utf8_encode(t.p, t.n, s)] = 0;
    mav_u32buf_free(&t);
    return s;
}
