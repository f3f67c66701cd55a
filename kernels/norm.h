// norm.h: RMSNorm, the normalisation of every Qwen / Llama layer (and of the gate's q/k branch).
#pragma once
#include "common/tensor.h"

// out[n, :] = x[n, :] / sqrt(mean(x[n, :]^2) + eps) * w, for each of the N rows of width D.
// out: [N, D]   x: [N, D]   w: [D] of any dtype (read with tensor_get; converted on the fly).
// out may equal x (in place). The mean of squares is accumulated in double. N = 0 does nothing.
void rmsnorm_forward_cpu(float *out, const float *x, const Tensor *w, int N, int D, float eps);

#ifdef SEER_CUDA
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"

// CUDA twins (norm.cu); device pointers, asynchronous on stream, -1 (err names the launch and the
// shapes) when the launch fails. The sum of squares is fp32 (the CPU's is double).
// out: [N, D] bf16 = rmsnorm(x) * w   x: [N, D] fp32 (the residual stream)   w: [D] bf16.
int rmsnorm_forward_cuda(uint16_t *out, const float *x, const uint16_t *w, int N, int D, float eps,
                         cudaStream_t stream, SeerErr *err);

// In place over NH heads of HD (<= 256) values per token: head h of token t at x[t*ld + h*HD]
// (bf16; e.g. the q or k part of a fused QKV buffer). w: [HD] bf16. copy: NULL, or where the
// normalised heads also go, at copy[t*ld_copy + h*HD] (the gate's pre-RoPE "nope" q/k).
int rmsnorm_heads_cuda(uint16_t *x, int64_t ld, uint16_t *copy, int64_t ld_copy, int T, int NH,
                       int HD, const uint16_t *w, float eps, cudaStream_t stream, SeerErr *err);
#endif
