// recall.h: attention recall of block selections, the quality signal that needs no generation.
//
// For held-out chunks, every layer, KV group g and query token t with n = floor(p/64) >= 1
// allowed blocks (p = in-document position; the strictly causal blocks of SPEC.md section 2),
// the true block-max mass is the target M[g, t, j] (block max of the exact softmax, max over
// the group's heads). For a budget of b tokens, k = b/64 blocks are chosen from the n allowed
// ones, and the row's recall is sum_{j chosen} M / sum_j M (the same before or after the
// target's normalisation). Three selections are compared:
//   gate    the k blocks with the highest gate scores (train/gate.h)
//   oracle  the k blocks with the highest M itself: the ceiling
//   quest   per query head h, page score sum_c max(q_c kmax_c, q_c kmin_c) over post-RoPE q
//           and the page's elementwise max / min of post-RoPE K; the group's score of a page is
//           the MAX over its G heads (the oracle's GQA combine); top k pages
// Rows with n <= k are left out for that budget (every method recalls 1 there); each table
// cell is the mean over the rows that count, "rows" says how many. Ties go to the lower block.
#pragma once
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"
#include "data/shard.h"
#include "model/model.h"
#include "train/gate.h"

#define RECALL_MAX_BUDGETS 8

typedef struct {
    int L, n_budgets;
    int budgets[RECALL_MAX_BUDGETS];
    double *gate, *oracle, *quest;  // [L, n_budgets] mean recall (NAN where no row counts)
    int64_t *rows;                  // [L, n_budgets] rows counted
    int64_t tokens;                 // tokens evaluated
    int n_chunks;
} RecallReport;

// Parses "256,512,1024": 1..RECALL_MAX_BUDGETS positive multiples of 64, increasing.
int recall_parse_budgets(const char *s, int *budgets, int *n, SeerErr *err);

// Evaluates gates (params: [L, gate_param_count(s)], the model's L) on file chunks
// chunks[0..n_chunks-1] of the shard, with the CPU forward. s must match the model
// (HKV, G = H/HKV, HD). Returns -1 with err on a mismatch or a read / forward failure.
int recall_eval(RecallReport *r, const Model *m, const float *params, GateShape s,
                ShardReader *sr, const int64_t *chunks, int n_chunks, const int *budgets,
                int n_budgets, SeerErr *err);

// Overall recall of a method (mean over layers) at budget index b; NAN when no row counts.
double recall_overall(const RecallReport *r, const double *method, int b);

// Prints the table: one block per budget with gate / quest / oracle per layer and overall.
void recall_print(const RecallReport *r, FILE *f, const char *title);

// Prints two reports of the same data side by side (e.g. before and after training): overall
// gate recall before and after, and quest / oracle, per budget.
void recall_print_compare(const RecallReport *before, const RecallReport *after, FILE *f);

// Writes DIR/recall_<tag>.json (every number) and DIR/recall_<tag>.svg (overall recall vs
// budget for the three methods), atomically.
int recall_write(const RecallReport *r, const char *dir, const char *tag, SeerErr *err);

void recall_free(RecallReport *r);
