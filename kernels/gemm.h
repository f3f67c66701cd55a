// gemm.h: the linear layer on the GPU through cuBLASLt, y = x W^T (+ bias) (+ y), bf16 inputs
// with fp32 accumulation; the CUDA twin of matmul_forward_cpu (kernels/matmul.h) for bf16 weights
// in the Hugging Face [out, in] layout.
#pragma once
#ifdef SEER_CUDA
#include <stddef.h>
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"

typedef struct GemmCuda GemmCuda;  // cuBLASLt handle, its workspace and a cache of chosen algorithms

// Creates the handle and allocates the cuBLASLt workspace (32 MB) on the current device.
// Returns NULL and fills err when cuBLASLt or the allocation fails.
GemmCuda *gemm_cuda_create(SeerErr *err);
void gemm_cuda_free(GemmCuda *g);

typedef enum { GEMM_OUT_BF16 = 0, GEMM_OUT_F32 = 1 } GemmOut;

// y: [N, OUT] (bf16, or fp32 with GEMM_OUT_F32)   x: [N, IN] bf16   W: [OUT, IN] bf16
// bias: [OUT] bf16 or NULL (bf16 output only). accumulate != 0 adds into y (fp32 output only:
// the residual stream, y += x W^T). N, IN, OUT >= 1; IN and OUT multiples of 8 (16-byte rows).
// Asynchronous on stream. Returns -1 with err naming the call and the shapes when cuBLASLt
// refuses (no algorithm, bad arguments) or fails.
int gemm_cuda(GemmCuda *g, void *y, GemmOut out, const uint16_t *x, const uint16_t *W,
              const uint16_t *bias, int accumulate, int N, int IN, int OUT, cudaStream_t stream,
              SeerErr *err);
#endif
