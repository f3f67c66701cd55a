// sample_log.h: the per-sample log of `seer eval --out FILE.json`, which makes an evaluation
// resumable. FILE.samples.jsonl (FILE.json's name with .json replaced; otherwise appended) starts
// with one line holding the settings that decide every sample (model, data, method, gates, budget,
// sampling, seed, ...; not --limit or --threads), then gets one JSON line per finished sample,
// flushed to disk as soon as the sample is graded. A rerun with the same --out and the same settings
// takes the samples already logged instead of generating them again: an interrupted run goes on
// where it stopped, and a larger --limit only generates the new problems. Settings are compared
// as given (paths, not file contents).
#pragma once
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>

#include "common/common.h"

// One graded generation.
typedef struct {
    char *output;      // the decoded generation (stop token excluded)
    char *pred;        // the last \boxed{} content or NULL
    int correct, n_gen;
    double line_acc;   // -1 when the problem is not a testbed problem
} GradedSample;

// Prefill and decode time and token counts (of one sample or summed over many).
typedef struct {
    double t_prefill, t_decode;
    int64_t n_prefill, n_decode;
} EvalTiming;

typedef struct {
    int index;             // problem * samples_per_problem + sample
    char *id;              // the problem's id; a logged sample is reused only if it matches
    GradedSample g;
    double *sel, *valid;   // [L] selected and valid blocks over the sample's decode steps
    EvalTiming tm;
} LoggedSample;

typedef struct {
    FILE *f;
    char *path;
    int L;
    LoggedSample *done;  // [n_done] the samples read back, by index
    int n_done;
} SampleLog;

// The log's path for --out `out` (caller frees).
char *sample_log_path(const char *out);

// Opens the log of `out` for L layers: creates it with `settings` as its first line, or reads an
// existing one, which must start with equal settings (else -1 with err naming the file and the
// first setting that differs). Its complete sample lines become lg->done; a torn last line (a
// crash while writing) is cut off with a warning. New samples are appended after them.
int sample_log_open(SampleLog *lg, const char *out, const json_t *settings, int L, SeerErr *err);

// The logged sample with this index and problem id, or NULL.
const LoggedSample *sample_log_find(const SampleLog *lg, int index, const char *id);

// Appends one sample as a line and flushes it to disk (fsync). Returns 0, or -1 with err.
int sample_log_append(SampleLog *lg, const LoggedSample *s, SeerErr *err);

void sample_log_close(SampleLog *lg);
