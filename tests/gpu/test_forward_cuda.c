// test_forward_cuda.c (GPU): the forward's CUDA kernels against their CPU twins on awkward shapes
// (rmsnorm rows and heads, RoPE table and rotation, SwiGLU, cuBLASLt GEMM with bias and with fp32
// accumulation, embedding), then the whole CUDA forward against forward_cpu on the same bf16
// weights: random in-memory Qwen3 / Qwen2 (q/k/v bias, tied and untied) / Llama models at HD 64
// and 128, G 1, 4, 5, and the trained testbed model (data/testbed/model: Qwen3, HD 64, G 4), over
// packed chunks (one-token documents, T not a multiple of 64): logits, every layer's q/k before
// and after RoPE, v, positions and gate target, with and without the target. The tiny HF fixtures
// (head dims 8-16) are checked to be refused by the plan.
//
// Tolerances: single ops 1e-2 relative (floor 1, bf16 outputs). The whole forward: see TOL_X
// below (bounded by the error that bf16-sized weight noise causes in the CPU forward).
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cuda_check.h"
#include "common/common.h"
#include "common/tensor.h"
#include "ckpt/hf_config.h"
#include "kernels/embedding.h"
#include "kernels/gemm.h"
#include "kernels/matmul.h"
#include "kernels/norm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "model/forward_cpu.h"
#include "model/forward_cuda.h"
#include "tests/test.h"


static uint64_t rng = 88172645463325252ull;
static float urand(void) {  // uniform [-1, 1)
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((rng >> 11) * (2.0 / 9007199254740992.0) - 1.0);
}

// n random bf16 values: host bf16 copy `b` and fp32 copy `f` of the same numbers.
static void rand_bf16(uint16_t *b, float *f, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) {
        b[i] = f32_to_bf16(urand() * scale);
        f[i] = bf16_to_f32(b[i]);
    }
}

static void *to_dev(const void *h, size_t bytes) {
    void *d;
    CUDA_OK(cudaMalloc(&d, bytes));
    CUDA_OK(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    return d;
}

static void from_dev_bf16(float *f, const void *d, size_t n) {
    uint16_t *b = xmalloc(n * 2);
    CUDA_OK(cudaMemcpy(b, d, n * 2, cudaMemcpyDeviceToHost));
    for (size_t i = 0; i < n; i++) f[i] = bf16_to_f32(b[i]);
    free(b);
}

static void test_rmsnorm(void) {
    int N = 37, D = 200, HD = 64, NH = 3, T = 11;
    SeerErr err;
    float *x = xmalloc(sizeof(float) * N * D), *ref = xmalloc(sizeof(float) * N * D), *got = xmalloc(sizeof(float) * N * D);
    uint16_t *wb = xmalloc(2 * D), *hb = xmalloc(2 * T * NH * HD);
    float *wf = xmalloc(sizeof(float) * D), *hf = xmalloc(sizeof(float) * T * NH * HD);
    for (int i = 0; i < N * D; i++) x[i] = urand() * 3;
    rand_bf16(wb, wf, D, 2);
    Tensor w = {wf, SEER_F32, 1, {D}};
    rmsnorm_forward_cpu(ref, x, &w, N, D, 1e-6f);
    float *dx = to_dev(x, sizeof(float) * N * D);
    uint16_t *dw = to_dev(wb, 2 * D), *dout;
    CUDA_OK(cudaMalloc((void **)&dout, 2 * N * D));
    CHECK(rmsnorm_forward_cuda(dout, dx, dw, N, D, 1e-6f, 0, &err) == 0);
    from_dev_bf16(got, dout, (size_t)N * D);
    double e1 = max_rel_err(got, ref, (long)N * D, 1.0);
    // Heads: T tokens x NH heads of HD inside rows of width NH*HD + 64 (a fused buffer), with copy.
    int ld = NH * HD + 64;
    uint16_t *buf = xcalloc((size_t)T * ld, 2);
    rand_bf16(hb, hf, (size_t)T * NH * HD, 2);
    for (int t = 0; t < T; t++) memcpy(buf + (size_t)t * ld, hb + (size_t)t * NH * HD, 2 * NH * HD);
    Tensor wh = {wf, SEER_F32, 1, {HD}};
    float *href = xmalloc(sizeof(float) * T * NH * HD), *hgot = xmalloc(sizeof(float) * T * NH * HD);
    rmsnorm_forward_cpu(href, hf, &wh, T * NH, HD, 1e-6f);
    uint16_t *dbuf = to_dev(buf, (size_t)T * ld * 2), *dcopy;
    CUDA_OK(cudaMalloc((void **)&dcopy, (size_t)T * NH * HD * 2));
    CHECK(rmsnorm_heads_cuda(dbuf, ld, dcopy, NH * HD, T, NH, HD, dw, 1e-6f, 0, &err) == 0);
    from_dev_bf16(hgot, dcopy, (size_t)T * NH * HD);
    double e2 = max_rel_err(hgot, href, (long)T * NH * HD, 1.0);
    CUDA_OK(cudaMemcpy(buf, dbuf, (size_t)T * ld * 2, cudaMemcpyDeviceToHost));
    double e3 = 0;  // in place result equals the copy; the 64 spare columns are untouched (zero)
    for (int t = 0; t < T; t++)
        for (int i = 0; i < ld; i++) {
            float v = bf16_to_f32(buf[(size_t)t * ld + i]), want = i < NH * HD ? hgot[(size_t)t * NH * HD + i] : 0;
            e3 = fmax(e3, fabs(v - want));
        }
    printf("    rmsnorm rows err %.3g, heads err %.3g, in-place vs copy %.3g\n", e1, e2, e3);
    CHECK(e1 <= 1e-2 && e2 <= 1e-2 && e3 == 0);
    cudaFree(dx), cudaFree(dw), cudaFree(dout), cudaFree(dbuf), cudaFree(dcopy);
    free(x), free(ref), free(got), free(wb), free(hb), free(wf), free(hf), free(buf), free(href), free(hgot);
}

static void test_rope(void) {
    static const int docs[] = {5, 1, 23};
    int T = 29, NH = 3, HD = 64, half = HD / 2, ld = NH * HD + 8, pos[29];
    SeerErr err;
    rope_positions(pos, docs, 3);
    float *c = xmalloc(sizeof(float) * T * half), *s = xmalloc(sizeof(float) * T * half);
    float *gc = xmalloc(sizeof(float) * T * half), *gs = xmalloc(sizeof(float) * T * half);
    rope_table_cpu(c, s, pos, T, HD, 1e6f);
    int *dpos = to_dev(pos, sizeof pos);
    float *dc, *ds;
    CUDA_OK(cudaMalloc((void **)&dc, sizeof(float) * T * half));
    CUDA_OK(cudaMalloc((void **)&ds, sizeof(float) * T * half));
    CHECK(rope_table_cuda(dc, ds, dpos, T, HD, 1e6f, 0, &err) == 0);
    CUDA_OK(cudaMemcpy(gc, dc, sizeof(float) * T * half, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(gs, ds, sizeof(float) * T * half, cudaMemcpyDeviceToHost));
    double et = fmax(max_rel_err(gc, c, (long)T * half, 1.0), max_rel_err(gs, s, (long)T * half, 1.0));
    uint16_t *b = xcalloc((size_t)T * ld, 2), *hb = xmalloc(2 * T * NH * HD);
    float *f = xmalloc(sizeof(float) * T * NH * HD), *got = xmalloc(sizeof(float) * T * NH * HD);
    rand_bf16(hb, f, (size_t)T * NH * HD, 2);
    for (int t = 0; t < T; t++) memcpy(b + (size_t)t * ld, hb + (size_t)t * NH * HD, 2 * NH * HD);
    rope_apply_cpu(f, c, s, T, NH, HD);
    uint16_t *db = to_dev(b, (size_t)T * ld * 2);
    CHECK(rope_apply_cuda(db, ld, dc, ds, T, NH, HD, 0, &err) == 0);
    CUDA_OK(cudaMemcpy(b, db, (size_t)T * ld * 2, cudaMemcpyDeviceToHost));
    for (int t = 0; t < T; t++)
        for (int i = 0; i < NH * HD; i++) got[(size_t)t * NH * HD + i] = bf16_to_f32(b[(size_t)t * ld + i]);
    double ea = max_rel_err(got, f, (long)T * NH * HD, 1.0);
    printf("    rope table err %.3g, apply err %.3g\n", et, ea);
    CHECK(et <= 1e-6 && ea <= 1e-2);
    cudaFree(dpos), cudaFree(dc), cudaFree(ds), cudaFree(db);
    free(c), free(s), free(gc), free(gs), free(b), free(hb), free(f), free(got);
}

static void test_swiglu_embedding(void) {
    int N = 7, F = 34, V = 13, D = 40, ids[5] = {12, 0, 5, 5, 3};
    SeerErr err;
    uint16_t *gu = xmalloc(2 * N * 2 * F), *E = xmalloc(2 * V * D);
    float *guf = xmalloc(sizeof(float) * N * 2 * F), *g = xmalloc(sizeof(float) * N * F), *u = xmalloc(sizeof(float) * N * F);
    float *ref = xmalloc(sizeof(float) * N * F), *got = xmalloc(sizeof(float) * N * F), *Ef = xmalloc(sizeof(float) * V * D);
    rand_bf16(gu, guf, (size_t)N * 2 * F, 8);
    for (int r = 0; r < N; r++)
        for (int c = 0; c < F; c++) g[r * F + c] = guf[r * 2 * F + c], u[r * F + c] = guf[r * 2 * F + F + c];
    swiglu_forward_cpu(ref, g, u, (int64_t)N * F);
    uint16_t *dgu = to_dev(gu, 2 * N * 2 * F), *dout;
    CUDA_OK(cudaMalloc((void **)&dout, 2 * N * F));
    CHECK(swiglu_forward_cuda(dout, dgu, dgu + F, 2 * F, N, F, 0, &err) == 0);
    from_dev_bf16(got, dout, (size_t)N * F);
    double es = max_rel_err(got, ref, (long)N * F, 1.0);
    rand_bf16(E, Ef, (size_t)V * D, 1);
    uint16_t *dE = to_dev(E, 2 * V * D);
    int *dids = to_dev(ids, sizeof ids);
    float *dx, x[5 * 40];
    CUDA_OK(cudaMalloc((void **)&dx, sizeof x));
    CHECK(embedding_forward_cuda(dx, dids, dE, 5, D, 0, &err) == 0);
    CUDA_OK(cudaMemcpy(x, dx, sizeof x, cudaMemcpyDeviceToHost));
    int exact = 1;
    for (int t = 0; t < 5; t++)
        for (int i = 0; i < D; i++) exact &= x[t * D + i] == Ef[ids[t] * D + i];
    printf("    swiglu err %.3g, embedding exact %d\n", es, exact);
    CHECK(es <= 1e-2 && exact);
    CHECK(swiglu_forward_cuda(dout, dgu, dgu + F, 2 * F, N, 33, 0, &err) == -1);  // odd F refused
    cudaFree(dgu), cudaFree(dout), cudaFree(dE), cudaFree(dids), cudaFree(dx);
    free(gu), free(E), free(guf), free(g), free(u), free(ref), free(got), free(Ef);
}

static void test_gemm(void) {
    int N = 33, IN = 72, OUT = 40;
    SeerErr err;
    GemmCuda *g = gemm_cuda_create(&err);
    CHECK(g != NULL);
    if (!g) return;
    uint16_t *xb = xmalloc(2 * N * IN), *wb = xmalloc(2 * OUT * IN), *bb = xmalloc(2 * OUT);
    float *xf = xmalloc(sizeof(float) * N * IN), *wf = xmalloc(sizeof(float) * OUT * IN), *bf = xmalloc(sizeof(float) * OUT);
    float *ref = xmalloc(sizeof(float) * N * OUT), *got = xmalloc(sizeof(float) * N * OUT), *acc = xmalloc(sizeof(float) * N * OUT);
    rand_bf16(xb, xf, (size_t)N * IN, 1), rand_bf16(wb, wf, (size_t)OUT * IN, 1), rand_bf16(bb, bf, OUT, 1);
    Tensor W = {wf, SEER_F32, 2, {OUT, IN}}, Bt = {bf, SEER_F32, 1, {OUT}};
    matmul_forward_cpu(ref, xf, &W, &Bt, N, IN, OUT);
    uint16_t *dx = to_dev(xb, 2 * N * IN), *dw = to_dev(wb, 2 * OUT * IN), *db = to_dev(bb, 2 * OUT), *dy;
    CUDA_OK(cudaMalloc((void **)&dy, 2 * N * OUT));
    CHECK(gemm_cuda(g, dy, GEMM_OUT_BF16, dx, dw, db, 0, N, IN, OUT, 0, &err) == 0);
    from_dev_bf16(got, dy, (size_t)N * OUT);
    double e1 = max_rel_err(got, ref, (long)N * OUT, 1.0);
    // fp32 accumulate: y0 + x W^T
    for (int i = 0; i < N * OUT; i++) acc[i] = urand();
    float *dacc = to_dev(acc, sizeof(float) * N * OUT);
    Tensor nob = {NULL, SEER_F32, 0, {0}};
    matmul_forward_cpu(ref, xf, &W, &nob, N, IN, OUT);
    for (int i = 0; i < N * OUT; i++) ref[i] += acc[i];
    CHECK(gemm_cuda(g, dacc, GEMM_OUT_F32, dx, dw, NULL, 1, N, IN, OUT, 0, &err) == 0);
    CUDA_OK(cudaMemcpy(got, dacc, sizeof(float) * N * OUT, cudaMemcpyDeviceToHost));
    double e2 = max_rel_err(got, ref, (long)N * OUT, 1.0);
    printf("    gemm bf16+bias err %.3g, fp32 accumulate err %.3g\n", e1, e2);
    CHECK(e1 <= 1e-2 && e2 <= 1e-4);
    CHECK(gemm_cuda(g, dy, GEMM_OUT_BF16, dx, dw, NULL, 0, N, 70, OUT, 0, &err) == -1);  // IN % 8
    CHECK(strstr(err.msg, "IN 70") != NULL);
    gemm_cuda_free(g);
    cudaFree(dx), cudaFree(dw), cudaFree(db), cudaFree(dy), cudaFree(dacc);
    free(xb), free(wb), free(bb), free(xf), free(wf), free(bf), free(ref), free(got), free(acc);
}

// ---------------------------------------------------------------- whole forward

// Tolerances of the whole forward come from bf16 and the model's own conditioning. Errors are
// measured as: logits, of the largest |logit|; q/k/v, relative with floor 1; target, absolute
// (entries are probabilities). The CPU forward (fp32 on the bf16 weights) runs a second time on a
// copy of the weights each multiplied by (1 + u 2^-8), u uniform in [-1, 1) (2^-8: the unit
// roundoff of bf16), and every CUDA error must stay within TOL_X times that copy's error, plus
// TOL_FLOOR for entries both get exactly. The CUDA forward rounds activations to bf16 about six
// times per layer; measured against the perturbed copy's error (H200, 2026-11-27): logits and q/k
// at most 1.05x, v 1.18x (testbed), target 2.2x (Qwen3 HD 64 G 5, 0.0068 vs 0.0031), while a
// dropped k bias, a swapped k norm or another RoPE theta moves the CPU forward 4-30x past it.
// Peaked softmax and q/k RMSNorm amplify rounding: on the trained testbed, bf16-sized noise alone
// moves q/k by 0.19 (relative, floor 1) after 6 layers.
#define TOL_X 3.0
#define TOL_FLOOR 1e-4

// Every tensor a layer hook shows, copied to the host as fp32 (the CUDA ones from bf16).
typedef struct {
    int T, H, HKV, HD, NB, L;  // NB: target columns every view must carry (0: no target)
    float *q_nope, *q;         // [L, T, H, HD]
    float *k_nope, *k, *v;     // [L, T, HKV, HD]
    float *target;             // [L, HKV, T, NB] or NULL
    int *pos;                  // [T]
    int views_ok;              // every view had the expected sizes and target presence
} Capture;

static void capture_init(Capture *c, const ModelConfig *m, int T, int NB) {
    size_t nq = (size_t)m->L * T * m->H * m->HD, nk = (size_t)m->L * T * m->HKV * m->HD;
    size_t nt = (size_t)m->L * m->HKV * T * NB;
    *c = (Capture){T, m->H, m->HKV, m->HD, NB, m->L, xcalloc(nq, 4), xcalloc(nq, 4), xcalloc(nk, 4),
                   xcalloc(nk, 4), xcalloc(nk, 4), NB ? xcalloc(nt, 4) : NULL, xcalloc((size_t)T, sizeof(int)), 1};
}

static void capture_free(Capture *c) {
    free(c->q_nope), free(c->q), free(c->k_nope), free(c->k), free(c->v), free(c->target), free(c->pos);
}

// Element counts of one layer's capture: q [T, H, HD], k/v [T, HKV, HD], target [HKV, T, NB].
typedef struct {
    size_t l, nq, nk, nt;
} CaptureSlot;

// A hook's view of layer `layer` as the capture expects it? If so, *slot says where it goes;
// otherwise the capture is marked wrong (views_ok 0) and the hook stores nothing.
static int capture_slot(Capture *c, CaptureSlot *slot, int layer, int T, int H, int HKV, int HD, int NB,
                        const void *target) {
    if (!(layer >= 0 && layer < c->L && T == c->T && H == c->H && HKV == c->HKV && HD == c->HD && NB == c->NB &&
          (target != NULL) == (c->NB > 0))) {
        c->views_ok = 0;
        return 0;
    }
    *slot = (CaptureSlot){(size_t)layer, (size_t)T * H * HD, (size_t)T * HKV * HD, (size_t)HKV * T * NB};
    return 1;
}

static int cpu_hook(void *ctx, const ForwardLayerView *v, SeerErr *err) {
    Capture *c = ctx;
    CaptureSlot sl;
    if (!capture_slot(c, &sl, v->layer, v->T, v->H, v->HKV, v->HD, v->NB, v->target)) return 0;
    const size_t l = sl.l, nq = sl.nq, nk = sl.nk, nt = sl.nt;
    memcpy(c->q_nope + l * nq, v->q_nope, nq * 4), memcpy(c->q + l * nq, v->q, nq * 4);
    memcpy(c->k_nope + l * nk, v->k_nope, nk * 4), memcpy(c->k + l * nk, v->k, nk * 4);
    memcpy(c->v + l * nk, v->v, nk * 4);
    if (nt) memcpy(c->target + l * nt, v->target, nt * 4);
    memcpy(c->pos, v->pos, sizeof(int) * c->T);
    return 0;
}

// dst [T, width] fp32 <- T device bf16 rows of `width` elements, ld apart; waits for stream s.
static cudaError_t rows_to_host(float *dst, const uint16_t *src, int T, int width, int64_t ld, cudaStream_t s) {
    uint16_t *b = xmalloc((size_t)T * width * 2);  // [T, width] bf16
    cudaError_t e = cudaMemcpy2DAsync(b, (size_t)width * 2, src, (size_t)ld * 2, (size_t)width * 2, T,
                                      cudaMemcpyDeviceToHost, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    for (size_t i = 0; e == cudaSuccess && i < (size_t)T * width; i++) dst[i] = bf16_to_f32(b[i]);
    free(b);
    return e;
}

static int cuda_hook(void *ctx, const ForwardCudaLayerView *v, SeerErr *err) {
    Capture *c = ctx;
    CaptureSlot sl;
    if (!capture_slot(c, &sl, v->layer, v->T, v->H, v->HKV, v->HD, v->NB, v->target)) return 0;
    const size_t l = sl.l, nq = sl.nq, nk = sl.nk, nt = sl.nt;
    int T = c->T, qw = c->H * c->HD, kw = c->HKV * c->HD;
    cudaStream_t s = v->stream;
    cudaError_t e = rows_to_host(c->q_nope + l * nq, v->q_nope, T, qw, v->ld_nope, s);
    if (e == cudaSuccess) e = rows_to_host(c->k_nope + l * nk, v->k_nope, T, kw, v->ld_nope, s);
    if (e == cudaSuccess) e = rows_to_host(c->q + l * nq, v->q, T, qw, v->ld_qkv, s);
    if (e == cudaSuccess) e = rows_to_host(c->k + l * nk, v->k, T, kw, v->ld_qkv, s);
    if (e == cudaSuccess) e = rows_to_host(c->v + l * nk, v->v, T, kw, v->ld_qkv, s);
    if (e == cudaSuccess && nt) e = cudaMemcpyAsync(c->target + l * nt, v->target, nt * 4, cudaMemcpyDeviceToHost, s);
    if (e == cudaSuccess) e = cudaMemcpyAsync(c->pos, v->pos, sizeof(int) * T, cudaMemcpyDeviceToHost, s);
    if (e == cudaSuccess) e = cudaStreamSynchronize(s);
    if (e != cudaSuccess) return seer_fail(err, "cuda_hook: layer %d: %s", v->layer, cudaGetErrorString(e));
    return 0;
}

// Largest |a - b| over n elements (INFINITY on NaN).
static double max_abs_err(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d != d) return INFINITY;
        worst = fmax(worst, d);
    }
    return worst;
}

// Worst errors of one chunk against the CPU forward (see the tolerances above).
typedef struct {
    double logits, nope, rope, v, target;
} FwdErr;

static int fwd_within(const FwdErr *e, const FwdErr *bound) {
    return e->logits <= TOL_X * bound->logits + TOL_FLOOR && e->nope <= TOL_X * bound->nope + TOL_FLOOR &&
           e->rope <= TOL_X * bound->rope + TOL_FLOOR && e->v <= TOL_X * bound->v + TOL_FLOOR &&
           e->target <= TOL_X * bound->target + TOL_FLOOR;
}

static FwdErr fwd_compare(const Capture *g, const Capture *c, const float *got, const float *ref, size_t nl) {
    long nq = (long)c->L * c->T * c->H * c->HD, nk = (long)c->L * c->T * c->HKV * c->HD;
    double mx = 0;
    for (size_t i = 0; i < nl; i++) mx = fmax(mx, fabs(ref[i]));
    FwdErr e;
    e.logits = max_abs_err(got, ref, nl) / mx;
    e.nope = fmax(max_rel_err(g->q_nope, c->q_nope, nq, 1.0), max_rel_err(g->k_nope, c->k_nope, nk, 1.0));
    e.rope = fmax(max_rel_err(g->q, c->q, nq, 1.0), max_rel_err(g->k, c->k, nk, 1.0));
    e.v = max_rel_err(g->v, c->v, nk, 1.0);
    e.target = c->NB ? max_abs_err(g->target, c->target, (size_t)c->L * c->HKV * c->T * c->NB) : 0;
    return e;
}

// CPU forward of m over the chunk into c (hook asking for the target when c->NB) and logits [T, V].
static void cpu_forward(const Model *m, const int *ids, int T, const int *docs, int n_docs, Capture *c,
                        float *logits) {
    SeerErr err;
    ForwardHook h = {cpu_hook, c, c->NB > 0};
    int rc = forward_cpu(m, ids, T, docs, n_docs, logits, FORWARD_LOGITS_ALL, &h, &err);
    if (rc) printf("    %s\n", err.msg);
    CHECK(rc == 0);
}

// Runs one packed chunk of random ids through forward_cpu on m and on noisy (m with bf16-sized
// weight noise, see TOL_X) and through forward_cuda_run (f: made for m's config, with or without
// the target) with hooks that ask for the target or not; checks the logits, every layer's q/k
// before and after RoPE, v, positions and target, and prints one line.
static void check_forward(ForwardCuda *f, const Model *m, const Model *noisy, const char *name, const int *docs,
                          int n_docs, int want_target) {
    const ModelConfig *c = &m->cfg;
    SeerErr err;
    int T = 0, longest = 0;
    for (int d = 0; d < n_docs; d++) T += docs[d], longest = docs[d] > longest ? docs[d] : longest;
    int NB = want_target ? ceil_div(longest, SEER_BLOCK) : 0, *ids = xmalloc(sizeof(int) * T);
    for (int t = 0; t < T; t++) ids[t] = (int)((urand() + 1) * 0.5 * (c->V - 1));
    size_t nl = (size_t)T * c->V;
    Capture cc, nc, gc;
    capture_init(&cc, c, T, NB), capture_init(&nc, c, T, NB), capture_init(&gc, c, T, NB);
    float *ref = xmalloc(sizeof(float) * nl), *nref = xmalloc(sizeof(float) * nl), *got = xcalloc(nl, sizeof(float)), *dl;
    cpu_forward(m, ids, T, docs, n_docs, &cc, ref);
    cpu_forward(noisy, ids, T, docs, n_docs, &nc, nref);
    CUDA_OK(cudaMalloc((void **)&dl, sizeof(float) * nl));
    ForwardCudaHook gh = {cuda_hook, &gc, want_target, NULL};  // every target row, as the CPU twin
    int rc = forward_cuda_run(f, ids, T, docs, n_docs, &gh, dl, &err);
    if (rc) printf("    %s\n", err.msg);
    CHECK(rc == 0);
    CUDA_OK(cudaMemcpy(got, dl, sizeof(float) * nl, cudaMemcpyDeviceToHost));
    FwdErr e = fwd_compare(&gc, &cc, got, ref, nl), b = fwd_compare(&nc, &cc, nref, ref, nl);
    int pos_ok = memcmp(gc.pos, cc.pos, sizeof(int) * T) == 0;
    printf("    %-24s T %3d, %d docs, target %s: logits %.2g/%.2g, q/k pre-RoPE %.2g/%.2g, post %.2g/%.2g, "
           "v %.2g/%.2g, target %.2g/%.2g\n", name, T, n_docs, want_target ? "on " : "off", e.logits, b.logits,
           e.nope, b.nope, e.rope, b.rope, e.v, b.v, e.target, b.target);
    CHECK(cc.views_ok && gc.views_ok && pos_ok);
    CHECK(fwd_within(&e, &b));
    cudaFree(dl);
    capture_free(&cc), capture_free(&nc), capture_free(&gc);
    free(ids), free(ref), free(nref), free(got);
}

// ---------------------------------------------------------------- random models in memory

// Uniform amplitude whose variance is 1/fan_in: a linear layer keeps unit-size activations.
static float fan(int64_t in) { return sqrtf(3.0f / (float)in); }

// [d0] (d1 0) or [d0, d1] bf16 tensor of mean + amp * uniform[-1, 1), owned by the caller.
static Tensor rand_tensor(int64_t d0, int64_t d1, float mean, float amp) {
    int64_t n = d0 * (d1 ? d1 : 1);
    uint16_t *b = xmalloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) b[i] = f32_to_bf16(mean + amp * urand());
    return (Tensor){b, SEER_BF16, d1 ? 2 : 1, {d0, d1}};
}

// Config of a small model of arch with the options of that architecture (Qwen3 q/k norm, Qwen2
// q/k/v bias) and its usual RoPE theta and RMSNorm epsilon.
static ModelConfig small_config(ModelArch arch, int D, int L, int H, int HKV, int HD, int F, int V, int tie) {
    return (ModelConfig){arch, D, L, H, HKV, HD, F, V, arch == ARCH_LLAMA ? 5e5f : 1e6f,
                         arch == ARCH_LLAMA ? 1e-5f : 1e-6f, tie, arch == ARCH_QWEN3, arch == ARCH_QWEN2,
                         -1, -1, 4096};
}

// A random model of cfg held in memory, every weight bf16, so the CPU forward reads exactly the
// numbers the GPU gets. Activations stay near unit size; q/k projections are 1.5x larger and q/k
// norm weights 1.5 +- 0.5 so attention scores spread and softmax peaks; q/k/v biases are of size 1
// (a missing or misplaced bias moves q/k/v far past the tolerance); norm weights 1 +- 0.2.
static void model_random(Model *m, const ModelConfig *c) {
    int64_t D = c->D, QD = (int64_t)c->H * c->HD, KD = (int64_t)c->HKV * c->HD, F = c->F;
    memset(m, 0, sizeof *m);
    m->cfg = *c;
    m->w.embed = rand_tensor(c->V, D, 0, 1);
    m->w.final_norm = rand_tensor(D, 0, 1, .2f);
    m->w.lm_head = c->tie_embeddings ? m->w.embed : rand_tensor(c->V, D, 0, fan(D));
    m->w.layers = xcalloc((size_t)c->L, sizeof *m->w.layers);
    for (int l = 0; l < c->L; l++) {
        LayerWeights *w = &m->w.layers[l];
        w->attn_norm = rand_tensor(D, 0, 1, .2f);
        w->wq = rand_tensor(QD, D, 0, 1.5f * fan(D));
        w->wk = rand_tensor(KD, D, 0, 1.5f * fan(D));
        w->wv = rand_tensor(KD, D, 0, fan(D));
        if (c->qkv_bias) w->bq = rand_tensor(QD, 0, 0, 1), w->bk = rand_tensor(KD, 0, 0, 1), w->bv = rand_tensor(KD, 0, 0, 1);
        if (c->qk_norm) w->q_norm = rand_tensor(c->HD, 0, 1.5f, .5f), w->k_norm = rand_tensor(c->HD, 0, 1.5f, .5f);
        w->wo = rand_tensor(D, QD, 0, fan(QD));
        w->mlp_norm = rand_tensor(D, 0, 1, .2f);
        w->w_gate = rand_tensor(F, D, 0, fan(D));
        w->w_up = rand_tensor(F, D, 0, fan(D));
        w->w_down = rand_tensor(D, F, 0, fan(F));
    }
}

// The 14 tensors of a layer (absent ones have ndim 0 and data NULL).
static void layer_tensors(LayerWeights *w, Tensor *all[14]) {
    Tensor *t[14] = {&w->attn_norm, &w->wq, &w->wk, &w->wv, &w->bq, &w->bk, &w->bv, &w->q_norm,
                     &w->k_norm, &w->wo, &w->mlp_norm, &w->w_gate, &w->w_up, &w->w_down};
    memcpy(all, t, sizeof t);
}

// Frees a model whose every tensor this file allocated (model_random, model_noisy).
static void model_owned_free(Model *m) {
    free((void *)m->w.embed.data), free((void *)m->w.final_norm.data);
    if (!m->cfg.tie_embeddings) free((void *)m->w.lm_head.data);
    for (int l = 0; l < m->cfg.L; l++) {
        Tensor *all[14];
        layer_tensors(&m->w.layers[l], all);
        for (int i = 0; i < 14; i++) free((void *)all[i]->data);
    }
    free(m->w.layers);
}

// t becomes an fp32 copy of itself with each element times (1 + u 2^-8), u uniform in [-1, 1).
static void tensor_add_noise(Tensor *t) {
    if (!t->ndim) return;
    int64_t n = tensor_numel(t);
    float *d = xmalloc(sizeof(float) * (size_t)n);  // [n]
    for (int64_t i = 0; i < n; i++) d[i] = tensor_get(t, i) * (1 + urand() / 256);
    t->data = d, t->dtype = SEER_F32;
}

// p: a copy of m (any dtype) with bf16-sized relative noise on every weight (see TOL_X), owned.
static void model_noisy(Model *p, const Model *m) {
    const ModelConfig *c = &m->cfg;
    *p = *m;
    p->files = NULL;
    p->w.layers = xmalloc(sizeof *p->w.layers * (size_t)c->L);
    memcpy(p->w.layers, m->w.layers, sizeof *p->w.layers * (size_t)c->L);
    tensor_add_noise(&p->w.embed), tensor_add_noise(&p->w.final_norm);
    if (c->tie_embeddings) p->w.lm_head = p->w.embed;
    else tensor_add_noise(&p->w.lm_head);
    for (int l = 0; l < c->L; l++) {
        Tensor *all[14];
        layer_tensors(&p->w.layers[l], all);
        for (int i = 0; i < 14; i++) tensor_add_noise(all[i]);
    }
}

// Qwen3, Qwen2 (bias; tied and untied) and Llama at HD 64 and 128, G = 1, 4, 5: for each, one
// forward planned with the target runs a packed chunk (one-token documents, a document over two
// 64-token block edges, T = 230) with and without the target, one 77-token document and a
// one-token chunk; one planned without the target runs the packed chunk and refuses a hook that
// asks for the target.
static void test_forward_random_models(void) {
    const ModelConfig cfgs[] = {
        small_config(ARCH_QWEN3, 256, 2, 10, 2, 64, 512, 304, 1),
        small_config(ARCH_QWEN3, 256, 2, 2, 2, 128, 384, 296, 0),
        small_config(ARCH_QWEN2, 512, 2, 4, 1, 128, 768, 304, 1),
        small_config(ARCH_QWEN2, 320, 3, 5, 1, 64, 640, 296, 0),
        small_config(ARCH_LLAMA, 512, 2, 8, 2, 64, 1024, 304, 0),
        small_config(ARCH_LLAMA, 384, 2, 3, 3, 128, 512, 296, 1),
    };
    static const int packed[] = {1, 130, 1, 64, 33, 1}, one_doc[] = {77}, one_token[] = {1};
    SeerErr err;
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        const ModelConfig *c = &cfgs[i];
        char name[64];
        snprintf(name, sizeof name, "%s HD %d G %d%s", hf_arch_name(c->arch), c->HD, c->H / c->HKV,
                 c->tie_embeddings ? " tied" : "");
        Model m, noisy;
        model_random(&m, c);
        model_noisy(&noisy, &m);
        ForwardCuda f, g;
        CHECK(forward_cuda_create(&f, c, 230, 1, 0, NULL, &err) == 0 && forward_cuda_upload(&f, &m, &err) == 0);
        check_forward(&f, &m, &noisy, name, packed, 6, 1);
        check_forward(&f, &m, &noisy, name, packed, 6, 0);
        check_forward(&f, &m, &noisy, name, one_doc, 1, 1);
        check_forward(&f, &m, &noisy, name, one_token, 1, 1);
        CHECK(forward_cuda_create(&g, c, 230, 0, 0, NULL, &err) == 0 && forward_cuda_upload(&g, &m, &err) == 0);
        check_forward(&g, &m, &noisy, name, packed, 6, 0);
        int ids[77] = {0};
        ForwardCudaHook asks = {cuda_hook, NULL, 1, NULL};
        CHECK(forward_cuda_run(&g, ids, 77, one_doc, 1, &asks, NULL, &err) == -1);
        CHECK(strstr(err.msg, "without") != NULL);
        forward_cuda_free(&f), forward_cuda_free(&g);
        model_owned_free(&m), model_owned_free(&noisy);
    }
}

// The tiny Hugging Face fixtures (head dims 8 to 16; the attention kernel runs 64 and 128) are
// refused when their forward is planned, before any allocation, naming the head dim.
static void test_forward_fixtures_refused(void) {
    static const char *dirs[] = {"tests/fixtures/hf/qwen3_tied", "tests/fixtures/hf/qwen3_bf16",
                                 "tests/fixtures/hf/qwen2_untied_sharded", "tests/fixtures/hf/llama_gqa4"};
    for (int i = 0; i < 4; i++) {
        SeerErr err;
        Model m;
        ForwardCuda f;
        CHECK(model_load(&m, dirs[i], &err) == 0);
        CHECK(forward_cuda_create(&f, &m.cfg, 64, 1, 0, NULL, &err) == -1);
        CHECK(strstr(err.msg, "head dim") != NULL);
        CHECK(f.weights == NULL && f.work == NULL);
        model_free(&m);
    }
}

// The trained testbed model (Qwen3, HD 64, G 4, 6 layers) over a packed chunk; the plan line names
// the device once; bad chunks are refused before any work.
static void test_forward_testbed(void) {
    SeerErr err;
    Model m;
    if (test_model_load(&m, "data/testbed/model")) return;
    static const int docs[] = {150, 1, 66, 90};
    const ModelConfig *c = &m.cfg;
    char *log_text = NULL;
    size_t log_len = 0;
    FILE *log = open_memstream(&log_text, &log_len);
    ForwardCuda f;
    CHECK(forward_cuda_create(&f, c, 307, 1, 0, log, &err) == 0);
    fclose(log);
    printf("    %s", log_text);
    int lines = 0;
    for (const char *p = log_text; *p; p++) lines += *p == '\n';
    CHECK(lines == 1 && strstr(log_text, "(device ") != NULL);
    free(log_text);
    CHECK(forward_cuda_upload(&f, &m, &err) == 0);
    Model noisy;
    model_noisy(&noisy, &m);
    check_forward(&f, &m, &noisy, "testbed", docs, 4, 1);
    model_owned_free(&noisy);
    int bad[] = {100, 100}, *ids = xcalloc(400, sizeof(int));
    CHECK(forward_cuda_run(&f, ids, 200, bad, 2, NULL, NULL, &err) == 0);
    CHECK(forward_cuda_run(&f, ids, 400, bad, 2, NULL, NULL, &err) == -1);  // > max_T
    CHECK(forward_cuda_run(&f, ids, 201, bad, 2, NULL, NULL, &err) == -1);  // sum != T
    ids[3] = c->V;
    CHECK(forward_cuda_run(&f, ids, 200, bad, 2, NULL, NULL, &err) == -1);  // id out of range
    CHECK(strstr(err.msg, "token 3") != NULL);
    forward_cuda_free(&f);
    model_free(&m);
    free(ids);
}

int main(void) {
    RUN(test_rmsnorm);
    RUN(test_rope);
    RUN(test_swiglu_embedding);
    RUN(test_gemm);
    RUN(test_forward_random_models);
    RUN(test_forward_fixtures_refused);
    RUN(test_forward_testbed);
    return test_summary();
}
