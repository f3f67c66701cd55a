// test_gate.c (GPU): gate_cuda_loss / gate_cuda_scores against gate_loss_cpu / gate_scores_cpu
// on awkward packed chunks: T not a multiple of 64, documents of 1, 30, 63, 64, 65 tokens, one long
// document (several key tiles and row slices), G = 1, 4, 5, HD 64 and 128, DG 48 (not a multiple of
// the 32-wide slices), 64 and 128, q and k read in place from one fused QKV buffer.
//
// Inputs are bf16 on both sides (the CPU gets the exact fp32 values). Both sides compute in fp32
// with different summation orders, so the loss and log-probabilities are held to 1e-4 relative
// (floor 1), and each gradient tensor to max|gpu - cpu| <= 1e-4 * max|cpu|. With TF32 projections
// (10-bit mantissa, ~5e-4 per product) the bounds are 2e-2. NaN never passes.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/cuda_check.h"
#include "common/common.h"
#include "common/tensor.h"
#include "tests/test.h"
#include "train/gate.h"
#include "train/gate_loss.h"


static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static double urand(void) {  // [0, 1)
    rng_state ^= rng_state >> 12, rng_state ^= rng_state << 25, rng_state ^= rng_state >> 27;
    return ((rng_state * 2685821657736338717ull) >> 11) * (1.0 / 9007199254740992.0);
}
static float nrand(void) { return (float)(sqrt(-2 * log(1 - urand())) * cos(6.283185307179586 * urand())); }

typedef struct {
    const char *name;
    GateShape s;
    int n_docs;
    const int *lens;
    float theta, ratio;
    int tf32;
} Case;

// max |a - b| / max |b| over n entries; INFINITY on NaN.
static double rel_inf(const float *a, const float *b, int64_t n) {
    double d = 0, m = 0;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs((double)a[i] - b[i]);
        if (e != e) return INFINITY;
        d = fmax(d, e), m = fmax(m, fabs(b[i]));
    }
    return m > 0 ? d / m : d;
}

static void run_case(const Case *c) {
    GateShape s = c->s;
    int T = 0, longest = 0, H = s.HKV * s.G, HD = s.HD;
    for (int d = 0; d < c->n_docs; d++) {
        T += c->lens[d];
        if (c->lens[d] > longest) longest = c->lens[d];
    }
    int NB = ceil_div(longest, SEER_BLOCK) + 1, W = (H + 2 * s.HKV) * HD;
    size_t nq = (size_t)T * H * HD, nk = (size_t)T * s.HKV * HD, nt = (size_t)s.HKV * T * NB;
    int64_t np = gate_param_count(s);
    // Fused QKV [T, W] in bf16 (the V part is noise the gate must not read); fp32 copies for the CPU.
    uint16_t *qkv = xmalloc(sizeof(uint16_t) * (size_t)T * W);
    float *q = xmalloc(sizeof(float) * nq), *k = xmalloc(sizeof(float) * nk);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < W; i++) {
            uint16_t b = f32_to_bf16(nrand() + (i >= H * HD ? 0.3f : 0.0f));
            qkv[(size_t)t * W + i] = b;
            if (i < H * HD) q[(size_t)t * H * HD + i] = bf16_to_f32(b);
            else if (i < (H + s.HKV) * HD) k[(size_t)t * s.HKV * HD + i - H * HD] = bf16_to_f32(b);
        }
    float *params = xmalloc(sizeof(float) * np), *target = xcalloc(nt, sizeof(float));
    gate_params_init(params, s, 11, 2);
    GateParams P = gate_params_view(params, s);
    for (int i = 0; i < s.DG; i++) P.qnorm_w[i] = 1 + 0.3f * nrand(), P.knorm_w[i] = 1 + 0.3f * nrand();
    for (int g = 0, t = 0; g < s.HKV; g++, t = 0)
        for (int d = 0; d < c->n_docs; d++)
            for (int p = 0; p < c->lens[d]; p++, t++) {
                float *row = target + ((size_t)g * T + t) * NB;
                double sum = 0;
                for (int j = 0; j < p / SEER_BLOCK; j++) sum += row[j] = urand() < 0.2 ? 0.0f : (float)pow(urand(), 3);
                for (int j = 0; j < p / SEER_BLOCK && sum > 0; j++) row[j] = (float)(row[j] / sum);
            }

    // CPU reference.
    GateLossOpts o = {c->ratio, 10};
    GateChunk ch = {q, k, c->lens, c->n_docs, T, NB, c->theta};
    GateLossStats ref_st;
    SeerErr err;
    float *ref_grad = xcalloc(np, sizeof(float)), *ref_ls = xmalloc(sizeof(float) * nt);
    CHECK(gate_loss_cpu(&ref_st, ref_grad, params, s, &ch, target, &o, &err) == 0);
    CHECK(gate_scores_cpu(ref_ls, params, s, &ch, &err) == 0);

    // GPU.
    GateCuda *gc;
    CHECK(gate_cuda_create(&gc, s, T + 5, NB, c->n_docs, 0, &err) == 0);
    gate_cuda_set_tf32(gc, c->tf32);
    uint16_t *d_qkv;
    float *d_params, *d_target, *d_grad, *d_ls;
    double *d_loss;
    CUDA_OK(cudaMalloc((void **)&d_qkv, sizeof(uint16_t) * (size_t)T * W));
    CUDA_OK(cudaMalloc((void **)&d_params, sizeof(float) * np));
    CUDA_OK(cudaMalloc((void **)&d_grad, sizeof(float) * np));
    CUDA_OK(cudaMalloc((void **)&d_target, sizeof(float) * nt));
    CUDA_OK(cudaMalloc((void **)&d_ls, sizeof(float) * nt));
    CUDA_OK(cudaMalloc((void **)&d_loss, sizeof(double)));
    CUDA_OK(cudaMemcpy(d_qkv, qkv, sizeof(uint16_t) * (size_t)T * W, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_params, params, sizeof(float) * np, cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(d_target, target, sizeof(float) * nt, cudaMemcpyHostToDevice));
    float *half = xmalloc(sizeof(float) * np), *grad = xmalloc(sizeof(float) * np), *grad2 = xmalloc(sizeof(float) * np);
    for (int64_t i = 0; i < np; i++) half[i] = 0.5f;
    CUDA_OK(cudaMemcpy(d_grad, half, sizeof(float) * np, cudaMemcpyHostToDevice));  // grads are added
    double loss = 1.0;  // the loss is added
    CUDA_OK(cudaMemcpy(d_loss, &loss, sizeof(double), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemset(d_ls, 0xff, sizeof(float) * nt));  // NaN: every entry must be written

    CHECK(gate_cuda_loss(gc, d_grad, d_loss, d_params, d_qkv, W, d_qkv + H * HD, W, d_target, &err) == -1);
    CHECK(strstr(err.msg, "no chunk set") != NULL);
    GateLossStats st;
    CHECK(gate_cuda_set_chunk(gc, c->lens, c->n_docs, T, NB, c->theta, &o, &st, &err) == 0);
    CHECK(st.n_docs == ref_st.n_docs && st.n_rows == ref_st.n_rows);
    CHECK(gate_cuda_loss(gc, d_grad, d_loss, d_params, d_qkv, W, d_qkv + H * HD, W, d_target, &err) == 0);
    CHECK(gate_cuda_scores(gc, d_ls, d_params, d_qkv, W, d_qkv + H * HD, W, &err) == 0);
    CUDA_OK(cudaDeviceSynchronize());
    CUDA_OK(cudaMemcpy(grad, d_grad, sizeof(float) * np, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemcpy(&loss, d_loss, sizeof(double), cudaMemcpyDeviceToHost));
    float *ls = xmalloc(sizeof(float) * nt);
    CUDA_OK(cudaMemcpy(ls, d_ls, sizeof(float) * nt, cudaMemcpyDeviceToHost));
    for (int64_t i = 0; i < np; i++) grad[i] -= 0.5f;
    loss -= 1.0;

    double tol = c->tf32 ? 2e-2 : 1e-4;
    double loss_err = fabs(loss - ref_st.loss) / fmax(1, fabs(ref_st.loss));
    GateParams G = gate_params_view(grad, s), R = gate_params_view(ref_grad, s);
    double e_wq = rel_inf(G.wq, R.wq, (int64_t)s.HKV * s.G * HD * s.DG);
    double e_wk = rel_inf(G.wk, R.wk, (int64_t)s.HKV * 3 * HD * s.DG);
    double e_qn = rel_inf(G.qnorm_w, R.qnorm_w, s.DG), e_kn = rel_inf(G.knorm_w, R.knorm_w, s.DG);
    double e_ls = 0;
    int masks_ok = 1;
    for (int g = 0, t = 0; g < s.HKV; g++, t = 0)
        for (int d = 0; d < c->n_docs; d++)
            for (int p = 0; p < c->lens[d]; p++, t++)
                for (int j = 0; j < NB; j++) {
                    size_t i = ((size_t)g * T + t) * NB + j;
                    if (j < p / SEER_BLOCK) {
                        double e = fabs((double)ls[i] - ref_ls[i]) / fmax(1, fabs(ref_ls[i]));
                        e_ls = e == e ? fmax(e_ls, e) : INFINITY;
                    } else {
                        masks_ok &= isinf(ls[i]) && ls[i] < 0;
                    }
                }
    printf("    %-28s T %5d loss %.6f (cpu %.6f, rel %.1e) grad rel wq %.1e wk %.1e qn %.1e kn %.1e  logp %.1e\n",
           c->name, T, loss, ref_st.loss, loss_err, e_wq, e_wk, e_qn, e_kn, e_ls);
    CHECK(loss_err <= tol);
    CHECK(e_wq <= tol && e_wk <= tol && e_qn <= tol && e_kn <= tol);
    CHECK(e_ls <= tol);
    CHECK(masks_ok);

    // Deterministic: a second run gives the same bits.
    CUDA_OK(cudaMemset(d_grad, 0, sizeof(float) * np));
    CHECK(gate_cuda_loss(gc, d_grad, NULL, d_params, d_qkv, W, d_qkv + H * HD, W, d_target, &err) == 0);
    CUDA_OK(cudaMemcpy(grad2, d_grad, sizeof(float) * np, cudaMemcpyDeviceToHost));
    CUDA_OK(cudaMemset(d_grad, 0, sizeof(float) * np));
    CHECK(gate_cuda_loss(gc, d_grad, NULL, d_params, d_qkv, W, d_qkv + H * HD, W, d_target, &err) == 0);
    CUDA_OK(cudaMemcpy(grad, d_grad, sizeof(float) * np, cudaMemcpyDeviceToHost));
    CHECK(memcmp(grad, grad2, sizeof(float) * np) == 0);

    // A chunk beyond the capacity is refused.
    int big[1] = {T + 6};
    CHECK(gate_cuda_set_chunk(gc, big, 1, T + 6, ceil_div(T + 6, SEER_BLOCK), c->theta, &o, NULL, &err) == -1);
    CHECK(strstr(err.msg, "exceeds the capacity") != NULL);

    gate_cuda_free(gc);
    cudaFree(d_qkv), cudaFree(d_params), cudaFree(d_grad), cudaFree(d_target), cudaFree(d_ls), cudaFree(d_loss);
    free(qkv), free(q), free(k), free(params), free(target), free(ref_grad), free(ref_ls);
    free(half), free(grad), free(grad2), free(ls);
}

static const int docs_a[6] = {150, 30, 200, 64, 129, 1};
static const int docs_b[4] = {1000, 40, 700, 65};
static const int docs_c[1] = {5000};
static const int docs_d[4] = {4500, 70, 2100, 63};
static const int docs_e[2] = {300, 77};

static void test_testbed_shape(void) {
    Case c = {"HKV2 G4 HD64 DG128", {2, 4, 64, 128}, 6, docs_a, 1e4f, 0.5f, 0};
    run_case(&c);
}
static void test_g5_hd128_dg64(void) {
    Case c = {"HKV3 G5 HD128 DG64 r0.3", {3, 5, 128, 64}, 4, docs_b, 1e6f, 0.3f, 0};
    run_case(&c);
}
static void test_g1_long_doc(void) {
    Case c = {"HKV1 G1 HD128 DG128 5000", {1, 1, 128, 128}, 1, docs_c, 1e6f, 0.5f, 0};
    run_case(&c);
}
static void test_qwen3_8b_shape(void) {
    Case c = {"HKV8 G4 HD128 DG128", {8, 4, 128, 128}, 4, docs_d, 1e6f, 0.5f, 0};
    run_case(&c);
}
static void test_dg48(void) {
    Case c = {"HKV2 G2 HD64 DG48", {2, 2, 64, 48}, 2, docs_e, 1e4f, 0.5f, 0};
    run_case(&c);
}
static void test_tf32(void) {
    Case c = {"HKV8 G4 HD128 DG128 tf32", {8, 4, 128, 128}, 4, docs_d, 1e6f, 0.5f, 1};
    run_case(&c);
}

int main(void) {
    RUN(test_testbed_shape);
    RUN(test_g5_hd128_dg64);
    RUN(test_g1_long_doc);
    RUN(test_qwen3_8b_shape);
    RUN(test_dg48);
    RUN(test_tf32);
    return test_summary();
}
