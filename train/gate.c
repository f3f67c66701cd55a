// gate.c: CPU reference of the AttnGate (see gate.h): parameters, init, forward, backward.
//
// Clear loops, fp32 storage and products; sums of squares and dot products that feed a norm are
// accumulated in double. Work is split over groups (OpenMP); every sum has a fixed order, so the
// results do not depend on the thread count.
#include "train/gate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/rope.h"

// ---------------------------------------------------------------------------------------------
// Parameters

int64_t gate_param_count(GateShape s) {
    return (int64_t)s.HKV * s.G * s.HD * s.DG + (int64_t)s.HKV * 3 * s.HD * s.DG + 2 * (int64_t)s.DG;
}

GateParams gate_params_view(float *p, GateShape s) {
    GateParams v;
    v.wq = p;
    v.wk = v.wq + (size_t)s.HKV * s.G * s.HD * s.DG;
    v.qnorm_w = v.wk + (size_t)s.HKV * 3 * s.HD * s.DG;
    v.knorm_w = v.qnorm_w + s.DG;
    return v;
}

int gate_shape_check(GateShape s, SeerErr *err) {
    if (s.HKV < 1 || s.G < 1 || s.HD < 1 || s.DG < 1)
        return seer_fail(err, "gate shape: HKV %d, G %d, HD %d, DG %d must all be >= 1", s.HKV, s.G,
                         s.HD, s.DG);
    if (s.DG % 2 || s.DG > GATE_DG_MAX)
        return seer_fail(err, "gate shape: DG %d must be even and <= %d (RoPE pairs)", s.DG,
                         GATE_DG_MAX);
    return 0;
}

int gate_docs_check(const int *doc_lens, int n_docs, int T, int NB, SeerErr *err) {
    if (!doc_lens) return seer_fail(err, "gate chunk: doc_lens is NULL");
    if (T < 1 || n_docs < 1)
        return seer_fail(err, "gate chunk: T %d and n_docs %d must be >= 1", T, n_docs);
    int64_t sum = 0;
    int longest = 0;
    for (int d = 0; d < n_docs; d++) {
        if (doc_lens[d] < 1)
            return seer_fail(err, "gate chunk: document %d has length %d (must be >= 1)", d,
                             doc_lens[d]);
        sum += doc_lens[d];
        if (doc_lens[d] > longest) longest = doc_lens[d];
    }
    if (sum != T)
        return seer_fail(err, "gate chunk: document lengths sum to %lld, expected T = %d",
                         (long long)sum, T);
    if (NB < ceil_div(longest, SEER_BLOCK))
        return seer_fail(err, "gate chunk: NB %d < %d blocks of the longest document (%d tokens)",
                         NB, ceil_div(longest, SEER_BLOCK), longest);
    return 0;
}

int gate_chunk_check(const GateChunk *c, GateShape s, SeerErr *err) {
    if (gate_shape_check(s, err)) return -1;
    if (!c->q || !c->k) return seer_fail(err, "gate chunk: q or k is NULL");
    if (!(c->rope_theta > 0)) return seer_fail(err, "gate chunk: rope_theta %g must be > 0", c->rope_theta);
    return gate_docs_check(c->doc_lens, c->n_docs, c->T, c->NB, err);
}

static uint64_t splitmix64(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Uniform in (0, 1]: 53 random bits.
static double unit_open0(uint64_t x) { return (double)((x >> 11) + 1) * 0x1.0p-53; }

void gate_params_init(float *p, GateShape s, uint64_t seed, int layer) {
    int64_t n_lin = gate_param_count(s) - 2 * (int64_t)s.DG;
    uint64_t key = splitmix64(seed ^ splitmix64(0x5eed0000ull + (uint64_t)layer));
    for (int64_t e = 0; e < n_lin; e++) {
        double u1 = unit_open0(splitmix64(key + 2 * (uint64_t)e));
        double u2 = unit_open0(splitmix64(key + 2 * (uint64_t)e + 1));
        p[e] = (float)(0.02 * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
    }
    for (int64_t e = n_lin; e < n_lin + 2 * s.DG; e++) p[e] = 1.0f;
}

// ---------------------------------------------------------------------------------------------
// Forward

// u = x W for one row. u: [DG]; x: [K]; W: [K, DG].
static void proj_row(float *u, const float *x, const float *W, int K, int DG) {
    memset(u, 0, sizeof(float) * DG);
    for (int k = 0; k < K; k++) {
        float xv = x[k];
        const float *w = W + (size_t)k * DG;
        for (int o = 0; o < DG; o++) u[o] += xv * w[o];
    }
}

// out = rope(u / rms(u) * w); returns 1/rms. out, u, w: [DG]; cs, sn: [DG/2] of the position.
static float norm_rope_row(float *out, const float *u, const float *w, const float *cs,
                           const float *sn, int DG) {
    double ss = 0;
    for (int i = 0; i < DG; i++) ss += (double)u[i] * u[i];
    float rinv = (float)(1.0 / sqrt(ss / DG + GATE_RMS_EPS));
    int h = DG / 2;
    for (int i = 0; i < h; i++) {
        float a = u[i] * rinv * w[i], b = u[i + h] * rinv * w[i + h];
        out[i] = a * cs[i] - b * sn[i];
        out[i + h] = b * cs[i] + a * sn[i];
    }
    return rinv;
}

// Chunk bookkeeping: positions, documents, key blocks and RoPE tables.
static void fwd_layout(GateFwdCpu *f, GateShape s, const GateChunk *c) {
    f->s = s;
    f->T = c->T;
    f->n_docs = c->n_docs;
    f->pos = xmalloc(sizeof(int) * c->T);
    f->doc_of = xmalloc(sizeof(int) * c->T);
    f->blk0 = xmalloc(sizeof(int) * c->n_docs);
    f->tok0 = xmalloc(sizeof(int) * c->n_docs);
    rope_positions(f->pos, c->doc_lens, c->n_docs);
    int t = 0, nbt = 0, longest = 0;
    for (int d = 0; d < c->n_docs; d++) {
        f->tok0[d] = t;
        f->blk0[d] = nbt;
        for (int p = 0; p < c->doc_lens[d]; p++) f->doc_of[t++] = d;
        nbt += ceil_div(c->doc_lens[d], SEER_BLOCK);
        if (c->doc_lens[d] > longest) longest = c->doc_lens[d];
    }
    f->NBT = nbt;
    int *all = xmalloc(sizeof(int) * longest);
    for (int p = 0; p < longest; p++) all[p] = p;
    f->cos_t = xmalloc(sizeof(float) * longest * (s.DG / 2));
    f->sin_t = xmalloc(sizeof(float) * longest * (s.DG / 2));
    rope_table_cpu(f->cos_t, f->sin_t, all, longest, s.DG, c->rope_theta);
    free(all);
}

// Query branch of group g for every token.
static void fwd_query_group(GateFwdCpu *f, GateParams P, const GateChunk *c, int g) {
    GateShape s = f->s;
    int K = s.G * s.HD, H = s.HKV * s.G, h = s.DG / 2;
    const float *W = P.wq + (size_t)g * K * s.DG;
    for (int t = 0; t < f->T; t++) {
        size_t row = (size_t)g * f->T + t;
        float *u = f->uq + row * s.DG;
        proj_row(u, c->q + ((size_t)t * H + (size_t)g * s.G) * s.HD, W, K, s.DG);
        const float *cs = f->cos_t + (size_t)f->pos[t] * h, *sn = f->sin_t + (size_t)f->pos[t] * h;
        f->rq[row] = norm_rope_row(f->qr + row * s.DG, u, P.qnorm_w, cs, sn, s.DG);
    }
}

// Max | min | mean over tokens [t0, t0 + n) of k[:, g]. kc: [3*HD].
static void pool_block(float *kc, const float *k, int t0, int n, int g, GateShape s) {
    int HD = s.HD;
    for (int d = 0; d < HD; d++) {
        float mx = -INFINITY, mn = INFINITY, sum = 0;
        for (int i = 0; i < n; i++) {
            float v = k[((size_t)(t0 + i) * s.HKV + g) * HD + d];
            mx = fmaxf(mx, v);
            mn = fminf(mn, v);
            sum += v;
        }
        kc[d] = mx;
        kc[HD + d] = mn;
        kc[2 * HD + d] = sum / (float)n;
    }
}

// Key branch of group g for every block of every document.
static void fwd_key_group(GateFwdCpu *f, GateParams P, const GateChunk *c, int g) {
    GateShape s = f->s;
    int h = s.DG / 2;
    const float *W = P.wk + (size_t)g * 3 * s.HD * s.DG;
    for (int d = 0; d < f->n_docs; d++) {
        int len = c->doc_lens[d];
        for (int j = 0; j < ceil_div(len, SEER_BLOCK); j++) {
            size_t row = (size_t)g * f->NBT + f->blk0[d] + j;
            int n = len - j * SEER_BLOCK < SEER_BLOCK ? len - j * SEER_BLOCK : SEER_BLOCK;
            float *kc = f->kc + row * 3 * s.HD, *u = f->uk + row * s.DG;
            pool_block(kc, c->k, f->tok0[d] + j * SEER_BLOCK, n, g, s);
            proj_row(u, kc, W, 3 * s.HD, s.DG);
            size_t p = (size_t)j * SEER_BLOCK;
            f->rk[row] = norm_rope_row(f->kr + row * s.DG, u, P.knorm_w, f->cos_t + p * h,
                                       f->sin_t + p * h, s.DG);
        }
    }
}

void gate_forward_cpu(GateFwdCpu *f, const float *params, GateShape s, const GateChunk *c) {
    fwd_layout(f, s, c);
    size_t T = c->T, NBT = f->NBT;
    f->uq = xmalloc(sizeof(float) * s.HKV * T * s.DG);
    f->qr = xmalloc(sizeof(float) * s.HKV * T * s.DG);
    f->rq = xmalloc(sizeof(float) * s.HKV * T);
    f->kc = xmalloc(sizeof(float) * s.HKV * NBT * 3 * s.HD);
    f->uk = xmalloc(sizeof(float) * s.HKV * NBT * s.DG);
    f->kr = xmalloc(sizeof(float) * s.HKV * NBT * s.DG);
    f->rk = xmalloc(sizeof(float) * s.HKV * NBT);
    GateParams P = gate_params_view((float *)params, s);
#pragma omp parallel for schedule(static)
    for (int g = 0; g < s.HKV; g++) {
        fwd_query_group(f, P, c, g);
        fwd_key_group(f, P, c, g);
    }
}

void gate_fwd_free(GateFwdCpu *f) {
    free(f->pos), free(f->doc_of), free(f->blk0), free(f->tok0), free(f->cos_t), free(f->sin_t);
    free(f->uq), free(f->rq), free(f->qr), free(f->kc), free(f->uk), free(f->rk), free(f->kr);
    memset(f, 0, sizeof *f);
}

int gate_score_row_cpu(float *s, const GateFwdCpu *f, int g, int t) {
    int DG = f->s.DG, n = f->pos[t] / SEER_BLOCK;
    const float *q = f->qr + ((size_t)g * f->T + t) * DG;
    const float *kr = f->kr + ((size_t)g * f->NBT + f->blk0[f->doc_of[t]]) * DG;
    float scale = 1.0f / sqrtf((float)DG);
    for (int j = 0; j < n; j++) {
        const float *k = kr + (size_t)j * DG;
        float dot = 0;
        for (int i = 0; i < DG; i++) dot += q[i] * k[i];
        s[j] = dot * scale;
    }
    return n;
}

// out[j] = s[j] - logsumexp(s[0..n-1]) for n >= 1.
static void log_softmax_row(float *out, const float *s, int n) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) mx = fmaxf(mx, s[j]);
    double z = 0;
    for (int j = 0; j < n; j++) z += exp((double)s[j] - mx);
    float lse = mx + (float)log(z);
    for (int j = 0; j < n; j++) out[j] = s[j] - lse;
}

int gate_scores_cpu(float *out, const float *params, GateShape s, const GateChunk *c, SeerErr *err) {
    if (gate_chunk_check(c, s, err)) return -1;
    GateFwdCpu f;
    gate_forward_cpu(&f, params, s, c);
    int NB = c->NB;
#pragma omp parallel for schedule(static)
    for (int g = 0; g < s.HKV; g++) {
        float *row_s = xmalloc(sizeof(float) * NB);
        for (int t = 0; t < c->T; t++) {
            float *o = out + ((size_t)g * c->T + t) * NB;
            int n = gate_score_row_cpu(row_s, &f, g, t);
            if (n) log_softmax_row(o, row_s, n);
            for (int j = n; j < NB; j++) o[j] = -INFINITY;
        }
        free(row_s);
    }
    gate_fwd_free(&f);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Backward

// From dy ([DG], gradient after RoPE) to the gradient at u (written into dy), for
// out = rope(u * rinv * w). Adds d/dw into dw. cs, sn: [DG/2] of the row's position.
static void norm_rope_backward_row(float *dy, float *dw, const float *u, float rinv, const float *w,
                                   const float *cs, const float *sn, int DG) {
    int h = DG / 2;
    for (int i = 0; i < h; i++) {  // inverse rotation (the transpose of RoPE)
        float a = dy[i], b = dy[i + h];
        dy[i] = a * cs[i] + b * sn[i];
        dy[i + h] = b * cs[i] - a * sn[i];
    }
    double dot = 0;  // sum_k (dn_k w_k) u_k
    for (int i = 0; i < DG; i++) {
        dw[i] += dy[i] * u[i] * rinv;
        dy[i] *= w[i];
        dot += (double)dy[i] * u[i];
    }
    float c = (float)(dot * rinv * rinv * rinv / DG);
    for (int i = 0; i < DG; i++) dy[i] = rinv * dy[i] - u[i] * c;
}

static int row_is_zero(const float *x, int n) {
    for (int i = 0; i < n; i++)
        if (x[i] != 0) return 0;
    return 1;
}

// dW += x^T du for one row. dW: [K, DG]; x: [K]; du: [DG].
static void proj_backward_row(float *dW, const float *x, const float *du, int K, int DG) {
    for (int k = 0; k < K; k++) {
        float xv = x[k];
        float *w = dW + (size_t)k * DG;
        for (int o = 0; o < DG; o++) w[o] += xv * du[o];
    }
}

void gate_backward_group_cpu(GateParams grad, float *dqnorm, float *dknorm, float *dqr, float *dkr,
                             const GateFwdCpu *f, const float *params, const GateChunk *c, int g) {
    GateShape s = f->s;
    GateParams P = gate_params_view((float *)params, s);
    int K = s.G * s.HD, H = s.HKV * s.G, h = s.DG / 2;
    float *dWq = grad.wq + (size_t)g * K * s.DG, *dWk = grad.wk + (size_t)g * 3 * s.HD * s.DG;
    for (int t = 0; t < f->T; t++) {
        float *dy = dqr + (size_t)t * s.DG;
        if (row_is_zero(dy, s.DG)) continue;  // unsupervised rows contribute nothing
        size_t row = (size_t)g * f->T + t, p = f->pos[t];
        norm_rope_backward_row(dy, dqnorm, f->uq + row * s.DG, f->rq[row], P.qnorm_w,
                               f->cos_t + p * h, f->sin_t + p * h, s.DG);
        proj_backward_row(dWq, c->q + ((size_t)t * H + (size_t)g * s.G) * s.HD, dy, K, s.DG);
    }
    for (int d = 0; d < f->n_docs; d++) {
        for (int j = 0; j < ceil_div(c->doc_lens[d], SEER_BLOCK); j++) {
            int b = f->blk0[d] + j;
            float *dy = dkr + (size_t)b * s.DG;
            if (row_is_zero(dy, s.DG)) continue;
            size_t row = (size_t)g * f->NBT + b, p = (size_t)j * SEER_BLOCK;
            norm_rope_backward_row(dy, dknorm, f->uk + row * s.DG, f->rk[row], P.knorm_w,
                                   f->cos_t + p * h, f->sin_t + p * h, s.DG);
            proj_backward_row(dWk, f->kc + row * 3 * s.HD, dy, 3 * s.HD, s.DG);
        }
    }
}
