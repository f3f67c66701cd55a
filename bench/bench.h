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

// An option given without its value: one error line (`seer: bench decode: --batch needs a value
// (seer bench decode --help)`) and exit status 2, as for a bad value. cmd: "bench decode" etc.
__attribute__((noreturn)) void bench_missing_value(const char *cmd, const char *flag);

// Numbers from a comma-separated list ("0,0.5,0.9"; with k_suffix also "8k,131072", k = x1024) into
// v[0..max). Returns the count (>= 1), or -1 when the list is empty, an entry is not a number, or
// there are more than max entries.
int bench_parse_list(double *v, int max, const char *s, int k_suffix);

// Rotation slots: n_buf raised until the slots' reads (slot_bytes each) exceed 4x l2_bytes; 1..64.
// The K/V buffers of a shape are bench_rotation_slots(1, K+V bytes, l2), the slots of its sparse
// points bench_rotation_slots(buffers, selected bytes, l2).
int bench_rotation_slots(int n_buf, double slot_bytes, double l2_bytes);

// idx [slots, pairs, n_sel]: n_sel distinct blocks of nb per (slot, pair), descending (n_sel <= nb).
// Each pair's blocks are shuffled once; slot s takes window s / n_buf of that order (n_sel blocks
// from (s / n_buf) * n_sel on, wrapping), so the slots that share a K/V buffer (s % n_buf) read
// disjoint blocks while their windows fit in nb. rng: the generator's state, advanced.
void bench_block_lists(int32_t *idx, int slots, int n_buf, int pairs, int nb, int n_sel,
                       uint32_t *rng);

#ifdef SEER_CUDA
#include <stddef.h>
#include <stdint.h>

#include "common/tensor.h"

// Fills n 16-bit elements of device memory dst with finite, varied values of dtype t (SEER_BF16 or
// SEER_F16) in [-1, 1): slices of one 32 MB host pattern per dtype at random offsets (for timing
// only). Dies with the CUDA error on failure.
void bench_fill_device(uint16_t *dst, size_t n, SeerDType t);
// The same for n fp8 E4M3 bytes (values in [-1, 1) rounded to E4M3).
void bench_fill_device_e4m3(uint8_t *dst, size_t n);
#endif

// `seer bench select` (bench/bench_select.c): the gate selection step against the sparse decode
// kernel it feeds.
int bench_select_main(int argc, char **argv);
