// bench_decode.c: `seer bench decode`: dense and block-sparse decode kernels over the paper's grid
// (SPEC.md section 6), against the measured copy bandwidth, our dense kernel and torch SDPA
// (FLASH, CUDNN; JSON from bench/sdpa_decode.py run on the same card) and, with --floor 1, against
// the gather floor of each sparse point (bench/gather_floor.h). The selection step is timed by
// `seer bench select` (bench_select.c).
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"
#include "bench/gather_floor.h"
#include "common/cuda_check.h"
#include "kernels/decode.h"

#ifdef SEER_CUDA
#include <cuda_runtime.h>
#endif

enum { HEADS = 64, KV_HEADS = 8, HEAD_DIM = 128, MAX_LIST = 16 };

typedef struct {
    int n;
    double v[MAX_LIST];
} List;

typedef struct {
    List batch, cache, sparsity;
    int dtypes[2], n_dtypes;  // SeerDType values
    const char *csv, *json, *sdpa;
    int iters, pdl, splits;  // splits: 0 = the launcher's heuristic
    int graph;  // 1: every point timed as one replayed CUDA graph of its iters calls
    int floor;  // 1: every sparse point also times its gather floor
    int queue;  // tiles per unit of the work queue (DecodeParams.queue); 0 = one program per split
} Opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: seer bench decode [options]\n\n"
            "Times the dense and block-sparse split-KV decode kernels (64 query / 8 KV heads, head dim\n"
            "128, block 64) with CUDA events over buffers rotated past L2. At a sparse point every\n"
            "rotation slot has its own random block lists (disjoint on one buffer), so the blocks\n"
            "read are rotated past L2 too.\n\n"
            "  --batch LIST     batch sizes (default 1,2,4,8,16)\n"
            "  --cache LIST     cache lengths, k = 1024 (default 8k,16k,32k,64k,128k)\n"
            "  --sparsity LIST  fractions of blocks skipped, 0 = dense (default 0,0.5,0.6,0.7,0.8,0.9)\n"
            "  --dtype LIST     bf16 and/or fp16 (default bf16,fp16)\n"
            "  --sdpa FILE      JSON of bench/sdpa_decode.py from the same card (speedups over SDPA)\n"
            "  --iters N        timed calls per point (default 30)\n"
            "  --pdl 0|1        launch every decode call with programmatic dependent launch, so each\n"
            "                   call's start overlaps the previous call's tail (default 0)\n"
            "  --splits N       splits per (sequence, KV head) instead of the heuristic's (1-64)\n"
            "  --queue T        launch through the work queue: one persistent program per SM claiming\n"
            "                   units of about T tiles (ceil(tiles / T) splits, at most 64, unless\n"
            "                   --splits), streaming each next unit behind the current one. Experimental:\n"
            "                   see docs/KERNELS.md. 0 = one program per split (default 0)\n"
            "  --graph 0|1      1: time every point by replaying its --iters calls captured in one CUDA\n"
            "                   graph, as a decode engine runs them (one warm-up replay first); 0: launch\n"
            "                   them one by one on a stream (default 0). Time the SDPA JSON the same way\n"
            "                   (bench/sdpa_decode.py --graph)\n"
            "  --floor 0|1      1: at every sparse point also time the gather floor, a kernel that loads\n"
            "                   the same K/V blocks and block lists from the same rotated buffers and does\n"
            "                   no math (bench/gather_floor.h), timed like the decode kernel: columns\n"
            "                   floor_ms, pct_floor (sparse ms / floor ms, %%) and x_best_floor (best dense\n"
            "                   baseline ms / floor ms: the most a kernel at the floor could show). 0: the\n"
            "                   text table leaves them out, the CSV leaves them empty, the JSON has \"floor\"\n"
            "                   0 and no such keys (default 0)\n"
            "  --csv FILE       write the table as CSV\n"
            "  --json FILE      write the table and copy bandwidth as JSON\n"
            "\nThe text table, the CSV (column graph) and the JSON (top-level \"graph\") record --graph;\n"
            "the CSV (column queue), the JSON (top-level \"queue\") and the table's last line --queue.\n");
}

static int parse_list(List *l, const char *s, int tokens) {
    l->n = bench_parse_list(l->v, MAX_LIST, s, tokens);
    return l->n < 0 ? -1 : 0;
}

static int parse_opts(Opts *o, int argc, char **argv) {
    parse_list(&o->batch, "1,2,4,8,16", 0);
    parse_list(&o->cache, "8k,16k,32k,64k,128k", 1);
    parse_list(&o->sparsity, "0,0.5,0.6,0.7,0.8,0.9", 0);
    o->dtypes[0] = SEER_BF16, o->dtypes[1] = SEER_F16, o->n_dtypes = 2;
    o->csv = o->json = o->sdpa = NULL;
    o->iters = 30;
    o->pdl = 0;
    o->splits = 0;
    o->graph = 0;
    o->floor = 0;
    o->queue = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        }
        if (!v) bench_missing_value("bench decode", a);
        i++;
        if (!strcmp(a, "--batch") ? parse_list(&o->batch, v, 0)
            : !strcmp(a, "--cache") ? parse_list(&o->cache, v, 1)
            : !strcmp(a, "--sparsity") ? parse_list(&o->sparsity, v, 0) : 0)
            seer_die("bench decode: bad list '%s' for %s", v, a);
        if (!strcmp(a, "--dtype")) {
            o->n_dtypes = 0;
            if (strstr(v, "bf16")) o->dtypes[o->n_dtypes++] = SEER_BF16;
            if (strstr(v, "fp16")) o->dtypes[o->n_dtypes++] = SEER_F16;
            if (!o->n_dtypes) seer_die("bench decode: --dtype takes bf16 and/or fp16, got '%s'", v);
        } else if (!strcmp(a, "--csv")) o->csv = v;
        else if (!strcmp(a, "--json")) o->json = v;
        else if (!strcmp(a, "--sdpa")) o->sdpa = v;
        else if (!strcmp(a, "--iters")) o->iters = (int)bench_flag_int(a, v, 1, 1000000);
        else if (!strcmp(a, "--pdl")) o->pdl = (int)bench_flag_int(a, v, 0, 1);
        else if (!strcmp(a, "--splits")) o->splits = (int)bench_flag_int(a, v, 1, 64);
        else if (!strcmp(a, "--graph")) o->graph = (int)bench_flag_int(a, v, 0, 1);
        else if (!strcmp(a, "--floor")) o->floor = (int)bench_flag_int(a, v, 0, 1);
        else if (!strcmp(a, "--queue")) o->queue = (int)bench_flag_int(a, v, 0, 4096);
        else if (strcmp(a, "--batch") && strcmp(a, "--cache") && strcmp(a, "--sparsity"))
            seer_die("bench decode: unknown option %s (seer bench decode --help)", a);
    }
    for (int i = 0; i < o->batch.n; i++)
        if (o->batch.v[i] < 1) seer_die("bench decode: batch %g < 1", o->batch.v[i]);
    for (int i = 0; i < o->cache.n; i++)
        if (o->cache.v[i] < 64) seer_die("bench decode: cache %g < 64 tokens", o->cache.v[i]);
    for (int i = 0; i < o->sparsity.n; i++)
        if (!(o->sparsity.v[i] >= 0 && o->sparsity.v[i] < 1))
            seer_die("bench decode: sparsity %g is outside [0, 1)", o->sparsity.v[i]);
    if (o->iters < 1) seer_die("bench decode: --iters must be >= 1");
    return 0;
}

#ifndef SEER_CUDA
int bench_decode_main(int argc, char **argv) {
    Opts o;
    parse_opts(&o, argc, argv);
    fprintf(stderr, "seer: bench decode needs a CUDA build (nvcc was not found at build time)\n");
    return 1;
}
#else

typedef struct {
    int batch, cache;
    SeerDType dtype;
    double sparsity, ms, bytes, gbs, pct_copy, x_dense, x_flash, x_cudnn, x_best;
    double floor_ms, pct_floor, x_best_floor;  // NaN without a floor (--floor 0, dense points)
    int n_split;
} Row;

static uint32_t rng = 2025;

static double copy_bandwidth(void) {  // read + write bytes per second of a 1 GiB D2D copy
    size_t n = (size_t)1 << 30;
    void *a, *b;
    CUDA_OK(cudaMalloc(&a, n));
    CUDA_OK(cudaMalloc(&b, n));
    CUDA_OK(cudaMemset(a, 1, n));
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    CUDA_OK(cudaMemcpy(b, a, n, cudaMemcpyDeviceToDevice));
    cudaEventRecord(e0, 0);
    for (int i = 0; i < 10; i++) cudaMemcpyAsync(b, a, n, cudaMemcpyDeviceToDevice, 0);
    cudaEventRecord(e1, 0);
    CUDA_OK(cudaEventSynchronize(e1));
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaFree(a), cudaFree(b);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    return 2.0 * n * 10 / (ms * 1e-3);
}

typedef void (*LaunchFn)(void *ctx, int i, cudaStream_t st);

// One CUDA graph of the calls launch(ctx, i, st), i = 0..iters-1, captured on st.
static cudaGraphExec_t capture_calls(LaunchFn launch, void *ctx, int iters, cudaStream_t st) {
    cudaGraph_t g;
    cudaGraphExec_t ge;
    CUDA_OK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    for (int i = 0; i < iters; i++) launch(ctx, i, st);
    CUDA_OK(cudaStreamEndCapture(st, &g));
    CUDA_OK(cudaGraphInstantiate(&ge, g, 0));
    cudaGraphDestroy(g);
    return ge;
}

// One replay of ge, or without a graph the calls launch(ctx, i, st), i = 0..n-1.
static void run_calls(LaunchFn launch, void *ctx, int n, cudaGraphExec_t ge, cudaStream_t st) {
    if (ge) CUDA_OK(cudaGraphLaunch(ge, st));
    else
        for (int i = 0; i < n; i++) launch(ctx, i, st);
}

// Mean ms of one of the calls launch(ctx, i, st), i = 0..iters-1, between CUDA events, after 3
// warm-up calls. graph 0: launched one by one on the default stream. graph 1: captured in one CUDA
// graph on a stream of its own, replayed once to warm up, then once timed: the GPU time without the
// host's per-launch cost (decode engines replay graphs).
static double time_calls(LaunchFn launch, void *ctx, int iters, int graph) {
    cudaStream_t st = NULL;
    cudaGraphExec_t ge = NULL;
    if (graph) CUDA_OK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
    run_calls(launch, ctx, 3, NULL, st);
    if (graph) {
        ge = capture_calls(launch, ctx, iters, st);
        run_calls(launch, ctx, iters, ge, st);  // the warm-up replay
    }
    cudaEvent_t e0, e1;
    cudaEventCreate(&e0), cudaEventCreate(&e1);
    cudaEventRecord(e0, st);
    run_calls(launch, ctx, iters, ge, st);
    cudaEventRecord(e1, st);
    CUDA_OK(cudaEventSynchronize(e1));
    float ms;
    cudaEventElapsedTime(&ms, e0, e1);
    cudaEventDestroy(e0), cudaEventDestroy(e1);
    if (graph) cudaGraphExecDestroy(ge), cudaStreamDestroy(st);
    return ms / iters;
}

typedef struct {
    const DecodeParams *sets;
    int n;
} DecodeCtx;

static void launch_decode(void *ctx, int i, cudaStream_t st) {
    const DecodeCtx *c = ctx;
    SeerErr err;
    if (decode_attention_cuda(&c->sets[i % c->n], st, &err)) seer_die("%s", err.msg);
}

// Mean ms of one decode call over `iters` calls cycling through the n parameter sets (time_calls).
static double time_sets(const DecodeParams *sets, int n, int iters, int graph) {
    DecodeCtx ctx = {sets, n};
    return time_calls(launch_decode, &ctx, iters, graph);
}

typedef struct {
    const DecodeParams *sets;
    int n;
    uint32_t *sink;  // [B, HKV, 4] device
} FloorCtx;

static void launch_floor(void *ctx, int i, cudaStream_t st) {
    const FloorCtx *c = ctx;
    SeerErr err;
    if (gather_floor_cuda(&c->sets[i % c->n], c->sink, st, &err)) seer_die("%s", err.msg);
}

// Mean ms of one gather-floor call over the same sets, iters and mode as time_sets.
static double time_floor(const DecodeParams *sets, int n, uint32_t *sink, int iters, int graph) {
    FloorCtx ctx = {sets, n, sink};
    return time_calls(launch_floor, &ctx, iters, graph);
}

// bf16, B16, 32k, 90%: [0] launched on a stream, [1] replayed in a CUDA graph (both, whatever --graph).
static double sparse_ref_ms[2] = {NAN, NAN};

static double sdpa_ms(json_t *sdpa, int b, int t, SeerDType dt, const char *backend) {
    json_t *pts = sdpa ? json_object_get(sdpa, "points") : NULL, *p;
    size_t i;
    const char *dn = dt == SEER_F16 ? "fp16" : "bf16";
    json_array_foreach(pts, i, p) {
        json_t *ms = json_object_get(p, "ms");
        if (json_integer_value(json_object_get(p, "batch")) == b &&
            json_integer_value(json_object_get(p, "cache")) == t &&
            !strcmp(json_string_value(json_object_get(p, "dtype")), dn) &&
            !strcmp(json_string_value(json_object_get(p, "backend")), backend) && ms)
            return json_real_value(ms);
    }
    return NAN;
}

// All sparsities of one (batch, cache, dtype): buffers rotated so the data read per round
// exceeds 4x L2; at a sparse point each rotation slot also has its own block lists (slots on one
// buffer read disjoint blocks), so the selected blocks do too. Appends one row per sparsity.
static void bench_shape(Row *rows, int *n_rows, const Opts *o, int B, int T, SeerDType dt,
                        double copy_bw, size_t l2, json_t *sdpa) {
    const int H = HEADS, HKV = KV_HEADS, HD = HEAD_DIM, nb = ceil_div(T, SEER_BLOCK);
    const size_t kv_elems = (size_t)B * HKV * T * HD, q_elems = (size_t)B * H * HD;
    const int n_buf = bench_rotation_slots(1, 2.0 * kv_elems * 2, (double)l2);
    DecodeParams bufs[64], sets[64];  // the K/V buffers; the rotation slots over them
    int32_t *len = xmalloc(sizeof(int32_t) * B);
    for (int b = 0; b < B; b++) len[b] = T;
    int32_t *d_len, *d_sem, *d_queue;  // d_queue: the work queue's 2 counters
    uint32_t *sink = NULL;  // the gather floor's [B, HKV, 4] words (--floor 1)
    float *o_part, *lse;
    CUDA_OK(cudaMalloc((void **)&d_len, sizeof(int32_t) * B));
    CUDA_OK(cudaMalloc((void **)&o_part, sizeof(float) * q_elems * 64));
    CUDA_OK(cudaMalloc((void **)&lse, sizeof(float) * B * H * 64));
    CUDA_OK(cudaMalloc((void **)&d_sem, sizeof(int32_t) * B * HKV));
    CUDA_OK(cudaMemset(d_sem, 0, sizeof(int32_t) * B * HKV));
    CUDA_OK(cudaMalloc((void **)&d_queue, sizeof(int32_t) * 2));
    CUDA_OK(cudaMemset(d_queue, 0, sizeof(int32_t) * 2));
    CUDA_OK(cudaMemcpy(d_len, len, sizeof(int32_t) * B, cudaMemcpyHostToDevice));
    if (o->floor) CUDA_OK(cudaMalloc((void **)&sink, sizeof(uint32_t) * 4 * B * HKV));
    for (int i = 0; i < n_buf; i++) {
        uint16_t *q, *k, *v, *out;
        CUDA_OK(cudaMalloc((void **)&q, q_elems * 2));
        CUDA_OK(cudaMalloc((void **)&out, q_elems * 2));
        CUDA_OK(cudaMalloc((void **)&k, kv_elems * 2));
        CUDA_OK(cudaMalloc((void **)&v, kv_elems * 2));
        bench_fill_device(q, q_elems, dt);
        bench_fill_device(k, kv_elems, dt), bench_fill_device(v, kv_elems, dt);
        bufs[i] = decode_params_contiguous(q, k, v, out, d_len, NULL, B, H, HKV, HD, T, 0, dt);
        bufs[i].o_part = o_part, bufs[i].lse_part = lse, bufs[i].sem = d_sem;
        bufs[i].pdl = o->pdl;
        bufs[i].queue = o->queue ? d_queue : NULL;
    }
    double dense_ms = NAN;
    double fl = sdpa_ms(sdpa, B, T, dt, "FLASH"), cu = sdpa_ms(sdpa, B, T, dt, "CUDNN");
    for (int si = 0; si < o->sparsity.n; si++) {
        double sp = o->sparsity.v[si];
        int n_sel = sp > 0 ? (int)lround(nb * (1.0 - sp)) : nb;
        if (n_sel < 1) n_sel = 1;
        int S = o->splits ? o->splits
                : o->queue ? decode_queue_splits(n_sel, o->queue) : decode_pick_splits_cuda(B, HKV, n_sel);
        const int pairs = B * HKV;
        const double slot_bytes = (double)pairs * n_sel * SEER_BLOCK * HD * 2 * 2;  // K/V read a call
        const int n_rot = sp > 0 ? bench_rotation_slots(n_buf, slot_bytes, (double)l2) : n_buf;
        const size_t list_elems = sp > 0 ? (size_t)pairs * n_sel : 0;
        int32_t *idx = NULL, *d_idx = NULL;  // [n_rot, pairs, n_sel] when sparse
        if (sp > 0) {
            idx = xmalloc(sizeof(int32_t) * list_elems * n_rot);
            bench_block_lists(idx, n_rot, n_buf, pairs, nb, n_sel, &rng);
            CUDA_OK(cudaMalloc((void **)&d_idx, sizeof(int32_t) * list_elems * n_rot));
            CUDA_OK(cudaMemcpy(d_idx, idx, sizeof(int32_t) * list_elems * n_rot, cudaMemcpyHostToDevice));
        }
        for (int i = 0; i < n_rot; i++) {
            sets[i] = bufs[i % n_buf];
            sets[i].n_split = S;
            sets[i].block_idx = sp > 0 ? d_idx + list_elems * i : NULL;
            sets[i].max_sel = sp > 0 ? n_sel : 0;
            sets[i].idx_sh = sets[i].max_sel, sets[i].idx_sb = (int64_t)HKV * sets[i].max_sel;
            SeerErr err;
            if (decode_validate(&sets[i], len, sp > 0 ? idx + list_elems * i : NULL, &err))
                seer_die("%s", err.msg);
        }
        double ms = time_sets(sets, n_rot, o->iters, o->graph);
        if (B == 16 && T == 32768 && fabs(sp - 0.9) < 1e-9 && dt == SEER_BF16) {
            sparse_ref_ms[o->graph] = ms;
            sparse_ref_ms[!o->graph] = time_sets(sets, n_rot, o->iters, !o->graph);
        }
        Row r = {B, T, dt, sp, ms, 0, 0, 0, 0, 0, 0, 0, NAN, NAN, NAN, S};
        r.bytes = slot_bytes + 2.0 * q_elems * 2;  // K/V blocks, q and out
        if (sp > 0) r.bytes += 4.0 * B * HKV * n_sel;
        r.gbs = r.bytes / (ms * 1e-3) / 1e9;
        r.pct_copy = 100.0 * r.gbs * 1e9 / copy_bw;
        if (sp == 0) dense_ms = ms;
        r.x_dense = dense_ms / ms, r.x_flash = fl / ms, r.x_cudnn = cu / ms;
        double best = dense_ms;
        if (fl < best) best = fl;
        if (cu < best) best = cu;
        r.x_best = best / ms;
        if (sink && sp > 0) {
            r.floor_ms = time_floor(sets, n_rot, sink, o->iters, o->graph);
            r.pct_floor = 100.0 * ms / r.floor_ms, r.x_best_floor = best / r.floor_ms;
        }
        rows[(*n_rows)++] = r;
        printf("%-5s B %2d T %6d sparsity %.2f splits %2d: %8.4f ms %7.0f GB/s %5.1f%% copy  x%.2f dense  x%.2f flash  x%.2f cudnn",
               dtype_name(dt), B, T, sp, S, ms, r.gbs, r.pct_copy, r.x_dense, r.x_flash, r.x_cudnn);
        if (isfinite(r.floor_ms))
            printf("  floor %.4f ms  sparse %.1f%% of floor  x%.2f best/floor", r.floor_ms, r.pct_floor, r.x_best_floor);
        printf("\n");
        fflush(stdout);
        free(idx);
        cudaFree(d_idx);
    }
    for (int i = 0; i < n_buf; i++) {
        cudaFree((void *)bufs[i].q), cudaFree((void *)bufs[i].k), cudaFree((void *)bufs[i].v);
        cudaFree(bufs[i].out);
    }
    cudaFree(d_len), cudaFree(o_part), cudaFree(lse), cudaFree(d_sem), cudaFree(d_queue), cudaFree(sink);
    free(len);
}

// x with fmt and a comma; only the comma when x is NaN (no floor at that point).
static void csv_opt(FILE *f, const char *fmt, double x) {
    if (isfinite(x)) fprintf(f, fmt, x);
    fputc(',', f);
}

static void write_csv(const char *path, const Row *rows, int n, int graph, int queue) {
    FILE *f = fopen(path, "w");
    if (!f) seer_die("bench decode: cannot write %s", path);
    fprintf(f, "dtype,batch,cache,sparsity,splits,ms,bytes,gb_s,pct_copy,x_dense,x_flash,x_cudnn,"
               "x_best_dense,floor_ms,pct_floor,x_best_floor,graph,queue\n");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        fprintf(f, "%s,%d,%d,%.2f,%d,%.5f,%.0f,%.1f,%.1f,%.3f,%.3f,%.3f,%.3f,", dtype_name(r->dtype),
                r->batch, r->cache, r->sparsity, r->n_split, r->ms, r->bytes, r->gbs, r->pct_copy,
                r->x_dense, r->x_flash, r->x_cudnn, r->x_best);
        csv_opt(f, "%.5f", r->floor_ms), csv_opt(f, "%.1f", r->pct_floor), csv_opt(f, "%.3f", r->x_best_floor);
        fprintf(f, "%d,%d\n", graph, queue);
    }
    fclose(f);
}

static json_t *num(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static void write_json(const char *path, const Row *rows, int n, double copy_bw, const char *device,
                       const Opts *opt) {
    json_t *root = json_object(), *arr = json_array();
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        json_t *o = json_object();
        json_object_set_new(o, "dtype", json_string(r->dtype == SEER_F16 ? "fp16" : "bf16"));
        json_object_set_new(o, "batch", json_integer(r->batch));
        json_object_set_new(o, "cache", json_integer(r->cache));
        json_object_set_new(o, "sparsity", json_real(r->sparsity));
        json_object_set_new(o, "splits", json_integer(r->n_split));
        json_object_set_new(o, "ms", num(r->ms));
        json_object_set_new(o, "bytes", json_real(r->bytes));
        json_object_set_new(o, "gb_s", num(r->gbs));
        json_object_set_new(o, "pct_copy", num(r->pct_copy));
        json_object_set_new(o, "x_dense", num(r->x_dense));
        json_object_set_new(o, "x_flash", num(r->x_flash));
        json_object_set_new(o, "x_cudnn", num(r->x_cudnn));
        json_object_set_new(o, "x_best_dense", num(r->x_best));
        if (opt->floor) {  // null at dense points
            json_object_set_new(o, "floor_ms", num(r->floor_ms));
            json_object_set_new(o, "pct_floor", num(r->pct_floor));
            json_object_set_new(o, "x_best_floor", num(r->x_best_floor));
        }
        json_array_append_new(arr, o);
    }
    json_t *s = json_object();  // bf16, batch 16, 32k, 90%: on a stream and in a CUDA graph
    json_object_set_new(s, "batch", json_integer(16));
    json_object_set_new(s, "cache", json_integer(32768));
    json_object_set_new(s, "sparsity", json_real(0.9));
    json_object_set_new(s, "ms", num(sparse_ref_ms[0]));
    json_object_set_new(s, "graph_ms", num(sparse_ref_ms[1]));
    json_object_set_new(root, "device", json_string(device));
    json_object_set_new(root, "copy_gb_s", json_real(copy_bw / 1e9));
    json_object_set_new(root, "pdl", json_integer(opt->pdl));
    json_object_set_new(root, "graph", json_integer(opt->graph));
    json_object_set_new(root, "floor", json_integer(opt->floor));
    json_object_set_new(root, "queue", json_integer(opt->queue));
    json_object_set_new(root, "points", arr);
    json_object_set_new(root, "sparse_ref", s);
    if (json_dump_file(root, path, JSON_INDENT(1))) seer_die("bench decode: cannot write %s", path);
    json_decref(root);
}

// The --sdpa JSON (NULL without one), with a warning when it was timed in the other mode than --graph
// (sdpa_decode.py writes "graph": true/false; older files have no field: launched on a stream).
static json_t *load_sdpa(const Opts *o) {
    if (!o->sdpa) return NULL;
    json_error_t je;
    json_t *sdpa = json_load_file(o->sdpa, 0, &je);
    if (!sdpa) seer_die("bench decode: %s:%d: %s", o->sdpa, je.line, je.text);
    int g = json_is_true(json_object_get(sdpa, "graph"));
    if (g != o->graph)
        fprintf(stderr, "seer: bench decode: warning: %s was timed %s but this run uses --graph %d: the "
                "speedups over SDPA compare different timing modes\n", o->sdpa,
                g ? "in CUDA graphs (--graph)" : "on a stream (no --graph)", o->graph);
    return sdpa;
}

// The table; with --floor 1 three more columns before "graph" ("-" at dense points).
static void print_table(const Row *rows, int n, const Opts *o) {
    printf("\n%-5s %3s %7s %5s %3s %9s %8s %6s %7s %7s %7s %7s", "dtype", "B", "cache", "spars",
           "spl", "ms", "GB/s", "%copy", "xdense", "xflash", "xcudnn", "xbest");
    if (o->floor) printf(" %9s %7s %7s", "floor_ms", "%floor", "xbfloor");
    printf(" %5s\n", "graph");
    for (int i = 0; i < n; i++) {
        const Row *r = &rows[i];
        printf("%-5s %3d %7d %5.2f %3d %9.4f %8.0f %6.1f %7.2f %7.2f %7.2f %7.2f", dtype_name(r->dtype),
               r->batch, r->cache, r->sparsity, r->n_split, r->ms, r->gbs, r->pct_copy, r->x_dense,
               r->x_flash, r->x_cudnn, r->x_best);
        if (o->floor && isfinite(r->floor_ms))
            printf(" %9.4f %7.1f %7.2f", r->floor_ms, r->pct_floor, r->x_best_floor);
        else if (o->floor)
            printf(" %9s %7s %7s", "-", "-", "-");
        printf(" %5d\n", o->graph);
    }
    printf("\nbf16 batch 16, 32k, 90%%: %.4f ms launched on a stream, %.4f ms replayed in a CUDA graph"
           " (queue %d)\n", sparse_ref_ms[0], sparse_ref_ms[1], o->queue);
}

int bench_decode_main(int argc, char **argv) {
    Opts o;
    parse_opts(&o, argc, argv);
    json_t *sdpa = load_sdpa(&o);
    struct cudaDeviceProp prop;
    SeerErr err;
    if (cuda_current_device(&prop, "bench decode", &err)) seer_die("%s", err.msg);
    size_t l2 = (size_t)prop.l2CacheSize;
    double copy_bw = copy_bandwidth();
    printf("device %s, %d SMs, L2 %.0f MB, copy %.0f GB/s (read + write), decode launched %s PDL, %s%s\n",
           prop.name, prop.multiProcessorCount, l2 / 1e6, copy_bw / 1e9, o.pdl ? "with" : "without",
           o.graph ? "timed as one replayed CUDA graph per point (--graph 1)"
                   : "timed on a stream (--graph 0)",
           o.floor ? ", gather floor timed at every sparse point (--floor 1)" : "");
    int cap = o.batch.n * o.cache.n * o.sparsity.n * o.n_dtypes, n = 0;
    Row *rows = xcalloc((size_t)cap, sizeof(Row));
    for (int d = 0; d < o.n_dtypes; d++)
        for (int bi = 0; bi < o.batch.n; bi++)
            for (int ci = 0; ci < o.cache.n; ci++)
                bench_shape(rows, &n, &o, (int)o.batch.v[bi], (int)o.cache.v[ci], (SeerDType)o.dtypes[d],
                            copy_bw, l2, sdpa);
    print_table(rows, n, &o);
    if (o.csv) write_csv(o.csv, rows, n, o.graph, o.queue);
    if (o.json) write_json(o.json, rows, n, copy_bw, prop.name, &o);
    free(rows);
    json_decref(sdpa);
    return 0;
}
#endif
