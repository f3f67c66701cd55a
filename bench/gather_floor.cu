// gather_floor.cu: the gather floor kernel of `seer bench decode --floor 1` (see gather_floor.h).
//
// One program of 256 threads per (2 list slots, KV head, sequence). Its 2 slots' K and V tiles
// ([64, 128] 16-bit each, 16 KB) are 4 x 16 KB = 4,096 chunks of 16 bytes: thread i loads chunk
// i % 16 of rows i / 16, 16 + i / 16, 32 + i / 16 and 48 + i / 16 of each tile, all 16 loads
// issued before any is used. The loaded words are XOR-folded per thread, then across the
// program (shuffles, then one word per warp in shared memory), and thread 0 XORs the program's
// word into the pair's sink with 4 atomics.
#include <cuda_runtime.h>

extern "C" {
#include "bench/gather_floor.h"
#include "common/cuda_check.h"
}

namespace {

constexpr int kHD = 128;                        // head dim the kernel is built for
constexpr int kBlk = SEER_BLOCK;                // tokens per tile
constexpr int kThreads = 256;
constexpr int kSlots = 2;                       // list slots per program
constexpr int kChunks = kHD * 2 / 16;           // 16-byte chunks per row (16)
constexpr int kRowsPerRound = kThreads / kChunks;  // rows one round of loads covers (16)
constexpr int kRounds = kBlk / kRowsPerRound;   // rounds per tile (4)
constexpr int kLoads = kSlots * 2 * kRounds;    // loads per thread: slots x (K, V) x rounds (16)
constexpr int kMaxSel = 16384;                  // longest block list, as decode.cu

// Programmatic dependent launch (as decode.cu): wait for the previous kernel on the stream (a
// no-op without PDL); let the next kernel launch.
__device__ __forceinline__ void grid_dependency_wait() {
    asm volatile("griddepcontrol.wait;\n" ::: "memory");
}
__device__ __forceinline__ void launch_dependents() {
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
}

__device__ __forceinline__ void xor4(uint4 &a, const uint4 &b) {
    a.x ^= b.x, a.y ^= b.y, a.z ^= b.z, a.w ^= b.w;
}

// The XOR of x over the program; valid in thread 0. Contains __syncthreads.
__device__ __forceinline__ uint4 block_xor(uint4 x, int tid) {
    __shared__ uint4 part[kThreads / 32];
    for (int o = 16; o; o >>= 1) {
        x.x ^= __shfl_xor_sync(0xffffffffu, x.x, o), x.y ^= __shfl_xor_sync(0xffffffffu, x.y, o);
        x.z ^= __shfl_xor_sync(0xffffffffu, x.z, o), x.w ^= __shfl_xor_sync(0xffffffffu, x.w, o);
    }
    if (tid % 32 == 0) part[tid / 32] = x;
    __syncthreads();
    if (tid == 0)
        for (int w = 1; w < kThreads / 32; w++) xor4(x, part[w]);
    return x;
}

__global__ void __launch_bounds__(kThreads, 2) gather_floor_kernel(const DecodeParams p,
                                                                  uint32_t *sink) {
    const int slot0 = blockIdx.x * kSlots, kvh = blockIdx.y, b = blockIdx.z, tid = threadIdx.x;
    const int ch = tid % kChunks, r0 = tid / kChunks;
    grid_dependency_wait();  // PDL: the previous kernel's writes are visible past this line
    const int32_t *list = p.block_idx + b * p.idx_sb + kvh * p.idx_sh;
    const int len = __ldg(p.cache_len + b);
    int blk[kSlots];
#pragma unroll
    for (int s = 0; s < kSlots; s++) blk[s] = slot0 + s < p.max_sel ? __ldg(list + slot0 + s) : -1;
    const uint16_t *kb = (const uint16_t *)p.k + b * p.k_sb + kvh * p.k_sh + ch * 8;
    const uint16_t *vb = (const uint16_t *)p.v + b * p.v_sb + kvh * p.v_sh + ch * 8;
    uint4 w[kLoads];
#pragma unroll
    for (int i = 0; i < kLoads; i++) {  // load i: slot i / 8, K then V, rows 16 (i % 4) + r0
        const int s = i / (2 * kRounds), is_v = (i / kRounds) % 2;
        const int tok = blk[s] * kBlk + (i % kRounds) * kRowsPerRound + r0;
        const bool ok = blk[s] >= 0 && tok < len;
        const uint16_t *src = is_v ? vb + (ok ? tok : 0) * p.v_st : kb + (ok ? tok : 0) * p.k_st;
        w[i] = ok ? __ldg(reinterpret_cast<const uint4 *>(src)) : make_uint4(0, 0, 0, 0);
    }
    uint4 x = w[0];
#pragma unroll
    for (int i = 1; i < kLoads; i++) xor4(x, w[i]);
    if (tid == 0)
        for (int s = 0; s < kSlots; s++)
            if (slot0 + s < p.max_sel) x.x ^= (uint32_t)blk[s];
    launch_dependents();  // PDL: every load of this program has landed
    x = block_xor(x, tid);
    if (tid == 0) {
        uint32_t *dst = sink + ((int64_t)b * p.HKV + kvh) * 4;
        atomicXor(dst, x.x), atomicXor(dst + 1, x.y), atomicXor(dst + 2, x.z), atomicXor(dst + 3, x.w);
    }
}

bool aligned16(const void *ptr) { return ((uintptr_t)ptr & 15) == 0; }

}  // namespace

extern "C" int gather_floor_cuda(const DecodeParams *p, uint32_t *sink, void *stream, SeerErr *err) {
    if (p->HD != kHD) return seer_fail(err, "gather_floor.cu: the kernel needs HD %d, got %d", kHD, p->HD);
    if (p->dtype != SEER_BF16 && p->dtype != SEER_F16)
        return seer_fail(err, "gather_floor.cu: the kernel needs BF16 or F16, got %s", dtype_name(p->dtype));
    if (!p->block_idx || p->max_sel < 1 || p->max_sel > kMaxSel)
        return seer_fail(err, "gather_floor.cu: needs a block list with max_sel in [1, %d], got %d",
                         kMaxSel, p->block_idx ? p->max_sel : 0);
    if (p->B < 1 || p->HKV < 1 || !sink)
        return seer_fail(err, "gather_floor.cu: needs B, HKV >= 1 and a sink (B %d HKV %d)", p->B, p->HKV);
    if (!aligned16(p->k) || !aligned16(p->v) || (p->k_sb | p->k_sh | p->k_st | p->v_sb | p->v_sh | p->v_st) % 8)
        return seer_fail(err, "gather_floor.cu: k/v rows must be 16-byte aligned (strides multiples of 8)");
    cudaLaunchAttribute attr;
    const dim3 grid((p->max_sel + kSlots - 1) / kSlots, p->HKV, p->B);
    cudaLaunchConfig_t cfg = launch_config(grid, dim3(kThreads), 0, stream, p->pdl, &attr);
    cudaError_t e = cudaLaunchKernelEx(&cfg, gather_floor_kernel, *p, sink);
    if (e == cudaSuccess) e = cudaGetLastError();
    if (e != cudaSuccess) return seer_fail(err, "gather_floor.cu: kernel launch: %s", cudaGetErrorString(e));
    return 0;
}
