// chat_template.h: the Qwen3-family chat template rendered in C (no general Jinja engine).
#pragma once
#include "common/common.h"

typedef struct {
    const char *role;     // "system", "user" or "assistant"
    const char *content;  // UTF-8
} ChatMessage;

typedef struct {
    int add_generation_prompt;  // append "<|im_start|>assistant\n"
    int enable_thinking;        // 1 (default); 0 adds the empty think block after the prompt
} ChatOptions;

// Renders messages exactly as Hugging Face apply_chat_template does for Qwen3's template.
// Returns malloc'd UTF-8 text, or NULL with err set (unknown role, empty list, ...).
char *chat_render(const ChatMessage *msgs, int n, ChatOptions opt, SeerErr *err);
