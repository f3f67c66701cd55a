// gate_export.h: gate checkpoint folders (SPEC.md section 7): write, and read in either form.
//
// A gate folder holds config.json (the base model's config plus base_model and seerattn_* keys),
// model.safetensors and attn_gate_weights.pth, both with the release's tensor names:
//   model.layers.{i}.self_attn.attn_gate.attngate_linear_q.weight  [HKV, G, HD, DG]
//   model.layers.{i}.self_attn.attn_gate.attngate_linear_k.weight  [HKV, 3*HD, DG]
//   model.layers.{i}.self_attn.attn_gate.attngate_qnorm.weight     [DG]
//   model.layers.{i}.self_attn.attn_gate.attngate_knorm.weight     [DG]
// in bf16, linear weights [in, out] (y = x W).
//
// The .pth file format itself is in ckpt/pth.h.
#pragma once
#include <stdint.h>

#include "ckpt/pth.h"
#include "common/common.h"
#include "train/gate.h"

#define GATE_PTH_FILE "attn_gate_weights.pth"
#define GATE_ST_FILE "model.safetensors"

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
int gate_params_from_tensors(const NamedTensorSet *set, const char *what, float **params, int *L,
                             GateShape *s, SeerErr *err);

// Gates from either a `seer train` run folder (RUN_DIR/checkpoint.seer: the fp32 master weights)
// or a gate folder (gate_folder_read). Same outputs and errors.
int gate_load_dir(const char *dir, float **params, int *L, GateShape *s, SeerErr *err);
