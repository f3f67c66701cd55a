// matmul.c: see matmul.h.
#include "kernels/matmul.h"

#include <stddef.h>
#include <string.h>

enum { MM_OT = 8, MM_KC = 512, MM_NR = 4 };  // output rows per tile, IN columns per slice, x rows per pass

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

// yr[o] += xr . wt[o] over nk columns, for o < no.
static void matmul_row(float *yr, const float *xr, const float wt[MM_OT][MM_KC], int no, int nk) {
    for (int o = 0; o < no; o++) {
        const float *wr = wt[o];
        float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
        for (int k = 0; k < nk; k++) acc += xr[k] * wr[k];
        yr[o] += acc;
    }
}

// matmul_row for MM_NR = 4 consecutive rows of x (stride ldx) and y (stride ldy): each weight
// element is loaded once for the four rows; every sum runs in the same order as matmul_row's.
static void matmul_rows4(float *y, int ldy, const float *x, int ldx, const float wt[MM_OT][MM_KC], int no, int nk) {
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * (size_t)ldx, *x3 = x + 3 * (size_t)ldx;
    for (int o = 0; o < no; o++) {
        const float *wr = wt[o];
        float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
#pragma omp simd reduction(+ : a0, a1, a2, a3)
        for (int k = 0; k < nk; k++) {
            const float w = wr[k];
            a0 += x0[k] * w, a1 += x1[k] * w, a2 += x2[k] * w, a3 += x3[k] * w;
        }
        y[o] += a0, y[ldy + o] += a1, y[2 * (size_t)ldy + o] += a2, y[3 * (size_t)ldy + o] += a3;
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
            for (int n = 0; n < N; n += MM_NR) {
                if (N - n >= MM_NR) matmul_rows4(y + (size_t)n * OUT + o0, OUT, x + (size_t)n * IN + k0, IN, wt, no, nk);
                else
                    for (int r = n; r < N; r++) matmul_row(y + (size_t)r * OUT + o0, x + (size_t)r * IN + k0, wt, no, nk);
            }
        }
    }
}
