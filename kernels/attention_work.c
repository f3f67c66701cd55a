// attention_work.c: the work list of the CUDA attention kernel's persistent grid (attention.cu),
// built on the host so its order can be tested on any machine.
#include <stdlib.h>

#include "common/common.h"
#include "kernels/attention.h"

int64_t attention_work_count(const int *doc_lens, int n_docs, int HKV, int tile) {
    int64_t n = 0;
    for (int d = 0; d < n_docs; d++) n += ceil_div(doc_lens[d], tile);
    return n * HKV;
}

static int keys_read(const AttnWorkItem *w) { return w->q0 - w->d0 + (w->gq & 255); }

static int cmp_heaviest(const void *a, const void *b) {  // most keys first, then query tile, head
    const AttnWorkItem *x = a, *y = b;
    int kx = keys_read(x), ky = keys_read(y);
    if (kx != ky) return ky - kx;
    return x->q0 != y->q0 ? x->q0 - y->q0 : x->gq - y->gq;
}

static int cmp_head(const void *a, const void *b) {  // KV head, then cmp_heaviest
    const int ga = ((const AttnWorkItem *)a)->gq >> 8, gb = ((const AttnWorkItem *)b)->gq >> 8;
    return ga != gb ? ga - gb : cmp_heaviest(a, b);
}

void attention_work_list(AttnWorkItem *work, const int *doc_lens, int n_docs, int HKV, int tile, int slots,
                         const int *target_from) {
    int64_t n = 0;
    for (int d = 0, d0 = 0; d < n_docs; d0 += doc_lens[d], d++)
        for (int s = 0; s < doc_lens[d]; s += tile)
            for (int g = 0; g < HKV; g++) {
                int nq = doc_lens[d] - s < tile ? doc_lens[d] - s : tile;
                work[n++] = (AttnWorkItem){d0 + s, d0, target_from ? target_from[d] : 0, g * 256 + nq};
            }
    qsort(work, (size_t)n, sizeof(*work), cmp_heaviest);
    const int64_t win = (int64_t)slots * HKV;
    for (int64_t i = 0; i < n; i += win)
        qsort(work + i, (size_t)(n - i < win ? n - i : win), sizeof(*work), cmp_head);
}
