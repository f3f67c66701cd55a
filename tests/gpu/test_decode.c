// tests/gpu/test_decode.c: the GPU decode kernels against the CPU reference (decode.h) on awkward
// shapes: G 1/4/5/8/16, batch 1, cache lengths not a multiple of 64, a length 0, splits 1 / 3 /
// the heuristic's, empty splits, NaN in the unused cache tail, padded K/V rows, bf16 and fp16;
// every case plain, with programmatic dependent launch, and through the work queue (DecodeParams
// .queue) with 1, 3 and one program per SM, into a NaN-poisoned output.
#include <cuda_runtime.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/decode.h"
#include "tests/gpu/gpu_test.h"
#include "tests/test.h"


static uint16_t to_dt(float f, SeerDType t) { return t == SEER_F16 ? f32_to_f16(f) : f32_to_bf16(f); }

// 1: K/V rows padded (token stride HD + 64, head and sequence strides with gaps) instead of the
// contiguous [B, HKV, Tmax, HD], as a cache with room per row would be.
static int padded = 0;

// One GPU-vs-CPU comparison. keep < 0: dense; else the fraction of blocks selected at random
// (the last block always). n_split 0: the heuristic's. Returns max |gpu - ref| / max |ref|.
static double run_case(int B, int G, int HKV, int Tmax, const int *lens, float keep, int n_split,
                       SeerDType t, int nan_tail) {
    int H = G * HKV, HD = 128, nb_max = ceil_div(Tmax, 64), max_sel = keep < 0 ? 0 : nb_max;
    const int64_t st = padded ? HD + 64 : HD, sh = Tmax * st + (padded ? 64 : 0);
    const int64_t sb = HKV * sh + (padded ? 128 : 0);
    int64_t nq = (int64_t)B * H * HD, nk = B * sb;
    uint16_t *q = xmalloc(2 * nq), *k = xmalloc(2 * nk), *v = xmalloc(2 * nk), *out = xmalloc(2 * nq);
    for (int64_t i = 0; i < nq; i++) q[i] = to_dt(2 * frand(), t);
    for (int64_t i = 0; i < nk; i++) k[i] = to_dt(2 * frand(), t), v[i] = to_dt(frand(), t);
    if (nan_tail)
        for (int b = 0; b < B; b++)
            for (int h = 0; h < HKV; h++)
                for (int64_t tok = lens[b]; tok < Tmax; tok++)
                    for (int d = 0; d < HD; d++) {
                        int64_t i = b * sb + h * sh + tok * st + d;
                        k[i] = v[i] = 0x7fc0;
                    }
    int32_t *len = xmalloc(sizeof(int32_t) * B), *idx = max_sel ? xmalloc(sizeof(int32_t) * B * HKV * max_sel) : NULL;
    int max_tiles = 1;
    for (int b = 0; b < B; b++) len[b] = lens[b];
    for (int b = 0; b < B && idx; b++)
        for (int h = 0; h < HKV; h++) {
            int32_t *l = idx + ((int64_t)b * HKV + h) * max_sel, n = 0, nb = ceil_div(len[b], 64);
            for (int j = nb - 1; j >= 0; j--)
                if (j == nb - 1 || (frand() + 1) / 2 < keep) l[n++] = j;
            if (n > max_tiles) max_tiles = n;
            while (n < max_sel) l[n++] = -1;
        }
    for (int b = 0; b < B && !idx; b++)
        if (ceil_div(len[b], 64) > max_tiles) max_tiles = ceil_div(len[b], 64);
    int S = n_split ? n_split : decode_pick_splits_cuda(B, HKV, max_tiles);
    DecodeParams p = decode_params_contiguous(q, k, v, out, len, idx, B, H, HKV, HD, Tmax, max_sel, t);
    p.n_split = S;
    p.k_st = p.v_st = st, p.k_sh = p.v_sh = sh, p.k_sb = p.v_sb = sb;
    float *o_part = xmalloc(sizeof(float) * nq * S), *lse = xmalloc(sizeof(float) * B * H * S);
    p.o_part = o_part, p.lse_part = lse;
    SeerErr err;
    if (decode_validate(&p, len, idx, &err)) seer_die("%s", err.msg);
    float *ref = xmalloc(sizeof(float) * nq);
    decode_reference_cpu(ref, &p);

    DecodeParams d = p;
    d.q = to_dev(q, 2 * nq), d.k = to_dev(k, 2 * nk), d.v = to_dev(v, 2 * nk);
    d.out = to_dev(NULL, 2 * nq), d.cache_len = to_dev(len, sizeof(int32_t) * B);
    d.block_idx = idx ? to_dev(idx, sizeof(int32_t) * B * HKV * max_sel) : NULL;
    d.o_part = to_dev(NULL, sizeof(float) * nq * S), d.lse_part = to_dev(NULL, sizeof(float) * B * H * S);
    d.sem = to_dev(NULL, sizeof(int32_t) * B * HKV);
    int32_t *d_queue = to_dev(NULL, sizeof(int32_t) * 2);
    double worst = 0, scale = 1e-3;
    for (int64_t i = 0; i < nq; i++) scale = fmax(scale, fabs(ref[i]));
    // Every pass poisons the output (NaN) first. Pass 0: one plain launch. Pass 1: two PDL launches
    // back to back (the second overlaps the first's tail; both check that the split counters were
    // reset). Passes 2-4: the work queue with one program per SM; with 3 programs and two PDL
    // launches (many units a program, the queue's reset); with 1 program (every unit in turn).
    const int queue_progs[5] = {0, 0, 0, 3, 1};
    for (int pass = 0; pass < 5; pass++) {
        CUDA_OK(cudaMemset(d.out, 0xff, 2 * nq));
        d.pdl = pass == 1 || pass == 3;
        d.queue = pass >= 2 ? d_queue : NULL, d.n_prog = queue_progs[pass];
        for (int rep = 0; rep <= d.pdl; rep++)
            if (decode_attention_cuda(&d, NULL, &err)) seer_die("%s", err.msg);
        cudaError_t e = cudaDeviceSynchronize();
        if (e != cudaSuccess) seer_die("decode kernel (pass %d): %s", pass, cudaGetErrorString(e));
        int32_t counters[2];
        CUDA_OK(cudaMemcpy(counters, d_queue, sizeof counters, cudaMemcpyDeviceToHost));
        if (counters[0] || counters[1]) seer_die("decode queue counters left at %d, %d (pass %d)",
                                                 counters[0], counters[1], pass);
        CUDA_OK(cudaMemcpy(out, d.out, 2 * nq, cudaMemcpyDeviceToHost));
        for (int64_t i = 0; i < nq; i++) {
            double g = t == SEER_F16 ? f16_to_f32(out[i]) : bf16_to_f32(out[i]), dd = fabs(g - ref[i]);
            if (dd != dd) { worst = INFINITY; break; }
            worst = fmax(worst, dd);
        }
    }
    cudaFree((void *)d.q), cudaFree((void *)d.k), cudaFree((void *)d.v), cudaFree(d.out);
    cudaFree((void *)d.cache_len), cudaFree((void *)d.block_idx), cudaFree(d.o_part), cudaFree(d.lse_part);
    cudaFree(d.sem), cudaFree(d_queue);
    free(q), free(k), free(v), free(out), free(len), free(idx), free(o_part), free(lse), free(ref);
    return worst / scale;
}

static double tol(SeerDType t) { return t == SEER_BF16 ? 1.5e-2 : 3e-3; }

static void check_case(const char *what, int B, int G, int HKV, int Tmax, const int *lens,
                       float keep, int n_split, SeerDType t, int nan_tail) {
    double e = run_case(B, G, HKV, Tmax, lens, keep, n_split, t, nan_tail);
    printf("    %-34s %s G %2d splits %2d: err %.2e\n", what, dtype_name(t), G, n_split, e);
    CHECK(e < tol(t));
}

static void test_dense(void) {
    const int Gs[] = {1, 4, 5, 8, 16}, splits[] = {1, 3, 0};
    int lens[3] = {1000, 65, 2047};
    for (int ti = 0; ti < 2; ti++)
        for (int gi = 0; gi < 5; gi++)
            for (int si = 0; si < 3; si++)
                check_case("dense B 3 lens 1000/65/2047", 3, Gs[gi], 2, 2048, lens, -1, splits[si],
                           ti ? SEER_F16 : SEER_BF16, 0);
}

static void test_sparse(void) {
    const int Gs[] = {1, 4, 5, 8}, splits[] = {1, 3, 0};
    int lens[3] = {3000, 130, 4096};
    for (int ti = 0; ti < 2; ti++)
        for (int gi = 0; gi < 4; gi++)
            for (int si = 0; si < 3; si++)
                check_case("sparse 30% B 3 lens 3000/130/4096", 3, Gs[gi], 2, 4096, lens, 0.3f,
                           splits[si], ti ? SEER_F16 : SEER_BF16, 0);
    check_case("sparse all blocks", 3, 8, 2, 4096, lens, 1.0f, 3, SEER_BF16, 0);
}

static void test_edges(void) {
    int one[1] = {8191}, zero[2] = {0, 100}, tiny[1] = {1};
    check_case("batch 1 dense 8191", 1, 8, 8, 8192, one, -1, 0, SEER_BF16, 0);
    check_case("batch 1 sparse 10%", 1, 8, 8, 8192, one, 0.1f, 0, SEER_BF16, 0);
    check_case("empty splits (1 block, 7 splits)", 1, 8, 2, 8192, one, 0.0f, 7, SEER_BF16, 0);
    check_case("len 0 and 100", 2, 4, 2, 128, zero, -1, 3, SEER_BF16, 0);
    check_case("len 1", 1, 5, 1, 64, tiny, -1, 1, SEER_F16, 0);
    check_case("NaN tail dense", 1, 8, 2, 8192, one, -1, 5, SEER_BF16, 1);
    check_case("NaN tail sparse", 1, 8, 2, 8192, one, 0.2f, 5, SEER_F16, 1);
    // More splits than one merge round holds (16), some of them empty.
    int span[2] = {8191, 1000};
    check_case("merge rounds: 40 splits", 2, 1, 2, 8192, span, -1, 40, SEER_BF16, 0);
    check_case("merge rounds: 40 splits", 2, 8, 2, 8192, span, -1, 40, SEER_F16, 0);
    check_case("merge rounds: 20 splits sparse", 2, 16, 1, 8192, span, 0.5f, 20, SEER_BF16, 0);
}

static void test_padded(void) {
    int lens[3] = {3000, 130, 4096}, one[1] = {8191};
    padded = 1;
    check_case("padded rows dense B 3", 3, 8, 2, 4096, lens, -1, 0, SEER_BF16, 0);
    check_case("padded rows sparse 30% B 3", 3, 5, 2, 4096, lens, 0.3f, 1, SEER_F16, 0);
    check_case("padded rows NaN tail sparse", 1, 8, 2, 8192, one, 0.2f, 3, SEER_BF16, 1);
    padded = 0;
}

static void test_refused(void) {
    SeerErr err;
    DecodeParams p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, NULL, 1, 8, 2, 64, 64, 0, SEER_BF16);
    CHECK(decode_attention_cuda(&p, NULL, &err) == -1 && strstr(err.msg, "HD"));
    p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, NULL, 1, 34, 2, 128, 64, 0, SEER_BF16);
    CHECK(decode_attention_cuda(&p, NULL, &err) == -1 && strstr(err.msg, "G <= 16"));
    p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, NULL, 1, 8, 2, 128, 64, 0, SEER_BF16);
    p.o_sh = 130;  // a row of out 260 bytes from the last: not 8-byte aligned
    CHECK(decode_attention_cuda(&p, NULL, &err) == -1 && strstr(err.msg, "out rows"));
    int32_t flag;  // never read: refused before launch
    p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, NULL, 1, 8, 2, 128, 64, 0, SEER_BF16);
    p.list_ready = &flag;  // ready flags on a dense call
    CHECK(decode_attention_cuda(&p, NULL, &err) == -1 && strstr(err.msg, "list_ready"));
    int32_t idx, queue[2];  // never read either
    p = decode_params_contiguous(NULL, NULL, NULL, NULL, NULL, &idx, 1, 8, 2, 128, 64, 1, SEER_BF16);
    p.queue = queue, p.list_ready = &flag;
    CHECK(decode_attention_cuda(&p, NULL, &err) == -1 && strstr(err.msg, "work queue"));
    p.list_ready = NULL, p.max_sel = 8193;
    CHECK(decode_attention_cuda(&p, NULL, &err) == -1 && strstr(err.msg, "work queue's 8192"));
}

int main(void) {
    RUN(test_dense);
    RUN(test_sparse);
    RUN(test_edges);
    RUN(test_padded);
    RUN(test_refused);
    return test_summary();
}
