// gather_floor.h: the gather floor of a block-sparse decode call (`seer bench decode --floor 1`).
//
// A read-only kernel that loads exactly the bytes the block-sparse decode kernel (decode.h) loads
// from the cache for the same DecodeParams: the rows t < cache_len[b] of every selected 64-token
// block of K and of V, [64, HD] each, and every entry of the block lists [B, HKV, max_sel] (-1
// padding included), once each. It does no math: it XOR-folds the loaded 16-byte words, so its
// time is the ceiling on how fast any one-launch kernel reading those bytes can be. (The decode
// kernel also reads Q and writes the output: G * HD elements each per pair, not counted here.)
//
// The fold, defined per pair so that any thread mapping gives the same bits:
//   sink[b, kvh] (4 x 32-bit words, one 16-byte word) = XOR over the selected blocks j of the
//   pair's list, the rows t of block j with t < cache_len[b] and the 16-byte chunks c of the row
//   (HD * 2 / 16 of them) of K[b, kvh, t, 8c .. 8c+7] and of V[b, kvh, t, 8c .. 8c+7] as 4
//   little-endian 32-bit words; then word 0 ^= every list entry i in [0, max_sel) as its 32-bit
//   pattern.
#pragma once
#include <stdint.h>

#include "common/common.h"
#include "kernels/decode.h"

// The fold above on the CPU: sink [B, HKV, 4]. p is a sparse DecodeParams (block_idx set) of
// host pointers, 16-bit dtype, HD a multiple of 8, input as decode_validate accepts it.
void gather_floor_cpu(uint32_t *sink, const DecodeParams *p);

#ifdef SEER_CUDA
// Runs the gather kernel on `stream` (a cudaStream_t, NULL = default) for the sparse DecodeParams
// p (device pointers; its q, out, workspace, n_split and scale are ignored; p->pdl as for the
// decode kernel). XORs each pair's fold into sink [B, HKV, 4] (device memory): zero it first to
// read the fold (a second launch on the same inputs brings it back to zero). Grid: one program of
// 256 threads per (2 list slots, KV head, sequence), 16 loads of 16 bytes in flight per thread.
// Needs what decode_attention_cuda needs (HD 128, BF16 or F16, 16-byte aligned rows, max_sel in
// [1, 16384]) and a block list; anything else returns -1 with a message. Input trusted.
int gather_floor_cuda(const DecodeParams *p, uint32_t *sink, void *stream, SeerErr *err);
#endif
