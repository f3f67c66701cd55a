// chat_template.h: the Qwen3-family chat template rendered in C (no general Jinja engine).
#pragma once
#include "common/common.h"

typedef struct {
    const char *role;     // "system", "user", "assistant" or "tool"
    const char *content;  // UTF-8
} ChatMessage;

typedef struct {
    int add_generation_prompt;  // append "<|im_start|>assistant\n"
    int enable_thinking;        // 1 (default); 0 adds the empty think block after the prompt
} ChatOptions;

// Renders messages exactly as Hugging Face apply_chat_template does for Qwen3's template (the one in
// Qwen3's tokenizer_config.json; docs/TOKENIZER.md): a leading system message, user / system /
// tool turns, assistant turns whose "<think>...</think>" is kept for assistant turns after the last
// user query and dropped from earlier ones, an empty think block on a final assistant turn without
// one, the generation prompt. Tool calls and the `tools` list are not supported.
// Returns malloc'd UTF-8 text, or NULL with err set (empty list, NULL role/content, unknown role).
char *chat_render(const ChatMessage *msgs, int n, ChatOptions opt, SeerErr *err);

// chat_render with each message's "reasoning_content" field: reasoning[i] NULL means the field is
// absent (or null), and then the reasoning is taken from "<think>...</think>" in the content, as the
// template does. reasoning itself may be NULL (no message has the field).
char *chat_render_reasoning(const ChatMessage *msgs, const char *const *reasoning, int n, ChatOptions opt,
                            SeerErr *err);

// Checks that a model's chat template is the Qwen3 template this file renders. path: a
// tokenizer_config.json, a folder holding one, or a tokenizer.json (its sibling tokenizer_config.json
// is read). The template is "chat_template" (a string, or the entry named "default" of a list), or
// else the folder's chat_template.jinja. Returns 0, or -1 with err naming the file and the reason
// (unreadable, no template, or another template: its SHA-256 is given).
int chat_template_check(const char *path, SeerErr *err);
