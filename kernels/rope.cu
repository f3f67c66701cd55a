// rope.cu: rotary position embedding on the GPU, the CUDA twins of rope_table_cpu and
// rope_apply_cpu (see rope.h).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

extern "C" {
#include "kernels/rope.h"
}

// Angles in double, rounded once to fp32, as on the CPU.
__global__ void rope_table_kernel(float *cos_t, float *sin_t, const int *pos, int T, int HD, float theta) {
    const int half = HD / 2;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)T * half) return;
    const int t = (int)(i / half), k = (int)(i % half);
    double a = pos[t] * pow((double)theta, -2.0 * k / HD);
    cos_t[i] = (float)cos(a);
    sin_t[i] = (float)sin(a);
}

int rope_table_cuda(float *cos_t, float *sin_t, const int *pos, int T, int HD, float theta,
                    cudaStream_t stream, SeerErr *err) {
    int64_t n = (int64_t)T * (HD / 2);
    if (n <= 0) return 0;
    rope_table_kernel<<<(unsigned)((n + 255) / 256), 256, 0, stream>>>(cos_t, sin_t, pos, T, HD, theta);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "rope.cu: rope_table_kernel T %d HD %d: %s", T, HD, cudaGetErrorString(e));
    return 0;
}

// One thread per (token, head, pair i < HD/2), in place in bf16 with fp32 arithmetic.
__global__ void rope_apply_kernel(__nv_bfloat16 *x, int64_t ld, const float *cos_t, const float *sin_t,
                                  int T, int NH, int HD) {
    const int half = HD / 2;
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)T * NH * half) return;
    const int k = (int)(i % half);
    const int64_t th = i / half;
    const int t = (int)(th / NH), h = (int)(th % NH);
    __nv_bfloat16 *v = x + t * ld + (int64_t)h * HD;
    const float c = cos_t[(int64_t)t * half + k], s = sin_t[(int64_t)t * half + k];
    const float a = __bfloat162float(v[k]), b = __bfloat162float(v[k + half]);
    v[k] = __float2bfloat16(a * c - b * s);
    v[k + half] = __float2bfloat16(b * c + a * s);
}

int rope_apply_cuda(uint16_t *x, int64_t ld, const float *cos_t, const float *sin_t, int T, int NH,
                    int HD, cudaStream_t stream, SeerErr *err) {
    int64_t n = (int64_t)T * NH * (HD / 2);
    if (n <= 0) return 0;
    rope_apply_kernel<<<(unsigned)((n + 255) / 256), 256, 0, stream>>>((__nv_bfloat16 *)x, ld, cos_t, sin_t, T, NH, HD);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "rope.cu: rope_apply_kernel T %d NH %d HD %d: %s", T, NH, HD, cudaGetErrorString(e));
    return 0;
}
