// jsonl.h: one OpenR1-Math-style JSONL row -> the document text to tokenise.
//
// A row is a JSON object with, in order of preference:
//   "messages": [{"role": ..., "content": ...}, ...]  rendered with the chat template (no generation
//                                                      prompt; the assistant's <think> block kept);
//   "problem" + "solution"                             rendered as one user + one assistant turn;
//   "text"                                             used as is, no template.
// Other keys (e.g. "answer") are ignored.
#pragma once
#include <stddef.h>

#include "common/common.h"
#include "data/shard.h"

// 1 when the line holds only spaces, tabs, CR or LF (such lines are skipped without a count).
int jsonl_is_blank(const char *line, size_t len);

// Byte offset of the first invalid UTF-8 sequence in s[0..len), or -1 when s is valid UTF-8
// (overlong forms, surrogates and code points above U+10FFFF are invalid).
long jsonl_utf8_invalid_at(const char *s, size_t len);

// Turns one row (len bytes, no newline needed) into a malloc'd NUL-terminated document text.
// Returns 0 with *text / *text_len set, or -1 with *why set to the reason (SHARD_SKIP_UTF8,
// SHARD_SKIP_JSON, SHARD_SKIP_FIELD, SHARD_SKIP_EMPTY: every text of the row is "") and err holding
// a short description without the file:line (the caller adds it).
int jsonl_row_text(const char *line, size_t len, char **text, size_t *text_len, ShardSkip *why,
                   SeerErr *err);
