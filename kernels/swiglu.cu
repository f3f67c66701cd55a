// swiglu.cu: silu(gate) * up on the GPU, the CUDA twin of swiglu_forward_cpu (see swiglu.h).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/swiglu.h"
}

// Two bf16 per thread; F is even. Large negative gates give -0 * up (exp overflow divides to 0).
__global__ void swiglu_kernel(__nv_bfloat162 *out, const __nv_bfloat16 *gate, const __nv_bfloat16 *up,
                              int64_t ld_in, int N, int F) {
    const int F2 = F / 2;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)N * F2) return;
    const int64_t r = i / F2, c = (i % F2) * 2;
    float2 g = __bfloat1622float2(*(const __nv_bfloat162 *)(gate + r * ld_in + c));
    float2 u = __bfloat1622float2(*(const __nv_bfloat162 *)(up + r * ld_in + c));
    out[i] = __floats2bfloat162_rn(g.x / (1.f + __expf(-g.x)) * u.x, g.y / (1.f + __expf(-g.y)) * u.y);
}

int swiglu_forward_cuda(uint16_t *out, const uint16_t *gate, const uint16_t *up, int64_t ld_in, int N,
                        int F, cudaStream_t stream, SeerErr *err) {
    if (F % 2) return seer_fail(err, "swiglu.cu: width F %d must be even", F);
    int64_t n = (int64_t)N * (F / 2);
    if (n <= 0) return 0;
    swiglu_kernel<<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(
        (__nv_bfloat162 *)out, (const __nv_bfloat16 *)gate, (const __nv_bfloat16 *)up, ld_in, N, F);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "swiglu.cu: swiglu_kernel N %d F %d: %s", N, F, cudaGetErrorString(e));
    return 0;
}
