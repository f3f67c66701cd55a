// schedule.h: the learning-rate schedule of SPEC.md section 3: linear warm-up, then a half
// cosine from the peak down to a floor at the last step.
#pragma once

typedef struct {
    float lr;        // peak learning rate (1e-3)
    float min_lr;    // floor reached at the last step (1e-5)
    int warmup;      // warm-up steps (20); 0 starts at the peak
    int max_steps;   // total optimizer steps of the run (800)
} LrSchedule;

// Learning rate of optimizer step `step` (0-based):
//   step < warmup:  lr * (step + 1) / warmup
//   otherwise:      min_lr + (lr - min_lr) * (1 + cos(pi * s / n)) / 2,
//                   s = step - warmup, n = max(1, max_steps - 1 - warmup)
// so the first post-warm-up step uses lr and step max_steps - 1 uses min_lr. Steps past the end
// stay at min_lr; warmup >= max_steps leaves the schedule as warm-up only.
float schedule_lr(const LrSchedule *s, int step);
