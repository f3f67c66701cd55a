// cmd_demo.c: `seer demo`: the whole pipeline on the testbed model in a few minutes on a CPU:
// traces -> token shard -> gate distillation with recall before and after -> gate folder.
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/gate_export.h"
#include "common/commands.h"
#include "train/loop.h"
#include "train/train_state.h"
#ifdef SEER_CUDA
#include <cuda_runtime_api.h>
#endif

static void demo_usage(FILE *f) {
    fprintf(f,
            "usage: seer demo [--out DIR] [--testbed DIR] [--steps N] [--threads N] [--cpu]\n\n"
            "Runs the whole pipeline on the small testbed model (a 6-layer Qwen3 that solves a\n"
            "long-range pointer-chasing task): renders and packs its reasoning traces into a token\n"
            "shard, distils its attention gates on the CPU, prints the attention recall of the gates\n"
            "before and after training next to Quest and the oracle, and exports the gates.\n"
            "About 3-5 minutes on 2 cores; seconds on a GPU, used when this seer has CUDA and a\n"
            "GPU is present (recall runs on the CPU either way). Run it again to continue an\n"
            "interrupted demo.\n\n"
            "  --out DIR       where everything goes (demo_out)\n"
            "  --testbed DIR   the testbed: DIR/model and DIR/train_traces.jsonl (data/testbed)\n"
            "  --steps N       optimizer steps of one 4096-token chunk each (24)\n"
            "  --threads N     CPU threads (all cores)\n"
            "  --cpu           train on the CPU even when a GPU is present\n");
}

typedef struct {
    const char *out, *testbed;
    int steps, threads, cpu;
} DemoArgs;

// Returns 0, 1 for --help, -1 with err.
static int demo_parse_args(int argc, char **argv, DemoArgs *a, SeerErr *err) {
    *a = (DemoArgs){.out = "demo_out", .testbed = "data/testbed", .steps = 24};
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) return 1;
        if (!strcmp(f, "--cpu")) {
            a->cpu = 1;
            continue;
        }
        if (!v) return seer_fail(err, "%s: unknown flag or missing value (see seer demo --help)", f);
        char *end;
        long n = strtol(v, &end, 10);
        int is_num = !strcmp(f, "--steps") || !strcmp(f, "--threads");
        if (is_num && (*end || end == v || n < 1 || n > 100000))
            return seer_fail(err, "%s needs a positive integer, got '%s'", f, v);
        if (!strcmp(f, "--out")) a->out = v;
        else if (!strcmp(f, "--testbed")) a->testbed = v;
        else if (!strcmp(f, "--steps")) a->steps = (int)n;
        else if (!strcmp(f, "--threads")) a->threads = (int)n;
        else return seer_fail(err, "%s: unknown flag (see seer demo --help)", f);
        i++;
    }
    return 0;
}

// Step 1: the token shard, unless an earlier demo made it.
static int demo_data(const char *model, const char *traces, const char *shard) {
    if (access(shard, F_OK) == 0) {
        printf("[1/3] token shard %s (already there)\n", shard);
        return 0;
    }
    printf("[1/3] traces -> token shard: seer data --tokenizer %s --input %s --out %s --max-len 4096\n",
           model, traces, shard);
    fflush(stdout);
    char *argv[] = {"data", "--tokenizer", (char *)model, "--input", (char *)traces, "--out",
                    (char *)shard, "--max-len", "4096", NULL};
    return cmd_data(9, argv) ? -1 : 0;
}

// Step 2: distillation with recall before and after (resumes an interrupted demo).
static int demo_train(const DemoArgs *a, const char *model, const char *shard, const char *run,
                      SeerErr *err) {
    TrainConfig c;
    train_config_default(&c);
    c.model_dir = model, c.data_path = shard, c.out_dir = run;
    c.max_steps = a->steps;
    c.chunks_per_step = 1;  // a few minutes of CPU: many small steps, a short warm-up, a higher lr
    c.lr = 2e-2f, c.min_lr = 1e-3f, c.warmup = 2;
    c.ckpt_every = 5;
    c.eval_recall = 1, c.heldout = 2;
    c.budgets[0] = 256, c.budgets[1] = 512, c.budgets[2] = 1024, c.n_budgets = 3;
    c.threads = a->threads;
#ifdef SEER_CUDA
    int n_gpus = 0;
    if (!a->cpu && cudaGetDeviceCount(&n_gpus) == cudaSuccess && n_gpus > 0) c.device = TRAIN_DEVICE_CUDA;
#endif
    char *ck = path_join(run, TRAIN_STATE_FILE);
    c.resume = access(ck, F_OK) == 0;
    free(ck);
    printf("[2/3] distil the gates: seer train --model %s --data %s --out %s --max-steps %d "
           "--chunks-per-step 1 --lr 2e-2 --min-lr 1e-3 --warmup 2 --eval-recall --heldout 2 "
           "--budgets 256,512,1024 --device %s%s\n", model, shard, run, a->steps,
           c.device == TRAIN_DEVICE_CUDA ? "cuda" : "cpu", c.resume ? " --resume" : "");
    fflush(stdout);
    return train_run(&c, err);
}

static int demo_run(const DemoArgs *a, SeerErr *err) {
    char *model = path_join(a->testbed, "model"), *traces = path_join(a->testbed, "train_traces.jsonl");
    char *shard = path_join(a->out, "tokens.h5"), *run = path_join(a->out, "run");
    char *gates = path_join(a->out, "gates");
    int rc = 0;
    if (access(model, F_OK) != 0 || access(traces, F_OK) != 0)
        rc = seer_fail(err, "%s: no testbed here (model/ and train_traces.jsonl); run from the "
                       "repository root or pass --testbed DIR", a->testbed);
    if (!rc && mkdir(a->out, 0755) != 0 && errno != EEXIST)
        rc = seer_fail(err, "%s: cannot create: %s", a->out, strerror(errno));
    if (!rc && demo_data(model, traces, shard)) rc = seer_fail(err, "the data step failed (above)");
    if (!rc) rc = demo_train(a, model, shard, run, err);
    if (!rc) {
        printf("[3/3] export: seer export --run %s --out %s\n", run, gates);
        fflush(stdout);
        char *argv[] = {"export", "--run", run, "--out", gates, NULL};
        if (cmd_export(5, argv)) rc = seer_fail(err, "the export step failed (above)");
    }
    if (!rc)
        printf("\ndone. Look at %s/loss.svg, %s/recall_before.svg and %s/recall_after.svg;\n"
               "the gates are in %s (model.safetensors and attn_gate_weights.pth).\n", run, run,
               run, gates);
    free(model), free(traces), free(shard), free(run), free(gates);
    return rc;
}

int cmd_demo(int argc, char **argv) {
    DemoArgs a;
    SeerErr err;
    int r = demo_parse_args(argc, argv, &a, &err);
    if (r == 1) {
        demo_usage(stdout);
        return 0;
    }
    if (r < 0 || demo_run(&a, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
