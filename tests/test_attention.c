// test_attention.c: the CPU attention + target reference against a double-precision brute force
// that builds each document's full softmax matrix, on packed chunks of awkward lengths.
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "kernels/attention.h"
#include "tests/test.h"

static float frand(unsigned *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xffff) / 32768.0f - 1.0f;
}

// Brute force: full softmax matrix per (doc, head) in double, then SPEC.md section 2 steps 2-5.
static void attention_brute(double *out, double *target, const float *q, const float *k,
                            const float *v, const int *doc_lens, int n_docs, int T, int H,
                            int HKV, int HD, int NB) {
    int G = H / HKV, t0 = 0;
    memset(target, 0, sizeof(double) * HKV * T * NB);
    for (int d = 0; d < n_docs; d++) {
        int n = doc_lens[d];
        double *P = xcalloc((size_t)H * n * n, sizeof(double));  // [H, n, n]
        for (int h = 0; h < H; h++)
            for (int t = 0; t < n; t++) {
                double *row = P + ((size_t)h * n + t) * n, mx = -1e300, sum = 0;
                for (int i = 0; i <= t; i++) {
                    double s = 0;
                    for (int c = 0; c < HD; c++)
                        s += (double)q[((size_t)(t0 + t) * H + h) * HD + c] *
                             k[((size_t)(t0 + i) * HKV + h / G) * HD + c];
                    row[i] = s / sqrt((double)HD);
                    if (row[i] > mx) mx = row[i];
                }
                for (int i = 0; i <= t; i++) sum += (row[i] = exp(row[i] - mx));
                for (int c = 0; c < HD; c++) out[((size_t)(t0 + t) * H + h) * HD + c] = 0;
                for (int i = 0; i <= t; i++) {
                    row[i] /= sum;
                    for (int c = 0; c < HD; c++)
                        out[((size_t)(t0 + t) * H + h) * HD + c] +=
                            row[i] * v[((size_t)(t0 + i) * HKV + h / G) * HD + c];
                }
            }
        for (int g = 0; g < HKV; g++)
            for (int t = 0; t < n; t++) {
                int nb = t / SEER_BLOCK;
                double M[64] = {0}, sum = 0;
                for (int j = 0; j < nb; j++) {
                    for (int h = g * G; h < (g + 1) * G; h++)
                        for (int i = j * SEER_BLOCK; i < (j + 1) * SEER_BLOCK; i++)
                            if (P[((size_t)h * n + t) * n + i] > M[j]) M[j] = P[((size_t)h * n + t) * n + i];
                    sum += M[j];
                }
                for (int j = 0; j < nb; j++)
                    target[((size_t)g * T + t0 + t) * NB + j] = M[j] / (sum + 1e-9);
            }
        free(P);
        t0 += n;
    }
}

static void check_case(const int *doc_lens, int n_docs, int H, int HKV, int HD, unsigned seed) {
    int T = 0, maxlen = 0;
    for (int d = 0; d < n_docs; d++) {
        T += doc_lens[d];
        if (doc_lens[d] > maxlen) maxlen = doc_lens[d];
    }
    int NB = ceil_div(maxlen, SEER_BLOCK);
    size_t nq = (size_t)T * H * HD, nk = (size_t)T * HKV * HD, nt = (size_t)HKV * T * NB;
    float *q = xmalloc(4 * nq), *k = xmalloc(4 * nk), *v = xmalloc(4 * nk);
    for (size_t i = 0; i < nq; i++) q[i] = 2.0f * frand(&seed);  // peaky enough to matter
    for (size_t i = 0; i < nk; i++) k[i] = 2.0f * frand(&seed), v[i] = frand(&seed);
    float *out = xmalloc(4 * nq), *target = xmalloc(4 * nt);
    double *out_ref = xmalloc(8 * nq), *target_ref = xmalloc(8 * nt);
    attention_forward_cpu(out, target, q, k, v, doc_lens, n_docs, T, H, HKV, HD, NB);
    attention_brute(out_ref, target_ref, q, k, v, doc_lens, n_docs, T, H, HKV, HD, NB);
    double worst_out = 0, worst_target = 0;
    for (size_t i = 0; i < nq; i++) worst_out = fmax(worst_out, fabs(out[i] - out_ref[i]));
    for (size_t i = 0; i < nt; i++) worst_target = fmax(worst_target, fabs(target[i] - target_ref[i]));
    CHECK(worst_out < 1e-5);
    CHECK(worst_target < 1e-5);
    free(q), free(k), free(v), free(out), free(target), free(out_ref), free(target_ref);
}

static void test_single_document(void) {
    int lens[] = {200};
    check_case(lens, 1, 4, 2, 16, 1);
}

static void test_packed_awkward(void) {
    int lens[] = {1, 130, 64, 7, 191};  // one-token doc, exact block, partial blocks
    check_case(lens, 5, 5, 1, 8, 2);    // G = 5, one KV head
}

static void test_group_of_one(void) {
    int lens[] = {129, 65};
    check_case(lens, 2, 3, 3, 32, 3);  // G = 1
}

// Rows of in-document position >= 64 sum to 1, others are all zero.
static void test_target_rows(void) {
    int lens[] = {70, 150}, T = 220, H = 2, HKV = 1, HD = 8, NB = 3;
    unsigned seed = 9;
    float *q = xmalloc(4 * T * H * HD), *k = xmalloc(4 * T * HD), *v = xmalloc(4 * T * HD);
    for (int i = 0; i < T * H * HD; i++) q[i] = frand(&seed);
    for (int i = 0; i < T * HD; i++) k[i] = frand(&seed), v[i] = frand(&seed);
    float *out = xmalloc(4 * T * H * HD), *target = xmalloc(4 * T * NB);
    attention_forward_cpu(out, target, q, k, v, lens, 2, T, H, HKV, HD, NB);
    for (int t = 0; t < T; t++) {
        int pos = t < 70 ? t : t - 70;
        double sum = 0;
        for (int j = 0; j < NB; j++) sum += target[t * NB + j];
        CHECK_CLOSE(sum, pos >= 64 ? 1.0 : 0.0, 1e-5);
    }
    free(q), free(k), free(v), free(out), free(target);
}

// The CUDA grid's work list: every (query tile, KV head) of every document once, with its length
// and its document's first target row (target_from, NULL: 0); heaviest first across windows of
// slots * HKV items, and grouped by KV head inside each window.
static void check_work_order(const int *lens, int n_docs, int HKV, int tile, int slots, const int *target_from) {
    int64_t n = attention_work_count(lens, n_docs, HKV, tile), win = (int64_t)slots * HKV;
    AttnWorkItem *w = xmalloc(sizeof(*w) * n);
    attention_work_list(w, lens, n_docs, HKV, tile, slots, target_from);
    int T = 0;
    for (int d = 0; d < n_docs; d++) T += lens[d];
    int *doc_of = xmalloc(sizeof(int) * (size_t)T);  // [T] document of each token
    for (int d = 0, t = 0; d < n_docs; d++)
        for (int i = 0; i < lens[d]; i++) doc_of[t++] = d;
    char *seen = xcalloc((size_t)T * HKV, 1);  // [q0, g]
    int ok_items = 1, ok_heads = 1, ok_weights = 1;
    for (int64_t i = 0; i < n; i++) {
        int g = w[i].gq >> 8, nq = w[i].gq & 255, d = doc_of[w[i].q0], end = w[i].d0 + lens[d];
        ok_items &= doc_of[w[i].d0] == d && (w[i].d0 == 0 || doc_of[w[i].d0 - 1] != d);  // d0 starts d
        ok_items &= w[i].t0 == (target_from ? target_from[d] : 0);
        ok_items &= g < HKV && (w[i].q0 - w[i].d0) % tile == 0 && nq == (end - w[i].q0 < tile ? end - w[i].q0 : tile);
        ok_items &= !seen[(size_t)w[i].q0 * HKV + g];
        seen[(size_t)w[i].q0 * HKV + g] = 1;
        if (i % win) ok_heads &= (w[i - 1].gq >> 8) <= g;
        if (i >= win) {  // nothing in this window reads more keys than the lightest of the last one
            int lightest = 1 << 30;
            for (int64_t j = i / win * win - win; j < i / win * win; j++) {
                int kj = w[j].q0 - w[j].d0 + (w[j].gq & 255);
                lightest = kj < lightest ? kj : lightest;
            }
            ok_weights &= w[i].q0 - w[i].d0 + nq <= lightest;
        }
    }
    CHECK(ok_items);
    CHECK(ok_heads);
    CHECK(ok_weights);
    free(w), free(seen), free(doc_of);
}

static void test_work_order(void) {
    int one[] = {32768}, packed[] = {6000, 6000, 6000, 6000, 6000, 2768}, odd[] = {1, 130, 64, 7, 191};
    int half[] = {3000, 3000, 3000, 3000, 3000, 1384}, odd_from[] = {64, 65, 64, 64, 95};
    check_work_order(one, 1, 8, 32, 132, NULL);       // Qwen3-8B shape, one 32k document, H100/H200 grid
    check_work_order(packed, 6, 8, 25, 132, half);    // 14B's 25-token tiles, packed, target on the last halves
    check_work_order(odd, 5, 3, 16, 5, odd_from);     // short documents, windows cut inside query tiles
}

int main(void) {
    RUN(test_single_document);
    RUN(test_packed_awkward);
    RUN(test_group_of_one);
    RUN(test_target_rows);
    RUN(test_work_order);
    return test_summary();
}
