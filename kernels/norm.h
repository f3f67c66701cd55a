// norm.h: RMSNorm, the normalisation of every Qwen / Llama layer (and of the gate's q/k branch).
#pragma once
#include "common/tensor.h"

// out[n, :] = x[n, :] / sqrt(mean(x[n, :]^2) + eps) * w, for each of the N rows of width D.
// out: [N, D]   x: [N, D]   w: [D] of any dtype (read with tensor_get; converted on the fly).
// out may equal x (in place). The mean of squares is accumulated in double. N = 0 does nothing.
void rmsnorm_forward_cpu(float *out, const float *x, const Tensor *w, int N, int D, float eps);
