// cli_args.c — fuzz target: the `mav` command line. The bytes are split into argv words at
// NUL and newline bytes (at most 16 words). The first byte picks the mode:
//   even: cli_parse alone against the option table of any command (nothing runs);
//   odd:  the real main (src/cli/main.c, built with main renamed to mav_cli_main) for the
//         commands that do no work: help, version, info (--config NAME, or a FILE that cannot
//         exist: the target runs in an empty temp folder and rejects words with '/' or "..").
// Inputs containing -h / --help are skipped: the parser exit()s on them by design.
// stdout/stderr of the CLI go to /dev/null by swapping the stdio streams (ASan's reports
// go to fd 2 directly and stay visible).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "fuzz_common.h"

int mav_cli_main(int argc, char **argv);

#define MAX_WORDS 16
#define MAX_BYTES 4096

static const char *const k_parse_cmds[] = {"help", "version", "forward", "info", "bench",
                                           "tokenize", "tokenizer", "media", "data"};
static FILE *g_null;
// Word storage is static (not freed between inputs): option tables keep pointers to their
// values in globals of the cmd_*.c files, as a one-shot CLI may.
static char g_buf[MAX_BYTES + 1];

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    g_null = fopen("/dev/null", "w");
    if (!g_null || chdir(fz_tmpdir()) != 0) __builtin_trap();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    if (n < 2) return 0;
    int mode = data[0] & 1, pick = data[1];
    data += 2, n -= 2;
    if (n > MAX_BYTES) n = MAX_BYTES;
    memcpy(g_buf, data, n);
    g_buf[n] = 0;
    char *words[MAX_WORDS + 2];
    int nw = 0;
    words[nw++] = "mav";
    for (size_t i = 0; i <= n && nw < MAX_WORDS + 1;) {
        size_t j = i;
        while (j < n && g_buf[j] != 0 && g_buf[j] != '\n') j++;
        g_buf[j] = 0;
        words[nw++] = &g_buf[i];
        i = j + 1;
    }
    words[nw] = NULL;
    for (int i = 1; i < nw; i++) {
        if (strcmp(words[i], "-h") == 0 || strcmp(words[i], "--help") == 0) return 0;
        if (mode && (strchr(words[i], '/') || strstr(words[i], ".."))) return 0;
    }

    FILE *out = stdout, *err = stderr;
    stdout = g_null, stderr = g_null;
    if (!mode) {
        const char *name = k_parse_cmds[pick % (int)(sizeof k_parse_cmds / sizeof k_parse_cmds[0])];
        const cli_command *cmd = cli_find(name);
        if (!cmd) __builtin_trap();
        char *pos[4];
        int npos = 0;
        // argv[0] is the command name, as the commands call it.
        words[0] = (char *)name;
        int rc = cli_parse(cmd, cli_options_of(name), nw, words, 1, pos, 4, &npos);
        if (rc != 0 && rc != 2) __builtin_trap();
        if (npos < 0 || npos > 4) __builtin_trap();
    } else {
        static const char *const k_run[] = {"help", "version", "info", "--version"};
        // words[1] becomes the command, chosen from the safe list.
        char *argv[MAX_WORDS + 3];
        argv[0] = "mav";
        argv[1] = (char *)k_run[pick % 4];
        for (int i = 1; i < nw; i++) argv[i + 1] = words[i];
        argv[nw + 1] = NULL;
        int rc = mav_cli_main(nw + 1, argv);
        if (rc < 0 || rc > 2) __builtin_trap();
    }
    fflush(g_null);
    stdout = out, stderr = err;
    return 0;
}
