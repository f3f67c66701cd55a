// reduce.cuh: warp- and block-wide reductions shared by the CUDA kernels.
#pragma once

struct ReduceSum {
    static constexpr float identity = 0.0f;
    __device__ static float apply(float a, float b) { return a + b; }
};
struct ReduceMax {
    static constexpr float identity = -INFINITY;
    __device__ static float apply(float a, float b) { return fmaxf(a, b); }
};

// Op over the 32 lanes of a warp; every lane gets the result.
template <class Op>
__device__ __forceinline__ float warp_reduce(float x) {
    for (int o = 16; o; o >>= 1) x = Op::apply(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

// Op over all threads of the block (blockDim.x a multiple of 32, at most 1024); red: shared
// scratch [32]. Every thread gets the result. Contains __syncthreads: call it from every thread
// of the block.
template <class Op>
__device__ __forceinline__ float block_reduce(float x, float *red) {
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, nw = blockDim.x / 32;
    x = warp_reduce<Op>(x);
    __syncthreads();
    if (lane == 0) red[warp] = x;
    __syncthreads();
    float t = Op::identity;
    for (int w = 0; w < nw; w++) t = Op::apply(t, red[w]);
    return t;
}

__device__ __forceinline__ float warp_sum(float x) { return warp_reduce<ReduceSum>(x); }
__device__ __forceinline__ float warp_max(float x) { return warp_reduce<ReduceMax>(x); }
__device__ __forceinline__ float block_sum(float x, float *red) { return block_reduce<ReduceSum>(x, red); }
__device__ __forceinline__ float block_max(float x, float *red) { return block_reduce<ReduceMax>(x, red); }
