// error.h — mav's error tiers (STYLE.md "what this suggests" §7).
//
// 1. Invariants that only a bug can break: MAV_ASSERT, always on (never compiled out,
//    never wraps side effects), prints file:line and aborts.
// 2. Anything a user or a file can get wrong: library functions return a mav_status and
//    leave a message naming the file / tensor / line in a thread-local buffer
//    (mav_last_error). Only the CLI turns that into an exit code.
#ifndef MAV_ERROR_H
#define MAV_ERROR_H

typedef enum {
    MAV_OK = 0,
    MAV_ERR_ARG,     // bad argument or option value
    MAV_ERR_IO,      // open/read/write/rename failed (errno text included)
    MAV_ERR_FORMAT,  // malformed file contents
    MAV_ERR_SHAPE,   // tensor missing, unexpected or mis-shaped
    MAV_ERR_NOMEM,   // allocation refused
    MAV_ERR_STATUS_COUNT
} mav_status;

const char *mav_status_name(mav_status s);

// Record a formatted message for the current thread and return `s` (for `return mav_fail(...)`).
mav_status mav_fail(mav_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// Prefix the current message: "context: previous message" (for adding the file name upstream).
void mav_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
const char *mav_last_error(void);
void mav_clear_error(void);

void mav_assert_fail(const char *expr, const char *file, int line) __attribute__((noreturn));
#define MAV_ASSERT(cond) \
    do { if (!(cond)) mav_assert_fail(#cond, __FILE__, __LINE__); } while (0)

#endif
