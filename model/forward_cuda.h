// forward_cuda.h: the frozen model's prefill forward on one GPU over a packed chunk (bf16 weights,
// cuBLASLt GEMMs with fp32 accumulation, fp32 residual stream), handing each layer's q/k (before
// and after RoPE), v and the gate target (SPEC.md section 2) to a callback. CUDA twin of
// forward_cpu (model/forward_cpu.h) without the lm head: the trainer needs no logits.
#pragma once
#ifdef SEER_CUDA
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"
#include "model/model.h"

#include "kernels/attention.h"
#include "kernels/gemm.h"

// x[i] = bf16(mean + std * N(0, 1)), from a counter-based hash of (seed, i): the same on every
// launch shape. x: [n] device memory. Asynchronous on stream; -1 (err) when the launch fails.
int cuda_fill_normal_bf16(uint16_t *x, int64_t n, float mean, float std, uint64_t seed,
                          cudaStream_t stream, SeerErr *err);

// Device weights of one layer (bf16), views into the model's one weight allocation.
typedef struct {
    uint16_t *attn_norm;       // [D]
    uint16_t *wqkv;            // [(H + 2 HKV) HD, D]: rows of wq, then wk, then wv
    uint16_t *bqkv;            // [(H + 2 HKV) HD] (qkv_bias only) or NULL
    uint16_t *q_norm, *k_norm; // [HD] (qk_norm only) or NULL
    uint16_t *wo;              // [D, H HD]
    uint16_t *mlp_norm;        // [D]
    uint16_t *wgu;             // [2F, D]: rows of w_gate, then w_up
    uint16_t *wdown;           // [D, F]
} LayerCuda;

// Sizes of a forward at up to max_T tokens (the plan printed at start).
typedef struct {
    size_t weight_bytes;  // embedding, final norm, lm head (when not tied), all layers
    size_t work_bytes;    // activations + attention plan + target for one chunk
    int max_T, NB;        // NB = ceil(max_T / 64) target columns (0 without target)
} ForwardCudaPlan;

// What the layer hook sees: device pointers valid only during the call (reused by the next
// layer). Row t of each is token t of the chunk; ld* are elements between consecutive tokens.
typedef struct {
    int layer, T, H, HKV, HD, NB, n_docs;
    const int *doc_lens;     // [n_docs] host
    const int *pos;          // [T] device, position of each token in its document
    const uint16_t *q_nope;  // [T, ld_nope]: head h at + h*HD; after bias and q_norm, before RoPE
    const uint16_t *k_nope;  // [T, ld_nope]: KV head g at + g*HD
    int64_t ld_nope;
    const uint16_t *q, *k, *v;  // [T, ld_qkv] after RoPE (v: as projected)
    int64_t ld_qkv;
    const float *target;     // [HKV, T, NB] gate target (see attention.h), NB = ceil(longest doc / 64),
                             //   or NULL
    cudaStream_t stream;     // the forward's stream: work queued on it sees the buffers ready
} ForwardCudaLayerView;

typedef int (*ForwardCudaLayerFn)(void *ctx, const ForwardCudaLayerView *view, SeerErr *err);

typedef struct {
    ForwardCudaLayerFn fn;  // called after each layer's attention, before o_proj; -1 stops
    void *ctx;
    int want_target;        // compute the target at every layer (the plan must include it)
    const int *target_from; // [n_docs] or NULL: target rows only from these in-document positions
                            //   on (attention_cuda_plan_init), e.g. the loss's supervised tokens
} ForwardCudaHook;

// Milliseconds spent per part (CUDA events), summed over the layers of the last run.
typedef struct {
    double gemm, attention, other, total;
} ForwardCudaTimes;

typedef struct {
    ModelConfig cfg;
    ForwardCudaPlan plan;
    int with_target;
    void *weights, *work;      // the two allocations
    uint16_t *embed;           // [V, D]
    uint16_t *final_norm;      // [D]
    uint16_t *lm_head;         // [V, D] (== embed when tied)
    LayerCuda *layers;         // [L] host array of device views
    float *x;                  // [max_T, D] residual stream (fp32)
    uint16_t *xn;              // [max_T, D] normed activations
    uint16_t *qkv;             // [max_T, (H + 2 HKV) HD]
    uint16_t *nope;            // [max_T, (H + HKV) HD] q/k before RoPE
    uint16_t *att;             // [max_T, H HD] attention output
    uint16_t *gu;              // [max_T, 2F] gate | up
    uint16_t *mid;             // [max_T, F] swiglu output
    float *target;             // [HKV, max_T, NB] or NULL
    float *cos_t, *sin_t;      // [max_T, HD/2]
    int *ids, *pos;            // [max_T]
    void *attn_ws;             // attention plan workspace
    size_t attn_ws_bytes;
    GemmCuda *gemm;
    cudaStream_t stream;
    cudaEvent_t *ev;           // [2 * ev_n] timing events, or NULL
    int ev_n;
    ForwardCudaTimes times;    // of the last run when timing was asked for
} ForwardCuda;

// Sizes of the forward of cfg at max_T tokens per chunk (with_target: plus the target and its
// scratch) on the current device. Fails (-1, err) only for a shape the kernels refuse.
int forward_cuda_plan(ForwardCudaPlan *p, const ModelConfig *cfg, int max_T, int with_target,
                      SeerErr *err);

// Prints the plan ("weights X GB, workspace Y GB at T tokens") and the device once to log (may
// be NULL), refuses (-1, err with the numbers and what to change) when it does not fit the free
// memory of the current device, else allocates everything. timing: record per-part times.
int forward_cuda_create(ForwardCuda *f, const ModelConfig *cfg, int max_T, int with_target,
                        int timing, FILE *log, SeerErr *err);
void forward_cuda_free(ForwardCuda *f);

// Weights from a loaded checkpoint (any dtype, converted to bf16 on the host) or random ones of
// the config (linear weights N(0, 0.02), norm weights 1, biases 0) made on the GPU.
int forward_cuda_upload(ForwardCuda *f, const Model *m, SeerErr *err);
int forward_cuda_randomize(ForwardCuda *f, uint64_t seed, SeerErr *err);

// Runs the chunk: ids [T] and doc_lens [n_docs] (host; each length >= 1, sum T <= max_T).
// hook: NULL or as above. logits: NULL, or device [T, V] fp32 from the final norm and lm head.
// Synchronous (returns when done). -1 with err for bad input (before any work) or a failing call.
int forward_cuda_run(ForwardCuda *f, const int *ids, int T, const int *doc_lens, int n_docs,
                     const ForwardCudaHook *hook, float *logits, SeerErr *err);
#endif
