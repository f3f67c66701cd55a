// block_lists.c: the random block lists of `seer bench decode`'s sparse points, one per rotation
// slot, so that the blocks a round of calls reads exceed L2 as the dense points' buffers do.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

int bench_rotation_slots(int n_buf, double slot_bytes, double l2_bytes) {
    const double need = slot_bytes > 0 ? ceil(4.0 * l2_bytes / slot_bytes) : 1;
    const double n = fmax(need, n_buf);
    return n < 1 ? 1 : n > 64 ? 64 : (int)n;
}

static uint32_t next_u32(uint32_t *rng) { return *rng = *rng * 1664525u + 1013904223u; }

void bench_block_lists(int32_t *idx, int slots, int n_buf, int pairs, int nb, int n_sel,
                       uint32_t *rng) {
    int *perm = xmalloc(sizeof(int) * nb);
    unsigned char *flag = xmalloc((size_t)nb);
    for (int p = 0; p < pairs; p++) {
        for (int j = 0; j < nb; j++) perm[j] = j;
        for (int j = nb - 1; j > 0; j--) {  // Fisher-Yates
            int r = (int)(next_u32(rng) % (uint32_t)(j + 1)), t = perm[j];
            perm[j] = perm[r], perm[r] = t;
        }
        for (int s = 0; s < slots; s++) {
            const int64_t w0 = (int64_t)(s / n_buf) * n_sel;  // this slot's window of perm
            memset(flag, 0, (size_t)nb);
            for (int t = 0; t < n_sel; t++) flag[perm[(w0 + t) % nb]] = 1;
            int32_t *l = idx + ((int64_t)s * pairs + p) * n_sel;
            int n = 0;
            for (int j = nb - 1; j >= 0; j--)
                if (flag[j]) l[n++] = j;
        }
    }
    free(perm), free(flag);
}
