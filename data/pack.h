// pack.h: best-fit-decreasing packing of documents into chunks, and seeded permutations.
//
// SPEC.md §3: documents are packed into chunks of at most max-len tokens by best-fit-decreasing;
// a chunk holds whole documents that never attend to each other.
#pragma once
#include <stdint.h>

#include "common/common.h"

// The result of packing n documents: the documents of chunk c are
// doc[chunk_start[c] .. chunk_start[c+1]-1], in the order they were placed (longest first).
typedef struct {
    int n_chunks;
    int n_docs;
    int *chunk_start;      // [n_chunks + 1] offsets into doc
    int *doc;              // [n_docs] document indices grouped by chunk
    int64_t *chunk_tokens; // [n_chunks] tokens in each chunk (<= max_len)
} PackPlan;

// Best-fit-decreasing: documents in decreasing length (ties: lower index first); each goes to the
// open chunk with the least room that still fits it (ties: the lowest chunk index), or opens a new
// chunk. Deterministic, O(n log n + n log max_len). Every document is placed exactly once.
// len: [n] document lengths, each in [1, max_len]. n may be 0 (no chunks).
// Returns 0, or -1 with err set when a length is out of range or max_len < 1.
int pack_bfd(const int *len, int n, int max_len, PackPlan *plan, SeerErr *err);
void pack_plan_free(PackPlan *plan);

// A uniformly random permutation of 0..n-1 (Fisher-Yates) from a 64-bit seed; the same seed
// gives the same permutation on every machine. perm: [n]. n may be 0.
void pack_permutation(int64_t n, uint64_t seed, int64_t *perm);
