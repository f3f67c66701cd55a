// select.cu: GPU twins of select.h. One program per (KV head, sequence) for the selections, one
// per (block, KV head, sequence) for the oracle's block statistics.
//
// Top-k in a program: scores live in shared memory; the k-th largest is found bit by bit on the
// order-preserving uint32 image of the floats (32 rounds of warp counts), keys above it
// are taken, ties at it go to the lowest block indices (as select_blocks_cpu). The list is then
// written in descending block order with warp ballots.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

extern "C" {
#include "kernels/reduce.cuh"
#include "kernels/select.h"
}

namespace {

constexpr int kHD = 128, kDG = 128, kMaxNB = 4096, kMaxG = 16;
constexpr int kSelThreads = 512, kSelWarps = kSelThreads / 32;
constexpr int kChunkRows = 256;               // kcomp rows per cp.async chunk (64 KB)

template <bool BF16>
__device__ __forceinline__ float ld(const uint16_t *p, int64_t i) {
    uint16_t u = p[i];
    if (BF16) return __uint_as_float((uint32_t)u << 16);
    return __half2float(__ushort_as_half(u));
}

template <bool BF16>
__device__ __forceinline__ uint16_t to_elem(float x) {
    if (BF16) return __bfloat16_as_ushort(__float2bfloat16_rn(x));
    return __half_as_ushort(__float2half_rn(x));
}

__device__ __forceinline__ uint32_t ord_key(float f) {
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ int warp_sum_int(int x) {
    for (int o = 16; o; o /= 2) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

// Count of keys >= cand among key[0..n-1], by one warp; keys of the first 512 kept in kr.
__device__ __forceinline__ int warp_count_ge(const uint32_t (&kr)[16], const float *key, int n,
                                             uint32_t cand, int lane) {
    int cnt = 0;
#pragma unroll
    for (int i = 0; i < 16; i++) cnt += kr[i] >= cand;
    for (int j = 512 + lane; j < n; j += 32) cnt += ord_key(key[j]) >= cand;
    return warp_sum_int(cnt);
}

// Sets flags[j] for the k largest key[0..n-1] (ties: lowest j), all j when n <= k. Never clears
// a flag. All threads call it. Warp 0 finds the k-th largest key bit by bit (32 rounds of warp
// counts, no block barriers) and ranks the ties; then every thread flags the keys above it.
__device__ void flag_topk(const float *key, int n, int k, unsigned char *flags) {
    __shared__ uint32_t kth;
    const int tid = threadIdx.x;
    if (n <= k) {
        for (int j = tid; j < n; j += blockDim.x) flags[j] = 1;
        __syncthreads();
        return;
    }
    if (tid < 32) {
        const int lane = tid;
        uint32_t kr[16], T = 0;
#pragma unroll
        for (int i = 0; i < 16; i++) kr[i] = lane + 32 * i < n ? ord_key(key[lane + 32 * i]) : 0u;
        for (int bit = 31; bit >= 0; bit--) {
            uint32_t cand = T | (1u << bit);
            if (warp_count_ge(kr, key, n, cand, lane) >= k) T = cand;
        }
        int need = k - (T == 0xffffffffu ? 0 : warp_count_ge(kr, key, n, T + 1, lane)), seen = 0;
        for (int j0 = 0; j0 < n && seen < need; j0 += 32) {  // ties at T: lowest indices first
            int j = j0 + lane;
            bool eq = j < n && ord_key(key[j]) == T;
            unsigned bal = __ballot_sync(0xffffffffu, eq);
            if (eq && seen + __popc(bal & ((1u << lane) - 1)) < need) flags[j] = 1;
            seen += __popc(bal);
        }
        if (lane == 0) kth = T;
    }
    __syncthreads();
    const uint32_t T = kth;
    for (int j = tid; j < n; j += blockDim.x)
        if (ord_key(key[j]) > T) flags[j] = 1;
    __syncthreads();
}

// Writes the flagged blocks of flags[0..nb-1] into list [max_sel], descending, -1 padded.
__device__ void write_list(int32_t *list, int max_sel, const unsigned char *flags, int nb,
                           int *warp_tot) {
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    int base = 0;
    for (int r0 = 0; r0 < nb; r0 += kSelThreads) {
        int i = r0 + tid, j = nb - 1 - i;
        bool f = i < nb && flags[j];
        unsigned bal = __ballot_sync(0xffffffffu, f);
        int pre = __popc(bal & ((1u << lane) - 1));
        if (lane == 0) warp_tot[warp] = __popc(bal);
        __syncthreads();
        int off = 0, tot = 0;
        for (int w = 0; w < kSelWarps; w++) off += w < warp ? warp_tot[w] : 0, tot += warp_tot[w];
        if (f && base + off + pre < max_sel) list[base + off + pre] = j;
        base += tot;
        __syncthreads();
    }
    for (int i = base + tid; i < max_sel; i += kSelThreads) list[i] = -1;
}

// Inverse RoPE frequencies theta^(-2i/DG), formed on the host exactly as select_rope_cpu does.
struct RopeInv {
    float v[kDG / 2];
};

RopeInv rope_inv_compute(float theta) {
    RopeInv r;
    for (int i = 0; i < kDG / 2; i++) r.v[i] = (float)(1.0 / pow((double)theta, (double)(2 * i) / kDG));
    return r;
}

// The table of the last theta asked for, formed once (64 pow calls cost the host a few us per
// launch otherwise; one model per process in practice).
const RopeInv &rope_inv(float theta) {
    static RopeInv r;
    static float cached = NAN;
    if (!(theta == cached)) r = rope_inv_compute(theta), cached = theta;
    return r;
}

// y[0..127] (shared) = RoPE(rmsnorm(y) * w, pos); called by all threads, threads < 128 work.
__device__ void norm_rope(float *y, const float *w, int pos, const RopeInv &inv, float *red) {
    const int tid = threadIdx.x;
    float v = tid < kDG ? y[tid] : 0.0f;
    float ss = block_sum(v * v, red);
    float r = rsqrtf(ss / kDG + 1e-6f);
    if (tid < kDG) y[tid] = v * r * w[tid];
    __syncthreads();
    if (tid < kDG / 2) {
        double sn, cs;
        sincos((double)((float)pos * inv.v[tid]), &sn, &cs);
        float a = y[tid], b = y[tid + kDG / 2];
        y[tid] = a * (float)cs - b * (float)sn;
        y[tid + kDG / 2] = b * (float)cs + a * (float)sn;
    }
    __syncthreads();
}

// Epilogue of the projections below: thread (row group rg, column group cg) holds 8 partial
// sums acc for columns cg*8..cg*8+7; y[c] = the sum over the ng row groups. part: shared [ng, kDG].
__device__ __forceinline__ void store_row_group_sums(float *y, float *part, const float (&acc)[8], int rg,
                                                     int cg, int ng, int tid) {
#pragma unroll
    for (int e = 0; e < 8; e++) part[rg * kDG + cg * 8 + e] = acc[e];
    __syncthreads();
    if (tid < kDG) {
        float s = 0;
        for (int g = 0; g < ng; g++) s += part[g * kDG + tid];
        y[tid] = s;
    }
    __syncthreads();
}

// y[0..127] (shared) = x[0..n_in-1] (shared) @ w [n_in, 128] (bf16); part: shared
// [blockDim/16][128]. Thread (row group rg, column group cg) reads 16 bytes (8 columns) of every
// ng-th row, 8 rows' loads in flight at once (the weights come from L2 / HBM).
__device__ void matvec_bf16(float *y, const float *x, const uint16_t *w, int n_in, float *part) {
    const int tid = threadIdx.x, cg = tid % 16, rg = tid / 16, ng = blockDim.x / 16;
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const uint4 *w4 = reinterpret_cast<const uint4 *>(w);
    for (int r0 = rg; r0 < n_in; r0 += 8 * ng) {
        uint4 u[8];
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int r = r0 + i * ng;
            u[i] = r < n_in ? __ldg(w4 + (int64_t)r * (kDG / 8) + cg) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
        for (int i = 0; i < 8; i++) {
            int r = r0 + i * ng;
            float xr = r < n_in ? x[r] : 0.0f;
            uint32_t wv[4] = {u[i].x, u[i].y, u[i].z, u[i].w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                acc[2 * e] += xr * __uint_as_float(wv[e] << 16);
                acc[2 * e + 1] += xr * __uint_as_float(wv[e] & 0xffff0000u);
            }
        }
    }
    store_row_group_sums(y, part, acc, rg, cg, ng, tid);
}

__device__ __forceinline__ void cp_async16(void *dst, const void *src) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(
                     (uint32_t)__cvta_generic_to_shared(dst)),
                 "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
__device__ __forceinline__ void cp_async_wait1() { asm volatile("cp.async.wait_group 1;\n" ::); }
__device__ __forceinline__ void cp_async_wait2() { asm volatile("cp.async.wait_group 2;\n" ::); }

// ---- K-compression update --------------------------------------------------------------------

template <bool BF16>
__global__ void kcomp_update_kernel(uint16_t *kcomp, const uint16_t *kraw, const int32_t *block,
                                    const uint16_t *wk, const float *knorm, SelectConfig c,
                                    RopeInv inv) {
    __shared__ float kc[3 * kHD], y[kDG], part[16 * kDG], red[32];
    const int kvh = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, j = block[b];
    if (j < 0) return;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    if (tid < kHD) {
        const uint16_t *keys = kraw + pair * SEER_BLOCK * kHD;
        float mx = -INFINITY, mn = INFINITY, sum = 0;
#pragma unroll 16
        for (int i = 0; i < SEER_BLOCK; i++) {
            float x = ld<BF16>(keys, i * kHD + tid);
            mx = fmaxf(mx, x), mn = fminf(mn, x), sum += x;
        }
        kc[tid] = mx, kc[kHD + tid] = mn, kc[2 * kHD + tid] = sum / SEER_BLOCK;
    }
    __syncthreads();
    matvec_bf16(y, kc, wk + (int64_t)kvh * 3 * kHD * kDG, 3 * kHD, part);
    norm_rope(y, knorm, j * SEER_BLOCK + (c.rope_last ? SEER_BLOCK - 1 : 0), inv, red);
    if (tid < kDG) kcomp[(pair * c.nb_max + j) * kDG + tid] = to_elem<BF16>(y[tid]);
}

// ---- gate: query projection + scores + selection ----------------------------------------------

struct GateSmem {
    uint16_t kbuf[2][kChunkRows * kDG];  // kcomp rows, double-buffered (128 KB)
    uint16_t x[kMaxG * kHD];             // the group's pre-RoPE query heads (dtype bits)
    float part[(kSelThreads / 16) * kDG];
    float qg[kDG];
    float key[kMaxNB];                   // scores of the candidates, then probabilities
    unsigned char flags[kMaxNB];
    float red[32];
    int warp_tot[32];
};

__device__ void issue_chunk(uint16_t *dst, const uint16_t *src, int row0, int n_rows) {
    int rows = n_rows - row0;
    if (rows > kChunkRows) rows = kChunkRows;
    for (int i = threadIdx.x; i < rows * (kDG / 8); i += kSelThreads)
        cp_async16(dst + i * 8, src + (int64_t)row0 * kDG + i * 8);
    cp_async_commit();
}

// qg (shared, [128]) = x (shared, dtype bits) @ wq [n_in, 128] (bf16): thread (rg, cg) reads 16
// bytes (8 columns) of rows rg, rg + 32, ...; the first 16 rows' loads are issued before the
// caller's cp.async of x has landed (wait_x waits for it), 16 loads in flight at a time.
template <bool BF16>
__device__ void gate_matvec(float *qg, const uint16_t *x, const uint16_t *wq, int n_in,
                            float *part) {
    const int tid = threadIdx.x, cg = tid % 16, rg = tid / 16, ng = kSelThreads / 16;
    const uint4 *w4 = reinterpret_cast<const uint4 *>(wq);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint4 u[16];
#pragma unroll
    for (int i = 0; i < 16; i++) {
        int r = rg + i * ng;
        u[i] = r < n_in ? __ldg(w4 + (int64_t)r * (kDG / 8) + cg) : make_uint4(0, 0, 0, 0);
    }
    cp_async_wait2();  // x (the oldest group) has landed
    __syncthreads();
    for (int r0 = rg;; r0 += 16 * ng) {
#pragma unroll
        for (int i = 0; i < 16; i++) {
            int r = r0 + i * ng;
            float xr = r < n_in ? ld<BF16>(x, r) : 0.0f;
            uint32_t wv[4] = {u[i].x, u[i].y, u[i].z, u[i].w};
#pragma unroll
            for (int e = 0; e < 4; e++) {
                acc[2 * e] += xr * __uint_as_float(wv[e] << 16);
                acc[2 * e + 1] += xr * __uint_as_float(wv[e] & 0xffff0000u);
            }
        }
        if (r0 + 16 * ng >= n_in) break;
#pragma unroll
        for (int i = 0; i < 16; i++) {
            int r = r0 + 16 * ng + i * ng;
            u[i] = r < n_in ? __ldg(w4 + (int64_t)r * (kDG / 8) + cg) : make_uint4(0, 0, 0, 0);
        }
    }
    store_row_group_sums(qg, part, acc, rg, cg, ng, tid);
}

template <bool BF16>
__global__ void __launch_bounds__(kSelThreads, 1)
    gate_select_kernel(int32_t *idx, const uint16_t *q_nope, const uint16_t *kcomp,
                       const int32_t *cache_len, const uint16_t *wq, const float *qnorm,
                       SelectConfig c, RopeInv inv) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    GateSmem &sm = *reinterpret_cast<GateSmem *>(smem_raw);
    const int kvh = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int len = cache_len[b], G = c.G;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    int32_t *list = idx + pair * c.max_sel;
    if (len <= 0) {
        for (int i = tid; i < c.max_sel; i += kSelThreads) list[i] = -1;
        return;
    }
    const int n_cand = len / SEER_BLOCK, cur = (len - 1) / SEER_BLOCK;
    const uint16_t *kc = kcomp + pair * c.nb_max * kDG;
    for (int i = tid; i < G * kHD / 8; i += kSelThreads)  // x, then the first kcomp chunks
        cp_async16(sm.x + i * 8, q_nope + pair * G * kHD + i * 8);
    cp_async_commit();
    issue_chunk(sm.kbuf[0], kc, 0, n_cand);  // HBM reads overlap the query projection
    issue_chunk(sm.kbuf[1], kc, kChunkRows, n_cand);
    for (int j = tid; j <= cur; j += kSelThreads) sm.flags[j] = 0;
    gate_matvec<BF16>(sm.qg, sm.x, wq + (int64_t)kvh * G * kHD * kDG, G * kHD, sm.part);
    norm_rope(sm.qg, qnorm, len - 1, inv, sm.red);
    float q4[4];
    for (int e = 0; e < 4; e++) q4[e] = sm.qg[lane * 4 + e];
    const float inv_sqrt_dg = rsqrtf((float)kDG);
    for (int ch = 0; ch * kChunkRows < n_cand; ch++) {
        cp_async_wait1();
        __syncthreads();
        const uint16_t *buf = sm.kbuf[ch % 2];
        int rows = min(kChunkRows, n_cand - ch * kChunkRows);
        for (int r = warp; r < rows; r += kSelWarps) {
            uint2 u = *reinterpret_cast<const uint2 *>(buf + r * kDG + lane * 4);
            uint16_t e4[4] = {(uint16_t)(u.x & 0xffff), (uint16_t)(u.x >> 16),
                              (uint16_t)(u.y & 0xffff), (uint16_t)(u.y >> 16)};
            float s = 0;
            for (int e = 0; e < 4; e++) s += q4[e] * ld<BF16>(e4, e);
            s = warp_sum(s);
            if (lane == 0) sm.key[ch * kChunkRows + r] = s * inv_sqrt_dg;
        }
        __syncthreads();
        issue_chunk(sm.kbuf[ch % 2], kc, (ch + 2) * kChunkRows, n_cand);
    }
    const int k = c.budget / SEER_BLOCK;
    if (k > 0) {
        flag_topk(sm.key, n_cand, k, sm.flags);
    } else if (n_cand > 0) {
        float mx = -INFINITY, sum = 0;
        for (int j = tid; j < n_cand; j += kSelThreads) mx = fmaxf(mx, sm.key[j]);
        mx = block_max(mx, sm.red);
        for (int j = tid; j < n_cand; j += kSelThreads) sum += __expf(sm.key[j] - mx);
        sum = block_sum(sum, sm.red);
        for (int j = tid; j < n_cand; j += kSelThreads)
            if (__expf(sm.key[j] - mx) / sum > c.threshold) sm.flags[j] = 1;
    }
    __syncthreads();
    if (tid == 0) sm.flags[0] = 1, sm.flags[cur] = 1;
    __syncthreads();
    write_list(list, c.max_sel, sm.flags, cur + 1, sm.warp_tot);
}

// ---- oracle ----------------------------------------------------------------------------------

// ws[b, kvh, g, j] = (max logit, sum exp(logit - max)) over block j's valid tokens.
template <bool BF16>
__global__ void oracle_block_kernel(float *ws, const uint16_t *q, const uint16_t *k, int Tmax,
                                    const int32_t *cache_len, SelectConfig c) {
    __shared__ float logit[kMaxG][SEER_BLOCK];
    const int j = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const int len = cache_len[b], G = c.G, t0 = j * SEER_BLOCK;
    if (t0 >= len) return;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    const float scale = rsqrtf((float)kHD);
    for (int i = tid; i < G * SEER_BLOCK; i += blockDim.x) {
        int g = i / SEER_BLOCK, t = i % SEER_BLOCK;
        float x = -INFINITY;
        if (t0 + t < len) {
            const uint16_t *qr = q + (pair * G + g) * kHD, *kr = k + (pair * Tmax + t0 + t) * kHD;
            x = 0;
            for (int d = 0; d < kHD; d++) x += ld<BF16>(qr, d) * ld<BF16>(kr, d);
            x *= scale;
        }
        logit[g][t] = x;
    }
    __syncthreads();
    const int warp = tid / 32, lane = tid % 32;
    for (int g = warp; g < G; g += blockDim.x / 32) {
        float a = logit[g][lane], bb = logit[g][lane + 32];
        float mx = warp_max(fmaxf(a, bb));
        float se = warp_sum(__expf(a - mx) + __expf(bb - mx));
        if (lane == 0) {
            float *o = ws + ((pair * G + g) * c.nb_max + j) * 2;
            o[0] = mx, o[1] = se;
        }
    }
}

__global__ void __launch_bounds__(kSelThreads, 1)
    oracle_select_kernel(int32_t *idx, const float *ws, const int32_t *cache_len, SelectConfig c) {
    __shared__ float key[kMaxNB], red[32];
    __shared__ unsigned char flags[kMaxNB];
    __shared__ int warp_tot[32];
    const int kvh = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    const int nb = (cache_len[b] + SEER_BLOCK - 1) / SEER_BLOCK;
    for (int j = tid; j < nb; j += kSelThreads) key[j] = 0, flags[j] = 0;
    for (int g = 0; g < c.G; g++) {
        const float *w = ws + (pair * c.G + g) * c.nb_max * 2;
        float mx = -INFINITY, sum = 0;
        for (int j = tid; j < nb; j += kSelThreads) mx = fmaxf(mx, w[2 * j]);
        mx = block_max(mx, red);
        for (int j = tid; j < nb; j += kSelThreads) sum += w[2 * j + 1] * __expf(w[2 * j] - mx);
        sum = block_sum(sum, red);
        for (int j = tid; j < nb; j += kSelThreads)
            key[j] = fmaxf(key[j], __expf(w[2 * j] - mx) / sum);
    }
    float tot = 0;
    for (int j = tid; j < nb; j += kSelThreads) tot += key[j];
    tot = block_sum(tot, red);
    for (int j = tid; j < nb; j += kSelThreads) key[j] = key[j] / (tot + 1e-9f);
    __syncthreads();
    const int k = c.budget / SEER_BLOCK;
    if (k > 0) {
        flag_topk(key, nb, k, flags);
    } else {
        for (int j = tid; j < nb; j += kSelThreads)
            if (key[j] > c.threshold) flags[j] = 1;
        __syncthreads();
    }
    write_list(idx + pair * c.max_sel, c.max_sel, flags, nb, warp_tot);
}

// ---- Quest -----------------------------------------------------------------------------------

template <bool BF16>
__global__ void quest_update_kernel(uint16_t *kmax, uint16_t *kmin, const uint16_t *k_new,
                                    const int32_t *cache_len, SelectConfig c) {
    const int kvh = blockIdx.x, b = blockIdx.y, d = threadIdx.x;
    const int pos = cache_len[b] - 1, page = pos / SEER_BLOCK;
    const int64_t pair = (int64_t)b * c.HKV + kvh, off = (pair * c.nb_max + page) * kHD + d;
    uint16_t x = k_new[pair * kHD + d];
    if (pos % SEER_BLOCK == 0) {
        kmax[off] = x, kmin[off] = x;
        return;
    }
    float xf = ld<BF16>(&x, 0);
    if (xf > ld<BF16>(kmax, off)) kmax[off] = x;
    if (xf < ld<BF16>(kmin, off)) kmin[off] = x;
}

template <bool BF16>
__global__ void __launch_bounds__(kSelThreads, 1)
    quest_select_kernel(int32_t *idx, const uint16_t *q, const uint16_t *kmax,
                        const uint16_t *kmin, const int32_t *cache_len, SelectConfig c) {
    __shared__ float key[kMaxNB];
    __shared__ unsigned char flags[kMaxNB];
    __shared__ int warp_tot[32];
    const int kvh = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    const int np = (cache_len[b] + SEER_BLOCK - 1) / SEER_BLOCK;
    const int kq = max(3, c.budget / SEER_BLOCK);
    for (int j = tid; j < np; j += kSelThreads) flags[j] = 0;
    for (int g = 0; g < c.G; g++) {
        float q4[4];
        for (int e = 0; e < 4; e++) q4[e] = ld<BF16>(q, (pair * c.G + g) * kHD + lane * 4 + e);
        for (int j = warp; j < np; j += kSelWarps) {
            int64_t off = (pair * c.nb_max + j) * kHD + lane * 4;
            float s = 0;
            for (int e = 0; e < 4; e++)
                s += fmaxf(q4[e] * ld<BF16>(kmax, off + e), q4[e] * ld<BF16>(kmin, off + e));
            s = warp_sum(s);
            if (lane == 0) key[j] = s;
        }
        __syncthreads();
        flag_topk(key, np, kq, flags);
    }
    write_list(idx + pair * c.max_sel, c.max_sel, flags, np, warp_tot);
}

int check_shapes(const SelectConfig *c, SeerDType dtype, SeerErr *err) {
    if (c->HD != kHD || c->DG != kDG)
        return seer_fail(err, "select.cu: the GPU kernels need HD = DG = 128 (HD %d DG %d)", c->HD, c->DG);
    if (c->G < 1 || c->G > kMaxG)
        return seer_fail(err, "select.cu: the GPU kernels handle 1 <= G <= %d, got %d", kMaxG, c->G);
    if (c->nb_max > kMaxNB)
        return seer_fail(err, "select.cu: nb_max %d exceeds %d blocks (%d tokens)", c->nb_max,
                         kMaxNB, kMaxNB * SEER_BLOCK);
    if (dtype != SEER_BF16 && dtype != SEER_F16)
        return seer_fail(err, "select.cu: dtype must be BF16 or F16, got %s", dtype_name(dtype));
    return 0;
}

int launched(const char *what, SeerErr *err) {
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) return seer_fail(err, "select.cu: %s: %s", what, cudaGetErrorString(e));
    return 0;
}

}  // namespace

extern "C" int select_kcomp_update_cuda(void *kcomp, const void *kraw, const int32_t *block,
                                        const uint16_t *wk, const float *knorm, SeerDType dtype,
                                        const SelectConfig *c, void *stream, SeerErr *err) {
    if (check_shapes(c, dtype, err)) return -1;
    dim3 grid(c->HKV, c->B);
    cudaStream_t s = (cudaStream_t)stream;
    if (dtype == SEER_BF16)
        kcomp_update_kernel<true><<<grid, 256, 0, s>>>((uint16_t *)kcomp, (const uint16_t *)kraw,
                                                       block, wk, knorm, *c, rope_inv(c->rope_theta));
    else
        kcomp_update_kernel<false><<<grid, 256, 0, s>>>((uint16_t *)kcomp, (const uint16_t *)kraw,
                                                        block, wk, knorm, *c, rope_inv(c->rope_theta));
    return launched("kcomp_update_kernel", err);
}

extern "C" int select_gate_cuda(int32_t *idx, const void *q_nope, const void *kcomp,
                                const int32_t *cache_len, const uint16_t *wq, const float *qnorm,
                                SeerDType dtype, const SelectConfig *c, void *stream,
                                SeerErr *err) {
    if (check_shapes(c, dtype, err)) return -1;
    static int attr_done = 0;
    const int smem = (int)sizeof(GateSmem);
    if (!attr_done) {
        cudaFuncSetAttribute(gate_select_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        cudaFuncSetAttribute(gate_select_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
        attr_done = 1;
    }
    dim3 grid(c->HKV, c->B);
    cudaStream_t s = (cudaStream_t)stream;
    if (dtype == SEER_BF16)
        gate_select_kernel<true><<<grid, kSelThreads, smem, s>>>(
            idx, (const uint16_t *)q_nope, (const uint16_t *)kcomp, cache_len, wq, qnorm, *c,
            rope_inv(c->rope_theta));
    else
        gate_select_kernel<false><<<grid, kSelThreads, smem, s>>>(
            idx, (const uint16_t *)q_nope, (const uint16_t *)kcomp, cache_len, wq, qnorm, *c,
            rope_inv(c->rope_theta));
    return launched("gate_select_kernel", err);
}

extern "C" int select_oracle_cuda(int32_t *idx, float *ws, const void *q, const void *k, int Tmax,
                                  const int32_t *cache_len, SeerDType dtype,
                                  const SelectConfig *c, void *stream, SeerErr *err) {
    if (check_shapes(c, dtype, err)) return -1;
    cudaStream_t s = (cudaStream_t)stream;
    dim3 g1(c->nb_max, c->HKV, c->B);
    if (dtype == SEER_BF16)
        oracle_block_kernel<true><<<g1, 128, 0, s>>>(ws, (const uint16_t *)q, (const uint16_t *)k,
                                                     Tmax, cache_len, *c);
    else
        oracle_block_kernel<false><<<g1, 128, 0, s>>>(ws, (const uint16_t *)q, (const uint16_t *)k,
                                                      Tmax, cache_len, *c);
    if (launched("oracle_block_kernel", err)) return -1;
    oracle_select_kernel<<<dim3(c->HKV, c->B), kSelThreads, 0, s>>>(idx, ws, cache_len, *c);
    return launched("oracle_select_kernel", err);
}

extern "C" int select_quest_update_cuda(void *kmax, void *kmin, const void *k_new,
                                        const int32_t *cache_len, SeerDType dtype,
                                        const SelectConfig *c, void *stream, SeerErr *err) {
    if (check_shapes(c, dtype, err)) return -1;
    dim3 grid(c->HKV, c->B);
    cudaStream_t s = (cudaStream_t)stream;
    if (dtype == SEER_BF16)
        quest_update_kernel<true><<<grid, kHD, 0, s>>>((uint16_t *)kmax, (uint16_t *)kmin,
                                                      (const uint16_t *)k_new, cache_len, *c);
    else
        quest_update_kernel<false><<<grid, kHD, 0, s>>>((uint16_t *)kmax, (uint16_t *)kmin,
                                                       (const uint16_t *)k_new, cache_len, *c);
    return launched("quest_update_kernel", err);
}

extern "C" int select_quest_cuda(int32_t *idx, const void *q, const void *kmax, const void *kmin,
                                 const int32_t *cache_len, SeerDType dtype, const SelectConfig *c,
                                 void *stream, SeerErr *err) {
    if (check_shapes(c, dtype, err)) return -1;
    dim3 grid(c->HKV, c->B);
    cudaStream_t s = (cudaStream_t)stream;
    if (dtype == SEER_BF16)
        quest_select_kernel<true><<<grid, kSelThreads, 0, s>>>(
            idx, (const uint16_t *)q, (const uint16_t *)kmax, (const uint16_t *)kmin, cache_len, *c);
    else
        quest_select_kernel<false><<<grid, kSelThreads, 0, s>>>(
            idx, (const uint16_t *)q, (const uint16_t *)kmax, (const uint16_t *)kmin, cache_len, *c);
    return launched("quest_select_kernel", err);
}
