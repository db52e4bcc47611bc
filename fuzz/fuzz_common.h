// fuzz_common.h — helpers shared by the libFuzzer targets in fuzz/ (docs/FUZZING.md).
#ifndef MAV_FUZZ_COMMON_H
#define MAV_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>

// data[0..n) as a malloc'd NUL-terminated string (caller frees). Embedded NULs stay: the
// parsers see the prefix up to the first one, as they would from a C string.
char *fz_cstr(const uint8_t *data, size_t n);
// A private temp folder for this process (created once, removed at exit).
const char *fz_tmpdir(void);
// Writes data[0..n) to fz_tmpdir()/name (truncating); returns the full path (static buffer,
// valid until the next call). Aborts on an I/O error: that is the harness failing, not mav.
const char *fz_write_file(const char *name, const uint8_t *data, size_t n);

#endif
