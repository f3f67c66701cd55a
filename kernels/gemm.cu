// gemm.cu: cuBLASLt wrapper (see gemm.h).
//
// Row-major y[N, OUT] = x[N, IN] W[OUT, IN]^T is, in cuBLAS's column-major terms, the matrix
// y^T (OUT x N, ld OUT) = op(A) B with A = W seen as IN x OUT (ld IN, op = T) and B = x seen as
// IN x N (ld IN, op = N): a "TN" GEMM with m = OUT, n = N, k = IN.
#include <cublasLt.h>
#include <cuda_runtime.h>

#include <stdlib.h>
#include <string.h>

extern "C" {
#include "kernels/gemm.h"
}

#define GEMM_WS_BYTES (32u << 20)
#define GEMM_CACHE 32

typedef struct {
    int N, IN, OUT, out, bias, acc;
    cublasLtMatmulAlgo_t algo;
} GemmAlgo;

struct GemmCuda {
    cublasLtHandle_t lt;
    void *ws;  // [GEMM_WS_BYTES] cuBLASLt workspace
    GemmAlgo cache[GEMM_CACHE];
    int n_cache;
};

GemmCuda *gemm_cuda_create(SeerErr *err) {
    GemmCuda *g = (GemmCuda *)xcalloc(1, sizeof(GemmCuda));
    cublasStatus_t st = cublasLtCreate(&g->lt);
    if (st != CUBLAS_STATUS_SUCCESS) {
        seer_fail(err, "gemm.cu: cublasLtCreate: %s", cublasGetStatusString(st));
        free(g);
        return NULL;
    }
    cudaError_t e = cudaMalloc(&g->ws, GEMM_WS_BYTES);
    if (e != cudaSuccess) {
        seer_fail(err, "gemm.cu: cudaMalloc of the %u-byte cuBLASLt workspace: %s", GEMM_WS_BYTES,
                  cudaGetErrorString(e));
        cublasLtDestroy(g->lt);
        free(g);
        return NULL;
    }
    return g;
}

void gemm_cuda_free(GemmCuda *g) {
    if (!g) return;
    cudaFree(g->ws);
    cublasLtDestroy(g->lt);
    free(g);
}

typedef struct {
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c;
} GemmDescs;

static void gemm_descs_free(GemmDescs *d) {
    if (d->op) cublasLtMatmulDescDestroy(d->op);
    if (d->a) cublasLtMatrixLayoutDestroy(d->a);
    if (d->b) cublasLtMatrixLayoutDestroy(d->b);
    if (d->c) cublasLtMatrixLayoutDestroy(d->c);
}

#define LT_TRY(call)                                                                              \
    do {                                                                                          \
        cublasStatus_t st_ = (call);                                                              \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                       \
            gemm_descs_free(&d);                                                                  \
            return seer_fail(err, "gemm.cu: %s (N %d IN %d OUT %d): %s", #call, N, IN, OUT,       \
                             cublasGetStatusString(st_));                                         \
        }                                                                                         \
    } while (0)

int gemm_cuda(GemmCuda *g, void *y, GemmOut out, const uint16_t *x, const uint16_t *W,
              const uint16_t *bias, int accumulate, int N, int IN, int OUT, cudaStream_t stream,
              SeerErr *err) {
    if (N < 1 || IN < 1 || OUT < 1 || IN % 8 || OUT % 8)
        return seer_fail(err, "gemm.cu: shape N %d IN %d OUT %d (need >= 1, IN and OUT multiples of 8)", N, IN, OUT);
    if ((accumulate && out != GEMM_OUT_F32) || (bias && out != GEMM_OUT_BF16))
        return seer_fail(err, "gemm.cu: accumulate needs fp32 output and bias bf16 output (N %d IN %d OUT %d)", N, IN, OUT);
    GemmDescs d = {0, 0, 0, 0};
    cudaDataType_t ct = out == GEMM_OUT_F32 ? CUDA_R_32F : CUDA_R_16BF;
    cublasOperation_t tr = CUBLAS_OP_T;
    LT_TRY(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &tr, sizeof tr));
    if (bias) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BIAS;
        LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
        LT_TRY(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    LT_TRY(cublasLtMatrixLayoutCreate(&d.a, CUDA_R_16BF, IN, OUT, IN));
    LT_TRY(cublasLtMatrixLayoutCreate(&d.b, CUDA_R_16BF, IN, N, IN));
    LT_TRY(cublasLtMatrixLayoutCreate(&d.c, ct, OUT, N, OUT));
    GemmAlgo *hit = NULL;
    for (int i = 0; i < g->n_cache; i++) {
        GemmAlgo *c = &g->cache[i];
        if (c->N == N && c->IN == IN && c->OUT == OUT && c->out == (int)out && c->bias == !!bias &&
            c->acc == !!accumulate)
            hit = c;
    }
    GemmAlgo found;
    if (!hit) {
        cublasLtMatmulPreference_t pref;
        size_t wsb = GEMM_WS_BYTES;
        LT_TRY(cublasLtMatmulPreferenceCreate(&pref));
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
        cublasLtMatmulHeuristicResult_t res;
        int n_res = 0;
        cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(g->lt, d.op, d.a, d.b, d.c, d.c, pref, 1, &res, &n_res);
        cublasLtMatmulPreferenceDestroy(pref);
        if (st != CUBLAS_STATUS_SUCCESS || n_res < 1) {
            gemm_descs_free(&d);
            return seer_fail(err, "gemm.cu: cublasLtMatmulAlgoGetHeuristic found no algorithm for N %d IN %d OUT %d (%s out%s)",
                             N, IN, OUT, out == GEMM_OUT_F32 ? "fp32" : "bf16", bias ? ", bias" : "");
        }
        found = (GemmAlgo){N, IN, OUT, (int)out, !!bias, !!accumulate, res.algo};
        hit = &found;
        if (g->n_cache < GEMM_CACHE) g->cache[g->n_cache++] = found;
    }
    float alpha = 1.f, beta = accumulate ? 1.f : 0.f;
    LT_TRY(cublasLtMatmul(g->lt, d.op, &alpha, W, d.a, x, d.b, &beta, y, d.c, y, d.c, &hit->algo, g->ws,
                          GEMM_WS_BYTES, stream));
    gemm_descs_free(&d);
    return 0;
}
