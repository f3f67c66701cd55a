// gate_loss.h: the distillation loss of one layer's gate on one packed chunk (SPEC.md section 3)
// and its gradient; CPU here (gate_loss.c), CUDA twin in gate.cu.
//
// What is averaged over what (per layer, per chunk):
//   row (g, t): KL(P[g, t, :] || softmax(s[g, t, :])) = sum_j P (log P - log_softmax(s)_j) over
//               the allowed blocks j < floor(p/64); terms with P = 0 contribute 0. P is the target
//               of kernels/attention.h ([HKV, T, NB], rows summing to ~1) and gets no gradient.
//   supervised rows of a document of length T_doc: in-doc position p >= floor(T_doc * slice_ratio)
//               and p >= 64 (at least one allowed block), for every group g: n_rows_d =
//               HKV * #such tokens. Documents with n_rows_d = 0 (e.g. shorter than 65 tokens)
//               are left out of everything below.
//   document d: mean of its rows' KL (sum / n_rows_d).
//   chunk:      kl = mean over the n_docs documents that have supervised rows; 0 when none has.
//   loss = scale * kl (gate_loss_scale, 10 in the paper). The trainer sums the layers' losses
//   and averages chunks of a step; the gradient returned is d loss / d params of this layer.
// So every supervised row of document d weighs scale / (n_docs * n_rows_d).
#pragma once
#include <stdint.h>

#include "train/gate.h"

typedef struct GateLossOpts {
    float slice_ratio;  // in [0, 1]; 0.5 (the paper's loss_slice_ratio)
    float scale;        // finite; 10 (the paper's gate_loss_scale)
} GateLossOpts;

typedef struct {
    double loss;     // scale * kl
    double kl;       // see the header comment
    int n_docs;      // documents with at least one supervised row
    int64_t n_rows;  // supervised (group, token) rows over the chunk
} GateLossStats;

// The paper's settings: slice_ratio 0.5, scale 10.
GateLossOpts gate_loss_default_opts(void);

// 0 when slice_ratio is in [0, 1] and scale is finite; else -1 with err saying which.
int gate_loss_opts_check(const GateLossOpts *o, SeerErr *err);

// First supervised in-document position of a document of length len: floor(len * slice_ratio),
// at least 64 (the first token with an allowed block). The document has supervised rows when
// len exceeds it.
int gate_loss_first_row(int len, float slice_ratio);

// gate_loss_first_row of every document: a new [n_docs] array (the caller frees it), e.g. the
// target rows a CUDA forward is asked for (ForwardCudaHook.target_from).
int *gate_loss_first_rows(const int *doc_lens, int n_docs, float slice_ratio);

// The supervision plan of a chunk: w_tok[t] ([T], or NULL) = 1 / (n_docs * n_rows_d) for a
// supervised token of document d, 0 otherwise (unscaled row weight; the same for every group).
// Fills st's n_docs, n_rows and zeroes loss, kl. doc_lens: [n_docs] (lengths >= 1).
void gate_loss_plan(float *w_tok, GateLossStats *st, const int *doc_lens, int n_docs, int HKV,
                    float slice_ratio);

// One row: returns KL(P || softmax(s)) over n >= 1 entries (in double). When ds is not NULL,
// writes ds[j] = coef * (softmax(s)_j * sum(P) - P_j), the gradient of coef * KL with respect to
// s_j (sum(P) is used as is: a target row that does not sum to 1 is differentiated exactly).
double gate_loss_row(float *ds, const float *s, const float *P, int n, float coef);

// Loss of one layer's gate on one chunk, and its gradient added into grad ([gate_param_count(s)],
// the layout of params; NULL: loss only). target: [HKV, c->T, c->NB]; o NULL: the defaults.
// Fills *st. Deterministic: groups run in parallel but every sum has a fixed order.
// Returns 0, or -1 with err from the shape, chunk or option checks.
int gate_loss_cpu(GateLossStats *st, float *grad, const float *params, GateShape s,
                  const GateChunk *c, const float *target, const GateLossOpts *o, SeerErr *err);

#ifdef SEER_CUDA
// Describes the next chunk to g (gate.h): document lengths (host, [n_docs]), T, NB (row stride of
// target and scores), rope_theta and the loss options (o NULL: the defaults). Uploads positions,
// tiles, row weights and RoPE tables once; the chunk stays set for every layer until the next
// call. Fills st's counts (loss, kl 0) when st is not NULL. Synchronises the stream.
// Returns -1 with err for a chunk gate_chunk_check refuses or one beyond g's capacity.
int gate_cuda_set_chunk(GateCuda *g, const int *doc_lens, int n_docs, int T, int NB,
                        float rope_theta, const GateLossOpts *o, GateLossStats *st, SeerErr *err);

// gate_loss_cpu on the device for the current chunk. params: [gate_param_count] fp32; q, ldq, k,
// ldk: bf16 as for gate_cuda_scores (gate.h); target: [HKV, T, NB] fp32 (read only);
// grad: [gate_param_count] fp32, the gradient is ADDED (NULL: no backward);
// loss: one device double to which scale * kl is ADDED (NULL: not computed).
// Asynchronous on g's stream, deterministic (no atomics). Returns -1 with err on a launch or
// cuBLAS failure, or when no chunk is set.
int gate_cuda_loss(GateCuda *g, float *grad, double *loss, const float *params, const uint16_t *q,
                   int64_t ldq, const uint16_t *k, int64_t ldk, const float *target, SeerErr *err);
#endif
