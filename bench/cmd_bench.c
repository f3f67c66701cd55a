// cmd_bench.c: `seer bench <what>`: timings against measured ceilings and third-party baselines.
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

#include <stdlib.h>
#include "common/commands.h"
#include "common/common.h"

int bench_forward_main(int argc, char **argv);  // bench/bench_forward.c
int bench_gate_main(int argc, char **argv);     // bench/bench_gate.c
int bench_load_main(int argc, char **argv);     // bench/bench_load.c
int bench_decode_main(int argc, char **argv);   // bench/bench_decode.c
int bench_tokenize_main(int argc, char **argv); // bench/bench_tokenize.c
int bench_train_main(int argc, char **argv);    // bench/bench_train.c

// One row per benchmark; each lives in bench/bench_<name>.c.
static const BenchCommand benches[] = {
    {"forward", bench_forward_main, "prefill attention + gate target kernel (and forward) vs torch SDPA"},
    {"load", bench_load_main, "checkpoint load (mmap + touch) vs read() of the same bytes, cold and warm"},
    {"gate", bench_gate_main, "one layer's gate step (forward, KL, backward) and scores on the GPU"},
    {"decode", bench_decode_main, "dense and block-sparse decode kernels vs copy bandwidth and torch SDPA"},
    {"select", bench_select_main, "gate selection vs the 90%-sparse decode kernel it feeds, alone and back to back (PDL)"},
    {"tokenize", bench_tokenize_main, "single-thread tokenizer MB/s (compare: bench/tokenize_hf.py)"},
    {"train", bench_train_main, "the GPU training step (forward + target + gate + AdamW): tokens/s, time shares, memory"},
    {NULL, NULL, NULL},
};

long bench_flag_int(const char *flag, const char *v, long lo, long hi) {
    long x;
    if (parse_long(v, lo, hi, &x)) {
        fprintf(stderr, "seer: bench: %s needs an integer in [%ld, %ld], got '%s'\n", flag, lo, hi, v);
        exit(2);
    }
    return x;
}

void bench_missing_value(const char *cmd, const char *flag) {
    fprintf(stderr, "seer: %s: %s needs a value (seer %s --help)\n", cmd, flag, cmd);
    exit(2);
}

int bench_parse_list(double *v, int max, const char *s, int k_suffix) {
    char *dup = xstrdup(s), *save = NULL;
    int n = 0;
    for (char *t = strtok_r(dup, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double x = strtod(t, &end);
        if (k_suffix && (*end == 'k' || *end == 'K')) x *= 1024, end++;
        if (end == t || *end || n == max) {
            n = 0;
            break;
        }
        v[n++] = x;
    }
    free(dup);
    return n ? n : -1;
}

static void bench_usage(FILE *f) {
    fprintf(f, "usage: seer bench <what> [options]   (seer bench <what> --help)\n\nbenchmarks:\n");
    for (const BenchCommand *b = benches; b->name; b++) fprintf(f, "  %-10s %s\n", b->name, b->summary);
}

int cmd_bench(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        bench_usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (const BenchCommand *b = benches; b->name; b++)
        if (!strcmp(argv[1], b->name)) return b->run(argc - 1, argv + 1);
    fprintf(stderr, "seer: unknown benchmark '%s'\n", argv[1]);
    bench_usage(stderr);
    return 2;
}
