// test_decode.c: CPU split-KV decoding against the naive reference, the split heuristic, and the
// host-side validation of bad launches.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/decode.h"
#include "tests/test.h"

typedef struct {
    int B, H, HKV, HD, Tmax, max_sel;
    SeerDType dtype;
    void *q, *k, *v, *out;
    int32_t *len, *idx;
    float *o_part, *lse_part, *ref;
    DecodeParams p;
} Case;

static uint32_t rng_state = 12345;
static float frand(void) {  // uniform in [-1, 1)
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}

static void fill(void *x, int64_t n, SeerDType t, float amp) {
    for (int64_t i = 0; i < n; i++) {
        float f = amp * frand();
        if (t == SEER_F32) ((float *)x)[i] = f;
        else ((uint16_t *)x)[i] = t == SEER_F16 ? f32_to_f16(f) : f32_to_bf16(f);
    }
}

// A random case; lens[b] given; sparse when max_sel > 0 (lists left for the caller to fill).
static Case case_new(int B, int H, int HKV, int HD, int Tmax, const int *lens, int max_sel,
                     int n_split, SeerDType t) {
    Case c;
    memset(&c, 0, sizeof c);
    c.B = B, c.H = H, c.HKV = HKV, c.HD = HD, c.Tmax = Tmax, c.max_sel = max_sel, c.dtype = t;
    size_t es = dtype_size(t);
    int64_t nq = (int64_t)B * H * HD, nk = (int64_t)B * HKV * Tmax * HD;
    c.q = xmalloc(nq * es), c.out = xmalloc(nq * es);
    c.k = xmalloc(nk * es), c.v = xmalloc(nk * es);
    fill(c.q, nq, t, 2.0f), fill(c.k, nk, t, 2.0f), fill(c.v, nk, t, 1.0f);
    c.len = xmalloc(sizeof(int32_t) * B);
    for (int b = 0; b < B; b++) c.len[b] = lens[b];
    c.idx = max_sel ? xmalloc(sizeof(int32_t) * B * HKV * max_sel) : NULL;
    c.o_part = xmalloc(sizeof(float) * nq * n_split);
    c.lse_part = xmalloc(sizeof(float) * B * H * n_split);
    c.ref = xmalloc(sizeof(float) * nq);
    c.p = decode_params_contiguous(c.q, c.k, c.v, c.out, c.len, c.idx, B, H, HKV, HD, Tmax, max_sel, t);
    c.p.n_split = n_split, c.p.o_part = c.o_part, c.p.lse_part = c.lse_part;
    return c;
}

static void case_free(Case *c) {
    free(c->q), free(c->k), free(c->v), free(c->out), free(c->len), free(c->idx);
    free(c->o_part), free(c->lse_part), free(c->ref);
}

// Random descending selection per pair: each block kept with probability keep, always the last.
static void random_lists(Case *c, float keep) {
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->HKV; h++) {
            int32_t *l = c->idx + ((int64_t)b * c->HKV + h) * c->max_sel, n = 0;
            int nb = ceil_div(c->len[b], SEER_BLOCK);
            for (int j = nb - 1; j >= 0 && n < c->max_sel; j--)
                if (j == nb - 1 || (frand() + 1) / 2 < keep) l[n++] = j;
            while (n < c->max_sel) l[n++] = -1;
        }
}

// Output of the case vs its naive reference: max |a - b| / max |b|.
static double case_err(Case *c) {
    decode_attention_cpu(&c->p);
    decode_reference_cpu(c->ref, &c->p);
    int64_t n = (int64_t)c->B * c->H * c->HD;
    double worst = 0, scale = 1e-6;
    for (int64_t i = 0; i < n; i++) scale = fmax(scale, fabs(c->ref[i]));
    for (int64_t i = 0; i < n; i++) {
        Tensor t = {c->out, c->dtype, 1, {n}};
        double d = fabs(tensor_get(&t, i) - c->ref[i]);
        if (d != d) return INFINITY;
        worst = fmax(worst, d);
    }
    return worst / scale;
}

static void test_heuristic(void) {
    CHECK(decode_num_splits(128, 512, 132, 2, 4, 64) == 2);  // the worked examples
    CHECK(decode_num_splits(8, 128, 132, 2, 4, 64) == 32);
    CHECK(decode_num_splits(0, 128, 132, 2, 4, 64) == 1);
    CHECK(decode_num_splits(8, 0, 132, 2, 4, 64) == 1);
    CHECK(decode_num_splits(8, 3, 132, 2, 4, 64) == 1);       // fewer tiles than min_tiles
    CHECK(decode_num_splits(1, 100000, 132, 2, 4, 64) == 64); // capped
    CHECK(decode_num_splits(4096, 512, 132, 2, 4, 64) == 1);  // many pairs: no split
    CHECK(decode_queue_splits(51, 8) == 7);                     // 32k at 90%, units of 8 tiles
    CHECK(decode_queue_splits(8, 8) == 1);
    CHECK(decode_queue_splits(2048, 4) == 64);                  // capped
    CHECK(decode_queue_splits(0, 8) == 1 && decode_queue_splits(10, 0) == 1);
    int t0, t1, covered = 0, prev = 0;
    for (int s = 0; s < 7; s++) {
        decode_split_range(10, 7, s, &t0, &t1);
        CHECK(t0 == prev && t1 >= t0 && t1 - t0 <= 2);
        covered += t1 - t0, prev = t1;
    }
    CHECK(covered == 10);
    decode_split_range(2, 5, 0, &t0, &t1);
    CHECK(t0 == t1);  // an empty split
}

static void test_dense_splits_groups(void) {
    const int Gs[] = {1, 4, 5, 8}, splits[] = {1, 3, 0};
    for (int gi = 0; gi < 4; gi++)
        for (int si = 0; si < 3; si++) {
            int G = Gs[gi], HKV = 2, lens[3] = {200, 64, 1};
            int S = splits[si] ? splits[si] : decode_num_splits(3 * HKV, 4, 4, 2, 1, 8);
            Case c = case_new(3, G * HKV, HKV, 32, 256, lens, 0, S, SEER_F32);
            double e = case_err(&c);
            if (!(e < 1e-5)) fprintf(stderr, "    G %d splits %d: err %g\n", G, S, e);
            CHECK(e < 1e-5);
            case_free(&c);
        }
}

static void test_dense_bf16_fp16(void) {
    SeerDType ts[] = {SEER_BF16, SEER_F16};
    for (int i = 0; i < 2; i++) {
        int lens[1] = {333};
        Case c = case_new(1, 8, 1, 64, 400, lens, 0, 3, ts[i]);
        double e = case_err(&c);
        CHECK(e < (ts[i] == SEER_BF16 ? 1e-2 : 2e-3));
        case_free(&c);
    }
}

static void test_sparse_all_equals_dense(void) {
    int lens[2] = {300, 129};
    Case c = case_new(2, 8, 2, 32, 320, lens, 5, 3, SEER_F32);
    random_lists(&c, 1.0f);
    decode_attention_cpu(&c.p);
    float *sparse = xmalloc(sizeof(float) * 2 * 8 * 32);
    memcpy(sparse, c.out, sizeof(float) * 2 * 8 * 32);
    c.p.block_idx = NULL;
    decode_attention_cpu(&c.p);
    double e = max_rel_err(sparse, c.out, 2 * 8 * 32, 1e-2);
    if (!(e < 1e-5)) fprintf(stderr, "    err %g\n", e);
    CHECK(e < 1e-5);
    free(sparse);
    case_free(&c);
}

static void test_sparse_random_vs_mask(void) {
    const int Gs[] = {1, 4, 5, 8}, splits[] = {1, 3, 7};
    for (int gi = 0; gi < 4; gi++)
        for (int si = 0; si < 3; si++) {
            int G = Gs[gi], lens[3] = {1000, 70, 640};
            Case c = case_new(3, G * 2, 2, 16, 1024, lens, 16, splits[si], SEER_F32);
            random_lists(&c, 0.4f);
            double e = case_err(&c);
            if (!(e < 1e-5)) fprintf(stderr, "    G %d splits %d: err %g\n", G, splits[si], e);
            CHECK(e < 1e-5);
            case_free(&c);
        }
}

static void test_empty_splits_and_lengths(void) {
    // one block selected over 5 splits: 4 empty splits; a sequence of length 0 gives zeros
    int lens[3] = {130, 0, 65};
    Case c = case_new(3, 4, 1, 16, 192, lens, 3, 5, SEER_F32);
    for (int b = 0; b < 3; b++) {
        int32_t *l = c.idx + b * 3;
        l[0] = b == 1 ? -1 : ceil_div(lens[b], SEER_BLOCK) - 1, l[1] = -1, l[2] = -1;
    }
    CHECK(case_err(&c) < 1e-5);
    for (int i = 0; i < 4 * 16; i++) CHECK(((float *)c.out)[64 + i] == 0.0f);
    int empty = 0;
    for (int i = 0; i < 3 * 4 * 5; i++) empty += c.lse_part[i] == -INFINITY;
    CHECK(empty >= 4 * 4);
    case_free(&c);
}

static void test_nan_tail_ignored(void) {
    int lens[1] = {70};
    Case c = case_new(1, 2, 1, 16, 128, lens, 0, 2, SEER_F32);
    for (int i = 70 * 16; i < 128 * 16; i++) ((float *)c.k)[i] = ((float *)c.v)[i] = NAN;
    CHECK(case_err(&c) < 1e-5);
    case_free(&c);
}

static void expect_refused(Case *c, const char *needle) {
    SeerErr err = {{0}};
    int rc = decode_validate(&c->p, c->len, c->idx, &err);
    CHECK(rc == -1);
    if (!strstr(err.msg, needle)) fprintf(stderr, "    message '%s' lacks '%s'\n", err.msg, needle);
    CHECK(strstr(err.msg, needle) != NULL);
}

static void test_validation(void) {
    int lens[2] = {200, 64};
    Case c = case_new(2, 4, 2, 16, 256, lens, 4, 2, SEER_F32);
    int32_t good[16] = {3, 2, 0, -1, 3, -1, -1, -1, 0, -1, -1, -1, 0, -1, -1, -1};
    memcpy(c.idx, good, sizeof good);
    SeerErr err;
    CHECK(decode_validate(&c.p, c.len, c.idx, &err) == 0);
    c.idx[0] = 4;  // block 4 of a 200-token cache (4 blocks)
    expect_refused(&c, "out of range");
    c.idx[0] = 3, c.idx[1] = 3;
    expect_refused(&c, "not strictly descending");
    c.idx[1] = 2, c.idx[2] = 2;
    expect_refused(&c, "not strictly descending");
    c.idx[2] = 0, c.idx[3] = -1, c.idx[5] = 0, c.idx[6] = 1;
    expect_refused(&c, "not strictly descending");
    c.idx[5] = -1, c.idx[6] = 0;
    expect_refused(&c, "follows -1");
    c.idx[6] = -1, c.idx[8] = -2;
    expect_refused(&c, "out of range");
    c.idx[8] = 0, c.len[1] = 257;
    expect_refused(&c, "outside the cache");
    c.len[1] = 64, c.p.H = 5;
    expect_refused(&c, "not a multiple");
    c.p.H = 4, c.p.k_st = 8;
    expect_refused(&c, "stride");
    c.p.k_st = 16, c.p.o_part = NULL;
    expect_refused(&c, "workspace");
    case_free(&c);
}

int main(void) {
    RUN(test_heuristic);
    RUN(test_dense_splits_groups);
    RUN(test_dense_bf16_fp16);
    RUN(test_sparse_all_equals_dense);
    RUN(test_sparse_random_vs_mask);
    RUN(test_empty_splits_and_lengths);
    RUN(test_nan_tail_ignored);
    RUN(test_validation);
    return test_summary();
}
