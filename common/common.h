// common.h: errors, allocation and small helpers shared by every folder.
//
// Error convention: loaders and parsers return 0 on success or -1 on failure and fill a
// SeerErr with one line that names the file (and offset or line) and what was wrong.
// Command entry points turn that line into `seer: <msg>` on stderr and exit 1.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SEER_BLOCK 64  // B: gate / sparse-attention block size in tokens

typedef struct {
    char msg[1024];
} SeerErr;

// Formats the error message; always returns -1 so callers can `return seer_fail(err, ...)`.
int seer_fail(SeerErr *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

// Prints `seer: <msg>` to stderr and exits with status 1.
void seer_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

// Allocation that never returns NULL (dies with the requested size instead).
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);

// "dir/name", malloc'd.
char *path_join(const char *dir, const char *name);

// Parses a whole decimal integer in [lo, hi]; returns 0, or -1 (not a number, trailing text, out of range).
int parse_long(const char *s, long lo, long hi, long *out);

// Monotonic wall clock in seconds.
double seer_now(void);

static inline int ceil_div(int a, int b) { return (a + b - 1) / b; }
