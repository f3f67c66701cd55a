// step_cuda.c: see step_cuda.h. Sections: options and state, create / free, state transfer,
// the step (begin, chunk with the per-layer hook, finish).
#ifdef SEER_CUDA
#include "common/cuda_check.h"
#include "train/step_cuda.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/forward_cuda.h"


struct StepCuda {
    StepCudaOpts o;
    ModelConfig cfg;
    GateShape s;
    int L;
    int64_t P, n;            // parameters per layer, in all
    ForwardCuda fwd;
    int fwd_made;
    GateCuda *gate;
    int gate_docs;           // the gate's document capacity
    float *params, *grads;   // [L, P] device fp32
    float *m, *v;            // [L, P] device fp32 AdamW moments
    double *loss;            // [L] device: the step's summed per-layer losses
    double *partials;        // [ADAMW_CUDA_PARTIALS] device scratch
    int64_t t;               // AdamW steps taken
    int chunks;              // chunks since step_cuda_begin
    cudaEvent_t *ev;         // [2 L] gate timing events (timing only)
    cudaEvent_t opt_ev[2];   // optimizer timing events (timing only)
    StepCudaTimes times;
};

StepCudaOpts step_cuda_default_opts(int max_T, int max_docs) {
    return (StepCudaOpts){.max_T = max_T, .max_docs = max_docs, .DG = 128, .tf32 = 1,
                          .loss = gate_loss_default_opts(), .hp = adamw_default_hyper()};
}

float adamw_clip_coef(double norm, double max_norm) {
    if (max_norm <= 0) return 1.0f;
    double coef = max_norm / (norm + 1e-6);
    return coef >= 1.0 ? 1.0f : (float)coef;
}

// ---------------------------------------------------------------- create / free

// (Re)creates the gate workspace for chunks of up to docs documents on the forward's stream.
static int make_gate(StepCuda *sc, int docs, SeerErr *err) {
    gate_cuda_free(sc->gate);
    sc->gate = NULL;
    int NB = ceil_div(sc->o.max_T, SEER_BLOCK);
    if (gate_cuda_create(&sc->gate, sc->s, sc->o.max_T, NB, docs, sc->fwd.stream, err)) return -1;
    gate_cuda_set_tf32(sc->gate, sc->o.tf32);
    sc->gate_docs = docs;
    return 0;
}

static int alloc_state(StepCuda *sc, SeerErr *err) {
    size_t b = (size_t)sc->n * sizeof(float);
    CUDA_TRY(cudaMalloc((void **)&sc->params, b));
    CUDA_TRY(cudaMalloc((void **)&sc->grads, b));
    CUDA_TRY(cudaMalloc((void **)&sc->m, b));
    CUDA_TRY(cudaMalloc((void **)&sc->v, b));
    CUDA_TRY(cudaMalloc((void **)&sc->loss, sizeof(double) * (size_t)sc->L));
    CUDA_TRY(cudaMalloc((void **)&sc->partials, sizeof(double) * ADAMW_CUDA_PARTIALS));
    CUDA_TRY(cudaMemset(sc->params, 0, b));
    CUDA_TRY(cudaMemset(sc->m, 0, b));
    CUDA_TRY(cudaMemset(sc->v, 0, b));
    if (sc->o.timing) {
        sc->ev = xcalloc((size_t)2 * sc->L, sizeof(cudaEvent_t));
        for (int i = 0; i < 2 * sc->L; i++) CUDA_TRY(cudaEventCreate(&sc->ev[i]));
        for (int i = 0; i < 2; i++) CUDA_TRY(cudaEventCreate(&sc->opt_ev[i]));
    }
    return 0;
}

int step_cuda_create(StepCuda **out, const ModelConfig *cfg, const StepCudaOpts *o, FILE *log,
                     SeerErr *err) {
    *out = NULL;
    if (o->max_T < 1 || o->max_docs < 1)
        return seer_fail(err, "step_cuda: max_T %d and max_docs %d must be >= 1", o->max_T, o->max_docs);
    if (cfg->HKV < 1 || cfg->H % cfg->HKV)
        return seer_fail(err, "step_cuda: %d query heads are not a multiple of %d KV heads", cfg->H, cfg->HKV);
    if (gate_loss_opts_check(&o->loss, err)) return -1;
    StepCuda *sc = xcalloc(1, sizeof *sc);
    sc->o = *o;
    sc->cfg = *cfg;
    sc->s = (GateShape){.HKV = cfg->HKV, .G = cfg->H / cfg->HKV, .HD = cfg->HD, .DG = o->DG};
    sc->L = cfg->L;
    int rc = gate_shape_check(sc->s, err);
    if (!rc) {
        sc->P = gate_param_count(sc->s);
        sc->n = sc->P * sc->L;
        rc = forward_cuda_create(&sc->fwd, cfg, o->max_T, 1, o->timing, log, err);
        sc->fwd_made = !rc;
    }
    if (!rc) rc = make_gate(sc, o->max_docs, err);
    if (!rc) rc = alloc_state(sc, err);
    if (rc) {
        step_cuda_free(sc);
        return -1;
    }
    *out = sc;
    return 0;
}

void step_cuda_free(StepCuda *sc) {
    if (!sc) return;
    if (sc->ev) {
        for (int i = 0; i < 2 * sc->L; i++) cudaEventDestroy(sc->ev[i]);
        for (int i = 0; i < 2; i++) cudaEventDestroy(sc->opt_ev[i]);
        free(sc->ev);
    }
    cudaFree(sc->params), cudaFree(sc->grads), cudaFree(sc->m), cudaFree(sc->v);
    cudaFree(sc->loss), cudaFree(sc->partials);
    gate_cuda_free(sc->gate);
    if (sc->fwd_made) forward_cuda_free(&sc->fwd);
    free(sc);
}

int step_cuda_upload_model(StepCuda *sc, const Model *m, SeerErr *err) {
    const ModelConfig *a = &m->cfg, *b = &sc->cfg;
    if (a->D != b->D || a->L != b->L || a->H != b->H || a->HKV != b->HKV || a->HD != b->HD ||
        a->F != b->F || a->V != b->V)
        return seer_fail(err, "step_cuda: the model's shape differs from the one the step was planned for");
    return forward_cuda_upload(&sc->fwd, m, err);
}

int step_cuda_randomize_model(StepCuda *sc, uint64_t seed, SeerErr *err) {
    return forward_cuda_randomize(&sc->fwd, seed, err);
}

int64_t step_cuda_param_count(const StepCuda *sc) { return sc->n; }

StepCudaMem step_cuda_mem(const StepCuda *sc) {
    return (StepCudaMem){
        .weights = sc->fwd.plan.weight_bytes,
        .forward_work = sc->fwd.plan.work_bytes,
        .gate_work = gate_cuda_bytes(sc->s, sc->o.max_T, ceil_div(sc->o.max_T, SEER_BLOCK), sc->gate_docs),
        .optimizer = 4 * (size_t)sc->n * sizeof(float) + sizeof(double) * ((size_t)sc->L + ADAMW_CUDA_PARTIALS),
    };
}

// ---------------------------------------------------------------- state transfer

int step_cuda_set_state(StepCuda *sc, const float *params, const float *m, const float *v,
                        int64_t t, SeerErr *err) {
    if (t < 0) return seer_fail(err, "step_cuda: optimizer step count %lld < 0", (long long)t);
    size_t b = (size_t)sc->n * sizeof(float);
    CUDA_TRY(cudaMemcpy(sc->params, params, b, cudaMemcpyHostToDevice));
    if (m) CUDA_TRY(cudaMemcpy(sc->m, m, b, cudaMemcpyHostToDevice));
    else CUDA_TRY(cudaMemset(sc->m, 0, b));
    if (v) CUDA_TRY(cudaMemcpy(sc->v, v, b, cudaMemcpyHostToDevice));
    else CUDA_TRY(cudaMemset(sc->v, 0, b));
    sc->t = t;
    return 0;
}

int step_cuda_get_state(StepCuda *sc, float *params, float *m, float *v, int64_t *t, SeerErr *err) {
    size_t b = (size_t)sc->n * sizeof(float);
    CUDA_TRY(cudaStreamSynchronize(sc->fwd.stream));
    if (params) CUDA_TRY(cudaMemcpy(params, sc->params, b, cudaMemcpyDeviceToHost));
    if (m) CUDA_TRY(cudaMemcpy(m, sc->m, b, cudaMemcpyDeviceToHost));
    if (v) CUDA_TRY(cudaMemcpy(v, sc->v, b, cudaMemcpyDeviceToHost));
    if (t) *t = sc->t;
    return 0;
}

int step_cuda_get_grads(StepCuda *sc, float *g, SeerErr *err) {
    CUDA_TRY(cudaStreamSynchronize(sc->fwd.stream));
    CUDA_TRY(cudaMemcpy(g, sc->grads, (size_t)sc->n * sizeof(float), cudaMemcpyDeviceToHost));
    return 0;
}

// ---------------------------------------------------------------- the step

int step_cuda_begin(StepCuda *sc, SeerErr *err) {
    cudaStream_t s = sc->fwd.stream;
    CUDA_TRY(cudaMemsetAsync(sc->grads, 0, (size_t)sc->n * sizeof(float), s));
    CUDA_TRY(cudaMemsetAsync(sc->loss, 0, sizeof(double) * (size_t)sc->L, s));
    sc->chunks = 0;
    memset(&sc->times, 0, sizeof sc->times);
    return 0;
}

// At each layer of the forward (after attention, before o_proj): the gate's loss and gradient
// from the layer's nope q/k and target, added into this layer's slots.
static int gate_layer_hook(void *ctx, const ForwardCudaLayerView *v, SeerErr *err) {
    StepCuda *sc = ctx;
    int l = v->layer;
    if (!v->target) return seer_fail(err, "step_cuda: layer %d came without the gate target", l);
    if (sc->ev) CUDA_TRY(cudaEventRecord(sc->ev[2 * l], v->stream));
    int64_t off = (int64_t)l * sc->P;
    if (gate_cuda_loss(sc->gate, sc->grads + off, sc->loss + l, sc->params + off, v->q_nope,
                       v->ld_nope, v->k_nope, v->ld_nope, v->target, err))
        return -1;
    if (sc->ev) CUDA_TRY(cudaEventRecord(sc->ev[2 * l + 1], v->stream));
    return 0;
}

static int add_chunk_times(StepCuda *sc, SeerErr *err) {
    const ForwardCudaTimes *ft = &sc->fwd.times;
    double gate = 0;
    for (int l = 0; l < sc->L; l++) {
        float ms;
        CUDA_TRY(cudaEventElapsedTime(&ms, sc->ev[2 * l], sc->ev[2 * l + 1]));
        gate += ms;
    }
    sc->times.gemm += ft->gemm;
    sc->times.attention += ft->attention;
    sc->times.gate += gate;
    sc->times.other += ft->other - gate;  // the forward counts the hook's time as "other"
    sc->times.chunks++;
    return 0;
}

int step_cuda_chunk(StepCuda *sc, const int *ids, int T, const int *doc_lens, int n_docs,
                    GateLossStats *st, SeerErr *err) {
    if (T < 1 || T > sc->o.max_T || n_docs < 1)
        return seer_fail(err, "step_cuda: chunk of %d tokens in %d documents; the plan holds 1 .. %d tokens",
                         T, n_docs, sc->o.max_T);
    int longest = 0;
    for (int d = 0; d < n_docs; d++) longest = doc_lens[d] > longest ? doc_lens[d] : longest;
    if (n_docs > sc->gate_docs) {
        int docs = sc->gate_docs;
        while (docs < n_docs) docs *= 2;
        if (make_gate(sc, docs, err)) return -1;
    }
    if (gate_cuda_set_chunk(sc->gate, doc_lens, n_docs, T, ceil_div(longest, SEER_BLOCK),
                            sc->cfg.rope_theta, &sc->o.loss, st, err))
        return -1;
    int *from = gate_loss_first_rows(doc_lens, n_docs, sc->o.loss.slice_ratio);  // the rows the loss reads
    ForwardCudaHook hook = {.fn = gate_layer_hook, .ctx = sc, .want_target = 1, .target_from = from};
    int rc = forward_cuda_run(&sc->fwd, ids, T, doc_lens, n_docs, &hook, NULL, err);
    free(from);
    if (rc) return -1;
    sc->chunks++;
    return sc->ev ? add_chunk_times(sc, err) : 0;
}

int step_cuda_finish(StepCuda *sc, float lr, float clip, double *layer_loss, double *grad_norm,
                     SeerErr *err) {
    if (sc->chunks < 1) return seer_fail(err, "step_cuda: a step needs at least one chunk");
    cudaStream_t s = sc->fwd.stream;
    if (sc->ev) CUDA_TRY(cudaEventRecord(sc->opt_ev[0], s));
    double *ll = xmalloc(sizeof(double) * (size_t)sc->L), loss = 0, norm;  // [L] host
    cudaError_t e = cudaMemcpyAsync(ll, sc->loss, sizeof(double) * (size_t)sc->L, cudaMemcpyDeviceToHost, s);
    float inv = 1.0f / (float)sc->chunks;  // mean over the step's chunks, as train/loop.c
    int rc = e != cudaSuccess ? seer_fail(err, "step_cuda: loss copy: %s", cudaGetErrorString(e))
                              : adamw_cuda_scale_norm(sc->grads, sc->n, inv, sc->partials, &norm, s, err);
    for (int l = 0; !rc && l < sc->L; l++) loss += (ll[l] /= sc->chunks);
    if (!rc && layer_loss) memcpy(layer_loss, ll, sizeof(double) * (size_t)sc->L);
    free(ll);
    if (rc) return -1;
    if (grad_norm) *grad_norm = norm;
    if (!isfinite(norm) || !isfinite(loss))
        return seer_fail(err, "step_cuda: non-finite loss %g / gradient norm %g: no update applied", loss, norm);
    if (adamw_cuda_step(sc->params, sc->m, sc->v, sc->grads, sc->n, adamw_clip_coef(norm, clip),
                        sc->o.hp, sc->t + 1, lr, s, err))
        return -1;
    sc->t++;
    if (sc->ev) {
        float ms;
        CUDA_TRY(cudaEventRecord(sc->opt_ev[1], s));
        CUDA_TRY(cudaEventSynchronize(sc->opt_ev[1]));
        CUDA_TRY(cudaEventElapsedTime(&ms, sc->opt_ev[0], sc->opt_ev[1]));
        sc->times.optimizer += ms;
    }
    CUDA_TRY(cudaStreamSynchronize(s));
    return 0;
}

StepCudaTimes step_cuda_times(const StepCuda *sc) { return sc->times; }
#endif
