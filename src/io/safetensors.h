// safetensors.h — checkpoint and tensor-file I/O (SPEC §7), the format of HuggingFace's
// `safetensors`: u64 little-endian header length N, N bytes of JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}, then the
// byte buffer. Files are read through mmap; every structural property is validated before
// any tensor is exposed (header length, JSON, dtypes, shapes, byte sizes, offsets inside
// the buffer, ordered, non-overlapping and covering it without holes, as the format
// requires). Every error names the file and, where it applies, the tensor.
// Writes are atomic: temp file in the same folder, fsync, rename, fsync of the folder.
#ifndef MAV_SAFETENSORS_H
#define MAV_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/dtype.h"
#include "core/error.h"
#include "core/params.h"

#define MAV_ST_MAX_HEADER (100u << 20)  // 100 MB, as the reference implementation

typedef struct {
    char *name;
    mav_dtype dtype;
    int ndim;
    int64_t shape[MAV_MAX_DIMS];
    size_t numel;
    size_t nbytes;
    const void *data;  // inside the mapping; may be unaligned
} mav_st_tensor;

typedef struct {
    char *path;
    void *map;
    size_t map_size;
    int ntensors;
    mav_st_tensor *tensors;  // in header order
    int nmeta;
    char **meta_keys, **meta_vals;
} mav_st_file;

mav_status mav_st_open(mav_st_file *f, const char *path);
void mav_st_close(mav_st_file *f);
const mav_st_tensor *mav_st_find(const mav_st_file *f, const char *name);
const char *mav_st_meta(const mav_st_file *f, const char *key);  // NULL if absent
// Convert a tensor of any numeric dtype to f32 (dst holds t->numel floats).
void mav_st_to_f32(const mav_st_tensor *t, float *dst);
// Find `name`, check its shape equals `shape` (ndim dims), convert into dst. Errors name both.
mav_status mav_st_read_f32(const mav_st_file *f, const char *name, int ndim, const int64_t *shape, float *dst);
// "[2, 3, 4]" into buf.
const char *mav_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

typedef struct {
    char *name;
    mav_dtype dtype;
    int ndim;
    int64_t shape[MAV_MAX_DIMS];
    const void *src;       // caller's data; kept by pointer until save
    mav_dtype src_dtype;   // F32 source converted to `dtype` on save, or raw bytes of `dtype`
} mav_st_entry;

typedef struct {
    mav_st_entry *entries;
    int count, cap;
    char **meta_keys, **meta_vals;
    int nmeta;
} mav_st_writer;

void mav_st_writer_init(mav_st_writer *w);
void mav_st_writer_free(mav_st_writer *w);
void mav_st_writer_meta(mav_st_writer *w, const char *key, const char *value);
// f32 data stored as `store` (F32, F16, BF16 or F64).
void mav_st_writer_add_f32(mav_st_writer *w, const char *name, int ndim, const int64_t *shape, const float *data,
                           mav_dtype store);
// Raw data already in `dtype` (e.g. I32 token ids, I64 scalars).
void mav_st_writer_add_raw(mav_st_writer *w, const char *name, mav_dtype dtype, int ndim, const int64_t *shape,
                           const void *data);
mav_status mav_st_writer_save(const mav_st_writer *w, const char *path);

// Atomic file write helpers, shared with every other writer of files that matter.
typedef struct {
    char *path, *tmp_path;
    int fd;
    int failed;
} mav_atomic_file;
mav_status mav_atomic_open(mav_atomic_file *a, const char *path);
mav_status mav_atomic_write(mav_atomic_file *a, const void *data, size_t n);
mav_status mav_atomic_commit(mav_atomic_file *a);  // fsync, close, rename, fsync folder
void mav_atomic_abort(mav_atomic_file *a);          // close and remove the temp file

#endif
