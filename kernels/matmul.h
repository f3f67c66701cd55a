// matmul.h: the linear layer of the CPU reference, y = x W^T (+ b), with W in the Hugging Face
// [out, in] layout and any dtype (F32 / F16 / BF16, converted to fp32 on the fly), fp32 products
// and fp32 accumulation.
#pragma once
#include "common/tensor.h"

// y: [N, OUT]   x: [N, IN]   W: [OUT, IN] row-major, any dtype   b: [OUT] any dtype, or NULL /
// ndim 0 for no bias. y must not alias x. N = 0 or OUT = 0 does nothing; IN = 0 gives y = b (or 0).
// Work is split over tiles of 8 output rows (OpenMP); each W tile is converted once per 512-wide
// slice of IN into a small stack buffer and reused for all N rows of x. Every y element is summed
// by one thread in a fixed order, so results do not depend on the thread count.
void matmul_forward_cpu(float *y, const float *x, const Tensor *W, const Tensor *b, int N, int IN,
                        int OUT);
