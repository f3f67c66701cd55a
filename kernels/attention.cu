// attention.cu: causal varlen flash attention forward over a packed chunk, bf16 in, fp32
// accumulation, bf16 out, with the gate target of SPEC.md section 2 emitted in the same pass.
// CUDA twin of attention_forward_cpu (attention.h); docs/KERNELS.md explains the design.
//
// Tiling. One CTA (2 warpgroups, 256 threads; one CTA per SM, persistent) takes a work item =
// (document, query tile, KV head g). Its 128 rows are (token, head) pairs of that KV group, row r =
// token_local * G + head_local ("packed GQA"): every row reads the same K/V, so a K/V tile in shared
// memory serves all G heads, and all G heads of a token sit in one CTA, which the target's group
// max needs. Key tiles are 64 keys = one gate block, aligned to the document start, so tile j is
// block j.
//
// Per warpgroup: 64 rows, Q in registers for the whole item. S = Q K^T and O += P V with wgmma
// (sm_90a), K and V read from shared memory in wgmma's 128-byte swizzled layout (V N-major), P from
// registers. Software pipeline: S_j is issued together with P_{j-1} V_{j-1}, and the online softmax
// of S_j (log2 domain) runs while the tensor cores do P_{j-1} V_{j-1}. K/V tiles go through
// ATT_STAGES shared-memory buffers by cp.async, ATT_STAGES - 2 tiles ahead, one CTA barrier per tile.
//
// Target. During the sweep each row stores the max scaled logit of each key tile (one float per
// row and block) into a per-CTA scratch slot [128, NB] in global memory (the grid is persistent,
// one slot per resident CTA, so scratch is n_slots * 128 * NB floats, not T * H * NB). At the end of
// the item the row's final max M and sum L are known: block-max probability exp2(ml - M) / L, max
// over the group's G rows of a token, strict block-causal mask, normalisation, and one coalesced
// write of the full target row (zeros included). The next item's first loads run meanwhile.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "kernels/attention.h"
}

#define ATT_WG 2                   // warpgroups (64 rows each) per CTA
#define ATT_THREADS (ATT_WG * 128)
#define ATT_WARPS (ATT_WG * 4)
#define ATT_STAGES 4               // K/V tile buffers (tile j+2 loads while j computes, j-1's V is read)
#define ATT_BM (ATT_WG * 64)       // rows (token, head) per CTA
#define ATT_BN 64                  // keys per tile = SEER_BLOCK

typedef struct {
    const __nv_bfloat16 *q;  // [T, ldq]: token t, head h at q + t*ldq + h*HD
    const __nv_bfloat16 *k;  // [T, ldk]: KV head g at k + t*ldk + g*HD
    const __nv_bfloat16 *v;  // [T, ldv]
    __nv_bfloat16 *out;      // [T, H, HD]
    float *target;           // [HKV, T, NB] or NULL
    float *scratch;          // [n_slots, ATT_BM, NB] (target only)
    const int4 *work;        // [n_work] (q0, d0, dlen, g * 256 + nq)
    int64_t ldq, ldk, ldv;
    int T, H, G, NB, n_work;
    float scale_log2;  // log2(e) / sqrt(HD)
} AttnParams;

// ---------------------------------------------------------------- PTX helpers

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

// 16-byte global -> shared copy; zero-fills when !valid (nothing is read then).
__device__ __forceinline__ void cp_async16(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_addr(dst)), "l"(src),
                 "r"(valid ? 16 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

__device__ __forceinline__ void ldsm_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

// 2^x on the special function unit (flush-to-zero; ex2(-inf) = 0).
__device__ __forceinline__ float fast_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 h = __floats2bfloat162_rn(lo, hi);
    return *(uint32_t *)&h;
}

// Element offset of 16-byte chunk c (of HD/8) of row `row` in a [ROWS, HD] bf16 tile, stored the
// way wgmma reads it with the 128-byte swizzle: HD/64 column blocks of [ROWS, 64] (128-byte rows,
// 8-row groups of 1024 bytes), chunk c%8 of a row at position (c%8) ^ (row%8).
template <int ROWS>
__device__ __forceinline__ int swz(int row, int c) {
    return (c >> 3) * ROWS * 64 + row * 64 + (((c & 7) ^ (row & 7)) << 3);
}

// wgmma shared-memory descriptor of a 128-byte-swizzled operand at p (whose 8-row group starts
// 1024-byte aligned): 8-row groups 1024 bytes apart (stride byte offset), lbo = leading byte offset
// (next 64-column block for N-major operands; unused for K-major ones).
__device__ __forceinline__ uint64_t wg_desc(const void *p, uint32_t lbo) {
    return (uint64_t)((smem_addr(p) & 0x3FFFF) >> 4) | (uint64_t)(lbo >> 4) << 16 |
           (uint64_t)(1024 >> 4) << 32 | 1ull << 62;
}

__device__ __forceinline__ void wg_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wg_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>  // at most N of the latest committed groups still running
__device__ __forceinline__ void wg_wait() {
    asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(N) : "memory");
}

// Pins registers in place around an asynchronous wgmma: the compiler may not move their reads or
// writes across this point.
template <int N>
__device__ __forceinline__ void reg_fence(float *r) {
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
__device__ __forceinline__ void reg_fence_u(uint32_t *r) {
#pragma unroll
    for (int i = 0; i < 4; i++) asm volatile("" : "+r"(r[i])::"memory");
}

#define WG_D32                                                                                      \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, " \
    "%21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define WG_OUT32(c, d)                                                                               \
    c(d[0]), c(d[1]), c(d[2]), c(d[3]), c(d[4]), c(d[5]), c(d[6]), c(d[7]), c(d[8]), c(d[9]),         \
        c(d[10]), c(d[11]), c(d[12]), c(d[13]), c(d[14]), c(d[15]), c(d[16]), c(d[17]), c(d[18]),     \
        c(d[19]), c(d[20]), c(d[21]), c(d[22]), c(d[23]), c(d[24]), c(d[25]), c(d[26]), c(d[27]),     \
        c(d[28]), c(d[29]), c(d[30]), c(d[31])

#define WG_D64 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, " \
    "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, " \
    "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, " \
    "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define WG_OUT64(c, d) \
    c(d[0]), c(d[1]), c(d[2]), c(d[3]), c(d[4]), c(d[5]), c(d[6]), c(d[7]), c(d[8]), c(d[9]), \
    c(d[10]), c(d[11]), c(d[12]), c(d[13]), c(d[14]), c(d[15]), c(d[16]), c(d[17]), c(d[18]), c(d[19]), \
    c(d[20]), c(d[21]), c(d[22]), c(d[23]), c(d[24]), c(d[25]), c(d[26]), c(d[27]), c(d[28]), c(d[29]), \
    c(d[30]), c(d[31]), c(d[32]), c(d[33]), c(d[34]), c(d[35]), c(d[36]), c(d[37]), c(d[38]), c(d[39]), \
    c(d[40]), c(d[41]), c(d[42]), c(d[43]), c(d[44]), c(d[45]), c(d[46]), c(d[47]), c(d[48]), c(d[49]), \
    c(d[50]), c(d[51]), c(d[52]), c(d[53]), c(d[54]), c(d[55]), c(d[56]), c(d[57]), c(d[58]), c(d[59]), \
    c(d[60]), c(d[61]), c(d[62]), c(d[63])

// d[64x128] += A[64x16] B[16x128]: A in registers, B N-major in shared memory (two 64-column
// blocks, lbo apart); fp32 d in the wgmma accumulator layout.
__device__ __forceinline__ void wgmma_rs_n128(float *d, const uint32_t a[4], uint64_t db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WG_D64
                 ", {%64, %65, %66, %67}, %68, 1, 1, 1, 1;\n"
                 : WG_OUT64("+f", d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

// d[64x64] (+)= A[64x16] B[16x64]: A in registers (mma fragment layout), B in shared memory
// (descriptor), K-major (TB 0) or N-major (TB 1); fp32 d in the wgmma accumulator layout. ACC false
// overwrites d.
template <bool ACC, int TB>
__device__ __forceinline__ void wgmma_rs(float *d, const uint32_t a[4], uint64_t db) {
    if (ACC)
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32
                     ", {%32, %33, %34, %35}, %36, 1, 1, 1, %37;\n"
                     : WG_OUT32("+f", d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(TB));
    else
        asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32
                     ", {%32, %33, %34, %35}, %36, 0, 1, 1, %37;\n"
                     : WG_OUT32("=f", d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(TB));
}

// ---------------------------------------------------------------- tile loads

// Rows [0, 64) of a K or V tile: document keys kp0 .. kp0+63 of KV head g; rows at or past the
// document end are zero-filled. Thread i copies chunk i % CH of rows i / CH + k * RPP: the swizzle
// (row & 7) is the same for all its rows, so addresses advance by constants.
template <int HD>
__device__ __forceinline__ void load_kv_tile(__nv_bfloat16 *dst, const __nv_bfloat16 *src,
                                             int64_t ld, int d0, int dlen, int kp0, int g) {
    constexpr int CH = HD / 8, RPP = ATT_THREADS / CH;
    const int row = threadIdx.x / CH, c = threadIdx.x % CH;
    const __nv_bfloat16 *s = src + (int64_t)(d0 + kp0 + row) * ld + (int64_t)g * HD + c * 8;
    __nv_bfloat16 *d = dst + swz<ATT_BN>(row, c);
#pragma unroll
    for (int k = 0; k < ATT_BN / RPP; k++) {
        const bool ok = kp0 + row + k * RPP < dlen;
        cp_async16(d + k * RPP * 64, ok ? s + k * RPP * ld : src, ok);
    }
}

// The CTA's query rows: row r = token (q0 + r/G), head g*G + r%G; rows past nq*G zero-filled.
template <int HD>
__device__ __forceinline__ void load_q_tile(__nv_bfloat16 *dst, const AttnParams &p, int q0, int nq,
                                            int g) {
    constexpr int CH = HD / 8;
    for (int i = threadIdx.x; i < ATT_BM * CH; i += ATT_THREADS) {
        int row = i / CH, c = i % CH;
        bool ok = row < nq * p.G;
        int64_t off = ok ? (int64_t)(q0 + row / p.G) * p.ldq + (int64_t)(g * p.G + row % p.G) * HD +
                               c * 8
                         : 0;
        cp_async16(dst + swz<ATT_BM>(row, c), p.q + off, ok);
    }
}

// ---------------------------------------------------------------- target epilogue

// For each token of the item: P[g, t, j] = max_h exp2(ml[h, j] - C[h]) over the group's rows, with
// C = M + log2(L) (row max and sum folded: exp2(ml - M) / L), j < floor(pos/64), normalised by
// (sum + 1e-9); the whole row of NB entries is written. The unnormalised maxima go to the target row
// first and are scaled in place (each lane rereads only what it wrote).
__device__ void target_epilogue(const AttnParams &p, const float *scr, const float *rowC, int q0,
                                int qpos0, int nq, int g) {
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, G = p.G, NB = p.NB;
    for (int tl = warp; tl < nq; tl += ATT_WARPS) {
        int nv = (qpos0 + tl) / ATT_BN;
        const float *s = scr + (int64_t)tl * G * NB, *c = rowC + tl * G;
        float *dst = p.target + ((int64_t)g * p.T + q0 + tl) * NB;
        float sum = 0.f;
#pragma unroll 4
        for (int j = lane; j < nv; j += 32) {
            float m = 0.f;
            for (int h = 0; h < G; h++) m = fmaxf(m, fast_exp2(s[(int64_t)h * NB + j] - c[h]));
            dst[j] = m;
            sum += m;
        }
        for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = 1.f / (sum + 1e-9f);
#pragma unroll 4
        for (int j = lane; j < NB; j += 32) dst[j] = j < nv ? dst[j] * inv : 0.f;
    }
}

// ---------------------------------------------------------------- the kernel

// Shared memory: Q [ATT_BM, HD], K and V [ATT_STAGES, ATT_BN, HD] (swizzled, 1024-byte aligned),
// M + log2(L) [ATT_BM] fp32, plus up to 1023 bytes to align the start.
static size_t attn_smem_bytes(int HD) {
    return (size_t)(ATT_BM + 2 * ATT_STAGES * ATT_BN) * HD * 2 + ATT_BM * sizeof(float) + 1024;
}

// Online softmax of one key tile for this thread's two rows: causal mask (diagonal tiles only),
// block max logit bm (for the target), running max m and sum l, P as bf16 A fragments pn (16 keys
// per k-step), and alpha, the factor O must be rescaled by. The 1/sqrt(HD) scale (log2
// domain) is folded into the exponent: p = exp2(s * scale - m), m the running max of s * scale.
// s is only read: its registers may still belong to a wgmma pipeline stage.
__device__ __forceinline__ void softmax_tile(const float s[32], uint32_t pn[4][4], float m[2], float l[2],
                                             float alpha[2], float bm[2], float scale_log2,
                                             const int qpos[2], int j, bool need_mask) {
    const int lane = threadIdx.x & 31, kp0 = j * ATT_BN;
    float tm[2] = {-INFINITY, -INFINITY}, x[32];
#pragma unroll
    for (int n = 0; n < 8; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            const bool masked = need_mask && kp0 + n * 8 + (lane & 3) * 2 + (e & 1) > qpos[e >> 1];
            x[4 * n + e] = masked ? -INFINITY : s[4 * n + e];
            tm[e >> 1] = fmaxf(tm[e >> 1], x[4 * n + e]);
        }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        tm[h] = fmaxf(tm[h], __shfl_xor_sync(0xffffffffu, tm[h], 1));
        tm[h] = fmaxf(tm[h], __shfl_xor_sync(0xffffffffu, tm[h], 2));
        bm[h] = tm[h] * scale_log2;
        const float mn = fmaxf(m[h], bm[h]);
        alpha[h] = fast_exp2(m[h] - mn);
        m[h] = mn;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < 8; n++) {
            x[4 * n + 2 * h] = fast_exp2(fmaf(x[4 * n + 2 * h], scale_log2, -mn));
            x[4 * n + 2 * h + 1] = fast_exp2(fmaf(x[4 * n + 2 * h + 1], scale_log2, -mn));
            sum += x[4 * n + 2 * h] + x[4 * n + 2 * h + 1];
        }
        l[h] = l[h] * alpha[h] + sum;
    }
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        pn[ks][0] = pack_bf16(x[8 * ks + 0], x[8 * ks + 1]);
        pn[ks][1] = pack_bf16(x[8 * ks + 2], x[8 * ks + 3]);
        pn[ks][2] = pack_bf16(x[8 * ks + 4], x[8 * ks + 5]);
        pn[ks][3] = pack_bf16(x[8 * ks + 6], x[8 * ks + 7]);
    }
}

// O += P V for one key tile: 4 k-steps of 16 keys, each one wgmma over all HD columns (N = HD),
// V N-major from shared memory (HD/64 column blocks ATT_BN * 128 bytes apart).
template <int HD>
__device__ __forceinline__ void issue_pv(float *o, uint32_t pa[4][4], const __nv_bfloat16 *vt) {
#pragma unroll
    for (int ks = 0; ks < 4; ks++) {
        const uint64_t db = wg_desc(vt + ks * 16 * 64, ATT_BN * 128);
        if (HD == 128) wgmma_rs_n128(o, pa[ks], db);
        else wgmma_rs<true, 1>(o, pa[ks], db);
    }
    wg_commit();
}

// Loop of one warpgroup over key tiles j: S_j = Q K_j^T is issued, then O += P_{j-1} V_{j-1}; the
// softmax of S_j runs while the tensor cores do P_{j-1} V_{j-1}; O is rescaled once that is done.
// Q stays in registers for the whole item. One CTA barrier per tile: it publishes tile j and frees
// the buffer of tile j-2, which tile j+2 is loaded into.
template <int HD>
__global__ void __launch_bounds__(ATT_THREADS, 1) attention_fwd_kernel(const AttnParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma: sm_90a only (the host refuses other devices)
    constexpr int KS = HD / 16;  // k-steps of S = Q K^T
    constexpr int NO = HD / 8;   // 8-column n-tiles of O
    constexpr int NS = ATT_STAGES;
    extern __shared__ unsigned char smem_raw[];
    unsigned char *base = smem_raw + ((1024 - (smem_addr(smem_raw) & 1023)) & 1023);
    __nv_bfloat16 *sq = (__nv_bfloat16 *)base;       // [NA, ATT_BM, 64] swizzled
    __nv_bfloat16 *sk = sq + ATT_BM * HD;            // [NS][NA, ATT_BN, 64]
    __nv_bfloat16 *sv = sk + NS * ATT_BN * HD;       // [NS][NA, ATT_BN, 64]
    float *rowC = (float *)(sv + NS * ATT_BN * HD);  // [ATT_BM] M + log2(L) per row (target)

    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, G = p.G;
    const int mi = lane >> 3, r8 = lane & 7;  // ldmatrix: matrix index, row within it
    const int w0 = warp * 16;                 // first row of this warp
    const int g0 = (warp >> 2) * 64;          // first row of this warpgroup
    float *scr = p.target ? p.scratch + (int64_t)blockIdx.x * ATT_BM * p.NB : nullptr;

    // Item w's first loads: Q and K/V tiles 0 .. NS-3, one cp.async group per tile (Q joins tile
    // 0's); empty groups past the item's tiles or past the last item keep the count fixed.
    auto load_item_head = [&](int w) {
        const int4 it = w < p.n_work ? p.work[w] : make_int4(0, 0, 0, 0);
        const int q0 = it.x, d0 = it.y, dlen = it.z, g = it.w >> 8, nq = it.w & 255;
        const int nkt = (q0 - d0 + nq + ATT_BN - 1) / ATT_BN;
        if (w < p.n_work) load_q_tile<HD>(sq, p, q0, nq, g);
#pragma unroll
        for (int t = 0; t < NS - 2; t++) {
            if (w < p.n_work && t < nkt) {
                load_kv_tile<HD>(sk + t * ATT_BN * HD, p.k, p.ldk, d0, dlen, t * ATT_BN, g);
                load_kv_tile<HD>(sv + t * ATT_BN * HD, p.v, p.ldv, d0, dlen, t * ATT_BN, g);
            }
            cp_async_commit();
        }
    };

    load_item_head(blockIdx.x);
    for (int w = blockIdx.x; w < p.n_work; w += gridDim.x) {
        const int4 it = p.work[w];
        const int q0 = it.x, d0 = it.y, dlen = it.z, g = it.w >> 8, nq = it.w & 255;
        const int qpos0 = q0 - d0, rows = nq * G;
        const int nkt = (qpos0 + nq + ATT_BN - 1) / ATT_BN;

        // This thread's rows: lane/4 and lane/4 + 8 of the warp's 16 (wgmma accumulator layout).
        // Padding rows take the last real row's query position, so no row is ever fully masked.
        const int row[2] = {w0 + (lane >> 2), w0 + 8 + (lane >> 2)};
        const int qpos[2] = {qpos0 + min(row[0], rows - 1) / G, qpos0 + min(row[1], rows - 1) / G};
        const bool wg_live = g0 < rows;  // warpgroup-uniform, as wgmma needs
        const int wq_lo = qpos0 + min(g0, rows - 1) / G;
        const int wq_hi = qpos0 + min(g0 + 63, rows - 1) / G;
        const int wg_nkt = wg_live ? wq_hi / ATT_BN + 1 : 0;  // tiles this warpgroup computes

        float o[HD / 2], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
        for (int i = 0; i < HD / 2; i++) o[i] = 0.f;
        uint32_t qf[KS][4], pa[4][4];  // Q fragments; P of the previous tile

        // Tile j has landed (every thread's copies), is visible to wgmma's async proxy, and all
        // warpgroups are past tile j-1, so tile j-2's buffer is free: load tile j+NS-2 into it.
        auto next_tile = [&](int j) {
            cp_async_wait<NS - 3>();
            asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
            __syncthreads();
            if (j + NS - 2 < nkt) {
                const int t = j + NS - 2, b = t % NS;
                load_kv_tile<HD>(sk + b * ATT_BN * HD, p.k, p.ldk, d0, dlen, t * ATT_BN, g);
                load_kv_tile<HD>(sv + b * ATT_BN * HD, p.v, p.ldv, d0, dlen, t * ATT_BN, g);
            }
            cp_async_commit();  // possibly empty: keeps NS-2 groups in flight
        };
        auto issue_s = [&](float s[32], int j) {
            const __nv_bfloat16 *kt = sk + (j % NS) * ATT_BN * HD;
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                const uint64_t db = wg_desc(kt + (ks >> 2) * ATT_BN * 64 + (ks & 3) * 16, 16);
                if (ks == 0) wgmma_rs<false, 0>(s, qf[ks], db);
                else wgmma_rs<true, 0>(s, qf[ks], db);
            }
            wg_commit();
        };
        auto fence_operands = [&]() {
            reg_fence<HD / 2>(o);
#pragma unroll
            for (int ks = 0; ks < 4; ks++) reg_fence_u(pa[ks]);
        };

        // The block max logits bm of tile bmj (if bmj >= 0) into the target scratch. Called after
        // the next tile's barrier: ptxas serialises the wgmma pipeline when this store sits
        // between a tile's wgmma wait and the next tile's wgmmas.
        float bm[2];
        int bmj = -1;
        auto store_block_max = [&]() {
            if (scr && bmj >= 0 && (lane & 3) == 0) {
#pragma unroll
                for (int h = 0; h < 2; h++)
                    if (row[h] < rows) scr[(int64_t)row[h] * p.NB + bmj] = bm[h];
            }
            bmj = -1;
        };

        // Tile 0: S_0 and its softmax (O is still zero).
        next_tile(0);
        float alpha[2];
        if (wg_nkt > 0) {
#pragma unroll
            for (int ks = 0; ks < KS; ks++)
                ldsm_x4(qf[ks], sq + swz<ATT_BM>(w0 + (mi & 1) * 8 + r8, ks * 2 + (mi >> 1)));
            float s[32];  // S[64 rows, 64 keys]: n-tile n (keys 8n..8n+7) in s[4n .. 4n+3]
            wg_fence();
            issue_s(s, 0);
            wg_wait<0>();
            reg_fence<32>(s);
            softmax_tile(s, pa, m, l, alpha, bm, p.scale_log2, qpos, 0, ATT_BN - 1 > wq_lo);
            bmj = 0;
        }
        for (int j = 1; j < nkt; j++) {
            next_tile(j);
            store_block_max();
            if (j < wg_nkt) {  // S_j, then P_{j-1} V_{j-1} while S_j's softmax runs
                float s[32];
                uint32_t pn[4][4];
                fence_operands();
                wg_fence();
                issue_s(s, j);
                issue_pv<HD>(o, pa, sv + ((j - 1) % NS) * ATT_BN * HD);
                wg_wait<1>();
                reg_fence<32>(s);
                softmax_tile(s, pn, m, l, alpha, bm, p.scale_log2, qpos, j, j * ATT_BN + ATT_BN - 1 > wq_lo);
                wg_wait<0>();  // P_{j-1} V_{j-1} done: O may be rescaled, pa reused
                fence_operands();
                bmj = j;
#pragma unroll
                for (int ks = 0; ks < 4; ks++)
#pragma unroll
                    for (int i = 0; i < 4; i++) pa[ks][i] = pn[ks][i];
                if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f))  // a row max moved
#pragma unroll
                    for (int n = 0; n < NO; n++) {
                        o[4 * n] *= alpha[0];
                        o[4 * n + 1] *= alpha[0];
                        o[4 * n + 2] *= alpha[1];
                        o[4 * n + 3] *= alpha[1];
                    }
            } else if (j == wg_nkt) {  // this warpgroup's last P V
                fence_operands();
                wg_fence();
                issue_pv<HD>(o, pa, sv + ((j - 1) % NS) * ATT_BN * HD);
                wg_wait<0>();
                fence_operands();
            }
        }
        store_block_max();
        if (wg_nkt == nkt) {  // P V of the chunk's last tile
            fence_operands();
            wg_fence();
            issue_pv<HD>(o, pa, sv + ((nkt - 1) % NS) * ATT_BN * HD);
            wg_wait<0>();
            fence_operands();
        }

        // Row sums across the quad, normalise, write bf16 out; row stats for the target.
        const int c0 = (lane & 3) * 2;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float lt = l[h];
            lt += __shfl_xor_sync(0xffffffffu, lt, 1);
            lt += __shfl_xor_sync(0xffffffffu, lt, 2);
            const int r = row[h];
            if (scr && (lane & 3) == 0) rowC[r] = m[h] + __log2f(lt);
            if (r >= rows) continue;
            const float inv = 1.f / lt;
            __nv_bfloat16 *dst = p.out + ((int64_t)(q0 + r / G) * p.H + g * G + r % G) * HD + c0;
#pragma unroll
            for (int n = 0; n < NO; n++)
                *(__nv_bfloat162 *)(dst + n * 8) =
                    __floats2bfloat162_rn(o[4 * n + 2 * h] * inv, o[4 * n + 2 * h + 1] * inv);
        }
        // All warps are done with Q and K/V (the next item's loads go there while the target
        // epilogue runs); scratch (global) and row stats are visible to the whole CTA. The next
        // item's first barrier keeps its scratch and row-stat writes after this epilogue.
        __syncthreads();
        load_item_head(w + gridDim.x);
        if (scr) target_epilogue(p, scr, rowC, q0, qpos0, nq, g);
    }
#endif
}

// ---------------------------------------------------------------- host side

// Resident CTAs of the persistent grid on the current device (one per SM). Fails on a
// device other than sm_90 (H100/H200): the kernel is built for sm_90a (wgmma).
static int attn_slots(int HD, SeerErr *err) {
    int dev, sms, major = 0, minor = 0, per_sm = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    if (e == cudaSuccess && (major != 9 || minor != 0))
        return seer_fail(err, "attention.cu: the attention kernel needs an sm_90 GPU (H100/H200), found sm_%d%d",
                         major, minor);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    const void *fn = HD == 64 ? (const void *)attention_fwd_kernel<64>
                              : (const void *)attention_fwd_kernel<128>;
    size_t smem = attn_smem_bytes(HD);
    if (e == cudaSuccess)
        e = cudaFuncSetAttribute(fn, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e == cudaSuccess)
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, fn, ATT_THREADS, smem);
    if (e != cudaSuccess || per_sm < 1) {
        seer_fail(err, "attention.cu: occupancy query for HD %d (smem %zu B): %s", HD, smem,
                  e != cudaSuccess ? cudaGetErrorString(e) : "kernel does not fit an SM");
        return -1;
    }
    return sms * per_sm;
}

static int attn_check_shape(const int *doc_lens, int n_docs, int T, int H, int HKV, int HD, int NB,
                            SeerErr *err) {
    if (HD != 64 && HD != 128) return seer_fail(err, "attention.cu: head dim %d (supported: 64, 128)", HD);
    if (HKV < 1 || H % HKV) return seer_fail(err, "attention.cu: %d query heads over %d KV heads", H, HKV);
    if (H / HKV > ATT_BM) return seer_fail(err, "attention.cu: group of %d heads > %d", H / HKV, ATT_BM);
    if (n_docs < 1 || T < 1) return seer_fail(err, "attention.cu: empty chunk (%d docs, T %d)", n_docs, T);
    int64_t sum = 0, longest = 0;
    for (int d = 0; d < n_docs; d++) {
        if (doc_lens[d] < 1) return seer_fail(err, "attention.cu: document %d has length %d", d, doc_lens[d]);
        sum += doc_lens[d];
        if (doc_lens[d] > longest) longest = doc_lens[d];
    }
    if (sum != T) return seer_fail(err, "attention.cu: doc_lens sum to %lld, T is %d", (long long)sum, T);
    if (NB < ceil_div((int)longest, SEER_BLOCK))
        return seer_fail(err, "attention.cu: NB %d < %d blocks of the longest document (%lld tokens)",
                         NB, ceil_div((int)longest, SEER_BLOCK), (long long)longest);
    return 0;
}

static int64_t attn_n_work(const int *doc_lens, int n_docs, int HKV, int tile) {
    int64_t n = 0;
    for (int d = 0; d < n_docs; d++) n += ceil_div(doc_lens[d], tile);
    return n * HKV;
}

int attention_cuda_plan_bytes(size_t *bytes, const int *doc_lens, int n_docs, int T, int H, int HKV,
                              int HD, int NB, int with_target, SeerErr *err) {
    if (attn_check_shape(doc_lens, n_docs, T, H, HKV, HD, NB, err)) return -1;
    int slots = attn_slots(HD, err);
    if (slots < 0) return -1;
    int64_t nw = attn_n_work(doc_lens, n_docs, HKV, ATT_BM / (H / HKV));
    size_t b = ((size_t)nw * sizeof(int4) + 255) / 256 * 256;
    if (with_target) b += (size_t)slots * ATT_BM * NB * sizeof(float);
    *bytes = b;
    return 0;
}

static int cmp_work_desc(const void *a, const void *b) {
    const int4 *x = (const int4 *)a, *y = (const int4 *)b;
    int kx = x->x - x->y + (x->w & 255), ky = y->x - y->y + (y->w & 255);  // keys the item reads
    if (kx != ky) return ky - kx;
    return x->x != y->x ? x->x - y->x : x->w - y->w;
}

int attention_cuda_plan_init(AttnCudaPlan *pl, void *workspace, size_t bytes, const int *doc_lens,
                             int n_docs, int T, int H, int HKV, int HD, int NB, int with_target,
                             cudaStream_t stream, SeerErr *err) {
    size_t need;
    if (attention_cuda_plan_bytes(&need, doc_lens, n_docs, T, H, HKV, HD, NB, with_target, err)) return -1;
    if (bytes < need)
        return seer_fail(err, "attention.cu: workspace of %zu bytes < %zu planned", bytes, need);
    int G = H / HKV, tile = ATT_BM / G, slots = attn_slots(HD, err);
    if (slots < 0) return -1;
    int64_t nw = attn_n_work(doc_lens, n_docs, HKV, tile);
    int4 *work = (int4 *)xmalloc((size_t)nw * sizeof(int4));  // [nw] host copy, heaviest first
    int64_t i = 0;
    for (int d = 0, d0 = 0; d < n_docs; d0 += doc_lens[d], d++)
        for (int s = 0; s < doc_lens[d]; s += tile)
            for (int g = 0; g < HKV; g++) {
                int nq = doc_lens[d] - s < tile ? doc_lens[d] - s : tile;
                work[i++] = make_int4(d0 + s, d0, doc_lens[d], g * 256 + nq);
            }
    qsort(work, (size_t)nw, sizeof(int4), cmp_work_desc);
    *pl = (AttnCudaPlan){T, H, HKV, HD, NB, (int)nw, slots, with_target, workspace, NULL};
    size_t wbytes = ((size_t)nw * sizeof(int4) + 255) / 256 * 256;
    if (with_target) pl->scratch = (float *)((char *)workspace + wbytes);
    cudaError_t e = cudaMemcpyAsync(workspace, work, (size_t)nw * sizeof(int4), cudaMemcpyHostToDevice, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);  // the host copy is freed next
    free(work);
    if (e != cudaSuccess)
        return seer_fail(err, "attention.cu: cudaMemcpyAsync of %lld work items: %s", (long long)nw,
                         cudaGetErrorString(e));
    return 0;
}

int attention_forward_cuda(const AttnCudaPlan *pl, uint16_t *out, float *target, const uint16_t *q,
                           int64_t ldq, const uint16_t *k, int64_t ldk, const uint16_t *v,
                           int64_t ldv, cudaStream_t stream, SeerErr *err) {
    if (target && !pl->with_target)
        return seer_fail(err, "attention.cu: target requested but the plan was made without one");
    AttnParams p;
    p.q = (const __nv_bfloat16 *)q;
    p.k = (const __nv_bfloat16 *)k;
    p.v = (const __nv_bfloat16 *)v;
    p.out = (__nv_bfloat16 *)out;
    p.target = target;
    p.scratch = pl->scratch;
    p.work = (const int4 *)pl->work;
    p.ldq = ldq;
    p.ldk = ldk;
    p.ldv = ldv;
    p.T = pl->T;
    p.H = pl->H;
    p.G = pl->H / pl->HKV;
    p.NB = pl->NB;
    p.n_work = pl->n_work;
    p.scale_log2 = (float)(1.4426950408889634 / sqrt((double)pl->HD));
    int grid = pl->n_work < pl->n_slots ? pl->n_work : pl->n_slots;
    size_t smem = attn_smem_bytes(pl->HD);
    if (pl->HD == 64)
        attention_fwd_kernel<64><<<grid, ATT_THREADS, smem, stream>>>(p);
    else
        attention_fwd_kernel<128><<<grid, ATT_THREADS, smem, stream>>>(p);
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess)
        return seer_fail(err, "attention.cu: attention_fwd_kernel<HD %d> grid %d smem %zu (T %d H %d HKV %d): %s",
                         pl->HD, grid, smem, pl->T, pl->H, pl->HKV, cudaGetErrorString(e));
    return 0;
}
