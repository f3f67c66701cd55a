// cuda_check.h: CUDA error checks that name the failing statement and where it is.
//
//   CUDA_TRY(cudaMalloc(&p, n));   // in a function returning int with `SeerErr *err` in scope:
//                                  // returns -1 with "file.cu:42: cudaMalloc(&p, n): out of memory"
//   CUDA_OK(cudaMemcpy(...));      // in tests and benches: prints that line and exits 1
#pragma once
#include <cuda_runtime_api.h>

#include "common/common.h"

#define CUDA_TRY(call)                                                                        \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess)                                                                \
            return seer_fail(err, "%s:%d: %s: %s", __FILE__, __LINE__, #call,                 \
                             cudaGetErrorString(e_));                                         \
    } while (0)

#define CUDA_OK(call)                                                                         \
    do {                                                                                      \
        cudaError_t e_ = (call);                                                              \
        if (e_ != cudaSuccess)                                                                \
            seer_die("%s:%d: %s: %s", __FILE__, __LINE__, #call, cudaGetErrorString(e_));    \
    } while (0)
