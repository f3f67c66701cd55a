// forward_cuda.cu: see forward_cuda.h.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>

#include <stdlib.h>
#include <string.h>

extern "C" {
#include "common/cuda_check.h"
#include "kernels/embedding.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "model/forward_cuda.h"
}

// ---------------------------------------------------------------- random fill

__device__ __forceinline__ uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

__global__ void fill_normal_kernel(__nv_bfloat16 *x, int64_t n, float mean, float std, uint64_t seed) {
    for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n;
         i += (int64_t)gridDim.x * blockDim.x) {
        uint64_t r = mix64(seed ^ mix64((uint64_t)i));
        float u1 = ((r >> 40) + 1) * (1.0f / 16777217.0f), u2 = ((r >> 16) & 0xffffff) * (1.0f / 16777216.0f);
        x[i] = __float2bfloat16(mean + std * sqrtf(-2.f * logf(u1)) * cospif(2.f * u2));
    }
}

int cuda_fill_normal_bf16(uint16_t *x, int64_t n, float mean, float std, uint64_t seed,
                          cudaStream_t stream, SeerErr *err) {
    if (n <= 0) return 0;
    int64_t blocks = (n + 255) / 256;
    fill_normal_kernel<<<(int)(blocks < 65536 ? blocks : 65536), 256, 0, stream>>>((__nv_bfloat16 *)x, n, mean, std, seed);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "forward_cuda.cu: fill_normal_kernel n %lld: %s", (long long)n, cudaGetErrorString(e));
    return 0;
}

// ---------------------------------------------------------------- plan

#define TRY(x)                  \
    do {                        \
        if ((x) < 0) return -1; \
    } while (0)

static size_t align256(size_t n) { return (n + 255) / 256 * 256; }

// Element counts of one layer's weights, in LayerCuda order.
static void layer_sizes(const ModelConfig *c, size_t n[9]) {
    size_t D = c->D, HD = c->HD, QKV = (size_t)(c->H + 2 * c->HKV) * HD;
    n[0] = D;
    n[1] = QKV * D;
    n[2] = c->qkv_bias ? QKV : 0;
    n[3] = c->qk_norm ? HD : 0;
    n[4] = c->qk_norm ? HD : 0;
    n[5] = D * c->H * HD;
    n[6] = D;
    n[7] = 2 * (size_t)c->F * D;
    n[8] = D * (size_t)c->F;
}

// Bytes of the attention plan at T tokens: one document of T tokens (the scratch depends on NB
// only) plus room for the work items of up to T one-token documents.
static int attn_ws_bound(size_t *b, const ModelConfig *c, int T, int NB, int with_target, SeerErr *err) {
    TRY(attention_cuda_plan_bytes(b, &T, 1, T, c->H, c->HKV, c->HD, NB ? NB : ceil_div(T, SEER_BLOCK),
                                  with_target, err));
    *b += align256((size_t)T * c->HKV * 16);
    return 0;
}

int forward_cuda_plan(ForwardCudaPlan *p, const ModelConfig *c, int max_T, int with_target, SeerErr *err) {
    if (max_T < 1) return seer_fail(err, "forward_cuda: max tokens %d < 1", max_T);
    size_t n[9], lw = 0, T = max_T, D = c->D, HD = c->HD;
    layer_sizes(c, n);
    for (int i = 0; i < 9; i++) lw += align256(n[i] * 2);
    size_t w = align256((size_t)c->V * D * 2) * (c->tie_embeddings ? 1 : 2) + align256(D * 2) + lw * c->L;
    int NB = with_target ? ceil_div(max_T, SEER_BLOCK) : 0;
    size_t attn;
    TRY(attn_ws_bound(&attn, c, max_T, NB, with_target, err));
    size_t QKV = (size_t)(c->H + 2 * c->HKV) * HD;
    size_t a = align256(T * D * 4) + align256(T * D * 2) + align256(T * QKV * 2) +
               align256(T * (c->H + c->HKV) * HD * 2) + align256(T * c->H * HD * 2) +
               align256(T * 2 * c->F * 2) + align256(T * c->F * 2) +
               align256((size_t)c->HKV * T * NB * 4) + 2 * align256(T * (HD / 2) * 4) + 2 * align256(T * 4) + attn;
    *p = (ForwardCudaPlan){w, a, max_T, NB};
    return 0;
}

// ---------------------------------------------------------------- create / free

static char *carve(char **cur, size_t bytes) {
    char *p = *cur;
    *cur += align256(bytes);
    return p;
}

static void assign_views(ForwardCuda *f) {
    const ModelConfig *c = &f->cfg;
    size_t T = f->plan.max_T, D = c->D, HD = c->HD, n[9];
    char *w = (char *)f->weights;
    f->embed = (uint16_t *)carve(&w, (size_t)c->V * D * 2);
    f->lm_head = c->tie_embeddings ? f->embed : (uint16_t *)carve(&w, (size_t)c->V * D * 2);
    f->final_norm = (uint16_t *)carve(&w, D * 2);
    layer_sizes(c, n);
    for (int l = 0; l < c->L; l++) {
        uint16_t **v[9] = {&f->layers[l].attn_norm, &f->layers[l].wqkv, &f->layers[l].bqkv,
                           &f->layers[l].q_norm, &f->layers[l].k_norm, &f->layers[l].wo,
                           &f->layers[l].mlp_norm, &f->layers[l].wgu, &f->layers[l].wdown};
        for (int i = 0; i < 9; i++) *v[i] = n[i] ? (uint16_t *)carve(&w, n[i] * 2) : NULL;
    }
    char *a = (char *)f->work;
    f->x = (float *)carve(&a, T * D * 4);
    f->xn = (uint16_t *)carve(&a, T * D * 2);
    f->qkv = (uint16_t *)carve(&a, T * (c->H + 2 * c->HKV) * HD * 2);
    f->nope = (uint16_t *)carve(&a, T * (c->H + c->HKV) * HD * 2);
    f->att = (uint16_t *)carve(&a, T * c->H * HD * 2);
    f->gu = (uint16_t *)carve(&a, T * 2 * c->F * 2);
    f->mid = (uint16_t *)carve(&a, T * c->F * 2);
    f->target = f->with_target ? (float *)carve(&a, (size_t)c->HKV * T * f->plan.NB * 4) : NULL;
    f->cos_t = (float *)carve(&a, T * (HD / 2) * 4);
    f->sin_t = (float *)carve(&a, T * (HD / 2) * 4);
    f->ids = (int *)carve(&a, T * 4);
    f->pos = (int *)carve(&a, T * 4);
    f->attn_ws = a;
    f->attn_ws_bytes = (char *)f->work + f->plan.work_bytes - a;
}

int forward_cuda_create(ForwardCuda *f, const ModelConfig *cfg, int max_T, int with_target, int timing,
                        FILE *log, SeerErr *err) {
    memset(f, 0, sizeof *f);
    f->cfg = *cfg;
    f->with_target = with_target;
    TRY(forward_cuda_plan(&f->plan, cfg, max_T, with_target, err));
    int dev;
    struct cudaDeviceProp prop;
    CUDA_TRY(cudaGetDevice(&dev));
    CUDA_TRY(cudaGetDeviceProperties(&prop, dev));
    size_t free_b, total_b;
    CUDA_TRY(cudaMemGetInfo(&free_b, &total_b));
    double wg = f->plan.weight_bytes / 1e9, ag = f->plan.work_bytes / 1e9;
    if (log)
        fprintf(log, "forward: %s (device %d, %.1f GB free of %.1f GB): weights %.1f GB, workspace %.1f GB at %d tokens%s\n",
                prop.name, dev, free_b / 1e9, total_b / 1e9, wg, ag, max_T, with_target ? " (with target)" : "");
    size_t margin = (size_t)512 << 20;  // cuBLASLt workspace, CUDA context growth
    if (f->plan.weight_bytes + f->plan.work_bytes + margin > free_b)
        return seer_fail(err, "forward_cuda: needs %.1f GB (weights %.1f GB + workspace %.1f GB at %d tokens + 0.5 GB) but %s has %.1f GB free: use fewer tokens per chunk (--max-len), or a card with more memory",
                         wg + ag + 0.5, wg, ag, max_T, prop.name, free_b / 1e9);
    CUDA_TRY(cudaMalloc(&f->weights, f->plan.weight_bytes));
    CUDA_TRY(cudaMalloc(&f->work, f->plan.work_bytes));
    f->layers = (LayerCuda *)xcalloc((size_t)cfg->L, sizeof(LayerCuda));
    assign_views(f);
    f->gemm = gemm_cuda_create(err);
    if (!f->gemm) return -1;
    CUDA_TRY(cudaStreamCreate(&f->stream));
    if (timing) {
        f->ev_n = 10 * cfg->L + 4;
        f->ev = (cudaEvent_t *)xcalloc((size_t)f->ev_n, sizeof(cudaEvent_t));
        for (int i = 0; i < f->ev_n; i++) CUDA_TRY(cudaEventCreate(&f->ev[i]));
    }
    return 0;
}

void forward_cuda_free(ForwardCuda *f) {
    for (int i = 0; i < f->ev_n; i++) cudaEventDestroy(f->ev[i]);
    free(f->ev);
    if (f->stream) cudaStreamDestroy(f->stream);
    gemm_cuda_free(f->gemm);
    cudaFree(f->weights);
    cudaFree(f->work);
    free(f->layers);
    memset(f, 0, sizeof *f);
}

// ---------------------------------------------------------------- weights

// Copies n elements of tensor t (from element offset off) into device dst as bf16.
static int upload_tensor(uint16_t *dst, const Tensor *t, int64_t n, const char *what, SeerErr *err) {
    if (tensor_numel(t) != n)
        return seer_fail(err, "forward_cuda: %s has %lld elements, expected %lld", what,
                         (long long)tensor_numel(t), (long long)n);
    if (t->dtype == SEER_BF16) {
        CUDA_TRY(cudaMemcpy(dst, t->data, (size_t)n * 2, cudaMemcpyHostToDevice));
        return 0;
    }
    uint16_t *h = (uint16_t *)xmalloc((size_t)n * 2);  // [n] bf16 staging copy
    for (int64_t i = 0; i < n; i++) h[i] = f32_to_bf16(tensor_get(t, i));
    cudaError_t e = cudaMemcpy(dst, h, (size_t)n * 2, cudaMemcpyHostToDevice);
    free(h);
    if (e != cudaSuccess) return seer_fail(err, "forward_cuda: copy of %s: %s", what, cudaGetErrorString(e));
    return 0;
}

int forward_cuda_upload(ForwardCuda *f, const Model *m, SeerErr *err) {
    const ModelConfig *c = &f->cfg;
    int64_t D = c->D, HD = c->HD, qn = (int64_t)c->H * HD, kn = (int64_t)c->HKV * HD, F = c->F;
    TRY(upload_tensor(f->embed, &m->w.embed, (int64_t)c->V * D, "embed", err));
    if (!c->tie_embeddings) TRY(upload_tensor(f->lm_head, &m->w.lm_head, (int64_t)c->V * D, "lm_head", err));
    TRY(upload_tensor(f->final_norm, &m->w.final_norm, D, "final norm", err));
    for (int l = 0; l < c->L; l++) {
        const LayerWeights *w = &m->w.layers[l];
        LayerCuda *d = &f->layers[l];
        TRY(upload_tensor(d->attn_norm, &w->attn_norm, D, "attn_norm", err));
        TRY(upload_tensor(d->wqkv, &w->wq, qn * D, "wq", err));
        TRY(upload_tensor(d->wqkv + qn * D, &w->wk, kn * D, "wk", err));
        TRY(upload_tensor(d->wqkv + (qn + kn) * D, &w->wv, kn * D, "wv", err));
        if (c->qkv_bias) {
            TRY(upload_tensor(d->bqkv, &w->bq, qn, "bq", err));
            TRY(upload_tensor(d->bqkv + qn, &w->bk, kn, "bk", err));
            TRY(upload_tensor(d->bqkv + qn + kn, &w->bv, kn, "bv", err));
        }
        if (c->qk_norm) {
            TRY(upload_tensor(d->q_norm, &w->q_norm, HD, "q_norm", err));
            TRY(upload_tensor(d->k_norm, &w->k_norm, HD, "k_norm", err));
        }
        TRY(upload_tensor(d->wo, &w->wo, D * qn, "wo", err));
        TRY(upload_tensor(d->mlp_norm, &w->mlp_norm, D, "mlp_norm", err));
        TRY(upload_tensor(d->wgu, &w->w_gate, F * D, "w_gate", err));
        TRY(upload_tensor(d->wgu + F * D, &w->w_up, F * D, "w_up", err));
        TRY(upload_tensor(d->wdown, &w->w_down, D * F, "w_down", err));
    }
    return 0;
}

int forward_cuda_randomize(ForwardCuda *f, uint64_t seed, SeerErr *err) {
    const ModelConfig *c = &f->cfg;
    size_t n[9];
    layer_sizes(c, n);
    cudaStream_t s = f->stream;
    TRY(cuda_fill_normal_bf16(f->embed, (int64_t)c->V * c->D, 0.f, 0.02f, seed, s, err));
    if (!c->tie_embeddings) TRY(cuda_fill_normal_bf16(f->lm_head, (int64_t)c->V * c->D, 0.f, 0.02f, seed + 1, s, err));
    TRY(cuda_fill_normal_bf16(f->final_norm, c->D, 1.f, 0.f, 0, s, err));
    for (int l = 0; l < c->L; l++) {
        LayerCuda *d = &f->layers[l];
        uint16_t *v[9] = {d->attn_norm, d->wqkv, d->bqkv, d->q_norm, d->k_norm, d->wo, d->mlp_norm, d->wgu, d->wdown};
        static const float mean[9] = {1, 0, 0, 1, 1, 0, 1, 0, 0}, sd[9] = {0, .02f, 0, 0, 0, .02f, 0, .02f, .02f};
        for (int i = 0; i < 9; i++)
            if (v[i]) TRY(cuda_fill_normal_bf16(v[i], (int64_t)n[i], mean[i], sd[i], seed + 16 + 9 * l + i, s, err));
    }
    CUDA_TRY(cudaStreamSynchronize(s));
    return 0;
}

// ---------------------------------------------------------------- run

// Event pairs around the parts of a layer (timing only): index k of the run, part p.
typedef enum { PART_GEMM = 0, PART_ATTN = 1, PART_OTHER = 2 } Part;

typedef struct {
    ForwardCuda *f;
    int k;              // events used
    Part part[512];     // part of each interval [ev[k-1], ev[k])
} Timer;

static void timer_mark(Timer *t, Part p) {
    ForwardCuda *f = t->f;
    if (!f->ev || t->k >= f->ev_n || t->k >= 512) return;
    cudaEventRecord(f->ev[t->k], f->stream);
    t->part[t->k++] = p;
}

static int timer_sum(Timer *t, SeerErr *err) {
    ForwardCuda *f = t->f;
    memset(&f->times, 0, sizeof f->times);
    for (int i = 1; i < t->k; i++) {
        float ms;
        CUDA_TRY(cudaEventElapsedTime(&ms, f->ev[i - 1], f->ev[i]));
        double *slot = t->part[i] == PART_GEMM ? &f->times.gemm : t->part[i] == PART_ATTN ? &f->times.attention : &f->times.other;
        *slot += ms;
        f->times.total += ms;
    }
    return 0;
}

static int check_chunk(const ForwardCuda *f, const int *ids, int T, const int *doc_lens, int n_docs, SeerErr *err) {
    if (T < 1 || T > f->plan.max_T)
        return seer_fail(err, "forward_cuda: chunk of %d tokens; the plan holds 1 .. %d (--max-len)", T, f->plan.max_T);
    if (n_docs < 1) return seer_fail(err, "forward_cuda: chunk has %d documents", n_docs);
    int64_t sum = 0;
    for (int d = 0; d < n_docs; d++) {
        if (doc_lens[d] < 1) return seer_fail(err, "forward_cuda: document %d has length %d", d, doc_lens[d]);
        sum += doc_lens[d];
    }
    if (sum != T) return seer_fail(err, "forward_cuda: document lengths sum to %lld, T is %d", (long long)sum, T);
    for (int t = 0; t < T; t++)
        if (ids[t] < 0 || ids[t] >= f->cfg.V)
            return seer_fail(err, "forward_cuda: token %d has id %d outside [0, %d)", t, ids[t], f->cfg.V);
    return 0;
}

// One layer: x += o_proj(attn(rope(qk_norm(qkv(rmsnorm(x)))))); hook; x += mlp(rmsnorm(x)).
static int layer_forward(ForwardCuda *f, int l, int T, int NB, const int *doc_lens, int n_docs,
                         const AttnCudaPlan *ap, const ForwardCudaHook *hook, Timer *tm, SeerErr *err) {
    const ModelConfig *c = &f->cfg;
    const LayerCuda *w = &f->layers[l];
    cudaStream_t s = f->stream;
    int D = c->D, H = c->H, HKV = c->HKV, HD = c->HD, F = c->F, QKV = (H + 2 * HKV) * HD, NOPE = (H + HKV) * HD;
    int want_t = hook && hook->want_target && f->target;
    TRY(rmsnorm_forward_cuda(f->xn, f->x, w->attn_norm, T, D, c->rms_eps, s, err));
    timer_mark(tm, PART_OTHER);
    TRY(gemm_cuda(f->gemm, f->qkv, GEMM_OUT_BF16, f->xn, w->wqkv, w->bqkv, 0, T, D, QKV, s, err));
    timer_mark(tm, PART_GEMM);
    if (c->qk_norm) {
        TRY(rmsnorm_heads_cuda(f->qkv, QKV, f->nope, NOPE, T, H, HD, w->q_norm, c->rms_eps, s, err));
        TRY(rmsnorm_heads_cuda(f->qkv + H * HD, QKV, f->nope + H * HD, NOPE, T, HKV, HD, w->k_norm, c->rms_eps, s, err));
    } else {
        CUDA_TRY(cudaMemcpy2DAsync(f->nope, (size_t)NOPE * 2, f->qkv, (size_t)QKV * 2, (size_t)NOPE * 2, T,
                                   cudaMemcpyDeviceToDevice, s));
    }
    TRY(rope_apply_cuda(f->qkv, QKV, f->cos_t, f->sin_t, T, H + HKV, HD, s, err));
    timer_mark(tm, PART_OTHER);
    TRY(attention_forward_cuda(ap, f->att, want_t ? f->target : NULL, f->qkv, QKV, f->qkv + H * HD, QKV,
                               f->qkv + (H + HKV) * HD, QKV, s, err));
    timer_mark(tm, PART_ATTN);
    if (hook && hook->fn) {
        ForwardCudaLayerView v = {l, T, H, HKV, HD, want_t ? NB : 0, n_docs, doc_lens, f->pos,
                                  f->nope, f->nope + H * HD, NOPE, f->qkv, f->qkv + H * HD,
                                  f->qkv + (H + HKV) * HD, QKV, want_t ? f->target : NULL, s};
        if (hook->fn(hook->ctx, &v, err)) return -1;
        timer_mark(tm, PART_OTHER);
    }
    TRY(gemm_cuda(f->gemm, f->x, GEMM_OUT_F32, f->att, w->wo, NULL, 1, T, H * HD, D, s, err));
    timer_mark(tm, PART_GEMM);
    TRY(rmsnorm_forward_cuda(f->xn, f->x, w->mlp_norm, T, D, c->rms_eps, s, err));
    timer_mark(tm, PART_OTHER);
    TRY(gemm_cuda(f->gemm, f->gu, GEMM_OUT_BF16, f->xn, w->wgu, NULL, 0, T, D, 2 * F, s, err));
    timer_mark(tm, PART_GEMM);
    TRY(swiglu_forward_cuda(f->mid, f->gu, f->gu + F, 2 * (int64_t)F, T, F, s, err));
    timer_mark(tm, PART_OTHER);
    TRY(gemm_cuda(f->gemm, f->x, GEMM_OUT_F32, f->mid, w->wdown, NULL, 1, T, F, D, s, err));
    timer_mark(tm, PART_GEMM);
    return 0;
}

int forward_cuda_run(ForwardCuda *f, const int *ids, int T, const int *doc_lens, int n_docs,
                     const ForwardCudaHook *hook, float *logits, SeerErr *err) {
    TRY(check_chunk(f, ids, T, doc_lens, n_docs, err));
    const ModelConfig *c = &f->cfg;
    int want_t = hook && hook->want_target;
    if (want_t && !f->target)
        return seer_fail(err, "forward_cuda: the hook asks for the target but the plan was made without it");
    int longest = 0;
    for (int d = 0; d < n_docs; d++) longest = doc_lens[d] > longest ? doc_lens[d] : longest;
    int NB = ceil_div(longest, SEER_BLOCK);  // target columns of this chunk (<= plan.NB)
    int *pos = (int *)xmalloc(sizeof(int) * (size_t)T);  // [T] host positions
    rope_positions(pos, doc_lens, n_docs);
    cudaStream_t s = f->stream;
    cudaError_t e = cudaMemcpyAsync(f->pos, pos, sizeof(int) * (size_t)T, cudaMemcpyHostToDevice, s);
    if (e == cudaSuccess) e = cudaMemcpyAsync(f->ids, ids, sizeof(int) * (size_t)T, cudaMemcpyHostToDevice, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    free(pos);
    if (e != cudaSuccess) return seer_fail(err, "forward_cuda: upload of ids/positions (T %d): %s", T, cudaGetErrorString(e));
    AttnCudaPlan ap;
    TRY(attention_cuda_plan_init(&ap, f->attn_ws, f->attn_ws_bytes, doc_lens, n_docs, T, c->H, c->HKV, c->HD,
                                 NB, f->with_target, want_t ? hook->target_from : NULL, s, err));
    Timer tm;
    tm.f = f;
    tm.k = 0;
    timer_mark(&tm, PART_OTHER);
    TRY(rope_table_cuda(f->cos_t, f->sin_t, f->pos, T, c->HD, c->rope_theta, s, err));
    TRY(embedding_forward_cuda(f->x, f->ids, f->embed, T, c->D, s, err));
    for (int l = 0; l < c->L; l++) TRY(layer_forward(f, l, T, NB, doc_lens, n_docs, &ap, hook, &tm, err));
    if (logits) {
        TRY(rmsnorm_forward_cuda(f->xn, f->x, f->final_norm, T, c->D, c->rms_eps, s, err));
        TRY(gemm_cuda(f->gemm, logits, GEMM_OUT_F32, f->xn, f->lm_head, NULL, 0, T, c->D, c->V, s, err));
        timer_mark(&tm, PART_GEMM);
    }
    e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) return seer_fail(err, "forward_cuda: forward of %d tokens (%d docs): %s", T, n_docs, cudaGetErrorString(e));
    return f->ev ? timer_sum(&tm, err) : 0;
}
