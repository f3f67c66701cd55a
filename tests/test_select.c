// test_select.c: CPU selection references against brute-force formulas (SPEC.md section 4).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/select.h"
#include "tests/test.h"

static uint32_t rng_state = 777;
static float frand(void) {  // uniform in [-1, 1)
    rng_state = rng_state * 1664525u + 1013904223u;
    return (float)(rng_state >> 8) / 8388608.0f - 1.0f;
}
static float *rand_vec(int64_t n, float amp) {
    float *x = xmalloc(sizeof(float) * n);
    for (int64_t i = 0; i < n; i++) x[i] = amp * frand();
    return x;
}

static int list_has(const int32_t *l, int n, int j) {
    for (int i = 0; i < n; i++)
        if (l[i] == j) return 1;
    return 0;
}

static int list_ok(const int32_t *l, int n) {  // descending, -1 padded
    for (int i = 1; i < n; i++)
        if (l[i] != -1 && (l[i - 1] == -1 || l[i] >= l[i - 1])) return 0;
    return 1;
}

static void test_rope(void) {
    float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8];
    memcpy(y, x, sizeof x);
    select_rope_cpu(y, 8, 0, 10000.0f);
    for (int i = 0; i < 8; i++) CHECK(y[i] == x[i]);
    select_rope_cpu(y, 8, 37, 10000.0f);
    for (int i = 0; i < 4; i++) {  // pair (i, i+4) rotated by 37 * theta^(-2i/8)
        double a = 37.0 * pow(10000.0, -2.0 * i / 8);
        CHECK_CLOSE(y[i], x[i] * cos(a) - x[i + 4] * sin(a), 1e-5);
        CHECK_CLOSE(y[i + 4], x[i + 4] * cos(a) + x[i] * sin(a), 1e-5);
    }
}

// Brute force of one K-compression vector, in double.
static void kcomp_brute(double *kg, const float *keys, int n, int HD, int DG, const float *wk,
                        const float *knorm, int pos, float theta) {
    double kc[3 * 64], ss = 0;
    for (int d = 0; d < HD; d++) {
        double mx = -1e30, mn = 1e30, s = 0;
        for (int i = 0; i < n; i++) {
            double x = keys[i * HD + d];
            mx = fmax(mx, x), mn = fmin(mn, x), s += x;
        }
        kc[d] = mx, kc[HD + d] = mn, kc[2 * HD + d] = s / n;
    }
    for (int o = 0; o < DG; o++) {
        kg[o] = 0;
        for (int i = 0; i < 3 * HD; i++) kg[o] += kc[i] * wk[i * DG + o];
        ss += kg[o] * kg[o];
    }
    for (int o = 0; o < DG; o++) kg[o] = kg[o] / sqrt(ss / DG + 1e-6) * knorm[o];
    for (int i = 0; i < DG / 2; i++) {
        double a = pos * pow(theta, -2.0 * i / DG), x1 = kg[i], x2 = kg[i + DG / 2];
        kg[i] = x1 * cos(a) - x2 * sin(a), kg[i + DG / 2] = x2 * cos(a) + x1 * sin(a);
    }
}

static void test_kcomp(void) {
    int HD = 16, DG = 8, n = 37;  // a partial block: the mean divides by 37
    float *keys = rand_vec(n * HD, 2), *wk = rand_vec(3 * HD * DG, 0.3f), *kn = rand_vec(DG, 1);
    float kg[8];
    double ref[8];
    select_kcomp_cpu(kg, keys, n, HD, DG, wk, kn, 128, 1e6f);
    kcomp_brute(ref, keys, n, HD, DG, wk, kn, 128, 1e6f);
    for (int o = 0; o < DG; o++) CHECK_CLOSE(kg[o], ref[o], 1e-4);
    // the batched update: block 2 of b 0 with rope_last, b 1 untouched
    SelectConfig c = {2, 2, 1, HD, DG, 4, 4, 128, 0, 1e6f, 1, 0};
    float *kraw = rand_vec(2 * 2 * 64 * HD, 1), *wk2 = rand_vec(2 * 3 * HD * DG, 0.3f);
    float *kcomp = xcalloc(2 * 2 * 4 * DG, sizeof(float));
    int32_t block[2] = {2, -1};
    select_kcomp_update_cpu(kcomp, kraw, block, wk2, kn, &c);
    kcomp_brute(ref, kraw + 64 * HD, 64, HD, DG, wk2 + 3 * HD * DG, kn, 2 * 64 + 63, 1e6f);
    for (int o = 0; o < DG; o++) CHECK_CLOSE(kcomp[(1 * 4 + 2) * DG + o], ref[o], 1e-4);
    for (int i = 2 * 4 * DG; i < 4 * 4 * DG; i++) CHECK(kcomp[i] == 0.0f);
    float plain[8];  // the same block stored as E4M3 values
    memcpy(plain, kcomp + (1 * 4 + 2) * DG, sizeof plain);
    c.kcomp_fp8 = 1;
    select_kcomp_update_cpu(kcomp, kraw, block, wk2, kn, &c);
    for (int o = 0; o < DG; o++) CHECK(kcomp[(1 * 4 + 2) * DG + o] == e4m3_to_f32(f32_to_e4m3(plain[o])));
    free(keys), free(wk), free(kn), free(kraw), free(wk2), free(kcomp);
}

static void test_blocks(void) {
    float key[10] = {0.1f, 0.9f, 0.5f, 0.5f, 0.5f, -1, 2, 0.3f, 0.5f, 0};
    int32_t l[8];
    int n = select_blocks_cpu(l, 8, key, 10, 3, 0, -1, -1);  // 6, 1, then the lowest tied 0.5: 2
    CHECK(n == 3 && l[0] == 6 && l[1] == 2 && l[2] == 1 && l[3] == -1 && l[7] == -1);
    n = select_blocks_cpu(l, 8, key, 10, 3, 0, 0, 12);  // forced 0 and 12 (beyond the candidates)
    CHECK(n == 5 && l[0] == 12 && l[1] == 6 && l[2] == 2 && l[3] == 1 && l[4] == 0);
    n = select_blocks_cpu(l, 8, key, 10, 0, 0.45f, -1, -1);  // threshold
    CHECK(n == 6 && l[0] == 8 && l[5] == 1 && list_ok(l, 8));
    n = select_blocks_cpu(l, 4, key, 10, 20, 0, -1, -1);  // n <= k: all; overflow drops lowest
    CHECK(n == 10 && l[0] == 9 && l[3] == 6);
    n = select_blocks_cpu(l, 4, key, 0, 3, 0, 0, 0);  // no candidates: just the forced block
    CHECK(n == 1 && l[0] == 0 && l[1] == -1);
}

static void test_gate(void) {
    int B = 3, HKV = 2, G = 4, HD = 16, DG = 8, nb = 20;
    SelectConfig c = {B, HKV, G, HD, DG, nb, 7, 5 * 64, 0, 1e4f, 0, 0};
    float *q = rand_vec(B * HKV * G * HD, 2), *kcomp = rand_vec(B * HKV * nb * DG, 1);
    float *wq = rand_vec(HKV * G * HD * DG, 0.2f), *qn = rand_vec(DG, 1);
    float *probs = xmalloc(sizeof(float) * B * HKV * nb);
    int32_t len[3] = {1200, 64, 640}, idx[3 * 2 * 7];  // 18 completed + partial; 1 block; 10 full
    SeerErr err;
    CHECK(select_validate_config(&c, SELECT_GATE, &err) == 0);
    select_gate_cpu(idx, probs, q, kcomp, len, wq, qn, &c);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HKV; h++) {
            int32_t *l = idx + (b * HKV + h) * 7;
            int n_cand = len[b] / 64, cur = (len[b] - 1) / 64;
            float qg[8], s[20];
            select_gate_query_cpu(qg, q + (b * HKV + h) * G * HD, G, HD, DG,
                                  wq + h * G * HD * DG, qn, len[b] - 1, 1e4f);
            double psum = 0;
            for (int j = 0; j < n_cand; j++) {
                s[j] = 0;
                for (int d = 0; d < DG; d++) s[j] += qg[d] * kcomp[((b * HKV + h) * nb + j) * DG + d];
                s[j] /= sqrtf(DG);
                psum += probs[(b * HKV + h) * nb + j];
            }
            CHECK(list_ok(l, 7) && list_has(l, 7, 0) && list_has(l, 7, cur));
            if (n_cand) CHECK_CLOSE(psum, 1.0, 1e-5);
            for (int j = 0; j < n_cand; j++) {  // selected iff among the 5 best (or forced)
                int better = 0;
                for (int i = 0; i < n_cand; i++) better += s[i] > s[j];
                CHECK(list_has(l, 7, j) == (better < 5 || j == 0 || j == cur));
            }
        }
    CHECK(idx[2 * 7] == 0 && idx[2 * 7 + 1] == -1);  // len 64: block 0 only
    c.budget = 0, c.threshold = 0.08f, c.max_sel = 20;  // threshold mode
    int32_t idx2[3 * 2 * 20];
    select_gate_cpu(idx2, probs, q, kcomp, len, wq, qn, &c);
    for (int j = 1; j < 18; j++)
        CHECK(list_has(idx2, 20, j) == (probs[j] > 0.08f || j == 0));
    c.max_sel = 6;
    CHECK(select_validate_config(&c, SELECT_GATE, &err) == -1 && strstr(err.msg, "max_sel"));
    free(q), free(kcomp), free(wq), free(qn), free(probs);
}

static void test_oracle(void) {
    int B = 2, HKV = 2, G = 3, HD = 8, Tmax = 300, nb = 5;
    SelectConfig c = {B, HKV, G, HD, 8, nb, 2, 2 * 64, 0, 1e4f, 0, 0};
    float *q = rand_vec(B * HKV * G * HD, 3), *k = rand_vec(B * HKV * Tmax * HD, 3);
    int32_t len[2] = {300, 150}, idx[2 * 2 * 2];
    select_oracle_cpu(idx, q, k, Tmax, len, &c);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HKV; h++) {
            double M[5] = {0};
            int n = ceil_div(len[b], 64);
            for (int g = 0; g < G; g++) {  // exact softmax per head, block max, group max
                double p[300], mx = -1e30, sum = 0;
                for (int i = 0; i < len[b]; i++) {
                    p[i] = 0;
                    for (int d = 0; d < HD; d++)
                        p[i] += q[((b * HKV + h) * G + g) * HD + d] * k[((b * HKV + h) * Tmax + i) * HD + d];
                    p[i] /= sqrt(HD);
                    mx = fmax(mx, p[i]);
                }
                for (int i = 0; i < len[b]; i++) sum += exp(p[i] - mx);
                for (int i = 0; i < len[b]; i++) M[i / 64] = fmax(M[i / 64], exp(p[i] - mx) / sum);
            }
            int32_t *l = idx + (b * HKV + h) * 2;
            for (int j = 0; j < n; j++) {
                int better = 0;
                for (int i = 0; i < n; i++) better += M[i] > M[j];
                CHECK(list_has(l, 2, j) == (better < 2));
            }
        }
    free(q), free(k);
}

static void test_quest(void) {
    int B = 2, HKV = 2, G = 2, HD = 8, nb = 8, Tmax = 8 * 64;
    SelectConfig c = {B, HKV, G, HD, 8, nb, 2 * 3, 100, 0, 1e4f, 0, 0};  // budget 100: 3 pages/head
    float *k = rand_vec(B * HKV * Tmax * HD, 2), *q = rand_vec(B * HKV * G * HD, 2);
    float *kmax = xcalloc(B * HKV * nb * HD, sizeof(float)), *kmin = xcalloc(B * HKV * nb * HD, sizeof(float));
    float *knew = xmalloc(sizeof(float) * B * HKV * HD);
    int32_t len[2] = {0, 0}, final_len[2] = {450, 200}, idx[2 * 2 * 6];
    for (int t = 0; t < 450; t++) {  // append token by token; b 1 stops at 200
        for (int b = 0; b < B; b++) {
            if (t < final_len[b]) len[b] = t + 1;
            for (int h = 0; h < HKV; h++)
                memcpy(knew + (b * HKV + h) * HD, k + ((b * HKV + h) * Tmax + len[b] - 1) * HD, sizeof(float) * HD);
        }
        select_quest_update_cpu(kmax, kmin, knew, len, &c);
    }
    select_quest_cpu(idx, q, kmax, kmin, len, &c);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HKV; h++) {
            int np = ceil_div(len[b], 64), want[8] = {0};
            double score[8];
            for (int g = 0; g < G; g++) {
                const float *qh = q + ((b * HKV + h) * G + g) * HD;
                for (int j = 0; j < np; j++) {
                    score[j] = 0;
                    for (int d = 0; d < HD; d++) {  // brute-force page max / min
                        double mx = -1e30, mn = 1e30;
                        for (int i = j * 64; i < j * 64 + 64 && i < len[b]; i++) {
                            double x = k[((b * HKV + h) * Tmax + i) * HD + d];
                            mx = fmax(mx, x), mn = fmin(mn, x);
                        }
                        score[j] += fmax(qh[d] * mx, qh[d] * mn);
                    }
                }
                for (int j = 0; j < np; j++) {
                    int better = 0;
                    for (int i = 0; i < np; i++) better += score[i] > score[j] + 1e-6;
                    if (better < 3) want[j] = 1;
                }
            }
            int32_t *l = idx + (b * HKV + h) * 6;
            CHECK(list_ok(l, 6));
            for (int j = 0; j < np; j++) CHECK(list_has(l, 6, j) == want[j]);
        }
    SeerErr err;
    c.budget = 0;
    CHECK(select_validate_config(&c, SELECT_QUEST, &err) == -1);
    free(k), free(q), free(kmax), free(kmin), free(knew);
}

int main(void) {
    RUN(test_rope);
    RUN(test_kcomp);
    RUN(test_blocks);
    RUN(test_gate);
    RUN(test_oracle);
    RUN(test_quest);
    return test_summary();
}
