// train_state.h: the training checkpoint: one file that holds everything a run needs to
// continue exactly (gate master weights, AdamW moments, step, RNG state, data cursor, the
// run's configuration), written atomically and verified by a CRC32 trailer on load.
//
// File layout (little-endian):
//   "SEERCKPT"  u32 version (1)  u32 header_len
//   header      JSON text: identity (model signature, gate shape, n_params), progress (step,
//               tokens, elapsed_s, adam_t), the RNG seed (hex), cursor_len, "config" (the run's)
//   cursor      cursor_len opaque bytes (the data reader's saved position)
//   params, m, v  3 x n_params fp32
//   u32 crc32 of every byte above, then "CRC1"
#pragma once
#include <stddef.h>
#include <stdint.h>

#include "common/common.h"

#define TRAIN_STATE_FILE "checkpoint.seer"  // its name inside a run folder

typedef struct {
    // Identity: a checkpoint is refused when these differ from the run resuming it.
    char model_sig[256];  // fingerprint of the frozen model (shape + weight sample)
    int L, HKV, G, HD, DG;
    int64_t n_params;
    // Progress.
    int64_t step;         // optimizer steps done
    int64_t tokens;       // tokens consumed so far
    int64_t adam_t;       // AdamW step counter
    double elapsed_s;     // wall time of the run so far
    uint64_t seed;        // the run's RNG state: every random draw of a run is a pure function
                          // of (seed, counters), and the counters are the step and the cursor
    // Data and configuration.
    uint8_t *cursor;      // [cursor_len] data reader position, opaque here
    size_t cursor_len;
    char *config_json;    // the run's configuration (a JSON object as text), owned
    float *params, *m, *v;  // [n_params] each: gate master weights and AdamW moments, owned
} TrainState;

// Writes s to path atomically (path.tmp, fsync, rename, fsync of the folder): a reader sees
// the old file or the new one, never a torn one. Returns -1 with err naming the failing call.
// Fault injection for tests: with SEER_FAULT_CKPT_PAUSE_US=N in the environment the writer
// sleeps N microseconds half-way through the file, so a SIGKILL can land inside the write.
int train_state_save(const char *path, const TrainState *s, SeerErr *err);

// Reads and verifies a checkpoint (magic, version, size, CRC32, header fields) into *s, which
// owns its arrays afterwards (train_state_free). A truncated or altered file fails with the
// path and what did not match; *s is then left empty.
int train_state_load(const char *path, TrainState *s, SeerErr *err);

// Compares the identity of a loaded checkpoint with the run's expectation: model signature,
// gate shape and parameter count. Fails with a line that says which field differs and how.
int train_state_check(const TrainState *got, const TrainState *want, const char *path,
                      SeerErr *err);

void train_state_free(TrainState *s);

// Writes n bytes to path atomically (temp file beside it, fsync, rename, fsync dir).
int train_state_write_atomic(const char *path, const void *data, size_t n, SeerErr *err);
