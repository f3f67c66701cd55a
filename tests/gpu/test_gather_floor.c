// tests/gpu/test_gather_floor.c: the gather floor kernel (bench/gather_floor.h) against its CPU
// fold, bit for bit: cache lengths not a multiple of 64, a length 0 (an empty list), -1 padding,
// an odd list length (a program with one slot), batch 1, padded rows, NaN in the unused tail; each
// case into a zeroed sink once plain, then three times back to back with programmatic dependent
// launch (each launch XORs the fold in, so an odd count leaves the fold).
#include <cuda_runtime.h>
#include <stdlib.h>
#include <string.h>

#include "bench/gather_floor.h"
#include "tests/gpu/gpu_test.h"
#include "tests/test.h"

static void sync_or_die(const char *what) {
    cudaError_t e = cudaDeviceSynchronize();
    if (e != cudaSuccess) seer_die("%s: %s", what, cudaGetErrorString(e));
}

// Per pair, the last block and a random share keep of the others, at most max_sel, sorted
// descending, -1 padded.
static void make_lists(int32_t *idx, const int32_t *len, int B, int HKV, int max_sel, float keep) {
    for (int b = 0; b < B; b++)
        for (int h = 0; h < HKV; h++) {
            int32_t *l = idx + ((int64_t)b * HKV + h) * max_sel, n = 0, nb = ceil_div(len[b], 64);
            for (int j = nb - 1; j >= 0 && n < max_sel; j--)
                if (j == nb - 1 || (frand() + 1) / 2 < keep) l[n++] = j;
            while (n < max_sel) l[n++] = -1;
        }
}

// One GPU-vs-CPU comparison. pad > 0: gaps in every stride (multiples of 8 elements). nan_tail:
// NaN bits past each length. Returns the number of mismatching sink words over both passes.
static int run_case(int B, int HKV, int Tmax, const int *lens, int max_sel, float keep, int pad,
                    int nan_tail, SeerDType t) {
    const int HD = 128;
    const int64_t st = HD + pad, sh = Tmax * st + pad, sb = HKV * sh + pad, n = B * sb;
    uint16_t *k = xmalloc(2 * n), *v = xmalloc(2 * n);
    for (int64_t i = 0; i < n; i++) k[i] = f32_to_bf16(frand()), v[i] = f32_to_f16(frand());
    int32_t *len = xmalloc(sizeof(int32_t) * B), *idx = xmalloc(sizeof(int32_t) * B * HKV * max_sel);
    for (int b = 0; b < B; b++) len[b] = lens[b];
    for (int b = 0; b < B && nan_tail; b++)
        for (int h = 0; h < HKV; h++)
            for (int64_t tok = len[b]; tok < Tmax; tok++)
                for (int d = 0; d < HD; d++) {
                    int64_t i = b * sb + h * sh + tok * st + d;
                    k[i] = v[i] = 0x7fc0;
                }
    make_lists(idx, len, B, HKV, max_sel, keep);
    DecodeParams p = decode_params_contiguous(NULL, k, v, NULL, len, idx, B, 8 * HKV, HKV, HD, Tmax, max_sel, t);
    p.k_st = p.v_st = st, p.k_sh = p.v_sh = sh, p.k_sb = p.v_sb = sb;
    SeerErr err;
    if (decode_validate(&p, len, idx, &err)) seer_die("%s", err.msg);
    const size_t words = (size_t)4 * B * HKV;
    uint32_t *want = xmalloc(sizeof(uint32_t) * words), *got = xmalloc(sizeof(uint32_t) * words);
    gather_floor_cpu(want, &p);

    DecodeParams d = p;
    d.k = to_dev(k, 2 * n), d.v = to_dev(v, 2 * n);
    d.cache_len = to_dev(len, sizeof(int32_t) * B);
    d.block_idx = to_dev(idx, sizeof(int32_t) * B * HKV * max_sel);
    uint32_t *sink = to_dev(NULL, sizeof(uint32_t) * words);
    int bad = 0;
    for (int pass = 0; pass < 2; pass++) {  // 0: one plain launch; 1: three PDL launches
        CUDA_OK(cudaMemset(sink, 0, sizeof(uint32_t) * words));
        d.pdl = pass;
        for (int rep = 0; rep < (pass ? 3 : 1); rep++)
            if (gather_floor_cuda(&d, sink, NULL, &err)) seer_die("%s", err.msg);
        sync_or_die("gather floor kernel");
        CUDA_OK(cudaMemcpy(got, sink, sizeof(uint32_t) * words, cudaMemcpyDeviceToHost));
        for (size_t i = 0; i < words; i++) bad += got[i] != want[i];
    }
    cudaFree((void *)d.k), cudaFree((void *)d.v), cudaFree((void *)d.cache_len);
    cudaFree((void *)d.block_idx), cudaFree(sink);
    free(k), free(v), free(len), free(idx), free(want), free(got);
    return bad;
}

static void check_case(const char *what, int B, int HKV, int Tmax, const int *lens, int max_sel,
                       float keep, int pad, int nan_tail, SeerDType t) {
    int bad = run_case(B, HKV, Tmax, lens, max_sel, keep, pad, nan_tail, t);
    printf("    %-40s %s: %d words differ\n", what, dtype_name(t), bad);
    CHECK(bad == 0);
}

static void test_shapes(void) {
    int three[3] = {3000, 130, 4096}, one[1] = {8191}, with_zero[2] = {0, 1000}, full[2] = {32768, 32768};
    check_case("B 3 lens 3000/130/4096 30%", 3, 2, 4096, three, 64, 0.3f, 0, 0, SEER_BF16);
    check_case("B 3 lens 3000/130/4096 all blocks", 3, 2, 4096, three, 64, 1.0f, 0, 0, SEER_F16);
    check_case("odd max_sel 7 (cut lists)", 3, 2, 4096, three, 7, 1.0f, 0, 0, SEER_BF16);
    check_case("batch 1 8191 10%", 1, 8, 8192, one, 128, 0.1f, 0, 0, SEER_BF16);
    check_case("len 0 (empty list) and 1000", 2, 2, 1024, with_zero, 16, 0.5f, 0, 0, SEER_F16);
    check_case("padded rows 30%", 3, 2, 4096, three, 33, 0.3f, 64, 0, SEER_BF16);
    check_case("NaN tail 20%", 1, 8, 8192, one, 128, 0.2f, 0, 1, SEER_F16);
    check_case("bench-like B 2 32k 8 KV heads 10%", 2, 8, 32768, full, 51, 0.1f, 0, 0, SEER_BF16);
}

static void test_refused(void) {
    SeerErr err;
    uint32_t *sink = to_dev(NULL, 64);
    int32_t list[1] = {0};
    DecodeParams p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, NULL, 1, 8, 2, 128, 64, 0, SEER_BF16);
    CHECK(gather_floor_cuda(&p, sink, NULL, &err) == -1 && strstr(err.msg, "block list"));
    p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, list, 1, 8, 2, 64, 64, 1, SEER_BF16);
    CHECK(gather_floor_cuda(&p, sink, NULL, &err) == -1 && strstr(err.msg, "HD"));
    cudaFree(sink);
}

int main(void) {
    RUN(test_shapes);
    RUN(test_refused);
    return test_summary();
}
