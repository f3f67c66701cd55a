// forward_cuda.cu: see forward_cuda.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>

extern "C" {
#include "model/forward_cuda.h"
}

// ---------------------------------------------------------------- random fill

__device__ __forceinline__ uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__global__ void fill_normal_kernel(__nv_bfloat16 *x, int64_t n, float std, uint64_t seed) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t r = mix64(seed ^ mix64((uint64_t)i));
        float u1 = ((r >> 40) + 1) * (1.0f / 16777217.0f), u2 = ((r >> 16) & 0xffffff) * (1.0f / 16777216.0f);
        x[i] = __float2bfloat16(std * sqrtf(-2.f * logf(u1)) * cospif(2.f * u2));
    }
}

int cuda_fill_normal_bf16(uint16_t *x, int64_t n, float std, uint64_t seed, cudaStream_t stream,
                          SeerErr *err) {
    if (n <= 0) return 0;
    int64_t blocks = (n + 255) / 256;
    fill_normal_kernel<<<(int)(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>((__nv_bfloat16 *)x, n, std, seed);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "forward_cuda.cu: fill_normal_kernel n %lld: %s", (long long)n, cudaGetErrorString(e));
    return 0;
}
