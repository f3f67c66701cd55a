// attention.c: CPU reference of causal varlen attention + the gate target (see attention.h).
//
// Exact softmax rows, one (token, KV group) at a time, parallel over tokens and groups, linear in
// memory (one row of logits per head and thread). Per document the keys are transposed once
// (kt [HKV, HD, ld]), so the logits of 8 keys are summed in registers along the head dim with
// unit-stride key loads (vectorised over keys, no horizontal sums).
#include "kernels/attention.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

enum {
    KEY_TILE = 8,   // keys whose logits one head accumulates in registers over the head dim
    OUT_TILE = 16,  // output columns one head accumulates in registers over the keys
};

typedef struct {
    const float *q;  // [T, H, HD]
    const float *v;  // [T, HKV, HD]
    const float *kt; // [HKV, HD, ld] this document's keys, transposed (rows padded to ld)
    float *out;      // [T, H, HD]
    float *target;   // [HKV, T, NB] or NULL
    int T, H, HKV, HD, NB;
    int t0, n, ld;   // the document: first chunk token, length; ld = n rounded up to KEY_TILE
} AttnArgs;

// p[h][i] = q[t, g*G + h] . k[t0 + i, g] * scale for keys i < m, the G heads of group g; p: [G, n].
static void group_logits(const AttnArgs *a, int t, int g, int m, float *p) {
    int G = a->H / a->HKV, HD = a->HD, ld = a->ld;
    float scale = 1.0f / sqrtf((float)HD);
    const float *q = a->q + ((size_t)t * a->H + (size_t)g * G) * HD, *kt = a->kt + (size_t)g * HD * ld;
    for (int i0 = 0; i0 < m; i0 += KEY_TILE) {
        int w = m - i0 < KEY_TILE ? m - i0 : KEY_TILE;  // the padded row holds KEY_TILE keys past i0
        for (int h = 0; h < G; h++) {
            const float *qh = q + (size_t)h * HD;
            float acc[KEY_TILE] = {0};
            for (int d = 0; d < HD; d++) {
                const float qd = qh[d], *kd = kt + (size_t)d * ld + i0;
#pragma omp simd
                for (int j = 0; j < KEY_TILE; j++) acc[j] += qd * kd[j];
            }
            for (int j = 0; j < w; j++) p[(size_t)h * a->n + i0 + j] = acc[j] * scale;
        }
    }
}

// Softmax of one head's logits p[0 .. m) in place, and its attention output row o [HD] (the
// columns in tiles of OUT_TILE, each summed over the keys in order).
static void softmax_output(const AttnArgs *a, int g, int m, float *p, float *o) {
    int HD = a->HD;
    float mx = -FLT_MAX;
    for (int i = 0; i < m; i++) mx = p[i] > mx ? p[i] : mx;
    double sum = 0;
    for (int i = 0; i < m; i++) sum += (p[i] = expf(p[i] - mx));
    float inv = (float)(1.0 / sum);
    for (int i = 0; i < m; i++) p[i] *= inv;
    const float *v = a->v + ((size_t)a->t0 * a->HKV + g) * HD;
    size_t vs = (size_t)a->HKV * HD;  // token stride of v
    for (int d0 = 0; d0 < HD; d0 += OUT_TILE) {
        int w = HD - d0 < OUT_TILE ? HD - d0 : OUT_TILE;
        float acc[OUT_TILE] = {0};
        if (w == OUT_TILE) {
            for (int i = 0; i < m; i++) {
                const float pi = p[i], *vr = v + i * vs + d0;
#pragma omp simd
                for (int j = 0; j < OUT_TILE; j++) acc[j] += pi * vr[j];
            }
        } else {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < w; j++) acc[j] += p[i] * v[i * vs + d0 + j];
        }
        memcpy(o + d0, acc, sizeof(float) * (size_t)w);
    }
}

// All heads of group g for token t, plus the target row. p: [G, n] scratch; bmax: [n / 64 + 1].
static void attention_group_token(const AttnArgs *a, int t, int g, float *p, float *bmax) {
    int G = a->H / a->HKV, pos = t - a->t0, m = pos + 1, nb = pos / SEER_BLOCK;  // strictly earlier blocks
    group_logits(a, t, g, m, p);
    for (int j = 0; j < nb; j++) bmax[j] = 0;
    for (int h = 0; h < G; h++) {
        float *ph = p + (size_t)h * a->n;
        softmax_output(a, g, m, ph, a->out + ((size_t)t * a->H + (size_t)g * G + h) * a->HD);
        for (int j = 0; j < nb; j++)
            for (int i = j * SEER_BLOCK; i < (j + 1) * SEER_BLOCK; i++)
                if (ph[i] > bmax[j]) bmax[j] = ph[i];
    }
    if (!a->target || nb == 0) return;
    double sum = 0;
    for (int j = 0; j < nb; j++) sum += bmax[j];
    float *row = a->target + ((size_t)g * a->T + t) * a->NB;
    for (int j = 0; j < nb; j++) row[j] = (float)(bmax[j] / (sum + 1e-9));
}

// kt [HKV, HD, ld] = the keys of tokens [t0, t0 + n), transposed; the padding is zero.
static void transpose_keys(float *kt, const float *k, int t0, int n, int ld, int HKV, int HD) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int g = 0; g < HKV; g++)
        for (int d = 0; d < HD; d++) {
            float *row = kt + ((size_t)g * HD + d) * ld;
            for (int i = 0; i < n; i++) row[i] = k[((size_t)(t0 + i) * HKV + g) * HD + d];
            for (int i = n; i < ld; i++) row[i] = 0;
        }
}

void attention_forward_cpu(float *out, float *target, const float *q, const float *k,
                           const float *v, const int *doc_lens, int n_docs, int T, int H, int HKV,
                           int HD, int NB) {
    if (target) memset(target, 0, sizeof(float) * (size_t)HKV * T * NB);
    int n_max = 0, G = H / HKV;
    for (int d = 0; d < n_docs; d++) n_max = doc_lens[d] > n_max ? doc_lens[d] : n_max;
    int ld_max = (n_max + KEY_TILE - 1) / KEY_TILE * KEY_TILE;
    float *kt = xmalloc(sizeof(float) * ((size_t)HKV * HD * ld_max + 1));  // [HKV, HD, ld]
    int t0 = 0;
    for (int d = 0; d < n_docs; d++) {
        int n = doc_lens[d];
        int ld = (n + KEY_TILE - 1) / KEY_TILE * KEY_TILE;
        AttnArgs a = {q, v, kt, out, target, T, H, HKV, HD, NB, t0, n, ld};
        transpose_keys(kt, k, t0, n, ld, HKV, HD);
#pragma omp parallel
        {
            float *p = xmalloc(sizeof(float) * ((size_t)G * n + 1));              // [G, n] logits
            float *bmax = xmalloc(sizeof(float) * (size_t)(n / SEER_BLOCK + 1));  // [nb]
#pragma omp for collapse(2) schedule(dynamic, 8)
            for (int t = t0; t < t0 + n; t++)
                for (int g = 0; g < HKV; g++) attention_group_token(&a, t, g, p, bmax);
            free(p);
            free(bmax);
        }
        t0 += n;
    }
    free(kt);
}
