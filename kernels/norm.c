// norm.c: see norm.h.
#include "kernels/norm.h"

#include <math.h>

void rmsnorm_forward_cpu(float *out, const float *x, const Tensor *w, int N, int D, float eps) {
#pragma omp parallel for schedule(static) if (N > 16)
    for (int n = 0; n < N; n++) {
        const float *xr = x + (size_t)n * D;
        float *o = out + (size_t)n * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float inv = (float)(1.0 / sqrt(ss / D + eps));
        for (int i = 0; i < D; i++) o[i] = xr[i] * inv * tensor_get(w, i);
    }
}
