// decode.h: split-KV GQA flash decoding, dense and block-sparse (SPEC.md section 4 step 4).
//
// One decode step: every sequence b has one query token (H heads) and cache_len[b] cached
// tokens. Query head h reads KV head h / G (G = H / HKV). The work is cut into programs
// (sequence, KV head, split); a program reads each of its K/V tiles (one 64-token block) once
// for all G query heads and writes a partial output + log-sum-exp; a combine step merges the
// splits. A split that saw no token writes lse = -inf and weighs nothing in the combine.
//
// Cache layout (docs/KERNELS.md): K, V: [B, HKV, Tmax, HD], any int64 strides with a unit
// stride along HD. Positions >= cache_len[b] are never read as data (the GPU loads zeros there),
// so the unused tail of the cache may hold anything, NaN included.
//
// Block-sparse: block_idx [B, HKV, max_sel] int32 lists, per (sequence, KV head), the 64-token
// blocks to attend, sorted strictly descending and padded with -1 (the release's layout). The
// work is split over the selected blocks, not over all blocks. Tokens past cache_len[b] inside a
// selected (partial, current) block are masked.
#pragma once
#include <stdint.h>

#include "common/common.h"
#include "common/tensor.h"

typedef struct {
    const void *q;             // [B, H, HD] post-RoPE query of the current token (dtype)
    const void *k;             // [B, HKV, Tmax, HD] post-RoPE keys (dtype)
    const void *v;             // [B, HKV, Tmax, HD] values (dtype)
    void *out;                 // [B, H, HD] attention output (dtype)
    const int32_t *cache_len;  // [B] valid tokens per sequence, 0 <= len <= Tmax
    const int32_t *block_idx;  // [B, HKV, max_sel] selected blocks; NULL = dense
    float *o_part;             // [B, H, n_split, HD] workspace: per-split normalised outputs
    float *lse_part;           // [B, H, n_split] workspace: per-split natural-log LSE
    int32_t *sem;              // [B, HKV] GPU split counters (n_split > 1): zeroed once before the
                               // first launch; every launch leaves them zero. Unused on the CPU.
    int32_t *list_ready;       // [B, HKV] GPU, sparse, or NULL: the ready flags of the lists, set by
                               // the select_gate_cuda call that wrote block_idx just before this
                               // launch on the stream (its `ready`). Each program then waits for
                               // its own list's flag instead of the whole selection grid (reading
                               // q, k, v and cache_len before it, and split 0 its guess at the
                               // first tile, the current block), and the pair's last program
                               // clears it. Zeroed once before the first launch. Unused on the CPU.
    int32_t *queue;            // [2] GPU, or NULL: the work queue's counters (units claimed, programs
                               // finished). Non-NULL launches n_prog persistent programs that claim
                               // the (split, KV head, sequence) units in order and stream each next
                               // unit's tiles behind the current one's (decode.cu). Zeroed once
                               // before the first launch; every launch leaves them zero. CPU: unused.
    int n_prog;                // queue: persistent programs, 0 = one per SM (at most the units)
    int64_t q_sb, q_sh;        // strides in elements (unit stride along HD everywhere)
    int64_t k_sb, k_sh, k_st;
    int64_t v_sb, v_sh, v_st;
    int64_t o_sb, o_sh;
    int64_t idx_sb, idx_sh;    // block_idx strides (unit stride along max_sel)
    int B, H, HKV, HD, Tmax;
    int max_sel;               // entries per block list (0 when dense)
    int n_split;               // splits per (sequence, KV head), >= 1
    int pdl;                   // GPU: 1 = launch with programmatic dependent launch (the kernel may
                               // start while the previous kernel on the stream finishes, and waits
                               // for it with griddepcontrol.wait before reading any input); 0 = plain
    float scale;               // softmax scale, normally 1/sqrt(HD)
    SeerDType dtype;           // of q, k, v, out: SEER_BF16 or SEER_F16 (CPU also SEER_F32)
} DecodeParams;

// Fills a DecodeParams for contiguous q/out [B, H, HD], K/V [B, HKV, Tmax, HD] and block_idx
// [B, HKV, max_sel] (block_idx may be NULL: dense, max_sel ignored). scale = 1/sqrt(HD),
// n_split = 1, workspace pointers NULL: the caller sets n_split, o_part and lse_part.
DecodeParams decode_params_contiguous(const void *q, const void *k, const void *v, void *out,
                                      const int32_t *cache_len, const int32_t *block_idx,
                                      int B, int H, int HKV, int HD, int Tmax, int max_sel,
                                      SeerDType dtype);

// Number of splits per (sequence, KV head): the smallest count whose wave efficiency
// (programs / (waves * slots)) reaches 0.95, or else the most efficient count, each split keeping
// at least min_tiles tiles (64-token blocks), at most max_splits. pairs = B * HKV; tiles = the
// largest tile count of one pair (blocks of the longest cache, or selected blocks); slots =
// n_sm * ctas_per_sm. Edge cases: pairs, tiles or slots <= 0 give 1.
//
// Worked example (H100/H200: 132 SMs; the GPU launcher asks for one program per SM, 132 slots;
// min_tiles 4, max_splits 64):
//   batch 16, 8 KV heads, 32k cache: pairs 128, tiles 512. 1 split fills 128/132 = 0.97 of one
//   wave: 1 (128 programs, 512 tiles each, no merge).
//   batch 1, 8 KV heads, 8k cache: pairs 8, tiles 128: 16 splits fill 128/132 = 0.97, 8 tiles
//   each. With 2 programs per SM (264 slots) the same inputs give 2 and 32 splits. One pair of a
//   1M-token cache never reaches 0.95: the best count, 64 (capped).
int decode_num_splits(int pairs, int tiles, int n_sm, int ctas_per_sm, int min_tiles,
                      int max_splits);

#ifdef __CUDACC__
#define DECODE_HOST_DEVICE __host__ __device__
#else
#define DECODE_HOST_DEVICE
#endif

// Tiles [*t0, *t1) of split s when n_tiles tiles are cut into n_split balanced splits
// (sizes differ by at most one; a split is empty when n_tiles < n_split).
DECODE_HOST_DEVICE static inline void decode_split_range(int n_tiles, int n_split, int s, int *t0, int *t1) {
    *t0 = (int)((int64_t)s * n_tiles / n_split);
    *t1 = (int)((int64_t)(s + 1) * n_tiles / n_split);
}

// Splits per (sequence, KV head) for the queue kernel: units of about tiles_per_unit tiles, so
// ceil(max_tiles / tiles_per_unit), at least 1, at most 64 (the combine's workspace bound).
int decode_queue_splits(int max_tiles, int tiles_per_unit);

// Number of tiles of pair (b, kvh): ceil(len / 64) dense, the count of non-negative entries of
// the block list when sparse. cache_len and block_idx must be host pointers here.
int decode_pair_tiles(const DecodeParams *p, int b, int kvh);

// Host-side validation of a launch: dimensions positive, H a multiple of HKV, dtype supported,
// n_split >= 1, workspace present when n_split > 1 (always on the CPU path), strides not smaller
// than the rows they step over, every cache_len in [0, Tmax], and, when sparse, every list
// strictly descending, each entry in [0, ceil(cache_len/64)) or -1, and -1 only as padding at
// the end. cache_len_host / block_idx_host are host copies of p->cache_len / p->block_idx
// (block_idx_host NULL when dense). Returns 0, or -1 with one line in err naming the bad entry.
int decode_validate(const DecodeParams *p, const int32_t *cache_len_host,
                    const int32_t *block_idx_host, SeerErr *err);

// CPU reference of the split step: writes o_part and lse_part for every (b, h, split) exactly as
// the GPU does (fp32 math on the dtype's values). Pointers are host pointers; input validated.
void decode_split_cpu(const DecodeParams *p);

// CPU reference of the combine step: out[b, h] = sum_s w_s o_part[b, h, s] with w_s =
// exp(lse_s - max lse) / sum; all splits empty (every lse -inf) gives 0.
void decode_combine_cpu(const DecodeParams *p);

// decode_split_cpu then decode_combine_cpu (needs the workspace even for one split).
void decode_attention_cpu(const DecodeParams *p);

// Naive reference: softmax over every token t < cache_len[b] whose block is selected (all when
// dense), in double, no splits. out_f32: [B, H, HD]. Rows with no allowed token are 0.
void decode_reference_cpu(float *out_f32, const DecodeParams *p);

#ifdef SEER_CUDA
// decode_num_splits with the current device's SM count and one program per SM (measured faster
// than filling both of an SM's program slots: see decode.cu).
int decode_pick_splits_cuda(int B, int HKV, int max_tiles);

// Runs the GPU kernel on `stream` (a cudaStream_t, NULL = default): one launch; with n_split > 1
// the last program of each (sequence, KV head) to finish merges the splits (counted in p->sem).
// p->pdl = 1 launches it as a programmatic dependent of the previous kernel on the stream (for
// example the selection kernel that writes block_idx): no input is read before that kernel has
// finished (with p->list_ready: no list before its flag is set; the other inputs as soon as the
// program starts, when every kernel before the selection has finished), and the kernel itself
// lets the next one launch when its main loop is done.
// All pointers are device pointers. The GPU kernel needs HD = 128, G <= 16, dtype BF16 or F16,
// 16-byte aligned q/k/v rows, 8-byte aligned out rows, a 16-byte aligned o_part and the sem
// counters when n_split > 1, max_sel <= 16384 (8192 with the queue, which also refuses
// list_ready); anything else returns -1 with a message.
// The input is trusted (call decode_validate on host copies first: the bench always does).
int decode_attention_cuda(const DecodeParams *p, void *stream, SeerErr *err);
#endif
