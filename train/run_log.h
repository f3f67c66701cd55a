// run_log.h: the human-readable side of a training run folder:
//   metrics.jsonl  one JSON object per optimizer step (loss, per-layer loss, lr, grad norm,
//                  tokens, tokens/s, elapsed, peak memory), flushed at every step;
//   loss.svg       total and per-layer loss against step, rewritten at every checkpoint.
// Also the small SVG line-chart writer that the recall report reuses.
#pragma once
#include <stdint.h>

#include "common/common.h"

typedef struct {
    int step;              // optimizer steps done (1 after the first step)
    double loss;           // sum over layers x gate_loss_scale, mean over the step's chunks
    const double *layer_loss;  // [L] per-layer loss (already x scale)
    double lr, grad_norm;  // lr used by this step; global grad norm before clipping
    int64_t tokens;        // tokens seen since the start of the run (all steps)
    double tokens_per_s;   // throughput of this step
    double elapsed_s;      // wall time since the start of the run (resumes included)
    double peak_mem_mb;    // peak resident memory of the process (and of the GPU, when used)
} StepMetrics;

typedef struct {
    char *dir;
    int L;
    int n, cap;           // steps held in memory (for the plot)
    int *steps;           // [cap]
    double *loss;         // [cap]
    double *layer_loss;   // [cap, L]
    FILE *f;              // metrics.jsonl, opened for append
} RunLog;

// Opens RUN_DIR/metrics.jsonl. keep_through < 0 starts a fresh file. keep_through >= 0 (resume
// from a checkpoint taken after that many steps) keeps only the lines with step <= keep_through,
// in order, dropping steps written after the checkpoint; the file is rewritten atomically.
// A line that is not JSON with "step" and "loss" fails with the file and line number, except a
// torn last line (the process was killed mid-write), which is dropped.
int run_log_open(RunLog *log, const char *dir, int L, int keep_through, SeerErr *err);

// Appends one step (a JSON line, flushed) and keeps it for the plot.
int run_log_append(RunLog *log, const StepMetrics *m, SeerErr *err);

// Rewrites RUN_DIR/loss.svg (atomically) from every step held. No steps: an empty chart.
int run_log_write_svg(const RunLog *log, SeerErr *err);

void run_log_close(RunLog *log);

// One polyline of a chart; x and y are [n].
typedef struct {
    const char *name;
    const double *x, *y;
    int n;
    int bold;   // drawn thicker, in black, on top of the others
} ChartSeries;

// Writes a self-contained SVG line chart (axes, ticks, labels, legend) to path, atomically.
// log_y draws the y axis in decades (non-positive values are clamped to the smallest positive
// one); series with n == 0 only appear in the legend. Returns -1 on an I/O error.
int run_log_write_chart(const char *path, const char *title, const char *xlabel,
                        const char *ylabel, const ChartSeries *s, int ns, int log_y, SeerErr *err);
