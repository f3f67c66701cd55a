// cmd_recall.c: `seer recall`: attention recall of trained gates vs Quest vs the oracle on
// held-out chunks of a token shard (eval/recall.h).
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/gate_export.h"
#include "common/commands.h"
#include "eval/recall.h"

static void recall_usage(FILE *f) {
    fprintf(f,
            "usage: seer recall --model DIR --data FILE.h5 --gates RUN_DIR|GATES_DIR [options]\n\n"
            "On the last --chunks chunks of the shard (the ones `seer train --heldout N` kept out),\n"
            "prints for each token budget the share of the true block-max attention (GQA max) kept\n"
            "by the gate's top budget/64 blocks, by Quest's pages and by the oracle (the ceiling),\n"
            "per layer and overall.\n\n"
            "  --model DIR        the frozen model the gates belong to\n"
            "  --data FILE.h5     token shard (`seer data`)\n"
            "  --gates DIR        a run folder (checkpoint.seer) or a gate folder (.safetensors/.pth)\n"
            "  --budgets LIST     token budgets (256,512,1024,2048,4096)\n"
            "  --chunks N         how many chunks from the end of the shard (2)\n"
            "  --out DIR          also write DIR/recall_eval.json and .svg\n"
            "  --threads N        CPU threads (all cores)\n");
}

typedef struct {
    const char *model, *data, *gates, *out;
    int budgets[RECALL_MAX_BUDGETS], n_budgets;
    long chunks, threads;
} RecallArgs;

static int parse_count(const char *flag, const char *v, long *out, SeerErr *err) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < 1 || x > 1000000)
        return seer_fail(err, "%s needs a positive integer, got '%s'", flag, v);
    *out = x;
    return 0;
}

// Returns 0, 1 for --help, -1 with err.
static int recall_parse_args(int argc, char **argv, RecallArgs *a, SeerErr *err) {
    *a = (RecallArgs){.budgets = {256, 512, 1024, 2048, 4096}, .n_budgets = 5, .chunks = 2};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) return 1;
        if (!v) return seer_fail(err, "%s: unknown flag or missing value (see seer recall --help)", f);
        if (!strcmp(f, "--model")) a->model = v;
        else if (!strcmp(f, "--data")) a->data = v;
        else if (!strcmp(f, "--gates")) a->gates = v;
        else if (!strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "--budgets")) {
            if (recall_parse_budgets(v, a->budgets, &a->n_budgets, err)) return -1;
        } else if (!strcmp(f, "--chunks")) {
            if (parse_count(f, v, &a->chunks, err)) return -1;
        } else if (!strcmp(f, "--threads")) {
            if (parse_count(f, v, &a->threads, err)) return -1;
        } else {
            return seer_fail(err, "%s: unknown flag (see seer recall --help)", f);
        }
        i++;
    }
    if (!a->model || !a->data || !a->gates)
        return seer_fail(err, "--model, --data and --gates are required (see seer recall --help)");
    return 0;
}

static int recall_run(const RecallArgs *a, SeerErr *err) {
    float *params = NULL;
    int L = 0;
    GateShape s;
    Model m;
    if (gate_load_dir(a->gates, &params, &L, &s, err)) return -1;
    if (model_load(&m, a->model, err)) {
        free(params);
        return -1;
    }
    int rc = 0;
    if (L != m.cfg.L)
        rc = seer_fail(err, "%s has gates for %d layers, the model %s has %d", a->gates, L, a->model,
                       m.cfg.L);
    ShardReader *sr = rc ? NULL : shard_open(a->data, NULL, err);
    if (!rc && !sr) rc = -1;
    int64_t nc = sr ? shard_n_chunks(sr) : 0, k = a->chunks < nc ? a->chunks : nc;
    int64_t *ids = xmalloc((size_t)(k > 0 ? k : 1) * sizeof(int64_t));
    for (int64_t i = 0; i < k; i++) ids[i] = nc - k + i;
    RecallReport rep;
    if (!rc) rc = recall_eval(&rep, &m, params, s, sr, ids, (int)k, a->budgets, a->n_budgets, err);
    if (!rc) {
        recall_print(&rep, stdout, "recall");
        if (a->out) rc = recall_write(&rep, a->out, "eval", err);
        recall_free(&rep);
    }
    free(ids);
    shard_close(sr);
    model_free(&m);
    free(params);
    return rc;
}

int cmd_recall(int argc, char **argv) {
    RecallArgs a;
    SeerErr err;
    int r = recall_parse_args(argc, argv, &a, &err);
    if (r == 1) {
        recall_usage(stdout);
        return 0;
    }
    if (r == 0 && a.threads > 0) omp_set_num_threads((int)a.threads);
    if (r < 0 || recall_run(&a, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
