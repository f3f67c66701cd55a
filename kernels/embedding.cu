// embedding.cu: see embedding.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/embedding.h"
}

// One block per token.
__global__ void embedding_kernel(float *x, const int *ids, const __nv_bfloat16 *E, int D) {
    const __nv_bfloat16 *row = E + (int64_t)ids[blockIdx.x] * D;
    float *dst = x + (int64_t)blockIdx.x * D;
    for (int i = threadIdx.x; i < D; i += blockDim.x) dst[i] = __bfloat162float(row[i]);
}

int embedding_forward_cuda(float *x, const int *ids, const uint16_t *E, int T, int D,
                           cudaStream_t stream, SeerErr *err) {
    if (T <= 0) return 0;
    embedding_kernel<<<T, 256, 0, stream>>>(x, ids, (const __nv_bfloat16 *)E, D);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "embedding.cu: embedding_kernel T %d D %d: %s", T, D, cudaGetErrorString(e));
    return 0;
}
