// swiglu.h: the gated MLP activation of Qwen / Llama: silu(gate) * up.
#pragma once
#include <stdint.h>

// out[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i < n.
// out, gate, up: [n] (e.g. [T, F] flattened). out may equal gate or up. n = 0 does nothing.
// Large negative gates give -0 * up, never NaN (exp overflow to inf divides to 0).
void swiglu_forward_cpu(float *out, const float *gate, const float *up, int64_t n);

#ifdef SEER_CUDA
#include <cuda_runtime_api.h>

#include "common/common.h"

// CUDA twin (swiglu.cu), bf16 in and out, fp32 arithmetic: out[r, c] = silu(gate[r*ld_in + c]) *
// up[r*ld_in + c] for r < N, c < F (F even; out: [N, F]; gate/up rows may be the two halves of a
// fused [N, 2F] GEMM output, ld_in = 2F). Asynchronous on stream; -1 (err) when F is odd or the
// launch fails.
int swiglu_forward_cuda(uint16_t *out, const uint16_t *gate, const uint16_t *up, int64_t ld_in, int N,
                        int F, cudaStream_t stream, SeerErr *err);
#endif
