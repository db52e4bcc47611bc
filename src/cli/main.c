// main.c — `mav`: dispatch to subcommands, help, version, shared option parsing.
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/error.h"
#include "core/threads.h"

static int g_threads = 0;

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const cli_command k_commands[] = {
    {"help", "show commands, or one command's options", "mav help [COMMAND]",
     "Without an argument, lists the commands. With one, prints its usage and options.", cmd_help},
    {"version", "print the version", "mav version", "Prints the version (same as mav --version).", cmd_version},
    {"forward", "run one network on tensors from a file", "mav forward MODEL.safetensors INPUTS.safetensors OUT.safetensors",
     "Runs the network in MODEL (its mav.kind says which) on the named inputs in INPUTS and writes\n"
     "its outputs to OUT (SPEC §9). unet: inputs x [B,C,F,H,W], t [B], and as the config needs\n"
     "e [B,emb_dim] (absent = zeros), fps [B], aug [B]; output eps [B,out_ch,F,H,W]. Any float\n"
     "dtype is accepted (F32/F16/BF16/F64); the output is F32. clip (also OpenAI-layout files\n"
     "without mav.kind): tokens [B,ctx] (I32/I64) and/or image [B,3,R,R] (normalised) -> text_emb,\n"
     "text_tokens, image_emb.", cmd_forward},
    {"info", "describe a checkpoint or a named config", "mav info FILE | --config NAME [--json]",
     "Prints a checkpoint's kind and config (from its safetensors metadata), its parameter count\n"
     "in total and per module, and the dtypes of its tensors. With --config, the same for a\n"
     "named configuration of SPEC §8 (tiny, bench-decoder, bench-sr, bench-image).", cmd_info},
    {"bench", "measure kernel speed against the machine's FMA peak", "mav bench BENCHMARK [options]", cmd_bench_help,
     cmd_bench},
    {"tokenize", "print the CLIP BPE token ids of a text", "mav tokenize --merges FILE [--context N] TEXT...",
     cmd_tokenize_help, cmd_tokenize},
    {"tokenizer", "learn BPE merges from captions", "mav tokenizer train --captions FILE --merges N -o FILE",
     cmd_tokenizer_help, cmd_tokenizer},
    {"media", "describe or convert images and videos", "mav media info FILE | mav media convert IN OUT [options]",
     cmd_media_help, cmd_media},
    {"data", "build the Fluent Emoji set; check a training dataset", "mav data fluent-emoji --from RAW --out DIR | mav data check PATH",
     cmd_data_help, cmd_data},
    {"train", "train a stage: clip (0) or prior (1a)", "mav train clip|prior --data DIR --out DIR [options]",
     cmd_train_help, cmd_train},
};
#define N_COMMANDS ((int)(sizeof k_commands / sizeof k_commands[0]))

static const cli_opt k_no_opts[] = {CLI_OPT_END};
static const cli_opt k_common_opts[] = {
    {"threads", OPT_INT, &g_threads, "N", "worker threads (default: all cores)", 0, 4096},
    CLI_OPT_END};

const cli_command *cli_find(const char *name) {
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(k_commands[i].name, name) == 0) return &k_commands[i];
    return NULL;
}

const cli_opt *cli_options_of(const char *name) {
    if (strcmp(name, "info") == 0) return info_opts;
    if (strcmp(name, "forward") == 0) return forward_opts;
    if (strcmp(name, "bench") == 0) return cmd_bench_options();
    if (strcmp(name, "tokenize") == 0) return tokenize_opts;
    if (strcmp(name, "tokenizer") == 0) return tokenizer_opts;
    if (strcmp(name, "media") == 0) return media_opts;
    if (strcmp(name, "data") == 0) return data_opts;
    if (strcmp(name, "train") == 0) return train_opts;
    return k_no_opts;
}

static void print_opts(FILE *out, const cli_opt *opts) {
    for (const cli_opt *o = opts; o && o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(out, "  %-24s %s\n", left, o->help);
    }
}

void cli_print_help(FILE *out, const cli_command *cmd, const cli_opt *opts) {
    fprintf(out, "usage: %s\n\n%s\n\noptions:\n", cmd->usage, cmd->description);
    print_opts(out, opts);
    print_opts(out, k_common_opts);
}

int cli_usage_error(const cli_command *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "mav %s: ", cmd ? cmd->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see: mav help %s)\n", cmd ? cmd->name : "");
    return 2;
}

int cli_fail(const char *what) {
    fprintf(stderr, "mav: %s: %s\n", what, mav_last_error());
    return 1;
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t len) {
    for (const cli_opt *o = opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0) return o;
    return NULL;
}

static int set_opt(const cli_command *cmd, const cli_opt *o, const char *val) {
    char *end = NULL;
    switch (o->type) {
    case OPT_INT: {
        long v = strtol(val, &end, 10);
        if (!*val || *end) return cli_usage_error(cmd, "--%s expects an integer, got \"%s\"", o->name, val);
        if (o->min != o->max && (v < o->min || v > o->max))
            return cli_usage_error(cmd, "--%s must be in [%g, %g], got %ld", o->name, o->min, o->max, v);
        *(int *)o->dst = (int)v;
        return 0;
    }
    case OPT_FLOAT: {
        double v = strtod(val, &end);
        if (!*val || *end || v != v) return cli_usage_error(cmd, "--%s expects a number, got \"%s\"", o->name, val);
        if (o->min != o->max && (v < o->min || v > o->max))
            return cli_usage_error(cmd, "--%s must be in [%g, %g], got %g", o->name, o->min, o->max, v);
        *(double *)o->dst = v;
        return 0;
    }
    case OPT_STRING: *(const char **)o->dst = val; return 0;
    default: return cli_usage_error(cmd, "--%s takes no value", o->name);
    }
}

int cli_parse(const cli_command *cmd, const cli_opt *opts, int argc, char **argv, int first, char **pos,
              int max_pos, int *npos) {
    *npos = 0;
    int only_pos = 0;
    for (int i = first; i < argc; i++) {
        char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == 0) {
            if (*npos >= max_pos) return cli_usage_error(cmd, "unexpected argument \"%s\"", a);
            pos[(*npos)++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) { only_pos = 1; continue; }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { cli_print_help(stdout, cmd, opts); exit(0); }
        if (a[1] != '-') return cli_usage_error(cmd, "unknown option \"%s\"", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const cli_opt *o = find_opt(opts, name, len);
        if (!o) o = find_opt(k_common_opts, name, len);
        if (!o) return cli_usage_error(cmd, "unknown option \"--%.*s\"", (int)len, name);
        if (o->type == OPT_FLAG) {
            if (eq) return cli_usage_error(cmd, "--%s takes no value", o->name);
            *(int *)o->dst = 1;
            continue;
        }
        const char *val = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!val) return cli_usage_error(cmd, "--%s needs a value (%s)", o->name, o->metavar ? o->metavar : "");
        int rc = set_opt(cmd, o, val);
        if (rc) return rc;
    }
    mav_threads_set(g_threads);
    return 0;
}

static int cmd_version(int argc, char **argv) {
    char *pos[1];
    int npos, rc = argc ? cli_parse(cli_find("version"), k_no_opts, argc, argv, 1, pos, 0, &npos) : 0;
    if (rc) return rc;
    printf("mav %s\n", MAV_VERSION);
    return 0;
}

static void print_commands(FILE *out) {
    fprintf(out, "mav %s — Make-A-Video in C: text-to-video diffusion without text-video data.\n\n"
                 "usage: mav [--version] [--help] COMMAND [options]\n\ncommands:\n", MAV_VERSION);
    for (int i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-10s %s\n", k_commands[i].name, k_commands[i].summary);
    fprintf(out, "\n'mav help COMMAND' shows a command's options. Every command accepts --threads N.\n");
}

static int cmd_help(int argc, char **argv) {
    if (argc < 2) { print_commands(stdout); return 0; }
    if (argc > 2) return cli_usage_error(cli_find("help"), "expects at most one command name");
    const cli_command *c = cli_find(argv[1]);
    if (!c) { fprintf(stderr, "mav help: unknown command \"%s\" (see: mav help)\n", argv[1]); return 2; }
    cli_print_help(stdout, c, cli_options_of(c->name));
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { print_commands(stderr); return 2; }
    const char *c = argv[1];
    if (strcmp(c, "--version") == 0 || strcmp(c, "-V") == 0) return cmd_version(0, NULL);
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0) { print_commands(stdout); return 0; }
    const cli_command *cmd = cli_find(c);
    if (!cmd) {
        fprintf(stderr, "mav: unknown command \"%s\" (see: mav help)\n", c);
        return 2;
    }
    return cmd->run(argc - 1, argv + 1);
}
