// bench_train.c: `seer bench train`: the GPU training step (train/step_cuda.h) at a model's shape
// with random frozen weights made on the GPU: tokens/s per GPU, the share of time per part, and
// device memory, for chunks packed from documents of 2k-16k tokens and for one document per chunk
// (issue 6). FLOPs counted: the frozen model's GEMMs (2 * T * L * (D*(H+2HKV)*HD + H*HD*D +
// 3*D*F), no lm head) and causal attention (sum over documents of 2 * len^2 * H * HD per layer).
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "ckpt/hf_config.h"
#include "common/common.h"
#include "data/pack.h"

#ifdef SEER_CUDA
#include "common/cuda_check.h"
#include "train/step_cuda.h"

typedef struct {
    const char *config, *docs;
    int tokens, steps, chunks, tf32;
    uint64_t seed;
} BenchArgs;

static void usage(FILE *f) {
    fprintf(f,
            "usage: seer bench train --config CONFIG.json [--tokens N] [--docs packed|single|both]\n"
            "                        [--steps N] [--chunks-per-step C] [--fp32-gate] [--seed S]\n\n"
            "Times the GPU training step of `seer train --device cuda` (frozen forward with the gate\n"
            "target, every layer's gate loss and backward, gradient accumulation, clipping, AdamW)\n"
            "at the shape of a Hugging Face config.json, with random bf16 frozen weights made on the\n"
            "GPU (no checkpoint needed). Cases: `packed` chunks of at most N tokens packed by\n"
            "best-fit-decreasing from documents of 2k-16k tokens (log-normal, median 5000, mean about\n"
            "6k, like OpenR1-Math traces), `single` one N-token document per chunk. One warm-up chunk,\n"
            "then N steps of C chunks. Prints tokens/s, model TFLOP/s, the share of time per part\n"
            "(GEMMs, attention + target, gate, other kernels, optimizer, host) and device memory.\n\n"
            "  --config PATH        model config.json (e.g. bench/configs/qwen3-8b.json)\n"
            "  --tokens N           tokens per chunk at most (default 32768)\n"
            "  --docs CASE          packed, single or both (default both)\n"
            "  --steps N            timed optimizer steps per case (default 2)\n"
            "  --chunks-per-step C  chunks accumulated per step (default 4)\n"
            "  --fp32-gate          fp32 gate projections instead of TF32 tensor cores (the default)\n"
            "  --seed S             weights and document lengths (default 1)\n");
}

static int parse_args(BenchArgs *a, int argc, char **argv) {
    *a = (BenchArgs){NULL, "both", 32768, 2, 4, 1, 1};
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(s, "--help") || !strcmp(s, "-h")) { usage(stdout); exit(0); }
        else if (!strcmp(s, "--fp32-gate")) a->tf32 = 0;
        else if (!v) bench_missing_value("bench train", s);
        else if (!strcmp(s, "--config")) a->config = argv[++i];
        else if (!strcmp(s, "--tokens")) a->tokens = (int)bench_flag_int(s, argv[++i], 1, 1L << 24);
        else if (!strcmp(s, "--docs")) a->docs = argv[++i];
        else if (!strcmp(s, "--steps")) a->steps = (int)bench_flag_int(s, argv[++i], 1, 1000000);
        else if (!strcmp(s, "--chunks-per-step")) a->chunks = (int)bench_flag_int(s, argv[++i], 1, 1000000);
        else if (!strcmp(s, "--seed")) a->seed = (uint64_t)bench_flag_int(s, argv[++i], 0, 0x7fffffffffffffffL);
        else { fprintf(stderr, "seer: bench train: unknown option '%s'\n", s); return -1; }
    }
    if (!a->config) { fprintf(stderr, "seer: bench train: --config is required\n"); return -1; }
    if (strcmp(a->docs, "packed") && strcmp(a->docs, "single") && strcmp(a->docs, "both")) {
        fprintf(stderr, "seer: bench train: --docs must be packed, single or both, not '%s'\n", a->docs);
        return -1;
    }
    if (a->tokens < 2048 || a->steps < 1 || a->chunks < 1) {
        fprintf(stderr, "seer: bench train: need --tokens >= 2048, --steps >= 1, --chunks-per-step >= 1\n");
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- chunks

// The chunks of one case: chunk c holds docs[start[c] .. start[c+1]-1] (lengths), tok[c] tokens.
typedef struct {
    int n, *start, *lens, *tok;
} Chunks;

static uint64_t rng_next(uint64_t *s) {  // splitmix64
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) { return ((rng_next(s) >> 11) + 1) * (1.0 / 9007199254740993.0); }

// n chunks packed by best-fit-decreasing from log-normal lengths (median 5000, sigma 0.6) clipped
// to [2048, 16384], drawn until the pool holds n + 3 chunks' worth (the first n are full-ish).
static int chunks_packed(Chunks *c, int n, int T, uint64_t seed, SeerErr *err) {
    int cap = 64, nd = 0, *len = xmalloc(sizeof(int) * cap);
    int64_t total = 0;
    uint64_t s = seed;
    int hi = T < 16384 ? T : 16384;
    while (total < (int64_t)(n + 3) * T) {
        double z = sqrt(-2 * log(rng_unit(&s))) * cos(6.283185307179586 * rng_unit(&s));
        int l = (int)(5000 * exp(0.6 * z));
        l = l < 2048 ? 2048 : l > hi ? hi : l;
        if (nd == cap) len = xrealloc(len, sizeof(int) * (cap *= 2));
        len[nd++] = l;
        total += l;
    }
    PackPlan pp;
    if (pack_bfd(len, nd, T, &pp, err)) {
        free(len);
        return -1;
    }
    c->n = n < pp.n_chunks ? n : pp.n_chunks;
    c->start = xmalloc(sizeof(int) * (c->n + 1));
    c->tok = xmalloc(sizeof(int) * c->n);
    c->lens = xmalloc(sizeof(int) * pp.chunk_start[c->n]);
    for (int k = 0; k <= c->n; k++) c->start[k] = pp.chunk_start[k];
    for (int k = 0; k < c->n; k++) c->tok[k] = (int)pp.chunk_tokens[k];
    for (int i = 0; i < c->start[c->n]; i++) c->lens[i] = len[pp.doc[i]];
    pack_plan_free(&pp);
    free(len);
    return 0;
}

static void chunks_single(Chunks *c, int n, int T) {
    c->n = n;
    c->start = xmalloc(sizeof(int) * (n + 1));
    c->tok = xmalloc(sizeof(int) * n);
    c->lens = xmalloc(sizeof(int) * n);
    for (int k = 0; k <= n; k++) c->start[k] = k;
    for (int k = 0; k < n; k++) c->tok[k] = c->lens[k] = T;
}

static void chunks_free(Chunks *c) { free(c->start), free(c->lens), free(c->tok); }

// ---------------------------------------------------------------- one case

static double model_flops(const ModelConfig *c, const int *lens, int n) {
    double T = 0, attn = 0;
    for (int i = 0; i < n; i++) T += lens[i], attn += 2.0 * lens[i] * (double)lens[i] * c->H * c->HD;
    double per_tok = (double)c->D * (c->H + 2 * c->HKV) * c->HD + (double)c->H * c->HD * c->D + 3.0 * c->D * c->F;
    return c->L * (2.0 * T * per_tok + attn);
}

static int run_case(StepCuda *sc, const ModelConfig *mc, const char *label, const Chunks *ch,
                    const BenchArgs *a, SeerErr *err) {
    int *ids = xmalloc(sizeof(int) * a->tokens), docs = 0;
    for (int t = 0; t < a->tokens; t++) ids[t] = (int)((t * 2654435761u) % (unsigned)mc->V);
    int64_t tokens = 0;
    double flops = 0, wall = 0, norm;
    StepCudaTimes sum = {0};
    // Chunk 0 warms up (cuBLASLt algorithm choice, first touches); steps use chunks 1..
    int rc = step_cuda_begin(sc, err);
    if (!rc) rc = step_cuda_chunk(sc, ids, ch->tok[0], ch->lens, ch->start[1], NULL, err);
    for (int st = 0; !rc && st < a->steps; st++) {
        double t0 = seer_now();
        rc = step_cuda_begin(sc, err);
        for (int k = 0; !rc && k < a->chunks; k++) {
            int c = 1 + st * a->chunks + k, nd = ch->start[c + 1] - ch->start[c];
            const int *lens = ch->lens + ch->start[c];
            rc = step_cuda_chunk(sc, ids, ch->tok[c], lens, nd, NULL, err);
            tokens += ch->tok[c], docs += nd, flops += model_flops(mc, lens, nd);
        }
        if (!rc) rc = step_cuda_finish(sc, 1e-3f, 1.0f, NULL, &norm, err);
        double dt = seer_now() - t0;
        wall += dt;
        StepCudaTimes tm = step_cuda_times(sc);
        sum.gemm += tm.gemm, sum.attention += tm.attention, sum.gate += tm.gate;
        sum.other += tm.other, sum.optimizer += tm.optimizer;
        if (!rc) printf("  step %d: %d chunks in %.3f s, grad norm %.4g\n", st + 1, a->chunks, dt, norm);
    }
    free(ids);
    if (rc) return -1;
    double ms = wall * 1e3, host = ms - (sum.gemm + sum.attention + sum.gate + sum.other + sum.optimizer);
    size_t fr, tot;
    cudaMemGetInfo(&fr, &tot);
    printf("%s: %lld tokens in %d chunks (%.1f docs, %.0f tokens per chunk), %.2f s\n", label,
           (long long)tokens, a->steps * a->chunks, (double)docs / (a->steps * a->chunks),
           (double)tokens / (a->steps * a->chunks), wall);
    printf("  %.0f tokens/s per GPU   model %.1f TFLOP/s (GEMM + attention, %.1f GFLOP/token)\n",
           tokens / wall, flops / wall / 1e12, flops / tokens / 1e9);
    printf("  time: GEMM %.1f%%  attention+target %.1f%%  gate %.1f%%  other kernels %.1f%%  optimizer %.2f%%  host %.1f%%\n",
           100 * sum.gemm / ms, 100 * sum.attention / ms, 100 * sum.gate / ms, 100 * sum.other / ms,
           100 * sum.optimizer / ms, 100 * host / ms);
    printf("  device memory in use %.2f GB of %.1f GB (everything is allocated up front)\n",
           (tot - fr) / 1e9, tot / 1e9);
    fflush(stdout);
    return 0;
}

static int bench_train(const BenchArgs *a, SeerErr *err) {
    ModelConfig mc;
    if (hf_config_load(&mc, a->config, err)) return -1;
    struct cudaDeviceProp prop;
    if (cuda_current_device(&prop, "bench train", err)) return -1;
    printf("device: %s (%d SMs); config %s: D %d, L %d, H %d, HKV %d, HD %d, F %d; %d tokens per chunk; "
           "gate projections %s\n", prop.name, prop.multiProcessorCount, a->config, mc.D, mc.L, mc.H,
           mc.HKV, mc.HD, mc.F, a->tokens, a->tf32 ? "TF32" : "fp32");
    int n = 1 + a->steps * a->chunks, do_packed = strcmp(a->docs, "single") != 0;
    int do_single = strcmp(a->docs, "packed") != 0;
    Chunks packed = {0}, single = {0};
    if (do_packed && chunks_packed(&packed, n, a->tokens, a->seed, err)) return -1;
    if (do_packed && packed.n < n) {
        chunks_free(&packed);
        return seer_fail(err, "bench train: packing gave %d chunks, need %d", packed.n, n);
    }
    if (do_single) chunks_single(&single, n, a->tokens);
    int max_docs = 1;
    for (int c = 0; do_packed && c < packed.n; c++)
        if (packed.start[c + 1] - packed.start[c] > max_docs) max_docs = packed.start[c + 1] - packed.start[c];
    StepCudaOpts so = step_cuda_default_opts(a->tokens, max_docs);
    so.tf32 = a->tf32, so.timing = 1;
    StepCuda *sc;
    int rc = step_cuda_create(&sc, &mc, &so, stdout, err);
    if (rc) {
        chunks_free(&packed), chunks_free(&single);
        return -1;
    }
    StepCudaMem mem = step_cuda_mem(sc);
    printf("memory plan: weights %.2f GB, forward workspace %.2f GB, gate workspace %.2f GB, gate "
           "params + grads + AdamW moments %.2f GB (%lld parameters)\n", mem.weights / 1e9,
           mem.forward_work / 1e9, mem.gate_work / 1e9, mem.optimizer / 1e9,
           (long long)step_cuda_param_count(sc));
    int64_t np = step_cuda_param_count(sc), L = mc.L, P = np / L;
    float *params = xmalloc(sizeof(float) * np);
    GateShape gs = {mc.HKV, mc.H / mc.HKV, mc.HD, so.DG};
    for (int l = 0; l < L; l++) gate_params_init(params + l * P, gs, a->seed, l);
    rc = step_cuda_randomize_model(sc, a->seed, err);
    if (!rc) rc = step_cuda_set_state(sc, params, NULL, NULL, 0, err);
    free(params);
    if (!rc && do_packed) rc = run_case(sc, &mc, "packed (2k-16k docs)", &packed, a, err);
    if (!rc && do_single) rc = run_case(sc, &mc, "single document", &single, a, err);
    step_cuda_free(sc);
    chunks_free(&packed), chunks_free(&single);
    return rc;
}

int bench_train_main(int argc, char **argv) {
    BenchArgs a;
    if (parse_args(&a, argc, argv)) return 2;
    SeerErr err;
    if (bench_train(&a, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
#else
int bench_train_main(int argc, char **argv) {
    if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
        printf("usage: seer bench train --config CONFIG.json [options]   (needs a CUDA build)\n");
        return 0;
    }
    fprintf(stderr, "seer: bench train: this binary was built without CUDA\n");
    return 1;
}
#endif
