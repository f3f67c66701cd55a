// tokenizer.h: byte-level BPE as described by a Hugging Face tokenizer.json (Qwen2/Qwen3 family).
#pragma once
#include <stddef.h>

#include "common/common.h"

typedef struct Tokenizer Tokenizer;

// path: a tokenizer.json file, or a folder holding one.
Tokenizer *tokenizer_load(const char *path, SeerErr *err);
void tokenizer_free(Tokenizer *tok);

// Encodes UTF-8 text (no extra special tokens are added). Appends to *ids (grown with realloc,
// capacity in *cap). Returns the number of ids written, or -1 (e.g. invalid UTF-8) with err set.
int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int **ids, size_t *cap,
                     SeerErr *err);

// Decodes ids back to UTF-8 text (malloc'd, NUL-terminated). *out_len gets the byte length.
char *tokenizer_decode(const Tokenizer *tok, const int *ids, int n, size_t *out_len);

// Id of a token string (e.g. "<|im_end|>"), or -1 when absent.
int tokenizer_token_id(const Tokenizer *tok, const char *token);
int tokenizer_vocab_size(const Tokenizer *tok);

// Hex SHA-like digest of the tokenizer.json contents (identifies the tokenizer in data shards).
const char *tokenizer_hash(const Tokenizer *tok);
