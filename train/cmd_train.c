// cmd_train.c: `seer train`: flags -> TrainConfig -> train_run (train/loop.h).
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/commands.h"
#include "eval/recall.h"
#include "train/loop.h"

static void train_usage(FILE *f) {
    fprintf(f,
            "usage: seer train --model DIR --data FILE.h5 --out RUN_DIR [options]\n"
            "       seer train --resume --out RUN_DIR [--model DIR] [--data FILE.h5]\n\n"
            "Distils the attention gates of a frozen Hugging Face model (SeerAttention-R): one frozen\n"
            "forward per chunk, and at every layer the gate's KL loss against the block-max target and\n"
            "its gradient; AdamW after every --chunks-per-step chunks. Defaults are the paper's recipe.\n\n"
            "  --model DIR            the frozen model (config.json + safetensors)\n"
            "  --data FILE.h5         token shard from `seer data`\n"
            "  --out RUN_DIR          run folder: config.json, checkpoint.seer, metrics.jsonl, loss.svg\n"
            "  --max-steps N          optimizer steps (800)\n"
            "  --chunks-per-step N    chunks accumulated per step (16)\n"
            "  --seed S               gate init and data order (0)\n"
            "  --device cpu|cuda      where to train (cpu)\n"
            "  --lr X                 peak learning rate (1e-3)\n"
            "  --min-lr X             cosine floor (1e-5)\n"
            "  --warmup N             linear warm-up steps (20)\n"
            "  --clip X               global gradient-norm limit, 0 = off (1.0)\n"
            "  --gate-loss-scale X    loss multiplier (10)\n"
            "  --loss-slice-ratio X   supervise tokens at position >= X * document length (0.5)\n"
            "  --ckpt-every N         steps between checkpoints; the last step always saves (50)\n"
            "  --resume               continue RUN_DIR/checkpoint.seer exactly (its flags are kept)\n"
            "  --eval-recall          attention recall on held-out chunks before and after training\n"
            "  --heldout N            chunks kept out of training at the end of the shard\n"
            "                         (2 with --eval-recall, else 0)\n"
            "  --budgets LIST         recall token budgets (256,512,1024,2048,4096)\n"
            "  --threads N            CPU threads (all cores); results are bit-identical for a fixed\n"
            "                         seed and thread count\n");
}

static int parse_float(const char *s, float *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v)) return -1;
    *out = (float)v;
    return 0;
}

typedef struct {
    const char *flag;
    char type;  // 'i' int >= 0, 'f' float, 'u' uint64
    size_t off;
    unsigned bit;
} TrainFlag;

static const TrainFlag train_flags[] = {
    {"--max-steps", 'i', offsetof(TrainConfig, max_steps), TRAIN_GIVEN_MAX_STEPS},
    {"--chunks-per-step", 'i', offsetof(TrainConfig, chunks_per_step), TRAIN_GIVEN_CHUNKS},
    {"--seed", 'u', offsetof(TrainConfig, seed), TRAIN_GIVEN_SEED},
    {"--lr", 'f', offsetof(TrainConfig, lr), TRAIN_GIVEN_LR},
    {"--min-lr", 'f', offsetof(TrainConfig, min_lr), TRAIN_GIVEN_MIN_LR},
    {"--warmup", 'i', offsetof(TrainConfig, warmup), TRAIN_GIVEN_WARMUP},
    {"--clip", 'f', offsetof(TrainConfig, clip), TRAIN_GIVEN_CLIP},
    {"--gate-loss-scale", 'f', offsetof(TrainConfig, gate_loss_scale), TRAIN_GIVEN_SCALE},
    {"--loss-slice-ratio", 'f', offsetof(TrainConfig, loss_slice_ratio), TRAIN_GIVEN_SLICE},
    {"--heldout", 'i', offsetof(TrainConfig, heldout), TRAIN_GIVEN_HELDOUT},
    {"--ckpt-every", 'i', offsetof(TrainConfig, ckpt_every), 0},
    {"--threads", 'i', offsetof(TrainConfig, threads), 0},
};

// Sets one numeric flag; returns 1 if `a` is one of them, -1 on a bad value, 0 otherwise.
static int set_numeric(TrainConfig *c, const char *a, const char *v, SeerErr *err) {
    for (size_t i = 0; i < sizeof train_flags / sizeof train_flags[0]; i++) {
        const TrainFlag *f = &train_flags[i];
        if (strcmp(a, f->flag)) continue;
        char *p = (char *)c + f->off;
        long n;
        int bad = !v;
        if (!bad && f->type == 'i') bad = parse_long(v, 0, INT_MAX, &n), *(int *)p = bad ? 0 : (int)n;
        else if (!bad && f->type == 'f') bad = parse_float(v, (float *)p);
        else if (!bad) {
            char *end;
            errno = 0;
            unsigned long long u = strtoull(v, &end, 10);
            bad = errno || end == v || *end || v[0] == '-';
            *(uint64_t *)p = u;
        }
        if (bad) return seer_fail(err, "%s needs a %s value, got '%s'", a,
                                  f->type == 'f' ? "number" : "non-negative integer", v ? v : "");
        c->given |= f->bit;
        return 1;
    }
    return 0;
}

// Fills c from argv; returns 0, 1 for --help, or -1 with err.
static int train_parse_args(int argc, char **argv, TrainConfig *c, SeerErr *err) {
    train_config_default(c);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (!strcmp(a, "--resume")) { c->resume = 1; continue; }
        if (!strcmp(a, "--eval-recall")) { c->eval_recall = 1; continue; }
        int r = set_numeric(c, a, v, err);
        if (r < 0) return -1;
        if (r == 0 && !v) return seer_fail(err, "%s: unknown flag or missing value (see --help)", a);
        if (r == 0 && !strcmp(a, "--model")) c->model_dir = v;
        else if (r == 0 && !strcmp(a, "--data")) c->data_path = v;
        else if (r == 0 && !strcmp(a, "--out")) c->out_dir = v;
        else if (r == 0 && !strcmp(a, "--budgets")) {
            if (recall_parse_budgets(v, c->budgets, &c->n_budgets, err)) return -1;
        } else if (r == 0 && !strcmp(a, "--device")) {
            if (strcmp(v, "cpu") && strcmp(v, "cuda"))
                return seer_fail(err, "--device must be cpu or cuda, got '%s'", v);
            c->device = strcmp(v, "cpu") ? TRAIN_DEVICE_CUDA : TRAIN_DEVICE_CPU;
        } else if (r == 0) {
            return seer_fail(err, "%s: unknown flag (see seer train --help)", a);
        }
        i++;
    }
    if (!c->out_dir) return seer_fail(err, "--out RUN_DIR is required (see seer train --help)");
    if (!c->resume && (!c->model_dir || !c->data_path))
        return seer_fail(err, "--model and --data are required (see seer train --help)");
    return 0;
}

int cmd_train(int argc, char **argv) {
    TrainConfig c;
    SeerErr err;
    int r = train_parse_args(argc, argv, &c, &err);
    if (r == 1) {
        train_usage(stdout);
        return 0;
    }
    if (r < 0 || train_run(&c, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
