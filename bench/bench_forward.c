// bench_forward.c: `seer bench forward`: the prefill attention (+ gate target) kernel at a model's
// shape, next to torch SDPA (FLASH, CUDNN) timed by bench/sdpa_prefill.py in the same run.
//
// FLOPs of causal attention: sum over documents of 4 * len^2 / 2 * H * HD (QK^T and PV, half the
// square). Timing: CUDA events around --iters calls after one warm-up call.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cuda_check.h"
#include "bench/bench.h"
#include "ckpt/hf_config.h"
#include "common/common.h"

#ifdef SEER_CUDA
#include <cuda_runtime_api.h>

#include "kernels/attention.h"
#include "model/forward_cuda.h"
#include "train/gate_loss.h"

typedef struct {
    const char *config;
    int tokens, iters, sdpa, forward;
    const char *docs;  // comma-separated lengths, repeated to fill --tokens
} BenchArgs;

typedef struct {
    int H, HKV, HD;
} AttnShape;

static void usage(FILE *f) {
    fprintf(f,
            "usage: seer bench forward --config CONFIG.json [--tokens N] [--docs L1,L2,..] [--iters N]\n"
            "                          [--no-sdpa] [--attention-only]\n\n"
            "Times the prefill attention kernel (without the gate target, with the target of every\n"
            "row, and with the rows the trainer uses: the last half of each document) at the shape of a\n"
            "Hugging Face config.json (num_attention_heads, num_key_value_heads, head_dim) on random\n"
            "bf16 inputs made on the GPU, for one document of N tokens and for a chunk packed from\n"
            "the --docs lengths (repeated, the last one cut to fill N), next to torch SDPA FLASH and\n"
            "CUDNN (python3 bench/sdpa_prefill.py) at the same shapes. Then the whole forward of the\n"
            "config (random bf16 weights made on the GPU, no lm head) over the one N-token document,\n"
            "with and without the trainer's target: tokens/s, GEMM and attention TFLOP/s, share of time per\n"
            "part, memory.\n\n"
            "  --config PATH   model config.json (e.g. bench/configs/qwen3-8b.json)\n"
            "  --tokens N      tokens per chunk (default 32768)\n"
            "  --docs LIST     document lengths of the packed case (default 6000)\n"
            "  --iters N       timed calls per measurement (default 20; 5 read up to 7%% high on a cool card);\n"
            "                  the attention cases take the best of three interleaved rounds\n"
            "  --no-sdpa       skip the torch baseline\n"
            "  --attention-only  skip the whole-forward timing\n");
}

static int parse_args(BenchArgs *a, int argc, char **argv) {
    *a = (BenchArgs){NULL, 32768, 20, 1, 1, "6000"};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(s, "--no-sdpa")) a->sdpa = 0;
        else if (!strcmp(s, "--attention-only")) a->forward = 0;
        else if (!v) bench_missing_value("bench forward", s);
        else if (!strcmp(s, "--config")) a->config = argv[++i];
        else if (!strcmp(s, "--tokens")) a->tokens = (int)bench_flag_int(s, argv[++i], 1, 1L << 24);
        else if (!strcmp(s, "--docs")) a->docs = argv[++i];
        else if (!strcmp(s, "--iters")) a->iters = (int)bench_flag_int(s, argv[++i], 1, 1000000);
        else { fprintf(stderr, "seer: bench forward: unknown option '%s'\n", s); return -1; }
    }
    if (!a->config) { fprintf(stderr, "seer: bench forward: --config is required\n"); return -1; }
    if (a->tokens < 1 || a->iters < 1) { fprintf(stderr, "seer: bench forward: --tokens and --iters must be >= 1\n"); return -1; }
    return 0;
}

// Reads the attention shape of a Hugging Face config.json.
static int read_shape(AttnShape *s, const char *path, SeerErr *err) {
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    if (!root) return seer_fail(err, "%s:%d: %s", path, je.line, je.text);
    json_t *h = json_object_get(root, "num_attention_heads"), *kv = json_object_get(root, "num_key_value_heads");
    json_t *hd = json_object_get(root, "head_dim"), *d = json_object_get(root, "hidden_size");
    int rc = 0;
    if (!json_is_integer(h) || !json_is_integer(d)) {
        rc = seer_fail(err, "%s: needs integer num_attention_heads and hidden_size", path);
    } else {
        s->H = (int)json_integer_value(h);
        s->HKV = json_is_integer(kv) ? (int)json_integer_value(kv) : s->H;
        s->HD = json_is_integer(hd) ? (int)json_integer_value(hd) : (int)json_integer_value(d) / s->H;
    }
    json_decref(root);
    return rc;
}

static double causal_flops(const int *lens, int n, const AttnShape *s) {
    double f = 0;
    for (int i = 0; i < n; i++) f += 4.0 * lens[i] * (double)lens[i] / 2 * s->H * s->HD;
    return f;
}


// Milliseconds per call of the attention kernel (with target when tgt != NULL).
static int time_attention(double *ms, const AttnCudaPlan *pl, uint16_t *out, float *tgt,
                          const uint16_t *qkv, const AttnShape *s, int iters, SeerErr *err) {
    int64_t W = (int64_t)(s->H + 2 * s->HKV) * s->HD;
    const uint16_t *q = qkv, *k = qkv + s->H * s->HD, *v = k + s->HKV * s->HD;
    cudaEvent_t e0, e1;
    CUDA_TRY(cudaEventCreate(&e0));
    CUDA_TRY(cudaEventCreate(&e1));
    if (attention_forward_cuda(pl, out, tgt, q, W, k, W, v, W, 0, err)) return -1;
    CUDA_TRY(cudaEventRecord(e0, 0));
    for (int i = 0; i < iters; i++)
        if (attention_forward_cuda(pl, out, tgt, q, W, k, W, v, W, 0, err)) return -1;
    CUDA_TRY(cudaEventRecord(e1, 0));
    CUDA_TRY(cudaEventSynchronize(e1));
    float t;
    CUDA_TRY(cudaEventElapsedTime(&t, e0, e1));
    *ms = t / iters;
    cudaEventDestroy(e0);
    cudaEventDestroy(e1);
    return 0;
}

// Runs bench/sdpa_prefill.py for the chunk and prints its FLASH / CUDNN rows.
static void run_sdpa(const int *lens, int n, const AttnShape *s, int iters) {
    size_t cap = (size_t)n * 12 + 256;
    char *cmd = xmalloc(cap);
    int o = snprintf(cmd, cap, "python3 bench/sdpa_prefill.py --heads %d --kv-heads %d --head-dim %d --iters %d --docs ",
                     s->H, s->HKV, s->HD, iters);
    for (int i = 0; i < n; i++) o += snprintf(cmd + o, cap - o, "%s%d", i ? "," : "", lens[i]);
    FILE *p = popen(cmd, "r");
    free(cmd);
    json_error_t je;
    json_t *root = p ? json_loadf(p, JSON_DISABLE_EOF_CHECK, &je) : NULL;
    if (p) {  // read to the end first: closing early broke the script's pipe on its last newline
        while (fgetc(p) != EOF) {
        }
        pclose(p);
    }
    json_t *res = json_object_get(root, "results");
    if (!res) {
        printf("  torch SDPA: no result (python3 bench/sdpa_prefill.py failed; see its stderr)\n");
        json_decref(root);
        return;
    }
    const char *key;
    json_t *r;
    json_object_foreach(res, key, r) {
        json_t *ms = json_object_get(r, "ms"), *tf = json_object_get(r, "tflops");
        if (ms)
            printf("  torch SDPA %-6s          %9.3f ms  %7.1f TFLOP/s\n", key, json_real_value(ms),
                   json_real_value(tf));
        else
            printf("  torch SDPA %-6s          %s\n", key, json_string_value(json_object_get(r, "error")));
    }
    json_decref(root);
}

// One chunk layout: plans for every target row and for the trainer's rows; then, in three
// interleaved rounds (so that a card heating up weighs on each alike), the kernel without the
// target, with every row and with the trainer's rows, each the best round; then the torch baseline.
static int bench_attention_case(const char *label, const int *lens, int n, int T, const AttnShape *s,
                                const BenchArgs *a, SeerErr *err) {
    int longest = 0;
    for (int i = 0; i < n; i++) longest = lens[i] > longest ? lens[i] : longest;
    int NB = ceil_div(longest, SEER_BLOCK);
    size_t ws_bytes, qkv_n = (size_t)T * (s->H + 2 * s->HKV) * s->HD, out_n = (size_t)T * s->H * s->HD;
    size_t tgt_n = (size_t)s->HKV * T * NB;
    if (attention_cuda_plan_bytes(&ws_bytes, lens, n, T, s->H, s->HKV, s->HD, NB, 1, err)) return -1;
    void *ws[2], *qkv, *out, *tgt;
    CUDA_TRY(cudaMalloc(&ws[0], ws_bytes));
    CUDA_TRY(cudaMalloc(&ws[1], ws_bytes));
    CUDA_TRY(cudaMalloc(&qkv, qkv_n * 2));
    CUDA_TRY(cudaMalloc(&out, out_n * 2));
    CUDA_TRY(cudaMalloc(&tgt, tgt_n * 4));
    AttnCudaPlan all, half;
    double ms_p = 1e30, ms_t = 1e30, ms_h = 1e30, ms, fl = causal_flops(lens, n, s);
    int *from = gate_loss_first_rows(lens, n, gate_loss_default_opts().slice_ratio);
    int rc = cuda_fill_normal_bf16(qkv, (int64_t)qkv_n, 0.f, 1.0f, 1234, 0, err);
    if (!rc) rc = attention_cuda_plan_init(&all, ws[0], ws_bytes, lens, n, T, s->H, s->HKV, s->HD, NB, 1, NULL, 0, err);
    if (!rc) rc = attention_cuda_plan_init(&half, ws[1], ws_bytes, lens, n, T, s->H, s->HKV, s->HD, NB, 1, from, 0, err);
    free(from);
    for (int r = 0; r < 3 && !rc; r++) {
        if (!(rc = time_attention(&ms, &all, out, NULL, qkv, s, a->iters, err))) ms_p = ms < ms_p ? ms : ms_p;
        if (!rc && !(rc = time_attention(&ms, &all, out, tgt, qkv, s, a->iters, err))) ms_t = ms < ms_t ? ms : ms_t;
        if (!rc && !(rc = time_attention(&ms, &half, out, tgt, qkv, s, a->iters, err))) ms_h = ms < ms_h ? ms : ms_h;
    }
    if (!rc) {
        printf("%s: %d docs, %d tokens, %.2f TFLOP causal, target %.1f MB, scratch %.1f MB\n", label, n, T,
               fl / 1e12, tgt_n * 4 / 1e6, (ws_bytes - (size_t)all.n_work * 16) / 1e6);
        printf("  seer attention            %9.3f ms  %7.1f TFLOP/s\n", ms_p, fl / (ms_p * 1e-3) / 1e12);
        printf("  seer attention + target   %9.3f ms  %7.1f TFLOP/s  (every row)\n", ms_t, fl / (ms_t * 1e-3) / 1e12);
        printf("  seer attention + target   %9.3f ms  %7.1f TFLOP/s  (the trainer's rows: last half of each document)\n",
               ms_h, fl / (ms_h * 1e-3) / 1e12);
        fflush(stdout);
        if (a->sdpa) run_sdpa(lens, n, s, a->iters);
    }
    cudaFree(ws[0]);
    cudaFree(ws[1]);
    cudaFree(qkv);
    cudaFree(out);
    cudaFree(tgt);
    return rc;
}

// Whole forward with random weights over the chunk `lens`, with and without the target.
static int bench_whole_forward(const char *config, const int *lens, int n, int T, SeerErr *err) {
    ModelConfig c;
    if (hf_config_load(&c, config, err)) return -1;
    ForwardCuda f;
    if (forward_cuda_create(&f, &c, T, 1, 1, stdout, err)) return -1;
    int *ids = xmalloc(sizeof(int) * (size_t)T), rc = forward_cuda_randomize(&f, 7, err);
    for (int t = 0; t < T; t++) ids[t] = (int)((t * 2654435761u) % (unsigned)c.V);
    double qkv = (double)(c.H + 2 * c.HKV) * c.HD, gemm_fl = 0, attn_fl = 0;
    gemm_fl = 2.0 * T * c.L * ((double)c.D * qkv + (double)c.H * c.HD * c.D + 3.0 * c.D * c.F);
    for (int i = 0; i < n; i++) attn_fl += 4.0 * lens[i] * (double)lens[i] / 2 * c.H * c.HD * c.L;
    printf("forward: %d layers, %d tokens in %d docs, GEMM %.1f TFLOP + attention %.1f TFLOP\n", c.L, T, n,
           gemm_fl / 1e12, attn_fl / 1e12);
    int *from = gate_loss_first_rows(lens, n, gate_loss_default_opts().slice_ratio);
    for (int want = 0; !rc && want <= 1; want++) {
        ForwardCudaHook hook = {NULL, NULL, want, from};  // the target as the trainer asks for it
        rc = forward_cuda_run(&f, ids, T, lens, n, &hook, NULL, err);  // warm-up
        double t0 = seer_now();
        if (!rc) rc = forward_cuda_run(&f, ids, T, lens, n, &hook, NULL, err);
        double wall = seer_now() - t0;
        if (rc) break;
        ForwardCudaTimes *tm = &f.times;
        size_t fr, tot;
        cudaMemGetInfo(&fr, &tot);
        printf("  forward%-9s %8.1f ms wall (%7.1f ms on the stream)  %8.0f tokens/s  %6.1f TFLOP/s overall\n",
               want ? " + target" : "", wall * 1e3, tm->total, T / wall, (gemm_fl + attn_fl) / wall / 1e12);
        printf("    GEMM %5.1f%% (%6.1f TFLOP/s)  attention %5.1f%% (%6.1f TFLOP/s)  other %5.1f%%  device memory in use %.1f GB\n",
               100 * tm->gemm / tm->total, gemm_fl / (tm->gemm * 1e-3) / 1e12, 100 * tm->attention / tm->total,
               attn_fl / (tm->attention * 1e-3) / 1e12, 100 * tm->other / tm->total, (tot - fr) / 1e9);
    }
    free(ids), free(from);
    forward_cuda_free(&f);
    return rc;
}

static int bench_forward(int argc, char **argv) {
    BenchArgs a;
    if (parse_args(&a, argc, argv)) return 2;
    SeerErr err;
    AttnShape s;
    if (read_shape(&s, a.config, &err)) { fprintf(stderr, "seer: %s\n", err.msg); return 1; }
    struct cudaDeviceProp prop;
    if (cuda_current_device(&prop, "bench forward", &err)) { fprintf(stderr, "seer: %s\n", err.msg); return 1; }
    printf("device: %s (%d SMs), config %s: H %d, HKV %d, HD %d\n", prop.name, prop.multiProcessorCount,
           a.config, s.H, s.HKV, s.HD);
    int one = a.tokens, *lens = xmalloc(sizeof(int) * (size_t)a.tokens);
    int n = bench_make_docs(lens, a.docs, a.tokens, &err);
    int rc = n < 0;
    if (!rc) rc = bench_attention_case("attention, one document", &one, 1, a.tokens, &s, &a, &err);
    if (!rc) rc = bench_attention_case("attention, packed --docs", lens, n, a.tokens, &s, &a, &err);
    if (!rc && a.forward) rc = bench_whole_forward(a.config, &one, 1, a.tokens, &err);
    free(lens);
    if (rc) { fprintf(stderr, "seer: %s\n", err.msg); return 1; }
    return 0;
}
#else
static int bench_forward(int argc, char **argv) {
    fprintf(stderr, "seer: bench forward needs a CUDA build (this binary has no CUDA)\n");
    return 1;
}
#endif

int bench_forward_main(int argc, char **argv) { return bench_forward(argc, argv); }
