// jsonl.c: see jsonl.h.
#include "data/jsonl.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "data/chat_template.h"

int jsonl_is_blank(const char *line, size_t len) {
    for (size_t i = 0; i < len; i++) {
        char c = line[i];
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') return 0;
    }
    return 1;
}

long jsonl_utf8_invalid_at(const char *s, size_t len) {
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) { i++; continue; }  // ASCII fast path
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = utf8proc_iterate(p + i, (utf8proc_ssize_t)(len - i), &cp);
        if (n <= 0) return (long)i;
        i += (size_t)n;
    }
    return -1;
}

static int skip(ShardSkip *why, ShardSkip reason) {
    *why = reason;
    return -1;
}

// The text of a string-valued key, or NULL when the key is absent or not a string.
static const char *str_field(json_t *obj, const char *key) {
    return json_string_value(json_object_get(obj, key));
}

// Renders a "messages" array through the chat template (a message's optional string
// "reasoning_content" is passed on, as Hugging Face's template reads it).
static char *render_messages(json_t *msgs, ShardSkip *why, SeerErr *err) {
    size_t n = json_array_size(msgs), empty = 0;
    if (!json_is_array(msgs) || n == 0) {
        seer_fail(err, "\"messages\" is not a non-empty list");
        *why = json_is_array(msgs) ? SHARD_SKIP_EMPTY : SHARD_SKIP_FIELD;
        return NULL;
    }
    ChatMessage *m = xmalloc(n * sizeof *m);              // [n]
    const char **reasoning = xmalloc(n * sizeof *reasoning);  // [n] NULL when absent
    char *text = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(msgs, i);
        m[i].role = str_field(e, "role");
        m[i].content = str_field(e, "content");
        reasoning[i] = str_field(e, "reasoning_content");
        if (!m[i].role || !m[i].content) {
            seer_fail(err, "messages[%zu] has no string \"role\" and \"content\"", i);
            *why = SHARD_SKIP_FIELD;
            goto done;
        }
        empty += m[i].content[0] == 0 && (!reasoning[i] || !reasoning[i][0]);
    }
    if (empty == n) {
        seer_fail(err, "every message is empty");
        *why = SHARD_SKIP_EMPTY;
        goto done;
    }
    ChatOptions opt = {.add_generation_prompt = 0, .enable_thinking = 1};
    text = chat_render_reasoning(m, reasoning, (int)n, opt, err);
    *why = SHARD_SKIP_FIELD;  // when the template refuses the messages (unknown role, ...)
done:
    free(m);
    free(reasoning);
    return text;
}

// Renders "problem" + "solution" as one user turn and one assistant turn.
static char *render_problem(const char *problem, const char *solution, ShardSkip *why, SeerErr *err) {
    if (!problem[0] && !solution[0]) {
        seer_fail(err, "\"problem\" and \"solution\" are empty");
        *why = SHARD_SKIP_EMPTY;
        return NULL;
    }
    ChatMessage m[2] = {{"user", problem}, {"assistant", solution}};
    ChatOptions opt = {.add_generation_prompt = 0, .enable_thinking = 1};
    *why = SHARD_SKIP_FIELD;
    return chat_render(m, 2, opt, err);
}

static char *row_render(json_t *row, ShardSkip *why, SeerErr *err) {
    json_t *msgs = json_object_get(row, "messages");
    const char *problem = str_field(row, "problem"), *solution = str_field(row, "solution");
    const char *text = str_field(row, "text");
    if (msgs) return render_messages(msgs, why, err);
    if (problem && solution) return render_problem(problem, solution, why, err);
    if (text && !text[0]) {
        seer_fail(err, "\"text\" is empty");
        *why = SHARD_SKIP_EMPTY;
        return NULL;
    }
    if (text) return xstrdup(text);
    *why = SHARD_SKIP_FIELD;
    if (problem || solution)
        seer_fail(err, "\"%s\" without a string \"%s\"", problem ? "problem" : "solution",
                  problem ? "solution" : "problem");
    else
        seer_fail(err, "no \"messages\", \"problem\"+\"solution\" or string \"text\" field");
    return NULL;
}

int jsonl_row_text(const char *line, size_t len, char **text, size_t *text_len, ShardSkip *why,
                   SeerErr *err) {
    *text = NULL;
    long bad = jsonl_utf8_invalid_at(line, len);
    if (bad >= 0) {
        seer_fail(err, "at byte %ld of the line", bad + 1);
        return skip(why, SHARD_SKIP_UTF8);
    }
    json_error_t jerr;
    json_t *row = json_loadb(line, len, 0, &jerr);
    if (!row) {
        seer_fail(err, "column %d: %s", jerr.column, jerr.text);
        return skip(why, SHARD_SKIP_JSON);
    }
    if (!json_is_object(row)) {
        json_decref(row);
        seer_fail(err, "the row is not a JSON object");
        return skip(why, SHARD_SKIP_JSON);
    }
    *text = row_render(row, why, err);
    json_decref(row);
    if (!*text) return -1;
    *text_len = strlen(*text);
    return 0;
}
