// select.c: CPU references of select.h.
#define _GNU_SOURCE
#include "kernels/select.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int topk_blocks(const SelectConfig *c) { return c->budget / SEER_BLOCK; }
static int quest_pages(const SelectConfig *c) {
    int k = c->budget / SEER_BLOCK;
    return k > 3 ? k : 3;
}

int select_needed_max_sel(const SelectConfig *c, SelectPolicy policy) {
    if (c->budget == 0) return c->nb_max;
    int need = policy == SELECT_GATE ? topk_blocks(c) + 2
             : policy == SELECT_ORACLE ? topk_blocks(c) : c->G * quest_pages(c);
    return need < c->nb_max ? need : c->nb_max;
}

int select_validate_config(const SelectConfig *c, SelectPolicy policy, SeerErr *err) {
    if (c->B <= 0 || c->HKV <= 0 || c->G <= 0 || c->HD <= 0 || c->DG <= 0 || c->nb_max <= 0)
        return seer_fail(err, "select: dimensions must be positive (B %d HKV %d G %d HD %d DG %d "
                         "nb_max %d)", c->B, c->HKV, c->G, c->HD, c->DG, c->nb_max);
    if (c->DG % 2) return seer_fail(err, "select: DG %d must be even for RoPE", c->DG);
    if (c->kcomp_fp8 != 0 && c->kcomp_fp8 != 1)
        return seer_fail(err, "select: kcomp_fp8 must be 0 or 1, got %d", c->kcomp_fp8);
    if (c->budget < 0) return seer_fail(err, "select: budget %d < 0", c->budget);
    if (c->budget == 0 && policy == SELECT_QUEST)
        return seer_fail(err, "select: Quest selects by token budget; budget 0 is not allowed");
    if (c->budget == 0 && !(c->threshold >= 0 && c->threshold < 1))
        return seer_fail(err, "select: threshold %g is outside [0, 1)", (double)c->threshold);
    if (c->budget > 0 && c->budget < SEER_BLOCK && policy != SELECT_QUEST)
        return seer_fail(err, "select: budget %d is smaller than one block (%d tokens)", c->budget,
                         SEER_BLOCK);
    int need = select_needed_max_sel(c, policy);
    if (c->max_sel < need)
        return seer_fail(err, "select: max_sel %d is smaller than the %d entries a list may need",
                         c->max_sel, need);
    return 0;
}

void select_rope_cpu(float *x, int DG, int pos, float theta) {
    int half = DG / 2;
    for (int i = 0; i < half; i++) {
        float inv = (float)(1.0 / pow((double)theta, (double)(2 * i) / DG));
        float ang = (float)pos * inv;
        float cs = (float)cos((double)ang), sn = (float)sin((double)ang);
        float a = x[i], b = x[i + half];
        x[i] = a * cs - b * sn;
        x[i + half] = b * cs + a * sn;
    }
}

// y [DG] = rmsnorm(y) * w, eps 1e-6, in place.
static void rmsnorm(float *y, int DG, const float *w) {
    double ss = 0;
    for (int i = 0; i < DG; i++) ss += (double)y[i] * y[i];
    float r = (float)(1.0 / sqrt(ss / DG + 1e-6));
    for (int i = 0; i < DG; i++) y[i] = y[i] * r * w[i];
}

// y [DG] = x [n_in] @ w [n_in, DG].
static void matvec(float *y, const float *x, const float *w, int n_in, int DG) {
    for (int o = 0; o < DG; o++) y[o] = 0;
    for (int i = 0; i < n_in; i++)
        for (int o = 0; o < DG; o++) y[o] += x[i] * w[(int64_t)i * DG + o];
}

void select_kcomp_cpu(float *kg, const float *keys, int n, int HD, int DG, const float *wk,
                      const float *knorm, int pos, float theta) {
    float *kc = xmalloc(sizeof(float) * 3 * HD);  // max | min | mean
    for (int d = 0; d < HD; d++) {
        float mx = keys[d], mn = keys[d], sum = 0;
        for (int i = 0; i < n; i++) {
            float x = keys[(int64_t)i * HD + d];
            mx = fmaxf(mx, x), mn = fminf(mn, x), sum += x;
        }
        kc[d] = mx, kc[HD + d] = mn, kc[2 * HD + d] = sum / n;
    }
    matvec(kg, kc, wk, 3 * HD, DG);
    rmsnorm(kg, DG, knorm);
    select_rope_cpu(kg, DG, pos, theta);
    free(kc);
}

void select_kcomp_update_cpu(float *kcomp, const float *kraw, const int32_t *block,
                             const float *wk, const float *knorm, const SelectConfig *c) {
    int HD = c->HD, DG = c->DG;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->HKV; h++) {
            int j = block[b];
            if (j < 0) continue;
            int pos = j * SEER_BLOCK + (c->rope_last ? SEER_BLOCK - 1 : 0);
            float *dst = kcomp + (((int64_t)b * c->HKV + h) * c->nb_max + j) * DG;
            const float *keys = kraw + ((int64_t)b * c->HKV + h) * SEER_BLOCK * HD;
            select_kcomp_cpu(dst, keys, SEER_BLOCK, HD, DG, wk + (int64_t)h * 3 * HD * DG, knorm,
                             pos, c->rope_theta);
            for (int d = 0; c->kcomp_fp8 && d < DG; d++) dst[d] = e4m3_to_f32(f32_to_e4m3(dst[d]));
        }
}

void select_gate_query_cpu(float *qg, const float *q, int G, int HD, int DG, const float *wq,
                           const float *qnorm, int pos, float theta) {
    matvec(qg, q, wq, G * HD, DG);
    rmsnorm(qg, DG, qnorm);
    select_rope_cpu(qg, DG, pos, theta);
}

typedef struct {
    const float *key;
} KeyOrder;

static int by_key_desc(const void *a, const void *b, void *ctx) {
    const float *key = ((const KeyOrder *)ctx)->key;
    int i = *(const int *)a, j = *(const int *)b;
    if (key[i] != key[j]) return key[i] > key[j] ? -1 : 1;
    return i - j;
}

// Writes the blocks flagged in flags[0..nb-1] into list [max_sel], descending, -1 padded.
static int flags_to_list(int32_t *list, int max_sel, const unsigned char *flags, int nb) {
    int n = 0;
    for (int j = nb - 1; j >= 0; j--)
        if (flags[j]) {
            if (n < max_sel) list[n] = j;
            n++;
        }
    for (int i = n; i < max_sel; i++) list[i] = -1;
    return n;
}

// Flags the k highest keys (ties: lower index first), every candidate when n <= k, or every
// key > threshold when k == 0.
static void flag_blocks(unsigned char *flags, const float *key, int n, int k, float threshold) {
    if (k <= 0) {
        for (int j = 0; j < n; j++)
            if (key[j] > threshold) flags[j] = 1;
        return;
    }
    if (n <= k) {
        memset(flags, 1, (size_t)n);
        return;
    }
    int *order = xmalloc(sizeof(int) * n);
    for (int j = 0; j < n; j++) order[j] = j;
    KeyOrder ko = {key};
    qsort_r(order, (size_t)n, sizeof(int), by_key_desc, &ko);
    for (int i = 0; i < k; i++) flags[order[i]] = 1;
    free(order);
}

int select_blocks_cpu(int32_t *list, int max_sel, const float *key, int n_cand, int k,
                      float threshold, int force_a, int force_b) {
    int nb = n_cand;
    if (force_a >= nb) nb = force_a + 1;
    if (force_b >= nb) nb = force_b + 1;
    unsigned char *flags = xcalloc((size_t)nb + 1, 1);
    flag_blocks(flags, key, n_cand, k, threshold);
    if (force_a >= 0) flags[force_a] = 1;
    if (force_b >= 0) flags[force_b] = 1;
    int n = flags_to_list(list, max_sel, flags, nb);
    free(flags);
    return n;
}

static void gate_one(int32_t *list, float *probs, const float *q_nope, const float *kcomp,
                     int len, const float *wq, const float *qnorm, const SelectConfig *c,
                     float *qg, float *score) {
    int n_cand = len / SEER_BLOCK, cur = (len - 1) / SEER_BLOCK, DG = c->DG;
    if (probs) memset(probs, 0, sizeof(float) * c->nb_max);
    if (len <= 0) {
        for (int i = 0; i < c->max_sel; i++) list[i] = -1;
        return;
    }
    select_gate_query_cpu(qg, q_nope, c->G, c->HD, DG, wq, qnorm, len - 1, c->rope_theta);
    float mx = -INFINITY, sum = 0, inv = 1.0f / sqrtf((float)DG);
    for (int j = 0; j < n_cand; j++) {
        float s = 0;
        for (int d = 0; d < DG; d++) s += qg[d] * kcomp[(int64_t)j * DG + d];
        score[j] = s * inv;
        mx = fmaxf(mx, score[j]);
    }
    for (int j = 0; j < n_cand; j++) sum += expf(score[j] - mx);
    float *prob = probs ? probs : score + c->nb_max;
    for (int j = 0; j < n_cand; j++) prob[j] = expf(score[j] - mx) / sum;
    int k = topk_blocks(c);
    select_blocks_cpu(list, c->max_sel, k > 0 ? score : prob, n_cand, k, c->threshold, 0, cur);
}

void select_gate_cpu(int32_t *idx, float *probs, const float *q_nope, const float *kcomp,
                     const int32_t *cache_len, const float *wq, const float *qnorm,
                     const SelectConfig *c) {
    int HD = c->HD, DG = c->DG, G = c->G;
#pragma omp parallel
    {
        float *qg = xmalloc(sizeof(float) * DG), *score = xmalloc(sizeof(float) * 2 * c->nb_max);
#pragma omp for collapse(2)
        for (int b = 0; b < c->B; b++)
            for (int h = 0; h < c->HKV; h++) {
                int64_t pair = (int64_t)b * c->HKV + h;
                gate_one(idx + pair * c->max_sel, probs ? probs + pair * c->nb_max : NULL,
                         q_nope + (pair * G) * HD, kcomp + pair * c->nb_max * DG, cache_len[b],
                         wq + (int64_t)h * G * HD * DG, qnorm, c, qg, score);
            }
        free(qg), free(score);
    }
}

// M[j] over the group's heads of pair (b, kvh), normalised to sum 1 (section 2 steps 1-3, 5).
static void oracle_mass(float *M, const float *q, const float *k, int len, int G, int HD,
                        double *logit) {
    int nb = ceil_div(len, SEER_BLOCK);
    for (int j = 0; j < nb; j++) M[j] = 0;
    float scale = 1.0f / sqrtf((float)HD);
    for (int g = 0; g < G; g++) {
        double mx = -INFINITY, sum = 0;
        for (int i = 0; i < len; i++) {
            double x = 0;
            for (int d = 0; d < HD; d++) x += (double)q[g * HD + d] * k[(int64_t)i * HD + d];
            logit[i] = x * scale;
            if (logit[i] > mx) mx = logit[i];
        }
        for (int i = 0; i < len; i++) sum += exp(logit[i] - mx);
        for (int i = 0; i < len; i++) {
            float m = (float)(exp(logit[i] - mx) / sum);
            int j = i / SEER_BLOCK;
            if (m > M[j]) M[j] = m;
        }
    }
    double tot = 0;
    for (int j = 0; j < nb; j++) tot += M[j];
    for (int j = 0; j < nb; j++) M[j] = (float)(M[j] / (tot + 1e-9));
}

void select_oracle_cpu(int32_t *idx, const float *q, const float *k, int Tmax,
                       const int32_t *cache_len, const SelectConfig *c) {
    int HD = c->HD, G = c->G;
#pragma omp parallel
    {
        float *M = xmalloc(sizeof(float) * c->nb_max);
        double *logit = xmalloc(sizeof(double) * Tmax);
#pragma omp for collapse(2)
        for (int b = 0; b < c->B; b++)
            for (int h = 0; h < c->HKV; h++) {
                int64_t pair = (int64_t)b * c->HKV + h;
                int len = cache_len[b];
                oracle_mass(M, q + pair * G * HD, k + pair * Tmax * HD, len, G, HD, logit);
                select_blocks_cpu(idx + pair * c->max_sel, c->max_sel, M, ceil_div(len, SEER_BLOCK),
                                  topk_blocks(c), c->threshold, -1, -1);
            }
        free(M), free(logit);
    }
}

void select_quest_update_cpu(float *kmax, float *kmin, const float *k_new,
                             const int32_t *cache_len, const SelectConfig *c) {
    int HD = c->HD;
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->HKV; h++) {
            int pos = cache_len[b] - 1, page = pos / SEER_BLOCK;
            int64_t pair = (int64_t)b * c->HKV + h, off = (pair * c->nb_max + page) * HD;
            const float *x = k_new + pair * HD;
            for (int d = 0; d < HD; d++) {
                int first = pos % SEER_BLOCK == 0;
                kmax[off + d] = first ? x[d] : fmaxf(kmax[off + d], x[d]);
                kmin[off + d] = first ? x[d] : fminf(kmin[off + d], x[d]);
            }
        }
}

void select_quest_cpu(int32_t *idx, const float *q, const float *kmax, const float *kmin,
                      const int32_t *cache_len, const SelectConfig *c) {
    int HD = c->HD, G = c->G, kq = quest_pages(c);
#pragma omp parallel
    {
        float *score = xmalloc(sizeof(float) * c->nb_max);
        unsigned char *flags = xmalloc((size_t)c->nb_max);
#pragma omp for collapse(2)
        for (int b = 0; b < c->B; b++)
            for (int h = 0; h < c->HKV; h++) {
                int64_t pair = (int64_t)b * c->HKV + h;
                int np = ceil_div(cache_len[b], SEER_BLOCK);
                memset(flags, 0, (size_t)c->nb_max);
                for (int g = 0; g < G; g++) {
                    const float *qh = q + (pair * G + g) * HD;
                    for (int j = 0; j < np; j++) {
                        const float *mx = kmax + (pair * c->nb_max + j) * HD;
                        const float *mn = kmin + (pair * c->nb_max + j) * HD;
                        float s = 0;
                        for (int d = 0; d < HD; d++) s += fmaxf(qh[d] * mx[d], qh[d] * mn[d]);
                        score[j] = s;
                    }
                    flag_blocks(flags, score, np, kq, 0.0f);
                }
                flags_to_list(idx + pair * c->max_sel, c->max_sel, flags, np);
            }
        free(score), free(flags);
    }
}
