// engine.h: the CPU decode engine of `seer eval` (SPEC.md section 4): one sequence, dense prefill,
// then token-by-token decode where every layer attends only to the key blocks its selection
// policy picks.
//
//   prefill (forward_cpu, dense) --> per layer: K cache (post-RoPE), V cache,
//                                    gate K-compression cache (one vector per completed block)
//                                    + staged pre-RoPE keys of the open block,
//                                    Quest page max / min of post-RoPE K
//   step(token): per layer: rmsnorm, q/k/v, q/k-norm, RoPE, append K/V (a block that completes
//                is pooled into the K-compression cache), select blocks, block-sparse attention
//                (kernels/decode.h), o_proj, MLP --> logits
//
// Policies (one per engine; layers < dense_layers always dense):
//   dense   every block
//   gate    gate scores of the completed blocks (kernels/select.h), top budget/64 or probability
//           > threshold; shared by the G heads of a group
//   oracle  block max of the exact softmax, max over the group's heads (current block included
//           as a candidate), top budget/64 or mass > threshold; shared by the group
//   quest   per query head (no GQA sharing): page score sum_c max(q_c kmax_c, q_c kmin_c), top
//           max(3, budget/64) pages
// and every policy then adds block 0 and the current block (the one holding the new token).
// Lists are kept per query head [H, NB] (descending, -1 padded) so that Quest's per-head choice
// is exact; for gate / oracle the G heads of a group hold the same list.
//
// Sparsity of a layer = 1 - (selected blocks) / (valid blocks), both summed over decode steps
// and query heads (valid = ceil(len / 64) with len the cache length including the new token).
#pragma once
#include <stdint.h>

#include "common/common.h"
#include "model/model.h"
#include "train/gate.h"

typedef enum { ENGINE_DENSE = 0, ENGINE_GATE = 1, ENGINE_ORACLE = 2, ENGINE_QUEST = 3 } EngineMethod;

typedef struct {
    EngineMethod method;
    int budget;        // tokens (gate/oracle keep budget/64 blocks, Quest max(3, budget/64));
                       // 0 selects by threshold (gate and oracle only)
    float threshold;   // probability threshold when budget is 0, in [0, 1)
    int dense_layers;  // the first dense_layers layers attend densely whatever the method
    int rope_last;     // gate: RoPE a block's K-compression vector at j*64+63 (the release's
                       // decode quirk) instead of j*64
    int kcomp_fp8;     // gate: K-compression vectors rounded to fp8 E4M3 values, as the GPU's
                       // optional E4M3 cache stores them (SelectConfig.kcomp_fp8)
} EnginePolicy;

typedef struct Engine Engine;

// Parses "dense", "gate", "oracle" or "quest"; -1 with err otherwise.
int engine_parse_method(const char *s, EngineMethod *out, SeerErr *err);
const char *engine_method_name(EngineMethod m);

// Makes an engine for sequences of at most Tmax tokens (prompt + generated). gates: [L,
// gate_param_count(gs)] fp32 (gate_load_dir), needed only by ENGINE_GATE (may be NULL
// otherwise); the engine keeps pointers to m and gates, which must outlive it. Fails (-1, err)
// when Tmax < 1, the method needs gates that are missing or whose shape (L, HKV, G = H/HKV, HD)
// does not match the model, the budget / threshold are invalid for the method (see
// select_validate_config), or dense_layers < 0.
int engine_create(Engine **out, const Model *m, const float *gates, int gates_L, GateShape gs,
                  EnginePolicy pol, int Tmax, SeerErr *err);
void engine_free(Engine *e);

// Resets the caches (and keeps the sparsity counters) and runs the dense prefill of ids [n];
// logits: [V], the next-token logits after the last prompt token. -1 with err when n < 1, n >
// Tmax, or an id is outside the vocabulary.
int engine_prefill(Engine *e, const int *ids, int n, float *logits, SeerErr *err);

// Appends one token at position len (the current length) and writes the next-token logits [V].
// -1 with err when no prefill came first, the cache is full (len == Tmax), or id is invalid.
int engine_step(Engine *e, int id, float *logits, SeerErr *err);

// Tokens in the cache (prompt + steps so far).
int engine_len(const Engine *e);

// Block lists of layer l from the last step: [H, nb_cap] int32 per query head, descending, -1
// padded; NULL before the first step or for a dense layer. *nb_cap gets the row length.
const int32_t *engine_block_lists(const Engine *e, int l, int *nb_cap);

// Sparsity so far (see above): returns the overall figure (selected over valid blocks summed over
// every layer) and, when per_layer [L] is not NULL, each layer's (0 for a layer without a decode step).
double engine_sparsity(const Engine *e, double *per_layer);
// The counters behind it: sel, valid [L] selected and valid blocks summed so far.
void engine_block_counts(const Engine *e, double *sel, double *valid);
// Sparsity from such counters: per_layer [L] = 1 - sel / valid (0 where valid is 0); returns the
// overall figure, 1 - sum(sel) / sum(valid).
double engine_sparsity_from(const double *sel, const double *valid, int L, double *per_layer);
// Clears the sparsity counters.
void engine_reset_stats(Engine *e);

// ---------------------------------------------------------------------------------------------
// Sampling

typedef struct {
    float temperature;  // 0: greedy (argmax, lowest id on ties)
    float top_p;        // nucleus mass in (0, 1]; 1 = off
    int top_k;          // keep the k most likely tokens first; 0 = off
    uint64_t state;     // splitmix64 state (seed it per sample for reproducible runs)
} Sampler;

// Picks the next token from logits [V] (read only). Sampling: softmax(logits / temperature)
// restricted to the top_k most likely tokens (when top_k > 0), then to the smallest prefix (by
// probability, ties to the lower id) whose mass reaches top_p, renormalised; one uniform draw.
int sampler_pick(Sampler *s, const float *logits, int V);
