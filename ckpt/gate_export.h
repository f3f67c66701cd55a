// gate_export.h: gate checkpoint folders (SPEC.md section 7) and the PyTorch .pth format.
//
// A gate folder holds config.json (the base model's config plus base_model and seerattn_* keys),
// model.safetensors and attn_gate_weights.pth, both with the release's tensor names:
//   model.layers.{i}.self_attn.attn_gate.attngate_linear_q.weight  [HKV, G, HD, DG]
//   model.layers.{i}.self_attn.attn_gate.attngate_linear_k.weight  [HKV, 3*HD, DG]
//   model.layers.{i}.self_attn.attn_gate.attngate_qnorm.weight     [DG]
//   model.layers.{i}.self_attn.attn_gate.attngate_knorm.weight     [DG]
// in bf16, linear weights [in, out] (y = x W).
//
// The .pth is what torch.save writes: a zip archive (stored entries, CRC32) holding
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
#include "train/gate.h"

#define GATE_PTH_FILE "attn_gate_weights.pth"
#define GATE_ST_FILE "model.safetensors"

// A named tensor held in host memory as fp32 (converted at the file boundary).
typedef struct {
    char *name;
    int ndim;           // 1..4
    int64_t shape[4];
    float *data;        // [numel], owned
} GateTensor;

typedef struct {
    GateTensor *t;      // [n], owned
    int n;
} GateTensorSet;

void gate_tensors_free(GateTensorSet *s);

// The tensor called name, or NULL.
const GateTensor *gate_tensors_find(const GateTensorSet *s, const char *name);

// Writes n named tensors (dtype F32, F16 or BF16, contiguous, ndim 1..4) as a torch .pth zip,
// atomically. Names must be unique. Returns -1 with err naming path on bad input or I/O failure.
typedef struct {
    const char *name;
    Tensor t;
} PthTensor;
int gate_pth_write(const char *path, const PthTensor *tensors, int n, SeerErr *err);

// Reads a .pth written by torch.save (or gate_pth_write) into *out (fp32 copies). Refuses a file
// that is not a zip, a zip without <dir>/data.pkl, a compressed or out-of-range entry, a pickle
// that is not a flat dict of tensors, an entry whose CRC32 does not match, or a storage record
// that is missing or too short; err
// names the file and the entry or pickle offset.
int gate_pth_read(const char *path, GateTensorSet *out, SeerErr *err);

// ------------------------------------------------------------------ gate folders

// What a gate folder's config.json says besides the base model's own config.
typedef struct {
    const char *base_config_json;  // the base model's config.json text (a JSON object)
    const char *base_model;        // path or hub id of the base model
    float loss_slice_ratio;        // seerattn_loss_slice_ratio
} GateFolderInfo;

// Writes GATES_DIR (created if missing) = config.json + model.safetensors + attn_gate_weights.pth
// from L layers of flat fp32 gate parameters (params: [L, gate_param_count(s)], the layout of
// train/gate.h), rounded to bf16. Every file is written atomically. -1 with err on bad input
// (a base config that is not a JSON object) or I/O failure.
int gate_folder_write(const char *dir, const float *params, int L, GateShape s,
                      const GateFolderInfo *info, SeerErr *err);

// Reads the gates of a folder: model.safetensors when present, else attn_gate_weights.pth. The
// shape is read from the tensors of layer 0 (HKV, G, HD, DG) and L from how many layers are
// present; every layer 0..L-1 must have all four tensors with that shape (no gaps). *params
// receives [L, gate_param_count(*s)] fp32, malloc'd. -1 with err naming the file and tensor.
int gate_folder_read(const char *dir, float **params, int *L, GateShape *s, SeerErr *err);

// Same, from a set of named tensors already in memory (`what` names the source in messages).
int gate_params_from_tensors(const GateTensorSet *set, const char *what, float **params, int *L,
                             GateShape *s, SeerErr *err);

// Gates from either a `seer train` run folder (RUN_DIR/checkpoint.seer: the fp32 master weights)
// or a gate folder (gate_folder_read). Same outputs and errors.
int gate_load_dir(const char *dir, float **params, int *L, GateShape *s, SeerErr *err);
