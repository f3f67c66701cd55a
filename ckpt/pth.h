// pth.h: the PyTorch .pth format, read and written without Python.
//
// A .pth is what torch.save writes: a zip archive (stored entries, CRC32) holding
//   archive/data.pkl   pickle protocol 2 of an OrderedDict name -> tensor, each tensor built by
//                      torch._utils._rebuild_tensor_v2 from a persistent-id storage
//                      ('storage', torch.BFloat16Storage, key, 'cpu', numel)
//   archive/data/<key> the raw little-endian storage bytes (records aligned to 64 bytes)
//   archive/version    "3"   and  archive/byteorder "little"
// The reader understands that layout as torch.save produces it for a dict (or OrderedDict) of
// contiguous F32 / F16 / BF16 tensors, under any archive folder name, and refuses anything
// else (other callables, dtypes, strides, compressed entries) with the entry and the reason.
#pragma once
#include <stdint.h>

#include "common/common.h"
#include "common/tensor.h"

// A named tensor held in host memory as fp32 (converted at the file boundary).
typedef struct {
    char *name;
    int ndim;           // 1..4
    int64_t shape[4];
    float *data;        // [numel], owned
} NamedTensor;

typedef struct {
    NamedTensor *t;      // [n], owned
    int n;
} NamedTensorSet;

void named_tensors_free(NamedTensorSet *s);

// The tensor called name, or NULL.
const NamedTensor *named_tensors_find(const NamedTensorSet *s, const char *name);

// Writes n named tensors (dtype F32, F16 or BF16, contiguous, ndim 1..4) as a torch .pth zip,
// atomically. Names must be unique. Returns -1 with err naming path on bad input or I/O failure.
typedef struct {
    const char *name;
    Tensor t;
} PthTensor;
int pth_write(const char *path, const PthTensor *tensors, int n, SeerErr *err);

// Reads a .pth written by torch.save (or pth_write) into *out (fp32 copies). Refuses a file
// that is not a zip, a zip without <dir>/data.pkl, a compressed or out-of-range entry, a pickle
// that is not a flat dict of tensors, an entry whose CRC32 does not match, or a storage record
// that is missing or too short; err
// names the file and the entry or pickle offset.
int pth_read(const char *path, NamedTensorSet *out, SeerErr *err);

