// matmul.c: see matmul.h.
#include "kernels/matmul.h"

#include <stddef.h>
#include <string.h>

enum { MM_OT = 8, MM_KC = 512 };  // output rows per tile, IN columns per slice

// wt[o][k] = W[o0 + o, k0 + k] as fp32, for o < no, k < nk (one dtype branch per tile).
static void matmul_load_tile(float wt[MM_OT][MM_KC], const Tensor *W, int IN, int o0, int no,
                             int k0, int nk) {
    for (int o = 0; o < no; o++) {
        size_t base = (size_t)(o0 + o) * IN + k0;
        const uint16_t *h = (const uint16_t *)W->data + base;
        switch (W->dtype) {
        case SEER_F32: memcpy(wt[o], (const float *)W->data + base, (size_t)nk * 4); break;
        case SEER_F16: for (int k = 0; k < nk; k++) wt[o][k] = f16_to_f32(h[k]); break;
        default: for (int k = 0; k < nk; k++) wt[o][k] = bf16_to_f32(h[k]); break;
        }
    }
}

void matmul_forward_cpu(float *y, const float *x, const Tensor *W, const Tensor *b, int N, int IN,
                        int OUT) {
    int has_bias = b && b->ndim > 0;
    int n_tiles = (OUT + MM_OT - 1) / MM_OT;
#pragma omp parallel for schedule(static)
    for (int tile = 0; tile < n_tiles; tile++) {
        float wt[MM_OT][MM_KC];
        int o0 = tile * MM_OT, no = OUT - o0 < MM_OT ? OUT - o0 : MM_OT;
        for (int n = 0; n < N; n++)
            for (int o = 0; o < no; o++)
                y[(size_t)n * OUT + o0 + o] = has_bias ? tensor_get(b, o0 + o) : 0.0f;
        for (int k0 = 0; k0 < IN; k0 += MM_KC) {
            int nk = IN - k0 < MM_KC ? IN - k0 : MM_KC;
            matmul_load_tile(wt, W, IN, o0, no, k0, nk);
            for (int n = 0; n < N; n++) {
                const float *xr = x + (size_t)n * IN + k0;
                float *yr = y + (size_t)n * OUT + o0;
                for (int o = 0; o < no; o++) {
                    const float *wr = wt[o];
                    float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
                    for (int k = 0; k < nk; k++) acc += xr[k] * wr[k];
                    yr[o] += acc;
                }
            }
        }
    }
}
