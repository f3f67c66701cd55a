// forward_cpu.c: see forward_cpu.h. One straight function per step, llama2.c style.
#include "model/forward_cpu.h"

#include <stdlib.h>
#include <string.h>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"

// ---------------------------------------------------------------------------------------------
// Activations of one call: a size plan, one allocation, views carved out of it.

typedef struct {
    float *x;       // [T, D] residual stream
    float *xn;      // [T, D] normalised input of a sublayer, then its output
    float *q_nope;  // [T, H, HD]
    float *k_nope;  // [T, HKV, HD]
    float *q;       // [T, H, HD] after RoPE
    float *k;       // [T, HKV, HD] after RoPE
    float *v;       // [T, HKV, HD]
    float *att;     // [T, H, HD] attention output
    float *hg;      // [T, F] gate projection, then silu(gate) * up
    float *hu;      // [T, F] up projection
    float *target;  // [HKV, T, NB] or NULL
    float *last;    // [n_docs, D] final-normed last token of each document (DOC_LAST logits)
    float *cos_t;   // [T, HD/2]
    float *sin_t;   // [T, HD/2]
    int *pos;       // [T]
    void *block;    // the one allocation
} ForwardActs;

// Reserves `bytes` (64-byte aligned) at *off; returns base + that offset, or NULL while sizing.
static void *acts_take(char *base, size_t *off, size_t bytes) {
    void *p = base ? base + *off : NULL;
    *off += (bytes + 63) & ~(size_t)63;
    return p;
}

// Lays out every buffer twice: first with base NULL to size the plan, then for real.
static size_t acts_layout(ForwardActs *a, char *base, const ModelConfig *c, int T, int NB,
                          int n_docs) {
    size_t off = 0;
    size_t f = sizeof(float), TD = (size_t)T * c->D, TQ = (size_t)T * c->H * c->HD;
    size_t TK = (size_t)T * c->HKV * c->HD, TF = (size_t)T * c->F;
    a->x = acts_take(base, &off, TD * f);
    a->xn = acts_take(base, &off, TD * f);
    a->q_nope = acts_take(base, &off, TQ * f);
    a->k_nope = acts_take(base, &off, TK * f);
    a->q = acts_take(base, &off, TQ * f);
    a->k = acts_take(base, &off, TK * f);
    a->v = acts_take(base, &off, TK * f);
    a->att = acts_take(base, &off, TQ * f);
    a->hg = acts_take(base, &off, TF * f);
    a->hu = acts_take(base, &off, TF * f);
    a->target = NB ? acts_take(base, &off, (size_t)c->HKV * T * NB * f) : NULL;
    a->last = acts_take(base, &off, (size_t)n_docs * c->D * f);
    a->cos_t = acts_take(base, &off, (size_t)T * (c->HD / 2) * f);
    a->sin_t = acts_take(base, &off, (size_t)T * (c->HD / 2) * f);
    a->pos = acts_take(base, &off, (size_t)T * sizeof(int));
    return off;
}

static void acts_alloc(ForwardActs *a, const ModelConfig *c, int T, int NB, int n_docs) {
    size_t bytes = acts_layout(a, NULL, c, T, NB, n_docs);
    char *block = xmalloc(bytes);
    acts_layout(a, block, c, T, NB, n_docs);
    a->block = block;
}

// ---------------------------------------------------------------------------------------------
// Steps

static int forward_check_input(const ModelConfig *c, const int *ids, int T, const int *doc_lens,
                               int n_docs, SeerErr *err) {
    if (T < 1) return seer_fail(err, "forward: no tokens (T = %d)", T);
    if (n_docs < 1) return seer_fail(err, "forward: no documents (n_docs = %d)", n_docs);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= c->V)
            return seer_fail(err, "forward: token id %d (position %d) is outside the vocabulary [0, %d)",
                             ids[t], t, c->V);
    long sum = 0;
    for (int d = 0; d < n_docs; d++) {
        if (doc_lens[d] < 1)
            return seer_fail(err, "forward: document %d has length %d (must be >= 1)", d, doc_lens[d]);
        sum += doc_lens[d];
    }
    if (sum != T)
        return seer_fail(err, "forward: document lengths sum to %ld but there are %d tokens", sum, T);
    return 0;
}

// x[t, :] = embed[ids[t], :]
static void embed_forward(float *x, const Tensor *embed, const int *ids, int T, int D) {
#pragma omp parallel for schedule(static) if (T > 16)
    for (int t = 0; t < T; t++)
        for (int i = 0; i < D; i++) x[(size_t)t * D + i] = tensor_get(embed, (int64_t)ids[t] * D + i);
}

// x += y, both [n]
static void residual_add(float *x, const float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}

static int max_doc_len(const int *doc_lens, int n_docs) {
    int m = 0;
    for (int d = 0; d < n_docs; d++) m = doc_lens[d] > m ? doc_lens[d] : m;
    return m;
}

// Attention sublayer of layer l: x += o_proj(attention(rope(qk_norm(qkv(rmsnorm(x))))))
static int attention_block(const Model *m, int l, ForwardActs *a, int T, const int *doc_lens,
                           int n_docs, int NB, const ForwardHook *hook, SeerErr *err) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *w = &m->w.layers[l];
    int D = c->D, H = c->H, HKV = c->HKV, HD = c->HD;
    size_t TQ = (size_t)T * H * HD, TK = (size_t)T * HKV * HD;

    rmsnorm_forward_cpu(a->xn, a->x, &w->attn_norm, T, D, c->rms_eps);
    matmul_forward_cpu(a->q_nope, a->xn, &w->wq, &w->bq, T, D, H * HD);
    matmul_forward_cpu(a->k_nope, a->xn, &w->wk, &w->bk, T, D, HKV * HD);
    matmul_forward_cpu(a->v, a->xn, &w->wv, &w->bv, T, D, HKV * HD);
    if (c->qk_norm) {
        rmsnorm_forward_cpu(a->q_nope, a->q_nope, &w->q_norm, T * H, HD, c->rms_eps);
        rmsnorm_forward_cpu(a->k_nope, a->k_nope, &w->k_norm, T * HKV, HD, c->rms_eps);
    }
    memcpy(a->q, a->q_nope, TQ * sizeof(float));
    memcpy(a->k, a->k_nope, TK * sizeof(float));
    rope_apply_cpu(a->q, a->cos_t, a->sin_t, T, H, HD);
    rope_apply_cpu(a->k, a->cos_t, a->sin_t, T, HKV, HD);
    attention_forward_cpu(a->att, a->target, a->q, a->k, a->v, doc_lens, n_docs, T, H, HKV, HD, NB);

    if (hook && hook->fn) {
        ForwardLayerView view = {
            .layer = l, .T = T, .H = H, .HKV = HKV, .HD = HD, .NB = NB, .n_docs = n_docs,
            .doc_lens = doc_lens, .pos = a->pos, .q_nope = a->q_nope, .k_nope = a->k_nope,
            .q = a->q, .k = a->k, .v = a->v, .target = a->target,
        };
        if (hook->fn(hook->ctx, &view, err)) return -1;
    }

    matmul_forward_cpu(a->xn, a->att, &w->wo, NULL, T, H * HD, D);
    residual_add(a->x, a->xn, (size_t)T * D);
    return 0;
}

// MLP sublayer of layer l: x += down(silu(gate(rmsnorm(x))) * up(rmsnorm(x)))
static void mlp_block(const Model *m, int l, ForwardActs *a, int T) {
    const ModelConfig *c = &m->cfg;
    const LayerWeights *w = &m->w.layers[l];
    int D = c->D, F = c->F;
    rmsnorm_forward_cpu(a->xn, a->x, &w->mlp_norm, T, D, c->rms_eps);
    matmul_forward_cpu(a->hg, a->xn, &w->w_gate, NULL, T, D, F);
    matmul_forward_cpu(a->hu, a->xn, &w->w_up, NULL, T, D, F);
    swiglu_forward_cpu(a->hg, a->hg, a->hu, (int64_t)T * F);
    matmul_forward_cpu(a->xn, a->hg, &w->w_down, NULL, T, F, D);
    residual_add(a->x, a->xn, (size_t)T * D);
}

// Final norm and lm head into logits (see ForwardLogits).
static void logits_forward(const Model *m, ForwardActs *a, int T, const int *doc_lens, int n_docs,
                           float *logits, ForwardLogits rows) {
    const ModelConfig *c = &m->cfg;
    rmsnorm_forward_cpu(a->xn, a->x, &m->w.final_norm, T, c->D, c->rms_eps);
    if (rows == FORWARD_LOGITS_ALL) {
        matmul_forward_cpu(logits, a->xn, &m->w.lm_head, NULL, T, c->D, c->V);
        return;
    }
    int end = 0;
    for (int d = 0; d < n_docs; d++) {
        end += doc_lens[d];
        memcpy(a->last + (size_t)d * c->D, a->xn + (size_t)(end - 1) * c->D, c->D * sizeof(float));
    }
    matmul_forward_cpu(logits, a->last, &m->w.lm_head, NULL, n_docs, c->D, c->V);
}

// ---------------------------------------------------------------------------------------------

int forward_cpu(const Model *m, const int *ids, int T, const int *doc_lens, int n_docs,
                float *logits, ForwardLogits rows, const ForwardHook *hook, SeerErr *err) {
    const ModelConfig *c = &m->cfg;
    if (forward_check_input(c, ids, T, doc_lens, n_docs, err)) return -1;
    int NB = hook && hook->want_target ? ceil_div(max_doc_len(doc_lens, n_docs), SEER_BLOCK) : 0;

    ForwardActs a;
    acts_alloc(&a, c, T, NB, n_docs);
    rope_positions(a.pos, doc_lens, n_docs);
    rope_table_cpu(a.cos_t, a.sin_t, a.pos, T, c->HD, c->rope_theta);
    embed_forward(a.x, &m->w.embed, ids, T, c->D);

    int rc = 0;
    for (int l = 0; l < c->L && rc == 0; l++) {
        rc = attention_block(m, l, &a, T, doc_lens, n_docs, NB, hook, err);
        if (rc == 0) mlp_block(m, l, &a, T);
    }
    if (rc == 0 && logits) logits_forward(m, &a, T, doc_lens, n_docs, logits, rows);
    free(a.block);
    return rc;
}
