// decode.cu: split-KV GQA flash decoding on the GPU, dense and block-sparse (see decode.h).
//
// One program (CTA of 4 warps) per (split, KV head, sequence). Its tiles are 64-token blocks
// (consecutive blocks when dense, the split's share of the block list when sparse), streamed
// through a 3-stage cp.async ring (all 3 tiles in flight while the program waits for the oldest)
// of K [64, 128] + V [64, 128] (32 KB a stage, rows XOR-swizzled in 16-byte chunks so ldmatrix is
// conflict-free); one program per SM. Warp w owns tokens 16w .. 16w+15 of every
// tile and keeps its own online-softmax state for the G <= 16 query heads (one m16n8k16 row per
// head, rows >= G are zero): S = Q K^T and O += P V on tensor cores, fp32 accumulation. At the
// end the 4 warps merge in shared memory and the program writes the final output (one split) or
// a normalised partial output and its LSE; the last program of the pair to finish (an atomic
// counter per pair) merges the splits, so a decode step is one launch.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>

extern "C" {
#include "common/cuda_check.h"
#include "kernels/decode.h"
}

namespace {

constexpr int kHD = 128;                     // head dim the kernel is built for
constexpr int kBlk = SEER_BLOCK;             // tokens per tile
constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kChunks = kHD * 2 / 16;        // 16-byte chunks per row (16)
constexpr int kTileBytes = kBlk * kHD * 2;   // one K or V tile (16 KB)
constexpr int kQBytes = 16 * kHD * 2;        // Q rows padded to 16 (4 KB)
constexpr int kStages = 3;                   // ring stages (4 and 5 no faster: H200, docs/KERNELS.md)
// Dynamic shared memory of a dense program: Q + ring (100 KB) rounded up to 120 KB, more than half
// of an SM's 228 KB, so that no second program, of this launch or of the next one started early
// by programmatic dependent launch, shares the SM (measured: see docs/KERNELS.md).
constexpr int kSmem = 120 * 1024;
constexpr int kMaxSel = 16384;               // longest block list (1M tokens)
constexpr int kSmemMax = kSmem + kMaxSel * 4;
static_assert(kQBytes + kStages * 2 * kTileBytes <= kSmem, "Q and the ring fit");
static_assert(kWarps * 16 * kHD * 4 <= kStages * 2 * kTileBytes, "merge area fits the ring");

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

// Byte offset of 16-byte chunk `ch` of row `r` in a [rows][kChunks] swizzled tile.
__device__ __forceinline__ uint32_t swz(int r, int ch) {
    return (uint32_t)((r * kChunks + (ch ^ (r & 7))) * 16);
}

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void *src) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Programmatic dependent launch: wait until the previous kernel on the stream has finished and
// its writes are visible (a no-op when launched without PDL); let the next kernel launch.
__device__ __forceinline__ void grid_dependency_wait() {
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
}
__device__ __forceinline__ void launch_dependents() {
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

// With list ready flags (DecodeParams.list_ready): thread 0 polls the flag of this program's list
// with gpu-scope acquire loads until the selection program that wrote the list has released it,
// and the block barrier orders every thread's later reads after that. A flag never set (a
// selection that was not given the flags) traps after about 2 s instead of hanging. One split
// clears the flag at once; with more, the pair's last program does.
__device__ void wait_list_ready(int32_t *flag, bool clear, int tid) {
    if (tid == 0) {
        int32_t v;
        for (long spins = 0;; spins++) {
            asm volatile("ld.acquire.gpu.global.b32 %0, [%1];\n" : "=r"(v) : "l"(flag) : "memory");
            if (v) break;
            if (spins > (1L << 24)) __trap();
            __nanosleep(64);
        }
        if (clear) *flag = 0;
    }
    __syncthreads();
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}
__device__ __forceinline__ void ldsm_x4_t(uint32_t (&r)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(addr));
}

// d += a (16x16, row) * b (16x8, col), fp32 accumulate.
template <bool BF16>
__device__ __forceinline__ void mma16816(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                         uint32_t b1) {
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

template <bool BF16>
__device__ __forceinline__ uint32_t pack2(float lo, float hi) {
    uint32_t u;
    if (BF16) {
        __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
        u = *reinterpret_cast<uint32_t *>(&v);
    } else {
        __half2 v = __floats2half2_rn(lo, hi);
        u = *reinterpret_cast<uint32_t *>(&v);
    }
    return u;
}

template <bool BF16>
__device__ __forceinline__ uint16_t to_elem(float x) {
    if (BF16) {
        __nv_bfloat16 v = __float2bfloat16_rn(x);
        return *reinterpret_cast<uint16_t *>(&v);
    }
    __half v = __float2half_rn(x);
    return *reinterpret_cast<uint16_t *>(&v);
}

struct WarpState {
    float o[kHD / 8][4];  // O rows (lane/4, lane/4+8) x this lane's HD columns
    float m[2], l[2];     // running max (log2 domain) and this lane's share of the row sum
};

__device__ __forceinline__ void state_init(WarpState &st) {
#pragma unroll
    for (int dn = 0; dn < kHD / 8; dn++) st.o[dn][0] = st.o[dn][1] = st.o[dn][2] = st.o[dn][3] = 0;
    st.m[0] = st.m[1] = -INFINITY;
    st.l[0] = st.l[1] = 0;
}

// Issues the cp.async loads of one tile (block blk) into stage buffers ks / vs. Rows at or past
// len are zero-filled, never read.
__device__ __forceinline__ void load_tile(uint32_t ks, uint32_t vs, const uint16_t *kb,
                                          const uint16_t *vb, int64_t k_st, int64_t v_st,
                                          int blk, int len, int tid) {
#pragma unroll
    for (int i = 0; i < kBlk * kChunks / kThreads; i++) {
        int c = i * kThreads + tid, r = c / kChunks, ch = c % kChunks, tok = blk * kBlk + r;
        int ok = tok < len, row = ok ? tok : 0;
        cp_async16(ks + swz(r, ch), kb + row * k_st + ch * 8, ok ? 16 : 0);
        cp_async16(vs + swz(r, ch), vb + row * v_st + ch * 8, ok ? 16 : 0);
    }
}

// Issues the cp.async loads of a group's G query rows into qs, rows G..15 zero-filled.
__device__ __forceinline__ void load_q(uint32_t qs, const uint16_t *qg, int G, int64_t q_sh, int tid) {
    for (int c = tid; c < 16 * kChunks; c += kThreads) {
        int r = c / kChunks, ch = c % kChunks;
        cp_async16(qs + swz(r, ch), qg + (r < G ? r : 0) * q_sh + ch * 8, r < G ? 16 : 0);
    }
}

// The warp's A fragments of the 16 query rows in qs (ldmatrix).
__device__ __forceinline__ void load_q_frags(uint32_t (&qf)[kHD / 16][4], uint32_t qs, int lane) {
#pragma unroll
    for (int kk = 0; kk < kHD / 16; kk++)
        ldsm_x4(qf[kk], qs + swz((lane % 8) + ((lane / 8) & 1) * 8, 2 * kk + lane / 16));
}

// Entries >= 0 of a block list in shared memory (descending, -1 padded): a binary search.
__device__ __forceinline__ int list_count(const int32_t *list, int max_sel) {
    int lo = 0, hi = max_sel;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (list[mid] >= 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// One warp's 16 tokens of a tile: scores, online softmax, O += P V.
template <bool BF16>
__device__ __forceinline__ void tile_compute(WarpState &st, const uint32_t (&qf)[kHD / 16][4],
                                             uint32_t ks, uint32_t vs, int tok0, int len,
                                             float sc2, int lane) {
    float s[2][4] = {};
    const int warp_row = (tok0 % kBlk);
#pragma unroll
    for (int kk = 0; kk < kHD / 16; kk++) {
        uint32_t b[4];
        int r = warp_row + (lane % 8) + (lane / 16) * 8, ch = 2 * kk + ((lane / 8) & 1);
        ldsm_x4(b, ks + swz(r, ch));
        mma16816<BF16>(s[0], qf[kk], b[0], b[1]);
        mma16816<BF16>(s[1], qf[kk], b[2], b[3]);
    }
    float tmax[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 2; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int tok = tok0 + nt * 8 + (lane % 4) * 2 + (e & 1);
            float x = tok < len ? s[nt][e] * sc2 : -INFINITY;
            s[nt][e] = x;
            tmax[e / 2] = fmaxf(tmax[e / 2], x);
        }
    float corr[2], base[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 1));
        tmax[r] = fmaxf(tmax[r], __shfl_xor_sync(0xffffffffu, tmax[r], 2));
        float m_new = fmaxf(st.m[r], tmax[r]);
        base[r] = m_new == -INFINITY ? 0.0f : m_new;
        corr[r] = exp2f(st.m[r] - base[r]);
        st.m[r] = m_new;
        st.l[r] *= corr[r];
    }
#pragma unroll
    for (int nt = 0; nt < 2; nt++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            float pexp = exp2f(s[nt][e] - base[e / 2]);
            s[nt][e] = pexp;
            st.l[e / 2] += pexp;
        }
    uint32_t pa[4] = {pack2<BF16>(s[0][0], s[0][1]), pack2<BF16>(s[0][2], s[0][3]),
                      pack2<BF16>(s[1][0], s[1][1]), pack2<BF16>(s[1][2], s[1][3])};
#pragma unroll
    for (int dn = 0; dn < kHD / 8; dn++) {
        st.o[dn][0] *= corr[0], st.o[dn][1] *= corr[0];
        st.o[dn][2] *= corr[1], st.o[dn][3] *= corr[1];
    }
#pragma unroll
    for (int dn = 0; dn < kHD / 8; dn += 2) {
        uint32_t b[4];
        int r = warp_row + (lane % 8) + ((lane / 8) & 1) * 8, ch = dn + lane / 16;
        ldsm_x4_t(b, vs + swz(r, ch));
        mma16816<BF16>(st.o[dn], pa, b[0], b[1]);
        mma16816<BF16>(st.o[dn + 1], pa, b[2], b[3]);
    }
}

// Last program of a pair (n_split > 1): out[b, h] = sum_s w_s o_part[b, h, s] / sum_s w_s with
// w_s = exp(lse_s - max lse); every split empty (all lse -inf) gives 0. Thread i owns 4 columns
// of one head and reads that head's LSEs with its partials (16 splits a round, online rescaling),
// so one L2 round trip covers up to 16 splits and no barrier is needed.
template <bool BF16>
__device__ void combine_splits(const DecodeParams &p, int b, int kvh, int G, int tid) {
    const int S = p.n_split;
    const int64_t ws0 = ((int64_t)b * p.H + kvh * G) * S;  // first (head, split) of the group
    const float4 *part = reinterpret_cast<const float4 *>(p.o_part);
    for (int i = tid; i < G * kHD / 4; i += kThreads) {
        const int row = i / (kHD / 4), c4 = i % (kHD / 4);
        const float *lse = p.lse_part + ws0 + row * S;
        const float4 *src = part + (ws0 + row * S) * (kHD / 4) + c4;
        float4 acc = make_float4(0, 0, 0, 0);
        float M = -INFINITY, den = 0;
        for (int s0 = 0; s0 < S; s0 += 16) {
            float4 v[16];
            float l[16];
#pragma unroll
            for (int u = 0; u < 16; u++) {
                bool in = s0 + u < S;
                v[u] = in ? __ldcg(src + (s0 + u) * (kHD / 4)) : make_float4(0, 0, 0, 0);
                l[u] = in ? __ldcg(lse + s0 + u) : -INFINITY;
            }
            float m_new = M;
#pragma unroll
            for (int u = 0; u < 16; u++) m_new = fmaxf(m_new, l[u]);
            if (m_new == -INFINITY) continue;
            float f = __expf(M - m_new);  // 0 while M is -inf
            acc.x *= f, acc.y *= f, acc.z *= f, acc.w *= f, den *= f;
#pragma unroll
            for (int u = 0; u < 16; u++) {
                float w = __expf(l[u] - m_new);  // 0 for an empty split (lse -inf)
                acc.x += w * v[u].x, acc.y += w * v[u].y, acc.z += w * v[u].z, acc.w += w * v[u].w;
                den += w;
            }
            M = m_new;
        }
        float r = den > 0 ? 1.0f / den : 0.0f;
        uint16_t *out = (uint16_t *)p.out + b * p.o_sb + (kvh * G + row) * p.o_sh + c4 * 4;
        out[0] = to_elem<BF16>(acc.x * r), out[1] = to_elem<BF16>(acc.y * r);
        out[2] = to_elem<BF16>(acc.z * r), out[3] = to_elem<BF16>(acc.w * r);
    }
}

// Merges the 4 warps' states in the merge area red ([kWarps][16][kHD] floats of shared memory)
// and writes the program's result: the output itself (one split) or a normalised partial + LSE,
// the last split of the pair then combining.
template <bool BF16>
__device__ void merge_and_store(const DecodeParams &p, WarpState &st, float *red, int b, int kvh,
                                int split, int G, int warp, int lane, int tid) {
    __shared__ float m_s[kWarps][16], l_s[kWarps][16];
    __shared__ float inv_l_s[16], lse_s[16];  // per head: 1 / row sum, natural-log LSE
    __shared__ int is_last;
    int g = lane / 4;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        st.l[r] += __shfl_xor_sync(0xffffffffu, st.l[r], 1);
        st.l[r] += __shfl_xor_sync(0xffffffffu, st.l[r], 2);
    }
    if (lane % 4 == 0) {
        m_s[warp][g] = st.m[0], m_s[warp][g + 8] = st.m[1];
        l_s[warp][g] = st.l[0], l_s[warp][g + 8] = st.l[1];
    }
    __syncthreads();
    if (tid < 16) {  // the head's statistics once, not once per output element
        float M = -INFINITY, L = 0;
        for (int w = 0; w < kWarps; w++) M = fmaxf(M, m_s[w][tid]);
        for (int w = 0; w < kWarps; w++)
            if (m_s[w][tid] != -INFINITY) L += l_s[w][tid] * exp2f(m_s[w][tid] - M);
        inv_l_s[tid] = L > 0 ? 1.0f / L : 0.0f;
        lse_s[tid] = L > 0 ? (M + log2f(L)) * 0.69314718055994531f : -INFINITY;
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int row = g + 8 * r;
        float M = -INFINITY;
        for (int w = 0; w < kWarps; w++) M = fmaxf(M, m_s[w][row]);
        float f = st.m[r] == -INFINITY ? 0.0f : exp2f(st.m[r] - M);
        float *dst = red + (warp * 16 + row) * kHD + (lane % 4) * 2;
#pragma unroll
        for (int dn = 0; dn < kHD / 8; dn++) {
            dst[dn * 8] = st.o[dn][2 * r] * f;
            dst[dn * 8 + 1] = st.o[dn][2 * r + 1] * f;
        }
    }
    __syncthreads();
    // Independent iterations (no per-element max / exp / divide): with one warp per scheduler the
    // per-element statistics made this loop a 2.7 us latency chain (H100 trace, docs/KERNELS.md).
    // Thread i owns 4 consecutive columns of one head: 16-byte merge-area loads, one 8-byte output
    // store or one 16-byte partial store.
    for (int i = tid; i < G * kHD / 4; i += kThreads) {
        const int row = i / (kHD / 4), d = (i % (kHD / 4)) * 4, h = kvh * G + row;
        float4 acc = make_float4(0, 0, 0, 0);  // a warp that saw nothing stored zeros (scale 0)
#pragma unroll
        for (int w = 0; w < kWarps; w++) {
            const float4 v = *reinterpret_cast<const float4 *>(red + (w * 16 + row) * kHD + d);
            acc.x += v.x, acc.y += v.y, acc.z += v.z, acc.w += v.w;
        }
        const float r = inv_l_s[row];
        acc.x *= r, acc.y *= r, acc.z *= r, acc.w *= r;
        if (p.n_split == 1) {
            uint16_t *out = (uint16_t *)p.out + b * p.o_sb + h * p.o_sh + d;
            *reinterpret_cast<uint2 *>(out) = make_uint2(pack2<BF16>(acc.x, acc.y), pack2<BF16>(acc.z, acc.w));
        } else {
            int64_t ws = ((int64_t)b * p.H + h) * p.n_split + split;
            *reinterpret_cast<float4 *>(p.o_part + ws * kHD + d) = acc;
            if (d == 0) p.lse_part[ws] = lse_s[row];
        }
    }
    if (p.n_split == 1) return;
    __threadfence();
    __syncthreads();
    int32_t *sem = p.sem + (int64_t)b * p.HKV + kvh;
    if (tid == 0) is_last = atomicAdd(sem, 1) == p.n_split - 1;
    __syncthreads();
    if (!is_last) return;
    __threadfence();
    combine_splits<BF16>(p, b, kvh, G, tid);
    if (tid == 0) {
        *sem = 0;
        if (p.list_ready) p.list_ready[(int64_t)b * p.HKV + kvh] = 0;
    }
}

template <bool BF16>
__global__ void __launch_bounds__(kThreads) decode_split_kernel(const DecodeParams p) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int G = p.H / p.HKV;
    const uint16_t *qg = (const uint16_t *)p.q + b * p.q_sb + (int64_t)kvh * G * p.q_sh;
    const uint16_t *kb = (const uint16_t *)p.k + b * p.k_sb + kvh * p.k_sh;
    const uint16_t *vb = (const uint16_t *)p.v + b * p.v_sb + kvh * p.v_sh;
    const uint32_t qs = smem_addr(smem), ring = qs + kQBytes;
    int32_t *list_s = reinterpret_cast<int32_t *>(smem + kSmem);  // [max_sel] when sparse
    // With ready flags the grid has launched only once every selection program had started, so
    // once every kernel before the selection's projection had finished (select.h): all inputs
    // but the list may be read before the flag. Split 0 also loads its first tile early, guessing
    // the current block (the gate selection always puts it first).
    if (!p.list_ready) grid_dependency_wait();  // PDL: the previous kernel's writes are visible past this line
    const int len = __ldcg(p.cache_len + b);

    load_q(qs, qg, G, p.q_sh, tid);
    const int guess = p.list_ready && split == 0 && len > 0 ? (len - 1) / kBlk : -1;
    if (guess >= 0) load_tile(ring, ring + kTileBytes, kb, vb, p.k_st, p.v_st, guess, len, tid);
    if (p.list_ready) wait_list_ready(p.list_ready + b * p.HKV + kvh, p.n_split == 1, tid);
    int n_tiles = (len + kBlk - 1) / kBlk;
    if (p.block_idx) {  // the list, copied with the Q rows; descending, -1 padded: binary search
        const int32_t *list = p.block_idx + b * p.idx_sb + kvh * p.idx_sh;
        for (int i = tid; i < p.max_sel; i += kThreads) cp_async4(smem_addr(list_s + i), list + i);
        cp_async_commit();
        cp_async_wait<0>();
        __syncthreads();
        n_tiles = list_count(list_s, p.max_sel);
    } else {
        cp_async_commit();
    }
    int t0, t1;
    decode_split_range(n_tiles, p.n_split, split, &t0, &t1);
    const int n = t1 - t0;
    for (int i = 0; i < kStages; i++) {
        if (i < n && !(i == 0 && guess >= 0 && list_s[t0] == guess)) {  // the guess was right: loaded
            uint32_t ks = ring + i * 2 * kTileBytes;
            load_tile(ks, ks + kTileBytes, kb, vb, p.k_st, p.v_st,
                      p.block_idx ? list_s[t0 + i] : t0 + i, len, tid);
        }
        cp_async_commit();
    }
    cp_async_wait<kStages>();  // the Q group
    __syncthreads();
    uint32_t qf[kHD / 16][4];
    load_q_frags(qf, qs, lane);
    WarpState st;
    state_init(st);
    const float sc2 = p.scale * 1.4426950408889634f;
    for (int i = 0; i < n; i++) {  // kStages tiles in flight while waiting for tile i
        cp_async_wait<kStages - 1>();
        __syncthreads();
        uint32_t ks = ring + (i % kStages) * 2 * kTileBytes;
        int blk = p.block_idx ? list_s[t0 + i] : t0 + i;
        tile_compute<BF16>(st, qf, ks, ks + kTileBytes, blk * kBlk + warp * 16, len, sc2, lane);
        __syncthreads();
        int nx = i + kStages;
        if (nx < n)
            load_tile(ks, ks + kTileBytes, kb, vb, p.k_st, p.v_st,
                      p.block_idx ? list_s[t0 + nx] : t0 + nx, len, tid);
        cp_async_commit();
    }
    cp_async_wait<0>();
    launch_dependents();  // PDL: the next kernel may start its prologue during the merge
    __syncthreads();
    // The ring is drained: its first stages hold the merge area.
    merge_and_store<BF16>(p, st, reinterpret_cast<float *>(smem + kQBytes), b, kvh, split, G, warp, lane, tid);
}

// ---- The work queue (DecodeParams.queue) ----
//
// Traces of the one-program-per-pair launch show each SM's DRAM rate fixed by where it sits, so
// the call ends when the slowest SMs finish their equal shares (docs/KERNELS.md). Here n_prog
// persistent programs share the units u = (b * HKV + kvh) * n_split + split: program i starts
// with unit i, and each later unit is claimed from an atomic counter while the unit before it
// runs. A unit's metadata (cache length, Q rows, block list) lands in one of two slots; the ring
// streams the current unit's tiles and then, once the next unit's metadata has landed, the next
// unit's, so the ring stays full across units and the fast SMs take more of them. The merge
// area is separate from the ring, which holds the next unit's tiles during a merge.
//
// Shared memory: Q slots [2][16][kHD] | ring | merge area [kWarps][16][kHD] f32 | lists [2][max_sel].
constexpr int kQueueMaxSel = 8192;
constexpr int kQueueRing = 2 * kQBytes;
constexpr int kQueueMerge = kQueueRing + kStages * 2 * kTileBytes;
constexpr int kQueueLists = kQueueMerge + kWarps * 16 * kHD * 4;  // 136 KB
constexpr int kQueueSmemMax = kQueueLists + 2 * kQueueMaxSel * 4;
static_assert(kQueueSmemMax <= 226 * 1024, "room for the static shared memory");
static_assert(kStages == 3, "Ring names the group of each of 3 stages");

struct Unit {
    int b, kvh, split;
    int len, t0, n;  // cache length, first tile, tiles: valid once the metadata has landed
    const uint16_t *kb, *vb;
};

__device__ __forceinline__ Unit unit_at(const DecodeParams &p, int u) {
    Unit x;
    x.split = u % p.n_split;
    x.kvh = (u / p.n_split) % p.HKV;
    x.b = u / (p.n_split * p.HKV);
    x.kb = (const uint16_t *)p.k + x.b * p.k_sb + x.kvh * p.k_sh;
    x.vb = (const uint16_t *)p.v + x.b * p.v_sb + x.kvh * p.v_sh;
    x.len = x.t0 = x.n = 0;
    return x;
}

// Issues the cp.async copies of unit x's Q rows, block list and cache length (no commit).
__device__ void load_unit_meta(const DecodeParams &p, const Unit &x, uint32_t qs, int32_t *list,
                               int32_t *len, int G, int tid) {
    load_q(qs, (const uint16_t *)p.q + x.b * p.q_sb + (int64_t)x.kvh * G * p.q_sh, G, p.q_sh, tid);
    if (p.block_idx) {
        const int32_t *src = p.block_idx + x.b * p.idx_sb + x.kvh * p.idx_sh;
        for (int i = tid; i < p.max_sel; i += kThreads) cp_async4(smem_addr(list + i), src + i);
    }
    if (tid == 0) cp_async4(smem_addr(len), p.cache_len + x.b);
}

// After the metadata has landed and a barrier: the unit's length and its split's tiles.
__device__ __forceinline__ void unit_land(const DecodeParams &p, Unit &x, int len, const int32_t *list) {
    int t1, n_tiles = p.block_idx ? list_count(list, p.max_sel) : (len + kBlk - 1) / kBlk;
    decode_split_range(n_tiles, p.n_split, x.split, &x.t0, &t1);
    x.len = len, x.n = t1 - x.t0;
}

__device__ __forceinline__ int unit_block(const DecodeParams &p, const Unit &x, const int32_t *list, int i) {
    return p.block_idx ? list[x.t0 + i] : x.t0 + i;
}

// Waits until at most n of the newest cp.async groups are pending (n > 3 waits for 3).
__device__ __forceinline__ void cp_async_wait_pending(int n) {
    if (n <= 0) cp_async_wait<0>();
    else if (n == 1) cp_async_wait<1>();
    else if (n == 2) cp_async_wait<2>();
    else cp_async_wait<3>();
}

// The ring's bookkeeping, the same in every thread of a program. Tiles are issued and consumed
// in one order across units, tile k in stage k % kStages, each in a cp.async group of its own;
// a unit's metadata is a group of its own too.
struct Ring {
    int committed;         // groups committed
    int issued, consumed;  // tiles
    int g0, g1, g2;        // group of the tile in stage 0, 1, 2
};

__device__ __forceinline__ int ring_group(const Ring &r, int stage) {
    return stage == 0 ? r.g0 : stage == 1 ? r.g1 : r.g2;
}

// Issues tile i of unit x into the next stage (free: its last tile was consumed behind a barrier).
__device__ __forceinline__ void ring_issue(Ring &r, uint32_t ring, const DecodeParams &p,
                                           const Unit &x, const int32_t *list, int i, int tid) {
    const int stage = r.issued % kStages, g = r.committed++;
    const uint32_t ks = ring + stage * 2 * kTileBytes;
    load_tile(ks, ks + kTileBytes, x.kb, x.vb, p.k_st, p.v_st, unit_block(p, x, list, i), x.len, tid);
    cp_async_commit();
    if (stage == 0) r.g0 = g;
    else if (stage == 1) r.g1 = g;
    else r.g2 = g;
    r.issued++;
}

enum { kNextNone, kNextInFlight, kNextLanded, kNextEnd };  // the next unit's metadata

template <bool BF16>
__global__ void __launch_bounds__(kThreads) decode_queue_kernel(const DecodeParams p) {
    extern __shared__ __align__(128) unsigned char smem[];
    __shared__ int32_t len_s[2];
    __shared__ int next_s;  // the next unit, published by thread 0
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, G = p.H / p.HKV;
    const int units = p.n_split * p.HKV * p.B, list_stride = (p.max_sel + 3) / 4 * 4;
    const uint32_t qs0 = smem_addr(smem), ring = qs0 + kQueueRing;
    float *red = reinterpret_cast<float *>(smem + kQueueMerge);
    int32_t *lists = reinterpret_cast<int32_t *>(smem + kQueueLists);
    const float sc2 = p.scale * 1.4426950408889634f;
    grid_dependency_wait();  // PDL: also orders the claims after the previous launch's reset

    Ring rg = {1, 0, 0, 0, 0, 0};
    int cs = 0;  // slot of the current unit's metadata
    Unit cur = unit_at(p, blockIdx.x), nxt = cur;
    load_unit_meta(p, cur, qs0, lists, &len_s[0], G, tid);
    cp_async_commit();  // group 0
    int claim = 0;      // thread 0: the unit after the current one (used when published)
    if (tid == 0) claim = atomicAdd(p.queue, 1) + gridDim.x;
    cp_async_wait<0>();
    __syncthreads();
    unit_land(p, cur, len_s[0], lists);
    int cur_issued = 0, nxt_issued = 0, nxt_state = kNextNone, meta_grp = 0;

    // The next unit's metadata into the other slot, once next_s is visible to every thread.
    auto fetch_next = [&]() {
        const int u = next_s;
        if (u >= units) {
            nxt_state = kNextEnd;
            return;
        }
        nxt = unit_at(p, u);
        load_unit_meta(p, nxt, qs0 + (cs ^ 1) * kQBytes, lists + (cs ^ 1) * list_stride, &len_s[cs ^ 1], G, tid);
        cp_async_commit();
        meta_grp = rg.committed++;
        nxt_state = kNextInFlight;
    };
    auto land_next = [&]() {  // after a wait covering meta_grp and a barrier
        unit_land(p, nxt, len_s[cs ^ 1], lists + (cs ^ 1) * list_stride);
        nxt_state = kNextLanded;
    };

    for (;;) {
        const int32_t *list = lists + cs * list_stride, *nlist = lists + (cs ^ 1) * list_stride;
        uint32_t qf[kHD / 16][4];
        load_q_frags(qf, qs0 + cs * kQBytes, lane);
        WarpState st;
        state_init(st);
        while (rg.issued - rg.consumed < kStages && cur_issued < cur.n)
            ring_issue(rg, ring, p, cur, list, cur_issued++, tid);
        for (int i = 0; i < cur.n; i++) {
            const int stage = rg.consumed % kStages, g = ring_group(rg, stage);
            cp_async_wait_pending(rg.committed - g - 1);
            __syncthreads();
            if (nxt_state == kNextInFlight && meta_grp <= g) land_next();  // covered by that wait
            const uint32_t ks = ring + stage * 2 * kTileBytes;
            tile_compute<BF16>(st, qf, ks, ks + kTileBytes, unit_block(p, cur, list, i) * kBlk + warp * 16,
                               cur.len, sc2, lane);
            __syncthreads();
            rg.consumed++;
            if (i == 0 && tid == 0) next_s = claim;  // visible after the next barrier
            if (i == 1) fetch_next();
            if (rg.issued - rg.consumed >= kStages) continue;
            if (cur_issued < cur.n) {
                ring_issue(rg, ring, p, cur, list, cur_issued++, tid);
            } else if (nxt_state == kNextInFlight || nxt_state == kNextLanded) {
                if (nxt_state == kNextInFlight) {
                    cp_async_wait_pending(rg.committed - meta_grp - 1);
                    __syncthreads();
                    land_next();
                }
                if (nxt_issued < nxt.n) ring_issue(rg, ring, p, nxt, nlist, nxt_issued++, tid);
            }
        }
        merge_and_store<BF16>(p, st, red, cur.b, cur.kvh, cur.split, G, warp, lane, tid);
        if (nxt_state == kNextNone) {  // a unit of fewer than 2 tiles
            if (cur.n == 0 && tid == 0) next_s = claim;
            __syncthreads();
            fetch_next();
        }
        if (nxt_state == kNextEnd) break;
        if (nxt_state == kNextInFlight) {
            cp_async_wait_pending(rg.committed - meta_grp - 1);
            __syncthreads();
            land_next();
        }
        cur = nxt, cs ^= 1, cur_issued = nxt_issued;
        nxt_issued = 0, nxt_state = kNextNone;
        if (tid == 0) claim = atomicAdd(p.queue, 1) + gridDim.x;
    }
    cp_async_wait<0>();
    launch_dependents();
    // Every program's claims precede its exit count (the fence orders them), so the last one out
    // resets the queue.
    if (tid == 0) {
        __threadfence();
        if (atomicAdd(p.queue + 1, 1) == (int)gridDim.x - 1) p.queue[0] = 0, p.queue[1] = 0;
    }
}

// The kernels' shared-memory limit, set once per device.
int set_smem_once(SeerErr *err) {
    static uint64_t done;
    const uint64_t dev = cuda_device_bit();
    if (done & dev) return 0;
    const cudaFuncAttribute max_dyn = cudaFuncAttributeMaxDynamicSharedMemorySize;
    cudaError_t e = cudaFuncSetAttribute(decode_split_kernel<true>, max_dyn, kSmemMax);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(decode_split_kernel<false>, max_dyn, kSmemMax);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(decode_queue_kernel<true>, max_dyn, kQueueSmemMax);
    if (e == cudaSuccess) e = cudaFuncSetAttribute(decode_queue_kernel<false>, max_dyn, kQueueSmemMax);
    if (e != cudaSuccess)
        return seer_fail(err, "decode.cu: cudaFuncSetAttribute: %s", cudaGetErrorString(e));
    done |= dev;
    return 0;
}

bool aligned16(const void *ptr) { return ((uintptr_t)ptr & 15) == 0; }

int sm_count() {  // of the current device
    int dev = 0, n_sm = 0;
    cudaGetDevice(&dev);
    cudaDeviceGetAttribute(&n_sm, cudaDevAttrMultiProcessorCount, dev);
    return n_sm;
}

}  // namespace

// One program per SM: measured on an H200, batch 16 with 1 split (128 programs) beat 2 splits
// (256 programs, two per SM) by 4-6% sparse, batch 1 with 16 splits beat 32 by 2-9%: a second
// program per SM adds merge work and start-up cost, not bandwidth.
extern "C" int decode_pick_splits_cuda(int B, int HKV, int max_tiles) {
    return decode_num_splits(B * HKV, max_tiles, sm_count(), 1, 4, 64);
}

extern "C" int decode_attention_cuda(const DecodeParams *p, void *stream, SeerErr *err) {
    if (p->HD != kHD) return seer_fail(err, "decode.cu: the GPU kernel needs HD %d, got %d", kHD, p->HD);
    if (p->HKV <= 0 || p->H % p->HKV)
        return seer_fail(err, "decode.cu: H %d is not a multiple of HKV %d", p->H, p->HKV);
    if (p->H / p->HKV > 16)
        return seer_fail(err, "decode.cu: the GPU kernel handles G <= 16 query heads per KV head, got %d",
                         p->H / p->HKV);
    if (p->dtype != SEER_BF16 && p->dtype != SEER_F16)
        return seer_fail(err, "decode.cu: the GPU kernel needs BF16 or F16, got %s", dtype_name(p->dtype));
    if (p->n_split < 1 || (p->n_split > 1 && (!p->o_part || !p->lse_part || !p->sem)))
        return seer_fail(err, "decode.cu: n_split %d without the o_part/lse_part/sem workspace", p->n_split);
    if (p->list_ready && !p->block_idx)
        return seer_fail(err, "decode.cu: list_ready without block_idx (the flags are for sparse lists)");
    if (p->block_idx && (p->max_sel < 1 || p->max_sel > kMaxSel))
        return seer_fail(err, "decode.cu: max_sel %d is outside [1, %d]", p->max_sel, kMaxSel);
    if (!aligned16(p->q) || !aligned16(p->k) || !aligned16(p->v) ||
        (p->q_sb | p->q_sh | p->k_sb | p->k_sh | p->k_st | p->v_sb | p->v_sh | p->v_st) % 8)
        return seer_fail(err, "decode.cu: q/k/v rows must be 16-byte aligned (strides multiples of 8)");
    if (((uintptr_t)p->out & 7) || (p->o_sb | p->o_sh) % 4)
        return seer_fail(err, "decode.cu: out rows must be 8-byte aligned (strides multiples of 4)");
    if (p->n_split > 1 && !aligned16(p->o_part))
        return seer_fail(err, "decode.cu: the o_part workspace must be 16-byte aligned");
    if (p->queue && p->list_ready)
        return seer_fail(err, "decode.cu: the work queue does not take list_ready flags");
    if (p->queue && p->block_idx && p->max_sel > kQueueMaxSel)
        return seer_fail(err, "decode.cu: max_sel %d is over the work queue's %d", p->max_sel, kQueueMaxSel);
    if (p->queue && p->n_prog < 0) return seer_fail(err, "decode.cu: n_prog %d < 0", p->n_prog);
    if (set_smem_once(err)) return -1;
    cudaLaunchAttribute attr;
    cudaError_t e;
    if (p->queue) {
        const int64_t units = (int64_t)p->n_split * p->HKV * p->B;
        const int64_t n_prog = p->n_prog ? p->n_prog : sm_count();
        const size_t smem = kQueueLists + (p->block_idx ? 2 * ((p->max_sel + 3) / 4 * 4) * 4 : 0);
        cudaLaunchConfig_t cfg = launch_config(dim3((unsigned)(n_prog < units ? n_prog : units)), dim3(kThreads),
                                               smem, stream, p->pdl, &attr);
        e = p->dtype == SEER_BF16 ? cudaLaunchKernelEx(&cfg, decode_queue_kernel<true>, *p)
                                  : cudaLaunchKernelEx(&cfg, decode_queue_kernel<false>, *p);
    } else {
        const size_t smem = kSmem + (p->block_idx ? (p->max_sel * 4 + 15) / 16 * 16 : 0);
        cudaLaunchConfig_t cfg = launch_config(dim3(p->n_split, p->HKV, p->B), dim3(kThreads), smem, stream, p->pdl, &attr);
        e = p->dtype == SEER_BF16 ? cudaLaunchKernelEx(&cfg, decode_split_kernel<true>, *p)
                                  : cudaLaunchKernelEx(&cfg, decode_split_kernel<false>, *p);
    }
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return seer_fail(err, "decode.cu: kernel launch: %s", cudaGetErrorString(e));
    return 0;
}
