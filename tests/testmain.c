// mav_tests [GROUP_GLOB [TEST_GLOB]] | --list — runs registered groups (see testutil.h).
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/threads.h"
#include "testutil.h"

typedef struct { const char *name; const struct CMUnitTest *tests; size_t count; } group;
static group g_groups[256];
static int g_ngroups;

void tu_register(const char *name, const struct CMUnitTest *tests, size_t count) {
    if (g_ngroups == (int)(sizeof g_groups / sizeof g_groups[0])) { fprintf(stderr, "too many test groups\n"); exit(1); }
    g_groups[g_ngroups++] = (group){name, tests, count};
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--list") == 0) {
        for (int i = 0; i < g_ngroups; i++) {
            printf("%s\n", g_groups[i].name);
            for (size_t j = 0; j < g_groups[i].count; j++) printf("  %s\n", g_groups[i].tests[j].name);
        }
        return 0;
    }
    const char *gpat = argc > 1 ? argv[1] : "*";
    if (argc > 2) cmocka_set_test_filter(argv[2]);
    const char *th = getenv("MAV_TEST_THREADS");
    mav_threads_set(th ? atoi(th) : 0);
    int failed = 0, ran = 0;
    for (int i = 0; i < g_ngroups; i++) {
        if (fnmatch(gpat, g_groups[i].name, 0) != 0) continue;
        ran++;
        failed += _cmocka_run_group_tests(g_groups[i].name, g_groups[i].tests, g_groups[i].count, NULL, NULL);
    }
    if (!ran) { fprintf(stderr, "mav_tests: no test group matches \"%s\" (try --list)\n", gpat); return 2; }
    return failed ? 1 : 0;
}
