// bench_device.c: random device buffers shared by the GPU benchmarks (decode, select).
#ifdef SEER_CUDA
#include <cuda_runtime.h>

#include "bench/bench.h"
#include "common/cuda_check.h"

static uint32_t fill_rng = 2025;
static uint32_t fill_next(void) { return fill_rng = fill_rng * 1664525u + 1013904223u; }

void bench_fill_device(uint16_t *dst, size_t n, SeerDType t) {
    static uint16_t *pat[3];  // [np + 1024] per dtype, made on first use
    const size_t np = 16u << 20;
    if (!pat[t]) {
        pat[t] = xmalloc((np + 1024) * 2);
        for (size_t i = 0; i < np + 1024; i++) {
            float x = (float)(fill_next() >> 8) / 8388608.0f - 1.0f;
            pat[t][i] = t == SEER_F16 ? f32_to_f16(x) : f32_to_bf16(x);
        }
    }
    for (size_t off = 0; off < n; off += np) {
        size_t m = n - off < np ? n - off : np;
        CUDA_OK(cudaMemcpy(dst + off, pat[t] + fill_next() % 1024, m * 2, cudaMemcpyHostToDevice));
    }
}
#endif
