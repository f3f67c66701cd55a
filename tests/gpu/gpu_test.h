// gpu_test.h: helpers shared by the GPU-vs-CPU tests in tests/gpu/ (each test is its own binary).
#pragma once
#include <cuda_runtime.h>
#include <stdint.h>

#include "common/cuda_check.h"

static uint32_t gpu_test_rng = 4242;

// Uniform in [-1, 1) from a fixed LCG stream: reproducible inputs on every machine.
static inline float frand(void) {
    gpu_test_rng = gpu_test_rng * 1664525u + 1013904223u;
    return (float)(gpu_test_rng >> 8) / 8388608.0f - 1.0f;
}

// Device copy of n host bytes (zeroed device memory when h is NULL); at least 16 bytes are allocated.
static inline void *to_dev(const void *h, size_t n) {
    void *d = NULL;
    CUDA_OK(cudaMalloc(&d, n ? n : 16));
    if (h && n) CUDA_OK(cudaMemcpy(d, h, n, cudaMemcpyHostToDevice));
    else CUDA_OK(cudaMemset(d, 0, n ? n : 16));
    return d;
}
