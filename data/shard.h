// shard.h: HDF5 token shards: the writer used by `seer data` and the trainer's reader.
//
// Layout (docs/FORMATS.md, "Token shards (HDF5)"): /ids int32 [N tokens]; /chunk_offsets int64
// [C+1] into /ids; /doc_lens int32 [D]; /doc_offsets int64 [C+1] into /doc_lens; attributes on the
// root group (format, format_version, tokenizer_hash, max_len, seed, counts, sources).
#pragma once
#include <stdint.h>

#include "common/common.h"

#define SHARD_FORMAT "seer-tokens"
#define SHARD_FORMAT_VERSION 1

// Why an input row was not kept (counted per reason, stored in the shard's attributes).
typedef enum {
    SHARD_SKIP_JSON = 0,  // the line is not a JSON object
    SHARD_SKIP_FIELD,     // no usable "messages" / "problem"+"solution" / "text", or a bad role
    SHARD_SKIP_UTF8,      // invalid UTF-8 bytes in the line
    SHARD_SKIP_EMPTY,     // nothing to train on (empty texts, or zero tokens)
    SHARD_SKIP_LONG,      // more tokens than max-len with --long skip
    SHARD_SKIP_N
} ShardSkip;

// Short name of a reason (attribute suffix and summary word), e.g. "malformed_json".
const char *shard_skip_name(ShardSkip why);

// Everything the shard records about how it was made.
typedef struct {
    const char *tokenizer_hash;
    int max_len;
    uint64_t seed;
    const char *long_policy;          // "skip" or "crop"
    int n_sources;
    const char *const *source_files;  // [n_sources] input paths as given
    const int64_t *source_rows;       // [n_sources] non-blank lines read
    const int64_t *source_docs;       // [n_sources] documents kept
    int64_t skipped[SHARD_SKIP_N];
    int64_t cropped;                  // documents cut to max_len (--long crop)
} ShardMeta;

typedef struct ShardWriter ShardWriter;

// Creates `<path>.tmp.<pid>` beside path (so an unwritable folder fails here, before any work).
// Returns NULL with err set (naming the file and the system's reason) on failure.
ShardWriter *shard_writer_create(const char *path, SeerErr *err);

// Appends one chunk: n ids in [1, max_len] made of n_docs documents whose lengths sum to n.
int shard_writer_add_chunk(ShardWriter *w, const int32_t *ids, int n, const int32_t *doc_lens,
                           int n_docs, SeerErr *err);

// Writes the offsets and attributes, closes and fsyncs the temp file, renames it to the final path
// and fsyncs the folder. Frees w in every case; on failure the temp file is removed.
int shard_writer_finish(ShardWriter *w, const ShardMeta *meta, SeerErr *err);

// Closes and removes the temp file, frees w (NULL is fine). The final path is never touched.
void shard_writer_abort(ShardWriter *w);

// ------------------------------------------------------------------------------ reader

// Position in the training stream: epoch e visits the training chunks in the order of a
// permutation seeded by (seed, e). Plain data: a checkpoint saves it and restores it exactly.
typedef struct {
    uint64_t seed;
    int64_t epoch;
    int64_t pos;  // next position in this epoch's order, in [0, n_train)
} ShardCursor;

// One chunk read from a shard; ids and doc_lens point into the reader and stay valid until the
// next read on the same reader.
typedef struct {
    int64_t index;            // chunk index in the file
    int n_tokens;
    int n_docs;
    const int32_t *ids;       // [n_tokens]
    const int32_t *doc_lens;  // [n_docs], sum = n_tokens
} ShardChunk;

// The serial HDF5 library is not thread-safe: use readers and writers from one thread at a time.
typedef struct ShardReader ShardReader;

// Opens and validates a shard. expect_hash: the tokenizer hash the caller requires, or NULL to
// accept any. Refuses (NULL, err names the file and both values) another format or format
// version, a different tokenizer hash, or inconsistent offsets/lengths.
ShardReader *shard_open(const char *path, const char *expect_hash, SeerErr *err);
void shard_close(ShardReader *r);

int64_t shard_n_chunks(const ShardReader *r);
int64_t shard_n_docs(const ShardReader *r);
int64_t shard_n_tokens(const ShardReader *r);
int shard_max_len(const ShardReader *r);
uint64_t shard_seed(const ShardReader *r);   // the seed `seer data` shuffled with
const char *shard_tokenizer_hash(const ShardReader *r);

// Reserves the last k chunks of the file for evaluation: the training stream then covers chunks
// 0 .. n-k-1 only; held-out chunk i (0 <= i < k) is file chunk n-k+i (read it with
// shard_read_chunk). Chunks were shuffled when written, so these are a random sample.
// k must be in [0, n-1] (at least one training chunk); set it before the first shard_next and
// keep it with the cursor in a checkpoint, since it changes the order.
int shard_split_heldout(ShardReader *r, int64_t k, SeerErr *err);
int64_t shard_n_train(const ShardReader *r);

// Reads file chunk c (0 <= c < n_chunks). Returns 0, or -1 with err set.
int shard_read_chunk(ShardReader *r, int64_t c, ShardChunk *out, SeerErr *err);

// Reads the chunk at the cursor and advances it (to the next epoch after the last position).
// Returns 0, or -1 with err set (an out-of-range cursor, a read error).
int shard_next(ShardReader *r, ShardCursor *cur, ShardChunk *out, SeerErr *err);
