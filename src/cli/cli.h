// cli.h — the `mav` command line: a table of git-style subcommands, each with a table of
// options from which parsing and `mav help CMD` are both generated.
//
// Exit codes: 0 success, 1 the work failed (message from mav_last_error), 2 usage error.
#ifndef MAV_CLI_H
#define MAV_CLI_H

#include <stdio.h>

typedef enum { OPT_INT, OPT_FLOAT, OPT_STRING, OPT_FLAG, OPT_TYPE_COUNT } cli_opt_type;

typedef struct {
    const char *name;     // long name without dashes: "threads"
    cli_opt_type type;
    void *dst;            // int*, double*, const char**, int* (flag)
    const char *metavar;  // "N", "FILE" (NULL for flags)
    const char *help;
    double min, max;      // accepted range for OPT_INT / OPT_FLOAT (ignored when min == max)
} cli_opt;

#define CLI_OPT_END {0}

typedef struct {
    const char *name;
    const char *summary;      // one line for `mav help`
    const char *usage;        // "mav bench ops [options]"
    const char *description;  // paragraph(s) for `mav help CMD`
    int (*run)(int argc, char **argv);  // argv[0] is the command name
} cli_command;

// Parse argv[first..] against opts (plus the common --threads); positional arguments are
// collected into pos (up to max_pos). Returns 0, or 2 after printing a usage error.
int cli_parse(const cli_command *cmd, const cli_opt *opts, int argc, char **argv, int first, char **pos,
              int max_pos, int *npos);
void cli_print_help(FILE *out, const cli_command *cmd, const cli_opt *opts);
int cli_usage_error(const cli_command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int cli_fail(const char *what);  // prints "mav: <what>: <last error>" and returns 1

const cli_command *cli_find(const char *name);
const cli_opt *cli_options_of(const char *name);  // option table of a command (for help)

// Commands (one file each: cmd_<name>.c).
int cmd_info(int argc, char **argv);
extern const cli_opt info_opts[];
int cmd_forward(int argc, char **argv);
extern const cli_opt forward_opts[];
int cmd_bench(int argc, char **argv);  // cmd_bench.c
extern const char cmd_bench_help[];    // its description (lists the benchmarks)
const cli_opt *cmd_bench_options(void);
int cmd_tokenize(int argc, char **argv);   // cmd_tokenize.c
int cmd_tokenizer(int argc, char **argv);  // cmd_tokenize.c (`mav tokenizer train`)
extern const char cmd_tokenize_help[], cmd_tokenizer_help[];
extern const cli_opt tokenize_opts[], tokenizer_opts[];
int cmd_media(int argc, char **argv);  // cmd_media.c (`mav media info|convert`)
extern const char cmd_media_help[];
extern const cli_opt media_opts[];
int cmd_data(int argc, char **argv);  // cmd_data.c (`mav data fluent-emoji`, `mav data check`)
extern const char cmd_data_help[];
extern const cli_opt data_opts[];
int cmd_train(int argc, char **argv);  // cmd_train.c (`mav train clip|prior`)
extern const char cmd_train_help[];
extern const cli_opt train_opts[];

#endif
