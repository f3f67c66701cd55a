// loop.h: the gate distillation loop (`seer train`): frozen forward one layer at a time, each
// layer's gate loss and gradient at its hook, gradient accumulation over the chunks of a step,
// global-norm clipping, AdamW, the warm-up + cosine schedule, metrics, checkpoints and resume.
//
// A run folder holds: config.json (the run's flags), checkpoint.seer (train/train_state.h),
// metrics.jsonl and loss.svg (train/run_log.h), and with eval_recall recall_before.* and
// recall_after.* (eval/recall.h).
#pragma once
#include <stdint.h>

#include "common/common.h"

typedef enum { TRAIN_DEVICE_CPU = 0, TRAIN_DEVICE_CUDA = 1 } TrainDevice;

// Bits of TrainConfig.given: flags set on the command line. A resumed run keeps the flags of
// its checkpoint; one given again with another value is refused rather than silently ignored.
enum {
    TRAIN_GIVEN_MAX_STEPS = 1 << 0, TRAIN_GIVEN_CHUNKS = 1 << 1, TRAIN_GIVEN_SEED = 1 << 2,
    TRAIN_GIVEN_LR = 1 << 3, TRAIN_GIVEN_MIN_LR = 1 << 4, TRAIN_GIVEN_WARMUP = 1 << 5,
    TRAIN_GIVEN_CLIP = 1 << 6, TRAIN_GIVEN_SCALE = 1 << 7, TRAIN_GIVEN_SLICE = 1 << 8,
    TRAIN_GIVEN_HELDOUT = 1 << 9,
};

#define TRAIN_MAX_BUDGETS 8

typedef struct {
    const char *model_dir;   // Hugging Face folder of the frozen model
    const char *data_path;   // HDF5 token shard (`seer data`)
    const char *out_dir;     // run folder (created)
    int max_steps;           // optimizer steps (800)
    int chunks_per_step;     // chunks accumulated per step (16)
    uint64_t seed;           // gate init and data order (0)
    TrainDevice device;      // cpu (default) or cuda
    float lr, min_lr;        // 1e-3 -> 1e-5
    int warmup;              // 20
    float clip;              // global grad-norm limit (1.0; 0 disables)
    float gate_loss_scale;   // 10
    float loss_slice_ratio;  // 0.5
    int ckpt_every;          // steps between checkpoints (50); the last step always saves
    int resume;              // continue from out_dir/checkpoint.seer
    int eval_recall;         // recall on held-out chunks before and after training
    int heldout;             // chunks reserved at the end of the shard (-1: 2 with eval_recall)
    int threads;             // OpenMP threads (0: the runtime's default)
    int budgets[TRAIN_MAX_BUDGETS], n_budgets;  // recall token budgets
    int quiet;               // no progress line (tests)
    unsigned given;          // TRAIN_GIVEN_* bits
} TrainConfig;

// The paper's recipe (SPEC.md section 3) and the defaults above; paths NULL.
void train_config_default(TrainConfig *c);

// Runs (or resumes) a training run. Prints progress to stderr and a summary to stdout.
// Returns 0, or -1 with err: a bad flag value, a model / shard / checkpoint that cannot be
// read, a checkpoint for another model or gate shape, an out_dir that already holds a
// checkpoint without resume, --device cuda without a CUDA path, a non-finite gradient.
// The run folder always keeps its last valid checkpoint.
int train_run(const TrainConfig *c, SeerErr *err);
