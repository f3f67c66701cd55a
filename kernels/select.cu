// select.cu: GPU twins of select.h.
//
// Selection inside a program of 512 threads: thread t owns blocks j = c * 512 + t (c < NC, the
// cache's 512-block chunks: 1, 2, 4 or 8, so up to 4096 blocks); keys and flags stay in registers.
// Top-k puts the keys into 256 equal bins between their min and max (one histogram in shared
// memory); the bins above the one holding the k-th largest key are taken whole and that bin's few
// keys are ranked against each other (ties at the k-th key go to the lowest blocks, as
// select_blocks_cpu). A bin of more than 512 keys falls back to a radix select on the
// order-preserving uint32 image of the keys. Lists are written in descending order from a
// block-wide rank of the flags (ballots, then every warp scans the per-warp counts).
//
// Gate selection (the decode hot path, docs/KERNELS.md) is two kernels. gate_query_kernel
// projects the queries: one program per (16 output columns, KV head, 16 sequences, half of the
// input rows) on the tensor cores, so each Wq column is read once per 16 sequences; it is itself
// a programmatic dependent of the kernel before it (its Wq slice is loaded before the wait).
// gate_select_kernel, one program per (sequence, KV head), is launched as its programmatic
// dependent: it starts copying its first K-compression rows into shared memory (bulk copies)
// while the projection runs, then waits for it, copies the rest of the first 512 rows, one warp
// normalises and rotates the query (its RoPE rotations formed before the wait) into MMA operand
// words, every warp scores its rows on the tensor cores (the query split into a high and a low
// half-precision part, so the products keep fp32 accuracy), selects and writes the list. The
// K-compression cache is in the KV cache's dtype or, with SelectConfig.kcomp_fp8, E4M3 (half
// the bytes; unpacked to fp16 operands, exact).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_fp8.h>
#include <cuda_runtime.h>
#include <math.h>

extern "C" {
#include "kernels/select.h"
}
#include "kernels/reduce.cuh"
#include "common/cuda_check.h"

namespace {

constexpr int kHD = 128, kDG = 128, kMaxNB = 4096, kMaxG = 16;
constexpr int kSelThreads = 512, kSelWarps = kSelThreads / 32;
constexpr int kMaxChunks = kMaxNB / kSelThreads;  // keys per thread

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

// How the K-compression cache is stored: in the KV cache's dtype, or as fp8 E4M3
// (SelectConfig.kcomp_fp8).
enum KcType { KC_BF16, KC_F16, KC_E4M3 };
constexpr int kc_bytes(KcType t) { return t == KC_E4M3 ? 1 : 2; }

__device__ __forceinline__ uint32_t ord_key(float f) {
    uint32_t u = __float_as_uint(f);
    return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

// ---- selection primitives (all threads of a 512-thread program call them) ---------------------

struct SelScratch {
    __align__(16) int bins[256];              // linear-bin histogram of the keys
    __align__(16) int hist[4][256];           // radix digit histograms, one per pass
    int cnt[2][kMaxChunks * kSelWarps];       // per (chunk, warp) flag counts
    float ext[2][kSelWarps];                  // per-warp key max, min
    float cand_key[kSelThreads];              // the keys of the boundary bin, and their blocks
    int cand_j[kSelThreads];
    int n_cand;
    float red[32];
};

// rank[c] = number of set flags f over blocks j' < j (j = c * 512 + tid) in the program; returns
// the number of set flags. Flags of chunks c >= n_chunks must be clear. One barrier: every warp
// scans the per-(chunk, warp) counts itself. buf (0 or 1) picks the scratch, so two calls with no
// barrier between them must use different buffers.
template <int NC>
__device__ int block_rank(const bool (&f)[NC], int n_chunks, int (&rank)[NC],
                          SelScratch &s, int buf) {
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    unsigned bal[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
        bal[c] = c < n_chunks ? __ballot_sync(0xffffffffu, f[c]) : 0u;
        if (c < n_chunks && lane == 0) s.cnt[buf][c * kSelWarps + warp] = __popc(bal[c]);
    }
    __syncthreads();
    // the n_chunks * 16 counts, entry c * 16 + w, 4 consecutive entries per lane: entry (c, warp)
    // is number warp % 4 of lane 4 c + warp / 4
    const int n = n_chunks * kSelWarps, q = warp % 4;
    int v[4], sum = 0;
#pragma unroll
    for (int i = 0; i < 4; i++) v[i] = lane * 4 + i < n ? s.cnt[buf][lane * 4 + i] : 0, sum += v[i];
    int incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
        const int t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
    }
    int before = incl - sum;  // exclusive offset of this lane's entry q
#pragma unroll
    for (int i = 0; i < 3; i++)
        if (i < q) before += v[i];
    const int total = __shfl_sync(0xffffffffu, incl, 31);
#pragma unroll
    for (int c = 0; c < NC; c++) {
        const int off = __shfl_sync(0xffffffffu, before, (4 * c + warp / 4) % 32);
        rank[c] = c < n_chunks ? off + __popc(bal[c] & ((1u << lane) - 1)) : 0;
    }
    return total;
}

// Every lane of the calling warp: the bin d of hist (256 counts, higher bins hold larger keys)
// holding the krem-th largest counted key, the keys in the bins above d, and d's count.
struct BinPick {
    int d, above, cnt;
};
__device__ BinPick pick_bin(const int *hist, int krem) {
    const int lane = threadIdx.x % 32, top = 255 - 8 * lane;  // lane holds bins top .. top - 7
    const int4 a = *reinterpret_cast<const int4 *>(hist + top - 7);
    const int4 b = *reinterpret_cast<const int4 *>(hist + top - 3);
    const int h[8] = {b.w, b.z, b.y, b.x, a.w, a.z, a.y, a.x};
    int sum = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) sum += h[i];
    int incl = sum;
#pragma unroll
    for (int o = 1; o < 32; o *= 2) {
        const int t = __shfl_up_sync(0xffffffffu, incl, o);
        if (lane >= o) incl += t;
    }
    const int first = __ffs(__ballot_sync(0xffffffffu, incl >= krem)) - 1;
    int above = incl - sum, d = top, cnt = 0, found = 0;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        if (!found && above + h[i] >= krem) d = top - i, cnt = h[i], found = 1;
        if (!found) above += h[i];
    }
    BinPick p;
    p.d = __shfl_sync(0xffffffffu, d, first);
    p.above = __shfl_sync(0xffffffffu, above, first);
    p.cnt = __shfl_sync(0xffffffffu, cnt, first);
    return p;
}

// The bin of key x among 256 equal bins from lo, scale = 256 / (range): non-decreasing in x for
// any lo and scale >= 0 (NaN products, 0 x inf, go to bin 0), so a higher bin means a larger key.
__device__ __forceinline__ int linear_bin(float x, float lo, float scale) {
    const float t = (x - lo) * scale;
    return t >= 255.0f ? 255 : t > 0.0f ? (int)t : 0;
}

// f |= the krem largest keys among the candidates (at most 512; ties: lowest block). Each
// candidate is listed in shared memory, then counts the candidates that beat it.
template <int NC>
__device__ void take_ranked(const float (&key)[NC], const bool (&cand)[NC], int n_cand, int krem,
                            bool (&f)[NC], SelScratch &s) {
    const int tid = threadIdx.x;
#pragma unroll
    for (int c = 0; c < NC; c++)
        if (cand[c]) {
            const int i = atomicAdd(&s.n_cand, 1);
            s.cand_key[i] = key[c], s.cand_j[i] = c * kSelThreads + tid;
        }
    __syncthreads();
#pragma unroll
    for (int c = 0; c < NC; c++)
        if (cand[c]) {
            const int j = c * kSelThreads + tid;
            int beaten = 0;
            for (int i = 0; i < n_cand; i++) {
                const float o = s.cand_key[i];
                beaten += o > key[c] || (o == key[c] && s.cand_j[i] < j);
            }
            f[c] |= beaten < krem;
        }
}

// f |= the k largest keys among the candidates (ties: lowest block) by radix select on the
// order-preserving uint32 image of the keys: up to four 8-bit digit passes, each one histogram
// (its own, cleared up front) and one barrier, every warp then finding the digit itself; it stops
// as soon as every key of that digit is taken.
template <int NC>
__device__ void radix_flags(const float (&key)[NC], const bool (&cand)[NC], int n_chunks, int k,
                            bool (&f)[NC], SelScratch &s) {
    const int tid = threadIdx.x, lane = tid % 32;
    uint32_t u[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) u[c] = ord_key(key[c]);
    for (int i = tid; i < 4 * 256; i += kSelThreads) (&s.hist[0][0])[i] = 0;
    __syncthreads();
    uint32_t prefix = 0, mask = 0;
    int krem = k;
    bool exact = false;
    for (int p = 0; p < 4 && !exact; p++) {
        const int shift = 24 - 8 * p;
#pragma unroll
        for (int c = 0; c < NC; c++) {
            if (c >= n_chunks) break;
            const bool act = cand[c] && (u[c] & mask) == prefix;
            const int d = act ? (int)(u[c] >> shift) & 255 : 256;
            const unsigned peers = __match_any_sync(0xffffffffu, d);
            if (act && lane == __ffs(peers) - 1) atomicAdd(&s.hist[p][d], __popc(peers));
        }
        __syncthreads();
        const BinPick pk = pick_bin(s.hist[p], krem);
        prefix |= (uint32_t)pk.d << shift, krem -= pk.above, exact = pk.cnt == krem;
        mask |= 0xffu << shift;
    }
    // exact: the candidates whose digits so far are >= prefix's are exactly the k largest; else
    // prefix is the k-th largest key and krem of the keys equal to it are taken, lowest first
    bool eq[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
        f[c] |= cand[c] && (exact ? u[c] >= prefix : u[c] > prefix);
        eq[c] = !exact && cand[c] && u[c] == prefix;
    }
    if (exact) return;
    int rank[NC];
    block_rank(eq, n_chunks, rank, s, 0);
#pragma unroll
    for (int c = 0; c < NC; c++) f[c] |= eq[c] && rank[c] < krem;
}

// Sets f[c] for the k largest keys among blocks j < n (ties: lowest j), every j < n when n <= k.
// Never clears a flag. The keys go into 256 equal bins between their min and max (two barriers);
// the bins above the one holding the k-th largest key are taken whole, and that bin's keys
// (typically a few) are ranked among themselves; more than 512 of them (many exact ties, or keys
// crowded by a far outlier) go to the radix select instead.
template <int NC>
__device__ void topk_flags(const float (&key)[NC], int n, int k, bool (&f)[NC],
                           SelScratch &s) {
    const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int n_chunks = (n + kSelThreads - 1) / kSelThreads;
    if (n <= k) {
#pragma unroll
        for (int c = 0; c < NC; c++) f[c] |= c * kSelThreads + tid < n;
        return;
    }
    bool valid[NC];
    float mx = -INFINITY, mn = INFINITY;
#pragma unroll
    for (int c = 0; c < NC; c++) {
        valid[c] = c * kSelThreads + tid < n;
        if (valid[c]) mx = fmaxf(mx, key[c]), mn = fminf(mn, key[c]);
    }
    mx = warp_max(mx), mn = -warp_max(-mn);
    if (tid < 256) s.bins[tid] = 0;
    if (tid == 0) s.n_cand = 0;
    if (lane == 0) s.ext[0][warp] = mx, s.ext[1][warp] = mn;
    __syncthreads();
    mx = warp_max(lane < kSelWarps ? s.ext[0][lane] : -INFINITY);
    mn = -warp_max(lane < kSelWarps ? -s.ext[1][lane] : -INFINITY);
    const float scale = 256.0f / (mx - mn);
    int bin[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
        bin[c] = valid[c] ? linear_bin(key[c], mn, scale) : -1;
        if (valid[c]) atomicAdd(&s.bins[bin[c]], 1);
    }
    __syncthreads();
    const BinPick p = pick_bin(s.bins, k);
    const int krem = k - p.above;
    bool cand[NC];
#pragma unroll
    for (int c = 0; c < NC; c++) {
        f[c] |= bin[c] > p.d;
        cand[c] = bin[c] == p.d;
    }
    if (p.cnt == krem) {
#pragma unroll
        for (int c = 0; c < NC; c++) f[c] |= cand[c];
    } else if (p.cnt <= kSelThreads) {
        take_ranked(key, cand, p.cnt, krem, f, s);
    } else {
        radix_flags(key, cand, n_chunks, krem, f, s);
    }
}

// list [max_sel] = the blocks j < n whose flag is set, descending, -1 padded (the lowest blocks
// are dropped past max_sel). Flags of blocks j >= n must be clear.
template <int NC>
__device__ void write_list(int32_t *list, int max_sel, const bool (&f)[NC], int n,
                           SelScratch &s) {
    const int tid = threadIdx.x;
    int rank[NC];
    const int total = block_rank(f, (n + kSelThreads - 1) / kSelThreads, rank, s, 1);
#pragma unroll
    for (int c = 0; c < NC; c++) {
        const int pos = total - 1 - rank[c];
        if (f[c] && pos < max_sel) list[pos] = c * kSelThreads + tid;
    }
    for (int i = total + tid; i < max_sel; i += kSelThreads) list[i] = -1;
}

// ---- RoPE ------------------------------------------------------------------------------------

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

// Rotates the pair (a, b) = (x_i, x_{i+64}) by pos * inv. The angle is the fp32 product, as on
// the CPU; sincosf reduces it exactly (fast path up to |angle| 105615, positions below 105615 for
// i = 0), within 2 ulp of the CPU's double cos/sin of the same float.
__device__ __forceinline__ void rotate_pair(float &a, float &b, float sn, float cs) {
    const float x = a, y = b;
    a = x * cs - y * sn;
    b = y * cs + x * sn;
}
__device__ __forceinline__ void rope_pair(float &a, float &b, int pos, float inv) {
    float sn, cs;
    sincosf((float)pos * inv, &sn, &cs);
    rotate_pair(a, b, sn, cs);
}

// ---- K-compression update --------------------------------------------------------------------

// y[0..127] (shared) = RoPE(rmsnorm(y) * w, pos); called by all threads, threads < 64 work.
__device__ void norm_rope(float *y, const float *w, int pos, const RopeInv &inv, float *red) {
    const int tid = threadIdx.x;
    float v = tid < kDG ? y[tid] : 0.0f;
    float ss = block_sum(v * v, red);
    float r = rsqrtf(ss / kDG + 1e-6f);
    if (tid < kDG) y[tid] = v * r * w[tid];
    __syncthreads();
    if (tid < kDG / 2) rope_pair(y[tid], y[tid + kDG / 2], pos, inv.v[tid]);
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

template <bool BF16, bool KC8>
__global__ void kcomp_update_kernel(void *kcomp, const uint16_t *kraw, const int32_t *block,
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
    if (tid >= kDG) return;
    const int64_t at = (pair * c.nb_max + j) * kDG + tid;
    if (KC8) static_cast<uint8_t *>(kcomp)[at] = __nv_cvt_float_to_fp8(y[tid], __NV_SATFINITE, __NV_E4M3);
    else static_cast<uint16_t *>(kcomp)[at] = to_elem<BF16>(y[tid]);
}

// ---- gate: query projection, then scores + selection -------------------------------------------

__device__ __forceinline__ void cp_async16(void *dst, const void *src, int src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)), "l"(src),
                 "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit_wait_all() {
    asm volatile("cp.async.commit_group;\ncp.async.wait_group 0;\n" ::: "memory");
}

// Programmatic dependent launch: launch_dependents lets the next kernel on the stream start (it
// still waits for this whole grid before reading what it writes); grid_dependency_wait waits
// until the previous kernel has finished and its writes are visible (a no-op without PDL).
__device__ __forceinline__ void launch_dependents() {
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}
__device__ __forceinline__ void grid_dependency_wait() {
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
}

// Sets a list's ready flag (select_gate_cuda's `ready`, DecodeParams.list_ready) once every
// thread of the program has written its entries: the block barrier, then thread 0's gpu-scope
// release store, so a decode program that sees the flag sees the whole list.
__device__ void release_list(int32_t *flag) {
    __syncthreads();
    if (threadIdx.x == 0) asm volatile("st.release.gpu.global.b32 [%0], %1;\n" ::"l"(flag), "r"(1) : "memory");
}

__device__ __forceinline__ void mbar_init(uint64_t *bar) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n"
                 "fence.mbarrier_init.release.cluster;\n" ::"r"(smem_u32(bar))
                 : "memory");
}
__device__ __forceinline__ void mbar_arrive_expect_tx(uint64_t *bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_u32(bar)),
                 "r"(bytes)
                 : "memory");
}
// Announces bytes of copies on bar without arriving (sm_90 expect-tx).
__device__ __forceinline__ void mbar_expect_tx(uint64_t *bar, uint32_t bytes) {
    asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(smem_u32(bar)),
                 "r"(bytes)
                 : "memory");
}
__device__ __forceinline__ void mbar_wait(uint64_t *bar, uint32_t parity) {
    asm volatile(
        "{\n.reg .pred done;\nWAIT_%=:\n"
        "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
        "@!done bra WAIT_%=;\n}\n" ::"r"(smem_u32(bar)),
        "r"(parity)
        : "memory");
}
// Bulk copy (the TMA engine) of bytes (a multiple of 16) from global src to shared dst; its
// completion counts on bar.
__device__ __forceinline__ void bulk_copy(void *dst, const void *src, uint32_t bytes, uint64_t *bar) {
    asm volatile(
        "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
            smem_u32(dst)),
        "l"(src), "r"(bytes), "r"(smem_u32(bar))
        : "memory");
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&b)[4], uint32_t addr) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                 : "r"(addr));
}

// acc (16 x 8 fp32 fragment) += A (16 x 16) B (16 x 8), bf16 or fp16 operands.
template <bool BF16>
__device__ __forceinline__ void mma16816(float (&acc)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
    if (BF16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, "
                     "{%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
                     : "+f"(acc[0]), "+f"(acc[1]), "+f"(acc[2]), "+f"(acc[3])
                     : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// Two floats as a packed pair in the operand type (bf16 or fp16): hi rounds (x, y), lo rounds
// what hi left over, so hi + lo carries 16 (bf16) / 22 (fp16) significant bits.
template <bool BF16>
__device__ __forceinline__ void split2(float x, float y, uint32_t &hi, uint32_t &lo) {
    if (BF16) {
        __nv_bfloat162 h = __floats2bfloat162_rn(x, y);
        float2 hf = __bfloat1622float2(h);
        __nv_bfloat162 l = __floats2bfloat162_rn(x - hf.x, y - hf.y);
        hi = *reinterpret_cast<uint32_t *>(&h), lo = *reinterpret_cast<uint32_t *>(&l);
    } else {
        __half2 h = __floats2half2_rn(x, y);
        float2 hf = __half22float2(h);
        __half2 l = __floats2half2_rn(x - hf.x, y - hf.y);
        hi = *reinterpret_cast<uint32_t *>(&h), lo = *reinterpret_cast<uint32_t *>(&l);
    }
}

constexpr int kProjThreads = 256, kProjWarps = kProjThreads / 32;
// Registers of a selection program: 512 x 104 leaves room for a projection program (256 x 48) on
// the same SM, so both kernels run at once.
constexpr int kSelRegs = 104;
// K-compression rows a selection program copies before the projection has finished (the rest
// right after it): H100, batch 16, E4M3 cache, 128k: 22.0 / 21.3 / 21.8 us for 512 / 256 / 128
// (32k: the same within 0.1 us), the projection done at 3.4 / 2.2 / 1.8 us.
constexpr int kRowsEarly = 256;
constexpr int kProjSeqs = 16, kProjCols = 16;  // one projection program: 16 sequences x 16 columns
constexpr int kProjSplit = 2;  // ... and half of the G * 128 input rows (H100: 1, 2, 4 parts
                               // 14.2, 13.6, 14.3 us for the whole bf16 selection at batch 16, 32k)

// Shared memory of a projection program: w [n_in, 16] (bf16; 16-byte half h of row k stored at
// half h ^ ((k / 4) % 2), so ldmatrix reads are conflict-free), x [16, n_in + 8] (dtype; rows padded
// by 16 bytes), red [8 warps, 16, 16] fp32. n_in = G * 128 / kProjSplit.
int proj_smem_bytes(int G) {
    const int n_in = G * kHD / kProjSplit;
    return n_in * kProjCols * 2 + kProjSeqs * (n_in + 8) * 2 + kProjWarps * kProjSeqs * kProjCols * 4;
}

// Partial projections: qproj[r, b, kvh, 16 cs .. 16 cs + 15] = q[b, kvh, rows of part r] @
// wq[kvh][those rows, those columns] for the 16 sequences b = 16 (blockIdx.z / kProjSplit) + 0..15
// (< B), r = blockIdx.z % kProjSplit: program (cs, kvh, z). Tensor cores: A = the queries (fp16
// queries as a high and a low bf16 part, exact), B = the Wq columns; warp w sums the k-steps
// w, w + 8, ...; the 8 warps' sums are added in shared memory in a fixed order.
template <bool BF16>
__global__ void __launch_bounds__(kProjThreads)
    gate_query_kernel(float *qproj, const uint16_t *q_nope, const uint16_t *wq, SelectConfig c) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    const int cs = blockIdx.x, kvh = blockIdx.y, part = blockIdx.z % kProjSplit;
    const int b0 = blockIdx.z / kProjSplit * kProjSeqs, tid = threadIdx.x;
    const int warp = tid / 32, lane = tid % 32, g = lane >> 2, t4 = lane & 3;
    const int n_all = c.G * kHD, n_in = n_all / kProjSplit, xs = n_in + 8;
    uint16_t *w_s = reinterpret_cast<uint16_t *>(smem_raw), *x_s = w_s + n_in * kProjCols;
    float(*red)[kProjSeqs][kProjCols] =
        reinterpret_cast<float(*)[kProjSeqs][kProjCols]>(x_s + kProjSeqs * xs);
    const uint16_t *w = wq + ((int64_t)kvh * n_all + part * n_in) * kDG + kProjCols * cs;
    for (int i = tid; i < n_in * 2; i += kProjThreads) {  // weights: no kernel before this one writes them
        const int k = i >> 1, h = i & 1;
        cp_async16(w_s + k * kProjCols + 8 * (h ^ ((k >> 2) & 1)), w + (int64_t)k * kDG + 8 * h, 16);
    }
    grid_dependency_wait();  // PDL: every kernel before this one has finished past this line
    launch_dependents();     // so the selection kernel, started now, may read kcomp before its own wait
    for (int i = tid; i < kProjSeqs * (n_in / 8); i += kProjThreads) {
        const int s = i / (n_in / 8), ch = i % (n_in / 8), b = b0 + s;
        const uint16_t *src = b < c.B ? q_nope + ((int64_t)b * c.HKV + kvh) * n_all + part * n_in + 8 * ch : q_nope;
        cp_async16(x_s + s * xs + 8 * ch, src, b < c.B ? 16 : 0);
    }
    cp_async_commit_wait_all();
    __syncthreads();
    float acc[2][4] = {{0, 0, 0, 0}, {0, 0, 0, 0}};
    for (int ks = warp; ks < n_in / 16; ks += kProjWarps) {
        uint32_t x[4];  // rows g, g + 8 at k 2 t4 and 2 t4 + 8
#pragma unroll
        for (int i = 0; i < 4; i++)
            x[i] = *reinterpret_cast<const uint32_t *>(x_s + (g + 8 * (i & 1)) * xs + 16 * ks + 8 * (i >> 1) + 2 * t4);
        const int mi = lane >> 3, k = 16 * ks + 8 * (mi & 1) + (lane & 7), h = mi >> 1;
        uint32_t bw[4];
        ldsm_x4_trans(bw, smem_u32(w_s + k * kProjCols + 8 * (h ^ ((k >> 2) & 1))));
        if (BF16) {
#pragma unroll
            for (int nt = 0; nt < 2; nt++) mma16816<true>(acc[nt], x[0], x[1], x[2], x[3], bw[2 * nt], bw[2 * nt + 1]);
        } else {
            uint32_t hi[4], lo[4];
#pragma unroll
            for (int i = 0; i < 4; i++) {
                float2 f = __half22float2(*reinterpret_cast<const __half2 *>(&x[i]));
                split2<true>(f.x, f.y, hi[i], lo[i]);
            }
#pragma unroll
            for (int nt = 0; nt < 2; nt++) {
                mma16816<true>(acc[nt], hi[0], hi[1], hi[2], hi[3], bw[2 * nt], bw[2 * nt + 1]);
                mma16816<true>(acc[nt], lo[0], lo[1], lo[2], lo[3], bw[2 * nt], bw[2 * nt + 1]);
            }
        }
    }
#pragma unroll
    for (int nt = 0; nt < 2; nt++)
#pragma unroll
        for (int i = 0; i < 4; i++) red[warp][g + 8 * (i >> 1)][8 * nt + 2 * t4 + (i & 1)] = acc[nt][i];
    __syncthreads();
    const int s = tid / kProjCols, col = tid % kProjCols;
    float sum = 0;
#pragma unroll
    for (int wi = 0; wi < kProjWarps; wi++) sum += red[wi][s][col];
    if (b0 + s < c.B)
        qproj[(((int64_t)part * c.B + b0 + s) * c.HKV + kvh) * kDG + kProjCols * cs + col] = sum;
}

template <KcType KC>
struct GateSmem {
    static constexpr int kRowBytes = kDG * kc_bytes(KC);
    __align__(16) unsigned char kbuf[kSelThreads * kRowBytes];  // 512 K-compression rows, as in memory
    // The gate query (projected, normalised, rotated) as MMA operand words: qw[0][i] / qw[1][i]
    // the high / low half-precision parts of columns (2 i, 2 i + 1); rows 68 words apart, so the
    // two rows' same words sit in different banks.
    __align__(16) uint32_t qw[2][68];
    uint64_t bar;   // completion of the K-compression bulk copies
    SelScratch sel;
};

// Thread 0: bulk copies of K-compression rows [row0, row0 + n) (0 <= n <= 512, within one 512-row
// chunk) into their places in kbuf, counted on sm.bar; arrive: also the thread's arrival on it
// (the phase completes after that and the bytes of every copy announced before it).
template <KcType KC>
__device__ void issue_rows(GateSmem<KC> &sm, const unsigned char *kc, int row0, int n, bool arrive) {
    constexpr int rb = GateSmem<KC>::kRowBytes;
    unsigned char *dst = sm.kbuf + (row0 % kSelThreads) * rb;
    if (arrive) mbar_arrive_expect_tx(&sm.bar, (uint32_t)n * rb);
    else mbar_expect_tx(&sm.bar, (uint32_t)n * rb);
    for (int r = 0; r < n; r += 128)
        bulk_copy(dst + r * rb, kc + (int64_t)(row0 + r) * rb, (uint32_t)min(128, n - r) * rb, &sm.bar);
}

// Warp 0: sm.qw = RoPE(rmsnorm(qp) * qnorm) split into high and low parts, qp [128] the projected
// query (global: the sum of kProjSplit partial projections, part_stride floats apart). Lane l owns
// columns 2 l, 2 l + 1 and their RoPE partners 2 l + 64, 2 l + 65: w holds their qnorm weights,
// (sn, cs) the rotations of the pairs (2 l, 2 l + 64) and (2 l + 1, 2 l + 65), formed
// before the projection finished. A block barrier must follow.
template <KcType KC>
__device__ void finish_query(GateSmem<KC> &sm, const float *qp, int64_t part_stride, const float (&w)[4],
                             const float (&sn)[2], const float (&cs)[2]) {
    const int lane = threadIdx.x;
    float x[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
    for (int r = 0; r < kProjSplit; r++) {
        const float2 lo = *reinterpret_cast<const float2 *>(qp + r * part_stride + 2 * lane);
        const float2 hi = *reinterpret_cast<const float2 *>(qp + r * part_stride + 2 * lane + kDG / 2);
        x[0] += lo.x, x[1] += lo.y, x[2] += hi.x, x[3] += hi.y;
    }
    const float rs = rsqrtf(warp_sum(x[0] * x[0] + x[1] * x[1] + x[2] * x[2] + x[3] * x[3]) / kDG + 1e-6f);
#pragma unroll
    for (int i = 0; i < 4; i++) x[i] = x[i] * rs * w[i];
    rotate_pair(x[0], x[2], sn[0], cs[0]);
    rotate_pair(x[1], x[3], sn[1], cs[1]);
    split2<KC == KC_BF16>(x[0], x[1], sm.qw[0][lane], sm.qw[1][lane]);
    split2<KC == KC_BF16>(x[2], x[3], sm.qw[0][lane + 32], sm.qw[1][lane + 32]);
}

// Score-MMA operand B for lane (n = lane / 4, t4 = lane % 4): column n = 0 holds the high part,
// n = 1 the low part of the query (n >= 2 zero). K-step (p, h) pairs k-rows 2 t4, 2 t4 + 1 with
// query columns 32 p + 8 t4 + 4 h + {0, 1} and k-rows 2 t4 + 8, + 9 with columns + {2, 3}: the
// same permutation as the rows' A operands in score_rows, so the dot products are unchanged.
// Those are words 16 p + 4 t4 + 0..3 of sm.qw.
__device__ void query_frags(uint32_t (&bq)[4][2][2], const uint32_t (&qw)[2][68]) {
    const int lane = threadIdx.x % 32, n = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int p = 0; p < 4; p++) {
        const uint4 v = *reinterpret_cast<const uint4 *>(&qw[n & 1][16 * p + 4 * t4]);
        const uint32_t z = n < 2 ? ~0u : 0u;
        bq[p][0][0] = v.x & z, bq[p][0][1] = v.y & z, bq[p][1][0] = v.z & z, bq[p][1][1] = v.w & z;
    }
}

// The warp's 32 rows 32 warp .. + 31 of kbuf dotted with the query (bq): lane l returns row l's
// product. Thread (g = lane / 4, t4 = lane % 4) reads rows 16 t + g and 16 t + g + 8, 16 bytes at
// columns 32 p + 8 t4; odd g read the p pairs (0, 1), (2, 3) in swapped order, so the 8 lanes of
// each shared-memory phase hit 8 different bank groups.
template <bool BF16>
__device__ __forceinline__ float score_rows(const uint16_t *kbuf, const uint32_t (&bq)[4][2][2]) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t4 = lane & 3, odd = g & 1;
    float s[2][2];
#pragma unroll
    for (int t = 0; t < 2; t++) {
        const uint16_t *row = kbuf + (32 * warp + 16 * t + g) * kDG + 8 * t4;
        float acc[4] = {0, 0, 0, 0};
#pragma unroll
        for (int p2 = 0; p2 < 4; p2 += 2) {  // the column groups p2, p2 + 1
            uint4 raw[2][2];
#pragma unroll
            for (int i = 0; i < 2; i++)
#pragma unroll
                for (int hh = 0; hh < 2; hh++)
                    raw[i][hh] = *reinterpret_cast<const uint4 *>(row + 8 * hh * kDG + 32 * (p2 + (i ^ odd)));
#pragma unroll
            for (int i = 0; i < 2; i++) {
                const int p = p2 + i;
                const uint4 r0 = odd ? raw[i ^ 1][0] : raw[i][0], r8 = odd ? raw[i ^ 1][1] : raw[i][1];
                mma16816<BF16>(acc, r0.x, r8.x, r0.y, r8.y, bq[p][0][0], bq[p][0][1]);
                mma16816<BF16>(acc, r0.z, r8.z, r0.w, r8.w, bq[p][1][0], bq[p][1][1]);
            }
        }
        s[t][0] = acc[0] + acc[1], s[t][1] = acc[2] + acc[3];  // rows 16t + g, 16t + g + 8 (t4 = 0)
    }
    const int src = 4 * (lane & 7), t = lane >> 4, hh = (lane >> 3) & 1;
    const float v00 = __shfl_sync(0xffffffffu, s[0][0], src), v01 = __shfl_sync(0xffffffffu, s[0][1], src);
    const float v10 = __shfl_sync(0xffffffffu, s[1][0], src), v11 = __shfl_sync(0xffffffffu, s[1][1], src);
    return t ? (hh ? v11 : v10) : (hh ? v01 : v00);
}

// E4M3 rows: the query's B operand for lane (n = lane / 4, t4 = lane % 4), fp16 high part in
// column n = 0 and low part in n = 1. K-step (p, i) pairs k-rows 2 t4, 2 t4 + 1 with query
// columns 64 p + 16 t4 + 4 i + {0, 1} and k-rows 2 t4 + 8, + 9 with columns + {2, 3}: the order in
// which score_rows_e4m3 unpacks each thread's 16-byte row loads; words 32 p + 8 t4 + 0..7 of sm.qw.
__device__ void query_frags_e4m3(uint32_t (&bq)[2][4][2], const uint32_t (&qw)[2][68]) {
    const int lane = threadIdx.x % 32, n = lane >> 2, t4 = lane & 3;
    const uint32_t z = n < 2 ? ~0u : 0u;
#pragma unroll
    for (int p = 0; p < 2; p++)
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const uint4 v = *reinterpret_cast<const uint4 *>(&qw[n & 1][32 * p + 8 * t4 + 4 * h]);
            bq[p][2 * h][0] = v.x & z, bq[p][2 * h][1] = v.y & z, bq[p][2 * h + 1][0] = v.z & z, bq[p][2 * h + 1][1] = v.w & z;
        }
}

// Two E4M3 values (the low and high byte of v) as a packed fp16 pair (exact).
__device__ __forceinline__ uint32_t e4m3x2_to_f16x2(uint32_t v) {
    const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2((__nv_fp8x2_storage_t)(v & 0xffffu), __NV_E4M3);
    return (uint32_t)h.x | (uint32_t)h.y << 16;
}

// score_rows for E4M3 rows (128 bytes each): thread (g, t4) reads 16 bytes of rows 16 t + g and
// 16 t + g + 8 at columns 64 p + 16 t4 (odd g: the two halves p in swapped order, so the 8 lanes
// of a shared-memory phase cover all 32 banks), unpacks them to fp16 and runs fp16 MMAs.
__device__ __forceinline__ float score_rows_e4m3(const unsigned char *kbuf, const uint32_t (&bq)[2][4][2]) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t4 = lane & 3, odd = g & 1;
    float s[2][2];
#pragma unroll
    for (int t = 0; t < 2; t++) {
        const unsigned char *row = kbuf + (32 * warp + 16 * t + g) * kDG + 16 * t4;
        uint4 raw[2][2];
#pragma unroll
        for (int i = 0; i < 2; i++)
#pragma unroll
            for (int hh = 0; hh < 2; hh++) raw[i][hh] = *reinterpret_cast<const uint4 *>(row + 8 * hh * kDG + 64 * (i ^ odd));
        float acc[4] = {0, 0, 0, 0};
#pragma unroll
        for (int p = 0; p < 2; p++) {
            const uint4 r0 = odd ? raw[p ^ 1][0] : raw[p][0], r8 = odd ? raw[p ^ 1][1] : raw[p][1];
            const uint32_t w0[4] = {r0.x, r0.y, r0.z, r0.w}, w8[4] = {r8.x, r8.y, r8.z, r8.w};
#pragma unroll
            for (int i = 0; i < 4; i++)
                mma16816<false>(acc, e4m3x2_to_f16x2(w0[i]), e4m3x2_to_f16x2(w8[i]), e4m3x2_to_f16x2(w0[i] >> 16),
                                e4m3x2_to_f16x2(w8[i] >> 16), bq[p][i][0], bq[p][i][1]);
        }
        s[t][0] = acc[0] + acc[1], s[t][1] = acc[2] + acc[3];
    }
    const int src = 4 * (lane & 7), t = lane >> 4, hh = (lane >> 3) & 1;
    const float v00 = __shfl_sync(0xffffffffu, s[0][0], src), v01 = __shfl_sync(0xffffffffu, s[0][1], src);
    const float v10 = __shfl_sync(0xffffffffu, s[1][0], src), v11 = __shfl_sync(0xffffffffu, s[1][1], src);
    return t ? (hh ? v11 : v10) : (hh ? v01 : v00);
}

// The warp's 32 rows of kbuf dotted with the gate query: lane l returns row 32 warp + l's product.
template <KcType KC>
struct RowScorer {
    uint32_t bq[4][2][2];
    __device__ void init(const uint32_t (&qw)[2][68]) { query_frags(bq, qw); }
    __device__ float score(const unsigned char *kbuf) const {
        return score_rows<KC == KC_BF16>(reinterpret_cast<const uint16_t *>(kbuf), bq);
    }
};
template <>
struct RowScorer<KC_E4M3> {
    uint32_t bq[2][4][2];
    __device__ void init(const uint32_t (&qw)[2][68]) { query_frags_e4m3(bq, qw); }
    __device__ float score(const unsigned char *kbuf) const { return score_rows_e4m3(kbuf, bq); }
};

// Softmax over the keys of blocks j < n (n >= 1), then flags every probability > threshold.
template <int NC>
__device__ void threshold_flags(const float (&key)[NC], int n, float threshold,
                                bool (&f)[NC], float *red) {
    const int tid = threadIdx.x;
    float mx = -INFINITY, sum = 0;
#pragma unroll
    for (int c = 0; c < NC; c++)
        if (c * kSelThreads + tid < n) mx = fmaxf(mx, key[c]);
    mx = block_max(mx, red);
#pragma unroll
    for (int c = 0; c < NC; c++)
        if (c * kSelThreads + tid < n) sum += expf(key[c] - mx);
    sum = block_sum(sum, red);
#pragma unroll
    for (int c = 0; c < NC; c++)
        f[c] |= c * kSelThreads + tid < n && expf(key[c] - mx) / sum > threshold;
}

// Program (b, kvh), launched as a programmatic dependent of gate_query_kernel: copies its first
// kRowsEarly K-compression rows into shared memory (bulk copies) before waiting for the projection
// and the rest of the first 512 after it, then normalises and rotates the query, scores the rows on
// the tensor cores, selects and writes the list. Lets the next kernel (the sparse decode) launch as
// soon as it has started. NC: the 512-block chunks the caches hold (nb_max <= 512 NC), so the
// per-chunk loops are no longer than they need be (the selection's tail is issue-bound: 16 warps
// run the same scalar steps).
template <KcType KC, int NC>
__global__ void __maxnreg__(kSelRegs)
    gate_select_kernel(int32_t *idx, int32_t *ready, const float *qproj, const unsigned char *kcomp,
                       const int32_t *cache_len, const float *qnorm, SelectConfig c, RopeInv inv) {
    extern __shared__ __align__(16) unsigned char smem_raw[];
    GateSmem<KC> &sm = *reinterpret_cast<GateSmem<KC> *>(smem_raw);
    const int b = blockIdx.x, kvh = blockIdx.y, tid = threadIdx.x;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    const unsigned char *kc = kcomp + pair * c.nb_max * GateSmem<KC>::kRowBytes;
    // The first rows are copied before the projection finishes, the rest after: fewer bytes in
    // flight ahead of the projection's loads, so the query is ready sooner.
    const int rows0 = min(c.nb_max, kSelThreads), early = min(rows0, kRowsEarly);
    if (tid == 0) mbar_init(&sm.bar), issue_rows(sm, kc, 0, early, false);
    launch_dependents();
    const int len = cache_len[b];
    float w[4], sn[2], cs[2];  // warp 0: its columns' qnorm weights and RoPE rotations
    if (tid < 32) {
        const int cols[4] = {2 * tid, 2 * tid + 1, 2 * tid + kDG / 2, 2 * tid + 1 + kDG / 2};
#pragma unroll
        for (int i = 0; i < 4; i++) w[i] = qnorm[cols[i]];
#pragma unroll
        for (int i = 0; i < 2; i++) sincosf((float)max(len - 1, 0) * inv.v[cols[i]], &sn[i], &cs[i]);
    }
    __syncthreads();  // the barrier is initialised before anyone waits on it
    grid_dependency_wait();  // the projection kernel has finished
    if (tid == 0) issue_rows(sm, kc, early, rows0 - early, true);
    int32_t *list = idx + pair * c.max_sel;
    if (len <= 0) {
        mbar_wait(&sm.bar, 0);  // no bulk copy may land after the program exits
        for (int i = tid; i < c.max_sel; i += kSelThreads) list[i] = -1;
        if (ready) release_list(ready + pair);
        return;
    }
    if (tid < 32) finish_query(sm, qproj + pair * kDG, (int64_t)c.B * c.HKV * kDG, w, sn, cs);
    __syncthreads();
    RowScorer<KC> scorer;
    scorer.init(sm.qw);
    const int n_cand = len / SEER_BLOCK, cur = (len - 1) / SEER_BLOCK;
    const int n_chunks = (n_cand + kSelThreads - 1) / kSelThreads;
    const float scale = 1.0f / sqrtf((float)kDG);
    mbar_wait(&sm.bar, 0);
    float key[NC];
#pragma unroll
    for (int ch = 0; ch < NC; ch++) {
        key[ch] = 0.0f;
        if (ch >= n_chunks) continue;
        if (ch > 0) {  // refill kbuf once every warp is done with the previous rows
            __syncthreads();
            if (tid == 0) {
                asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
                issue_rows(sm, kc, ch * kSelThreads, min(kSelThreads, n_cand - ch * kSelThreads), true);
            }
            mbar_wait(&sm.bar, ch & 1);
        }
        key[ch] = scorer.score(sm.kbuf) * scale;
    }
    bool f[NC] = {};
    const int k = c.budget / SEER_BLOCK;
    if (k > 0) topk_flags(key, n_cand, k, f, sm.sel);
    else if (n_cand > 0) threshold_flags(key, n_cand, c.threshold, f, sm.sel.red);
#pragma unroll
    for (int ch = 0; ch < NC; ch++) {
        const int j = ch * kSelThreads + tid;
        f[ch] = (f[ch] && j < n_cand) || j == 0 || j == cur;
    }
    write_list(list, c.max_sel, f, cur + 1, sm.sel);
    if (ready) release_list(ready + pair);
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
    __shared__ SelScratch sel;
    const int kvh = blockIdx.x, b = blockIdx.y, tid = threadIdx.x;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    const int nb = (cache_len[b] + SEER_BLOCK - 1) / SEER_BLOCK;
    float key[kMaxChunks];
#pragma unroll
    for (int ch = 0; ch < kMaxChunks; ch++) key[ch] = 0.0f;
    for (int g = 0; g < c.G; g++) {
        const float *w = ws + (pair * c.G + g) * c.nb_max * 2;
        float mx = -INFINITY, sum = 0;
        for (int j = tid; j < nb; j += kSelThreads) mx = fmaxf(mx, w[2 * j]);
        mx = block_max(mx, sel.red);
        for (int j = tid; j < nb; j += kSelThreads) sum += w[2 * j + 1] * __expf(w[2 * j] - mx);
        sum = block_sum(sum, sel.red);
#pragma unroll
        for (int ch = 0; ch < kMaxChunks; ch++) {
            const int j = ch * kSelThreads + tid;
            if (j < nb) key[ch] = fmaxf(key[ch], __expf(w[2 * j] - mx) / sum);
        }
    }
    float tot = 0;
#pragma unroll
    for (int ch = 0; ch < kMaxChunks; ch++) tot += key[ch];
    tot = block_sum(tot, sel.red);
#pragma unroll
    for (int ch = 0; ch < kMaxChunks; ch++) key[ch] = key[ch] / (tot + 1e-9f);
    bool f[kMaxChunks] = {};
    const int k = c.budget / SEER_BLOCK;
    if (k > 0) {
        topk_flags(key, nb, k, f, sel);
    } else {
#pragma unroll
        for (int ch = 0; ch < kMaxChunks; ch++) f[ch] = ch * kSelThreads + tid < nb && key[ch] > c.threshold;
    }
    write_list(idx + pair * c.max_sel, c.max_sel, f, nb, sel);
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
    __shared__ float page_score[kMaxNB];
    __shared__ SelScratch sel;
    const int kvh = blockIdx.x, b = blockIdx.y, tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
    const int64_t pair = (int64_t)b * c.HKV + kvh;
    const int np = (cache_len[b] + SEER_BLOCK - 1) / SEER_BLOCK;
    const int kq = max(3, c.budget / SEER_BLOCK);
    bool f[kMaxChunks] = {};
    for (int g = 0; g < c.G; g++) {
        float q4[4];
        for (int e = 0; e < 4; e++) q4[e] = ld<BF16>(q, (pair * c.G + g) * kHD + lane * 4 + e);
        for (int j = warp; j < np; j += kSelWarps) {
            int64_t off = (pair * c.nb_max + j) * kHD + lane * 4;
            float s = 0;
            for (int e = 0; e < 4; e++)
                s += fmaxf(q4[e] * ld<BF16>(kmax, off + e), q4[e] * ld<BF16>(kmin, off + e));
            s = warp_sum(s);
            if (lane == 0) page_score[j] = s;
        }
        __syncthreads();
        float key[kMaxChunks];
#pragma unroll
        for (int ch = 0; ch < kMaxChunks; ch++) {
            const int j = ch * kSelThreads + tid;
            key[ch] = j < np ? page_score[j] : 0.0f;
        }
        __syncthreads();  // page_score is rewritten for the next head
        topk_flags(key, np, kq, f, sel);
    }
    write_list(idx + pair * c.max_sel, c.max_sel, f, np, sel);
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
    const uint16_t *raw = (const uint16_t *)kraw;
    const RopeInv &inv = rope_inv(c->rope_theta);
    auto kernel = dtype == SEER_BF16 ? (c->kcomp_fp8 ? kcomp_update_kernel<true, true> : kcomp_update_kernel<true, false>)
                                     : (c->kcomp_fp8 ? kcomp_update_kernel<false, true> : kcomp_update_kernel<false, false>);
    kernel<<<grid, 256, 0, s>>>(kcomp, raw, block, wk, knorm, *c, inv);
    return launched("kcomp_update_kernel", err);
}

extern "C" size_t select_gate_ws_bytes(const SelectConfig *c) {
    return sizeof(float) * kProjSplit * c->B * c->HKV * kDG;
}

using GateSelectFn = void (*)(int32_t *, int32_t *, const float *, const unsigned char *, const int32_t *,
                             const float *, SelectConfig, RopeInv);

template <KcType KC>
static GateSelectFn gate_select_kernel_nc(int nc) {
    return nc == 1 ? gate_select_kernel<KC, 1> : nc == 2 ? gate_select_kernel<KC, 2>
         : nc <= 4 ? gate_select_kernel<KC, 4> : gate_select_kernel<KC, kMaxChunks>;
}

// The selection kernel for a cache type and chunk count (1, 2, 4 or 8: nc rounded up).
static GateSelectFn gate_select_kernel_for(KcType kc, int nc) {
    return kc == KC_E4M3 ? gate_select_kernel_nc<KC_E4M3>(nc)
         : kc == KC_BF16 ? gate_select_kernel_nc<KC_BF16>(nc) : gate_select_kernel_nc<KC_F16>(nc);
}

// Dynamic shared memory of a selection program (the fp16 and bf16 layouts are the same size).
static int gate_smem_bytes(KcType kc) {
    return kc == KC_E4M3 ? (int)sizeof(GateSmem<KC_E4M3>) : (int)sizeof(GateSmem<KC_BF16>);
}

// Sets the shared-memory limits of the gate kernels once per device (the attributes apply to
// the current one only).
static int gate_attributes(SeerErr *err) {
    static uint64_t done;
    const uint64_t dev = cuda_device_bit();
    if (done & dev) return 0;
    const int proj = proj_smem_bytes(kMaxG);
    CUDA_TRY(cudaFuncSetAttribute(gate_query_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, proj));
    CUDA_TRY(cudaFuncSetAttribute(gate_query_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, proj));
    for (int kc = 0; kc < 3; kc++)
        for (int nc = 1; nc <= kMaxChunks; nc *= 2)
            CUDA_TRY(cudaFuncSetAttribute(gate_select_kernel_for((KcType)kc, nc),
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, gate_smem_bytes((KcType)kc)));
    done |= dev;
    return 0;
}

extern "C" int select_gate_cuda(int32_t *idx, int32_t *ready, float *ws, const void *q_nope, const void *kcomp,
                                const int32_t *cache_len, const uint16_t *wq, const float *qnorm,
                                SeerDType dtype, const SelectConfig *c, void *stream,
                                SeerErr *err) {
    if (check_shapes(c, dtype, err) || gate_attributes(err)) return -1;
    float *qproj = ws;  // [kProjSplit, B, HKV, DG] partial projections, from the first kernel to the second
    cudaStream_t s = (cudaStream_t)stream;
    dim3 pgrid(kDG / kProjCols, c->HKV, ceil_div(c->B, kProjSeqs) * kProjSplit);
    const int psmem = proj_smem_bytes(c->G);
    cudaLaunchAttribute attr;
    const cudaLaunchConfig_t pcfg = launch_config(pgrid, dim3(kProjThreads), psmem, s, 1, &attr);
    const uint16_t *qn = (const uint16_t *)q_nope;
    cudaError_t e = dtype == SEER_BF16 ? cudaLaunchKernelEx(&pcfg, gate_query_kernel<true>, qproj, qn, wq, *c)
                                       : cudaLaunchKernelEx(&pcfg, gate_query_kernel<false>, qproj, qn, wq, *c);
    if (e != cudaSuccess) return seer_fail(err, "select.cu: gate_query_kernel: %s", cudaGetErrorString(e));
    if (launched("gate_query_kernel", err)) return -1;
    // Both kernels are programmatic dependents. The projection lets the selection kernel start only
    // after its own griddepcontrol.wait, so everything before the projection on the stream has
    // finished by then: the selection kernel may read kcomp, cache_len and qnorm before its
    // griddepcontrol.wait, and only waits for qproj.
    const KcType kc_type = c->kcomp_fp8 ? KC_E4M3 : dtype == SEER_BF16 ? KC_BF16 : KC_F16;
    const GateSelectFn kernel = gate_select_kernel_for(kc_type, ceil_div(c->nb_max, kSelThreads));
    const cudaLaunchConfig_t cfg = launch_config(dim3(c->B, c->HKV), dim3(kSelThreads), gate_smem_bytes(kc_type), s, 1, &attr);
    const float *qp = qproj;
    const unsigned char *kc = (const unsigned char *)kcomp;
    const RopeInv inv = rope_inv(c->rope_theta);
    e = cudaLaunchKernelEx(&cfg, kernel, idx, ready, qp, kc, cache_len, qnorm, *c, inv);
    if (e != cudaSuccess) return seer_fail(err, "select.cu: gate_select_kernel: %s", cudaGetErrorString(e));
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
