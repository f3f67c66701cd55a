// test_forward.c: the CPU reference forward and its kernels.
//
// Kernels (rmsnorm, RoPE, matmul in F32 / F16 / BF16, SwiGLU) against naive double-precision formulas;
// the forward on a hand-built model (input errors, packed = documents run alone, last-token logits,
// the layer hook); and the golden fixtures of tests/golden/make_hf_golden.py: logits of Hugging Face
// transformers for tiny Qwen3 / Qwen2 / Llama models and the testbed model.
// Golden metric, per logits row: max_v |ours - ref| / max_v |ref| <= 1e-4 (the worst row is printed).
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kernels/attention.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "model/forward_cpu.h"
#include "tests/test.h"

#define GOLDEN_DIR "tests/fixtures/hf"
#define GOLDEN_TOL 1e-4

// ---------------------------------------------------------------------------------------------
// Helpers

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float randn(void) {  // Box-Muller over an xorshift64*
    double u[2];
    for (int i = 0; i < 2; i++) {
        rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
        u[i] = ((rng_state * 0x2545F4914F6CDD1Dull) >> 11) * (1.0 / 9007199254740992.0) + 1e-12;
    }
    return (float)(sqrt(-2 * log(u[0])) * cos(6.283185307179586 * u[1]));
}

static float *rand_vec(size_t n, float scale) {
    float *v = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = scale * randn();
    return v;
}

// A tensor of `dtype` holding src rounded to that dtype; the caller frees t->data.
static Tensor tensor_from(const float *src, SeerDType dtype, int ndim, int64_t d0, int64_t d1) {
    Tensor t = {.dtype = dtype, .ndim = ndim, .shape = {d0, d1}};
    int64_t n = tensor_numel(&t);
    void *p = xmalloc((size_t)n * dtype_size(dtype));
    for (int64_t i = 0; i < n; i++) {
        if (dtype == SEER_F32) ((float *)p)[i] = src[i];
        else if (dtype == SEER_F16) ((uint16_t *)p)[i] = f32_to_f16(src[i]);
        else ((uint16_t *)p)[i] = f32_to_bf16(src[i]);
    }
    t.data = p;
    return t;
}

// max |a - b| / max |b| over n values (INFINITY on NaN).
static double rel_err_max(const float *a, const float *b, size_t n) {
    double worst = 0, ref = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) return INFINITY;
        worst = d > worst ? d : worst;
        ref = fabs(b[i]) > ref ? fabs(b[i]) : ref;
    }
    return worst / ref;
}

// ---------------------------------------------------------------------------------------------
// Kernels against double-precision formulas

static void test_rmsnorm_all_dtypes(void) {
    int N = 5, D = 37;
    float *x = rand_vec((size_t)N * D, 3.0f), *w = rand_vec(D, 1.0f), out[5 * 37], inplace[5 * 37];
    for (int dt = 0; dt < 3; dt++) {
        Tensor wt = tensor_from(w, (SeerDType)dt, 1, D, 0);
        rmsnorm_forward_cpu(out, x, &wt, N, D, 1e-6f);
        memcpy(inplace, x, sizeof inplace);
        rmsnorm_forward_cpu(inplace, inplace, &wt, N, D, 1e-6f);
        for (int n = 0; n < N; n++) {
            double ss = 0;
            for (int i = 0; i < D; i++) ss += (double)x[n * D + i] * x[n * D + i];
            for (int i = 0; i < D; i++) {
                double ref = x[n * D + i] / sqrt(ss / D + 1e-6) * tensor_get(&wt, i);
                CHECK_CLOSE(out[n * D + i], ref, 1e-5);
                CHECK(inplace[n * D + i] == out[n * D + i]);
            }
        }
        free((void *)wt.data);
    }
    free(x), free(w);
}

static void test_rope_positions_restart_per_doc(void) {
    int docs[] = {3, 1, 4}, pos[8], want[] = {0, 1, 2, 0, 0, 1, 2, 3};
    rope_positions(pos, docs, 3);
    for (int t = 0; t < 8; t++) CHECK(pos[t] == want[t]);
}

static void test_rope_rotate_half(void) {
    int T = 6, NH = 3, HD = 10, pos[] = {0, 1, 7, 100, 2, 4095};
    float theta = 1e6f, cs[6 * 5], sn[6 * 5];
    float *x = rand_vec((size_t)T * NH * HD, 1.0f), *y = xmalloc(sizeof(float) * T * NH * HD);
    memcpy(y, x, sizeof(float) * T * NH * HD);
    rope_table_cpu(cs, sn, pos, T, HD, theta);
    rope_apply_cpu(y, cs, sn, T, NH, HD);
    for (int t = 0; t < T; t++)
        for (int h = 0; h < NH; h++)
            for (int i = 0; i < HD / 2; i++) {
                double a = pos[t] * pow(theta, -2.0 * i / HD);
                const float *v = x + (t * NH + h) * HD;
                double r0 = v[i] * cos(a) - v[i + HD / 2] * sin(a);
                double r1 = v[i + HD / 2] * cos(a) + v[i] * sin(a);
                CHECK_CLOSE(y[(t * NH + h) * HD + i], r0, 1e-5);
                CHECK_CLOSE(y[(t * NH + h) * HD + i + HD / 2], r1, 1e-5);
            }
    for (int i = 0; i < NH * HD; i++) CHECK(y[i] == x[i]);  // position 0: identity
    free(x), free(y);
}

// y = x W^T + b for one dtype; IN crosses the 512-wide slices, OUT is not a multiple of the tile.
static void check_matmul(SeerDType dt, int with_bias) {
    int N = 5, IN = 1100, OUT = 19;
    float *x = rand_vec((size_t)N * IN, 1.0f), *w = rand_vec((size_t)OUT * IN, 0.05f);
    float *bv = rand_vec(OUT, 0.5f), *y = xmalloc(sizeof(float) * N * OUT);
    Tensor W = tensor_from(w, dt, 2, OUT, IN), b = tensor_from(bv, dt, 1, OUT, 0);
    matmul_forward_cpu(y, x, &W, with_bias ? &b : NULL, N, IN, OUT);
    for (int n = 0; n < N; n++)
        for (int o = 0; o < OUT; o++) {
            double ref = with_bias ? tensor_get(&b, o) : 0, mag = fabs(ref);
            for (int k = 0; k < IN; k++) {
                double p = (double)x[n * IN + k] * tensor_get(&W, (int64_t)o * IN + k);
                ref += p, mag += fabs(p);
            }
            // fp32 accumulation of IN products: error bounded relative to the sum of magnitudes
            CHECK(fabs(y[n * OUT + o] - ref) <= 1e-5 * mag);
        }
    free(x), free(w), free(bv), free(y), free((void *)W.data), free((void *)b.data);
}

static void test_matmul_f32(void) { check_matmul(SEER_F32, 1); }
static void test_matmul_f16(void) { check_matmul(SEER_F16, 0); }
static void test_matmul_bf16(void) { check_matmul(SEER_BF16, 1); }

static void test_matmul_edge_sizes(void) {
    float x[3] = {1, 2, 3}, wv[2] = {0.5f, -1}, y[6];
    Tensor W = {.data = wv, .dtype = SEER_F32, .ndim = 2, .shape = {2, 1}};
    Tensor none = {0};
    matmul_forward_cpu(y, x, &W, &none, 3, 1, 2);  // IN = 1, ndim-0 bias = none
    for (int n = 0; n < 3; n++) CHECK(y[2 * n] == 0.5f * x[n] && y[2 * n + 1] == -x[n]);
    Tensor b = {.data = wv, .dtype = SEER_F32, .ndim = 1, .shape = {2}};
    matmul_forward_cpu(y, x, &W, &b, 1, 0, 2);  // IN = 0: y = b
    CHECK(y[0] == 0.5f && y[1] == -1);
}

static void test_swiglu(void) {
    float g[] = {-100, -3, -0.5f, 0, 0.25f, 2, 30, 100}, u[] = {1, 2, -1, 5, 3, -2, 0.5f, 1}, out[8];
    swiglu_forward_cpu(out, g, u, 8);
    for (int i = 0; i < 8; i++) {
        double ref = g[i] / (1 + exp(-(double)g[i])) * u[i];
        CHECK(out[i] == out[i]);
        CHECK(fabs(out[i] - ref) <= 1e-6 * fmax(1, fabs(ref)));
    }
    swiglu_forward_cpu(g, g, u, 8);  // in place
    for (int i = 0; i < 8; i++) CHECK(g[i] == out[i]);
}

// ---------------------------------------------------------------------------------------------
// A hand-built model: every path on (q/k norm and q/k/v bias), F32 / BF16 tensors mixed.

typedef struct {
    Model m;
    void *blobs[64];
    int n_blobs;
} ToyModel;

static Tensor toy_tensor(ToyModel *tm, SeerDType dt, int ndim, int64_t d0, int64_t d1, float scale,
                         float offset) {
    int64_t n = ndim == 1 ? d0 : d0 * d1;
    float *v = rand_vec((size_t)n, scale);
    for (int64_t i = 0; i < n; i++) v[i] += offset;
    Tensor t = tensor_from(v, dt, ndim, d0, d1);
    free(v);
    tm->blobs[tm->n_blobs++] = (void *)t.data;
    return t;
}

static void toy_build(ToyModel *tm) {
    memset(tm, 0, sizeof *tm);
    ModelConfig *c = &tm->m.cfg;
    *c = (ModelConfig){.arch = ARCH_QWEN3, .D = 24, .L = 2, .H = 4, .HKV = 2, .HD = 8, .F = 40,
                       .V = 50, .rope_theta = 10000.0f, .rms_eps = 1e-6f, .tie_embeddings = 1,
                       .qk_norm = 1, .qkv_bias = 1, .bos_id = -1, .eos_id = -1, .max_pos = 64};
    ModelWeights *w = &tm->m.w;
    w->embed = toy_tensor(tm, SEER_BF16, 2, c->V, c->D, 1.0f, 0);
    w->final_norm = toy_tensor(tm, SEER_F32, 1, c->D, 0, 0.2f, 1);
    w->lm_head = w->embed;
    w->layers = xcalloc(c->L, sizeof(LayerWeights));
    int QD = c->H * c->HD, KD = c->HKV * c->HD;
    for (int l = 0; l < c->L; l++) {
        LayerWeights *lw = &w->layers[l];
        lw->attn_norm = toy_tensor(tm, SEER_F32, 1, c->D, 0, 0.2f, 1);
        lw->wq = toy_tensor(tm, SEER_BF16, 2, QD, c->D, 0.2f, 0);
        lw->wk = toy_tensor(tm, SEER_F32, 2, KD, c->D, 0.2f, 0);
        lw->wv = toy_tensor(tm, SEER_F16, 2, KD, c->D, 0.2f, 0);
        lw->bq = toy_tensor(tm, SEER_F32, 1, QD, 0, 0.1f, 0);
        lw->bk = toy_tensor(tm, SEER_F32, 1, KD, 0, 0.1f, 0);
        lw->bv = toy_tensor(tm, SEER_F32, 1, KD, 0, 0.1f, 0);
        lw->q_norm = toy_tensor(tm, SEER_F32, 1, c->HD, 0, 0.2f, 1);
        lw->k_norm = toy_tensor(tm, SEER_F32, 1, c->HD, 0, 0.2f, 1);
        lw->wo = toy_tensor(tm, SEER_F32, 2, c->D, QD, 0.2f, 0);
        lw->mlp_norm = toy_tensor(tm, SEER_F32, 1, c->D, 0, 0.2f, 1);
        lw->w_gate = toy_tensor(tm, SEER_BF16, 2, c->F, c->D, 0.2f, 0);
        lw->w_up = toy_tensor(tm, SEER_BF16, 2, c->F, c->D, 0.2f, 0);
        lw->w_down = toy_tensor(tm, SEER_BF16, 2, c->D, c->F, 0.2f, 0);
    }
}

static void toy_free(ToyModel *tm) {
    for (int i = 0; i < tm->n_blobs; i++) free(tm->blobs[i]);
    free(tm->m.w.layers);
}

static void test_forward_rejects_bad_input(void) {
    ToyModel tm;
    toy_build(&tm);
    SeerErr err = {{0}};
    int ids[] = {1, 2, 50}, ok_ids[] = {1, 2, 3}, docs[] = {2, 1}, bad_docs[] = {2, 2}, zero[] = {3, 0};
    CHECK(forward_cpu(&tm.m, ids, 3, docs, 2, NULL, FORWARD_LOGITS_ALL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "token id 50") && strstr(err.msg, "vocabulary"));
    CHECK(forward_cpu(&tm.m, ok_ids, 3, bad_docs, 2, NULL, FORWARD_LOGITS_ALL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "sum to 4") != NULL);
    CHECK(forward_cpu(&tm.m, ok_ids, 3, zero, 2, NULL, FORWARD_LOGITS_ALL, NULL, &err) == -1);
    CHECK(strstr(err.msg, "length 0") != NULL);
    CHECK(forward_cpu(&tm.m, ok_ids, 0, docs, 0, NULL, FORWARD_LOGITS_ALL, NULL, &err) == -1);
    int neg[] = {-1};
    CHECK(forward_cpu(&tm.m, neg, 1, (int[]){1}, 1, NULL, FORWARD_LOGITS_ALL, NULL, &err) == -1);
    toy_free(&tm);
}

// A packed chunk gives each document exactly the logits it gets alone; DOC_LAST picks the last rows.
static void test_forward_packed_equals_alone(void) {
    ToyModel tm;
    toy_build(&tm);
    int V = tm.m.cfg.V, docs[] = {5, 1, 70, 3}, T = 79, ids[79];
    for (int t = 0; t < T; t++) ids[t] = (t * 37 + 11) % V;
    float *packed = xmalloc(sizeof(float) * T * V), *alone = xmalloc(sizeof(float) * T * V);
    float last[4 * 50];
    SeerErr err;
    CHECK(forward_cpu(&tm.m, ids, T, docs, 4, packed, FORWARD_LOGITS_ALL, NULL, &err) == 0);
    CHECK(forward_cpu(&tm.m, ids, T, docs, 4, last, FORWARD_LOGITS_DOC_LAST, NULL, &err) == 0);
    int t0 = 0;
    for (int d = 0; d < 4; d++) {
        CHECK(forward_cpu(&tm.m, ids + t0, docs[d], &docs[d], 1, alone + (size_t)t0 * V,
                          FORWARD_LOGITS_ALL, NULL, &err) == 0);
        t0 += docs[d];
        CHECK(memcmp(last + d * V, packed + (size_t)(t0 - 1) * V, sizeof(float) * V) == 0);
    }
    CHECK(rel_err_max(packed, alone, (size_t)T * V) <= 1e-6);
    free(packed), free(alone);
    toy_free(&tm);
}

typedef struct {
    int calls, last_layer, fail_at;
    double target_err, rope_err;
} HookLog;

// Checks what a hook sees: post-RoPE q equals RoPE of the nope q; the target equals a direct call.
static int hook_check(void *ctx, const ForwardLayerView *v, SeerErr *err) {
    HookLog *log = ctx;
    CHECK(v->layer == log->calls && v->T == 79 && v->NB == 2 && v->pos[5] == 0 && v->pos[78] == 2);
    log->calls++;
    size_t nq = (size_t)v->T * v->H * v->HD;
    float *q = xmalloc(nq * sizeof(float)), *cs = xmalloc(sizeof(float) * v->T * v->HD);
    memcpy(q, v->q_nope, nq * sizeof(float));
    rope_table_cpu(cs, cs + (size_t)v->T * v->HD / 2, v->pos, v->T, v->HD, 10000.0f);
    rope_apply_cpu(q, cs, cs + (size_t)v->T * v->HD / 2, v->T, v->H, v->HD);
    double e = rel_err_max(v->q, q, nq);
    log->rope_err = e > log->rope_err ? e : log->rope_err;
    size_t nt = (size_t)v->HKV * v->T * v->NB;
    float *out = xmalloc(nq * sizeof(float)), *tg = xmalloc(nt * sizeof(float));
    attention_forward_cpu(out, tg, v->q, v->k, v->v, v->doc_lens, v->n_docs, v->T, v->H, v->HKV, v->HD,
                          v->NB);
    e = rel_err_max(v->target, tg, nt);
    log->target_err = e > log->target_err ? e : log->target_err;
    free(q), free(cs), free(out), free(tg);
    if (v->layer == log->fail_at) return seer_fail(err, "hook: stop at layer %d", v->layer);
    return 0;
}

static void test_forward_hook(void) {
    ToyModel tm;
    toy_build(&tm);
    int docs[] = {5, 1, 70, 3}, T = 79, ids[79];
    for (int t = 0; t < T; t++) ids[t] = (t * 13 + 2) % tm.m.cfg.V;
    HookLog log = {.fail_at = -1};
    ForwardHook hook = {.fn = hook_check, .ctx = &log, .want_target = 1};
    SeerErr err;
    CHECK(forward_cpu(&tm.m, ids, T, docs, 4, NULL, FORWARD_LOGITS_ALL, &hook, &err) == 0);
    CHECK(log.calls == tm.m.cfg.L);
    CHECK(log.rope_err <= 1e-6);
    CHECK(log.target_err == 0);
    HookLog stop = {.fail_at = 0};
    hook.ctx = &stop;
    CHECK(forward_cpu(&tm.m, ids, T, docs, 4, NULL, FORWARD_LOGITS_ALL, &hook, &err) == -1);
    CHECK(stop.calls == 1 && strstr(err.msg, "stop at layer 0") != NULL);
    toy_free(&tm);
}

// ---------------------------------------------------------------------------------------------
// Golden fixtures from Hugging Face transformers

// Reads n float32 values from dir/name; NULL (and a printed reason) when the size differs.
static float *read_f32(const char *dir, const char *name, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    float *v = xmalloc(n * sizeof(float) + 1);
    size_t got = f ? fread(v, sizeof(float), n + 1, f) : 0;
    if (f) fclose(f);
    if (got != n) {
        fprintf(stderr, "    %s: expected %zu floats, read %zu\n", path, n, got);
        free(v);
        return NULL;
    }
    return v;
}

static int *json_ints(const json_t *arr, int *n) {
    *n = (int)json_array_size(arr);
    int *v = xmalloc(sizeof(int) * (*n ? *n : 1));
    for (int i = 0; i < *n; i++) v[i] = (int)json_integer_value(json_array_get(arr, i));
    return v;
}

// Worst row of max|ours - ref| / max|ref| over rows of width V.
static double worst_row_err(const float *ours, const float *ref, int rows, int V, int *worst_row) {
    double worst = 0;
    *worst_row = 0;
    for (int r = 0; r < rows; r++) {
        double e = rel_err_max(ours + (size_t)r * V, ref + (size_t)r * V, V);
        if (!(e <= worst)) worst = e, *worst_row = r;
    }
    return worst;
}

typedef struct {
    const float *q_nope, *k_nope, *q, *k;  // [T, H, HD], [T, HKV, HD], copies of the hooked layer
    int layer;
    float *keep[4];
} HookCopy;

static int hook_copy(void *ctx, const ForwardLayerView *v, SeerErr *err) {
    HookCopy *hc = ctx;
    if (v->layer != hc->layer) return 0;
    const float *src[4] = {v->q_nope, v->k_nope, v->q, v->k};
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)v->T * (i % 2 ? v->HKV : v->H) * v->HD;
        hc->keep[i] = memcpy(xmalloc(n * sizeof(float)), src[i], n * sizeof(float));
    }
    return 0;
}

// Compares the hooked layer's q/k (single case) with the fixture's hook_*.f32.
static void golden_check_hook(const char *dir, const char *name, const Model *m, const json_t *hook,
                              const int *ids, int T) {
    HookCopy hc = {.layer = (int)json_integer_value(json_object_get(hook, "layer"))};
    ForwardHook fh = {.fn = hook_copy, .ctx = &hc};
    SeerErr err;
    CHECK(forward_cpu(m, ids, T, &T, 1, NULL, FORWARD_LOGITS_ALL, &fh, &err) == 0);
    const char *keys[4] = {"q_nope", "k_nope", "q_rope", "k_rope"};
    for (int i = 0; i < 4; i++) {
        size_t n = (size_t)T * (i % 2 ? m->cfg.HKV : m->cfg.H) * m->cfg.HD;
        const char *file = json_string_value(json_object_get(json_object_get(hook, keys[i]), "file"));
        float *ref = file ? read_f32(dir, file, n) : NULL;
        CHECK(ref != NULL && hc.keep[i] != NULL);
        if (ref && hc.keep[i]) {
            double e = rel_err_max(hc.keep[i], ref, n);
            printf("    %-22s hook %-6s layer %d: rel err %.2e\n", name, keys[i], hc.layer, e);
            CHECK(e <= GOLDEN_TOL);
        }
        free(ref), free(hc.keep[i]);
    }
}

// One fixture folder: golden.json cases (+ hook) against forward_cpu on the model in model_dir.
static void golden_check(const char *name, const char *model_dir) {
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/%s", GOLDEN_DIR, name);
    snprintf(path, sizeof path, "%s/golden.json", dir);
    if (access(path, F_OK) != 0) {
        printf("    skip: %s not generated yet (run tests/golden/make_hf_golden.py with torch)\n", path);
        return;
    }
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    CHECK(root != NULL);
    if (!root) {
        fprintf(stderr, "    %s: %s (run the tests from the repository root)\n", path, jerr.text);
        return;
    }
    Model m;
    if (test_model_load(&m, model_dir)) {
        json_decref(root);
        return;
    }
    SeerErr err = {{0}};
    int V = m.cfg.V, n_ids = 0, n_docs = 0, single_T = 0;
    int *single_ids = NULL;
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(root, "cases"), i, c) {
        int *ids = json_ints(json_object_get(c, "ids"), &n_ids);
        int *docs = json_ints(json_object_get(c, "doc_lens"), &n_docs);
        float *ref = read_f32(dir, json_string_value(json_object_get(c, "logits")), (size_t)n_ids * V);
        float *ours = xmalloc(sizeof(float) * n_ids * V);
        CHECK(ref != NULL);
        CHECK(forward_cpu(&m, ids, n_ids, docs, n_docs, ours, FORWARD_LOGITS_ALL, NULL, &err) == 0);
        if (ref) {
            int row;
            double e = worst_row_err(ours, ref, n_ids, V, &row);
            printf("    %-22s %-6s T=%-3d docs=%d: worst row %d rel err %.2e\n", name,
                   json_string_value(json_object_get(c, "name")), n_ids, n_docs, row, e);
            CHECK(e <= GOLDEN_TOL);
        }
        if (n_docs == 1 && !single_ids) single_ids = ids, single_T = n_ids;
        else free(ids);
        free(docs), free(ref), free(ours);
    }
    json_t *hook = json_object_get(root, "hook");
    if (hook && single_ids) golden_check_hook(dir, name, &m, hook, single_ids, single_T);
    free(single_ids);
    model_free(&m);
    json_decref(root);
}

static void test_golden_qwen3_tied(void) { golden_check("qwen3_tied", GOLDEN_DIR "/qwen3_tied"); }
static void test_golden_qwen2_untied_sharded(void) {
    golden_check("qwen2_untied_sharded", GOLDEN_DIR "/qwen2_untied_sharded");
}
static void test_golden_llama_gqa4(void) { golden_check("llama_gqa4", GOLDEN_DIR "/llama_gqa4"); }
static void test_golden_qwen3_bf16(void) { golden_check("qwen3_bf16", GOLDEN_DIR "/qwen3_bf16"); }

static int is_dir(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

// The testbed model lives in data/testbed/model (committed) or ../shared/testbed/model beside the
// repository; when neither is there the test is skipped with a message.
static void test_golden_testbed(void) {
    const char *dirs[] = {"data/testbed/model", "../shared/testbed/model"};
    for (int i = 0; i < 2; i++)
        if (is_dir(dirs[i])) {
            golden_check("testbed", dirs[i]);
            return;
        }
    printf("    skip: testbed model not found (data/testbed/model or ../shared/testbed/model)\n");
}

int main(void) {
    RUN(test_rmsnorm_all_dtypes);
    RUN(test_rope_positions_restart_per_doc);
    RUN(test_rope_rotate_half);
    RUN(test_matmul_f32);
    RUN(test_matmul_f16);
    RUN(test_matmul_bf16);
    RUN(test_matmul_edge_sizes);
    RUN(test_swiglu);
    RUN(test_forward_rejects_bad_input);
    RUN(test_forward_packed_equals_alone);
    RUN(test_forward_hook);
    RUN(test_golden_qwen3_tied);
    RUN(test_golden_qwen2_untied_sharded);
    RUN(test_golden_llama_gqa4);
    RUN(test_golden_qwen3_bf16);
    RUN(test_golden_testbed);
    return test_summary();
}
