// bpe_train.c — learning BPE merges from captions (mav tokenizer train).
//
// Standard BPE training over word types: each distinct pre-token (with its count) is a list
// of symbols; pair counts are kept in a hash map with, for each pair, the words that contain
// it, and a max-heap of (count, pair) with lazy deletion picks the next merge. Merging a pair
// rewrites only the words that contain it. Ties in count go to the pair whose left token,
// then right token, is smaller byte-wise in written form: with words visited in first-seen
// order, everything is deterministic.
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"  // mav_atomic_*
#include "text/bpe.h"
#include "text/bpe_internal.h"

// ---- a string -> int32 map over a growing pool (open addressing, rehashing) ----

typedef struct {
    bpe_str pool;       // NUL-terminated strings back to back
    uint32_t *off;      // (n,) start of item i in pool
    int n, cap_items;
    int32_t *tab;       // (tcap,) item index or -1
    size_t tcap;
} strmap;

static uint64_t hash_str(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static const char *sm_str(const strmap *m, int i) { return m->pool.p + m->off[i]; }
static size_t sm_len(const strmap *m, int i) {
    return (i + 1 < m->n ? m->off[i + 1] : m->pool.n) - m->off[i] - 1;
}

static size_t sm_slot(const strmap *m, const char *s, size_t n) {
    for (size_t h = hash_str(s, n) & (m->tcap - 1);; h = (h + 1) & (m->tcap - 1)) {
        int32_t i = m->tab[h];
        if (i < 0 || (sm_len(m, i) == n && memcmp(sm_str(m, i), s, n) == 0)) return h;
    }
}

// Index of s, adding it when absent (*added = 1).
static int sm_get(strmap *m, const char *s, size_t n, int *added) {
    if ((size_t)(m->n + 1) * 2 > m->tcap) {
        size_t tcap = m->tcap ? 2 * m->tcap : 1024;
        free(m->tab);
        m->tab = malloc(tcap * sizeof *m->tab);
        MAV_ASSERT(m->tab != NULL);
        memset(m->tab, 0xFF, tcap * sizeof *m->tab);
        m->tcap = tcap;
        for (int i = 0; i < m->n; i++) m->tab[sm_slot(m, sm_str(m, i), sm_len(m, i))] = i;
    }
    size_t h = sm_slot(m, s, n);
    *added = m->tab[h] < 0;
    if (!*added) return m->tab[h];
    if (m->n == m->cap_items) {
        m->cap_items = m->cap_items ? 2 * m->cap_items : 1024;
        m->off = realloc(m->off, (size_t)m->cap_items * sizeof *m->off);
        MAV_ASSERT(m->off != NULL);
    }
    m->off[m->n] = (uint32_t)m->pool.n;
    bpe_str_append(&m->pool, s, n);
    bpe_str_append(&m->pool, "", 1);
    m->tab[h] = m->n;
    return m->n++;
}

static void sm_free(strmap *m) {
    bpe_str_free(&m->pool);
    free(m->off);
    free(m->tab);
    memset(m, 0, sizeof *m);
}

// ---- training state ----

typedef struct {
    strmap tokens;         // written forms; index = symbol
    strmap words;          // distinct pre-tokens (raw bytes)
    int64_t *wcount;       // (words.n,) occurrences of each word
    uint32_t *woff, *wlen; // (words.n,) symbols of word w: sym[woff[w] .. woff[w] + wlen[w])
    int32_t *sym;
    size_t nsym;
    // pairs
    int np, cap_p;
    int32_t *pa, *pb;      // (np,) left and right symbol
    int64_t *pcount;       // (np,) occurrences weighted by word counts
    int64_t *pold;         // (np,) count before the current merge (valid when pstamp == step)
    int32_t **pw;          // (np,) words that contained the pair when it was counted (may repeat / go stale)
    int *pwn, *pwc;
    int *pstamp;
    uint64_t *pkey;        // (pcap,) a << 32 | b, UINT64_MAX = empty
    int32_t *pidx;
    size_t pcap;
    // heap of (count, pair)
    struct hent { int64_t count; int32_t pair; } *heap;
    size_t nheap, cap_heap;
} trainer;

static uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27; x *= 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static int pair_get(trainer *t, int32_t a, int32_t b) {
    if ((size_t)(t->np + 1) * 2 > t->pcap) {
        size_t cap = t->pcap ? 2 * t->pcap : 4096;
        free(t->pkey); free(t->pidx);
        t->pkey = malloc(cap * sizeof *t->pkey);
        t->pidx = malloc(cap * sizeof *t->pidx);
        MAV_ASSERT(t->pkey && t->pidx);
        memset(t->pkey, 0xFF, cap * sizeof *t->pkey);
        t->pcap = cap;
        for (int i = 0; i < t->np; i++) {
            uint64_t k = (uint64_t)(uint32_t)t->pa[i] << 32 | (uint32_t)t->pb[i];
            size_t h = mix64(k) & (cap - 1);
            while (t->pkey[h] != UINT64_MAX) h = (h + 1) & (cap - 1);
            t->pkey[h] = k;
            t->pidx[h] = i;
        }
    }
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t h = mix64(k) & (t->pcap - 1);
    while (t->pkey[h] != UINT64_MAX) {
        if (t->pkey[h] == k) return t->pidx[h];
        h = (h + 1) & (t->pcap - 1);
    }
    if (t->np == t->cap_p) {
        int c = t->cap_p ? 2 * t->cap_p : 4096;
        t->pa = realloc(t->pa, (size_t)c * sizeof *t->pa);
        t->pb = realloc(t->pb, (size_t)c * sizeof *t->pb);
        t->pcount = realloc(t->pcount, (size_t)c * sizeof *t->pcount);
        t->pold = realloc(t->pold, (size_t)c * sizeof *t->pold);
        t->pw = realloc(t->pw, (size_t)c * sizeof *t->pw);
        t->pwn = realloc(t->pwn, (size_t)c * sizeof *t->pwn);
        t->pwc = realloc(t->pwc, (size_t)c * sizeof *t->pwc);
        t->pstamp = realloc(t->pstamp, (size_t)c * sizeof *t->pstamp);
        MAV_ASSERT(t->pa && t->pb && t->pcount && t->pold && t->pw && t->pwn && t->pwc && t->pstamp);
        t->cap_p = c;
    }
    int i = t->np++;
    t->pa[i] = a; t->pb[i] = b; t->pcount[i] = 0; t->pold[i] = 0;
    t->pw[i] = NULL; t->pwn[i] = t->pwc[i] = 0; t->pstamp[i] = -1;
    t->pkey[h] = k;
    t->pidx[h] = i;
    return i;
}

static void pair_note_word(trainer *t, int p, int32_t w) {
    if (t->pwn[p] > 0 && t->pw[p][t->pwn[p] - 1] == w) return;
    if (t->pwn[p] == t->pwc[p]) {
        t->pwc[p] = t->pwc[p] ? 2 * t->pwc[p] : 4;
        t->pw[p] = realloc(t->pw[p], (size_t)t->pwc[p] * sizeof **t->pw);
        MAV_ASSERT(t->pw[p] != NULL);
    }
    t->pw[p][t->pwn[p]++] = w;
}

// Heap order: larger count first; ties by left token, then right token, smaller byte-wise.
static int hent_before(const trainer *t, const struct hent *x, const struct hent *y) {
    if (x->count != y->count) return x->count > y->count;
    int c = strcmp(sm_str(&t->tokens, t->pa[x->pair]), sm_str(&t->tokens, t->pa[y->pair]));
    if (c) return c < 0;
    return strcmp(sm_str(&t->tokens, t->pb[x->pair]), sm_str(&t->tokens, t->pb[y->pair])) < 0;
}

static void heap_push(trainer *t, int p) {
    if (t->nheap == t->cap_heap) {
        t->cap_heap = t->cap_heap ? 2 * t->cap_heap : 4096;
        t->heap = realloc(t->heap, t->cap_heap * sizeof *t->heap);
        MAV_ASSERT(t->heap != NULL);
    }
    struct hent e = {t->pcount[p], p};
    size_t i = t->nheap++;
    while (i > 0) {
        size_t q = (i - 1) / 2;
        if (!hent_before(t, &e, &t->heap[q])) break;
        t->heap[i] = t->heap[q];
        i = q;
    }
    t->heap[i] = e;
}

static void heap_pop(trainer *t) {
    struct hent last = t->heap[--t->nheap];
    size_t i = 0, n = t->nheap;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && hent_before(t, &t->heap[c + 1], &t->heap[c])) c++;
        if (!hent_before(t, &t->heap[c], &last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n > 0) t->heap[i] = last;
}

// Adds delta (times the word count) to every adjacent pair of word w; records each pair's
// count before the step's first change, and the touched pairs in *touched.
static void count_word(trainer *t, int32_t w, int64_t sign, int step, int **touched, int *nt, int *ct) {
    const int32_t *s = t->sym + t->woff[w];
    for (uint32_t i = 0; i + 1 < t->wlen[w]; i++) {
        int p = pair_get(t, s[i], s[i + 1]);
        if (t->pstamp[p] != step) {
            t->pstamp[p] = step;
            t->pold[p] = t->pcount[p];
            if (*nt == *ct) {
                *ct = *ct ? 2 * *ct : 256;
                *touched = realloc(*touched, (size_t)*ct * sizeof **touched);
                MAV_ASSERT(*touched != NULL);
            }
            (*touched)[(*nt)++] = p;
        }
        t->pcount[p] += sign * t->wcount[w];
        if (sign > 0) pair_note_word(t, p, w);
    }
}

static void trainer_free(trainer *t) {
    sm_free(&t->tokens);
    sm_free(&t->words);
    free(t->wcount); free(t->woff); free(t->wlen); free(t->sym);
    for (int i = 0; i < t->np; i++) free(t->pw[i]);
    free(t->pa); free(t->pb); free(t->pcount); free(t->pold); free(t->pw); free(t->pwn); free(t->pwc);
    free(t->pstamp); free(t->pkey); free(t->pidx); free(t->heap);
}

mav_status mav_bpe_train(const char *captions, size_t len, int n_merges, char **text, size_t *text_len,
                         int *n_learned, FILE *progress) {
    *text = NULL;
    *n_learned = 0;
    if (n_merges < 0 || n_merges > MAV_BPE_MAX_MERGES)
        return mav_fail(MAV_ERR_ARG, "tokenizer train: merges must be in [0, %d] (CLIP's vocabulary), got %d",
                        MAV_BPE_MAX_MERGES, n_merges);
    trainer t;
    memset(&t, 0, sizeof t);
    uint32_t byte_cp[256];
    int rank[256], byte_of_rank[256];
    bpe_byte_tables(byte_cp, rank);
    for (int i = 0; i < 256; i++) byte_of_rank[rank[i]] = i;
    int added;
    for (int i = 0; i < 512; i++) {  // base symbols, same order as the tokenizer's ids
        char u[16];
        size_t k = mav_utf8_encode(&byte_cp[byte_of_rank[i % 256]], 1, u);
        if (i >= 256) { memcpy(u + k, "</w>", 4); k += 4; }
        sm_get(&t.tokens, u, k, &added);
    }

    // Word counts over the cleaned, pre-tokenised captions (one per line).
    size_t cap_w = 0;
    long n_captions = 0, n_words = 0;
    mav_u32buf clean = {0};
    char *bytes = NULL;  // UTF-8 of one pre-token
    size_t cap_bytes = 0;
    for (const char *p = captions, *end = captions + len; p < end;) {
        const char *e = memchr(p, '\n', (size_t)(end - p));
        if (!e) e = end;
        clean.n = 0;
        bpe_clean(p, (size_t)(e - p), &clean);
        n_captions += clean.n > 0;
        size_t pos = 0, st, en;
        int special;
        while (bpe_next_pretoken(clean.p, clean.n, &pos, &st, &en, &special)) {
            if (special) continue;  // <|startoftext|> / <|endoftext|> are not learned
            if (4 * (en - st) > cap_bytes) {
                cap_bytes = 8 * (en - st);
                bytes = realloc(bytes, cap_bytes);
                MAV_ASSERT(bytes != NULL);
            }
            size_t nb = mav_utf8_encode(clean.p + st, en - st, bytes);
            int w = sm_get(&t.words, bytes, nb, &added);
            n_words++;
            if (added) {
                if ((size_t)t.words.n > cap_w) {
                    cap_w = cap_w ? 2 * cap_w : 4096;
                    t.wcount = realloc(t.wcount, cap_w * sizeof *t.wcount);
                    t.woff = realloc(t.woff, cap_w * sizeof *t.woff);
                    t.wlen = realloc(t.wlen, cap_w * sizeof *t.wlen);
                    MAV_ASSERT(t.wcount && t.woff && t.wlen);
                }
                t.wcount[w] = 0;
                t.woff[w] = (uint32_t)t.nsym;
                t.wlen[w] = (uint32_t)nb;
                t.sym = realloc(t.sym, (t.nsym + nb) * sizeof *t.sym);
                MAV_ASSERT(t.sym != NULL);
                for (size_t i = 0; i < nb; i++) {
                    int b = (uint8_t)bytes[i];
                    t.sym[t.nsym++] = i + 1 == nb ? 256 + rank[b] : rank[b];
                }
            }
            t.wcount[w]++;
        }
        p = e + 1;
    }
    mav_u32buf_free(&clean);
    free(bytes);
    if (progress)
        fprintf(progress, "tokenizer train: %ld captions, %ld words (%d distinct); learning %d merges\n", n_captions,
                n_words, t.words.n, n_merges);

    int *touched = NULL, nt = 0, ct = 0;
    for (int w = 0; w < t.words.n; w++) count_word(&t, w, +1, -1, &touched, &nt, &ct);
    for (int p = 0; p < t.np; p++) heap_push(&t, p);

    bpe_str out = {0};
    bpe_str_append(&out, "#version: 0.2\n", 14);
    int every = n_merges >= 20 ? n_merges / 20 : 0, m = 0;
    for (; m < n_merges; m++) {
        int best = -1;
        while (t.nheap > 0) {
            struct hent top = t.heap[0];
            heap_pop(&t);
            if (top.count > 0 && top.count == t.pcount[top.pair]) { best = top.pair; break; }
        }
        if (best < 0) break;  // no pair left: every word is a single symbol
        int32_t a = t.pa[best], b = t.pb[best];
        int64_t best_count = t.pcount[best];
        // The merged token (an existing token when another merge already spelled it).
        bpe_str s = {0};
        bpe_str_append(&s, sm_str(&t.tokens, a), sm_len(&t.tokens, a));
        bpe_str_append(&s, sm_str(&t.tokens, b), sm_len(&t.tokens, b));
        int32_t ab = sm_get(&t.tokens, s.p, s.n, &added);
        bpe_str_free(&s);
        bpe_str_append(&out, sm_str(&t.tokens, a), sm_len(&t.tokens, a));
        bpe_str_append(&out, " ", 1);
        bpe_str_append(&out, sm_str(&t.tokens, b), sm_len(&t.tokens, b));
        bpe_str_append(&out, "\n", 1);

        int32_t *list = t.pw[best];
        int nl = t.pwn[best];
        t.pw[best] = NULL;
        t.pwn[best] = t.pwc[best] = 0;
        nt = 0;
        for (int k = 0; k < nl; k++) {
            int32_t w = list[k];
            if (k > 0 && list[k - 1] == w) continue;
            int32_t *sy = t.sym + t.woff[w];
            uint32_t L = t.wlen[w], has = 0;
            for (uint32_t i = 0; i + 1 < L && !has; i++) has = sy[i] == a && sy[i + 1] == b;
            if (!has) continue;  // stale entry: an earlier merge changed this word
            count_word(&t, w, -1, m, &touched, &nt, &ct);
            uint32_t j = 0;
            for (uint32_t i = 0; i < L;) {  // every occurrence, left to right
                if (i + 1 < L && sy[i] == a && sy[i + 1] == b) { sy[j++] = ab; i += 2; }
                else sy[j++] = sy[i++];
            }
            t.wlen[w] = j;
            count_word(&t, w, +1, m, &touched, &nt, &ct);
        }
        free(list);
        for (int k = 0; k < nt; k++) {
            int p = touched[k];
            if (t.pcount[p] != t.pold[p] && t.pcount[p] > 0) heap_push(&t, p);
        }
        if (progress && every && (m + 1) % every == 0)
            fprintf(progress, "tokenizer train: %d/%d merges (last: \"%s\" + \"%s\", %lld occurrences)\n", m + 1,
                    n_merges, sm_str(&t.tokens, a), sm_str(&t.tokens, b), (long long)best_count);
    }
    free(touched);
    if (progress && m < n_merges)
        fprintf(progress, "tokenizer train: the corpus ran out of pairs after %d merges (asked for %d)\n", m, n_merges);
    trainer_free(&t);
    *n_learned = m;
    *text = out.p;
    *text_len = out.n;
    return MAV_OK;
}

mav_status mav_bpe_train_file(const char *captions_path, int n_merges, const char *out_path, int *n_learned,
                              FILE *progress) {
    char *captions, *text;
    size_t len, tlen;
    mav_status st = bpe_read_file(captions_path, &captions, &len);
    if (st != MAV_OK) return st;
    st = mav_bpe_train(captions, len, n_merges, &text, &tlen, n_learned, progress);
    free(captions);
    if (st != MAV_OK) return st;
    mav_atomic_file f;
    st = mav_atomic_open(&f, out_path);
    if (st == MAV_OK) {
        st = mav_atomic_write(&f, text, tlen);
        if (st == MAV_OK) st = mav_atomic_commit(&f);
        else mav_atomic_abort(&f);
    }
    free(text);
    return st;
}
