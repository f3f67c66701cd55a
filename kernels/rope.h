// rope.h: rotary position embedding, rotate-half convention (Hugging Face Llama / Qwen):
// for a head vector x of width HD and pair index i < HD/2, with a = pos * theta^(-2i/HD):
//   x'[i]        = x[i] * cos(a) - x[i + HD/2] * sin(a)
//   x'[i + HD/2] = x[i + HD/2] * cos(a) + x[i] * sin(a)
// The rotary dim is the whole head (HD for the model, DG for the gate). Positions restart at 0 at
// the start of every document of a packed chunk.
#pragma once

// pos[t] = position of token t inside its document. pos: [T], doc_lens: [n_docs] summing to T
// (the caller checks the sum; documents of length 0 are allowed and take no tokens).
void rope_positions(int *pos, const int *doc_lens, int n_docs);

// Angle tables for tokens at positions pos. cos_t, sin_t: [T, HD/2]; pos: [T]; HD even.
// Angles are computed in double and rounded once to fp32.
void rope_table_cpu(float *cos_t, float *sin_t, const int *pos, int T, int HD, float theta);

// Rotates x in place: x: [T, NH, HD] (NH heads per token), cos_t / sin_t from rope_table_cpu for
// the same T and HD.
void rope_apply_cpu(float *x, const float *cos_t, const float *sin_t, int T, int NH, int HD);

#ifdef SEER_CUDA
#include <stdint.h>
#include <cuda_runtime_api.h>

#include "common/common.h"

// CUDA twins (rope.cu); device pointers, asynchronous on stream, -1 (err names the launch and the
// shapes) when the launch fails.
// cos_t, sin_t: [T, HD/2] fp32 from pos: [T] (device), angles in double as rope_table_cpu.
int rope_table_cuda(float *cos_t, float *sin_t, const int *pos, int T, int HD, float theta,
                    cudaStream_t stream, SeerErr *err);
// Rotates bf16 heads in place: head h of token t at x[t*ld + h*HD] (e.g. inside a fused QKV buffer).
int rope_apply_cuda(uint16_t *x, int64_t ld, const float *cos_t, const float *sin_t, int T, int NH,
                    int HD, cudaStream_t stream, SeerErr *err);
#endif
