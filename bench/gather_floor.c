// gather_floor.c: the CPU reference of the gather floor's fold (gather_floor.h).
#include "bench/gather_floor.h"

#include <string.h>

// w[0..4) ^= the 16-byte chunks of one row of HD 16-bit elements, as little-endian 32-bit words.
static void fold_row(uint32_t *w, const uint16_t *row, int HD) {
    for (int c = 0; c < HD / 8; c++)
        for (int i = 0; i < 4; i++)
            w[i] ^= (uint32_t)row[8 * c + 2 * i] | (uint32_t)row[8 * c + 2 * i + 1] << 16;
}

// The fold of pair (b, kvh) into w[0..4).
static void fold_pair(uint32_t *w, const DecodeParams *p, int b, int kvh) {
    const int32_t *list = p->block_idx + b * p->idx_sb + kvh * p->idx_sh;
    const uint16_t *kb = (const uint16_t *)p->k + b * p->k_sb + kvh * p->k_sh;
    const uint16_t *vb = (const uint16_t *)p->v + b * p->v_sb + kvh * p->v_sh;
    const int len = p->cache_len[b];
    for (int i = 0; i < p->max_sel; i++) {
        w[0] ^= (uint32_t)list[i];
        if (list[i] < 0) continue;
        for (int t = list[i] * SEER_BLOCK; t < (list[i] + 1) * SEER_BLOCK && t < len; t++) {
            fold_row(w, kb + t * p->k_st, p->HD);
            fold_row(w, vb + t * p->v_st, p->HD);
        }
    }
}

void gather_floor_cpu(uint32_t *sink, const DecodeParams *p) {
    for (int b = 0; b < p->B; b++)
        for (int kvh = 0; kvh < p->HKV; kvh++) {
            uint32_t *w = sink + ((int64_t)b * p->HKV + kvh) * 4;
            memset(w, 0, 4 * sizeof(uint32_t));
            fold_pair(w, p, b, kvh);
        }
}
