// test_gather_floor.c: the CPU fold of the gather floor (bench/gather_floor.h) against a naive
// byte-wise expansion, on awkward shapes: cache lengths not a multiple of 64, a length 0, -1
// padding, an empty list, batch 1, odd head dims, padded rows; and one case worked by hand.
#include <stdlib.h>
#include <string.h>

#include "bench/gather_floor.h"
#include "tests/test.h"

static uint32_t rng = 77;
static uint32_t rnext(void) { return rng = rng * 1664525u + 1013904223u; }

// Naive fold of pair (b, kvh): every token of the cache, kept when its block is in the list and
// it is before cache_len; its K and V rows XORed byte by byte into a 16-byte word (byte i of a
// row into byte i % 16), read as 4 little-endian words; the list entries XORed into word 0.
static void naive_pair(uint32_t *w, const DecodeParams *p, const int32_t *list, int b, int kvh) {
    unsigned char acc[16] = {0};
    for (int t = 0; t < p->cache_len[b]; t++) {
        int in = 0;
        for (int i = 0; i < p->max_sel; i++) in |= list[i] == t / SEER_BLOCK;
        if (!in) continue;
        const unsigned char *kr = (const unsigned char *)((const uint16_t *)p->k + b * p->k_sb + kvh * p->k_sh + t * p->k_st);
        const unsigned char *vr = (const unsigned char *)((const uint16_t *)p->v + b * p->v_sb + kvh * p->v_sh + t * p->v_st);
        for (int i = 0; i < 2 * p->HD; i++) acc[i % 16] ^= kr[i] ^ vr[i];
    }
    for (int j = 0; j < 4; j++)
        w[j] = (uint32_t)acc[4 * j] | (uint32_t)acc[4 * j + 1] << 8 | (uint32_t)acc[4 * j + 2] << 16 |
               (uint32_t)acc[4 * j + 3] << 24;
    for (int i = 0; i < p->max_sel; i++) w[0] ^= (uint32_t)list[i];
}

// One comparison: random K/V bits (the tail past each length too), per pair a random share keep
// of its blocks (never more than max_sel, sorted descending, -1 padded); pad > 0 adds gaps to
// every stride. Returns the number of (b, kvh, word) that differ from the naive fold.
static int run_case(int B, int HKV, int HD, int Tmax, const int *lens, int max_sel, double keep, int pad) {
    const int64_t st = HD + pad, sh = Tmax * st + pad, sb = HKV * sh + pad, n = B * sb;
    uint16_t *k = xmalloc(2 * n), *v = xmalloc(2 * n);
    for (int64_t i = 0; i < n; i++) k[i] = (uint16_t)rnext(), v[i] = (uint16_t)(rnext() >> 16);
    int32_t *idx = xmalloc(sizeof(int32_t) * B * HKV * max_sel), *len = xmalloc(sizeof(int32_t) * B);
    for (int b = 0; b < B; b++) len[b] = lens[b];
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HKV; h++) {
            int32_t *l = idx + ((int64_t)b * HKV + h) * max_sel, m = 0;
            for (int j = ceil_div(len[b], SEER_BLOCK) - 1; j >= 0 && m < max_sel; j--)
                if ((rnext() >> 8) % 1000 < keep * 1000) l[m++] = j;
            while (m < max_sel) l[m++] = -1;
        }
    DecodeParams p = decode_params_contiguous(NULL, k, v, NULL, len, idx, B, HKV, HKV, HD, Tmax, max_sel, SEER_BF16);
    p.k_st = p.v_st = st, p.k_sh = p.v_sh = sh, p.k_sb = p.v_sb = sb;
    SeerErr err;
    if (decode_validate(&p, len, idx, &err)) seer_die("%s", err.msg);
    uint32_t *got = xmalloc(sizeof(uint32_t) * 4 * B * HKV), want[4];
    gather_floor_cpu(got, &p);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HKV; h++) {
            naive_pair(want, &p, idx + ((int64_t)b * HKV + h) * max_sel, b, h);
            for (int j = 0; j < 4; j++) bad += got[((int64_t)b * HKV + h) * 4 + j] != want[j];
        }
    free(k), free(v), free(idx), free(len), free(got);
    return bad;
}

static void test_against_naive(void) {
    int three[3] = {1000, 65, 300}, one[1] = {8191}, with_zero[2] = {0, 130};
    CHECK(run_case(3, 2, 128, 1024, three, 16, 0.5, 0) == 0);
    CHECK(run_case(3, 2, 128, 1024, three, 4, 0.9, 0) == 0);  // lists cut at max_sel
    CHECK(run_case(1, 8, 128, 8192, one, 128, 0.1, 0) == 0);  // batch 1, long padding
    CHECK(run_case(2, 3, 128, 192, with_zero, 3, 1.0, 0) == 0);  // length 0: an empty list
    CHECK(run_case(3, 2, 8, 1024, three, 16, 0.5, 0) == 0);  // HD 8: one chunk a row
    CHECK(run_case(3, 2, 64, 1024, three, 16, 0.7, 24) == 0);  // padded rows
    CHECK(run_case(2, 1, 128, 192, with_zero, 2, 0.0, 0) == 0);  // nothing selected anywhere
}

// One token, HD 8: K = 1..8, V = 0; list {0, -1}: word j = (2j+1) | (2j+2) << 16, and word 0 also
// ^= 0 ^ 0xffffffff. Changing the tail past the length or an unselected block changes nothing.
static void test_by_hand(void) {
    uint16_t k[3 * 64 * 8] = {0}, v[3 * 64 * 8] = {0};
    for (int i = 0; i < 8; i++) k[i] = (uint16_t)(i + 1);
    int32_t len[1] = {1}, list[2] = {0, -1};
    DecodeParams p = decode_params_contiguous(NULL, k, v, NULL, len, list, 1, 1, 1, 8, 3 * 64, 2, SEER_F16);
    uint32_t w[4];
    gather_floor_cpu(w, &p);
    CHECK(w[0] == (0x00020001u ^ 0xffffffffu) && w[1] == 0x00040003u && w[2] == 0x00060005u &&
          w[3] == 0x00080007u);
    k[8] = 0x7fc0, v[64 * 8 + 3] = 0x1234;  // token 1 (past the length), token 64 (block 1)
    uint32_t w2[4];
    gather_floor_cpu(w2, &p);
    CHECK(!memcmp(w, w2, sizeof w));
}

int main(void) {
    RUN(test_against_naive);
    RUN(test_by_hand);
    return test_summary();
}
