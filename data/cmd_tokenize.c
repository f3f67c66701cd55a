// cmd_tokenize.c: `seer tokenize`: JSON lines in, token ids out (and back with --decode).
//
//   encode: each line is a JSON string (raw text, encoded as is) or an object with "messages"
//           (rendered with the Qwen3 chat template first); out: one JSON array of ids per line.
//   decode: each line is a JSON array of ids; out: one JSON string per line.
// The first bad line stops the run: `seer: stdin:LINE: what` on stderr, exit status 1.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/commands.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"

typedef struct {
    const char *tokenizer;
    int generation_prompt, no_thinking, decode;
} TokenizeOpts;

typedef struct {
    const Tokenizer *tok;
    TokenizeOpts o;
    int template_checked;
    int *ids;  // [cap] encode output
    size_t cap;
    char *out;  // [out_cap] one output line
    size_t out_cap;
} TokenizeRun;

static void tokenize_usage(FILE *f) {
    fprintf(f,
            "usage: seer tokenize --tokenizer PATH [--generation-prompt] [--no-thinking] [--decode]\n\n"
            "Reads JSON lines on stdin and writes one line per input line on stdout, in order.\n"
            "  encode (default): a line is a JSON string (raw text; special-token strings such as\n"
            "      <|im_end|> become their ids) or an object {\"messages\": [{\"role\", \"content\"\n"
            "      [, \"reasoning_content\"]}, ...]} rendered with the Qwen3 chat template first.\n"
            "      Output: a JSON array of ids.\n"
            "  --decode: a line is a JSON array of ids; output: the decoded text as a JSON string.\n\n"
            "options:\n"
            "  --tokenizer PATH      tokenizer.json, or a folder holding it (and tokenizer_config.json)\n"
            "  --generation-prompt   append the assistant prefix after rendered messages\n"
            "  --no-thinking         with --generation-prompt: add the empty think block (thinking off)\n"
            "  --decode              ids to text instead of text to ids\n\n"
            "A bad line (not JSON, invalid UTF-8, unknown role, id out of range) stops the run with\n"
            "\"seer: stdin:LINE: ...\" and exit status 1.\n");
}

// Returns 0, 1 after printing --help, or -1 (usage printed to stderr).
static int parse_args(int argc, char **argv, TokenizeOpts *o) {
    memset(o, 0, sizeof *o);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            tokenize_usage(stdout);
            return 1;
        } else if (!strcmp(a, "--tokenizer") && i + 1 < argc) o->tokenizer = argv[++i];
        else if (!strcmp(a, "--generation-prompt")) o->generation_prompt = 1;
        else if (!strcmp(a, "--no-thinking")) o->no_thinking = 1;
        else if (!strcmp(a, "--decode")) o->decode = 1;
        else {
            fprintf(stderr, "seer: tokenize: unknown or incomplete option '%s'\n", a);
            tokenize_usage(stderr);
            return -1;
        }
    }
    if (!o->tokenizer) {
        fprintf(stderr, "seer: tokenize: --tokenizer PATH is required\n");
        tokenize_usage(stderr);
        return -1;
    }
    return 0;
}

static char *out_reserve(TokenizeRun *r, size_t n) {
    if (n > r->out_cap) r->out = xrealloc(r->out, r->out_cap = 2 * n);
    return r->out;
}

// Renders {"messages": [...]} with the chat template (checked against tokenizer_config.json once).
static char *render_messages(TokenizeRun *r, json_t *msgs, SeerErr *err) {
    if (!r->template_checked) {
        if (chat_template_check(r->o.tokenizer, err) < 0) return NULL;
        r->template_checked = 1;
    }
    size_t n = json_array_size(msgs);
    if (!json_is_array(msgs) || !n) return seer_fail(err, "\"messages\" is not a non-empty list"), NULL;
    ChatMessage *m = xcalloc(n, sizeof *m);         // [n]
    const char **reasoning = xcalloc(n, sizeof *reasoning);  // [n]
    char *text = NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(msgs, i), *rc = json_object_get(e, "reasoning_content");
        json_t *role = json_object_get(e, "role"), *content = json_object_get(e, "content");
        if (!json_is_string(role) || !json_is_string(content)) {
            seer_fail(err, "messages[%zu] needs string \"role\" and \"content\"", i);
            goto done;
        }
        if (strlen(json_string_value(content)) != json_string_length(content)) {
            seer_fail(err, "messages[%zu].content contains a NUL character", i);
            goto done;
        }
        if (json_object_get(e, "tool_calls")) {
            seer_fail(err, "messages[%zu] has tool_calls, which the chat template here does not render", i);
            goto done;
        }
        if (rc && !json_is_null(rc) && !json_is_string(rc)) {
            seer_fail(err, "messages[%zu].reasoning_content is not a string", i);
            goto done;
        }
        m[i] = (ChatMessage){json_string_value(role), json_string_value(content)};
        reasoning[i] = json_is_string(rc) ? json_string_value(rc) : NULL;
    }
    ChatOptions opt = {.add_generation_prompt = r->o.generation_prompt, .enable_thinking = !r->o.no_thinking};
    text = chat_render_reasoning(m, reasoning, (int)n, opt, err);
done:
    free(m);
    free(reasoning);
    return text;
}

// One encode line -> "[id,...]\n" in r->out; returns its length, or -1.
static long encode_line(TokenizeRun *r, json_t *v, SeerErr *err) {
    const char *text;
    size_t len;
    char *rendered = NULL;
    if (json_is_string(v)) {
        text = json_string_value(v);
        len = json_string_length(v);
    } else if (json_is_object(v) && json_object_get(v, "messages")) {
        if (!(rendered = render_messages(r, json_object_get(v, "messages"), err))) return -1;
        text = rendered;
        len = strlen(rendered);
    } else {
        return seer_fail(err, "expected a JSON string or an object with \"messages\"");
    }
    int n = tokenizer_encode(r->tok, text, len, &r->ids, &r->cap, err);
    free(rendered);
    if (n < 0) return -1;
    char *p = out_reserve(r, 12 * (size_t)n + 4), *o = p;
    *o++ = '[';
    for (int i = 0; i < n; i++) {
        if (i) *o++ = ',';
        char digits[12];
        int k = 0;
        unsigned u = (unsigned)r->ids[i];
        do digits[k++] = (char)('0' + u % 10), u /= 10;
        while (u);
        while (k) *o++ = digits[--k];
    }
    *o++ = ']';
    *o++ = '\n';
    return o - p;
}

// One decode line -> "\"text\"\n" in r->out; returns its length, or -1.
static long decode_line(TokenizeRun *r, json_t *v, SeerErr *err) {
    if (!json_is_array(v)) return seer_fail(err, "expected a JSON array of token ids");
    size_t n = json_array_size(v);
    if (n > r->cap) r->ids = xrealloc(r->ids, (r->cap = n) * sizeof *r->ids);
    int V = tokenizer_vocab_size(r->tok);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) >= V)
            return seer_fail(err, "element %zu is not a token id in [0, %d)", i, V);
        r->ids[i] = (int)json_integer_value(e);
    }
    size_t len;
    char *text = tokenizer_decode(r->tok, r->ids, (int)n, &len);
    json_t *s = json_stringn_nocheck(text, len);
    free(text);
    char *dumped = json_dumps(s, JSON_ENCODE_ANY);
    json_decref(s);
    if (!dumped) return seer_fail(err, "cannot write the decoded text as JSON");
    size_t k = strlen(dumped);
    char *p = out_reserve(r, k + 2);
    memcpy(p, dumped, k);
    p[k] = '\n';
    free(dumped);
    return (long)k + 1;
}

static int run_lines(TokenizeRun *r) {
    char *line = NULL;
    size_t line_cap = 0;
    ssize_t got;
    long lineno = 0;
    int rc = 0;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        lineno++;
        SeerErr err;
        json_error_t je;
        json_t *v = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        long n;
        if (!v) n = seer_fail(&err, "invalid JSON at column %d: %s", je.column, je.text);
        else n = r->o.decode ? decode_line(r, v, &err) : encode_line(r, v, &err);
        json_decref(v);
        if (n < 0) {
            fflush(stdout);
            fprintf(stderr, "seer: stdin:%ld: %s\n", lineno, err.msg);
            rc = 1;
            break;
        }
        if (fwrite(r->out, 1, (size_t)n, stdout) != (size_t)n) {
            fprintf(stderr, "seer: tokenize: cannot write to stdout\n");
            rc = 1;
            break;
        }
    }
    free(line);
    if (!rc && fflush(stdout)) {
        fprintf(stderr, "seer: tokenize: cannot write to stdout\n");
        rc = 1;
    }
    return rc;
}

int cmd_tokenize(int argc, char **argv) {
    TokenizeRun r = {0};
    int pa = parse_args(argc, argv, &r.o);
    if (pa) return pa < 0 ? 2 : 0;
    SeerErr err;
    Tokenizer *tok = tokenizer_load(r.o.tokenizer, &err);
    if (!tok) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    r.tok = tok;
    int rc = run_lines(&r);
    free(r.ids);
    free(r.out);
    tokenizer_free(tok);
    return rc;
}
