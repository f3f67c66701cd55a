// step_cuda.h: one gate-distillation training step on one GPU (SPEC.md section 3): the frozen
// model's CUDA forward (model/forward_cuda.h) chunk by chunk, each layer's gate loss and gradient
// at the forward's layer hook (train/gate_loss.h, gate_cuda_loss), gradient accumulation over the
// chunks of a step, global-norm clipping and AdamW, all on the device. The CUDA twin of the CPU
// step in train/loop.c (forward_cpu hook + gate_loss_cpu + adamw_clip_grad + adamw_step).
//
// Resident on the device, fp32: params, grads, m, v, each [L, P] (P = gate_param_count(s), the
// layout of train/gate.h, layer l at l * P), and the per-layer loss [L] (double). Use:
//   step_cuda_create(&sc, &cfg, &opts, stderr, &err);           // plan, allocate
//   step_cuda_upload_model(sc, &model, &err);                   // or step_cuda_randomize_model
//   step_cuda_set_state(sc, params, m, v, t, &err);             // from a fresh init or checkpoint
//   per step: step_cuda_begin; step_cuda_chunk per chunk; step_cuda_finish(lr, clip)
//   for a checkpoint: step_cuda_get_state(sc, params, m, v, &err)
// The step's arithmetic after the gradient equals the CPU's: grads scaled by (float)(1/C), the
// norm summed in double (in another order: equal to ~1e-16 relative), the clip coefficient
// rounded to float as adamw_clip_grad does, then AdamW with the same fp32 operations in the same
// order (no fused multiply-add), so identical gradients give bit-identical params and moments.
#pragma once
#ifdef SEER_CUDA
#include <stdint.h>
#include <stdio.h>
#include <cuda_runtime_api.h>

#include "common/common.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/gate.h"
#include "train/gate_loss.h"

typedef struct {
    int max_T;          // tokens per chunk at most (>= 1)
    int max_docs;       // documents per chunk planned for; a chunk with more grows the gate's
                        //   workspace (one reallocation), so this is a hint (>= 1)
    int DG;             // gate hidden size (128, SPEC.md section 1)
    GateLossOpts loss;  // slice ratio and loss scale
    AdamWHyper hp;      // betas, eps, weight decay
    int tf32;           // TF32 tensor cores in the gate's projection GEMMs (about 1e-3 relative
                        //   on the gate alone; against the CPU's fp32 path the bf16 forward's
                        //   error dominates either way, tests/gpu/test_step_cuda.c)
    int timing;         // record per-part times (step_cuda_times); costs a few events per layer
} StepCudaOpts;

// The paper's settings: DG 128, gate_loss_default_opts, adamw_default_hyper; TF32 on (1.3-1.4x
// faster gate, no measurable change in the error against the CPU path); no timing; max_T and
// max_docs as given.
StepCudaOpts step_cuda_default_opts(int max_T, int max_docs);

typedef struct StepCuda StepCuda;

// Device bytes each part holds (the forward's plan, the gate's workspace, the optimizer).
typedef struct {
    size_t weights, forward_work, gate_work, optimizer;  // optimizer: params, grads, m, v, losses
} StepCudaMem;

// Milliseconds per part, summed over the chunks since the last step_cuda_begin (timing only):
// the forward's GEMMs, attention + target, the gate's loss and backward, the other forward
// kernels (norms, RoPE, SwiGLU, embedding), and the optimizer (scale, norm, AdamW).
typedef struct {
    double gemm, attention, gate, other, optimizer;
    int chunks;
} StepCudaTimes;

// Plans and allocates the forward of cfg (with the target) and the gate of its shape (HKV, G =
// H/HKV, HD, o->DG) on the current device, printing the forward's plan to log (may be NULL).
// Refuses (-1, err with the numbers) a model that does not fit the card, a bad gate shape or
// options. The frozen weights are uninitialised until step_cuda_upload_model / _randomize_model;
// the gate state is zero until step_cuda_set_state.
int step_cuda_create(StepCuda **out, const ModelConfig *cfg, const StepCudaOpts *o, FILE *log,
                     SeerErr *err);
void step_cuda_free(StepCuda *sc);  // NULL is fine

// Frozen weights from a loaded model (its config must be the one given to create), or random
// ones (N(0, 0.02), norms 1) made on the GPU from seed. -1 with err on a failed copy or launch.
int step_cuda_upload_model(StepCuda *sc, const Model *m, SeerErr *err);
int step_cuda_randomize_model(StepCuda *sc, uint64_t seed, SeerErr *err);

int64_t step_cuda_param_count(const StepCuda *sc);  // L * P
StepCudaMem step_cuda_mem(const StepCuda *sc);

// Host -> device: params, m, v ([L * P] each; m or v NULL: zeros) and the optimizer's step
// count t (steps taken so far, >= 0). -1 with err on a failed copy or t < 0.
int step_cuda_set_state(StepCuda *sc, const float *params, const float *m, const float *v,
                        int64_t t, SeerErr *err);
// Device -> host: any of params, m, v ([L * P]) may be NULL; *t (NULL: skipped) gets the step
// count. Synchronous. -1 with err on a failed copy.
int step_cuda_get_state(StepCuda *sc, float *params, float *m, float *v, int64_t *t, SeerErr *err);
// Device -> host: the gradient accumulated since step_cuda_begin (the sum over chunks, before
// the 1/C scaling of step_cuda_finish); g: [L * P]. For tests and inspection.
int step_cuda_get_grads(StepCuda *sc, float *g, SeerErr *err);

// Starts a step: zeroes the gradient, the per-layer losses, the chunk count and the times.
int step_cuda_begin(StepCuda *sc, SeerErr *err);

// One chunk: ids [T] and doc_lens [n_docs] (host; lengths >= 1 summing to T <= max_T). Runs the
// forward with the target and, at every layer, adds that layer's gate loss and gradient into
// the step's accumulators. Synchronous. st (NULL: skipped) gets the chunk's supervision counts.
// Returns -1 with err for a bad chunk (before any work) or a failing CUDA / cuBLAS call.
int step_cuda_chunk(StepCuda *sc, const int *ids, int T, const int *doc_lens, int n_docs,
                    GateLossStats *st, SeerErr *err);

// Ends a step over the C >= 1 chunks since step_cuda_begin: grads *= 1/C, layer losses /= C,
// the global gradient norm (before clipping) into *grad_norm, clipping to clip (<= 0: none, as
// adamw_clip_grad), then one AdamW update with learning rate lr. layer_loss: host [L] (NULL:
// skipped), the step's mean loss of each layer (their sum is the step's loss). A non-finite
// norm or loss applies no update and returns -1 with err (the state stays that of the last
// good step). -1 too when no chunk was run.
int step_cuda_finish(StepCuda *sc, float lr, float clip, double *layer_loss, double *grad_norm,
                     SeerErr *err);

// Per-part times since step_cuda_begin (zeros unless opts.timing).
StepCudaTimes step_cuda_times(const StepCuda *sc);

// ---------------------------------------------------------------------------------------------
// The optimizer kernels (step_cuda.cu), usable on their own. All asynchronous on stream except
// where a host result is returned.

// g[i] *= scale for i < n (device [n] fp32), then the L2 norm of the scaled g: per-CTA partial
// sums of squares in double over a fixed grid, summed in a fixed order (deterministic). partials:
// device scratch of ADAMW_CUDA_PARTIALS doubles; *norm: host, written after a stream sync.
#define ADAMW_CUDA_PARTIALS 1024
int adamw_cuda_scale_norm(float *g, int64_t n, float scale, double *partials, double *norm,
                          cudaStream_t stream, SeerErr *err);

// One AdamW update of p, m, v (device [n] fp32) from g * clip_coef (clip_coef 1: no clipping),
// as adamw_step with the optimizer at step count t (the count AFTER this step, >= 1): bias
// corrections in double, folded into a step size and a denominator scale, rounded to float;
// then per element, in fp32 without contraction: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g;
// p = p (1 - lr wd) - step m / (sqrt(v) / sqrt(bc2) + eps).
int adamw_cuda_step(float *p, float *m, float *v, const float *g, int64_t n, float clip_coef,
                    AdamWHyper hp, int64_t t, float lr, cudaStream_t stream, SeerErr *err);

// The clip coefficient adamw_clip_grad applies for a gradient of this norm: (float)(max_norm /
// (norm + 1e-6)) when that is below 1 and max_norm > 0, else 1.
float adamw_clip_coef(double norm, double max_norm);
#endif
