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

// The current device as one bit (devices 0..63; 0 when it cannot be told), for setup that the
// runtime applies per device, such as cudaFuncSetAttribute:
//   static uint64_t done;  const uint64_t dev = cuda_device_bit();
//   if (!(done & dev)) { ...set up...; done |= dev; }
static inline uint64_t cuda_device_bit(void) {
    int d = 0;
    return cudaGetDevice(&d) == cudaSuccess && d >= 0 && d < 64 ? 1ull << d : 0;
}

// The current device's properties; with no usable device, -1 and "<who>: no usable CUDA device
// (<the runtime's reason>)" in err, so a command on a machine without a GPU says so in one line.
static inline int cuda_current_device(struct cudaDeviceProp *prop, const char *who, SeerErr *err) {
    int n = 0, dev = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaSuccess && n == 0) return seer_fail(err, "%s: no usable CUDA device (0 devices)", who);
    if (e == cudaSuccess) e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaGetDeviceProperties(prop, dev);
    if (e != cudaSuccess) return seer_fail(err, "%s: no usable CUDA device (%s)", who, cudaGetErrorString(e));
    return 0;
}

// A cudaLaunchKernelEx configuration on `stream`; with pdl = 1 the kernel is launched as a
// programmatic dependent of the kernel before it (it may start before that one ends and must
// griddepcontrol.wait before reading its output). attr: storage for the attribute, alive until
// the launch.
static inline cudaLaunchConfig_t launch_config(dim3 grid, dim3 block, size_t smem, void *stream, int pdl,
                                               cudaLaunchAttribute *attr) {
    attr->id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr->val.programmaticStreamSerializationAllowed = 1;
    cudaLaunchConfig_t cfg = {0};
    cfg.gridDim = grid, cfg.blockDim = block, cfg.dynamicSmemBytes = smem;
    cfg.stream = (cudaStream_t)stream;
    cfg.attrs = attr, cfg.numAttrs = pdl ? 1 : 0;
    return cfg;
}
