// safetensors.h: read (memory-mapped, validated) and write (atomic) safetensors files.
//
// File layout (https://huggingface.co/docs/safetensors): 8-byte little-endian header length N, N bytes
// of JSON header {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}},
// then the data buffer; offsets are relative to the buffer start (byte 8 + N).
//
// Reading: st_open takes one .safetensors file or a sharded model.safetensors.index.json; st_open_dir
// picks whichever a Hugging Face folder has. Every file is mapped read-only (no copies) and checked
// before anything is trusted: header length against the file size, the JSON, each entry's dtype, shape,
// offsets in range, byte range == numel x dtype size, no overlapping ranges, no duplicate names (also
// across shards), every index weight_map entry pointing to an existing shard that holds that tensor.
// Tensors of other dtypes (I64, F64, F8_*, ...) are kept and validated but refused by st_get, with
// their name, so files with unused extras still load.
//
// Writing: st_write lays out the given tensors (largest dtype first so every tensor is aligned to
// its element size), pads the header with spaces to a multiple of 8, and writes through a temp file,
// fsync, rename, fsync of the folder: the path holds either the old file or the complete new one.
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"
#include "common/tensor.h"

#define ST_MAX_DIMS 8  // entries with more dimensions are refused at open

typedef struct {
    char *name;
    char dtype_name[12];    // as written in the header, e.g. "BF16", "I64"
    int supported;          // dtype is F32 / F16 / BF16
    SeerDType dtype;        // valid when supported
    int ndim;               // 0 = scalar (one element)
    int64_t shape[ST_MAX_DIMS];
    const uint8_t *data;    // into the file's memory map
    uint64_t nbytes;
    int file;               // index into SafetensorsSet.files
} StEntry;

typedef struct {
    char *path;
    const uint8_t *map;  // [size] read-only mapping of the whole file
    size_t size;
} StFile;

struct SafetensorsSet {
    char *path;       // what was opened: the .safetensors file or the index .json
    StFile *files;    // [n_files] one per shard
    int n_files;
    StEntry *entries; // [n_entries] sorted by name
    int n_entries;
};
typedef struct SafetensorsSet SafetensorsSet;

// Opens `path`: a name ending in ".json" is read as a sharded index (shards resolved beside it),
// anything else as one safetensors file. On success *out owns the maps (free with st_close).
// Returns -1 with err naming the offending file (and tensor or offset) on any problem listed above;
// *out is then NULL and nothing stays mapped. Empty files and zero-tensor files: a zero-byte file is
// "truncated"; a valid header with no tensors opens with n_entries 0.
int st_open(SafetensorsSet **out, const char *path, SeerErr *err);

// Opens DIR/model.safetensors.index.json when present, else DIR/model.safetensors; -1 naming the
// folder when it has neither.
int st_open_dir(SafetensorsSet **out, const char *dir, SeerErr *err);

// Unmaps everything; NULL is a no-op. Tensor views obtained from the set die with it.
void st_close(SafetensorsSet *s);

// The entry named `name`, or NULL when absent.
const StEntry *st_find(const SafetensorsSet *s, const char *name);

// The file path holding entry e (for messages).
const char *st_entry_path(const SafetensorsSet *s, const StEntry *e);

// Fills *t with a view of tensor `name`. -1 with err when absent (naming s->path), when its dtype is
// not F32/F16/BF16, or when it has 0 or more than 4 dimensions (naming the shard and the tensor).
int st_get(const SafetensorsSet *s, const char *name, Tensor *t, SeerErr *err);

// One tensor to write: name (unique, non-empty, not "__metadata__") and a view with ndim 1..4
// (data may be NULL only when numel is 0).
typedef struct {
    const char *name;
    Tensor t;
} StTensor;

// Writes n tensors to `path` atomically (temp file beside it, fsync, rename, fsync folder).
// metadata: NULL or a NULL-terminated list of key, value, key, value, ... strings for "__metadata__".
// Returns -1 with err (naming path) on invalid input or any I/O failure; the temp file is removed
// and `path` is left untouched then. n == 0 writes a valid file with no tensors.
int st_write(const char *path, const StTensor *tensors, int n, const char *const *metadata,
             SeerErr *err);

// Writes a Hugging Face shard index atomically: {"metadata": {"total_size": total_size},
// "weight_map": {names[i]: shards[i]}}. shards[i] are file names in the index's folder.
int st_write_index(const char *path, const char *const *names, const char *const *shards, int n,
                   uint64_t total_size, SeerErr *err);

// Writes n bytes to `path` with the same atomic protocol as st_write (for config.json and the like).
int st_write_bytes(const char *path, const void *data, size_t n, SeerErr *err);

// Asks the kernel to read every mapped file ahead (madvise WILLNEED): for callers about to touch all
// weights (e.g. a GPU upload). Advisory: never fails.
void st_prefetch(const SafetensorsSet *s);
