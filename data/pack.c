// pack.c: see pack.h.
//
// Best fit is found with a segment tree over "room left" values 0..max_len: a leaf counts the open
// chunks with exactly that room, and each room value keeps its chunks in a min-heap of chunk
// indices, so "least room that fits, then lowest chunk index" is two O(log) look-ups.
#include "data/pack.h"

#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- min-heap of chunk indices

typedef struct {
    int *a;  // [cap] heap-ordered chunk indices
    int n, cap;
} IntHeap;

static void heap_push(IntHeap *h, int v) {
    if (h->n == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 4;
        h->a = xrealloc(h->a, (size_t)h->cap * sizeof *h->a);
    }
    int i = h->n++;
    while (i > 0 && h->a[(i - 1) / 2] > v) {
        h->a[i] = h->a[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->a[i] = v;
}

static int heap_pop(IntHeap *h) {
    int top = h->a[0], v = h->a[--h->n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && h->a[c + 1] < h->a[c]) c++;
        if (h->a[c] >= v) break;
        h->a[i] = h->a[c];
        i = c;
    }
    if (h->n) h->a[i] = v;
    return top;
}

// ---------------------------------------------------------------- segment tree over room values

typedef struct {
    int size;  // leaves (power of two >= max_len + 1)
    int *cnt;  // [2 * size] open chunks per room value (leaves at size + room) and per subtree
} RoomTree;

static void tree_add(RoomTree *t, int room, int delta) {
    for (int i = room + t->size; i >= 1; i >>= 1) t->cnt[i] += delta;
}

// Smallest room value >= x with an open chunk, or -1.
static int tree_first_ge(const RoomTree *t, int node, int lo, int hi, int x) {
    if (hi < x || t->cnt[node] == 0) return -1;
    if (lo == hi) return lo;
    int mid = lo + (hi - lo) / 2;
    int r = tree_first_ge(t, 2 * node, lo, mid, x);
    return r >= 0 ? r : tree_first_ge(t, 2 * node + 1, mid + 1, hi, x);
}

// ---------------------------------------------------------------- packing

// Document indices by decreasing length, ties by increasing index (a stable counting sort).
static int *pack_order(const int *len, int n, int max_len) {
    int *start = xcalloc((size_t)max_len + 2, sizeof *start);  // [max_len + 2]
    int *order = xmalloc((size_t)n * sizeof *order);           // [n]
    for (int i = 0; i < n; i++) start[max_len - len[i] + 1]++;
    for (int k = 1; k <= max_len + 1; k++) start[k] += start[k - 1];
    for (int i = 0; i < n; i++) order[start[max_len - len[i]]++] = i;
    free(start);
    return order;
}

// Fills plan's CSR arrays from each document's chunk, keeping the placement order.
static void pack_fill_plan(PackPlan *plan, const int *order, const int *chunk_of, const int *len) {
    int nc = plan->n_chunks, n = plan->n_docs;
    plan->chunk_start = xcalloc((size_t)nc + 1, sizeof *plan->chunk_start);
    plan->chunk_tokens = xcalloc((size_t)nc ? (size_t)nc : 1, sizeof *plan->chunk_tokens);
    plan->doc = xmalloc((size_t)n * sizeof *plan->doc);
    for (int i = 0; i < n; i++) {
        plan->chunk_start[chunk_of[i] + 1]++;
        plan->chunk_tokens[chunk_of[i]] += len[i];
    }
    for (int c = 0; c < nc; c++) plan->chunk_start[c + 1] += plan->chunk_start[c];
    int *fill = xmalloc(((size_t)nc + 1) * sizeof *fill);
    memcpy(fill, plan->chunk_start, ((size_t)nc + 1) * sizeof *fill);
    for (int k = 0; k < n; k++) plan->doc[fill[chunk_of[order[k]]]++] = order[k];
    free(fill);
}

int pack_bfd(const int *len, int n, int max_len, PackPlan *plan, SeerErr *err) {
    memset(plan, 0, sizeof *plan);
    if (max_len < 1) return seer_fail(err, "pack: max-len must be at least 1 (got %d)", max_len);
    for (int i = 0; i < n; i++)
        if (len[i] < 1 || len[i] > max_len)
            return seer_fail(err, "pack: document %d has %d tokens, outside [1, %d]", i, len[i], max_len);
    RoomTree t = {1, NULL};
    while (t.size < max_len + 1) t.size *= 2;
    t.cnt = xcalloc(2 * (size_t)t.size, sizeof *t.cnt);
    IntHeap *room = xcalloc((size_t)max_len + 1, sizeof *room);  // [max_len + 1] chunks by room
    int *chunk_of = xmalloc((size_t)(n ? n : 1) * sizeof *chunk_of);  // [n]
    int *order = pack_order(len, n, max_len);
    int nc = 0;
    for (int k = 0; k < n; k++) {
        int d = order[k], r = tree_first_ge(&t, 1, 0, t.size - 1, len[d]), c;
        if (r < 0) {
            c = nc++;
            r = max_len;
        } else {
            c = heap_pop(&room[r]);
            tree_add(&t, r, -1);
        }
        chunk_of[d] = c;
        if (r - len[d] > 0) {
            heap_push(&room[r - len[d]], c);
            tree_add(&t, r - len[d], +1);
        }
    }
    plan->n_chunks = nc;
    plan->n_docs = n;
    pack_fill_plan(plan, order, chunk_of, len);
    for (int r = 0; r <= max_len; r++) free(room[r].a);
    free(room);
    free(t.cnt);
    free(chunk_of);
    free(order);
    return 0;
}

void pack_plan_free(PackPlan *plan) {
    free(plan->chunk_start);
    free(plan->doc);
    free(plan->chunk_tokens);
    memset(plan, 0, sizeof *plan);
}

// ---------------------------------------------------------------- seeded permutation

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Uniform in [0, bound) without modulo bias (rejects the short top range).
static uint64_t uniform_below(uint64_t *s, uint64_t bound) {
    uint64_t reject_below = (0 - bound) % bound, r;
    do r = splitmix64(s);
    while (r < reject_below);
    return r % bound;
}

void pack_permutation(int64_t n, uint64_t seed, int64_t *perm) {
    uint64_t s = seed;
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)uniform_below(&s, (uint64_t)i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}
