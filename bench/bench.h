// bench.h: the `seer bench <what>` subcommands (each gets argv[0] = <what>).
#pragma once

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} BenchCommand;

#include "common/common.h"

// Document lengths of a chunk of T tokens from a comma-separated list ("2048,16384,4096"): the
// list repeated until T tokens are used, the last length cut to fit. lens: [T] (room for T
// documents). Returns the count (1..T), or -1 with err naming the flag when the list is empty, has
// an empty entry or an entry that is not a whole number >= 1, or T < 1. Entries longer than T are
// cut like the last one.
int bench_make_docs(int *lens, const char *list, int T, SeerErr *err);

// The value of an integer flag: a whole decimal number in [lo, hi], or one error line
// (`seer: bench: --tokens needs an integer in [1, 16777216], got 'x'`) and exit status 2.
long bench_flag_int(const char *flag, const char *v, long lo, long hi);

// `seer bench select` (bench/bench_select.c): the gate selection step against the sparse decode
// kernel it feeds.
int bench_select_main(int argc, char **argv);
