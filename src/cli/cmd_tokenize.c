// cmd_tokenize.c — `mav tokenize` (text -> CLIP token ids as JSON) and `mav tokenizer train`
// (learn BPE merges from captions). The tokenizer itself is src/text/bpe.h.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "text/bpe.h"

// ---- mav tokenize ----

static const char *g_tok_merges = NULL;
static int g_tok_context = 0;

const cli_opt tokenize_opts[] = {
    {"merges", OPT_STRING, &g_tok_merges, "FILE", "BPE merges file, gzip or plain (CLIP's bpe_simple_vocab_16e6.txt.gz)", 0, 0},
    {"context", OPT_INT, &g_tok_context, "N", "pad with 0 / truncate to N ids, EOT kept last (CLIP: 77)", 2, 1 << 20},
    CLI_OPT_END};

const char cmd_tokenize_help[] =
    "Prints the token ids of TEXT as a JSON array: <|startoftext|>, the BPE tokens, <|endoftext|>.\n"
    "TEXT goes through CLIP's cleanup first (NFC, HTML unescaping, whitespace collapsing,\n"
    "lower-casing; see docs/TOKENIZER.md). Several TEXT arguments are joined with spaces.\n"
    "--merges is required for now (no bundled model yet).";

// Prints ids as one JSON array line.
static void print_ids(const int32_t *ids, int n) {
    putchar('[');
    for (int i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
    puts("]");
}

int cmd_tokenize(int argc, char **argv) {
    const cli_command *cmd = cli_find("tokenize");
    char *pos[256];
    int npos;
    int rc = cli_parse(cmd, tokenize_opts, argc, argv, 1, pos, 256, &npos);
    if (rc) return rc;
    if (npos == 0) return cli_usage_error(cmd, "expects the TEXT to tokenize");
    if (!g_tok_merges)
        return cli_usage_error(cmd, "needs --merges FILE (no bundled tokenizer yet; CLIP's is bpe_simple_vocab_16e6.txt.gz)");
    size_t len = 1;
    for (int i = 0; i < npos; i++) len += strlen(pos[i]) + 1;
    char *text = malloc(len);
    if (!text) { mav_fail(MAV_ERR_NOMEM, "out of memory"); return cli_fail("tokenize"); }
    text[0] = 0;
    for (int i = 0; i < npos; i++) {
        if (i) strcat(text, " ");
        strcat(text, pos[i]);
    }
    mav_bpe *bpe;
    if (mav_bpe_load(&bpe, g_tok_merges) != MAV_OK) { free(text); return cli_fail("tokenize"); }
    int n = 0;
    int32_t *ids = NULL;
    mav_status st;
    if (g_tok_context) {
        ids = malloc((size_t)g_tok_context * sizeof *ids);
        st = ids ? mav_bpe_encode_context(bpe, text, ids, g_tok_context, NULL) : MAV_ERR_NOMEM;
        n = g_tok_context;
    } else {
        mav_bpe_encode(bpe, text, NULL, 0, &n);  // measures (returns MAV_ERR_ARG for the empty buffer)
        ids = malloc((size_t)n * sizeof *ids);
        st = ids ? mav_bpe_encode(bpe, text, ids, n, &n) : MAV_ERR_NOMEM;
    }
    if (st == MAV_OK) print_ids(ids, n);
    else if (!ids) mav_fail(MAV_ERR_NOMEM, "out of memory");
    free(ids);
    free(text);
    mav_bpe_free(bpe);
    return st == MAV_OK ? 0 : cli_fail("tokenize");
}

// ---- mav tokenizer train ----

static const char *g_tr_captions = NULL, *g_tr_output = NULL;
static int g_tr_merges = -1;

const cli_opt tokenizer_opts[] = {
    {"captions", OPT_STRING, &g_tr_captions, "FILE", "caption corpus, one caption per line (UTF-8, gzip or plain)", 0, 0},
    {"merges", OPT_INT, &g_tr_merges, "N", "number of merges to learn (vocabulary = 514 + N ids)", 0, MAV_BPE_MAX_MERGES},
    {"output", OPT_STRING, &g_tr_output, "FILE", "merges file to write (also -o FILE); written atomically", 0, 0},
    CLI_OPT_END};

const char cmd_tokenizer_help[] =
    "subcommands:\n"
    "  train  learns BPE merges from a caption corpus with CLIP's cleanup and pre-tokenisation:\n"
    "         counts words, then repeatedly merges the most frequent adjacent pair of symbols\n"
    "         (ties: the pair whose left, then right, token is smaller byte-wise). Deterministic.\n"
    "         Writes CLIP's merges-file format (a header line, then one merge per line), which\n"
    "         `mav tokenize --merges` loads. Progress goes to stderr. Stops early, with a message,\n"
    "         when the corpus runs out of pairs.";

static int cmd_tokenizer_train(const cli_command *cmd, int argc, char **argv) {
    // The shared parser knows only long options: spell -o as --output.
    char **av = malloc(((size_t)argc + 1) * sizeof *av);
    if (!av) { mav_fail(MAV_ERR_NOMEM, "out of memory"); return cli_fail("tokenizer train"); }
    static char output_flag[] = "--output";
    for (int i = 0; i < argc; i++) av[i] = strcmp(argv[i], "-o") == 0 ? output_flag : argv[i];
    av[argc] = NULL;
    char *pos[1];
    int npos;
    int rc = cli_parse(cmd, tokenizer_opts, argc, av, 1, pos, 0, &npos);
    free(av);
    if (rc) return rc;
    if (!g_tr_captions) return cli_usage_error(cmd, "train needs --captions FILE");
    if (g_tr_merges < 0) return cli_usage_error(cmd, "train needs --merges N");
    if (!g_tr_output) return cli_usage_error(cmd, "train needs -o FILE (the merges file to write)");
    int learned = 0;
    if (mav_bpe_train_file(g_tr_captions, g_tr_merges, g_tr_output, &learned, stderr) != MAV_OK)
        return cli_fail("tokenizer train");
    fprintf(stderr, "tokenizer train: wrote %d merges to %s (vocabulary %d ids)\n", learned, g_tr_output, 514 + learned);
    return 0;
}

int cmd_tokenizer(int argc, char **argv) {
    const cli_command *cmd = cli_find("tokenizer");
    if (argc < 2) return cli_usage_error(cmd, "expects a subcommand (available: train)");
    if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        cli_print_help(stdout, cmd, tokenizer_opts);
        return 0;
    }
    if (strcmp(argv[1], "train") == 0) return cmd_tokenizer_train(cmd, argc - 1, argv + 1);
    return cli_usage_error(cmd, "unknown subcommand \"%s\" (available: train)", argv[1]);
}
