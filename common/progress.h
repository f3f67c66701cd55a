// progress.h: one self-rewriting progress line on stderr with rate and ETA.
//
//   Progress p; progress_start(&p, "tokenize", total, "docs");
//   for (...) progress_update(&p, done);      // redraws at most ~4 times a second
//   progress_finish(&p);                       // final line + newline
// When stderr is not a terminal, a plain line is printed every 10 seconds instead.
#pragma once
#include <stdint.h>

typedef struct {
    const char *label;
    const char *unit;
    int64_t total;  // 0 when unknown (no ETA)
    int64_t done;
    double t_start, t_last;
    int tty;
} Progress;

void progress_start(Progress *p, const char *label, int64_t total, const char *unit);
void progress_update(Progress *p, int64_t done);
void progress_finish(Progress *p);
