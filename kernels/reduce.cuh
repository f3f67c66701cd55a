// reduce.cuh: warp- and block-wide reductions shared by the CUDA kernels.
#pragma once

// Sum / max over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float x) {
    for (int o = 16; o; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}
__device__ __forceinline__ float warp_max(float x) {
    for (int o = 16; o; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

// Sum / max over all threads of the block (blockDim.x a multiple of 32, at most 1024);
// red: shared scratch [32]. Every thread gets the result. Contains __syncthreads: call it
// from every thread of the block.
__device__ __forceinline__ float block_sum(float x, float *red) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    x = warp_sum(x);
    __syncthreads();
    if (lane == 0) red[warp] = x;
    __syncthreads();
    float t = 0;
    for (int w = 0; w < nw; w++) t += red[w];
    return t;
}
__device__ __forceinline__ float block_max(float x, float *red) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    x = warp_max(x);
    __syncthreads();
    if (lane == 0) red[warp] = x;
    __syncthreads();
    float t = -INFINITY;
    for (int w = 0; w < nw; w++) t = fmaxf(t, red[w]);
    return t;
}
