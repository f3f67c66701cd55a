// bench_select.c: `seer bench select`: the gate selection step (select_gate_cuda: query
// projection, scores, top-k, list) against the block-sparse decode kernel it feeds (SPEC.md
// section 4), at the paper's decode shape: 64 query / 8 KV heads, head dim 128, gate dim 128, bf16.
//
// For each cache length: the selection alone, the sparse decode kernel alone over the lists the
// selection wrote, and the two back to back (selection -> sparse decode), the decode launched
// plain, with programmatic dependent launch (DecodeParams.pdl), and with PDL and the lists' ready
// flags (DecodeParams.list_ready: each decode program waits for its own list only). Each is timed as a stream of
// --iters calls (CUDA events) and as the same calls replayed in one CUDA graph (median of 5
// replays), which is how a decode engine runs them. The K-compression caches are rotated over
// sets larger than 4x L2 together, so every selection reads its 128 KB per (sequence, KV head)
// from HBM; each set has its own lists, so the decode's gathers do not repeat within L2 either.
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "common/common.h"

#ifdef SEER_CUDA
#include <cuda_runtime.h>

#include "common/cuda_check.h"
#include "kernels/decode.h"
#include "kernels/select.h"
#endif

enum { SEL_HEADS = 64, SEL_KV_HEADS = 8, SEL_HD = 128, SEL_DG = 128, SEL_MAX_CACHES = 16 };

typedef struct {
    int batch, iters, n_cache, kcomp_fp8;
    int cache[SEL_MAX_CACHES];
    double sparsity, threshold;
    const char *json;
} SelOpts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: seer bench select [options]\n\n"
            "Times the gate selection (select_gate_cuda) against the 90%%-sparse decode kernel it\n"
            "feeds (64 query / 8 KV heads, head dim 128, gate dim 128, bf16): the selection alone,\n"
            "the sparse kernel alone, and selection -> sparse decode, the decode launched plain, with\n"
            "programmatic dependent launch, and with PDL and the lists' ready flags (each decode program\n"
            "waits for its own list only); each as a stream of calls and replayed in a CUDA graph.\n\n"
            "  --batch N        sequences (default 16)\n"
            "  --cache LIST     cache lengths in tokens, k = 1024 (default 32k)\n"
            "  --sparsity S     token budget = (1 - S) x cache (default 0.9)\n"
            "  --threshold T    select by softmax threshold T instead of the budget (default 0: budget)\n"
            "  --iters N        calls per timing (default 50)\n"
            "  --kcomp T        K-compression cache storage: bf16 (default) or fp8 (E4M3)\n"
            "  --json FILE      write every timing as JSON\n");
}

// Cache lengths from "32k,131072": each a whole number of tokens in [64, 2^28] (k = x1024).
static int parse_caches(SelOpts *o, const char *s) {
    double v[SEL_MAX_CACHES];
    o->n_cache = bench_parse_list(v, SEL_MAX_CACHES, s, 1);
    for (int i = 0; i < o->n_cache; i++) {
        if (v[i] != (int)v[i] || v[i] < 64 || v[i] > (1 << 28)) return -1;
        o->cache[i] = (int)v[i];
    }
    return o->n_cache > 0 ? 0 : -1;
}

static void parse_opts(SelOpts *o, int argc, char **argv) {
    *o = (SelOpts){16, 50, 0, 0, {0}, 0.9, 0.0, NULL};
    parse_caches(o, "32k");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v) bench_missing_value("bench select", a);
        i++;
        char *end;
        if (!strcmp(a, "--batch")) o->batch = (int)bench_flag_int(a, v, 1, 4096);
        else if (!strcmp(a, "--iters")) o->iters = (int)bench_flag_int(a, v, 1, 100000);
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--kcomp")) {
            if (strcmp(v, "bf16") && strcmp(v, "fp8"))
                seer_die("bench select: --kcomp must be bf16 or fp8, got '%s'", v);
            o->kcomp_fp8 = !strcmp(v, "fp8");
        }
        else if (!strcmp(a, "--cache")) {
            if (parse_caches(o, v)) seer_die("bench select: bad --cache list '%s' (lengths >= 64)", v);
        } else if (!strcmp(a, "--sparsity")) {
            o->sparsity = strtod(v, &end);
            if (end == v || *end || !(o->sparsity >= 0 && o->sparsity < 1))
                seer_die("bench select: --sparsity needs a number in [0, 1), got '%s'", v);
        } else if (!strcmp(a, "--threshold")) {
            o->threshold = strtod(v, &end);
            if (end == v || *end || !(o->threshold >= 0 && o->threshold < 1))
                seer_die("bench select: --threshold needs a number in [0, 1), got '%s'", v);
        } else
            seer_die("bench select: unknown option %s (seer bench select --help)", a);
    }
}

#ifndef SEER_CUDA
int bench_select_main(int argc, char **argv) {
    SelOpts o;
    parse_opts(&o, argc, argv);
    fprintf(stderr, "seer: bench select needs a CUDA build (nvcc was not found at build time)\n");
    return 1;
}
#else

static void *dev_alloc(size_t bytes) {
    void *p;
    CUDA_OK(cudaMalloc(&p, bytes));
    return p;
}

// Everything one cache length needs: n_set K-compression caches, each with its block lists.
typedef struct {
    SelectConfig c;
    int n_set, T;
    void *kc[64];
    uint16_t *q_nope, *wq;
    int32_t *idx[64], *len;
    int32_t *ready;  // [B, HKV] the lists' ready flags (RUN_PIPE_FLAGS)
    float *qnorm, *qproj;  // [DG], the selection's workspace (select_gate_ws_bytes)
    DecodeParams dec;  // block_idx and pdl set per call
} Bench;

// What one timed call does (i: call number, picks the set).
typedef enum { RUN_SELECT, RUN_DECODE, RUN_PIPE_PLAIN, RUN_PIPE_PDL, RUN_PIPE_FLAGS, RUN_KINDS } RunKind;

typedef struct {
    Bench *b;
    RunKind kind;
} Call;

// flags: the selection sets the lists' ready flags (only when the decode after it clears them).
static void select_call(Bench *b, int set, int flags, cudaStream_t st) {
    SeerErr err;
    if (select_gate_cuda(b->idx[set], flags ? b->ready : NULL, b->qproj, b->q_nope, b->kc[set], b->len, b->wq, b->qnorm, SEER_BF16,
                         &b->c, st, &err))
        seer_die("%s", err.msg);
}

static void decode_call(Bench *b, int set, int pdl, int flags, cudaStream_t st) {
    SeerErr err;
    DecodeParams p = b->dec;
    p.block_idx = b->idx[set], p.pdl = pdl, p.list_ready = flags ? b->ready : NULL;
    if (decode_attention_cuda(&p, st, &err)) seer_die("%s", err.msg);
}

static void run_call(const Call *k, int i, cudaStream_t st) {
    const int set = i % k->b->n_set, flags = k->kind == RUN_PIPE_FLAGS;
    if (k->kind != RUN_DECODE) select_call(k->b, set, flags, st);
    const int pdl = k->kind == RUN_PIPE_PDL || flags;
    if (k->kind != RUN_SELECT) decode_call(k->b, set, pdl, flags, st);
}

// Mean us per call of iters calls issued on a stream, after 3 warm-up calls.
static double time_stream(const Call *k, int iters, cudaStream_t st) {
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    for (int i = 0; i < 3; i++) run_call(k, i, st);
    CUDA_OK(cudaEventRecord(e0, st));
    for (int i = 0; i < iters; i++) run_call(k, i, st);
    CUDA_OK(cudaEventRecord(e1, st));
    CUDA_OK(cudaEventSynchronize(e1));
    float ms;
    CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return 1e3 * ms / iters;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// Median over 5 replays of the us per call when iters calls are captured in one CUDA graph.
static double time_graph(const Call *k, int iters, cudaStream_t st) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < iters; i++) run_call(k, i, st);
    CUDA_OK(cudaStreamEndCapture(st, &g));
    CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
    CUDA_OK(cudaGraphLaunch(ge, st));
    cudaEvent_t e0, e1;
    CUDA_OK(cudaEventCreate(&e0));
    CUDA_OK(cudaEventCreate(&e1));
    double t[5];
    for (int r = 0; r < 5; r++) {
        CUDA_OK(cudaEventRecord(e0, st));
        CUDA_OK(cudaGraphLaunch(ge, st));
        CUDA_OK(cudaEventRecord(e1, st));
        CUDA_OK(cudaEventSynchronize(e1));
        float ms;
        CUDA_OK(cudaEventElapsedTime(&ms, e0, e1));
        t[r] = 1e3 * ms / iters;
    }
    qsort(t, 5, sizeof t[0], cmp_double);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    cudaGraphExecDestroy(ge), cudaGraphDestroy(g);
    return t[2];
}

typedef struct {
    int cache, budget, max_sel, n_set, n_split, entries;
    double us[RUN_KINDS][2];  // [RunKind][stream, graph]
} SelRow;

static const char *kind_name[RUN_KINDS] = {"selection", "sparse decode", "selection -> decode",
                                           "selection -> decode (PDL)", "selection -> decode (flags)"};

// Allocates and fills one cache length's buffers; runs the selection once per set and checks the
// lists with decode_validate (they must be valid sparse-decode input).
static void bench_init(Bench *b, const SelOpts *o, int T, size_t l2) {
    const int B = o->batch, HKV = SEL_KV_HEADS, G = SEL_HEADS / SEL_KV_HEADS, HD = SEL_HD, DG = SEL_DG;
    const int nb = ceil_div(T, SEER_BLOCK);
    int budget = o->threshold > 0 ? 0 : (int)(T * (1.0 - o->sparsity));
    if (budget > 0 && budget < SEER_BLOCK) budget = SEER_BLOCK;
    b->c = (SelectConfig){B, HKV, G, HD, DG, nb, 0, budget, (float)o->threshold, 1e6f, 0, o->kcomp_fp8};
    b->c.max_sel = select_needed_max_sel(&b->c, SELECT_GATE);
    b->T = T;
    SeerErr err;
    if (select_validate_config(&b->c, SELECT_GATE, &err)) seer_die("bench select: %s", err.msg);
    const size_t kc_elems = (size_t)B * HKV * nb * DG, q_elems = (size_t)B * SEL_HEADS * HD;
    const size_t kv_elems = (size_t)B * HKV * T * HD, n_list = (size_t)B * HKV * b->c.max_sel;
    const size_t kc_bytes = kc_elems * (o->kcomp_fp8 ? 1 : 2);
    b->n_set = (int)ceil(4.0 * l2 / kc_bytes);
    b->n_set = b->n_set < 1 ? 1 : b->n_set > 64 ? 64 : b->n_set;
    for (int i = 0; i < b->n_set; i++) {
        b->kc[i] = dev_alloc(kc_bytes), b->idx[i] = dev_alloc(n_list * 4);
        if (o->kcomp_fp8) bench_fill_device_e4m3(b->kc[i], kc_elems);
        else bench_fill_device(b->kc[i], kc_elems, SEER_BF16);
    }
    b->q_nope = dev_alloc(q_elems * 2), b->wq = dev_alloc((size_t)HKV * G * HD * DG * 2);
    bench_fill_device(b->q_nope, q_elems, SEER_BF16);
    bench_fill_device(b->wq, (size_t)HKV * G * HD * DG, SEER_BF16);
    b->qnorm = dev_alloc(DG * sizeof(float));
    b->qproj = dev_alloc(select_gate_ws_bytes(&b->c));
    b->len = dev_alloc(B * sizeof(int32_t));
    float *ones = xmalloc(DG * sizeof(float));
    int32_t *len = xmalloc(B * sizeof(int32_t)), *lists = xmalloc(n_list * 4);
    for (int i = 0; i < DG; i++) ones[i] = 1.0f;
    for (int i = 0; i < B; i++) len[i] = T;
    CUDA_OK(cudaMemcpy(b->qnorm, ones, DG * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_OK(cudaMemcpy(b->len, len, B * sizeof(int32_t), cudaMemcpyHostToDevice));
    uint16_t *q = dev_alloc(q_elems * 2), *out = dev_alloc(q_elems * 2);
    uint16_t *k = dev_alloc(kv_elems * 2), *v = dev_alloc(kv_elems * 2);
    bench_fill_device(q, q_elems, SEER_BF16);
    bench_fill_device(k, kv_elems, SEER_BF16), bench_fill_device(v, kv_elems, SEER_BF16);
    b->dec = decode_params_contiguous(q, k, v, out, b->len, b->idx[0], B, SEL_HEADS, HKV, HD, T,
                                      b->c.max_sel, SEER_BF16);
    b->dec.n_split = decode_pick_splits_cuda(B, HKV, b->c.max_sel);
    b->dec.o_part = dev_alloc(sizeof(float) * q_elems * b->dec.n_split);
    b->dec.lse_part = dev_alloc(sizeof(float) * B * SEL_HEADS * b->dec.n_split);
    b->dec.sem = dev_alloc(sizeof(int32_t) * B * HKV);
    CUDA_OK(cudaMemset(b->dec.sem, 0, sizeof(int32_t) * B * HKV));
    b->ready = dev_alloc(sizeof(int32_t) * B * HKV);
    CUDA_OK(cudaMemset(b->ready, 0, sizeof(int32_t) * B * HKV));
    for (int i = 0; i < b->n_set; i++) {
        select_call(b, i, 0, NULL);
        CUDA_OK(cudaMemcpy(lists, b->idx[i], n_list * 4, cudaMemcpyDeviceToHost));
        b->dec.block_idx = b->idx[i];
        if (decode_validate(&b->dec, len, lists, &err)) seer_die("bench select: selection lists: %s", err.msg);
    }
    free(ones), free(len), free(lists);
}

static void bench_free(Bench *b) {
    for (int i = 0; i < b->n_set; i++) cudaFree(b->kc[i]), cudaFree(b->idx[i]);
    cudaFree(b->q_nope), cudaFree(b->wq), cudaFree(b->qnorm), cudaFree(b->qproj), cudaFree(b->len);
    cudaFree((void *)b->dec.q), cudaFree(b->dec.out), cudaFree((void *)b->dec.k), cudaFree((void *)b->dec.v);
    cudaFree(b->dec.o_part), cudaFree(b->dec.lse_part), cudaFree(b->dec.sem), cudaFree(b->ready);
}

// Every decode cleared the flag its selection set: all zero after the flagged runs.
static void check_flags_clear(const Bench *b) {
    const int n = b->c.B * b->c.HKV;
    int32_t *f = xmalloc(sizeof(int32_t) * n);
    CUDA_OK(cudaMemcpy(f, b->ready, sizeof(int32_t) * n, cudaMemcpyDeviceToHost));
    for (int i = 0; i < n; i++)
        if (f[i]) seer_die("bench select: ready flag %d is %d after the flagged runs (expected 0)", i, f[i]);
    free(f);
}

// Mean list length over the lists of set 0.
static int mean_entries(const Bench *b) {
    size_t n = (size_t)b->c.B * b->c.HKV * b->c.max_sel;
    int32_t *l = xmalloc(n * 4);
    CUDA_OK(cudaMemcpy(l, b->idx[0], n * 4, cudaMemcpyDeviceToHost));
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) cnt += l[i] >= 0;
    free(l);
    return (int)(cnt / ((size_t)b->c.B * b->c.HKV));
}

static SelRow bench_cache(const SelOpts *o, int T, size_t l2, cudaStream_t st) {
    Bench b;
    bench_init(&b, o, T, l2);
    SelRow r = {T, b.c.budget, b.c.max_sel, b.n_set, b.dec.n_split, mean_entries(&b), {{0}}};
    for (int kind = 0; kind < RUN_KINDS; kind++) {
        Call k = {&b, (RunKind)kind};
        r.us[kind][0] = time_stream(&k, o->iters, st);
        r.us[kind][1] = time_graph(&k, o->iters, st);
    }
    check_flags_clear(&b);
    bench_free(&b);
    return r;
}

static void print_row(const SelRow *r, int batch) {
    const double sel = r->us[RUN_SELECT][1], dec = r->us[RUN_DECODE][1];
    printf("\nbatch %d, cache %d: budget %d tokens, lists of %d entries (%d used), %d K-comp sets, "
           "decode splits %d\n", batch, r->cache, r->budget, r->max_sel, r->entries, r->n_set, r->n_split);
    printf("  %-28s %10s %10s\n", "us per call", "stream", "graph");
    for (int k = 0; k < RUN_KINDS; k++) printf("  %-28s %10.2f %10.2f\n", kind_name[k], r->us[k][0], r->us[k][1]);
    const double plain = r->us[RUN_PIPE_PLAIN][1] - dec, pdl = r->us[RUN_PIPE_PDL][1] - dec;
    const double flags = r->us[RUN_PIPE_FLAGS][1] - dec;
    printf("  selection = %.1f%% of the sparse kernel (graph); selection -> decode adds %.2f us plain, "
           "%.2f us with PDL, %.2f us with PDL and ready flags over the sparse kernel alone "
           "(%.1f%% / %.1f%% / %.1f%%)\n", 100 * sel / dec, plain, pdl, flags, 100 * plain / dec,
           100 * pdl / dec, 100 * flags / dec);
}

static void write_json(const char *path, const SelRow *rows, int n, const SelOpts *o, const char *device) {
    static const char *keys[RUN_KINDS] = {"select", "sparse_decode", "pipeline_plain", "pipeline_pdl",
                                          "pipeline_flags"};
    json_t *root = json_object(), *arr = json_array();
    for (int i = 0; i < n; i++) {
        const SelRow *r = &rows[i];
        json_t *p = json_object();
        json_object_set_new(p, "cache", json_integer(r->cache));
        json_object_set_new(p, "budget", json_integer(r->budget));
        json_object_set_new(p, "max_sel", json_integer(r->max_sel));
        json_object_set_new(p, "entries", json_integer(r->entries));
        json_object_set_new(p, "decode_splits", json_integer(r->n_split));
        for (int k = 0; k < RUN_KINDS; k++) {
            char name[64];
            snprintf(name, sizeof name, "%s_stream_us", keys[k]);
            json_object_set_new(p, name, json_real(r->us[k][0]));
            snprintf(name, sizeof name, "%s_graph_us", keys[k]);
            json_object_set_new(p, name, json_real(r->us[k][1]));
        }
        json_object_set_new(p, "select_pct_of_sparse_graph",
                            json_real(100 * r->us[RUN_SELECT][1] / r->us[RUN_DECODE][1]));
        json_array_append_new(arr, p);
    }
    json_object_set_new(root, "device", json_string(device));
    json_object_set_new(root, "batch", json_integer(o->batch));
    json_object_set_new(root, "sparsity", json_real(o->sparsity));
    json_object_set_new(root, "threshold", json_real(o->threshold));
    json_object_set_new(root, "iters", json_integer(o->iters));
    json_object_set_new(root, "kcomp", json_string(o->kcomp_fp8 ? "fp8" : "bf16"));
    json_object_set_new(root, "points", arr);
    if (json_dump_file(root, path, JSON_INDENT(1))) seer_die("bench select: cannot write %s", path);
    json_decref(root);
}

int bench_select_main(int argc, char **argv) {
    SelOpts o;
    parse_opts(&o, argc, argv);
    struct cudaDeviceProp prop;
    SeerErr err;
    if (cuda_current_device(&prop, "bench select", &err)) seer_die("%s", err.msg);
    printf("device %s, %d SMs, L2 %.0f MB; 64 query / 8 KV heads, HD 128, DG 128, bf16, K-compression %s, "
           "batch %d, %s\n", prop.name, prop.multiProcessorCount, prop.l2CacheSize / 1e6,
           o.kcomp_fp8 ? "fp8 E4M3" : "bf16", o.batch,
           o.threshold > 0 ? "threshold selection" : "token budget");
    cudaStream_t st;
    CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    SelRow rows[SEL_MAX_CACHES];
    for (int i = 0; i < o.n_cache; i++) {
        rows[i] = bench_cache(&o, o.cache[i], (size_t)prop.l2CacheSize, st);
        print_row(&rows[i], o.batch);
    }
    printf("\n%7s %7s %9s %9s %9s %7s %10s %10s %11s %7s\n", "cache", "budget", "select", "sparse", "sel->dec",
           "sel/sp", "added", "added PDL", "added flags", "flags %");
    for (int i = 0; i < o.n_cache; i++) {
        const SelRow *r = &rows[i];
        const double dec = r->us[RUN_DECODE][1];
        const double flags = r->us[RUN_PIPE_FLAGS][1] - dec;
        printf("%7d %7d %9.2f %9.2f %9.2f %6.1f%% %10.2f %10.2f %11.2f %6.1f%%\n", r->cache, r->budget,
               r->us[RUN_SELECT][1], dec, r->us[RUN_PIPE_FLAGS][1], 100 * r->us[RUN_SELECT][1] / dec,
               r->us[RUN_PIPE_PLAIN][1] - dec, r->us[RUN_PIPE_PDL][1] - dec, flags, 100 * flags / dec);
    }
    printf("(us per call replayed in a CUDA graph; sel->dec with PDL and ready flags; added = over the sparse\n"
           " kernel alone; flags %% = added flags / sparse)\n");
    if (o.json) write_json(o.json, rows, o.n_cache, &o, prop.name);
    cudaStreamDestroy(st);
    return 0;
}
#endif
