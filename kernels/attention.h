// attention.h: causal varlen attention over a packed chunk, optionally emitting the gate's
// training target (SPEC.md section 2) in the same pass. CPU reference here; CUDA twin in attention.cu.
//
// A chunk holds n_docs documents back to back (doc_lens sum to T); positions and causality restart
// per document, nothing attends across documents. G = H / HKV; query head h reads KV head h / G.
#pragma once

// q:      [T, H, HD] post-RoPE queries        out: [T, H, HD]
// k, v:   [T, HKV, HD] post-RoPE keys, values
// target: [HKV, T, NB] or NULL, NB = ceil(max doc len / 64). For token t at in-document position
//         p, entries j < floor(p/64) hold P[g, t, j] of SPEC.md section 2 (block max of the exact
//         softmax, max over the group's heads, strictly block-causal, normalised to sum 1); every
//         other entry (and every row with p < 64) is 0.
// Scale is 1/sqrt(HD).
void attention_forward_cpu(float *out, float *target, const float *q, const float *k,
                           const float *v, const int *doc_lens, int n_docs, int T, int H, int HKV,
                           int HD, int NB);

#include <stdint.h>

// One work item of the CUDA kernel's persistent grid: the query tile [q0, q0 + nq) of the document
// starting at d0, for KV head g; gq = g * 256 + nq. Target rows are written for the tile's tokens
// at in-document positions >= t0 only. Read by the kernel as an int4.
typedef struct {
    int32_t q0, d0, t0, gq;
} AttnWorkItem;

// Items of a chunk: one per (document, query tile of `tile` tokens, KV head).
int64_t attention_work_count(const int *doc_lens, int n_docs, int HKV, int tile);

// work[attention_work_count(..)] in the order the grid of `slots` CTAs takes them (round k: items
// k * slots .. k * slots + slots - 1): heaviest first (most keys read), so the rounds balance, then
// each window of slots * HKV items grouped by KV head, so a round streams one head's K/V (L2).
// target_from: [n_docs] first in-document position of each document whose target row is wanted
// (the trainer's first supervised token, SPEC.md section 3), or NULL for every row.
void attention_work_list(AttnWorkItem *work, const int *doc_lens, int n_docs, int HKV, int tile, int slots,
                         const int *target_from);

#ifdef SEER_CUDA
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"

// CUDA twin (attention.cu, sm_90a): bf16 q/k/v in, fp32 accumulation, bf16 out, fp32 target. A plan is
// made once per packed chunk (work list of (document, query tile, KV head) items, heaviest first,
// and the target's scratch) and reused by every layer. Kernels never allocate: the caller gives
// the workspace (attention_cuda_plan_bytes) and keeps it alive while the plan is used.
typedef struct {
    int T, H, HKV, HD, NB;
    int n_work;       // CTA work items
    int n_slots;      // CTAs of the persistent grid (resident on this device)
    int with_target;  // the plan holds target scratch
    void *work;       // device [n_work, 4] ints
    void *scratch;    // device [n_slots, 2, ceil(NB / 2), 128] block-max logits as fp16 pairs (two
                      //   slots per CTA), or NULL
} AttnCudaPlan;

// Workspace bytes of a plan for this chunk on the current device. Fails (-1, err) when HD is not
// 64 or 128, H is not a multiple of HKV, a group exceeds 128 heads, a document length is < 1, the
// lengths do not sum to T, NB < ceil(longest document / 64), or the device is not sm_90 (H100/H200:
// the kernel uses wgmma).
int attention_cuda_plan_bytes(size_t *bytes, const int *doc_lens, int n_docs, int T, int H, int HKV,
                              int HD, int NB, int with_target, SeerErr *err);

// Fills the plan and uploads its work list into workspace (device memory of `bytes` >= the planned
// size) on `stream`, synchronising it once. doc_lens are host memory. target_from (host, [n_docs],
// or NULL: every row): the target is formed only for tokens at in-document positions >=
// target_from[d] (>= 0; the document's length or more: none); the rows before are left as they
// are in the caller's buffer (the trainer never reads them: the loss supervises the last half of
// each document). Same failures as above, plus a workspace that is too small, a negative
// target_from or a failed copy.
int attention_cuda_plan_init(AttnCudaPlan *plan, void *workspace, size_t bytes, const int *doc_lens,
                             int n_docs, int T, int H, int HKV, int HD, int NB, int with_target,
                             const int *target_from, cudaStream_t stream, SeerErr *err);

// out: [T, H, HD] bf16. q: token t, head h at q[t*ldq + h*HD] (bf16); k, v: KV head g at
// k[t*ldk + g*HD], v[t*ldv + g*HD] (so a fused [T, (H+2*HKV)*HD] QKV buffer works in place).
// target: [HKV, T, NB] fp32 device memory, every entry of the plan's target rows written (the CPU
// twin's values up to 3.4e-4 * |ml - R| relative: block max logits ml are kept as fp16 offsets from
// R, their row's max over the first 128 keys; all rows unless the plan was made with
// target_from), or NULL for plain attention (a plan made with_target can serve both). q, k, v are
// read with the tensor memory accelerator: their starts must be 16-byte aligned and ldq, ldk,
// ldv multiples of 8.
// Asynchronous on stream; returns -1 (err names the launch and the shapes) when the launch fails,
// q/k/v are misaligned, or a target is asked of a plan made without one.
int attention_forward_cuda(const AttnCudaPlan *plan, uint16_t *out, float *target,
                           const uint16_t *q, int64_t ldq, const uint16_t *k, int64_t ldk,
                           const uint16_t *v, int64_t ldv, cudaStream_t stream, SeerErr *err);
#endif
