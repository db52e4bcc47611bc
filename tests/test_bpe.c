// test_bpe.c — CLIP's BPE tokenizer (src/text/bpe.h) and `mav tokenize` / `mav tokenizer train`.
//
// Exactness against OpenAI's tokenizer: the 40 cases of ../shared/data/clip/tokenizer-cases.jsonl
// (made by CLIP's own Python with its merges file); tests needing that data skip with a message
// when $MAV_SHARED_DIR is absent. The other expected values below (edge texts, cleanup) were
// produced by CLIP's SimpleTokenizer code (with the `regex` module; ftfy replaced by NFC as in
// the cases file) on Python 3.11 / Unicode 14. All checks are exact: tokenisation is integer
// work, there is no tolerance to state.
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "text/bpe.h"

// ---- helpers ----

// $MAV_SHARED_DIR/data/clip/<name> (static buffer), or NULL when absent.
static const char *clip_data(const char *name) {
    static char path[PATH_MAX];
    const char *dir = getenv("MAV_SHARED_DIR");
    if (!dir || !*dir) return NULL;
    snprintf(path, sizeof path, "%s/data/clip/%s", dir, name);
    return access(path, R_OK) == 0 ? path : NULL;
}

// CLIP's merges, or skips the test with a message.
static mav_bpe *load_clip_or_skip(void) {
    const char *p = clip_data("bpe_simple_vocab_16e6.txt.gz");
    if (!p) {
        print_message("skipped: CLIP's merges file not found ($MAV_SHARED_DIR/data/clip; set by CTest)\n");
        skip();
    }
    mav_bpe *b = NULL;
    if (mav_bpe_load(&b, p) != MAV_OK) fail_msg("loading %s: %s", p, mav_last_error());
    return b;
}

// A temporary file name for this process (static buffer per slot).
static const char *tmp_path(const char *name) {
    static char buf[4][PATH_MAX];
    static int slot = 0;
    char *p = buf[slot++ % 4];
    const char *dir = getenv("TMPDIR");
    snprintf(p, PATH_MAX, "%s/mav_test_bpe_%ld_%s", dir && *dir ? dir : "/tmp", (long)getpid(), name);
    return p;
}

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n) fail_msg("cannot write %s", path);
    fclose(f);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    if (!s || fread(s, 1, (size_t)len, f) != (size_t)len) fail_msg("cannot read %s", path);
    s[len] = 0;
    fclose(f);
    *n = (size_t)len;
    return s;
}

static void check_ids(const char *what, const int32_t *got, int ngot, const int32_t *want, int nwant) {
    if (ngot != nwant) fail_msg("%s: %d ids, want %d", what, ngot, nwant);
    for (int i = 0; i < nwant; i++)
        if (got[i] != want[i]) fail_msg("%s: id %d is %d, want %d", what, i, got[i], want[i]);
}

static void encode_expect(const mav_bpe *b, const char *text, const int32_t *want, int nwant) {
    int32_t ids[256];
    int n = 0;
    if (mav_bpe_encode(b, text, ids, 256, &n) != MAV_OK) fail_msg("encode \"%s\": %s", text, mav_last_error());
    check_ids(text, ids, n, want, nwant);
}

// Copy of s without any space.
static char *no_spaces(const char *s) {
    char *o = malloc(strlen(s) + 1);
    size_t k = 0;
    for (; *s; s++)
        if (*s != ' ') o[k++] = *s;
    o[k] = 0;
    return o;
}

static char *decode_all(const mav_bpe *b, const int32_t *ids, int n) {
    size_t len = 0;
    mav_bpe_decode(b, ids, n, NULL, 0, &len);  // measures
    char *s = malloc(len + 1);
    if (mav_bpe_decode(b, ids, n, s, len + 1, &len) != MAV_OK) fail_msg("decode: %s", mav_last_error());
    return s;
}

// ---- OpenAI's cases ----

static void test_clip_cases(void **state) {
    (void)state;
    mav_bpe *b = load_clip_or_skip();
    if (mav_bpe_vocab_size(b) != 49408 || mav_bpe_sot(b) != 49406 || mav_bpe_eot(b) != 49407)
        fail_msg("CLIP vocabulary: %d ids, SOT %d, EOT %d; want 49408, 49406, 49407", mav_bpe_vocab_size(b),
                 mav_bpe_sot(b), mav_bpe_eot(b));
    const char *path = clip_data("tokenizer-cases.jsonl");
    if (!path) fail_msg("tokenizer-cases.jsonl missing next to the merges file");
    FILE *f = fopen(path, "r");
    char line[1 << 16];
    int ncases = 0;
    while (fgets(line, sizeof line, f)) {
        json_error_t err;
        json_t *c = json_loads(line, 0, &err);
        if (!c) fail_msg("%s:%d: %s", path, ncases + 1, err.text);
        const char *text = json_string_value(json_object_get(c, "text"));
        json_t *jids = json_object_get(c, "ids"), *j77 = json_object_get(c, "ids77");
        int nw = (int)json_array_size(jids);
        int32_t want[1024], want77[77], got[1024];
        for (int i = 0; i < nw && i < 1024; i++) want[i] = (int32_t)json_integer_value(json_array_get(jids, i));
        for (int i = 0; i < 77; i++) want77[i] = (int32_t)json_integer_value(json_array_get(j77, i));
        int n = 0;
        if (mav_bpe_encode(b, text, got, 1024, &n) != MAV_OK) fail_msg("encode case %d: %s", ncases, mav_last_error());
        check_ids(text, got, n, want, nw);
        int n77 = 0;
        if (mav_bpe_encode_context(b, text, got, 77, &n77) != MAV_OK) fail_msg("encode77: %s", mav_last_error());
        check_ids(text, got, 77, want77, 77);
        if (n77 != (nw < 77 ? nw : 77)) fail_msg("%s: encode_context used %d ids, want %d", text, n77, nw < 77 ? nw : 77);
        // decode(encode(text)) is the cleaned text up to spacing: CLIP's decode puts a space after
        // every word-final token, so "cat," comes back as "cat ,". Compare without spaces, and
        // check the cleanup independently for ASCII texts (lower-case, single spaces).
        char *dec = decode_all(b, want, nw), *clean = mav_bpe_clean_text(text);
        char *d0 = no_spaces(dec), *c0 = no_spaces(clean);
        if (strcmp(d0, c0) != 0) fail_msg("decode(encode(\"%s\")) = \"%s\", cleaned text \"%s\"", text, dec, clean);
        int ascii = 1;
        for (const char *p = text; *p; p++) ascii &= (unsigned char)*p < 0x80;
        if (ascii) {
            char low[4096];
            size_t k = 0;
            for (const char *p = text; *p && k + 1 < sizeof low; p++) low[k++] = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
            low[k] = 0;
            if (strcmp(low, clean) != 0) fail_msg("cleanup of \"%s\" is \"%s\", want \"%s\"", text, clean, low);
        }
        free(dec); free(clean); free(d0); free(c0);
        json_decref(c);
        ncases++;
    }
    fclose(f);
    if (ncases != 40) fail_msg("read %d cases, want 40", ncases);
    mav_bpe_free(b);
}

// Edge texts against CLIP's Python (values in the file comment).
static void test_clip_edge_texts(void **state) {
    (void)state;
    mav_bpe *b = load_clip_or_skip();
    encode_expect(b, "", (const int32_t[]){49406, 49407}, 2);
    encode_expect(b, " \t\n \xe3\x80\x80 ", (const int32_t[]){49406, 49407}, 2);  // U+3000 is whitespace
    encode_expect(b, "\xf0\x9f\x98\x80 \xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd", (const int32_t[]){49406, 7334, 43722, 49407}, 4);
    encode_expect(b, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae\xe3\x83\x86\xe3\x82\xad\xe3\x82\xb9\xe3\x83\x88",  // 日本語のテキスト
                  (const int32_t[]){49406, 39121, 44353, 34002, 252, 21575, 2429, 228, 47121, 32421, 486, 49407}, 12);
    encode_expect(b, "\x01" "a\x7f" "b\x1c", (const int32_t[]){49406, 445, 320, 477, 321, 49407}, 6);  // controls
    // Invalid UTF-8 reads as U+FFFD per maximal ill-formed sequence: \xff -> one, \xe0\x80 -> two.
    encode_expect(b, "a\xff" "b\xe0\x80" "c", (const int32_t[]){49406, 320, 39802, 321, 47356, 39802, 322, 49407}, 8);
    encode_expect(b, "\xc0", (const int32_t[]){49406, 39802, 49407}, 3);
    encode_expect(b, "\xf4\x90\x80\x80", (const int32_t[]){49406, 47356, 47356, 47356, 39802, 49407}, 6);  // > U+10FFFF: four
    // Contractions and a literal <|endoftext|> (CLIP emits the special id).
    encode_expect(b, "it's <|endoftext|> don't", (const int32_t[]){49406, 585, 568, 49407, 847, 713, 49407}, 7);
    // Final sigma, double HTML unescaping, NFC (e + combining acute).
    encode_expect(b, "\xce\x91\xce\xa3. Hello&amp;amp;World &lt;3 cafe\xcc\x81",
                  (const int32_t[]){49406, 138, 109, 139, 480, 269, 3306, 261, 1002, 283, 274, 15304, 49407}, 13);
    mav_bpe_free(b);
}

// A 100 KB text: the full encoding works, the context form keeps EOT last, and stops early.
static void test_clip_long_text(void **state) {
    (void)state;
    mav_bpe *b = load_clip_or_skip();
    size_t L = 100 * 1024;
    char *s = malloc(L + 1);
    for (size_t i = 0; i < L; i++) s[i] = "a photo of a cat sitting on a mat, "[i % 35];
    s[L] = 0;
    int n = 0;
    mav_status st = mav_bpe_encode(b, s, NULL, 0, &n);
    if (st != MAV_ERR_ARG || n < 20000) fail_msg("measuring a 100 KB text: status %d, %d ids", st, n);
    int32_t *all = malloc((size_t)n * sizeof *all);
    int n2 = 0;
    if (mav_bpe_encode(b, s, all, n, &n2) != MAV_OK || n2 != n) fail_msg("encode 100 KB: %s", mav_last_error());
    if (all[0] != 49406 || all[n - 1] != 49407) fail_msg("100 KB: first %d last %d", all[0], all[n - 1]);
    int32_t ids[77];
    int used = 0;
    if (mav_bpe_encode_context(b, s, ids, 77, &used) != MAV_OK) fail_msg("context: %s", mav_last_error());
    if (used != 77 || ids[76] != 49407) fail_msg("truncated: used %d, last id %d (want 77, EOT 49407)", used, ids[76]);
    check_ids("100 KB truncated prefix", ids, 76, all, 76);
    // One 100 KB "word" (a single pre-token): BPE stays fast (priority queue, not CLIP's O(n^2)).
    for (size_t i = 0; i < L; i++) s[i] = (char)('a' + (i * 7 + i / 13) % 26);
    if (mav_bpe_encode_context(b, s, ids, 77, &used) != MAV_OK || ids[76] != 49407) fail_msg("long word");
    free(all);
    free(s);
    mav_bpe_free(b);
}

// ---- without CLIP's data ----

// A hand-made merges file: "c a" (rank 0) then "ca t</w>" (rank 1).
static const char k_tiny_merges[] = "#version: 0.2\nc a\nca t</w>\n";

static void test_tiny_vocabulary(void **state) {
    (void)state;
    mav_bpe *b;
    if (mav_bpe_load_text(&b, k_tiny_merges, strlen(k_tiny_merges), "tiny") != MAV_OK) fail_msg("%s", mav_last_error());
    if (mav_bpe_vocab_size(b) != 516 || mav_bpe_sot(b) != 514 || mav_bpe_eot(b) != 515 || mav_bpe_n_merges(b) != 2)
        fail_msg("tiny: vocab %d sot %d eot %d merges %d", mav_bpe_vocab_size(b), mav_bpe_sot(b), mav_bpe_eot(b),
                 mav_bpe_n_merges(b));
    if (strcmp(mav_bpe_token(b, 513), "cat</w>") != 0 || strcmp(mav_bpe_token(b, 0), "!") != 0 ||
        strcmp(mav_bpe_token(b, 256), "!</w>") != 0 || strcmp(mav_bpe_token(b, 515), "<|endoftext|>") != 0 ||
        mav_bpe_token(b, 516) != NULL || mav_bpe_token(b, -1) != NULL)
        fail_msg("token strings are wrong");
    // Byte ids follow bytes_to_unicode's order: '!'..'~' are 0..93, so 'c' = 66, 'a' = 64;
    // word-final bytes are +256; "ca" = 512 cannot merge with "ts</w>"'s symbols.
    encode_expect(b, "Cat CAT", (const int32_t[]){514, 513, 513, 515}, 4);
    encode_expect(b, "cats", (const int32_t[]){514, 512, 83, 338, 515}, 5);
    int32_t ids[8] = {514, 513, 512, 83, 338, 515, 0, 0};
    char *d = decode_all(b, ids, 8);
    if (strcmp(d, "cat cats") != 0) fail_msg("decode = \"%s\", want \"cat cats\"", d);
    free(d);
    // Context: padding, truncation, too short.
    int32_t ctx[6];
    int used;
    if (mav_bpe_encode_context(b, "cat", ctx, 6, &used) != MAV_OK) fail_msg("%s", mav_last_error());
    check_ids("context 6", ctx, 6, (const int32_t[]){514, 513, 515, 0, 0, 0}, 6);
    if (used != 3) fail_msg("used %d, want 3", used);
    mav_bpe_encode_context(b, "cat cat cat cat", ctx, 4, &used);
    check_ids("context 4", ctx, 4, (const int32_t[]){514, 513, 513, 515}, 4);
    mav_bpe_encode_context(b, "cat cat", ctx, 2, &used);
    check_ids("context 2", ctx, 2, (const int32_t[]){514, 515}, 2);
    if (mav_bpe_encode_context(b, "cat", ctx, 1, &used) != MAV_ERR_ARG) fail_msg("context 1 accepted");
    int n = 0;
    if (mav_bpe_encode(b, "cat cat", ids, 3, &n) != MAV_ERR_ARG || n != 4) fail_msg("small buffer: n = %d", n);
    // Decode errors and limits.
    size_t len;
    char small[4];
    if (mav_bpe_decode(b, (const int32_t[]){516}, 1, small, 4, &len) != MAV_ERR_ARG) fail_msg("id 516 decoded");
    if (mav_bpe_decode(b, (const int32_t[]){513, 513}, 2, small, 4, &len) != MAV_ERR_ARG || len != 7)
        fail_msg("decode into a short buffer: len %zu", len);
    mav_bpe_free(b);
}

// CLIP's cleanup (values from Python: unicodedata.normalize, html.unescape, regex, str.lower).
static void test_cleanup(void **state) {
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        {"e\xcc\x81", "\xc3\xa9"},                             // NFC: e + U+0301 -> é
        {"\xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8", "\xea\xb0\x81"},  // Hangul L V T -> 각
        {"\xe2\x84\xab", "\xc3\xa5"},                          // U+212B ANGSTROM (singleton) -> å
        {"&amp;amp;", "&"},                                    // unescaped twice
        {"&lt", "<"},                                          // no ';' needed for legacy names
        {"&#x1F600;", "\xf0\x9f\x98\x80"},
        {"&#X41&#66;", "ab"},
        {"&ampfoo", "&foo"},                                   // longest-prefix rule
        {"&notit;", "\xc2\xac" "it;"},
        {"&#0;", "\xef\xbf\xbd"},
        {"&#128;", "\xe2\x82\xac"},                           // cp1252 remapping
        {"a&#1;b", "ab"},                                      // dropped code point
        {"&#xD800;&#99999999999;", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"& &# &#x &;", "& &# &#x &;"},
        {" a \xe3\x80\x80\t b \x1c", "a b"},                   // U+3000 collapses, \x1c strips
        {"a\x1c" "b", "a\x1c" "b"},                            // \x1c is not regex \s
        {"\xce\x91\xce\xa3.", "\xce\xb1\xcf\x82."},            // ΑΣ. -> ας. (final sigma)
        {"\xce\x91\xce\xa3\xcc\x81\xce\x92 x", "\xce\xb1\xcf\x83\xcc\x81\xce\xb2 x"},  // medial
        {"\xc4\xb0", "i\xcc\x87"},                             // İ -> i + U+0307
        {"\xe1\xba\x9e", "\xc3\x9f"},                          // ẞ -> ß
        {"\xd0\x9f\xd1\x80\xd0\x98\xd0\x92\xd0\x95\xd0\xa2", "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82"},
        {"  A  photo\n\nOF\ta CAT  ", "a photo of a cat"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *got = mav_bpe_clean_text(cases[i].in);
        if (strcmp(got, cases[i].want) != 0) fail_msg("cleanup case %zu (\"%s\"): got \"%s\", want \"%s\"", i, cases[i].in, got, cases[i].want);
        free(got);
    }
}

// Merges-file errors name the file and the line.
static void test_load_errors(void **state) {
    (void)state;
    static const struct { const char *name, *data, *says; mav_status st; } cases[] = {
        {"empty.txt", "", "empty file", MAV_ERR_FORMAT},
        {"three.txt", "#version: 0.2\ni n\nt h e\n", "three.txt:3: expected a merge", MAV_ERR_FORMAT},
        {"one.txt", "#version: 0.2\nin\n", "one.txt:2: expected a merge", MAV_ERR_FORMAT},
        {"blank.txt", "#version: 0.2\ni n\n\nt h\n", "blank.txt:3: expected a merge", MAV_ERR_FORMAT},
        {"unknown.txt", "#version: 0.2\ni n\nin xyz\n", "unknown.txt:3: token \"xyz\" is not in the vocabulary", MAV_ERR_FORMAT},
        {"gz.txt", "\x1f\x8b\x08\x00garbage", "gz.txt: corrupt or truncated gzip", MAV_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p = tmp_path(cases[i].name);
        write_file(p, cases[i].data, strlen(cases[i].data));
        mav_bpe *b = (mav_bpe *)1;
        mav_status st = mav_bpe_load(&b, p);
        unlink(p);
        if (st != cases[i].st || b != NULL) fail_msg("%s: status %d (want %d)", cases[i].name, st, cases[i].st);
        if (!strstr(mav_last_error(), cases[i].says)) fail_msg("%s: message \"%s\" lacks \"%s\"", cases[i].name, mav_last_error(), cases[i].says);
    }
    mav_bpe *b;
    const char *missing = tmp_path("does-not-exist.txt");
    if (mav_bpe_load(&b, missing) != MAV_ERR_IO || !strstr(mav_last_error(), missing))
        fail_msg("missing file: \"%s\"", mav_last_error());
    // A header alone is a valid, merge-less vocabulary.
    if (mav_bpe_load_text(&b, "#version: 0.2\n", 14, "hdr") != MAV_OK || mav_bpe_vocab_size(b) != 514)
        fail_msg("header-only file: %s", mav_last_error());
    encode_expect(b, "ab", (const int32_t[]){512, 64, 321, 513}, 4);
    mav_bpe_free(b);
}

// ---- training ----

static const char k_corpus[] =
    "A photo of a cat sitting on a mat.\n"
    "A photo of a dog running on the beach\n"
    "a cat and a dog, sitting together\r\n"
    "\n"
    "Photo: the cat's hat &amp; the dog's bone\n"
    "   sunset over the sea; a photo  \n"
    "Caf\xc3\xa9 au lait \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 <|endoftext|> 42\n";

// Two runs give identical files, N merges when available, and the result tokenises its own
// corpus into fewer tokens than bytes, decoding back to the cleaned captions.
static void test_train(void **state) {
    (void)state;
    const char *cap = tmp_path("corpus.txt"), *o1 = tmp_path("m1.txt"), *o2 = tmp_path("m2.txt");
    write_file(cap, k_corpus, strlen(k_corpus));
    int l1 = 0, l2 = 0;
    if (mav_bpe_train_file(cap, 40, o1, &l1, NULL) != MAV_OK) fail_msg("train: %s", mav_last_error());
    if (mav_bpe_train_file(cap, 40, o2, &l2, NULL) != MAV_OK) fail_msg("train: %s", mav_last_error());
    size_t n1, n2;
    char *t1 = read_all(o1, &n1), *t2 = read_all(o2, &n2);
    if (l1 != 40 || l2 != 40) fail_msg("learned %d and %d merges, want 40", l1, l2);
    if (n1 != n2 || memcmp(t1, t2, n1) != 0) fail_msg("two training runs wrote different files");
    if (strncmp(t1, "#version: 0.2\n", 14) != 0) fail_msg("header line: %.20s", t1);
    int lines = 0;
    for (size_t i = 0; i < n1; i++) lines += t1[i] == '\n';
    if (lines != 41) fail_msg("file has %d lines, want header + 40", lines);

    mav_bpe *b;
    if (mav_bpe_load(&b, o1) != MAV_OK) fail_msg("loading the learned file: %s", mav_last_error());
    if (mav_bpe_vocab_size(b) != 514 + 40) fail_msg("vocab %d", mav_bpe_vocab_size(b));
    long tokens = 0, bytes = 0;
    char line[512];
    for (const char *p = k_corpus; *p;) {
        const char *e = strchr(p, '\n');
        size_t k = (size_t)(e - p);
        memcpy(line, p, k);
        line[k] = 0;
        p = e + 1;
        int32_t ids[512];
        int n = 0;
        if (mav_bpe_encode(b, line, ids, 512, &n) != MAV_OK) fail_msg("%s", mav_last_error());
        tokens += n - 2;
        bytes += (long)k;
        char *dec = decode_all(b, ids, n), *clean = mav_bpe_clean_text(line);
        char *d0 = no_spaces(dec), *c0 = no_spaces(clean);
        // <|endoftext|> is a special id: decoding stops there, so compare up to it.
        char *cut = strstr(c0, "<|endoftext|>");
        if (cut) *cut = 0;
        if (strcmp(d0, c0) != 0) fail_msg("round trip of \"%s\": \"%s\" vs cleaned \"%s\"", line, dec, clean);
        free(dec); free(clean); free(d0); free(c0);
    }
    if (tokens >= bytes) fail_msg("learned merges give %ld tokens for %ld bytes", tokens, bytes);
    mav_bpe_free(b);

    // Far more merges than pairs: stops early (every word becomes one token) and says so.
    char *text;
    size_t tl;
    int learned = 0;
    if (mav_bpe_train(k_corpus, strlen(k_corpus), 5000, &text, &tl, &learned, NULL) != MAV_OK) fail_msg("%s", mav_last_error());
    if (learned <= 40 || learned >= 5000) fail_msg("learned %d of 5000 merges", learned);
    if (mav_bpe_load_text(&b, text, tl, "all") != MAV_OK) fail_msg("%s", mav_last_error());
    int32_t ids[8];
    int n = 0;
    if (mav_bpe_encode(b, "Sitting TOGETHER", ids, 8, &n) != MAV_OK || n != 4 ||
        strcmp(mav_bpe_token(b, ids[1]), "sitting</w>") != 0 || strcmp(mav_bpe_token(b, ids[2]), "together</w>") != 0)
        fail_msg("after all merges, corpus words should be single tokens (got %d ids)", n);
    mav_bpe_free(b);
    free(text);
    free(t1); free(t2);
    unlink(cap); unlink(o1); unlink(o2);
}

// Ties go to the smaller (left, right) pair in written form.
static void test_train_ties(void **state) {
    (void)state;
    // "cd" and "ab" occur equally often: (a, b</w>) wins over (c, d</w>) because "a" < "c".
    const char corpus[] = "cd ab\nab cd\n";
    char *text;
    size_t tl;
    int learned;
    if (mav_bpe_train(corpus, strlen(corpus), 1, &text, &tl, &learned, NULL) != MAV_OK) fail_msg("%s", mav_last_error());
    if (learned != 1 || strcmp(text, "#version: 0.2\na b</w>\n") != 0) fail_msg("tie broken wrongly: \"%s\"", text);
    free(text);
    if (mav_bpe_train(corpus, strlen(corpus), -1, &text, &tl, &learned, NULL) != MAV_ERR_ARG) fail_msg("-1 merges accepted");
}

// ---- the CLI ----

static void test_cli(void **state) {
    (void)state;
    const char *merges = tmp_path("cli_merges.txt"), *corpus = tmp_path("cli_corpus.txt"), *learned = tmp_path("cli_learned.txt");
    write_file(merges, k_tiny_merges, strlen(k_tiny_merges));
    write_file(corpus, k_corpus, strlen(k_corpus));
    char args[3 * PATH_MAX], out[8192];
    static const struct { const char *args, *says; } bad[] = {
        {"tokenize", "expects the TEXT"},
        {"tokenize cat", "needs --merges"},
        {"tokenize --nosuch cat", "unknown option \"--nosuch\""},
        {"tokenize --context 1 --merges x cat", "--context must be in"},
        {"tokenize --context abc cat", "--context expects an integer"},
        {"tokenize -x cat", "unknown option \"-x\""},
        {"tokenizer", "expects a subcommand"},
        {"tokenizer nosuch", "unknown subcommand \"nosuch\""},
        {"tokenizer train --merges 5 -o x", "needs --captions"},
        {"tokenizer train --captions x -o y", "needs --merges"},
        {"tokenizer train --captions x --merges 5", "needs -o FILE"},
        {"tokenizer train --captions x --merges 99999 -o y", "--merges must be in"},
        {"tokenizer train --bogus", "unknown option \"--bogus\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = tu_run_mav_buf(bad[i].args, 1, out, sizeof out);
        if (rc != 2) fail_msg("`mav %s` exited %d, want 2:\n%s", bad[i].args, rc, out);
        if (!strstr(out, bad[i].says)) fail_msg("`mav %s`: message lacks \"%s\":\n%s", bad[i].args, bad[i].says, out);
    }
    snprintf(args, sizeof args, "tokenize --merges '%s' Cat CAT", merges);
    if (tu_run_mav_buf(args, 1, out, sizeof out) != 0 || strcmp(out, "[514, 513, 513, 515]\n") != 0) fail_msg("mav tokenize: %s", out);
    snprintf(args, sizeof args, "tokenize --merges '%s' --context 5 -- cat", merges);
    if (tu_run_mav_buf(args, 1, out, sizeof out) != 0 || strcmp(out, "[514, 513, 515, 0, 0]\n") != 0) fail_msg("--context: %s", out);
    snprintf(args, sizeof args, "tokenize --merges '%s.missing' cat", merges);
    if (tu_run_mav_buf(args, 1, out, sizeof out) != 1 || !strstr(out, "cannot open")) fail_msg("missing merges: %s", out);
    snprintf(args, sizeof args, "tokenizer train --captions '%s' --merges 30 -o '%s'", corpus, learned);
    if (tu_run_mav_buf(args, 1, out, sizeof out) != 0 || !strstr(out, "wrote 30 merges")) fail_msg("mav tokenizer train: %s", out);
    mav_bpe *b;
    if (mav_bpe_load(&b, learned) != MAV_OK || mav_bpe_n_merges(b) != 30) fail_msg("learned file: %s", mav_last_error());
    mav_bpe_free(b);
    snprintf(args, sizeof args, "tokenizer train --captions '%s' --merges 20000 -o '%s'", corpus, learned);
    if (tu_run_mav_buf(args, 1, out, sizeof out) != 0 || !strstr(out, "ran out of pairs")) fail_msg("early stop: %s", out);
    const char *clip = clip_data("bpe_simple_vocab_16e6.txt.gz");
    if (clip) {
        snprintf(args, sizeof args, "tokenize --merges '%s' 'A photo of a cat'", clip);
        if (tu_run_mav_buf(args, 1, out, sizeof out) != 0 || strcmp(out, "[49406, 320, 1125, 539, 320, 2368, 49407]\n") != 0)
            fail_msg("mav tokenize with CLIP's merges: %s", out);
    }
    unlink(merges); unlink(corpus); unlink(learned);
}

MAV_TEST_GROUP(bpe, cmocka_unit_test(test_clip_cases), cmocka_unit_test(test_clip_edge_texts),
               cmocka_unit_test(test_clip_long_text), cmocka_unit_test(test_tiny_vocabulary),
               cmocka_unit_test(test_cleanup), cmocka_unit_test(test_load_errors), cmocka_unit_test(test_train),
               cmocka_unit_test(test_train_ties), cmocka_unit_test(test_cli))
