// fuzz_common.c — helpers shared by the libFuzzer targets (see fuzz_common.h).
#include "fuzz_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

char *fz_cstr(const uint8_t *data, size_t n) {
    char *s = malloc(n + 1);
    if (!s) abort();
    if (n) memcpy(s, data, n);
    s[n] = 0;
    return s;
}

static char g_dir[256];

static void remove_tmpdir(void) {
    // Only files written by fz_write_file live here (one level, no sub-folders).
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", g_dir);
}

const char *fz_tmpdir(void) {
    if (!g_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(g_dir, sizeof g_dir, "%s/mav-fuzz-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(g_dir)) { perror("fuzz: mkdtemp"); abort(); }
        atexit(remove_tmpdir);
    }
    return g_dir;
}

const char *fz_write_file(const char *name, const uint8_t *data, size_t n) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", fz_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f) { perror("fuzz: fopen"); abort(); }
    if (n && fwrite(data, 1, n, f) != n) { perror("fuzz: fwrite"); abort(); }
    if (fclose(f) != 0) { perror("fuzz: fclose"); abort(); }
    return path;
}
