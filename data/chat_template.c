// chat_template.c: Qwen3's chat template (tokenizer_config.json, "chat_template") written out in C.
//
// The Jinja template, restated (tools and tool_calls left out):
//   - messages[0] with role system: "<|im_start|>system\n" + content + "<|im_end|>\n".
//   - last_query_index: the last user message whose content is not wrapped in
//     <tool_response>...</tool_response> (len - 1 when there is none).
//   - user, and system when not first: "<|im_start|>" + role + "\n" + content + "<|im_end|>\n".
//   - assistant: reasoning = reasoning_content when given; else, when content holds "</think>",
//     content = after the last "</think>", lstrip("\n"), and reasoning = before the first "</think>",
//     rstrip("\n"), after the last "<think>", lstrip("\n"). After last_query_index and (last message
//     or reasoning non-empty): "<|im_start|>assistant\n<think>\n" + reasoning.strip("\n") +
//     "\n</think>\n\n" + content.lstrip("\n"); otherwise "<|im_start|>assistant\n" + content. Then
//     "<|im_end|>\n".
//   - tool: consecutive tool messages share one "<|im_start|>user" ... "<|im_end|>\n" turn, each
//     adding "\n<tool_response>\n" + content + "\n</tool_response>".
//   - generation prompt: "<|im_start|>assistant\n", plus "<think>\n\n</think>\n\n" when thinking
//     is off.
#include "data/chat_template.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/tokenizer.h"

// SHA-256 of the supported templates' text (one trailing newline removed). Adding a template
// means adding its hash here and fixture cases in tests/golden/make_tokenizer_fixtures.py.
static const char *const qwen3_template_sha256[] = {
    "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5",  // Qwen3 (hybrid thinking)
};

typedef struct {
    char *p;
    size_t n, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = 2 * (b->n + n + 1) + 256;
        b->p = xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void buf_str(Buf *b, const char *s) { buf_add(b, s, strlen(s)); }

// A byte range [s, e) of a message's content.
typedef struct {
    const char *s, *e;
} Span;

static Span lstrip_nl(Span x) {
    while (x.s < x.e && *x.s == '\n') x.s++;
    return x;
}
static Span rstrip_nl(Span x) {
    while (x.e > x.s && x.e[-1] == '\n') x.e--;
    return x;
}

// Last occurrence of needle in x, or NULL.
static const char *span_rfind(Span x, const char *needle) {
    size_t n = strlen(needle);
    if ((size_t)(x.e - x.s) < n) return NULL;
    for (const char *p = x.e - n;; p--) {
        if (!memcmp(p, needle, n)) return p;
        if (p == x.s) return NULL;
    }
}

static int starts_with(const char *s, const char *pre) { return !strncmp(s, pre, strlen(pre)); }
static int ends_with(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && !memcmp(s + n - k, suf, k);
}

static int is_role(const char *r, const char *name) { return !strcmp(r, name); }

// Splits an assistant message into the content to show and its reasoning (template rules above).
static void split_think(const char *content, const char *reasoning_field, Span *content_out, Span *reasoning) {
    Span c = {content, content + strlen(content)};
    *content_out = c;
    *reasoning = (Span){"", ""};
    if (reasoning_field) {
        *reasoning = (Span){reasoning_field, reasoning_field + strlen(reasoning_field)};
        return;
    }
    const char *first_close = strstr(content, "</think>");
    if (!first_close) return;
    const char *last_close = span_rfind(c, "</think>");
    *content_out = lstrip_nl((Span){last_close + strlen("</think>"), c.e});
    Span before = rstrip_nl((Span){content, first_close});
    const char *open = span_rfind(before, "<think>");
    if (open) before.s = open + strlen("<think>");
    *reasoning = lstrip_nl(before);
}

static void render_assistant(Buf *b, const ChatMessage *m, const char *reasoning_field, int show_think) {
    Span content, reasoning;
    split_think(m->content, reasoning_field, &content, &reasoning);
    buf_str(b, "<|im_start|>assistant\n");
    if (show_think && (reasoning.e > reasoning.s || show_think == 2)) {
        Span r = rstrip_nl(lstrip_nl(reasoning));
        buf_str(b, "<think>\n");
        buf_add(b, r.s, (size_t)(r.e - r.s));
        buf_str(b, "\n</think>\n\n");
        content = lstrip_nl(content);
    }
    buf_add(b, content.s, (size_t)(content.e - content.s));
    buf_str(b, "<|im_end|>\n");
}

static int check_messages(const ChatMessage *msgs, int n, SeerErr *err) {
    if (n < 1) return seer_fail(err, "chat template: no messages");
    for (int i = 0; i < n; i++) {
        const char *r = msgs[i].role;
        if (!r || !msgs[i].content) return seer_fail(err, "chat template: message %d has no role or content", i);
        if (!is_role(r, "system") && !is_role(r, "user") && !is_role(r, "assistant") && !is_role(r, "tool"))
            return seer_fail(err, "chat template: message %d has role \"%s\" (expected system, user, assistant or tool)",
                             i, r);
    }
    return 0;
}

char *chat_render_reasoning(const ChatMessage *msgs, const char *const *reasoning, int n, ChatOptions opt,
                            SeerErr *err) {
    if (check_messages(msgs, n, err) < 0) return NULL;
    int last_query = n - 1;
    for (int i = n - 1; i >= 0; i--) {
        const char *c = msgs[i].content;
        if (is_role(msgs[i].role, "user") && !(starts_with(c, "<tool_response>") && ends_with(c, "</tool_response>"))) {
            last_query = i;
            break;
        }
    }
    Buf b = {0};
    buf_str(&b, "");
    if (is_role(msgs[0].role, "system")) {
        buf_str(&b, "<|im_start|>system\n");
        buf_str(&b, msgs[0].content);
        buf_str(&b, "<|im_end|>\n");
    }
    for (int i = 0; i < n; i++) {
        const ChatMessage *m = &msgs[i];
        if (is_role(m->role, "user") || (is_role(m->role, "system") && i > 0)) {
            buf_str(&b, "<|im_start|>");
            buf_str(&b, m->role);
            buf_str(&b, "\n");
            buf_str(&b, m->content);
            buf_str(&b, "<|im_end|>\n");
        } else if (is_role(m->role, "assistant")) {
            // 2: last message (think block even when empty); 1: only when there is reasoning.
            int show_think = i > last_query ? (i == n - 1 ? 2 : 1) : 0;
            render_assistant(&b, m, reasoning ? reasoning[i] : NULL, show_think);
        } else if (is_role(m->role, "tool")) {
            if (i == 0 || !is_role(msgs[i - 1].role, "tool")) buf_str(&b, "<|im_start|>user");
            buf_str(&b, "\n<tool_response>\n");
            buf_str(&b, m->content);
            buf_str(&b, "\n</tool_response>");
            if (i == n - 1 || !is_role(msgs[i + 1].role, "tool")) buf_str(&b, "<|im_end|>\n");
        }
    }
    if (opt.add_generation_prompt) {
        buf_str(&b, "<|im_start|>assistant\n");
        if (!opt.enable_thinking) buf_str(&b, "<think>\n\n</think>\n\n");
    }
    return b.p;
}

char *chat_render(const ChatMessage *msgs, int n, ChatOptions opt, SeerErr *err) {
    return chat_render_reasoning(msgs, NULL, n, opt, err);
}

// ---------------------------------------------------------------------------------------------
// Template check
// ---------------------------------------------------------------------------------------------

// The folder that holds path's tokenizer files (path itself when it is a folder).
static void config_dir(const char *path, char *dir, size_t cap) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(dir, cap, "%s", path);
        return;
    }
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(dir, cap, ".");
    else snprintf(dir, cap, "%.*s", (int)(slash - path), path);
}

static int ends_with_name(const char *path, const char *name) {
    size_t n = strlen(path), k = strlen(name);
    return n >= k && !strcmp(path + n - k, name) && (n == k || path[n - k - 1] == '/');
}

// The template text of a tokenizer_config.json (json_t-owned or read from chat_template.jinja into
// *owned); NULL with err set when there is none.
static const char *template_text(json_t *cfg, const char *cfg_path, const char *dir, char **owned, SeerErr *err) {
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_string(t)) return json_string_value(t);
    if (json_is_array(t)) {
        size_t i;
        json_t *e;
        json_array_foreach(t, i, e) {
            const char *name = json_string_value(json_object_get(e, "name"));
            if (name && !strcmp(name, "default") && json_is_string(json_object_get(e, "template")))
                return json_string_value(json_object_get(e, "template"));
        }
        seer_fail(err, "%s: chat_template list has no \"default\" entry", cfg_path);
        return NULL;
    }
    char jinja[4200];
    snprintf(jinja, sizeof jinja, "%s/chat_template.jinja", dir);
    FILE *f = fopen(jinja, "rb");
    if (!f) {
        seer_fail(err, "%s: no chat_template (and no %s)", cfg_path, jinja);
        return NULL;
    }
    Buf b = {0};
    char chunk[8192];
    size_t got;
    buf_str(&b, "");
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0) buf_add(&b, chunk, got);
    fclose(f);
    return *owned = b.p;
}

int chat_template_check(const char *path, SeerErr *err) {
    char dir[4096], cfg_path[4200];
    config_dir(path, dir, sizeof dir);
    if (ends_with_name(path, "tokenizer_config.json")) snprintf(cfg_path, sizeof cfg_path, "%s", path);
    else snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
    json_error_t je;
    json_t *cfg = json_load_file(cfg_path, 0, &je);
    if (!cfg) return seer_fail(err, "%s: cannot read the chat template: %s", cfg_path, je.text);
    char *owned = NULL;
    const char *text = template_text(cfg, cfg_path, dir, &owned, err);
    int rc = -1;
    if (text) {
        size_t n = strlen(text);
        if (n && text[n - 1] == '\n') n--;  // a final newline renders nothing (trim_blocks)
        char hex[65];
        tokenizer_sha256(text, n, hex);
        for (size_t i = 0; i < sizeof qwen3_template_sha256 / sizeof *qwen3_template_sha256; i++)
            if (!strcmp(hex, qwen3_template_sha256[i])) rc = 0;
        if (rc < 0)
            seer_fail(err, "%s: the chat template is not the Qwen3 template seer renders (sha256 %.16s...); "
                           "see docs/TOKENIZER.md", cfg_path, hex);
    }
    free(owned);
    json_decref(cfg);
    return rc;
}
