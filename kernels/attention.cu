// attention.cu: causal varlen flash attention forward over a packed chunk, bf16 in, fp32
// accumulation, bf16 out, with the gate target of SPEC.md section 2 emitted in the same pass.
// CUDA twin of attention_forward_cpu (attention.h); docs/KERNELS.md explains the design.
//
// Tiling. One CTA (one per SM, persistent) takes work items = (document, query tile, KV head g),
// heaviest first in rounds, each round's items of one KV head (attention_work_list: K/V stay in L2).
// Its 128 rows are (token, head) pairs of that KV group, row r = token_local * G + head_local
// ("packed GQA"): every row reads the same K/V, so a K/V tile in shared memory serves all G heads,
// and all G heads of a token sit in one CTA, which the target's group max needs. Key tiles are 128
// keys = two gate blocks, aligned to the document start, so tile j holds blocks 2j and 2j + 1.
//
// Warp specialisation (3 warpgroups, 384 threads). Warpgroup 0 gives its registers away
// (setmaxnreg): its thread 0 is the producer, loading Q and the K/V tiles with the tensor memory
// accelerator (TMA, 128-byte swizzle) into an ATT_STAGES-deep ring of mbarrier-guarded buffers;
// its warps 1-3 compute the target of the previous item while the consumers run the next one.
// Warpgroups 1 and 2 are the consumers, 64 rows each, Q in registers for the whole item: S = Q K^T
// and O += P V with wgmma (sm_90a), K and V from shared memory (V N-major), P from registers.
// Software pipeline per consumer: S_j is issued together with P_{j-1} V_{j-1}, and the online
// softmax of S_j (log2 domain, in place) runs while the tensor cores do P_{j-1} V_{j-1}; then O is
// rescaled and P_j packed over P_{j-1}. No CTA barrier: a consumer waits for a tile's "full"
// mbarrier and releases its buffer on the "empty" one.
//
// Target. During the sweep each row stores the max scaled logit of each gate block, as an fp16
// offset from R (the row's max over key tile 0; a tile's two blocks are one 32-bit pair), into a
// per-CTA scratch slot [NB / 2, 128] in global memory (two per resident CTA, used alternately by
// consecutive items, so n_slots * 2 * 128 * NB halves, not T * H * NB floats). At the end of the
// item the consumers publish each row's final max M and sum L (as M + log2 L - R); the target
// warps then form the
// block-max probability exp2(ml - M) / L, its max over the group's G rows of a token, the strict
// block-causal mask and the normalisation, and write each full target row (zeros included); then
// they drop the slot's L2 lines (dead data, never written back) and hand the slot back. Only the
// tokens at in-document positions >= the item's t0 get target rows (the trainer supervises the
// last half of each document); an item wholly before t0 stores no block maxima and its target
// warps only pass the slot back.
#include <cuda.h>  // CUtensorMap (types only; the encoder comes through the runtime's driver entry point)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

extern "C" {
#include "kernels/attention.h"
}

#define ATT_CWG 2                     // consumer warpgroups (64 rows each)
#define ATT_THREADS ((ATT_CWG + 1) * 128)  // + the producer / target warpgroup
#define ATT_STAGES 3                  // K/V tile buffers of 64 KB (2: 25% slower, H200 2026-11-28)
#define ATT_BM (ATT_CWG * 64)         // rows (token, head) per item
#define ATT_BN 128                    // keys per tile = 2 gate blocks (64: 2-5% slower, H200 2026-11-28)
#define ATT_NT (ATT_BN / 8)           // 8-key n-tiles of S per tile
#define ATT_BPT (ATT_BN / SEER_BLOCK) // gate blocks per tile (2: the scratch holds them as one fp16 pair)
#define ATT_TGT_WARPS 3               // warps 1-3 of warpgroup 0: target epilogue
// setmaxnreg moves registers within the CTA's launch allocation (168 per thread for 384 threads,
// from __launch_bounds__): the consumers' S (64) + O (64) + Q (32) + P (32) fragments need 224
// without spills, which leaves 56 to warpgroup 0 (enough for its target loop).
#define ATT_PRODUCER_REGS 56
#define ATT_CONSUMER_REGS 224
static_assert(ATT_BPT == 2, "the target scratch packs a key tile's two gate blocks into one fp16 pair");
static_assert(128 * ATT_PRODUCER_REGS + 128 * ATT_CWG * ATT_CONSUMER_REGS <= 168 * ATT_THREADS,
              "setmaxnreg budget exceeds the launch allocation (the kernel would hang)");

typedef struct {
    const __nv_bfloat16 *q;  // [T, ldq]: token t, head h at q + t*ldq + h*HD
    __nv_bfloat16 *out;      // [T, H, HD]
    float *target;           // [HKV, T, NB] or NULL
    uint32_t *scratch;       // [n_slots, 2, NBP, ATT_BM] (target only): per key tile (pair of gate
                             // blocks) and row, the two blocks' max logits minus the row's R as one
                             // fp16 pair; tile-major, so a tile's 128 pairs are one 512-byte write
    const int4 *work;        // [n_work] (q0, d0, t0, g * 256 + nq): AttnWorkItem
    int T, H, G, NB, NBP, n_work;  // NBP = ceil(NB / 2) key tiles
    float scale_log2;  // log2(e) / sqrt(HD)
} AttnParams;

// ---------------------------------------------------------------- PTX helpers

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
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

__device__ __forceinline__ uint32_t pack_f16(float lo, float hi) {
    __half2 h = __floats2half2_rn(lo, hi);
    return *(uint32_t *)&h;
}

__device__ __forceinline__ float2 unpack_f16(uint32_t u) { return __half22float2(*(__half2 *)&u); }

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

// d[64x128] (+)= A[64x16] B[16x128]: A in registers, B in shared memory, K-major (TB 0) or
// N-major (TB 1, two 64-column blocks lbo apart); fp32 d in the wgmma accumulator layout.
template <bool ACC, int TB>
__device__ __forceinline__ void wgmma_rs_n128(float *d, const uint32_t a[4], uint64_t db) {
    if (ACC)
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WG_D64
                     ", {%64, %65, %66, %67}, %68, 1, 1, 1, %69;\n"
                     : WG_OUT64("+f", d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(TB));
    else
        asm volatile("wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " WG_D64
                     ", {%64, %65, %66, %67}, %68, 0, 1, 1, %69;\n"
                     : WG_OUT64("=f", d)
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "n"(TB));
}

// d[64x64] += A[64x16] B[16x64]: A in registers (mma fragment layout), B N-major in shared memory
// (descriptor); fp32 d in the wgmma accumulator layout. O += P V for HD 64.
__device__ __forceinline__ void wgmma_rs_n64(float *d, const uint32_t a[4], uint64_t db) {
    asm volatile("wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " WG_D32
                 ", {%32, %33, %34, %35}, %36, 1, 1, 1, 1;\n"
                 : WG_OUT32("+f", d)
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db));
}

// ---------------------------------------------------------------- mbarriers and TMA

__device__ __forceinline__ void mbar_init(uint64_t *bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(count) : "memory");
}
// Arrives once (release: this thread's earlier memory accesses are visible to the waiters).
__device__ __forceinline__ void mbar_arrive(uint64_t *bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(smem_addr(bar)) : "memory");
}
// Arrives once and announces `bytes` that TMA copies will deliver to this phase.
__device__ __forceinline__ void mbar_arrive_tx(uint64_t *bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)),
                 "r"(bytes) : "memory");
}
// Waits until the phase of parity `parity` has completed (acquire). A fresh barrier counts its
// phase of parity 1 as completed, so a first wait on parity 1 returns at once.
__device__ __forceinline__ void mbar_wait(uint64_t *bar, uint32_t parity) {
    uint32_t done;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
                     "selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done)
                     : "r"(smem_addr(bar)), "r"(parity)
                     : "memory");
    } while (!done);
}

// TMA tile copies global -> shared (box and swizzle given by the tensor map), completing on bar.
// K/V tiles are read by every CTA working on the same KV head: `policy` (l2_evict_last) asks L2 to
// keep them over the streaming target and scratch traffic.
__device__ __forceinline__ void tma_load_2d(void *dst, const CUtensorMap *map, int c0, int c1, uint64_t *bar,
                                            uint64_t policy) {
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes.L2::cache_hint"
                 " [%0], [%1, {%2, %3}], [%4], %5;\n" ::"r"(smem_addr(dst)),
                 "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(smem_addr(bar)), "l"(policy)
                 : "memory");
}
__device__ __forceinline__ uint64_t l2_evict_last() {
    uint64_t policy;
    asm volatile("createpolicy.fractional.L2::evict_last.b64 %0, 1.0;\n" : "=l"(policy));
    return policy;
}
// A 32-bit store that L2 should keep (policy from l2_evict_last).
__device__ __forceinline__ void st_keep(uint32_t *p, uint32_t v, uint64_t policy) {
    asm volatile("st.global.L2::cache_hint.b32 [%0], %1, %2;\n" ::"l"(p), "r"(v), "l"(policy) : "memory");
}
__device__ __forceinline__ void tma_load_3d(void *dst, const CUtensorMap *map, int c0, int c1, int c2,
                                            uint64_t *bar) {
    asm volatile("cp.async.bulk.tensor.3d.shared::cluster.global.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4}], [%5];\n" ::"r"(smem_addr(dst)),
                 "l"((uint64_t)map), "r"(c0), "r"(c1), "r"(c2), "r"(smem_addr(bar))
                 : "memory");
}

// ---------------------------------------------------------------- shared memory

// Q [HD/64, ATT_BM, 64] and K, V [ATT_STAGES][HD/64, ATT_BN, 64] bf16, swizzled (1024-byte
// aligned), then M + log2(L) [2, ATT_BM] fp32 and the mbarriers.
template <int HD>
struct AttnSmem {
    __nv_bfloat16 *q, *k, *v;
    float *rowC;           // [2][ATT_BM]: per item parity, M + log2(L) - R of each row (target)
    uint64_t *full;        // [ATT_STAGES]: K/V tile landed (1 arrival + bytes)
    uint64_t *empty;       // [ATT_STAGES]: both consumers done with the buffer (one arrival per warp)
    uint64_t *q_full;      // Q of the item landed
    uint64_t *q_empty;     // Q copied to registers (every consumer thread)
    uint64_t *tgt_full;    // [2]: scratch and rowC of the item ready (every consumer thread)
    uint64_t *tgt_empty;   // [2]: target of the item written (every target thread)

    static constexpr int QB = ATT_BM * HD * 2, KVB = ATT_STAGES * ATT_BN * HD * 2;
    static constexpr size_t BYTES = QB + 2 * KVB + 2 * ATT_BM * 4 + (2 * ATT_STAGES + 6) * 8 + 1024;

    __device__ explicit AttnSmem(unsigned char *raw) {
        unsigned char *b = raw + ((1024 - (smem_addr(raw) & 1023)) & 1023);
        q = (__nv_bfloat16 *)b;
        k = (__nv_bfloat16 *)(b + QB);
        v = (__nv_bfloat16 *)(b + QB + KVB);
        rowC = (float *)(b + QB + 2 * KVB);
        full = (uint64_t *)(rowC + 2 * ATT_BM);
        empty = full + ATT_STAGES;
        q_full = empty + ATT_STAGES;
        q_empty = q_full + 1;
        tgt_full = q_empty + 1;
        tgt_empty = tgt_full + 2;
    }
};

// ---------------------------------------------------------------- target epilogue

// For each token of the item: P[g, t, j] = max_h exp2(ml[h, j] - C[h]) over the group's rows, with
// C = M + log2(L) (row max and sum folded: exp2(ml - M) / L), j < nv = floor(pos/64), normalised by
// (sum + 1e-9); the whole row of NB entries is written. The scratch holds d = ml - R (fp16) and
// the consumers publish C - R, so ml - C = d - (C - R). Run by warp `ew` of ATT_TGT_WARPS, one
// token at a time (from tl0 on), lane l taking key tiles (block pairs) l, l + 32, ...: a first pass
// reads the scratch once, writes the group maxima unnormalised into the target row and sums them;
// a second reads back its own entries (an L2 hit) and writes them normalised with streaming
// stores; then zeros for j >= nv. Rereading the scratch in the second pass instead was 1-2% slower
// (fp32 scratch; H200, 2026-11-28). Loops not unrolled (unrolled, they spilled in warpgroup 0's 56
// registers or, through ptxas's allocation, in the consumers').
// Group maxima of tile i (blocks 2i, 2i + 1): s = the token's first row in a [NBP, ATT_BM] scratch
// slot, c its rows' C - R. max_h exp2(x_h) = exp2(max_h x_h): one exp2 per (token, block), not G
// (the consumers' softmax keeps the special function unit busy). A token's G rows are one
// 16-byte aligned load each 4 heads when G is a multiple of 4.
__device__ __forceinline__ float2 target_tile_max(const uint32_t *s, const float *c, int G, int i) {
    const uint32_t *r = s + i * ATT_BM;
    float x0 = -INFINITY, x1 = -INFINITY;
    auto take = [&](uint32_t u, float ch) {
        const float2 d = unpack_f16(u);
        x0 = fmaxf(x0, d.x - ch);
        x1 = fmaxf(x1, d.y - ch);
    };
    if ((G & 3) == 0) {
#pragma unroll 1
        for (int h = 0; h < G; h += 4) {
            const uint4 v = *reinterpret_cast<const uint4 *>(r + h);
            const float4 cc = *reinterpret_cast<const float4 *>(c + h);
            take(v.x, cc.x), take(v.y, cc.y), take(v.z, cc.z), take(v.w, cc.w);
        }
    } else {
#pragma unroll 1
        for (int h = 0; h < G; h++) take(r[h], c[h]);
    }
    return make_float2(fast_exp2(x0), fast_exp2(x1));
}

__device__ void target_epilogue(const AttnParams &p, const uint32_t *scr, const float *rowC, int q0,
                                int qpos0, int tl0, int nq, int g, int ew) {
    const int lane = threadIdx.x & 31, G = p.G, NB = p.NB;
    for (int tl = tl0 + ew; tl < nq; tl += ATT_TGT_WARPS) {
        const int nv = (qpos0 + tl) / SEER_BLOCK;
        const uint32_t *s = scr + tl * G;
        const float *c = rowC + tl * G;
        float *dst = p.target + ((int64_t)g * p.T + q0 + tl) * NB;
        float sum = 0.f;
#pragma unroll 1
        for (int i = lane; 2 * i < nv; i += 32) {  // unnormalised, kept in L2 for the pass below
            const float2 x = target_tile_max(s, c, G, i);
            dst[2 * i] = x.x;
            sum += x.x;
            if (2 * i + 1 < nv) dst[2 * i + 1] = x.y, sum += x.y;
        }
        for (int o = 16; o; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        const float inv = 1.f / (sum + 1e-9f);
#pragma unroll 1
        for (int i = lane; 2 * i < nv; i += 32) {  // this lane's own writes
            __stcs(dst + 2 * i, dst[2 * i] * inv);
            if (2 * i + 1 < nv) __stcs(dst + 2 * i + 1, dst[2 * i + 1] * inv);
        }
        for (int j = nv + lane; j < NB; j += 32) __stcs(dst + j, 0.f);
    }
}

// Online softmax of one key tile for this thread's two rows, in place on s (S of the tile, whose
// wgmma is complete): causal mask (diagonal tiles only), block max logit bm[b][h] of each of the
// tile's gate blocks (for the target), running max m and sum l, and alpha, the factor O must be
// rescaled by; s becomes the unnormalised probabilities. The 1/sqrt(HD) scale (log2 domain) is
// folded into the exponent: p = exp2(s * scale - m), m the running max of s * scale.
// MASK is a template flag, not a runtime one: with the mask's per-element key positions in the
// common (off-diagonal) path, ptxas took P_{j-1}'s registers for them and so waited for
// P_{j-1} V_{j-1} before the softmax instead of after it (the SASS showed the wait 17
// instructions after S_j's, ahead of every exp2). BLOCKS: the target's block maxima are wanted
// (8 quad shuffles per tile); without, only the row maxima are reduced (4) and bm is not written.
template <bool MASK, bool BLOCKS>
__device__ __forceinline__ void softmax_tile(float s[4 * ATT_NT], float m[2], float l[2], float alpha[2],
                                             float bm[ATT_BPT][2], float scale_log2,
                                             const int qpos[2], int j) {
    constexpr int NPB = SEER_BLOCK / 8;  // n-tiles per gate block
    const int lane = threadIdx.x & 31;
    // Element e of n-tile n is key j * ATT_BN + n * 8 + (lane % 4) * 2 + e % 2 of the document:
    // masked when n * 8 + e % 2 (a constant) exceeds last[e / 2].
    const int last[2] = {qpos[0] - j * ATT_BN - (lane & 3) * 2, qpos[1] - j * ATT_BN - (lane & 3) * 2};
    float tm[ATT_BPT][2];
#pragma unroll
    for (int b = 0; b < ATT_BPT; b++) tm[b][0] = tm[b][1] = -INFINITY;
#pragma unroll
    for (int n = 0; n < ATT_NT; n++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            if (MASK && n * 8 + (e & 1) > last[e >> 1]) s[4 * n + e] = -INFINITY;
            tm[n / NPB][e >> 1] = fmaxf(tm[n / NPB][e >> 1], s[4 * n + e]);
        }
#pragma unroll
    for (int h = 0; h < 2; h++) {
        float t = -INFINITY;
#pragma unroll
        for (int b = 0; b < ATT_BPT; b++) {
            if (!BLOCKS) {  // max(x) * scale = max(x * scale): the scale is positive
                t = fmaxf(t, tm[b][h]);
                continue;
            }
            tm[b][h] = fmaxf(tm[b][h], __shfl_xor_sync(0xffffffffu, tm[b][h], 1));
            tm[b][h] = fmaxf(tm[b][h], __shfl_xor_sync(0xffffffffu, tm[b][h], 2));
            bm[b][h] = tm[b][h] * scale_log2;
            t = fmaxf(t, bm[b][h]);
        }
        if (!BLOCKS) {
            t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, 1));
            t = fmaxf(t, __shfl_xor_sync(0xffffffffu, t, 2));
            t *= scale_log2;
        }
        const float mn = fmaxf(m[h], t);
        alpha[h] = fast_exp2(m[h] - mn);
        m[h] = mn;
        float sum = 0.f;
#pragma unroll
        for (int n = 0; n < ATT_NT; n++) {
            s[4 * n + 2 * h] = fast_exp2(fmaf(s[4 * n + 2 * h], scale_log2, -mn));
            s[4 * n + 2 * h + 1] = fast_exp2(fmaf(s[4 * n + 2 * h + 1], scale_log2, -mn));
            sum += s[4 * n + 2 * h] + s[4 * n + 2 * h + 1];
        }
        l[h] = l[h] * alpha[h] + sum;
    }
}

// The tile's two block max logits of each of this thread's rows as one fp16 pair of offsets from
// the row's R (the target scratch's format).
__device__ __forceinline__ void pack_block_max(uint32_t bmh[2], const float bm[ATT_BPT][2], const float R[2]) {
#pragma unroll
    for (int h = 0; h < 2; h++) bmh[h] = pack_f16(bm[0][h] - R[h], bm[1][h] - R[h]);
}

// P as bf16 A fragments (16 keys per k-step) from the probabilities softmax_tile left in s.
__device__ __forceinline__ void pack_p(const float s[4 * ATT_NT], uint32_t pf[ATT_BN / 16][4]) {
#pragma unroll
    for (int ks = 0; ks < ATT_BN / 16; ks++) {
        pf[ks][0] = pack_bf16(s[8 * ks + 0], s[8 * ks + 1]);
        pf[ks][1] = pack_bf16(s[8 * ks + 2], s[8 * ks + 3]);
        pf[ks][2] = pack_bf16(s[8 * ks + 4], s[8 * ks + 5]);
        pf[ks][3] = pack_bf16(s[8 * ks + 6], s[8 * ks + 7]);
    }
}

// O += P V for one key tile: ATT_BN / 16 k-steps of 16 keys, each one wgmma over all HD columns
// (N = HD), V N-major from shared memory (HD/64 column blocks ATT_BN * 128 bytes apart).
template <int HD>
__device__ __forceinline__ void issue_pv(float *o, uint32_t pa[ATT_BN / 16][4], const __nv_bfloat16 *vt) {
#pragma unroll
    for (int ks = 0; ks < ATT_BN / 16; ks++) {
        const uint64_t db = wg_desc(vt + ks * 16 * 64, ATT_BN * 128);
        if (HD == 128) wgmma_rs_n128<true, 1>(o, pa[ks], db);
        else wgmma_rs_n64(o, pa[ks], db);
    }
    wg_commit();
}

// ---------------------------------------------------------------- the kernel's three roles

// The item of this CTA's round k (-1 when there is none): rounds alternate direction over the list,
// which is sorted heaviest first, so every CTA gets a similar total (with plain round-robin CTA 0
// would take the heaviest item of every round). The producer, consumers and target warps all walk
// the same sequence.
__device__ __forceinline__ int round_item(int k, int n_work) {
    const int w = k * gridDim.x + ((k & 1) ? gridDim.x - 1 - blockIdx.x : blockIdx.x);
    return w < n_work ? w : -1;
}

// Some token of item it is at or past its t0, so the item has target rows.
__device__ __forceinline__ bool item_has_target(const int4 &it) { return it.x - it.y + (it.w & 255) > it.z; }

// Producer (one thread): for each of the CTA's items, Q once it is free, then the item's K/V tiles
// into the ring. Ring use u (counted across items) goes to buffer u % ATT_STAGES and waits for
// that buffer's previous use to be released.
template <int HD>
__device__ void producer_loop(const AttnParams &p, const AttnSmem<HD> sm, const CUtensorMap *tq,
                              const CUtensorMap *tk, const CUtensorMap *tv) {
    constexpr int NA = HD / 64;  // 64-column blocks
    const int G = p.G, qtok = ATT_BM / G;
    const uint32_t q_bytes = NA * qtok * G * 128, kv_bytes = 2 * NA * ATT_BN * 128;
    const uint64_t keep = l2_evict_last();
    uint32_t u = 0, n = 0;  // ring uses, items
    for (int k = 0, w; (w = round_item(k, p.n_work)) >= 0; k++, n++) {
        const int4 it = p.work[w];
        const int q0 = it.x, d0 = it.y, g = it.w >> 8, nq = it.w & 255;
        const int nkt = (q0 - d0 + nq + ATT_BN - 1) / ATT_BN;
        mbar_wait(sm.q_empty, (n & 1) ^ 1);
        mbar_arrive_tx(sm.q_full, q_bytes);
#pragma unroll
        for (int a = 0; a < NA; a++) tma_load_3d(sm.q + a * ATT_BM * 64, tq, a * 64, g * G, q0, sm.q_full);
        for (int j = 0; j < nkt; j++, u++) {
            const int b = u % ATT_STAGES;
            mbar_wait(&sm.empty[b], ((u / ATT_STAGES) & 1) ^ 1);
            mbar_arrive_tx(&sm.full[b], kv_bytes);
#pragma unroll
            for (int a = 0; a < NA; a++) {
                const int off = b * ATT_BN * HD + a * ATT_BN * 64;
                tma_load_2d(sm.k + off, tk, g * HD + a * 64, d0 + j * ATT_BN, &sm.full[b], keep);
                tma_load_2d(sm.v + off, tv, g * HD + a * 64, d0 + j * ATT_BN, &sm.full[b], keep);
            }
        }
    }
}

// The first ntiles tiles of a scratch slot are dead once every target warp has read them: drop their
// L2 lines without writing them back (0.5 GB of DRAM writes per 8B 32k call otherwise), which also
// frees the room for K/V sooner. Named barrier 1 over the target threads orders all their reads first.
__device__ __forceinline__ void discard_slot(const uint32_t *scr, int ntiles) {
    asm volatile("bar.sync 1, %0;\n" ::"n"(ATT_TGT_WARPS * 32) : "memory");
    if ((uintptr_t)scr & 127) return;  // lines must be whole (the workspace is 256-byte aligned)
    const int lines = ntiles * ATT_BM * 4 / 128;
    for (int i = threadIdx.x - 32; i < lines; i += ATT_TGT_WARPS * 32)
        asm volatile("discard.global.L2 [%0], 128;\n" ::"l"(scr + i * 32) : "memory");
    __threadfence_block();  // the discards before the slot is handed back (and written again)
}

// Target warps (1-3 of warpgroup 0): the target of item n once the consumers have published its
// scratch slot n % 2 and row statistics; the slot is then handed back.
__device__ void target_loop(const AttnParams &p, float *rowC, uint64_t *tgt_full, uint64_t *tgt_empty) {
    const int ew = (threadIdx.x >> 5) - 1;
    uint32_t n = 0;
    for (int k = 0, w; (w = round_item(k, p.n_work)) >= 0; k++, n++) {
        const int4 it = p.work[w];
        const int q0 = it.x, qpos0 = it.x - it.y, t0 = it.z, g = it.w >> 8, nq = it.w & 255, s = n & 1;
        mbar_wait(&tgt_full[s], (n >> 1) & 1);
        if (item_has_target(it)) {
            const uint32_t *scr = p.scratch + ((int64_t)blockIdx.x * 2 + s) * ATT_BM * p.NBP;
            target_epilogue(p, scr, rowC + s * ATT_BM, q0, qpos0, max(t0 - qpos0, 0), nq, g, ew);
            discard_slot(scr, (qpos0 + nq + ATT_BN - 1) / ATT_BN);
        }
        mbar_arrive(&tgt_empty[s]);
    }
}

// Consumer warpgroup cw (0 or 1; rows 64 cw .. 64 cw + 63): loop over key tiles j: S_j = Q K_j^T
// is issued, then O += P_{j-1} V_{j-1}; the softmax of S_j runs while the tensor cores do
// P_{j-1} V_{j-1}; O is rescaled once that is done, and buffer j-1 released. Q stays in registers
// for the whole item.
template <int HD, bool TARGET>
__device__ __forceinline__ void consumer_loop(const AttnParams &p, const AttnSmem<HD> sm) {
    constexpr int KS = HD / 16;  // k-steps of S = Q K^T
    constexpr int NO = HD / 8;   // 8-column n-tiles of O
    constexpr int NS = ATT_STAGES;
    const int ct = threadIdx.x - 128, warp = ct >> 5, lane = threadIdx.x & 31, G = p.G;
    const int mi = lane >> 3, r8 = lane & 7;  // ldmatrix: matrix index, row within it
    const int w0 = warp * 16;                 // first row of this warp
    const int g0 = (warp >> 2) * 64;          // first row of this warpgroup
    uint32_t u = 0, n = 0;                    // ring uses, items (as the producer counts them)
    for (int k = 0, w; (w = round_item(k, p.n_work)) >= 0; k++, n++) {
        const int4 it = p.work[w];
        const int q0 = it.x, d0 = it.y, g = it.w >> 8, nq = it.w & 255, s = n & 1;
        const int qpos0 = q0 - d0, rows = nq * G;
        const int nkt = (qpos0 + nq + ATT_BN - 1) / ATT_BN;
        // Every item passes through the slot hand-over; only an item with target rows stores block
        // maxima. (Handing slots over for target items only, with slot and phase precomputed in the
        // work list, made ptxas spill here and was 2-4% slower: H200, 2026-11-28.)
        uint32_t *scr = TARGET ? p.scratch + ((int64_t)blockIdx.x * 2 + s) * ATT_BM * p.NBP : nullptr;
        const bool keep_max = TARGET && item_has_target(it);
        if (scr) mbar_wait(&sm.tgt_empty[s], ((n >> 1) & 1) ^ 1);  // item n-2's target is written

        // This thread's rows: lane/4 and lane/4 + 8 of the warp's 16 (wgmma accumulator layout).
        // Padding rows take the last real row's query position, so no row is ever fully masked
        // on tile 0 (a warpgroup's tiles past its last query are fully masked and change nothing).
        const int row[2] = {w0 + (lane >> 2), w0 + 8 + (lane >> 2)};
        const int qpos[2] = {qpos0 + min(row[0], rows - 1) / G, qpos0 + min(row[1], rows - 1) / G};
        const int wq_lo = qpos0 + min(g0, rows - 1) / G;

        float o[HD / 2], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};
#pragma unroll
        for (int i = 0; i < HD / 2; i++) o[i] = 0.f;
        constexpr int KP = ATT_BN / 16;  // k-steps of O += P V
        uint32_t qf[KS][4], pf[KP][4];  // Q fragments; P of the previous tile

        auto wait_tile = [&](int j) { mbar_wait(&sm.full[(u + j) % NS], ((u + j) / NS) & 1); };
        auto release_tile = [&](int j) {  // this warp's wgmmas reading buffer j are complete
            if (lane == 0) mbar_arrive(&sm.empty[(u + j) % NS]);
        };
        auto issue_s = [&](float sc[4 * ATT_NT], int j) {
            const __nv_bfloat16 *kt = sm.k + ((u + j) % NS) * ATT_BN * HD;
#pragma unroll
            for (int ks = 0; ks < KS; ks++) {
                const uint64_t db = wg_desc(kt + (ks >> 2) * ATT_BN * 64 + (ks & 3) * 16, 16);
                if (ks == 0) wgmma_rs_n128<false, 0>(sc, qf[ks], db);
                else wgmma_rs_n128<true, 0>(sc, qf[ks], db);
            }
            wg_commit();
        };
        auto v_tile = [&](int j) { return sm.v + ((u + j) % NS) * ATT_BN * HD; };
        auto fence_operands = [&]() {
            reg_fence<HD / 2>(o);
#pragma unroll
            for (int ks = 0; ks < KP; ks++) reg_fence_u(pf[ks]);
        };

        // The block max logits of tile bmj (if bmj >= 0) into the target scratch, as fp16 offsets
        // from R, the row's max logit over tile 0 (known before the first store): bmh[h] holds
        // both blocks of row h. fp32 maxima (twice the bytes) were 2% slower on the target (H200,
        // 2026-11-28); the offsets lose at most |ml - R| * 2^-11 (a relative error of the target of
        // |ml - R| * 3.4e-4). Called after the next tile's wait: ptxas serialises the wgmma
        // pipeline when this store sits between a tile's wgmma wait and the next tile's wgmmas.
        // The stores ask L2 to keep the lines (evict_last, like K/V) until the target warps read
        // them up to an item later: stored plainly, they were evicted by then and the K/V hit rate
        // fell with them (8B target 16.8 -> 15.6 ms, 14B 23.0 -> 20.5; H200, 2026-11-28). The
        // policy is made at each use, not held across the loop, which cost plain attention 3% in
        // registers.
        float bm[ATT_BPT][2], R[2];
        uint32_t bmh[2];
        int bmj = -1;
        auto store_block_max = [&]() {
            if (keep_max && bmj >= 0 && (lane & 3) == 0) {
                const uint64_t keep = l2_evict_last();
#pragma unroll
                for (int h = 0; h < 2; h++)
                    if (row[h] < rows) st_keep(scr + bmj * ATT_BM + row[h], bmh[h], keep);
            }
            bmj = -1;
        };

        // Q into registers, then its buffer goes back to the producer.
        mbar_wait(sm.q_full, n & 1);
#pragma unroll
        for (int ks = 0; ks < KS; ks++)
            ldsm_x4(qf[ks], sm.q + swz<ATT_BM>(w0 + (mi & 1) * 8 + r8, ks * 2 + (mi >> 1)));
        mbar_arrive(sm.q_empty);

        // Tile 0: S_0 and its softmax (O is still zero).
        float alpha[2];
        {
            float sc[4 * ATT_NT];  // S[64 rows, ATT_BN keys]: n-tile n (keys 8n..8n+7) in sc[4n .. 4n+3]
            wait_tile(0);
            wg_fence();
            issue_s(sc, 0);
            wg_wait<0>();
            reg_fence<4 * ATT_NT>(sc);
            softmax_tile<true, TARGET>(sc, m, l, alpha, bm, p.scale_log2, qpos, 0);
            R[0] = m[0], R[1] = m[1];
            if (TARGET) pack_block_max(bmh, bm, R);
            pack_p(sc, pf);
            bmj = 0;
        }
        // Tile j >= 1: S_j, then P_{j-1} V_{j-1}; the softmax of S_j (in place) runs while the tensor
        // cores do P_{j-1} V_{j-1}; once that is done, O is rescaled and P_j packed over P_{j-1}.
        for (int j = 1; j < nkt; j++) {
            wait_tile(j);
            store_block_max();
            float sc[4 * ATT_NT];
            fence_operands();
            wg_fence();
            issue_s(sc, j);
            issue_pv<HD>(o, pf, v_tile(j - 1));
            wg_wait<1>();
            reg_fence<4 * ATT_NT>(sc);
            if (j * ATT_BN + ATT_BN - 1 > wq_lo) {  // a diagonal tile: some key lies past some row's query
                wg_wait<0>();  // (1-2 tiles per item) fewer spills than overlapping the masked softmax
                softmax_tile<true, TARGET>(sc, m, l, alpha, bm, p.scale_log2, qpos, j);
            } else
                softmax_tile<false, TARGET>(sc, m, l, alpha, bm, p.scale_log2, qpos, j);
            if (TARGET) pack_block_max(bmh, bm, R);
            wg_wait<0>();  // P_{j-1} V_{j-1} done: O may be rescaled, pf reused, buffer j-1 freed
            fence_operands();
            release_tile(j - 1);
            bmj = j;
            if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f))  // a row max moved
#pragma unroll
                for (int c = 0; c < NO; c++) {
                    o[4 * c] *= alpha[0];
                    o[4 * c + 1] *= alpha[0];
                    o[4 * c + 2] *= alpha[1];
                    o[4 * c + 3] *= alpha[1];
                }
            pack_p(sc, pf);
        }
        // P V of the item's last tile.
        store_block_max();
        fence_operands();
        wg_fence();
        issue_pv<HD>(o, pf, v_tile(nkt - 1));
        wg_wait<0>();
        fence_operands();
        release_tile(nkt - 1);
        u += nkt;

        // Row sums across the quad, normalise, write bf16 out; row stats for the target.
        const int c0 = (lane & 3) * 2;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            float lt = l[h];
            lt += __shfl_xor_sync(0xffffffffu, lt, 1);
            lt += __shfl_xor_sync(0xffffffffu, lt, 2);
            const int r = row[h];
            if (scr && (lane & 3) == 0) sm.rowC[s * ATT_BM + r] = m[h] + __log2f(lt) - R[h];
            if (r >= rows) continue;
            const float inv = 1.f / lt;
            __nv_bfloat16 *dst = p.out + ((int64_t)(q0 + r / G) * p.H + g * G + r % G) * HD + c0;
#pragma unroll
            for (int c = 0; c < NO; c++)
                *(__nv_bfloat162 *)(dst + c * 8) =
                    __floats2bfloat162_rn(o[4 * c + 2 * h] * inv, o[4 * c + 2 * h + 1] * inv);
        }
        if (scr) mbar_arrive(&sm.tgt_full[s]);  // scratch slot s and rowC[s] are complete
    }
}

// Barrier counts: full 1 (+ bytes), empty 8 (consumer warps), q_full 1 (+ bytes), q_empty 256
// (consumer threads), tgt_full 256, tgt_empty 96 (target threads). Q's buffer is zeroed once so the
// rows past G * (ATT_BM / G) that TMA never writes (G not a power of two) hold no stale bits.
// TARGET is a template flag: the plain kernel has no target code at all (with the target's
// stores only skipped at run time, plain attention was 2% slower; H200, 2026-11-28).
template <int HD, bool TARGET>
__global__ void __launch_bounds__(ATT_THREADS, 1)
    attention_fwd_kernel(const __grid_constant__ AttnParams p, const __grid_constant__ CUtensorMap tq,
                         const __grid_constant__ CUtensorMap tk, const __grid_constant__ CUtensorMap tv) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)  // wgmma, setmaxnreg: sm_90a only (the host refuses other devices)
    extern __shared__ unsigned char smem_raw[];
    const AttnSmem<HD> sm(smem_raw);
    if (threadIdx.x == 0) {
        for (int b = 0; b < ATT_STAGES; b++) {
            mbar_init(&sm.full[b], 1);
            mbar_init(&sm.empty[b], ATT_CWG * 4);
        }
        mbar_init(sm.q_full, 1);
        mbar_init(sm.q_empty, ATT_CWG * 128);
        for (int s = 0; s < 2; s++) {
            mbar_init(&sm.tgt_full[s], ATT_CWG * 128);
            mbar_init(&sm.tgt_empty[s], ATT_TGT_WARPS * 32);
        }
        asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    }
    for (int i = threadIdx.x; i < ATT_BM * HD / 8; i += ATT_THREADS) ((int4 *)sm.q)[i] = make_int4(0, 0, 0, 0);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // zeros before TMA's writes
    __syncthreads();
    if (threadIdx.x < 128) {
        asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(ATT_PRODUCER_REGS));
        if (threadIdx.x == 0) producer_loop<HD>(p, sm, &tq, &tk, &tv);
        else if (TARGET && threadIdx.x >= 32) target_loop(p, sm.rowC, sm.tgt_full, sm.tgt_empty);
    } else {
        asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(ATT_CONSUMER_REGS));
        consumer_loop<HD, TARGET>(p, sm);
    }
#endif
}

// ---------------------------------------------------------------- host side

static const void *attn_kernel(int HD, bool target) {
    if (HD == 64)
        return target ? (const void *)attention_fwd_kernel<64, true> : (const void *)attention_fwd_kernel<64, false>;
    return target ? (const void *)attention_fwd_kernel<128, true> : (const void *)attention_fwd_kernel<128, false>;
}

// Resident CTAs of the persistent grid on the current device (one per SM), worked out once per
// device and head dim (the shared-memory attribute is set then; a plan is made for every chunk).
// Fails on a device other than sm_90 (H100/H200): the kernel is built for sm_90a (wgmma).
static int attn_slots(int HD, SeerErr *err) {
    static int known[64][2];  // [device][HD == 128]: slots, 0 until worked out
    int dev = 0, sms, major = 0, minor = 0, per_sm = 0;
    cudaError_t e = cudaGetDevice(&dev);
    int *memo = e == cudaSuccess && dev >= 0 && dev < 64 ? &known[dev][HD == 128] : NULL;
    if (memo && *memo) return *memo;
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev);
    if (e == cudaSuccess && (major != 9 || minor != 0))
        return seer_fail(err, "attention.cu: the attention kernel needs an sm_90 GPU (H100/H200), found sm_%d%d",
                         major, minor);
    if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev);
    size_t smem = HD == 64 ? AttnSmem<64>::BYTES : AttnSmem<128>::BYTES;
    for (int target = 0; target < 2 && e == cudaSuccess; target++)
        e = cudaFuncSetAttribute(attn_kernel(HD, target), cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem);
    if (e == cudaSuccess)  // both variants have the same registers and shared memory
        e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, attn_kernel(HD, true), ATT_THREADS, smem);
    if (e != cudaSuccess || per_sm < 1) {
        seer_fail(err, "attention.cu: occupancy query for HD %d (smem %zu B): %s", HD, smem,
                  e != cudaSuccess ? cudaGetErrorString(e) : "kernel does not fit an SM");
        return -1;
    }
    if (memo) *memo = sms * per_sm;
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

// The plan's workspace: the work list (rounded to 256 B), then, with the target, the scratch of
// two slots per resident CTA.
typedef struct {
    int64_t n_work;     // work items
    int slots;          // resident CTAs (one per SM)
    size_t work_bytes;  // offset of the scratch
    size_t bytes;       // whole workspace
} AttnLayout;

static int attn_plan_layout(AttnLayout *l, const int *doc_lens, int n_docs, int T, int H, int HKV, int HD,
                            int NB, int with_target, SeerErr *err) {
    if (attn_check_shape(doc_lens, n_docs, T, H, HKV, HD, NB, err)) return -1;
    l->slots = attn_slots(HD, err);
    if (l->slots < 0) return -1;
    l->n_work = attention_work_count(doc_lens, n_docs, HKV, ATT_BM / (H / HKV));
    l->work_bytes = ((size_t)l->n_work * sizeof(int4) + 255) / 256 * 256;
    l->bytes = l->work_bytes + (with_target ? (size_t)l->slots * 2 * ATT_BM * ceil_div(NB, ATT_BPT) * 4 : 0);
    return 0;
}

int attention_cuda_plan_bytes(size_t *bytes, const int *doc_lens, int n_docs, int T, int H, int HKV,
                              int HD, int NB, int with_target, SeerErr *err) {
    AttnLayout l;
    if (attn_plan_layout(&l, doc_lens, n_docs, T, H, HKV, HD, NB, with_target, err)) return -1;
    *bytes = l.bytes;
    return 0;
}

static_assert(sizeof(AttnWorkItem) == sizeof(int4), "the kernel reads work items as int4");

int attention_cuda_plan_init(AttnCudaPlan *pl, void *workspace, size_t bytes, const int *doc_lens,
                             int n_docs, int T, int H, int HKV, int HD, int NB, int with_target,
                             const int *target_from, cudaStream_t stream, SeerErr *err) {
    AttnLayout l;
    if (attn_plan_layout(&l, doc_lens, n_docs, T, H, HKV, HD, NB, with_target, err)) return -1;
    for (int d = 0; target_from && d < n_docs; d++)
        if (target_from[d] < 0)
            return seer_fail(err, "attention.cu: target_from %d of document %d is negative", target_from[d], d);
    if (bytes < l.bytes)
        return seer_fail(err, "attention.cu: workspace of %zu bytes < %zu planned", bytes, l.bytes);
    const int64_t nw = l.n_work;
    AttnWorkItem *work = (AttnWorkItem *)xmalloc((size_t)nw * sizeof(*work));  // [nw] host copy
    attention_work_list(work, doc_lens, n_docs, HKV, ATT_BM / (H / HKV), l.slots, target_from);
    *pl = (AttnCudaPlan){T, H, HKV, HD, NB, (int)nw, l.slots, with_target, workspace, NULL};
    if (with_target) pl->scratch = (char *)workspace + l.work_bytes;
    cudaError_t e = cudaMemcpyAsync(workspace, work, (size_t)nw * sizeof(*work), cudaMemcpyHostToDevice, stream);
    if (e == cudaSuccess) e = cudaStreamSynchronize(stream);  // the host copy is freed next
    free(work);
    if (e != cudaSuccess)
        return seer_fail(err, "attention.cu: cudaMemcpyAsync of %lld work items: %s", (long long)nw,
                         cudaGetErrorString(e));
    return 0;
}

typedef CUresult (*AttnEncodeTiled)(CUtensorMap *, CUtensorMapDataType, cuuint32_t, void *,
                                    const cuuint64_t *, const cuuint64_t *, const cuuint32_t *,
                                    const cuuint32_t *, CUtensorMapInterleave, CUtensorMapSwizzle,
                                    CUtensorMapL2promotion, CUtensorMapFloatOOBfill);

// The driver's cuTensorMapEncodeTiled, looked up once through the runtime (libcuda is not linked).
static AttnEncodeTiled attn_encoder(SeerErr *err) {
    static AttnEncodeTiled fn;
    if (fn) return fn;
    void *f = NULL;
    cudaDriverEntryPointQueryResult q = cudaDriverEntryPointSymbolNotFound;
    cudaError_t e = cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &f, 12000, cudaEnableDefault, &q);
    if (e != cudaSuccess || q != cudaDriverEntryPointSuccess || !f) {
        seer_fail(err, "attention.cu: driver entry point cuTensorMapEncodeTiled not found (%s, status %d)",
                  cudaGetErrorString(e), (int)q);
        return NULL;
    }
    return fn = (AttnEncodeTiled)f;
}

// Tensor map of a bf16 tensor with `rank` dims (dims[0] contiguous; strides in bytes for dims 1..)
// read in boxes `box` with the 128-byte swizzle; coordinates past a dim's end read as zeros.
static int attn_tensor_map(CUtensorMap *map, const void *base, int rank, const cuuint64_t *dims,
                           const cuuint64_t *strides, const cuuint32_t *box, const char *what, SeerErr *err) {
    AttnEncodeTiled enc = attn_encoder(err);
    if (!enc) return -1;
    const cuuint32_t ones[3] = {1, 1, 1};
    CUresult r = enc(map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, (cuuint32_t)rank, (void *)base, dims, strides, box,
                     ones, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                     CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS)
        return seer_fail(err, "attention.cu: cuTensorMapEncodeTiled for %s failed (CUresult %d)", what, (int)r);
    return 0;
}

// Q as [T, H, HD] with token stride ldq, read in boxes of (ATT_BM / G tokens, G heads, 64 columns):
// one box is the item's packed rows of one 64-column block. K, V as [T, HKV * HD] with token
// stride ld, read in boxes of 64 keys x 64 columns.
static int attn_tensor_maps(CUtensorMap m[3], const AttnCudaPlan *pl, const uint16_t *q, int64_t ldq,
                            const uint16_t *k, int64_t ldk, const uint16_t *v, int64_t ldv, SeerErr *err) {
    if ((((uintptr_t)q | (uintptr_t)k | (uintptr_t)v) & 15) || ((ldq | ldk | ldv) & 7))
        return seer_fail(err, "attention.cu: q/k/v must start 16-byte aligned with token strides a multiple of 8 "
                         "(ldq %lld, ldk %lld, ldv %lld)", (long long)ldq, (long long)ldk, (long long)ldv);
    const int G = pl->H / pl->HKV;
    const cuuint64_t qd[3] = {(cuuint64_t)pl->HD, (cuuint64_t)pl->H, (cuuint64_t)pl->T};
    const cuuint64_t qs[2] = {(cuuint64_t)pl->HD * 2, (cuuint64_t)ldq * 2};
    const cuuint32_t qb[3] = {64, (cuuint32_t)G, (cuuint32_t)(ATT_BM / G)};
    const cuuint64_t kd[2] = {(cuuint64_t)pl->HKV * pl->HD, (cuuint64_t)pl->T};
    const cuuint64_t ks[1] = {(cuuint64_t)ldk * 2}, vs[1] = {(cuuint64_t)ldv * 2};
    const cuuint32_t kb[2] = {64, ATT_BN};
    if (attn_tensor_map(&m[0], q, 3, qd, qs, qb, "q", err)) return -1;
    if (attn_tensor_map(&m[1], k, 2, kd, ks, kb, "k", err)) return -1;
    return attn_tensor_map(&m[2], v, 2, kd, vs, kb, "v", err);
}

int attention_forward_cuda(const AttnCudaPlan *pl, uint16_t *out, float *target, const uint16_t *q,
                           int64_t ldq, const uint16_t *k, int64_t ldk, const uint16_t *v,
                           int64_t ldv, cudaStream_t stream, SeerErr *err) {
    if (target && !pl->with_target)
        return seer_fail(err, "attention.cu: target requested but the plan was made without one");
    CUtensorMap maps[3];
    if (attn_tensor_maps(maps, pl, q, ldq, k, ldk, v, ldv, err)) return -1;
    AttnParams p;
    p.out = (__nv_bfloat16 *)out;
    p.target = target;
    p.scratch = (uint32_t *)pl->scratch;
    p.work = (const int4 *)pl->work;
    p.T = pl->T;
    p.H = pl->H;
    p.G = pl->H / pl->HKV;
    p.NB = pl->NB;
    p.NBP = ceil_div(pl->NB, ATT_BPT);
    p.n_work = pl->n_work;
    p.scale_log2 = (float)(1.4426950408889634 / sqrt((double)pl->HD));
    int grid = pl->n_work < pl->n_slots ? pl->n_work : pl->n_slots;
    size_t smem = pl->HD == 64 ? AttnSmem<64>::BYTES : AttnSmem<128>::BYTES;
    void *args[] = {&p, &maps[0], &maps[1], &maps[2]};
    cudaError_t e = cudaLaunchKernel(attn_kernel(pl->HD, target != NULL), grid, ATT_THREADS, args, smem, stream);
    if (e != cudaSuccess)
        return seer_fail(err, "attention.cu: attention_fwd_kernel<HD %d, target %d> grid %d smem %zu (T %d H %d HKV %d): %s",
                         pl->HD, target != NULL, grid, smem, pl->T, pl->H, pl->HKV, cudaGetErrorString(e));
    return 0;
}
