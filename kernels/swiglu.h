// swiglu.h: the gated MLP activation of Qwen / Llama: silu(gate) * up.
#pragma once
#include <stdint.h>

// out[i] = gate[i] / (1 + exp(-gate[i])) * up[i] for i < n.
// out, gate, up: [n] (e.g. [T, F] flattened). out may equal gate or up. n = 0 does nothing.
// Large negative gates give -0 * up, never NaN (exp overflow to inf divides to 0).
void swiglu_forward_cpu(float *out, const float *gate, const float *up, int64_t n);
