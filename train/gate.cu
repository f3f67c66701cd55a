// gate.cu: CUDA twin of the AttnGate forward/backward (gate.c) and its KL loss (gate_loss.c).
// docs/GATE.md explains the design; this header is the map.
//
// Per layer (current chunk set by gate_cuda_set_chunk):
//   1. q (bf16, strided) -> xq fp32 [T, H*HD]; uq[g] = xq[:, g] @ wq[g]         (cuBLAS SGEMM, batched)
//   2. kc = max|min|mean pooling per (group, key block) [HKV, NBT, 3*HD]; uk[g] = kc[g] @ wk[g]
//   3. rmsnorm * w, RoPE: qr [HKV, T, DG], kr [HKV, NBT, DG] (1/rms kept for the backward)
//   4. scores S[g, t, j] = qr . kr / sqrt(DG) for j < floor(p/64): tiled 64x64 fp32 kernel over the
//      (query tile, key-block chunk) pairs. A query tile = 64 tokens of one document at positions
//      64i.. : all its rows allow exactly the key blocks 0..i-1, so no tile needs a partial mask.
//   5. one warp per row: log-softmax, KL against the target, ds = coef (softmax sum(P) - P), written
//      over S in place; the row's weighted KL goes to a buffer summed in a fixed order.
//   6. dqr = ds @ kr per query tile; dkr = ds^T @ qr per key tile of 64 blocks, split over rows in
//      slices of GATE_RS rows (partials reduced in a fixed order: no atomics anywhere).
//   7. RoPE^T and RMSNorm backward (norm-weight gradients as per-CTA partials, fixed-order sums);
//      dwq[g] += xq[:, g]^T duq[g], dwk[g] += kc[g]^T duk[g] (cuBLAS SGEMM, beta 1).
// All math fp32; every buffer comes from one cudaMalloc made by gate_cuda_create.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/reduce.cuh"
extern "C" {
#include "common/cuda_check.h"
#include "train/gate.h"
#include "train/gate_loss.h"
}

#define GT 64        // tile rows and columns (= SEER_BLOCK)
#define GK 32        // reduction slice of the tiled kernels
#define GTHREADS 256  // threads of the tiled kernels: 16 x 16, 4 x 4 outputs each
#define GATE_RS 1024  // query rows per dk work item
#define NORM_ROWS 64  // rows per CTA of the norm backward (8 warps x 8 rows)

// ---------------------------------------------------------------------------------------------
// Error checks: fill err with the statement, file:line and the CUDA / cuBLAS message.


#define CB(call)                                                                                  \
    do {                                                                                          \
        cublasStatus_t s_ = (call);                                                               \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                          \
            return seer_fail(err, "%s:%d: %s: %s", __FILE__, __LINE__, #call, cublasGetStatusString(s_)); \
    } while (0)

#define LAUNCHED(name) CUDA_TRY(cudaPeekAtLastError())

// ---------------------------------------------------------------------------------------------
// The context: capacity, chunk metadata and every buffer (one allocation).

typedef struct {
    size_t pos, w_tok, tiles, kpos, ktiles, kslots, items;      // metadata (uploaded per chunk)
    size_t cos_t, sin_t;                                          // RoPE tables
    size_t xq, uq, qr, dq, rq, kc, uk, kr, dk, rk, sbuf;          // activations
    size_t row_loss, part_dk, part_q, part_k;                     // reduction scratch
    size_t meta_bytes, total;
} GateLayout;

struct GateCuda {
    GateShape s;
    int T_max, NB_max, max_docs, NBT_max, KT_max, items_max;
    cudaStream_t stream;
    cublasHandle_t blas;
    char *base;      // the one device allocation
    char *host_meta; // [meta_bytes] staging for the metadata upload
    GateLayout L;
    // The current chunk.
    int have_chunk, T, NB, n_docs, NBT, n_kt, n_items, longest;
    float scale;
};

static size_t align256(size_t x) { return (x + 255) & ~(size_t)255; }

// Upper bound on the dk work items of a chunk. A document of length L has NB_d <= L/64 + 1 blocks,
// ceil(NB_d/64) <= L/4096 + 65/64 key tiles, each cut into <= L/RS + 1 row slices; summed over the
// documents (sum L^2 <= T^2): T^2/(4096 RS) + T/4096 + (65/64)(T/RS + n_docs), plus rounding room.
static int items_bound(int T_max, int max_docs) {
    double T = T_max, b = T * T / (4096.0 * GATE_RS) + T / 4096 + 1.02 * (T / GATE_RS + max_docs) + 8;
    return (int)ceil(b);
}

static GateLayout layout_plan(GateShape s, int T_max, int NB_max, int NBT_max, int KT_max,
                              int items_max) {
    GateLayout L;
    size_t o = 0, H = (size_t)s.HKV * s.G, T = T_max, NBT = NBT_max, HKV = s.HKV, DG = s.DG;
#define TAKE(field, bytes) (L.field = o, o = align256(o + (bytes)))
    TAKE(pos, sizeof(int) * T);
    TAKE(w_tok, sizeof(float) * T);
    TAKE(tiles, sizeof(int4) * NBT);
    TAKE(kpos, sizeof(int) * NBT);
    TAKE(ktiles, sizeof(int4) * KT_max);
    TAKE(kslots, sizeof(int2) * KT_max);
    TAKE(items, sizeof(int4) * items_max);
    L.meta_bytes = o;
    TAKE(cos_t, sizeof(float) * T * DG / 2);
    TAKE(sin_t, sizeof(float) * T * DG / 2);
    TAKE(xq, sizeof(float) * T * H * s.HD);
    TAKE(uq, sizeof(float) * HKV * T * DG);
    TAKE(qr, sizeof(float) * HKV * T * DG);
    TAKE(dq, sizeof(float) * HKV * T * DG);
    TAKE(rq, sizeof(float) * HKV * T);
    TAKE(kc, sizeof(float) * HKV * NBT * 3 * s.HD);
    TAKE(uk, sizeof(float) * HKV * NBT * DG);
    TAKE(kr, sizeof(float) * HKV * NBT * DG);
    TAKE(dk, sizeof(float) * HKV * NBT * DG);
    TAKE(rk, sizeof(float) * HKV * NBT);
    TAKE(sbuf, sizeof(float) * HKV * T * NB_max);
    TAKE(row_loss, sizeof(double) * HKV * T);
    TAKE(part_dk, sizeof(float) * (size_t)items_max * HKV * GT * DG);
    TAKE(part_q, sizeof(float) * ((HKV * T + NORM_ROWS - 1) / NORM_ROWS) * DG);
    TAKE(part_k, sizeof(float) * ((HKV * NBT + NORM_ROWS - 1) / NORM_ROWS) * DG);
#undef TAKE
    L.total = o;
    return L;
}

static void capacity(GateShape s, int T_max, int max_docs, int *NBT_max, int *KT_max, int *items_max) {
    (void)s;
    *NBT_max = T_max / SEER_BLOCK + max_docs;
    *KT_max = *NBT_max / GT + max_docs;
    *items_max = items_bound(T_max, max_docs);
}

extern "C" size_t gate_cuda_bytes(GateShape s, int T_max, int NB_max, int max_docs) {
    int nbt, kt, items;
    capacity(s, T_max, max_docs, &nbt, &kt, &items);
    return layout_plan(s, T_max, NB_max, nbt, kt, items).total;
}

#define BUF(g, field, type) ((type *)((g)->base + (g)->L.field))

extern "C" int gate_cuda_create(GateCuda **out, GateShape s, int T_max, int NB_max, int max_docs,
                                cudaStream_t stream, SeerErr *err) {
    *out = NULL;
    if (gate_shape_check(s, err)) return -1;
    if (T_max < 1 || NB_max < 1 || max_docs < 1)
        return seer_fail(err, "gate cuda: T_max %d, NB_max %d, max_docs %d must be >= 1", T_max,
                         NB_max, max_docs);
    GateCuda *g = (GateCuda *)xcalloc(1, sizeof(GateCuda));
    g->s = s, g->T_max = T_max, g->NB_max = NB_max, g->max_docs = max_docs, g->stream = stream;
    capacity(s, T_max, max_docs, &g->NBT_max, &g->KT_max, &g->items_max);
    g->L = layout_plan(s, T_max, NB_max, g->NBT_max, g->KT_max, g->items_max);
    g->host_meta = (char *)xmalloc(g->L.meta_bytes);
    cudaError_t e = cudaMalloc((void **)&g->base, g->L.total);
    if (e != cudaSuccess) {
        seer_fail(err, "gate cuda: cudaMalloc of %.1f MB for T %d, NB %d, %d docs: %s",
                  g->L.total / 1e6, T_max, NB_max, max_docs, cudaGetErrorString(e));
        free(g->host_meta), free(g);
        return -1;
    }
    if (cublasCreate(&g->blas) != CUBLAS_STATUS_SUCCESS || cublasSetStream(g->blas, stream) != CUBLAS_STATUS_SUCCESS) {
        cudaFree(g->base), free(g->host_meta), free(g);
        return seer_fail(err, "gate cuda: cublasCreate / cublasSetStream failed");
    }
    cublasSetMathMode(g->blas, CUBLAS_DEFAULT_MATH);
    *out = g;
    return 0;
}

extern "C" void gate_cuda_free(GateCuda *g) {
    if (!g) return;
    cublasDestroy(g->blas);
    cudaFree(g->base);
    free(g->host_meta);
    free(g);
}

extern "C" void gate_cuda_set_tf32(GateCuda *g, int on) {
    cublasSetMathMode(g->blas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
}

// ---------------------------------------------------------------------------------------------
// Chunk metadata

// angle = pos * theta^(-2i/DG) in double, rounded once (as rope_table_cpu). cos_t, sin_t: [n, DG/2].
__global__ void rope_table_kernel(float *cos_t, float *sin_t, int n, int DG, float theta) {
    int h = DG / 2;
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < (int64_t)n * h;
         e += (int64_t)gridDim.x * blockDim.x) {
        int p = (int)(e / h), i = (int)(e % h);
        double a = p * pow((double)theta, -2.0 * i / DG);
        cos_t[e] = (float)cos(a);
        sin_t[e] = (float)sin(a);
    }
}

extern "C" int gate_cuda_set_chunk(GateCuda *g, const int *doc_lens, int n_docs, int T, int NB,
                                   float rope_theta, const GateLossOpts *o, GateLossStats *st,
                                   SeerErr *err) {
    GateLossOpts def = gate_loss_default_opts();
    if (!o) o = &def;
    g->have_chunk = 0;
    if (gate_docs_check(doc_lens, n_docs, T, NB, err) || gate_loss_opts_check(o, err)) return -1;
    if (!(rope_theta > 0)) return seer_fail(err, "gate chunk: rope_theta %g must be > 0", rope_theta);
    if (T > g->T_max || NB > g->NB_max || n_docs > g->max_docs)
        return seer_fail(err, "gate cuda: chunk (T %d, NB %d, %d docs) exceeds the capacity (T %d, NB %d, %d docs)",
                         T, NB, n_docs, g->T_max, g->NB_max, g->max_docs);
    GateLayout *L = &g->L;
    char *h = g->host_meta;
    int *pos = (int *)(h + L->pos), *kpos = (int *)(h + L->kpos);
    int4 *tiles = (int4 *)(h + L->tiles), *ktiles = (int4 *)(h + L->ktiles), *items = (int4 *)(h + L->items);
    int2 *kslots = (int2 *)(h + L->kslots);
    GateLossStats plan;
    gate_loss_plan((float *)(h + L->w_tok), &plan, doc_lens, n_docs, g->s.HKV, o->slice_ratio);
    int t0 = 0, nbt = 0, nkt = 0, nit = 0, longest = 0;
    for (int d = 0; d < n_docs; d++) {
        int len = doc_lens[d], nb = ceil_div(len, SEER_BLOCK);
        for (int p = 0; p < len; p++) pos[t0 + p] = p;
        for (int j = 0; j < nb; j++, nbt++) {
            int n = len - j * SEER_BLOCK < SEER_BLOCK ? len - j * SEER_BLOCK : SEER_BLOCK;
            tiles[nbt] = make_int4(t0 + j * SEER_BLOCK, n, j, nbt - j);
            kpos[nbt] = j * SEER_BLOCK;
        }
        for (int j0 = 0; j0 < nb; j0 += GT, nkt++) {
            int first = nit;
            for (int p = (j0 + 1) * SEER_BLOCK; p < len; p += GATE_RS, nit++)
                if (nit < g->items_max)
                    items[nit] = make_int4(nkt, p, p + GATE_RS < len ? p + GATE_RS : len, 0);
            if (nkt < g->KT_max) {
                ktiles[nkt] = make_int4(t0, len, j0, nbt - nb);
                kslots[nkt] = make_int2(first, nit - first);
            }
        }
        t0 += len;
        if (len > longest) longest = len;
    }
    if (nkt > g->KT_max || nit > g->items_max)  // cannot happen within the bounds; kept as a guard
        return seer_fail(err, "gate cuda: chunk needs %d key tiles / %d items, capacity %d / %d",
                         nkt, nit, g->KT_max, g->items_max);
    CUDA_TRY(cudaMemcpyAsync(g->base, h, L->meta_bytes, cudaMemcpyHostToDevice, g->stream));
    rope_table_kernel<<<256, 256, 0, g->stream>>>(BUF(g, cos_t, float), BUF(g, sin_t, float), longest,
                                                  g->s.DG, rope_theta);
    LAUNCHED("rope_table_kernel");
    CUDA_TRY(cudaStreamSynchronize(g->stream));
    g->T = T, g->NB = NB, g->n_docs = n_docs, g->NBT = nbt, g->n_kt = nkt, g->n_items = nit;
    g->longest = longest, g->scale = o->scale, g->have_chunk = 1;
    if (st) *st = plan;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Forward kernels

__device__ __forceinline__ float bf16f(uint16_t h) { return __uint_as_float((uint32_t)h << 16); }
__device__ __forceinline__ int ceil_div_dev(int a, int b) { return (a + b - 1) / b; }

// xq[t, c] = q[t*ldq + c] for c < W = H*HD.
__global__ void convert_q_kernel(float *xq, const uint16_t *q, int64_t ldq, int T, int W) {
    for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < (int64_t)T * W;
         e += (int64_t)gridDim.x * blockDim.x) {
        int64_t t = e / W, c = e % W;
        xq[e] = bf16f(q[t * ldq + c]);
    }
}

// kc[g, b] = max | min | mean over the block's tokens of k[:, g]. grid (NBT, HKV).
__global__ void pool_kernel(float *kc, const uint16_t *k, int64_t ldk, const int4 *tiles, int NBT, int HD) {
    int b = blockIdx.x, g = blockIdx.y;
    int4 tl = tiles[b];  // (tok0, len, j, kb0)
    float *out = kc + ((size_t)g * NBT + b) * 3 * HD;
    for (int c = threadIdx.x; c < HD; c += blockDim.x) {
        float mx = -INFINITY, mn = INFINITY, sum = 0;
        for (int i = 0; i < tl.y; i++) {
            float v = bf16f(k[(int64_t)(tl.x + i) * ldk + (int64_t)g * HD + c]);
            mx = fmaxf(mx, v), mn = fminf(mn, v), sum += v;
        }
        out[c] = mx, out[HD + c] = mn, out[2 * HD + c] = sum / (float)tl.y;
    }
}

// out = rope(u / rms(u) * w, pos[row % rows_per_group]); rinv[row] = 1/rms. One warp per row.
__global__ void norm_rope_kernel(float *out, float *rinv, const float *u, const float *w,
                                 const int *pos, int rows, int rows_per_group, int DG,
                                 const float *cos_t, const float *sin_t) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, h = DG / 2;
    if (row >= rows) return;
    const float *x = u + (size_t)row * DG;
    float ss = 0;
    for (int i = lane; i < DG; i += 32) ss += x[i] * x[i];
    ss = warp_sum(ss);
    float r = 1.0f / sqrtf(ss / DG + GATE_RMS_EPS);
    const float *cs = cos_t + (size_t)pos[row % rows_per_group] * h, *sn = sin_t + (size_t)pos[row % rows_per_group] * h;
    float *y = out + (size_t)row * DG;
    for (int i = lane; i < h; i += 32) {
        float a = x[i] * r * w[i], b = x[i + h] * r * w[i + h];
        y[i] = a * cs[i] - b * sn[i];
        y[i + h] = b * cs[i] + a * sn[i];
    }
    if (lane == 0) rinv[row] = r;
}

// Shared tiles of the 64x64 kernels: a[kk][row], b[kk][col] (+1 column against bank conflicts).
typedef struct {
    float a[GK][GT + 1];
    float b[GK][GT + 1];
} Tiles;

// acc[m][n] += sum_kk a[kk][ty + 16m] * b[kk][tx + 16n]
__device__ __forceinline__ void tile_mma(float acc[4][4], const Tiles &sm, int ty, int tx) {
#pragma unroll 8
    for (int kk = 0; kk < GK; kk++) {
        float a[4], b[4];
#pragma unroll
        for (int m = 0; m < 4; m++) a[m] = sm.a[kk][ty + 16 * m];
#pragma unroll
        for (int n = 0; n < 4; n++) b[n] = sm.b[kk][tx + 16 * n];
#pragma unroll
        for (int m = 0; m < 4; m++)
#pragma unroll
            for (int n = 0; n < 4; n++) acc[m][n] = fmaf(a[m], b[n], acc[m][n]);
    }
}

// S[g, t, j0 + jj] = qr[g, t] . kr[g, kb0 + j0 + jj] * scale for a query tile's rows and the
// column chunk j0 = 64 * blockIdx.y (columns < the tile's allowed count). grid (NBT, col chunks, HKV).
__global__ void __launch_bounds__(GTHREADS) scores_kernel(float *S, const float *qr, const float *kr,
                                                          const int4 *tiles, int T, int NBT, int NB,
                                                          int DG, float scale) {
    __shared__ Tiles sm;
    int4 tl = tiles[blockIdx.x];  // (tok0, len, allowed, kb0)
    int j0 = blockIdx.y * GT, g = blockIdx.z, tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    if (j0 >= tl.z) return;
    int ncols = min(GT, tl.z - j0);
    const float *Q = qr + ((size_t)g * T + tl.x) * DG, *K = kr + ((size_t)g * NBT + tl.w + j0) * DG;
    float acc[4][4] = {};
    for (int k0 = 0; k0 < DG; k0 += GK) {
        for (int e = tid; e < GK * GT; e += GTHREADS) {
            int r = e / GK, kk = e % GK, k = k0 + kk;
            sm.a[kk][r] = r < tl.y && k < DG ? Q[(size_t)r * DG + k] : 0.0f;
            sm.b[kk][r] = r < ncols && k < DG ? K[(size_t)r * DG + k] : 0.0f;
        }
        __syncthreads();
        tile_mma(acc, sm, ty, tx);
        __syncthreads();
    }
    for (int m = 0; m < 4; m++)
        for (int n = 0; n < 4; n++) {
            int r = ty + 16 * m, c = tx + 16 * n;
            if (r < tl.y && c < ncols) S[((size_t)g * T + tl.x + r) * NB + j0 + c] = acc[m][n] * scale;
        }
}

// One warp per row (g, t), n = pos/64 allowed entries of S (in place):
//   scores mode (target NULL): log-softmax, -inf for j >= n (whole row of NB).
//   loss mode: ds = coef (softmax sum(P) - P) for j < n with coef = scale * w / sqrt(DG) (0 for an
//   unsupervised row), row_loss[row] = w * KL.
__global__ void row_kernel(float *S, double *row_loss, const float *target, const int *pos,
                           const float *w_tok, int T, int NB, int rows, float scale, float inv_sqrt) {
    int row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
    if (row >= rows) return;
    int t = row % T, n = pos[t] / SEER_BLOCK;
    float *s = S + (size_t)row * NB;
    float w = target ? w_tok[t] : 1.0f;
    if (target && w == 0.0f) {
        for (int j = lane; j < n; j += 32) s[j] = 0.0f;
        if (lane == 0) row_loss[row] = 0;
        return;
    }
    float mx = -INFINITY;
    for (int j = lane; j < n; j += 32) mx = fmaxf(mx, s[j]);
    mx = warp_max(mx);
    float z = 0;
    for (int j = lane; j < n; j += 32) z += expf(s[j] - mx);
    z = warp_sum(z);
    float lse = mx + logf(z);
    if (!target) {
        for (int j = lane; j < NB; j += 32) s[j] = j < n ? s[j] - lse : -INFINITY;
        return;
    }
    const float *P = target + (size_t)row * NB;
    float kl = 0, sum_p = 0;
    for (int j = lane; j < n; j += 32) {
        float p = P[j];
        sum_p += p;
        if (p > 0) kl += p * (logf(p) - (s[j] - lse));
    }
    kl = warp_sum(kl), sum_p = warp_sum(sum_p);
    float coef = scale * w * inv_sqrt;  // the CPU's order
    for (int j = lane; j < n; j += 32) s[j] = coef * (expf(s[j] - lse) * sum_p - P[j]);
    if (lane == 0) row_loss[row] = (double)w * kl;
}

// *loss += scale * sum(row_loss) in a fixed order (one CTA of 1024 threads).
__global__ void loss_sum_kernel(double *loss, const double *row_loss, int rows, float scale) {
    __shared__ double part[1024];
    double v = 0;
    for (int i = threadIdx.x; i < rows; i += blockDim.x) v += row_loss[i];
    part[threadIdx.x] = v;
    __syncthreads();
    for (int o = blockDim.x / 2; o; o >>= 1) {
        if ((int)threadIdx.x < o) part[threadIdx.x] += part[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) *loss += (double)scale * part[0];
}

// ---------------------------------------------------------------------------------------------
// Backward kernels

// dq[g, t, c0 + cc] = sum_{j < allowed} ds[g, t, j] kr[g, kb0 + j, c0 + cc] (rows of one query tile;
// every row written, zero when nothing is allowed). grid (NBT, DG chunks of 64, HKV).
__global__ void __launch_bounds__(GTHREADS) dq_kernel(float *dq, const float *ds, const float *kr,
                                                      const int4 *tiles, int T, int NBT, int NB, int DG) {
    __shared__ Tiles sm;
    int4 tl = tiles[blockIdx.x];
    int c0 = blockIdx.y * GT, g = blockIdx.z, tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const float *D = ds + ((size_t)g * T + tl.x) * NB, *K = kr + ((size_t)g * NBT + tl.w) * DG;
    float acc[4][4] = {};
    for (int j0 = 0; j0 < tl.z; j0 += GK) {
        for (int e = tid; e < GK * GT; e += GTHREADS) {
            int r = e / GK, jj = e % GK;  // a: ds rows (coalesced along j)
            sm.a[jj][r] = r < tl.y && j0 + jj < tl.z ? D[(size_t)r * NB + j0 + jj] : 0.0f;
            int kj = e / GT, cc = e % GT;  // b: kr rows (coalesced along c)
            sm.b[kj][cc] = j0 + kj < tl.z && c0 + cc < DG ? K[(size_t)(j0 + kj) * DG + c0 + cc] : 0.0f;
        }
        __syncthreads();
        tile_mma(acc, sm, ty, tx);
        __syncthreads();
    }
    for (int m = 0; m < 4; m++)
        for (int n = 0; n < 4; n++) {
            int r = ty + 16 * m, c = c0 + tx + 16 * n;
            if (r < tl.y && c < DG) dq[((size_t)g * T + tl.x + r) * DG + c] = acc[m][n];
        }
}

// One dk work item: key tile (doc at tok0, len; blocks j0 .. j0+63) and query positions [p0, p1):
// part[item, g, jj, c0 + cc] = sum_p ds[g, tok0 + p, j0 + jj] qr[g, tok0 + p, c0 + cc] over the
// entries with j0 + jj < p/64. grid (items, DG chunks of 64, HKV).
__global__ void __launch_bounds__(GTHREADS) dk_kernel(float *part, const float *ds, const float *qr,
                                                      const int4 *items, const int4 *ktiles, int T,
                                                      int NB, int DG, int HKV) {
    __shared__ Tiles sm;
    int4 it = items[blockIdx.x], kt = ktiles[it.x];  // it: (key tile, p0, p1, -); kt: (tok0, len, j0, kb0)
    int c0 = blockIdx.y * GT, g = blockIdx.z, tid = threadIdx.x, ty = tid / 16, tx = tid % 16;
    const float *D = ds + ((size_t)g * T + kt.x) * NB, *Q = qr + ((size_t)g * T + kt.x) * DG;
    float acc[4][4] = {};
    for (int p0 = it.y; p0 < it.z; p0 += GK) {
        for (int e = tid; e < GK * GT; e += GTHREADS) {
            int rr = e / GT, cc = e % GT, p = p0 + rr, j = kt.z + cc;
            sm.a[rr][cc] = p < it.z && j < p / SEER_BLOCK ? D[(size_t)p * NB + j] : 0.0f;
            sm.b[rr][cc] = p < it.z && c0 + cc < DG ? Q[(size_t)p * DG + c0 + cc] : 0.0f;
        }
        __syncthreads();
        tile_mma(acc, sm, ty, tx);
        __syncthreads();
    }
    float *out = part + ((size_t)blockIdx.x * HKV + g) * GT * DG;
    for (int m = 0; m < 4; m++)
        for (int n = 0; n < 4; n++) {
            int jj = ty + 16 * m, c = c0 + tx + 16 * n;
            if (c < DG) out[(size_t)jj * DG + c] = acc[m][n];
        }
}

// dk[g, kb0 + j0 + jj] = sum over the key tile's items (in order) of part. grid (key tiles, HKV).
__global__ void dk_reduce_kernel(float *dk, const float *part, const int4 *ktiles, const int2 *kslots,
                                 int NBT, int DG, int HKV) {
    int4 kt = ktiles[blockIdx.x];
    int2 sl = kslots[blockIdx.x];
    int g = blockIdx.y, nj = min(GT, ceil_div_dev(kt.y, SEER_BLOCK) - kt.z);
    for (int e = threadIdx.x; e < nj * DG; e += blockDim.x) {
        float v = 0;
        for (int i = 0; i < sl.y; i++) v += part[((size_t)(sl.x + i) * HKV + g) * GT * DG + e];
        dk[((size_t)g * NBT + kt.w + kt.z) * DG + e] = v;
    }
}

// From dy ([rows, DG], gradient after RoPE; overwritten with the gradient at u) for
// y = rope(u * rinv * w): RoPE^T, then RMSNorm backward. part[blockIdx.x, :] = this CTA's d/dw.
// 8 warps x 8 rows per CTA (NORM_ROWS).
__global__ void __launch_bounds__(256) norm_rope_bwd_kernel(float *dy, float *part, const float *u,
                                                            const float *rinv, const float *w,
                                                            const int *pos, int rows, int rows_per_group,
                                                            int DG, const float *cos_t, const float *sin_t) {
    __shared__ float dwp[8][GATE_DG_MAX];
    int warp = threadIdx.x / 32, lane = threadIdx.x % 32, h = DG / 2;
    for (int i = lane; i < DG; i += 32) dwp[warp][i] = 0;
    for (int rr = 0; rr < NORM_ROWS / 8; rr++) {
        int row = blockIdx.x * NORM_ROWS + warp * (NORM_ROWS / 8) + rr;
        if (row >= rows) break;
        float r = rinv[row], dot = 0;
        int p = pos[row % rows_per_group];
        const float *x = u + (size_t)row * DG, *cs = cos_t + (size_t)p * h, *sn = sin_t + (size_t)p * h;
        float *y = dy + (size_t)row * DG;
        for (int i = lane; i < h; i += 32) {
            float a = y[i], b = y[i + h];
            float dn0 = a * cs[i] + b * sn[i], dn1 = b * cs[i] - a * sn[i];
            dwp[warp][i] += dn0 * x[i] * r;
            dwp[warp][i + h] += dn1 * x[i + h] * r;
            y[i] = dn0 * w[i], y[i + h] = dn1 * w[i + h];  // a = dn * w, kept by this lane
            dot += y[i] * x[i] + y[i + h] * x[i + h];
        }
        dot = warp_sum(dot);
        float c = dot * r * r * r / DG;
        for (int i = lane; i < h; i += 32) {
            y[i] = r * y[i] - x[i] * c;
            y[i + h] = r * y[i + h] - x[i + h] * c;
        }
    }
    __syncthreads();
    for (int i = threadIdx.x; i < DG; i += blockDim.x) {
        float v = 0;
        for (int k = 0; k < 8; k++) v += dwp[k][i];
        part[(size_t)blockIdx.x * DG + i] = v;
    }
}

// out[k] += sum_i part[i, k] in a fixed order. grid DG, 256 threads.
__global__ void column_sum_kernel(float *out, const float *part, int n, int DG) {
    __shared__ float s[256];
    int k = blockIdx.x;
    float v = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) v += part[(size_t)i * DG + k];
    s[threadIdx.x] = v;
    __syncthreads();
    for (int o = blockDim.x / 2; o; o >>= 1) {
        if ((int)threadIdx.x < o) s[threadIdx.x] += s[threadIdx.x + o];
        __syncthreads();
    }
    if (threadIdx.x == 0) out[k] += s[0];
}

// ---------------------------------------------------------------------------------------------
// Host side

static int check_call(const GateCuda *g, const float *params, const uint16_t *q, int64_t ldq,
                      const uint16_t *k, int64_t ldk, SeerErr *err) {
    if (!g->have_chunk) return seer_fail(err, "gate cuda: no chunk set (call gate_cuda_set_chunk first)");
    if (!params || !q || !k) return seer_fail(err, "gate cuda: params, q or k is NULL");
    if (ldq < (int64_t)g->s.HKV * g->s.G * g->s.HD || ldk < (int64_t)g->s.HKV * g->s.HD)
        return seer_fail(err, "gate cuda: ldq %lld < H*HD or ldk %lld < HKV*HD", (long long)ldq,
                         (long long)ldk);
    return 0;
}

// Steps 1-4 of the header: S[g, t, j] = raw scores for j < allowed (other entries untouched).
static int gate_forward_cuda(GateCuda *g, float *S, const float *params, const uint16_t *q,
                             int64_t ldq, const uint16_t *k, int64_t ldk, SeerErr *err) {
    GateShape s = g->s;
    GateParams P = gate_params_view((float *)params, s);
    int T = g->T, NBT = g->NBT, H = s.HKV * s.G, K = s.G * s.HD, DG = s.DG;
    cudaStream_t st = g->stream;
    float one = 1, zero = 0;
    float *xq = BUF(g, xq, float), *uq = BUF(g, uq, float), *kc = BUF(g, kc, float), *uk = BUF(g, uk, float);
    convert_q_kernel<<<1024, 256, 0, st>>>(xq, q, ldq, T, H * s.HD);
    LAUNCHED("convert_q_kernel");
    CB(cublasSgemmStridedBatched(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, DG, T, K, &one, P.wq, DG,
                                 (long long)K * DG, xq, H * s.HD, K, &zero, uq, DG, (long long)T * DG, s.HKV));
    pool_kernel<<<dim3(NBT, s.HKV), 128, 0, st>>>(kc, k, ldk, BUF(g, tiles, int4), NBT, s.HD);
    LAUNCHED("pool_kernel");
    CB(cublasSgemmStridedBatched(g->blas, CUBLAS_OP_N, CUBLAS_OP_N, DG, NBT, 3 * s.HD, &one, P.wk, DG,
                                 3LL * s.HD * DG, kc, 3 * s.HD, (long long)NBT * 3 * s.HD, &zero, uk, DG,
                                 (long long)NBT * DG, s.HKV));
    int rq_rows = s.HKV * T, rk_rows = s.HKV * NBT;
    norm_rope_kernel<<<ceil_div(rq_rows, 8), 256, 0, st>>>(BUF(g, qr, float), BUF(g, rq, float), uq,
                                                          P.qnorm_w, BUF(g, pos, int), rq_rows, T, DG,
                                                          BUF(g, cos_t, float), BUF(g, sin_t, float));
    LAUNCHED("norm_rope_kernel");
    norm_rope_kernel<<<ceil_div(rk_rows, 8), 256, 0, st>>>(BUF(g, kr, float), BUF(g, rk, float), uk,
                                                          P.knorm_w, BUF(g, kpos, int), rk_rows, NBT, DG,
                                                          BUF(g, cos_t, float), BUF(g, sin_t, float));
    LAUNCHED("norm_rope_kernel");
    scores_kernel<<<dim3(NBT, ceil_div(g->NB, GT), s.HKV), GTHREADS, 0, st>>>(
        S, BUF(g, qr, float), BUF(g, kr, float), BUF(g, tiles, int4), T, NBT, g->NB, DG,
        1.0f / sqrtf((float)DG));
    LAUNCHED("scores_kernel");
    return 0;
}

extern "C" int gate_cuda_scores(GateCuda *g, float *out, const float *params, const uint16_t *q,
                                int64_t ldq, const uint16_t *k, int64_t ldk, SeerErr *err) {
    if (check_call(g, params, q, ldq, k, ldk, err)) return -1;
    if (!out) return seer_fail(err, "gate cuda: scores output is NULL");
    if (gate_forward_cuda(g, out, params, q, ldq, k, ldk, err)) return -1;
    int rows = g->s.HKV * g->T;
    row_kernel<<<ceil_div(rows, 8), 256, 0, g->stream>>>(out, NULL, NULL, BUF(g, pos, int), NULL, g->T,
                                                        g->NB, rows, 0, 0);
    LAUNCHED("row_kernel");
    return 0;
}

// RoPE^T + RMSNorm backward over rows of dy, norm-weight gradient added into dw ([DG]).
static int norm_backward(GateCuda *g, float *dy, float *part, const float *u, const float *rinv,
                         const float *w, float *dw, const int *pos, int rows, int rows_per_group,
                         SeerErr *err) {
    int n_cta = ceil_div(rows, NORM_ROWS);
    norm_rope_bwd_kernel<<<n_cta, 256, 0, g->stream>>>(dy, part, u, rinv, w, pos, rows, rows_per_group,
                                                      g->s.DG, BUF(g, cos_t, float), BUF(g, sin_t, float));
    LAUNCHED("norm_rope_bwd_kernel");
    column_sum_kernel<<<g->s.DG, 256, 0, g->stream>>>(dw, part, n_cta, g->s.DG);
    LAUNCHED("column_sum_kernel");
    return 0;
}

// Steps 6-7 of the header, from ds in sbuf.
static int gate_backward_cuda(GateCuda *g, float *grad, const float *params, SeerErr *err) {
    GateShape s = g->s;
    GateParams P = gate_params_view((float *)params, s), dP = gate_params_view(grad, s);
    int T = g->T, NBT = g->NBT, NB = g->NB, H = s.HKV * s.G, K = s.G * s.HD, DG = s.DG;
    cudaStream_t st = g->stream;
    float one = 1;
    float *ds = BUF(g, sbuf, float), *dq = BUF(g, dq, float), *dk = BUF(g, dk, float);
    dq_kernel<<<dim3(NBT, ceil_div(DG, GT), s.HKV), GTHREADS, 0, st>>>(dq, ds, BUF(g, kr, float),
                                                                     BUF(g, tiles, int4), T, NBT, NB, DG);
    LAUNCHED("dq_kernel");
    if (g->n_items) {
        dk_kernel<<<dim3(g->n_items, ceil_div(DG, GT), s.HKV), GTHREADS, 0, st>>>(
            BUF(g, part_dk, float), ds, BUF(g, qr, float), BUF(g, items, int4), BUF(g, ktiles, int4), T,
            NB, DG, s.HKV);
        LAUNCHED("dk_kernel");
    }
    dk_reduce_kernel<<<dim3(g->n_kt, s.HKV), 256, 0, st>>>(dk, BUF(g, part_dk, float), BUF(g, ktiles, int4),
                                                          BUF(g, kslots, int2), NBT, DG, s.HKV);
    LAUNCHED("dk_reduce_kernel");
    if (norm_backward(g, dq, BUF(g, part_q, float), BUF(g, uq, float), BUF(g, rq, float), P.qnorm_w,
                      dP.qnorm_w, BUF(g, pos, int), s.HKV * T, T, err) ||
        norm_backward(g, dk, BUF(g, part_k, float), BUF(g, uk, float), BUF(g, rk, float), P.knorm_w,
                      dP.knorm_w, BUF(g, kpos, int), s.HKV * NBT, NBT, err))
        return -1;
    CB(cublasSgemmStridedBatched(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, DG, K, T, &one, dq, DG,
                                 (long long)T * DG, BUF(g, xq, float), H * s.HD, K, &one, dP.wq, DG,
                                 (long long)K * DG, s.HKV));
    CB(cublasSgemmStridedBatched(g->blas, CUBLAS_OP_N, CUBLAS_OP_T, DG, 3 * s.HD, NBT, &one, dk, DG,
                                 (long long)NBT * DG, BUF(g, kc, float), 3 * s.HD, (long long)NBT * 3 * s.HD,
                                 &one, dP.wk, DG, 3LL * s.HD * DG, s.HKV));
    return 0;
}

extern "C" int gate_cuda_loss(GateCuda *g, float *grad, double *loss, const float *params,
                              const uint16_t *q, int64_t ldq, const uint16_t *k, int64_t ldk,
                              const float *target, SeerErr *err) {
    if (check_call(g, params, q, ldq, k, ldk, err)) return -1;
    if (!target) return seer_fail(err, "gate cuda: target is NULL");
    float *S = BUF(g, sbuf, float);
    if (gate_forward_cuda(g, S, params, q, ldq, k, ldk, err)) return -1;
    int rows = g->s.HKV * g->T;
    row_kernel<<<ceil_div(rows, 8), 256, 0, g->stream>>>(S, BUF(g, row_loss, double), target,
                                                        BUF(g, pos, int), BUF(g, w_tok, float), g->T,
                                                        g->NB, rows, g->scale, 1.0f / sqrtf((float)g->s.DG));
    LAUNCHED("row_kernel");
    if (loss) {
        loss_sum_kernel<<<1, 1024, 0, g->stream>>>(loss, BUF(g, row_loss, double), rows, g->scale);
        LAUNCHED("loss_sum_kernel");
    }
    return grad ? gate_backward_cuda(g, grad, params, err) : 0;
}
