// engine.c: see engine.h. The decode step mirrors model/forward_cpu.c op for op (same kernels,
// same order) so that dense decoding reproduces the prefill forward's logits.
#include "eval/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/decode.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/select.h"
#include "kernels/swiglu.h"
#include "model/forward_cpu.h"

struct Engine {
    const Model *m;
    const float *gates;  // [L, gate_P] (gate method only)
    int64_t gate_P;      // gate_param_count
    EnginePolicy pol;
    SelectConfig sc;     // B = 1; nb_max = max_sel = NB
    int Tmax, NB;        // NB = ceil(Tmax / 64)
    int len;             // tokens in the cache; -1 before the first prefill
    int stepped;         // a decode step has filled the lists

    // Caches, per layer.
    float *k, *v;         // [L, HKV, Tmax, HD] post-RoPE keys, values
    float *kcomp;         // [L, HKV, NB, DG] gate K-compression vectors (gate only)
    float *kraw;          // [L, HKV, 64, HD] pre-RoPE keys of the open block (gate only)
    float *kmax, *kmin;   // [L, HKV, NB, HD] Quest page bounds of post-RoPE K (quest only)
    int32_t *lists;       // [L, H, NB] block lists of the last step
    int32_t *grp;         // [HKV, NB] per-group lists before they are copied to the heads
    unsigned char *flags; // [NB] scratch of list_force

    // Activations of one step.
    float *x, *xn;               // [D]
    float *q_nope, *q, *att;     // [H*HD]
    float *k_nope, *k_new, *v_new;  // [HKV*HD]
    float *hg, *hu;              // [F]
    float *cos_t, *sin_t;        // [HD/2]
    float *o_part, *lse_part;    // [H*HD], [H]: decode workspace (one split)
    int32_t *cache_len;          // [HKV] all equal to len (the decode call's "sequences")

    double *sel, *valid;  // [L] selected / valid blocks summed over steps and heads
};

int engine_parse_method(const char *s, EngineMethod *out, SeerErr *err) {
    static const char *names[] = {"dense", "gate", "oracle", "quest"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *out = (EngineMethod)i;
            return 0;
        }
    return seer_fail(err, "unknown method '%s' (dense, gate, oracle or quest)", s);
}

const char *engine_method_name(EngineMethod m) {
    return m == ENGINE_GATE ? "gate" : m == ENGINE_ORACLE ? "oracle" : m == ENGINE_QUEST ? "quest" : "dense";
}

// ---------------------------------------------------------------------------------------------
// Creation

static int engine_check(const Model *m, const float *gates, int gates_L, GateShape gs,
                        EnginePolicy pol, const SelectConfig *sc, int Tmax, SeerErr *err) {
    const ModelConfig *c = &m->cfg;
    if (Tmax < 1) return seer_fail(err, "engine: Tmax %d < 1", Tmax);
    if (pol.dense_layers < 0) return seer_fail(err, "engine: dense_layers %d < 0", pol.dense_layers);
    if (pol.method == ENGINE_DENSE) return 0;
    if (pol.method == ENGINE_GATE) {
        if (!gates) return seer_fail(err, "engine: the gate method needs gates (--gates DIR)");
        if (gate_shape_check(gs, err)) return -1;
        if (gates_L != c->L || gs.HKV != c->HKV || gs.G != c->H / c->HKV || gs.HD != c->HD)
            return seer_fail(err, "engine: gates for %d layers, HKV %d, G %d, HD %d do not fit the "
                             "model (%d layers, HKV %d, G %d, HD %d)", gates_L, gs.HKV, gs.G, gs.HD,
                             c->L, c->HKV, c->H / c->HKV, c->HD);
    }
    SelectPolicy sp = pol.method == ENGINE_GATE ? SELECT_GATE
                    : pol.method == ENGINE_ORACLE ? SELECT_ORACLE : SELECT_QUEST;
    return select_validate_config(sc, sp, err);
}

static SelectConfig engine_select_config(const ModelConfig *c, GateShape gs, EnginePolicy pol,
                                         int NB) {
    SelectConfig sc = {.B = 1, .HKV = c->HKV, .G = c->H / c->HKV, .HD = c->HD,
                       .DG = pol.method == ENGINE_GATE ? gs.DG : 2, .nb_max = NB, .max_sel = NB,
                       .budget = pol.budget, .threshold = pol.threshold,
                       .rope_theta = c->rope_theta, .rope_last = pol.rope_last,
                       .kcomp_fp8 = pol.kcomp_fp8};
    return sc;
}

static void engine_alloc(Engine *e) {
    const ModelConfig *c = &e->m->cfg;
    size_t L = (size_t)c->L, HKV = (size_t)c->HKV, HD = (size_t)c->HD, NB = (size_t)e->NB;
    size_t f = sizeof(float), kv = L * HKV * (size_t)e->Tmax * HD;
    e->k = xmalloc(kv * f);
    e->v = xmalloc(kv * f);
    if (e->pol.method == ENGINE_GATE) {
        e->kcomp = xcalloc(L * HKV * NB * (size_t)e->sc.DG, f);
        e->kraw = xcalloc(L * HKV * SEER_BLOCK * HD, f);
    }
    if (e->pol.method == ENGINE_QUEST) {
        e->kmax = xcalloc(L * HKV * NB * HD, f);
        e->kmin = xcalloc(L * HKV * NB * HD, f);
    }
    e->lists = xmalloc(L * (size_t)c->H * NB * sizeof(int32_t));
    e->grp = xmalloc(HKV * NB * sizeof(int32_t));
    e->flags = xmalloc(NB);
    size_t Q = (size_t)c->H * HD, K = HKV * HD;
    e->x = xmalloc((size_t)c->D * f), e->xn = xmalloc((size_t)c->D * f);
    e->q_nope = xmalloc(Q * f), e->q = xmalloc(Q * f), e->att = xmalloc(Q * f);
    e->k_nope = xmalloc(K * f), e->k_new = xmalloc(K * f), e->v_new = xmalloc(K * f);
    e->hg = xmalloc((size_t)c->F * f), e->hu = xmalloc((size_t)c->F * f);
    e->cos_t = xmalloc(HD / 2 * f), e->sin_t = xmalloc(HD / 2 * f);
    e->o_part = xmalloc(Q * f), e->lse_part = xmalloc((size_t)c->H * f);
    e->cache_len = xmalloc(HKV * sizeof(int32_t));
    e->sel = xcalloc(L, sizeof(double)), e->valid = xcalloc(L, sizeof(double));
}

int engine_create(Engine **out, const Model *m, const float *gates, int gates_L, GateShape gs,
                  EnginePolicy pol, int Tmax, SeerErr *err) {
    int NB = ceil_div(Tmax > 0 ? Tmax : 1, SEER_BLOCK);
    SelectConfig sc = engine_select_config(&m->cfg, gs, pol, NB);
    if (engine_check(m, gates, gates_L, gs, pol, &sc, Tmax, err)) return -1;
    Engine *e = xcalloc(1, sizeof *e);
    e->m = m, e->pol = pol, e->sc = sc, e->Tmax = Tmax, e->NB = NB, e->len = -1;
    if (pol.method == ENGINE_GATE) e->gates = gates, e->gate_P = gate_param_count(gs);
    engine_alloc(e);
    *out = e;
    return 0;
}

void engine_free(Engine *e) {
    if (!e) return;
    free(e->k), free(e->v), free(e->kcomp), free(e->kraw), free(e->kmax), free(e->kmin);
    free(e->lists), free(e->grp), free(e->flags);
    free(e->x), free(e->xn), free(e->q_nope), free(e->q), free(e->att);
    free(e->k_nope), free(e->k_new), free(e->v_new), free(e->hg), free(e->hu);
    free(e->cos_t), free(e->sin_t), free(e->o_part), free(e->lse_part), free(e->cache_len);
    free(e->sel), free(e->valid);
    free(e);
}

// ---------------------------------------------------------------------------------------------
// Cache views

static float *k_at(const Engine *e, int l, int h) {  // [Tmax, HD] of layer l, KV head h
    const ModelConfig *c = &e->m->cfg;
    return e->k + (((size_t)l * c->HKV + h) * e->Tmax) * c->HD;
}
static float *v_at(const Engine *e, int l, int h) {
    const ModelConfig *c = &e->m->cfg;
    return e->v + (((size_t)l * c->HKV + h) * e->Tmax) * c->HD;
}
static GateParams gate_at(const Engine *e, int l) {
    return gate_params_view((float *)e->gates + (size_t)l * e->gate_P,
                            (GateShape){e->sc.HKV, e->sc.G, e->sc.HD, e->sc.DG});
}
static size_t layer_blocks(const Engine *e, int l, int width) {  // offset of layer l in [L, HKV, NB, width]
    return (size_t)l * e->sc.HKV * e->NB * width;
}

// ---------------------------------------------------------------------------------------------
// Prefill

// Pools the completed blocks of the prompt into the K-compression cache of layer l and stages
// the keys of the open block. k_nope: [n, HKV, HD].
static void prefill_gate(Engine *e, int l, const float *k_nope, int n) {
    int HKV = e->sc.HKV, HD = e->sc.HD, DG = e->sc.DG, nfull = n / SEER_BLOCK;
    GateParams gp = gate_at(e, l);
    float *kcomp = e->kcomp + layer_blocks(e, l, DG);
#pragma omp parallel
    {
        float *keys = xmalloc(sizeof(float) * SEER_BLOCK * HD);  // [64, HD]
#pragma omp for collapse(2) schedule(dynamic)
        for (int h = 0; h < HKV; h++)
            for (int j = 0; j < nfull; j++) {
                for (int i = 0; i < SEER_BLOCK; i++)
                    memcpy(keys + (size_t)i * HD, k_nope + (((size_t)j * SEER_BLOCK + i) * HKV + h) * HD,
                           sizeof(float) * HD);
                int pos = j * SEER_BLOCK + (e->sc.rope_last ? SEER_BLOCK - 1 : 0);
                float *kg = kcomp + ((size_t)h * e->NB + j) * DG;
                select_kcomp_cpu(kg, keys, SEER_BLOCK, HD, DG, gp.wk + (size_t)h * 3 * HD * DG, gp.knorm_w,
                                 pos, e->sc.rope_theta);
                for (int d = 0; e->sc.kcomp_fp8 && d < DG; d++) kg[d] = e4m3_to_f32(f32_to_e4m3(kg[d]));
            }
        free(keys);
    }
    float *kraw = e->kraw + (size_t)l * HKV * SEER_BLOCK * HD;
    for (int t = nfull * SEER_BLOCK; t < n; t++)
        for (int h = 0; h < HKV; h++)
            memcpy(kraw + ((size_t)h * SEER_BLOCK + t % SEER_BLOCK) * HD,
                   k_nope + ((size_t)t * HKV + h) * HD, sizeof(float) * HD);
}

// Quest page max / min of layer l from the prompt's post-RoPE keys k: [n, HKV, HD].
static void prefill_quest(Engine *e, int l, const float *k, int n) {
    int HKV = e->sc.HKV, HD = e->sc.HD;
    float *kmax = e->kmax + layer_blocks(e, l, HD), *kmin = e->kmin + layer_blocks(e, l, HD);
    for (int h = 0; h < HKV; h++)
        for (int t = 0; t < n; t++) {
            size_t off = ((size_t)h * e->NB + t / SEER_BLOCK) * HD;
            const float *x = k + ((size_t)t * HKV + h) * HD;
            for (int d = 0; d < HD; d++) {
                int first = t % SEER_BLOCK == 0;
                kmax[off + d] = first ? x[d] : fmaxf(kmax[off + d], x[d]);
                kmin[off + d] = first ? x[d] : fminf(kmin[off + d], x[d]);
            }
        }
}

// forward_cpu hook: copies layer view->layer's K (post-RoPE) and V into the caches, and fills
// the method's block caches.
static int prefill_hook(void *ctx, const ForwardLayerView *vw, SeerErr *err) {
    Engine *e = ctx;
    int l = vw->layer, HKV = vw->HKV, HD = vw->HD, n = vw->T;
    for (int h = 0; h < HKV; h++)
        for (int t = 0; t < n; t++) {
            memcpy(k_at(e, l, h) + (size_t)t * HD, vw->k + ((size_t)t * HKV + h) * HD, sizeof(float) * HD);
            memcpy(v_at(e, l, h) + (size_t)t * HD, vw->v + ((size_t)t * HKV + h) * HD, sizeof(float) * HD);
        }
    if (e->pol.method == ENGINE_GATE) prefill_gate(e, l, vw->k_nope, n);
    if (e->pol.method == ENGINE_QUEST) prefill_quest(e, l, vw->k, n);
    return 0;
}

int engine_prefill(Engine *e, const int *ids, int n, float *logits, SeerErr *err) {
    if (n < 1 || n > e->Tmax)
        return seer_fail(err, "engine: prompt of %d tokens does not fit the cache (1 .. %d)", n, e->Tmax);
    e->len = -1, e->stepped = 0;
    ForwardHook hook = {.fn = prefill_hook, .ctx = e, .want_target = 0};
    if (forward_cpu(e->m, ids, n, &n, 1, logits, FORWARD_LOGITS_DOC_LAST, &hook, err)) return -1;
    e->len = n;
    return 0;
}

int engine_len(const Engine *e) { return e->len < 0 ? 0 : e->len; }

// ---------------------------------------------------------------------------------------------
// Selection

// Rewrites list [NB] (descending, -1 padded) with block 0 and block cur added.
static void list_force(Engine *e, int32_t *list, int cur) {
    memset(e->flags, 0, (size_t)e->NB);
    for (int i = 0; i < e->NB && list[i] >= 0; i++) e->flags[list[i]] = 1;
    e->flags[0] = e->flags[cur] = 1;
    int n = 0;
    for (int j = e->NB - 1; j >= 0; j--)
        if (e->flags[j]) list[n++] = j;
    while (n < e->NB) list[n++] = -1;
}

// Per-head lists [H, NB] of layer l for the current token (cache length len).
static void select_layer(Engine *e, int l, int32_t *lists, int len) {
    const SelectConfig *c = &e->sc;
    int HKV = c->HKV, G = c->G, HD = c->HD, NB = e->NB, cur = (len - 1) / SEER_BLOCK;
    int32_t len1 = len;
    if (e->pol.method == ENGINE_QUEST) {
        SelectConfig one = *c;
        one.HKV = 1, one.G = 1;
        for (int h = 0; h < HKV * G; h++) {
            size_t page = layer_blocks(e, l, HD) + (size_t)(h / G) * NB * HD;
            select_quest_cpu(lists + (size_t)h * NB, e->q + (size_t)h * HD, e->kmax + page,
                             e->kmin + page, &len1, &one);
            list_force(e, lists + (size_t)h * NB, cur);
        }
        return;
    }
    if (e->pol.method == ENGINE_GATE) {
        GateParams gp = gate_at(e, l);
        select_gate_cpu(e->grp, NULL, e->q_nope, e->kcomp + layer_blocks(e, l, c->DG), &len1,
                        gp.wq, gp.qnorm_w, c);
    } else {
        select_oracle_cpu(e->grp, e->q, k_at(e, l, 0), e->Tmax, &len1, c);
    }
    for (int g = 0; g < HKV; g++) {
        list_force(e, e->grp + (size_t)g * NB, cur);
        for (int i = 0; i < G; i++)
            memcpy(lists + ((size_t)g * G + i) * NB, e->grp + (size_t)g * NB, sizeof(int32_t) * NB);
    }
}

// ---------------------------------------------------------------------------------------------
// Decode step

// Appends the new token's K / V (and pre-RoPE key) at position pos of layer l and updates the
// method's block caches.
static void append_kv(Engine *e, int l, int pos) {
    int HKV = e->sc.HKV, HD = e->sc.HD;
    int32_t len1 = pos + 1;
    for (int h = 0; h < HKV; h++) {
        memcpy(k_at(e, l, h) + (size_t)pos * HD, e->k_new + (size_t)h * HD, sizeof(float) * HD);
        memcpy(v_at(e, l, h) + (size_t)pos * HD, e->v_new + (size_t)h * HD, sizeof(float) * HD);
    }
    if (e->pol.method == ENGINE_GATE) {
        float *kraw = e->kraw + (size_t)l * HKV * SEER_BLOCK * HD;
        for (int h = 0; h < HKV; h++)
            memcpy(kraw + ((size_t)h * SEER_BLOCK + pos % SEER_BLOCK) * HD, e->k_nope + (size_t)h * HD,
                   sizeof(float) * HD);
        int32_t done = len1 % SEER_BLOCK == 0 ? pos / SEER_BLOCK : -1;
        GateParams gp = gate_at(e, l);
        if (done >= 0)
            select_kcomp_update_cpu(e->kcomp + layer_blocks(e, l, e->sc.DG), kraw, &done, gp.wk,
                                    gp.knorm_w, &e->sc);
    }
    if (e->pol.method == ENGINE_QUEST)
        select_quest_update_cpu(e->kmax + layer_blocks(e, l, HD), e->kmin + layer_blocks(e, l, HD),
                                e->k_new, &len1, &e->sc);
}

// Attention of the new token of layer l over the selected blocks (lists [H, NB], or NULL for
// dense) into e->att [H, HD]. The decode kernel sees each KV group as one "sequence" whose G
// query heads are G "KV heads" that all read the group's cache (k_sh = v_sh = 0): so every query
// head has a list of its own. (decode_validate rejects zero strides; the lists built here are
// valid by construction.)
static void attend(Engine *e, int l, const int32_t *lists, int len) {
    int HKV = e->sc.HKV, G = e->sc.G, HD = e->sc.HD;
    for (int h = 0; h < HKV; h++) e->cache_len[h] = len;
    DecodeParams p = decode_params_contiguous(e->q, k_at(e, l, 0), v_at(e, l, 0), e->att,
                                              e->cache_len, lists, HKV, G, G, HD, e->Tmax, e->NB,
                                              SEER_F32);
    p.k_sh = p.v_sh = 0;
    p.k_sb = p.v_sb = (int64_t)e->Tmax * HD;
    p.o_part = e->o_part, p.lse_part = e->lse_part;
    decode_attention_cpu(&p);
}

// Adds layer l's selected / valid block counts of this step.
static void count_blocks(Engine *e, int l, const int32_t *lists, int len) {
    int H = e->sc.HKV * e->sc.G, nb = ceil_div(len, SEER_BLOCK);
    e->valid[l] += (double)H * nb;
    if (!lists) {
        e->sel[l] += (double)H * nb;
        return;
    }
    for (int h = 0; h < H; h++)
        for (int i = 0; i < e->NB && lists[(size_t)h * e->NB + i] >= 0; i++) e->sel[l] += 1;
}

static int layer_sparse(const Engine *e, int l) {
    return e->pol.method != ENGINE_DENSE && l >= e->pol.dense_layers;
}

// Layer l on the residual stream e->x of the token at position pos.
static void layer_step(Engine *e, int l, int pos) {
    const ModelConfig *c = &e->m->cfg;
    const LayerWeights *w = &e->m->w.layers[l];
    int D = c->D, H = c->H, HKV = c->HKV, HD = c->HD, F = c->F;

    rmsnorm_forward_cpu(e->xn, e->x, &w->attn_norm, 1, D, c->rms_eps);
    matmul_forward_cpu(e->q_nope, e->xn, &w->wq, &w->bq, 1, D, H * HD);
    matmul_forward_cpu(e->k_nope, e->xn, &w->wk, &w->bk, 1, D, HKV * HD);
    matmul_forward_cpu(e->v_new, e->xn, &w->wv, &w->bv, 1, D, HKV * HD);
    if (c->qk_norm) {
        rmsnorm_forward_cpu(e->q_nope, e->q_nope, &w->q_norm, H, HD, c->rms_eps);
        rmsnorm_forward_cpu(e->k_nope, e->k_nope, &w->k_norm, HKV, HD, c->rms_eps);
    }
    memcpy(e->q, e->q_nope, sizeof(float) * H * HD);
    memcpy(e->k_new, e->k_nope, sizeof(float) * HKV * HD);
    rope_apply_cpu(e->q, e->cos_t, e->sin_t, 1, H, HD);
    rope_apply_cpu(e->k_new, e->cos_t, e->sin_t, 1, HKV, HD);
    append_kv(e, l, pos);

    int32_t *lists = NULL;
    if (layer_sparse(e, l)) {
        lists = e->lists + (size_t)l * H * e->NB;
        select_layer(e, l, lists, pos + 1);
    }
    attend(e, l, lists, pos + 1);
    count_blocks(e, l, lists, pos + 1);

    matmul_forward_cpu(e->xn, e->att, &w->wo, NULL, 1, H * HD, D);
    for (int i = 0; i < D; i++) e->x[i] += e->xn[i];

    rmsnorm_forward_cpu(e->xn, e->x, &w->mlp_norm, 1, D, c->rms_eps);
    matmul_forward_cpu(e->hg, e->xn, &w->w_gate, NULL, 1, D, F);
    matmul_forward_cpu(e->hu, e->xn, &w->w_up, NULL, 1, D, F);
    swiglu_forward_cpu(e->hg, e->hg, e->hu, F);
    matmul_forward_cpu(e->xn, e->hg, &w->w_down, NULL, 1, F, D);
    for (int i = 0; i < D; i++) e->x[i] += e->xn[i];
}

int engine_step(Engine *e, int id, float *logits, SeerErr *err) {
    const ModelConfig *c = &e->m->cfg;
    if (e->len < 0) return seer_fail(err, "engine: decode step before any prefill");
    if (e->len >= e->Tmax)
        return seer_fail(err, "engine: the cache is full (%d tokens)", e->Tmax);
    if (id < 0 || id >= c->V)
        return seer_fail(err, "engine: token id %d is outside the vocabulary [0, %d)", id, c->V);
    int pos = e->len;
    rope_table_cpu(e->cos_t, e->sin_t, &pos, 1, c->HD, c->rope_theta);
    for (int i = 0; i < c->D; i++) e->x[i] = tensor_get(&e->m->w.embed, (int64_t)id * c->D + i);
    for (int l = 0; l < c->L; l++) layer_step(e, l, pos);
    rmsnorm_forward_cpu(e->xn, e->x, &e->m->w.final_norm, 1, c->D, c->rms_eps);
    matmul_forward_cpu(logits, e->xn, &e->m->w.lm_head, NULL, 1, c->D, c->V);
    e->len = pos + 1;
    e->stepped = 1;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Statistics

const int32_t *engine_block_lists(const Engine *e, int l, int *nb_cap) {
    *nb_cap = e->NB;
    if (!e->stepped || l < 0 || l >= e->m->cfg.L || !layer_sparse(e, l)) return NULL;
    return e->lists + (size_t)l * e->m->cfg.H * e->NB;
}

double engine_sparsity_from(const double *sel, const double *valid, int L, double *per_layer) {
    double s = 0, v = 0;
    for (int l = 0; l < L; l++) {
        if (per_layer) per_layer[l] = valid[l] > 0 ? 1.0 - sel[l] / valid[l] : 0.0;
        s += sel[l], v += valid[l];
    }
    return v > 0 ? 1.0 - s / v : 0.0;
}

double engine_sparsity(const Engine *e, double *per_layer) {
    return engine_sparsity_from(e->sel, e->valid, e->m->cfg.L, per_layer);
}

void engine_block_counts(const Engine *e, double *sel, double *valid) {
    memcpy(sel, e->sel, sizeof(double) * e->m->cfg.L);
    memcpy(valid, e->valid, sizeof(double) * e->m->cfg.L);
}

void engine_reset_stats(Engine *e) {
    memset(e->sel, 0, sizeof(double) * e->m->cfg.L);
    memset(e->valid, 0, sizeof(double) * e->m->cfg.L);
}

// ---------------------------------------------------------------------------------------------
// Sampling

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

typedef struct {
    float p;
    int id;
} TokenProb;

static int by_prob_desc(const void *a, const void *b) {
    const TokenProb *x = a, *y = b;
    if (x->p != y->p) return x->p > y->p ? -1 : 1;
    return x->id - y->id;
}

int sampler_pick(Sampler *s, const float *logits, int V) {
    int best = 0;
    for (int i = 1; i < V; i++)
        if (logits[i] > logits[best]) best = i;
    if (s->temperature <= 0) return best;
    TokenProb *tp = xmalloc(sizeof(TokenProb) * (size_t)V);
    for (int i = 0; i < V; i++)
        tp[i] = (TokenProb){expf((logits[i] - logits[best]) / s->temperature), i};
    qsort(tp, (size_t)V, sizeof *tp, by_prob_desc);
    int n = s->top_k > 0 && s->top_k < V ? s->top_k : V;
    double total = 0, keep = 0;
    for (int i = 0; i < n; i++) total += tp[i].p;
    int m = 0;
    while (m < n && (m == 0 || keep < s->top_p * total)) keep += tp[m++].p;
    double u = (double)(splitmix64(&s->state) >> 11) * 0x1.0p-53 * keep, acc = 0;
    int pick = tp[m - 1].id;
    for (int i = 0; i < m; i++) {
        acc += tp[i].p;
        if (u < acc) {
            pick = tp[i].id;
            break;
        }
    }
    free(tp);
    return pick;
}
