// attention.c: CPU reference of causal varlen attention + the gate target (see attention.h).
//
// Exact softmax rows, one (token, KV group) at a time: clear rather than fast, but linear in
// memory (one row of logits per thread) and parallel over tokens and groups.
#include "kernels/attention.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

typedef struct {
    const float *q;  // [T, H, HD]
    const float *k;  // [T, HKV, HD]
    const float *v;  // [T, HKV, HD]
    float *out;      // [T, H, HD]
    float *target;   // [HKV, T, NB] or NULL
    int T, H, HKV, HD, NB;
} AttnArgs;

// Softmax row of query head h at chunk token t over keys [t0, t] (t0: document start).
// Writes probabilities into p[0 .. t-t0] and the attention output row.
static void attention_row(const AttnArgs *a, int t0, int t, int h, float *p) {
    int G = a->H / a->HKV, g = h / G, HD = a->HD, n = t - t0 + 1;
    const float *qr = a->q + ((size_t)t * a->H + h) * HD;
    float scale = 1.0f / sqrtf((float)HD), mx = -FLT_MAX;
    for (int i = 0; i < n; i++) {
        const float *kr = a->k + ((size_t)(t0 + i) * a->HKV + g) * HD;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int d = 0; d < HD; d++) s += qr[d] * kr[d];
        p[i] = s * scale;
        if (p[i] > mx) mx = p[i];
    }
    double sum = 0;
    for (int i = 0; i < n; i++) sum += (p[i] = expf(p[i] - mx));
    float inv = (float)(1.0 / sum);
    float *o = a->out + ((size_t)t * a->H + h) * HD;
    memset(o, 0, sizeof(float) * HD);
    for (int i = 0; i < n; i++) {
        p[i] *= inv;
        const float *vr = a->v + ((size_t)(t0 + i) * a->HKV + g) * HD;
#pragma omp simd
        for (int d = 0; d < HD; d++) o[d] += p[i] * vr[d];
    }
}

// All heads of group g for token t (in-document position t - t0), plus the target row.
static void attention_group_token(const AttnArgs *a, int t0, int t, int g, float *p, float *bmax) {
    int G = a->H / a->HKV, pos = t - t0, nb = pos / SEER_BLOCK;  // strictly earlier blocks only
    for (int j = 0; j < nb; j++) bmax[j] = 0;
    for (int h = g * G; h < (g + 1) * G; h++) {
        attention_row(a, t0, t, h, p);
        for (int j = 0; j < nb; j++)
            for (int i = j * SEER_BLOCK; i < (j + 1) * SEER_BLOCK; i++)
                if (p[i] > bmax[j]) bmax[j] = p[i];
    }
    if (!a->target || nb == 0) return;
    double sum = 0;
    for (int j = 0; j < nb; j++) sum += bmax[j];
    float *row = a->target + ((size_t)g * a->T + t) * a->NB;
    for (int j = 0; j < nb; j++) row[j] = (float)(bmax[j] / (sum + 1e-9));
}

void attention_forward_cpu(float *out, float *target, const float *q, const float *k,
                           const float *v, const int *doc_lens, int n_docs, int T, int H, int HKV,
                           int HD, int NB) {
    AttnArgs a = {q, k, v, out, target, T, H, HKV, HD, NB};
    if (target) memset(target, 0, sizeof(float) * (size_t)HKV * T * NB);
    int t0 = 0;
    for (int d = 0; d < n_docs; d++) {
        int n = doc_lens[d];
#pragma omp parallel
        {
            float *p = xmalloc(sizeof(float) * (size_t)n);                // [n] one softmax row
            float *bmax = xmalloc(sizeof(float) * (size_t)(n / SEER_BLOCK + 1));  // [nb]
#pragma omp for collapse(2) schedule(dynamic, 8)
            for (int t = t0; t < t0 + n; t++)
                for (int g = 0; g < HKV; g++) attention_group_token(&a, t0, t, g, p, bmax);
            free(p);
            free(bmax);
        }
        t0 += n;
    }
}
