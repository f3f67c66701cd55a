// bench_gate.c: `seer bench gate`: one layer's AttnGate loss (forward + KL + backward) and its
// scores on the GPU, at a model's gate shape, for one long document and for a packed chunk.
//
// FLOPs counted: the projections (2 T H HD DG + 2 NBT HKV 3 HD DG forward, twice that backward),
// the scores 2 DG HKV pairs forward and 4 DG HKV pairs backward, where pairs = sum over documents
// and positions p of floor(p/64) (allowed (row, block) entries). Timing: CUDA events around
// --iters calls after one warm-up call. Inputs: q, k random bf16 (a hash of the index, made on the
// host); a target whose rows are uniform over the allowed blocks (values do not change the work).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cuda_check.h"
#include "bench/bench.h"
#include "common/common.h"

#ifdef SEER_CUDA
#include <cuda_runtime_api.h>

#include "common/tensor.h"
#include "train/gate.h"
#include "train/gate_loss.h"

typedef struct {
    GateShape s;
    int tokens, iters;
    const char *docs;  // comma-separated lengths, repeated to fill --tokens
} BenchArgs;

static void usage(FILE *f) {
    fprintf(f,
            "usage: seer bench gate [--hkv N] [--g N] [--hd N] [--dg N] [--tokens N] [--docs L1,L2,..]\n"
            "                       [--iters N]\n\n"
            "Times one layer's gate step (gate_cuda_loss: forward, KL, backward) and the gate scores\n"
            "(gate_cuda_scores) on random inputs, with fp32 and with TF32 projections, for one\n"
            "document of N tokens and for a chunk packed from the --docs lengths (repeated, the last\n"
            "one cut to fill N). The trainer runs the gate step once per layer per chunk.\n\n"
            "  --hkv, --g, --hd, --dg   gate shape (default 8 4 128 128: Qwen3-8B)\n"
            "  --tokens N   tokens per chunk (default 32768)\n"
            "  --docs LIST  document lengths of the packed case (default\n"
            "               2048,16384,4096,3072,5120,6144,2560,8192: 2k-16k, mean about 6k)\n"
            "  --iters N    timed calls per measurement (default 10)\n");
}

static int parse_args(BenchArgs *a, int argc, char **argv) {
    *a = (BenchArgs){{8, 4, 128, 128}, 32768, 10, "2048,16384,4096,3072,5120,6144,2560,8192"};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { usage(stdout); exit(0); }
        else if (!v) bench_missing_value("bench gate", o);
        else if (!strcmp(o, "--hkv")) a->s.HKV = (int)bench_flag_int(o, argv[++i], 1, 4096);
        else if (!strcmp(o, "--g")) a->s.G = (int)bench_flag_int(o, argv[++i], 1, 4096);
        else if (!strcmp(o, "--hd")) a->s.HD = (int)bench_flag_int(o, argv[++i], 1, 4096);
        else if (!strcmp(o, "--dg")) a->s.DG = (int)bench_flag_int(o, argv[++i], 1, 4096);
        else if (!strcmp(o, "--tokens")) a->tokens = (int)bench_flag_int(o, argv[++i], 1, 1L << 24);
        else if (!strcmp(o, "--docs")) a->docs = argv[++i];
        else if (!strcmp(o, "--iters")) a->iters = (int)bench_flag_int(o, argv[++i], 1, 1000000);
        else { fprintf(stderr, "seer: bench gate: unknown option '%s'\n", o); return -1; }
    }
    SeerErr err;
    if (gate_shape_check(a->s, &err)) { fprintf(stderr, "seer: bench gate: %s\n", err.msg); return -1; }
    if (a->tokens < 1 || a->iters < 1) { fprintf(stderr, "seer: bench gate: --tokens and --iters must be >= 1\n"); return -1; }
    return 0;
}

typedef struct {
    GateCuda *gc;
    float *params, *grad, *target, *scores;
    double *loss;
    const uint16_t *q, *k;
    int64_t ldq, ldk;
} GateBuffers;

// what: 0 loss + backward, 1 loss only, 2 scores.
static int call_gate(const GateBuffers *b, int what, SeerErr *err) {
    if (what == 2) return gate_cuda_scores(b->gc, b->scores, b->params, b->q, b->ldq, b->k, b->ldk, err);
    return gate_cuda_loss(b->gc, what == 0 ? b->grad : NULL, b->loss, b->params, b->q, b->ldq, b->k,
                          b->ldk, b->target, err);
}

static int time_gate(double *ms, const GateBuffers *b, int what, int iters, SeerErr *err) {
    cudaEvent_t e0, e1;
    CUDA_TRY(cudaEventCreate(&e0));
    CUDA_TRY(cudaEventCreate(&e1));
    if (call_gate(b, what, err)) return -1;
    CUDA_TRY(cudaEventRecord(e0, 0));
    for (int i = 0; i < iters; i++)
        if (call_gate(b, what, err)) return -1;
    CUDA_TRY(cudaEventRecord(e1, 0));
    CUDA_TRY(cudaEventSynchronize(e1));
    float t;
    CUDA_TRY(cudaEventElapsedTime(&t, e0, e1));
    *ms = t / iters;
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 0;
}

// Host bf16 values in about [-1.7, 1.7] from a hash of the index (splitmix64 finaliser).
static uint16_t *make_qk(size_t n) {
    uint16_t *x = xmalloc(n * 2);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (i + 1) * 0x9e3779b97f4a7c15ull;
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        z ^= z >> 31;
        x[i] = f32_to_bf16((float)((z >> 40) * (1.0 / 16777216.0) * 3.4 - 1.7));
    }
    return x;
}

// Host target [HKV, T, NB]: row of in-doc position p uniform over its p/64 allowed blocks.
static float *make_target(const int *lens, int n, int T, int NB, int HKV) {
    float *tg = xcalloc((size_t)HKV * T * NB, sizeof(float));
    int *pos = xmalloc(sizeof(int) * T);
    for (int d = 0, t = 0; d < n; d++)
        for (int p = 0; p < lens[d]; p++) pos[t++] = p;
#pragma omp parallel for schedule(static)
    for (int64_t r = 0; r < (int64_t)HKV * T; r++) {
        int nb = pos[r % T] / SEER_BLOCK;
        for (int j = 0; j < nb; j++) tg[r * NB + j] = 1.0f / nb;
    }
    free(pos);
    return tg;
}

static int bench_case(const char *label, const int *lens, int n, int T, const BenchArgs *a, SeerErr *err) {
    GateShape s = a->s;
    int longest = 0, H = s.HKV * s.G;
    double pairs = 0, nbt = 0;
    for (int i = 0; i < n; i++) {
        longest = lens[i] > longest ? lens[i] : longest;
        nbt += ceil_div(lens[i], SEER_BLOCK);
        for (int p = 0; p < lens[i]; p++) pairs += p / SEER_BLOCK;
    }
    int NB = ceil_div(longest, SEER_BLOCK);
    double proj = 2.0 * T * H * s.HD * s.DG + 2.0 * nbt * s.HKV * 3 * s.HD * s.DG;
    double fl_fwd = proj + 2.0 * s.DG * s.HKV * pairs, fl_all = 3 * proj + 6.0 * s.DG * s.HKV * pairs;
    size_t nqk = (size_t)T * (H + s.HKV) * s.HD, nt = (size_t)s.HKV * T * NB;
    int64_t np = gate_param_count(s);
    GateBuffers b = {0};
    b.ldq = b.ldk = (int64_t)(H + s.HKV) * s.HD;
    uint16_t *qk;
    CUDA_TRY(cudaMalloc((void **)&qk, nqk * 2));
    CUDA_TRY(cudaMalloc((void **)&b.params, np * 4));
    CUDA_TRY(cudaMalloc((void **)&b.grad, np * 4));
    CUDA_TRY(cudaMalloc((void **)&b.target, nt * 4));
    CUDA_TRY(cudaMalloc((void **)&b.scores, nt * 4));
    CUDA_TRY(cudaMalloc((void **)&b.loss, 8));
    CUDA_TRY(cudaMemset(b.grad, 0, np * 4));
    CUDA_TRY(cudaMemset(b.loss, 0, 8));
    b.q = qk, b.k = qk + (size_t)H * s.HD;
    float *hp = xmalloc(np * 4), *tg = make_target(lens, n, T, NB, s.HKV);
    uint16_t *hqk = make_qk(nqk);
    gate_params_init(hp, s, 1, 0);
    CUDA_TRY(cudaMemcpy(b.params, hp, np * 4, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(b.target, tg, nt * 4, cudaMemcpyHostToDevice));
    CUDA_TRY(cudaMemcpy(qk, hqk, nqk * 2, cudaMemcpyHostToDevice));
    free(hp), free(tg), free(hqk);
    double t0 = seer_now(), ms[2][3], set_ms = 0;
    int rc = gate_cuda_create(&b.gc, s, T, NB, n, 0, err);
    if (!rc) rc = gate_cuda_set_chunk(b.gc, lens, n, T, NB, 1e6f, NULL, NULL, err);
    set_ms = (seer_now() - t0) * 1e3;
    if (!rc) {
        t0 = seer_now();
        rc = gate_cuda_set_chunk(b.gc, lens, n, T, NB, 1e6f, NULL, NULL, err);
        set_ms = (seer_now() - t0) * 1e3;
    }
    for (int tf = 0; tf < 2 && !rc; tf++) {
        gate_cuda_set_tf32(b.gc, tf);
        for (int w = 0; w < 3 && !rc; w++) rc = time_gate(&ms[tf][w], &b, w, a->iters, err);
    }
    if (!rc) {
        printf("%s: %d docs, %d tokens, NB %d, gate %d/%d/%d/%d, workspace %.0f MB, target %.0f MB, "
               "set_chunk %.2f ms\n", label, n, T, NB, s.HKV, s.G, s.HD, s.DG,
               gate_cuda_bytes(s, T, NB, n) / 1e6, nt * 4 / 1e6, set_ms);
        const char *names[3] = {"loss + backward", "loss only", "scores"};
        double fl[3] = {fl_all, fl_fwd, fl_fwd};
        for (int w = 0; w < 3; w++)
            printf("  %-16s fp32 %8.3f ms (%5.1f TFLOP/s)   tf32 %8.3f ms (%5.1f TFLOP/s)\n", names[w],
                   ms[0][w], fl[w] / (ms[0][w] * 1e9), ms[1][w], fl[w] / (ms[1][w] * 1e9));
        fflush(stdout);
    }
    gate_cuda_free(b.gc);
    cudaFree(qk), cudaFree(b.params), cudaFree(b.grad), cudaFree(b.target), cudaFree(b.scores), cudaFree(b.loss);
    return rc;
}

int bench_gate_main(int argc, char **argv) {
    BenchArgs a;
    if (parse_args(&a, argc, argv)) return 2;
    SeerErr err;
    struct cudaDeviceProp prop;
    if (cuda_current_device(&prop, "bench gate", &err)) { fprintf(stderr, "seer: %s\n", err.msg); return 1; }
    int T = a.tokens, one[1] = {T}, *lens = xmalloc(sizeof(int) * (size_t)T);
    int n = bench_make_docs(lens, a.docs, T, &err);
    int rc = n < 0 || bench_case("one document", one, 1, T, &a, &err) || bench_case("packed", lens, n, T, &a, &err);
    free(lens);
    if (rc) { fprintf(stderr, "seer: %s\n", err.msg); return 1; }
    return 0;
}
#else
int bench_gate_main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: seer bench gate [options]   (needs a CUDA build)\n");
        return 0;
    }
    fprintf(stderr, "seer: bench gate: this binary was built without CUDA\n");
    return 1;
}
#endif
