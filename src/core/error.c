#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char g_msg[1024];

const char *mav_status_name(mav_status s) {
    static const char *names[MAV_ERR_STATUS_COUNT] = {
        "ok", "bad argument", "i/o error", "format error", "shape error", "out of memory"};
    return (s >= 0 && s < MAV_ERR_STATUS_COUNT) ? names[s] : "unknown error";
}

mav_status mav_fail(mav_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return s;
}

void mav_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    // Truncation of an over-long message is fine; copy piecewise to say so to the compiler.
    size_t n = strlen(prefix);
    if (n > sizeof g_msg - 3) n = sizeof g_msg - 3;
    memcpy(g_msg, prefix, n);
    g_msg[n++] = ':';
    g_msg[n++] = ' ';
    size_t m = strlen(old);
    if (m > sizeof g_msg - 1 - n) m = sizeof g_msg - 1 - n;
    memcpy(g_msg + n, old, m);
    g_msg[n + m] = 0;
}

const char *mav_last_error(void) { return g_msg; }
void mav_clear_error(void) { g_msg[0] = 0; }

void mav_assert_fail(const char *expr, const char *file, int line) {
    fprintf(stderr, "mav: internal error: assertion `%s` failed at %s:%d\n", expr, file, line);
    abort();
}
