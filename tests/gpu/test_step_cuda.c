// test_step_cuda.c (GPU): the GPU training step (train/step_cuda.h) against the CPU path of
// train/loop.c (forward_cpu hook + gate_loss_cpu + adamw_clip_grad + adamw_step).
//
// 1. The optimizer kernels alone: same fp32 inputs on both sides (n = 100,003, not a multiple of
//    anything), gradient scaling, clipping on and off, weight decay, step counts 1 and 7, a NaN
//    gradient. The scaled gradient, params and both moments must be bit-identical to the CPU's
//    (both do the same fp32 operations in the same order); the norm (double sums in another
//    order) within 1e-12 relative.
// 2. A whole step on the testbed model (data/testbed/model, Qwen3, 6 layers, HD 64, G 4; gate DG
//    128) over two chunks of awkward documents (1, 66, 150, 300, 700 tokens; 40 with no supervised
//    row; more documents than the gate was planned for): the GPU's bf16 forward against the CPU's
//    fp32 forward. Per-layer losses within 2e-2 relative and each layer's gradient within 5e-2 of
//    its largest entry (bf16 activations: ~4e-3 per rounding, compounded over 6 layers and the
//    target's softmax). Then the update from the GPU's own gradient replayed on the CPU: params
//    and moments bit-identical, over two steps (bias correction at t = 1 and 2, clipping on).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cuda_check.h"
#include "common/common.h"
#include "model/forward_cpu.h"
#include "model/model.h"
#include "tests/test.h"
#include "train/adamw.h"
#include "train/gate.h"
#include "train/gate_loss.h"
#include "train/step_cuda.h"


static uint64_t rng = 0x9e3779b97f4a7c15ull;
static double urand(void) {  // [0, 1)
    rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
    return ((rng * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static float nrand(void) { return (float)(sqrt(-2 * log(1 - urand())) * cos(6.283185307179586 * urand())); }

static void *to_dev(const float *h, int64_t n) {
    void *d;
    CUDA_OK(cudaMalloc(&d, sizeof(float) * (size_t)n));
    CUDA_OK(cudaMemcpy(d, h, sizeof(float) * (size_t)n, cudaMemcpyHostToDevice));
    return d;
}

static float *from_dev(const float *d, int64_t n) {
    float *h = xmalloc(sizeof(float) * (size_t)n);
    CUDA_OK(cudaMemcpy(h, d, sizeof(float) * (size_t)n, cudaMemcpyDeviceToHost));
    return h;
}

static int same_bits(const float *a, const float *b, int64_t n) {
    return memcmp(a, b, sizeof(float) * (size_t)n) == 0;
}

// Bit-identical, except that a NaN matches any NaN (CPU and GPU make different NaN payloads).
static int same_values(const float *a, const float *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (!(isnan(a[i]) && isnan(b[i])) && memcmp(&a[i], &b[i], sizeof(float)) != 0) return 0;
    return 1;
}

// ---------------------------------------------------------------- 1. optimizer kernels

typedef struct {
    float scale, clip, lr, wd;
    int64_t t;     // step count after the update
    int nan_at;    // index of a NaN gradient entry, or -1
} OptCase;

static void run_opt_case(const OptCase *c) {
    const int64_t n = 100003;
    SeerErr err;
    float *p = xmalloc(sizeof(float) * n), *g = xmalloc(sizeof(float) * n);
    AdamW opt;
    AdamWHyper hp = adamw_default_hyper();
    hp.weight_decay = c->wd;
    adamw_init(&opt, n, hp);
    for (int64_t i = 0; i < n; i++) {
        p[i] = 0.05f * nrand();
        g[i] = 0.01f * nrand() * (i % 97 == 0 ? 30.0f : 1.0f);
        opt.m[i] = c->t > 1 ? 0.003f * nrand() : 0.0f;
        opt.v[i] = c->t > 1 ? 1e-5f * (float)urand() : 0.0f;
    }
    if (c->nan_at >= 0) g[c->nan_at] = NAN;
    opt.t = c->t - 1;
    float *dp = to_dev(p, n), *dg = to_dev(g, n), *dm = to_dev(opt.m, n), *dv = to_dev(opt.v, n);
    double *partials, norm_gpu = 0;
    CUDA_OK(cudaMalloc((void **)&partials, sizeof(double) * ADAMW_CUDA_PARTIALS));
    // CPU: as train/loop.c does it.
    for (int64_t i = 0; i < n; i++) g[i] *= c->scale;
    float *g_scaled = xmalloc(sizeof(float) * n);
    memcpy(g_scaled, g, sizeof(float) * n);
    double norm_cpu = adamw_clip_grad(g, n, c->clip);
    // GPU.
    CHECK(adamw_cuda_scale_norm(dg, n, c->scale, partials, &norm_gpu, 0, &err) == 0);
    float *g_gpu = from_dev(dg, n);
    CHECK(same_values(g_gpu, g_scaled, n));
    if (c->nan_at >= 0) {
        CHECK(isnan(norm_gpu) && isnan(norm_cpu));
    } else {
        CHECK(fabs(norm_gpu - norm_cpu) <= 1e-12 * norm_cpu);
        float coef = adamw_clip_coef(norm_gpu, c->clip);
        CHECK(coef == adamw_clip_coef(norm_cpu, c->clip));
        CHECK(c->clip <= 0 || (coef < 1.0f) == (norm_cpu > c->clip + 1e-6));
        adamw_step(&opt, p, g, c->lr);
        CHECK(adamw_cuda_step(dp, dm, dv, dg, n, coef, hp, c->t, c->lr, 0, &err) == 0);
        float *pg = from_dev(dp, n), *mg = from_dev(dm, n), *vg = from_dev(dv, n);
        int ok = same_bits(pg, p, n) && same_bits(mg, opt.m, n) && same_bits(vg, opt.v, n);
        if (!ok) printf("    params %g moments %g / %g max rel diff\n", max_rel_err(pg, p, n, 1e-30),
                        max_rel_err(mg, opt.m, n, 1e-30), max_rel_err(vg, opt.v, n, 1e-30));
        CHECK(ok);
        free(pg), free(mg), free(vg);
    }
    CHECK(adamw_cuda_step(dp, dm, dv, dg, n, 1.0f, hp, 0, c->lr, 0, &err) == -1);  // t < 1
    cudaFree(dp), cudaFree(dg), cudaFree(dm), cudaFree(dv), cudaFree(partials);
    free(p), free(g), free(g_scaled), free(g_gpu);
    adamw_free(&opt);
}

static void test_adamw_kernels(void) {
    static const OptCase cases[] = {
        {1.0f / 3, 0.5f, 1e-3f, 0.0f, 1, -1},   // clipping active, first step
        {1.0f, 0.0f, 7e-4f, 0.0f, 7, -1},       // clipping off, later step
        {0.0625f, 1e6f, 1e-3f, 0.1f, 7, -1},    // clip not reached, weight decay
        {1.0f / 16, 1.0f, 1e-3f, 0.0f, 2, 5},   // a NaN gradient gives a NaN norm
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) run_opt_case(&cases[i]);
    CHECK(adamw_clip_coef(3.0, 0.0) == 1.0f && adamw_clip_coef(0.5, 1.0) == 1.0f);
    CHECK(adamw_clip_coef(4.0, 1.0) == (float)(1.0 / (4.0 + 1e-6)));
}

// ---------------------------------------------------------------- 2. a whole step

typedef struct {
    GateShape s;
    int64_t P;
    const float *params;  // [L, P]
    float *grads;         // [L, P]
    double *loss;         // [L]
    GateLossOpts o;
    float theta;
} CpuCtx;

static int cpu_hook(void *vctx, const ForwardLayerView *v, SeerErr *err) {
    CpuCtx *c = vctx;
    GateChunk ch = {v->q_nope, v->k_nope, v->doc_lens, v->n_docs, v->T, v->NB, c->theta};
    GateLossStats st;
    int64_t off = (int64_t)v->layer * c->P;
    if (gate_loss_cpu(&st, c->grads + off, c->params + off, c->s, &ch, v->target, &c->o, err)) return -1;
    c->loss[v->layer] += st.loss;
    return 0;
}

// The CPU replay of step_cuda_finish on the GPU's summed gradient g_sum: expects the GPU state.
static void check_update_replay(StepCuda *sc, float *p, AdamW *opt, const float *g_sum, int C,
                                float lr, float clip, double norm_gpu, int64_t n) {
    SeerErr err;
    float *g = xmalloc(sizeof(float) * n), inv = 1.0f / (float)C;
    for (int64_t i = 0; i < n; i++) g[i] = g_sum[i] * inv;
    double norm = adamw_clip_grad(g, n, clip);
    adamw_step(opt, p, g, lr);
    float *pg = xmalloc(sizeof(float) * n), *mg = xmalloc(sizeof(float) * n), *vg = xmalloc(sizeof(float) * n);
    int64_t t;
    CHECK(step_cuda_get_state(sc, pg, mg, vg, &t, &err) == 0);
    CHECK(t == opt->t);
    CHECK(fabs(norm - norm_gpu) <= 1e-12 * norm);
    int ok = same_bits(pg, p, n) && same_bits(mg, opt->m, n) && same_bits(vg, opt->v, n);
    printf("    step %lld: grad norm %.6g (clip %g), update bit-identical: %s\n", (long long)t, norm_gpu,
           clip, ok ? "yes" : "no");
    CHECK(ok);
    free(g), free(pg), free(mg), free(vg);
}

// Worst over layers of max |g - ref| / max |ref| (NaN gives INFINITY).
static double worst_grad_err(const float *g, const float *ref, int64_t P, int L) {
    double worst = 0;
    for (int l = 0; l < L; l++) {
        double e = 0, mx = 0;
        for (int64_t i = 0; i < P; i++) mx = fmax(mx, fabs(ref[l * P + i]));
        for (int64_t i = 0; i < P; i++) {
            double d = fabs((double)g[l * P + i] - ref[l * P + i]) / mx;
            e = d != d ? INFINITY : fmax(e, d);
        }
        worst = fmax(worst, e);
    }
    return worst;
}

// Worst over layers of |loss - ref| / |ref| (NaN gives INFINITY).
static double worst_loss_err(const double *loss, const double *ref, int L) {
    double worst = 0;
    for (int l = 0; l < L; l++) {
        double e = fabs(loss[l] - ref[l]) / fabs(ref[l]);
        worst = e != e ? INFINITY : fmax(worst, e);
    }
    return worst;
}

// One step of the chunks with options o from params: the summed gradient g [n] and the layer
// losses [L] (step means). Returns 0, or -1 having printed the error.
static int gpu_step(float *g, double *loss, const Model *m, const StepCudaOpts *o, const float *params,
                    int *const *ids, const int *Tc, const int *const *docs, const int *nd, int nc) {
    SeerErr err;
    StepCuda *sc;
    int rc = step_cuda_create(&sc, &m->cfg, o, NULL, &err);
    if (!rc) rc = step_cuda_upload_model(sc, m, &err);
    if (!rc) rc = step_cuda_set_state(sc, params, NULL, NULL, 0, &err);
    if (!rc) rc = step_cuda_begin(sc, &err);
    for (int c = 0; !rc && c < nc; c++) rc = step_cuda_chunk(sc, ids[c], Tc[c], docs[c], nd[c], NULL, &err);
    if (!rc) rc = step_cuda_get_grads(sc, g, &err);
    if (!rc) rc = step_cuda_finish(sc, 1e-3f, 1.0f, loss, NULL, &err);
    if (rc) printf("    %s\n", err.msg);
    step_cuda_free(sc);
    return rc;
}

static void test_step_testbed(void) {
    SeerErr err;
    Model m;
    if (test_model_load(&m, "data/testbed/model")) return;
    const ModelConfig *mc = &m.cfg;
    static const int docs1[] = {150, 1, 66, 90, 300}, docs2[] = {700, 40};
    const int *docs[2] = {docs1, docs2}, nd[2] = {5, 2}, Tc[2] = {607, 740};
    int *ids[2];
    for (int c = 0; c < 2; c++) {
        ids[c] = xmalloc(sizeof(int) * Tc[c]);
        for (int t = 0; t < Tc[c]; t++) ids[c][t] = (int)(urand() * mc->V);
    }
    StepCudaOpts so = step_cuda_default_opts(740, 2);  // 5 documents: the gate grows once
    CHECK(so.tf32 == 1);
    StepCuda *sc;
    if (step_cuda_create(&sc, mc, &so, stdout, &err)) {
        printf("    %s\n", err.msg);
        CHECK(0);
        model_free(&m);
        return;
    }
    CHECK(step_cuda_upload_model(sc, &m, &err) == 0);
    GateShape s = {mc->HKV, mc->H / mc->HKV, mc->HD, 128};
    int64_t P = gate_param_count(s), n = P * mc->L, L = mc->L;
    CHECK(step_cuda_param_count(sc) == n);
    float *params = xmalloc(sizeof(float) * n), *grads = xcalloc((size_t)n, sizeof(float));
    for (int l = 0; l < L; l++) gate_params_init(params + l * P, s, 11, l);
    float *params0 = xmalloc(sizeof(float) * n);
    memcpy(params0, params, sizeof(float) * n);
    double *loss_cpu = xcalloc((size_t)L, sizeof(double)), *loss_gpu = xcalloc((size_t)L, sizeof(double)), norm;
    CHECK(step_cuda_set_state(sc, params, NULL, NULL, 0, &err) == 0);
    CHECK(step_cuda_begin(sc, &err) == 0);
    CHECK(step_cuda_finish(sc, 1e-3f, 1.0f, NULL, NULL, &err) == -1);  // no chunk yet
    // CPU reference: two chunks through forward_cpu with the gate hook.
    CpuCtx cc = {s, P, params, grads, loss_cpu, gate_loss_default_opts(), mc->rope_theta};
    ForwardHook hook = {cpu_hook, &cc, 1};
    for (int c = 0; c < 2; c++) {
        CHECK(forward_cpu(&m, ids[c], Tc[c], docs[c], nd[c], NULL, FORWARD_LOGITS_ALL, &hook, &err) == 0);
        int rc = step_cuda_chunk(sc, ids[c], Tc[c], docs[c], nd[c], NULL, &err);
        if (rc) printf("    %s\n", err.msg);
        CHECK(rc == 0);
    }
    float *g_gpu = xmalloc(sizeof(float) * n);
    CHECK(step_cuda_get_grads(sc, g_gpu, &err) == 0);
    CHECK(step_cuda_finish(sc, 1e-3f, 1.0f, loss_gpu, &norm, &err) == 0);
    for (int l = 0; l < L; l++) {
        loss_cpu[l] /= 2;  // the step's mean over its two chunks
        printf("    layer %d loss cpu %.6f gpu %.6f\n", l, loss_cpu[l], loss_gpu[l]);
    }
    double el = worst_loss_err(loss_gpu, loss_cpu, (int)L), eg = worst_grad_err(g_gpu, grads, P, (int)L);
    printf("    two chunks: worst layer loss rel err %.3g (bound 2e-2), worst grad err %.3g of max (bound 5e-2)\n", el, eg);
    CHECK(el <= 2e-2 && eg <= 5e-2);
    // The same step again from a fresh state: bit-identical (no atomics anywhere); with fp32
    // gate projections instead of TF32: within the same bounds.
    float *g2 = xmalloc(sizeof(float) * n);
    double *loss2 = xcalloc((size_t)L, sizeof(double));
    StepCudaOpts o2 = so;
    CHECK(gpu_step(g2, loss2, &m, &o2, params0, ids, Tc, docs, nd, 2) == 0);
    CHECK(same_bits(g2, g_gpu, n) && memcmp(loss2, loss_gpu, sizeof(double) * L) == 0);
    o2.tf32 = 0;
    CHECK(gpu_step(g2, loss2, &m, &o2, params0, ids, Tc, docs, nd, 2) == 0);
    el = worst_loss_err(loss2, loss_cpu, (int)L), eg = worst_grad_err(g2, grads, P, (int)L);
    printf("    fp32 gate projections: worst layer loss rel err %.3g, worst grad err %.3g of max\n", el, eg);
    CHECK(el <= 2e-2 && eg <= 5e-2);
    free(g2), free(loss2), free(params0);
    AdamW opt;
    adamw_init(&opt, n, adamw_default_hyper());
    check_update_replay(sc, params, &opt, g_gpu, 2, 1e-3f, 1.0f, norm, n);
    // Second step: one chunk, tighter clip, t = 2.
    CHECK(step_cuda_begin(sc, &err) == 0);
    CHECK(step_cuda_chunk(sc, ids[1], Tc[1], docs[1], nd[1], NULL, &err) == 0);
    CHECK(step_cuda_get_grads(sc, g_gpu, &err) == 0);
    CHECK(step_cuda_finish(sc, 5e-4f, 0.05f, NULL, &norm, &err) == 0);
    check_update_replay(sc, params, &opt, g_gpu, 1, 5e-4f, 0.05f, norm, n);
    // Bad chunks are refused before any work.
    int bad[] = {400, 400};
    CHECK(step_cuda_chunk(sc, ids[1], 800, bad, 2, NULL, &err) == -1);  // > max_T
    CHECK(step_cuda_chunk(sc, ids[1], 700, bad, 2, NULL, &err) == -1);  // lengths sum to 800
    adamw_free(&opt);
    step_cuda_free(sc);
    model_free(&m);
    free(params), free(grads), free(loss_cpu), free(loss_gpu), free(g_gpu), free(ids[0]), free(ids[1]);
}

int main(void) {
    RUN(test_adamw_kernels);
    RUN(test_step_testbed);
    return test_summary();
}
