// embedding.h: token embedding lookup on the GPU (the CPU forward does it inline in forward_cpu.c).
#pragma once
#ifdef SEER_CUDA
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"

// x[t, :] = fp32(E[ids[t], :]). x: [T, D] fp32; ids: [T] device, each in [0, V) (checked by the
// caller on the host); E: [V, D] bf16. Asynchronous on stream; -1 (err) when the launch fails.
int embedding_forward_cuda(float *x, const int *ids, const uint16_t *E, int T, int D,
                           cudaStream_t stream, SeerErr *err);
#endif
