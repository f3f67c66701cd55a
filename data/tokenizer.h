// tokenizer.h: byte-level BPE as described by a Hugging Face tokenizer.json (Qwen2/Qwen3 family).
#pragma once
#include <stddef.h>

#include "common/common.h"

typedef struct Tokenizer Tokenizer;

// path: a tokenizer.json file, or a folder holding one. Supported: BPE model (no dropout, no byte
// fallback), normalizer NFC or none, pre_tokenizer Sequence[Split(Regex, Isolated), ByteLevel],
// decoder ByteLevel (docs/TOKENIZER.md). NULL with err set (one line naming the file) when the
// file is unreadable, not JSON, or of another kind. post_processor, truncation and padding are
// ignored: tokenizer_encode adds no special tokens and never truncates.
Tokenizer *tokenizer_load(const char *path, SeerErr *err);
// Frees tok and every thread's scratch state; tok == NULL is allowed. No encode may be running.
void tokenizer_free(Tokenizer *tok);

// Encodes UTF-8 text (no extra special tokens are added; literal special-token strings such as
// "<|im_end|>" in the text become their ids, as in Hugging Face). Writes the ids to (*ids)[0..n),
// growing *ids with realloc (capacity in *cap; *ids may start NULL with *cap 0). Returns n (0 for
// empty text), or -1 with err set: invalid UTF-8 (err names the byte offset) or a regex failure.
// Thread-safe: many threads may encode with one Tokenizer at once.
int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int **ids, size_t *cap,
                     SeerErr *err);

// Decodes ids back to UTF-8 text (malloc'd, NUL-terminated; *out_len, when not NULL, gets the
// byte length). Special tokens are kept. Ids outside [0, vocab size) are skipped, and byte runs that
// are not valid UTF-8 (a multi-byte character cut between ids) become U+FFFD, as HF decode does.
char *tokenizer_decode(const Tokenizer *tok, const int *ids, int n, size_t *out_len);

// Id of a token string (e.g. "<|im_end|>"), or -1 when absent.
int tokenizer_token_id(const Tokenizer *tok, const char *token);
// Max id + 1 (model vocab and added tokens).
int tokenizer_vocab_size(const Tokenizer *tok);

// Hex SHA-256 of the tokenizer.json bytes (identifies the tokenizer in data shards).
const char *tokenizer_hash(const Tokenizer *tok);

// Hex SHA-256 (64 digits + NUL) of data[0..n).
void tokenizer_sha256(const void *data, size_t n, char hex[65]);
