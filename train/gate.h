// gate.h: the AttnGate of one attention layer (SPEC.md section 1): parameters, initialisation,
// forward on a packed chunk, backward into the parameters; CPU reference here (gate.c), CUDA twin
// in gate.cu. The loss that drives it (SPEC.md section 3) is in gate_loss.h.
//
// Shape: HKV key/value groups, G query heads per group, head dim HD, gate hidden size DG.
// One layer's parameters are one flat fp32 vector of gate_param_count() floats, in this order:
//   wq      [HKV, G, HD, DG]  query projection per group ([in, out], y = x W)
//   wk      [HKV, 3*HD, DG]   key projection per group (input rows: max | min | avg)
//   qnorm_w [DG]              RMSNorm weight of the query branch (shared by the groups)
//   knorm_w [DG]              RMSNorm weight of the key branch
// A model's gates are L such vectors back to back; gradients use the same layout.
//
// Forward on a chunk of n_docs documents packed back to back (positions restart per document,
// blocks of 64 tokens restart per document), for group g:
//   query row t (in-doc position p):  qr = rope(rmsnorm(concat(q[t, gG..gG+G-1]) @ wq[g]) * qnorm_w, p)
//   key block j (tokens jB..min(jB+B, T_doc)-1 of the doc):
//       kc = [max_i k[i, g] | min_i k[i, g] | mean_i k[i, g]]        (mean over the real count)
//       kr = rope(rmsnorm(kc @ wk[g]) * knorm_w, j*64)
//   score s[g, t, j] = qr[t] . kr[j] / sqrt(DG), defined for j < floor(p/64) only (strictly
//   earlier blocks of the same document; rows with p < 64 have none), log-softmax over those j.
// RMSNorm: x / sqrt(mean(x^2) + 1e-6) * w. RoPE: rotate-half (kernels/rope.h) over all DG dims,
// angle p * theta^(-2i/DG) computed in double and rounded to fp32 (as the model's RoPE).
//
// The inputs q, k are frozen (no gradient flows into them), so the pooling needs no backward.
#pragma once
#include <stdint.h>

#include "common/common.h"

#define GATE_RMS_EPS 1e-6f
#define GATE_DG_MAX 1024  // largest gate hidden size the kernels accept

typedef struct {
    int HKV, G, HD, DG;
} GateShape;

// Views into one layer's flat parameter (or gradient) vector.
typedef struct {
    float *wq;       // [HKV, G*HD, DG]
    float *wk;       // [HKV, 3*HD, DG]
    float *qnorm_w;  // [DG]
    float *knorm_w;  // [DG]
} GateParams;

// A packed chunk as the CPU forward sees it (q, k after the model's q/k-norm, before RoPE).
typedef struct {
    const float *q;       // [T, H, HD]   H = HKV * G
    const float *k;       // [T, HKV, HD]
    const int *doc_lens;  // [n_docs], each >= 1, summing to T
    int n_docs, T;
    int NB;               // row stride of target / scores: >= ceil(longest doc / 64)
    float rope_theta;     // the model's rope_theta (> 0)
} GateChunk;

// Parameters of one layer: HKV*G*HD*DG + HKV*3*HD*DG + 2*DG (917,760 for Qwen3-8B's 8/4/128/128).
int64_t gate_param_count(GateShape s);

// Splits a flat vector p ([gate_param_count(s)] floats) into its four tensors (no copy).
GateParams gate_params_view(float *p, GateShape s);

// 0 when every dimension is >= 1, DG is even and DG <= GATE_DG_MAX; else -1 with err saying which.
int gate_shape_check(GateShape s, SeerErr *err);

// 0 when the document structure is usable: T >= 1, n_docs >= 1, every length >= 1, lengths sum to
// T, NB >= ceil(longest / 64). Else -1 with err saying which.
int gate_docs_check(const int *doc_lens, int n_docs, int T, int NB, SeerErr *err);

// 0 when the chunk is usable with shape s: T >= 1, n_docs >= 1, every length >= 1, lengths sum to
// T, NB >= ceil(longest / 64), rope_theta > 0, q and k non-NULL. Else -1 with err saying which.
int gate_chunk_check(const GateChunk *c, GateShape s, SeerErr *err);

// Initialises one layer: linear weights N(0, 0.02), norm weights 1. Element e of the layer's
// vector (e < HKV*(G+3)*HD*DG) is 0.02 * sqrt(-2 ln u1) * cos(2 pi u2) in double, rounded to fp32,
// with u1, u2 in (0, 1] taken from splitmix64 of (seed, layer, e): a pure function of its
// arguments, so any layer can be (re)built alone and CPU runs are bit-reproducible.
void gate_params_init(float *p, GateShape s, uint64_t seed, int layer);

// Log-probabilities of the gate over the allowed blocks, for recall evaluation and inspection.
// out: [HKV, T, c->NB]; out[g, t, j] = log_softmax_j(s[g, t, :]) for j < floor(p/64), -INFINITY for
// every other entry (so rows with p < 64 are all -INFINITY). params: [gate_param_count(s)].
// Returns 0, or -1 with err from the shape / chunk checks.
int gate_scores_cpu(float *out, const float *params, GateShape s, const GateChunk *c, SeerErr *err);

// ---------------------------------------------------------------------------------------------
// The CPU forward state, shared with gate_loss.c (most callers want gate_loss_cpu instead).

typedef struct {
    GateShape s;
    int T, n_docs, NBT;  // NBT = sum over docs of ceil(len / 64): key blocks of the chunk
    int *pos;            // [T]   in-document position of each token
    int *doc_of;         // [T]   document of each token
    int *blk0;           // [n_docs] index of each document's first key block (in 0..NBT-1)
    int *tok0;           // [n_docs] index of each document's first token
    float *cos_t, *sin_t;  // [max doc len, DG/2] RoPE tables by position
    float *uq;           // [HKV, T, DG]   query projection before the norm
    float *rq;           // [HKV, T]       its 1/rms
    float *qr;           // [HKV, T, DG]   query after norm and RoPE
    float *kc;           // [HKV, NBT, 3*HD] pooled keys (max | min | avg)
    float *uk;           // [HKV, NBT, DG] key projection before the norm
    float *rk;           // [HKV, NBT]     its 1/rms
    float *kr;           // [HKV, NBT, DG] key after norm and RoPE
} GateFwdCpu;

// Runs both branches for every group (no scores yet). The chunk must have passed
// gate_chunk_check; f owns its arrays afterwards (gate_fwd_free).
void gate_forward_cpu(GateFwdCpu *f, const float *params, GateShape s, const GateChunk *c);
void gate_fwd_free(GateFwdCpu *f);

// Raw score rows of group g, token t: s[j] = qr . kr[j] / sqrt(DG) for j < n = pos/64; returns n.
int gate_score_row_cpu(float *s, const GateFwdCpu *f, int g, int t);

// Backward of group g from dqr ([T, DG], gradient at the query after RoPE) and dkr ([NBT, DG]):
// overwrites both with the gradient at the projections, adds into grad's wq[g] and wk[g], and
// adds the norm-weight gradients into dqnorm, dknorm ([DG] each; per-group buffers so groups can
// run in parallel and be summed in a fixed order). c is the chunk f was built from.
void gate_backward_group_cpu(GateParams grad, float *dqnorm, float *dknorm, float *dqr, float *dkr,
                             const GateFwdCpu *f, const float *params, const GateChunk *c, int g);

#ifdef SEER_CUDA
// ---------------------------------------------------------------------------------------------
// CUDA twin (gate.cu). Inputs on the device: q, k in bf16 (what the bf16 model produces), target
// in fp32 ([HKV, T, NB], the layout of kernels/attention.h); parameters and gradients fp32; all
// math fp32 (cuBLAS SGEMM for the projections; optional TF32 tensor cores, off by default).
// One GateCuda holds a cuBLAS handle and every buffer for chunks up to its capacity: create it
// once, set each chunk once (the metadata is shared by every layer), then call per layer.
#include <cuda_runtime_api.h>

typedef struct GateCuda GateCuda;

// Allocates for chunks of at most T_max tokens, NB_max blocks per row and max_docs documents
// (key blocks <= T_max/64 + max_docs). Work runs on `stream` (0: the legacy default stream).
// Returns 0, or -1 with err naming the failing CUDA / cuBLAS call or bad argument.
int gate_cuda_create(GateCuda **out, GateShape s, int T_max, int NB_max, int max_docs,
                     cudaStream_t stream, SeerErr *err);
void gate_cuda_free(GateCuda *g);

// Device bytes gate_cuda_create allocates for these limits (for memory planning).
size_t gate_cuda_bytes(GateShape s, int T_max, int NB_max, int max_docs);

// Use TF32 tensor cores in the four projection GEMMs (about 1e-3 relative error instead of 1e-6).
void gate_cuda_set_tf32(GateCuda *g, int on);

// Per chunk: gate_cuda_set_chunk (gate_loss.h) uploads the document structure once; then per
// layer gate_cuda_loss (gate_loss.h) or gate_cuda_scores.

// Log-probabilities of gate_scores_cpu on the device for the current chunk. out: [HKV, T, NB]
// device fp32, every entry written; params: device [gate_param_count] fp32; q: token t, head h at
// q[t*ldq + h*HD] (bf16, ldq >= H*HD); k: group g at k[t*ldk + g*HD] (bf16, ldk >= HKV*HD), so
// slices of a fused buffer work in place. Asynchronous on g's stream; returns -1 with err on a
// launch or cuBLAS failure, or when no chunk is set.
int gate_cuda_scores(GateCuda *g, float *out, const float *params, const uint16_t *q, int64_t ldq,
                     const uint16_t *k, int64_t ldk, SeerErr *err);
#endif
