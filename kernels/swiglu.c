// swiglu.c: see swiglu.h.
#include "kernels/swiglu.h"

#include <math.h>

void swiglu_forward_cpu(float *out, const float *gate, const float *up, int64_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (int64_t i = 0; i < n; i++) {
        float g = gate[i];
        out[i] = g / (1.0f + expf(-g)) * up[i];
    }
}
