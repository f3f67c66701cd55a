// step_cuda.cu: the optimizer kernels of step_cuda.h (gradient scaling + norm, AdamW). The
// element math uses __fmul_rn / __fadd_rn / __fsub_rn / __fdiv_rn / __fsqrt_rn so nvcc cannot
// fuse a multiply and an add: every operation rounds as the CPU's does in train/adamw.c.
#include <cuda_runtime.h>
#include <math.h>

extern "C" {
#include "train/step_cuda.h"
}

#define SCALE_THREADS 256

// g[i] *= scale; partials[b] = sum over the elements CTA b visits (grid-stride, fixed grid of
// ADAMW_CUDA_PARTIALS CTAs) of g[i]^2 in double, reduced in a fixed tree order.
__global__ void scale_sumsq_kernel(float *g, int64_t n, float scale, double *partials) {
    __shared__ double red[SCALE_THREADS];
    double s = 0;
    for (int64_t i = blockIdx.x * (int64_t)SCALE_THREADS + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * SCALE_THREADS) {
        float x = __fmul_rn(g[i], scale);
        g[i] = x;
        s += (double)x * (double)x;
    }
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = SCALE_THREADS / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[blockIdx.x] = red[0];
}

// partials[0] = sum of partials[0 .. n-1] in a fixed tree order (one CTA of SCALE_THREADS).
__global__ void sum_partials_kernel(double *partials, int n) {
    __shared__ double red[SCALE_THREADS];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += SCALE_THREADS) s += partials[i];
    red[threadIdx.x] = s;
    __syncthreads();
    for (int w = SCALE_THREADS / 2; w > 0; w /= 2) {
        if ((int)threadIdx.x < w) red[threadIdx.x] += red[threadIdx.x + w];
        __syncthreads();
    }
    if (threadIdx.x == 0) partials[0] = red[0];
}

extern "C" int adamw_cuda_scale_norm(float *g, int64_t n, float scale, double *partials,
                                     double *norm, cudaStream_t stream, SeerErr *err) {
    scale_sumsq_kernel<<<ADAMW_CUDA_PARTIALS, SCALE_THREADS, 0, stream>>>(g, n, scale, partials);
    sum_partials_kernel<<<1, SCALE_THREADS, 0, stream>>>(partials, ADAMW_CUDA_PARTIALS);
    double s = 0;
    cudaError_t e = cudaMemcpyAsync(&s, partials, sizeof s, cudaMemcpyDeviceToHost, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);
    if (e != cudaSuccess)
        return seer_fail(err, "step_cuda.cu: gradient scale + norm over %lld values: %s",
                         (long long)n, cudaGetErrorString(e));
    *norm = sqrt(s);
    return 0;
}

// One AdamW element update per thread (grid-stride); see adamw_cuda_step in step_cuda.h.
__global__ void adamw_kernel(float *p, float *m, float *v, const float *g, int64_t n, float coef,
                             float b1, float b2, float eps, float step, float bc2_sqrt,
                             float decay) {
    float one_b1 = __fsub_rn(1.0f, b1), one_b2 = __fsub_rn(1.0f, b2);
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        float gi = __fmul_rn(g[i], coef);
        float mi = __fadd_rn(__fmul_rn(b1, m[i]), __fmul_rn(one_b1, gi));
        float vi = __fadd_rn(__fmul_rn(b2, v[i]), __fmul_rn(__fmul_rn(one_b2, gi), gi));
        m[i] = mi;
        v[i] = vi;
        float den = __fadd_rn(__fdiv_rn(__fsqrt_rn(vi), bc2_sqrt), eps);
        p[i] = __fsub_rn(__fmul_rn(p[i], decay), __fdiv_rn(__fmul_rn(step, mi), den));
    }
}

extern "C" int adamw_cuda_step(float *p, float *m, float *v, const float *g, int64_t n,
                               float clip_coef, AdamWHyper hp, int64_t t, float lr,
                               cudaStream_t stream, SeerErr *err) {
    if (t < 1) return seer_fail(err, "step_cuda.cu: AdamW step count %lld must be >= 1", (long long)t);
    if (n <= 0) return 0;
    // The constants exactly as adamw_step (train/adamw.c) forms them.
    double bc1 = 1.0 - pow((double)hp.beta1, (double)t);
    double bc2 = 1.0 - pow((double)hp.beta2, (double)t);
    float step = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float decay = 1.0f - lr * hp.weight_decay;
    int64_t blocks = (n + 255) / 256;
    adamw_kernel<<<(int)(blocks < 4096 ? blocks : 4096), 256, 0, stream>>>(
        p, m, v, g, n, clip_coef, hp.beta1, hp.beta2, hp.eps, step, bc2_sqrt, decay);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "step_cuda.cu: adamw_kernel over %lld values: %s", (long long)n,
                         cudaGetErrorString(e));
    return 0;
}
