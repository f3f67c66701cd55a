// forward_cuda.h: the frozen model's prefill forward on one GPU over a packed chunk (bf16 weights,
// cuBLASLt GEMMs with fp32 accumulation, fp32 residual stream), handing each layer's q/k (before
// and after RoPE), v and the gate target (SPEC.md section 2) to a callback. CUDA twin of
// forward_cpu (model/forward_cpu.h) without the lm head: the trainer needs no logits.
#pragma once
#ifdef SEER_CUDA
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"
#include "model/model.h"

// x[i] = bf16(N(0, std^2)), a counter-based hash of (seed, i): the same on every launch shape.
// x: [n] device memory. Asynchronous on stream; returns -1 (err) when the launch fails.
int cuda_fill_normal_bf16(uint16_t *x, int64_t n, float std, uint64_t seed, cudaStream_t stream,
                          SeerErr *err);
#endif
