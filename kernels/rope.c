// rope.c: see rope.h.
#include "kernels/rope.h"

#include <math.h>
#include <stddef.h>

void rope_positions(int *pos, const int *doc_lens, int n_docs) {
    int t = 0;
    for (int d = 0; d < n_docs; d++)
        for (int p = 0; p < doc_lens[d]; p++) pos[t++] = p;
}

void rope_table_cpu(float *cos_t, float *sin_t, const int *pos, int T, int HD, float theta) {
    int half = HD / 2;
#pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < T; t++) {
        for (int i = 0; i < half; i++) {
            double inv_freq = pow((double)theta, -2.0 * i / HD);
            double a = pos[t] * inv_freq;
            cos_t[(size_t)t * half + i] = (float)cos(a);
            sin_t[(size_t)t * half + i] = (float)sin(a);
        }
    }
}

void rope_apply_cpu(float *x, const float *cos_t, const float *sin_t, int T, int NH, int HD) {
    int half = HD / 2;
#pragma omp parallel for schedule(static) if (T > 64)
    for (int t = 0; t < T; t++) {
        const float *c = cos_t + (size_t)t * half, *s = sin_t + (size_t)t * half;
        for (int h = 0; h < NH; h++) {
            float *v = x + ((size_t)t * NH + h) * HD;
            for (int i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * c[i] - b * s[i];
                v[i + half] = b * c[i] + a * s[i];
            }
        }
    }
}
