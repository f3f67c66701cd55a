// select.h: block selection at decode time (SPEC.md section 4): the gate's K-compression cache,
// gate scores + top-k / threshold, the oracle (true attention block max) and Quest. Every policy
// writes block lists [B, HKV, max_sel] int32, sorted strictly descending and padded with -1,
// which the block-sparse kernel of decode.h consumes. CPU references here (fp32 inputs), CUDA
// twins in select.cu (caches and activations in the KV cache's dtype, gate linear weights bf16,
// norm weights fp32).
//
// Blocks: b's cache holds len = cache_len[b] tokens, the current token at position len - 1 in
// block cur = (len - 1) / 64; blocks j < len / 64 are completed (the gate's candidates).
#pragma once
#include <stdint.h>

#include "common/common.h"
#include "common/tensor.h"

typedef struct {
    int B, HKV, G, HD, DG;
    int nb_max;       // per (b, kvh) capacity of the block caches and score rows: ceil(Tmax / 64)
    int max_sel;      // entries per output list
    int budget;       // tokens: gate/oracle keep budget/64 blocks, Quest max(3, budget/64) pages;
                      // 0 selects by threshold instead
    float threshold;  // probability threshold (budget == 0)
    float rope_theta; // the model's rope_theta
    int rope_last;    // 1: RoPE the K-compression vector of block j at j*64+63 (the release's
                      // decode quirk); 0 (default): at j*64
    int kcomp_fp8;    // 1: the K-compression cache is stored as fp8 E4M3 (half the bytes the
                      // selection reads); 0 (default): in the KV cache's dtype
} SelectConfig;

typedef enum { SELECT_GATE = 0, SELECT_ORACLE = 1, SELECT_QUEST = 2 } SelectPolicy;

// Entries a list may need under this policy and config: gate top-k: min(nb_max, k + 2) (block 0
// and the current block are added); oracle top-k: min(nb_max, k); Quest: min(nb_max, G * kq);
// threshold modes: nb_max.
int select_needed_max_sel(const SelectConfig *c, SelectPolicy policy);

// Checks dimensions (positive, DG even), budget >= 0 (>= 64 for gate/oracle top-k, > 0 for
// Quest), threshold in [0, 1) when budget is 0, and max_sel >= select_needed_max_sel. Returns 0, or -1 with one line in err.
int select_validate_config(const SelectConfig *c, SelectPolicy policy, SeerErr *err);

// In-place rotate-half RoPE of x [DG] at position pos: pairs (i, i + DG/2) rotated by
// pos * theta^(-2i/DG) (angle formed in fp32 as Hugging Face does).
void select_rope_cpu(float *x, int DG, int pos, float theta);

// One K-compression vector: kg [DG] = RoPE(rmsnorm(concat(max, min, mean of keys[0..n-1]) @ wk)
// * knorm, pos). keys: [n, HD] pre-RoPE post-norm keys (n >= 1), wk: [3*HD, DG], knorm: [DG].
void select_kcomp_cpu(float *kg, const float *keys, int n, int HD, int DG, const float *wk,
                      const float *knorm, int pos, float theta);

// K-compression cache update when blocks complete: for each b with block[b] >= 0, every KV
// head's kcomp[b, kvh, block[b]] is rebuilt from the 64 staged keys kraw[b, kvh] (rounded to
// E4M3 values when c->kcomp_fp8). block[b] = -1 leaves b alone. kcomp: [B, HKV, nb_max, DG]; kraw: [B, HKV, 64, HD] (pre-RoPE, post-norm);
// wk: [HKV, 3*HD, DG]; knorm: [DG].
void select_kcomp_update_cpu(float *kcomp, const float *kraw, const int32_t *block,
                             const float *wk, const float *knorm, const SelectConfig *c);

// Gate query of one group: qg [DG] = RoPE(rmsnorm(q @ wq) * qnorm, pos); q: [G*HD] (the group's
// pre-RoPE heads back to back), wq: [G*HD, DG], qnorm: [DG].
void select_gate_query_cpu(float *qg, const float *q, int G, int HD, int DG, const float *wq,
                           const float *qnorm, int pos, float theta);

// Picks blocks from per-block keys key[0..n_cand-1] into list [max_sel] (descending, -1
// padded): the k highest keys (ties: lower index first; every candidate when n_cand <= k) when
// k > 0, else every key > threshold; then adds force_a and force_b when >= 0. Returns the number
// of entries (if it exceeds max_sel the lowest block indices are dropped).
int select_blocks_cpu(int32_t *list, int max_sel, const float *key, int n_cand, int k,
                      float threshold, int force_a, int force_b);

// Gate selection for every (b, kvh): scores s_j = qg . kcomp[b, kvh, j] / sqrt(DG) over the
// completed blocks, softmax; top budget/64 by score, or probability > threshold; block 0 and the
// current block always added. q_nope: [B, H, HD] pre-RoPE queries of the current tokens;
// kcomp: [B, HKV, nb_max, DG]; wq: [HKV, G*HD, DG]; qnorm: [DG]; idx: [B, HKV, max_sel];
// probs: [B, HKV, nb_max] softmax over the candidates (others 0) or NULL. len 0 gives an empty
// list; len <= 64 gives just block 0.
void select_gate_cpu(int32_t *idx, float *probs, const float *q_nope, const float *kcomp,
                     const int32_t *cache_len, const float *wq, const float *qnorm,
                     const SelectConfig *c);

// Oracle: per query head the block max of the exact softmax over all len tokens (scale
// 1/sqrt(HD), current block included), max over the group, normalised over blocks to sum 1;
// top budget/64 blocks or those above threshold, nothing forced. q: [B, H, HD] post-RoPE;
// k: [B, HKV, Tmax, HD] post-RoPE; idx: [B, HKV, max_sel].
void select_oracle_cpu(int32_t *idx, const float *q, const float *k, int Tmax,
                       const int32_t *cache_len, const SelectConfig *c);

// Quest page metadata after appending one token per sequence: page p = (len - 1) / 64 of every
// (b, kvh) takes k_new as its first token (len - 1 a multiple of 64) or folds it into the
// elementwise max / min. kmax, kmin: [B, HKV, nb_max, HD]; k_new: [B, HKV, HD] post-RoPE;
// cache_len: lengths after the append (>= 1).
void select_quest_update_cpu(float *kmax, float *kmin, const float *k_new,
                             const int32_t *cache_len, const SelectConfig *c);

// Quest: per query head h, page scores sum_c max(q_c kmax_c, q_c kmin_c) over the ceil(len/64)
// pages (the current partial page competes like any other), the top max(3, budget/64) pages
// (ties: lower page first; every page when there are fewer), and the union over the group's G
// heads as the KV head's list (the kernel's lists are per KV head). q: [B, H, HD] post-RoPE.
void select_quest_cpu(int32_t *idx, const float *q, const float *kmax, const float *kmin,
                      const int32_t *cache_len, const SelectConfig *c);

#ifdef SEER_CUDA
// GPU twins. Device pointers; dtype (BF16 or F16) is that of q, kcomp (unless c->kcomp_fp8:
// then E4M3 bytes), kraw, k, kmax/kmin.
// Linear weights wq/wk are bf16 bit patterns, norm weights fp32. The GPU kernels need
// HD = DG = 128, G <= 16, nb_max <= 4096; otherwise -1 with a message. Input is trusted
// (select_validate_config on the host first). stream: a cudaStream_t or NULL.
int select_kcomp_update_cuda(void *kcomp, const void *kraw, const int32_t *block,
                             const uint16_t *wk, const float *knorm, SeerDType dtype,
                             const SelectConfig *c, void *stream, SeerErr *err);
// Gate query projection + norm + RoPE, scores, top-k / threshold, forced blocks, list: two
// launches on `stream` (the projection, a programmatic dependent of the kernel before it that
// loads its weights before griddepcontrol.wait, then the selection as its programmatic dependent,
// which starts reading the K-compression cache once every kernel before the projection is done). The selection kernel
// executes griddepcontrol.launch_dependents early, so a following kernel launched with
// programmatic dependent launch (DecodeParams.pdl) starts as soon as SMs free up; it must
// griddepcontrol.wait before reading idx, or, given ready ([B, HKV] int32, zeroed once before the
// first call; NULL: no flags), wait for its list's flag: program (b, kvh) sets ready[b, kvh] to 1
// (a gpu-scope release) once its list is written, and a sparse decode given the same array as
// DecodeParams.list_ready waits for that flag only and clears it. ws: select_gate_ws_bytes(c) of
// device memory holding the partial query projections between the two launches (allocated by
// the caller).
size_t select_gate_ws_bytes(const SelectConfig *c);
int select_gate_cuda(int32_t *idx, int32_t *ready, float *ws, const void *q_nope, const void *kcomp,
                     const int32_t *cache_len, const uint16_t *wq, const float *qnorm,
                     SeerDType dtype, const SelectConfig *c, void *stream, SeerErr *err);
// ws: [B, HKV, G, nb_max, 2] fp32 workspace (per-block max logit and sum of exp).
int select_oracle_cuda(int32_t *idx, float *ws, const void *q, const void *k, int Tmax,
                       const int32_t *cache_len, SeerDType dtype, const SelectConfig *c,
                       void *stream, SeerErr *err);
int select_quest_update_cuda(void *kmax, void *kmin, const void *k_new,
                             const int32_t *cache_len, SeerDType dtype, const SelectConfig *c,
                             void *stream, SeerErr *err);
int select_quest_cuda(int32_t *idx, const void *q, const void *kmax, const void *kmin,
                      const int32_t *cache_len, SeerDType dtype, const SelectConfig *c,
                      void *stream, SeerErr *err);
#endif
