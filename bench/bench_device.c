// bench_device.c: random device buffers shared by the GPU benchmarks (decode, select).
#ifdef SEER_CUDA
#include <cuda_runtime.h>

#include "bench/bench.h"
#include "common/cuda_check.h"

static uint32_t fill_rng = 2025;
static uint32_t fill_next(void) { return fill_rng = fill_rng * 1664525u + 1013904223u; }
static float fill_uniform(void) { return (float)(fill_next() >> 8) / 8388608.0f - 1.0f; }  // [-1, 1)

// Copies n elements of es bytes to dst from a 16M-element pattern (1024 elements of slack),
// each 16M-element piece from a random offset into it.
static void copy_pattern(void *dst, const void *pat, size_t n, size_t es) {
    const size_t np = 16u << 20;
    for (size_t off = 0; off < n; off += np) {
        size_t m = n - off < np ? n - off : np;
        CUDA_OK(cudaMemcpy((char *)dst + off * es, (const char *)pat + fill_next() % 1024 * es, m * es,
                           cudaMemcpyHostToDevice));
    }
}

void bench_fill_device(uint16_t *dst, size_t n, SeerDType t) {
    static uint16_t *pat[3];  // [16M + 1024] per dtype, made on first use
    if (!pat[t]) {
        pat[t] = xmalloc(((16u << 20) + 1024) * 2);
        for (size_t i = 0; i < (16u << 20) + 1024; i++) {
            float x = fill_uniform();
            pat[t][i] = t == SEER_F16 ? f32_to_f16(x) : f32_to_bf16(x);
        }
    }
    copy_pattern(dst, pat[t], n, 2);
}

void bench_fill_device_e4m3(uint8_t *dst, size_t n) {
    static uint8_t *pat;
    if (!pat) {
        pat = xmalloc((16u << 20) + 1024);
        for (size_t i = 0; i < (16u << 20) + 1024; i++) pat[i] = f32_to_e4m3(fill_uniform());
    }
    copy_pattern(dst, pat, n, 1);
}
#endif
