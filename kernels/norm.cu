// norm.cu: RMSNorm on the GPU, the CUDA twins of rmsnorm_forward_cpu (see norm.h).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/norm.h"
}

#define NORM_THREADS 256

// One block per row: fp32 sum of squares (block reduction), then out = bf16(x * inv * w).
__global__ void rmsnorm_rows_kernel(__nv_bfloat16 *out, const float *x, const __nv_bfloat16 *w,
                                    int D, float eps) {
    __shared__ float part[NORM_THREADS / 32];
    const float *xr = x + (int64_t)blockIdx.x * D;
    float ss = 0.f;
    for (int i = threadIdx.x; i < D; i += NORM_THREADS) ss += xr[i] * xr[i];
    for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
    __syncthreads();
    ss = 0.f;
    for (int i = 0; i < NORM_THREADS / 32; i++) ss += part[i];
    const float inv = rsqrtf(ss / D + eps);
    __nv_bfloat16 *orow = out + (int64_t)blockIdx.x * D;
    for (int i = threadIdx.x; i < D; i += NORM_THREADS)
        orow[i] = __float2bfloat16(xr[i] * inv * __bfloat162float(w[i]));
}

int rmsnorm_forward_cuda(uint16_t *out, const float *x, const uint16_t *w, int N, int D, float eps,
                         cudaStream_t stream, SeerErr *err) {
    if (N <= 0) return 0;
    rmsnorm_rows_kernel<<<N, NORM_THREADS, 0, stream>>>((__nv_bfloat16 *)out, x, (const __nv_bfloat16 *)w, D, eps);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "norm.cu: rmsnorm_rows_kernel N %d D %d: %s", N, D, cudaGetErrorString(e));
    return 0;
}

// One warp per (token, head) vector of HD <= 256 values, normalised in place in bf16; the result
// is also written to copy when it is not NULL.
__global__ void rmsnorm_heads_kernel(__nv_bfloat16 *x, int64_t ld, __nv_bfloat16 *copy, int64_t ldc,
                                     int T, int NH, int HD, const __nv_bfloat16 *w, float eps) {
    int64_t v = (int64_t)blockIdx.x * (blockDim.x / 32) + (threadIdx.x >> 5);
    if (v >= (int64_t)T * NH) return;
    const int lane = threadIdx.x & 31, t = (int)(v / NH), h = (int)(v % NH);
    __nv_bfloat16 *xr = x + t * ld + (int64_t)h * HD;
    float val[8], ss = 0.f;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        int i = lane + 32 * k;
        val[k] = i < HD ? __bfloat162float(xr[i]) : 0.f;
        ss += val[k] * val[k];
    }
    for (int o = 16; o; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
    const float inv = rsqrtf(ss / HD + eps);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        int i = lane + 32 * k;
        if (i >= HD) break;
        __nv_bfloat16 y = __float2bfloat16(val[k] * inv * __bfloat162float(w[i]));
        xr[i] = y;
        if (copy) copy[t * ldc + (int64_t)h * HD + i] = y;
    }
}

int rmsnorm_heads_cuda(uint16_t *x, int64_t ld, uint16_t *copy, int64_t ld_copy, int T, int NH,
                       int HD, const uint16_t *w, float eps, cudaStream_t stream, SeerErr *err) {
    if (HD < 1 || HD > 256) return seer_fail(err, "norm.cu: rmsnorm_heads_cuda head dim %d (1..256)", HD);
    int64_t n = (int64_t)T * NH;
    if (n <= 0) return 0;
    rmsnorm_heads_kernel<<<(unsigned)((n + 7) / 8), 256, 0, stream>>>(
        (__nv_bfloat16 *)x, ld, (__nv_bfloat16 *)copy, ld_copy, T, NH, HD, (const __nv_bfloat16 *)w, eps);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "norm.cu: rmsnorm_heads_kernel T %d NH %d HD %d: %s", T, NH, HD, cudaGetErrorString(e));
    return 0;
}
