// test_tokenizer.c: the tokenizer, the chat template and `seer tokenize` against Hugging Face fixtures.
//
// Fixtures (tests/fixtures/tokenizer, made by tests/golden/make_tokenizer_fixtures.py with the
// `tokenizers` and `transformers` libraries): ids of every case, decodes of cut id lists, rendered chat
// templates. The tokenizers are in the repo: tests/fixtures/tokenizer/qwen3 (the real Qwen3 one, gzip) and data/testbed/model.
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "common/commands.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "tests/test.h"

#define FIX "tests/fixtures/tokenizer"
#define QWEN3_DIR FIX "/qwen3"          // the real Qwen3 tokenizer (gzip) and tokenizer_config.json
#define TESTBED_DIR "data/testbed/model"

static json_t *meta;
static Tokenizer *toks[4];
static const char *tok_names[4] = {"qwen3", "testbed", "testbed-flags", "testbed-plain"};

static void tok_path(int k, char *out, size_t cap) {
    if (k == 0) snprintf(out, cap, QWEN3_DIR "/tokenizer.json.gz");
    else if (k == 1) snprintf(out, cap, TESTBED_DIR "/tokenizer.json");
    else snprintf(out, cap, FIX "/%s.json", tok_names[k]);
}

static Tokenizer *tok_by_name(const char *name) {
    for (int k = 0; k < 4; k++)
        if (name && !strcmp(name, tok_names[k])) return toks[k];
    return NULL;
}

// Reads a gzip JSON-lines fixture into a JSON array (NULL when unreadable).
static json_t *read_gz_lines(const char *path) {
    gzFile f = gzopen(path, "rb");
    if (!f) return NULL;
    size_t n = 0, cap = 1 << 20;
    char *buf = xmalloc(cap);
    int got;
    while ((got = gzread(f, buf + n, (unsigned)(cap - n))) > 0) {
        n += (size_t)got;
        if (n == cap) buf = xrealloc(buf, cap *= 2);
    }
    gzclose(f);
    json_t *rows = json_array();
    for (size_t s = 0; s < n;) {
        char *e = memchr(buf + s, '\n', n - s);
        size_t len = e ? (size_t)(e - (buf + s)) : n - s;
        json_t *row = json_loadb(buf + s, len, JSON_ALLOW_NUL, NULL);
        if (row) json_array_append_new(rows, row);
        s += len + 1;
    }
    free(buf);
    return rows;
}

static int ids_equal(const int *ids, int n, json_t *want) {
    if ((size_t)n != json_array_size(want)) return 0;
    for (int i = 0; i < n; i++)
        if (ids[i] != json_integer_value(json_array_get(want, (size_t)i))) return 0;
    return 1;
}

// ---------------------------------------------------------------------------------------------

static void test_sha256(void) {
    char hex[65], *a = xmalloc(1000);
    memset(a, 'a', 1000);
    tokenizer_sha256("", 0, hex);
    CHECK(!strcmp(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"));
    tokenizer_sha256("abc", 3, hex);
    CHECK(!strcmp(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    tokenizer_sha256(a, 55, hex);  // padding fits in the last block
    CHECK(!strcmp(hex, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"));
    tokenizer_sha256(a, 56, hex);  // padding needs one more block
    CHECK(!strcmp(hex, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"));
    tokenizer_sha256(a, 64, hex);
    CHECK(!strcmp(hex, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"));
    tokenizer_sha256(a, 1000, hex);
    CHECK(!strcmp(hex, "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3"));
    free(a);
}

static void test_load(void) {
    for (int k = 0; k < 4; k++) {
        char p[1200];
        SeerErr err = {{0}};
        tok_path(k, p, sizeof p);
        toks[k] = tokenizer_load(p, &err);
        if (!toks[k]) fprintf(stderr, "    %s\n", err.msg);
        CHECK(toks[k] != NULL);
        if (!toks[k]) continue;
        const char *want = json_string_value(json_object_get(json_object_get(meta, "sha256"), tok_names[k]));
        CHECK(want && !strcmp(tokenizer_hash(toks[k]), want));
    }
    if (!toks[0] || !toks[1]) return;
    CHECK(tokenizer_vocab_size(toks[0]) == 151669);
    CHECK(tokenizer_vocab_size(toks[1]) == 1588);
    CHECK(tokenizer_token_id(toks[0], "<|im_end|>") == 151645);
    CHECK(tokenizer_token_id(toks[0], "<think>") == 151667);
    CHECK(tokenizer_token_id(toks[0], "\xc4\xa0") == 220);  // "Ġ", the byte-level space
    CHECK(tokenizer_token_id(toks[0], "no such token here") == -1);
    CHECK(tokenizer_token_id(toks[1], "</think>") == 1587);
    // A folder holding tokenizer.json loads the same file.
    char dir[1100];
    SeerErr err;
    snprintf(dir, sizeof dir, "%s", TESTBED_DIR);
    Tokenizer *t = tokenizer_load(dir, &err);
    CHECK(t && !strcmp(tokenizer_hash(t), tokenizer_hash(toks[1])));
    tokenizer_free(t);
}

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void test_load_errors(void) {
    SeerErr err;
    CHECK(!tokenizer_load("/nonexistent/tokenizer.json", &err) && strstr(err.msg, "/nonexistent/tokenizer.json"));
    char path[] = "/tmp/seer_tok_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    write_file(path, "{\"model\": ");
    CHECK(!tokenizer_load(path, &err) && strstr(err.msg, "invalid JSON") && strstr(err.msg, path));
    write_file(path, "{\"normalizer\": {\"type\": \"Lowercase\"}, \"model\": {}}");
    CHECK(!tokenizer_load(path, &err) && strstr(err.msg, "Lowercase"));
    write_file(path, "{\"pre_tokenizer\": {\"type\": \"Whitespace\"}, \"model\": {}}");
    CHECK(!tokenizer_load(path, &err) && strstr(err.msg, "pre_tokenizer"));
    const char *pre = "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
                      "\"pattern\": {\"Regex\": \"\\\\s+|\\\\S+\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
                      "{\"type\": \"ByteLevel\"}]}, \"decoder\": {\"type\": \"ByteLevel\"}";
    char json[2048];
    snprintf(json, sizeof json, "{%s, \"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", pre);
    write_file(path, json);
    CHECK(!tokenizer_load(path, &err) && strstr(err.msg, "WordPiece"));
    snprintf(json, sizeof json, "{%s, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
             pre);
    write_file(path, json);
    CHECK(!tokenizer_load(path, &err) && strstr(err.msg, "merges[0]"));
    // A minimal valid file: "ab" merges, other bytes have no token and are dropped (as HF does).
    snprintf(json, sizeof json,
             "{%s, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\\u0120\": 3}, "
             "\"merges\": [[\"a\", \"b\"]]}}", pre);
    write_file(path, json);
    Tokenizer *t = tokenizer_load(path, &err);
    CHECK(t != NULL);
    if (t) {
        int *ids = NULL;
        size_t cap = 0;
        int n = tokenizer_encode(t, "abab zab", 8, &ids, &cap, &err);
        CHECK(n == 4 && ids[0] == 2 && ids[1] == 2 && ids[2] == 3 && ids[3] == 2);
        CHECK(tokenizer_encode(t, "", 0, &ids, &cap, &err) == 0);
        free(ids);
        tokenizer_free(t);
    }
    unlink(path);
}

static void test_invalid_utf8(void) {
    if (!toks[0]) return;
    struct {
        const char *s;
        size_t len, bad;
    } cases[] = {
        {"ok\x80", 3, 2},                // lone continuation byte
        {"\xC0\xAF", 2, 0},              // overlong '/'
        {"ab\xED\xA0\x80", 5, 2},        // UTF-16 surrogate
        {"\xF4\x90\x80\x80", 4, 0},      // above U+10FFFF
        {"x\xE4\xB8", 3, 1},             // truncated 3-byte character
        {"\xFF", 1, 0},
        {"12345678\xF5", 9, 8},
        {"\xE2\x82\xAC\xE2\x28\xA1", 6, 3},  // bad second continuation
    };
    int *ids = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        SeerErr err = {{0}};
        char want[64];
        snprintf(want, sizeof want, "invalid UTF-8 at byte %zu", cases[i].bad);
        CHECK(tokenizer_encode(toks[0], cases[i].s, cases[i].len, &ids, &cap, &err) == -1);
        CHECK(strstr(err.msg, want) != NULL);
    }
    free(ids);
}

static void test_encode_fixtures(void) {
    json_t *rows = read_gz_lines(FIX "/encode.jsonl.gz");
    CHECK(rows && json_array_size(rows) > 3000);
    if (!rows) return;
    int *ids = NULL;
    size_t cap = 0, i, bad = 0, bad_dec = 0;
    json_t *r;
    json_array_foreach(rows, i, r) {
        Tokenizer *t = tok_by_name(json_string_value(json_object_get(r, "tok")));
        json_t *text = json_object_get(r, "text"), *want = json_object_get(r, "ids");
        if (!t) continue;
        SeerErr err;
        int n = tokenizer_encode(t, json_string_value(text), json_string_length(text), &ids, &cap, &err);
        if (n < 0 || !ids_equal(ids, n, want)) {
            if (bad++ < 5) fprintf(stderr, "    encode mismatch (%s): %.60s\n", tok_names[0], json_string_value(text));
            continue;
        }
        json_t *dec = json_object_get(r, "decoded");
        if (!dec) dec = text;
        size_t len;
        char *back = tokenizer_decode(t, ids, n, &len);
        if (len != json_string_length(dec) || memcmp(back, json_string_value(dec), len)) bad_dec++;
        free(back);
    }
    CHECK(bad == 0);
    CHECK(bad_dec == 0);
    if (bad || bad_dec) fprintf(stderr, "    %zu encode and %zu decode mismatches\n", bad, bad_dec);
    free(ids);
    json_decref(rows);
}

static void test_decode_fixtures(void) {
    json_t *rows = read_gz_lines(FIX "/decode.jsonl.gz");
    CHECK(rows && json_array_size(rows) > 500);
    if (!rows) return;
    size_t i, bad = 0;
    json_t *r;
    json_array_foreach(rows, i, r) {
        Tokenizer *t = tok_by_name(json_string_value(json_object_get(r, "tok")));
        json_t *want = json_object_get(r, "text"), *jids = json_object_get(r, "ids");
        if (!t) continue;
        int n = (int)json_array_size(jids), *ids = xmalloc((size_t)n * sizeof *ids);  // [n]
        for (int k = 0; k < n; k++) ids[k] = (int)json_integer_value(json_array_get(jids, (size_t)k));
        size_t len;
        char *got = tokenizer_decode(t, ids, n, &len);
        if (len != json_string_length(want) || memcmp(got, json_string_value(want), len)) bad++;
        free(got);
        free(ids);
    }
    CHECK(bad == 0);
    int out_of_range[] = {-1, 1 << 30, 9707};  // skipped, skipped, "Hello"
    char *s = toks[0] ? tokenizer_decode(toks[0], out_of_range, 3, NULL) : NULL;
    CHECK(!toks[0] || !strcmp(s, "Hello"));
    free(s);
    json_decref(rows);
}

// Fills msgs / reasoning from a fixture's "messages" list; returns the count.
static int chat_messages(json_t *list, ChatMessage *msgs, const char **reasoning, int cap) {
    int n = 0;
    size_t i;
    json_t *m;
    json_array_foreach(list, i, m) {
        if (n == cap) break;
        json_t *rc = json_object_get(m, "reasoning_content");
        msgs[n] = (ChatMessage){json_string_value(json_object_get(m, "role")),
                                json_string_value(json_object_get(m, "content"))};
        reasoning[n++] = json_is_string(rc) ? json_string_value(rc) : NULL;
    }
    return n;
}

static void test_chat_fixtures(void) {
    json_t *rows = read_gz_lines(FIX "/chat.jsonl.gz");
    CHECK(rows && json_array_size(rows) > 50);
    if (!rows || !toks[0]) return;
    int *ids = NULL;
    size_t cap = 0, i, bad = 0, bad_ids = 0;
    json_t *r;
    json_array_foreach(rows, i, r) {
        ChatMessage msgs[16];
        const char *reasoning[16];
        int n = chat_messages(json_object_get(r, "messages"), msgs, reasoning, 16);
        json_t *think = json_object_get(r, "enable_thinking");
        ChatOptions opt = {.add_generation_prompt = json_is_true(json_object_get(r, "add_generation_prompt")),
                           .enable_thinking = !json_is_false(think)};
        SeerErr err;
        char *text = chat_render_reasoning(msgs, reasoning, n, opt, &err);
        const char *want = json_string_value(json_object_get(r, "rendered"));
        if (!text || strcmp(text, want)) {
            if (bad++ < 3) fprintf(stderr, "    chat mismatch in case %zu:\n%s\n--- want:\n%s\n", i, text, want);
            free(text);
            continue;
        }
        int k = tokenizer_encode(toks[0], text, strlen(text), &ids, &cap, &err);
        if (k < 0 || !ids_equal(ids, k, json_object_get(r, "ids"))) bad_ids++;
        free(text);
    }
    CHECK(bad == 0);
    CHECK(bad_ids == 0);
    free(ids);
    json_decref(rows);
}

static void test_chat_errors(void) {
    SeerErr err;
    ChatOptions opt = {0, 1};
    CHECK(!chat_render(NULL, 0, opt, &err) && strstr(err.msg, "no messages"));
    ChatMessage bad_role[] = {{"user", "hi"}, {"robot", "beep"}};
    CHECK(!chat_render(bad_role, 2, opt, &err) && strstr(err.msg, "robot"));
    ChatMessage no_content[] = {{"user", NULL}};
    CHECK(!chat_render(no_content, 1, opt, &err) && strstr(err.msg, "message 0"));
    ChatMessage ok[] = {{"user", "hi"}};
    char *s = chat_render(ok, 1, (ChatOptions){1, 0}, &err);
    CHECK(s && !strcmp(s, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"));
    free(s);
}

static void test_chat_template_check(void) {
    SeerErr err;
    char p[1200];
    snprintf(p, sizeof p, "%s", QWEN3_DIR "/tokenizer_config.json");
    CHECK(chat_template_check(p, &err) == 0);
    snprintf(p, sizeof p, "%s", QWEN3_DIR);
    CHECK(chat_template_check(p, &err) == 0);
    snprintf(p, sizeof p, "%s", TESTBED_DIR "/tokenizer.json");
    CHECK(chat_template_check(p, &err) == 0);
    char dir[] = "/tmp/seer_tpl_XXXXXX", cfg[64];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(cfg, sizeof cfg, "%s/tokenizer_config.json", dir);
    write_file(cfg, "{\"chat_template\": \"{% for m in messages %}{{ m.content }}{% endfor %}\"}");
    CHECK(chat_template_check(dir, &err) == -1 && strstr(err.msg, "not the Qwen3 template"));
    write_file(cfg, "{\"eos_token\": \"x\"}");
    CHECK(chat_template_check(cfg, &err) == -1 && strstr(err.msg, "no chat_template"));
    unlink(cfg);
    CHECK(chat_template_check(dir, &err) == -1 && strstr(err.msg, "tokenizer_config.json"));
    rmdir(dir);
}

// Encoding from two threads at once gives the single-thread ids.
static void test_threads(void) {
    json_t *rows = read_gz_lines(FIX "/encode.jsonl.gz");
    if (!rows || !toks[0]) return;
    int bad = 0, n_rows = (int)json_array_size(rows);
#pragma omp parallel num_threads(2) reduction(+ : bad)
    {
        int *ids = NULL;
        size_t cap = 0;
#pragma omp for schedule(dynamic, 7)
        for (int i = 0; i < n_rows; i++) {
            json_t *r = json_array_get(rows, (size_t)i), *text = json_object_get(r, "text");
            Tokenizer *t = tok_by_name(json_string_value(json_object_get(r, "tok")));
            SeerErr err;
            int n = t ? tokenizer_encode(t, json_string_value(text), json_string_length(text), &ids, &cap, &err) : 0;
            if (t && (n < 0 || !ids_equal(ids, n, json_object_get(r, "ids")))) bad++;
        }
        free(ids);
    }
    CHECK(bad == 0);
    json_decref(rows);
}

// Runs `seer tokenize ARGS` in a child with stdin from `input`; returns the exit status and fills
// out / errout (malloc'd).
static int run_tokenize(const char **args, int nargs, const char *input, char **out, char **errout) {
    char in_path[] = "/tmp/seer_in_XXXXXX", out_path[] = "/tmp/seer_out_XXXXXX", err_path[] = "/tmp/seer_err_XXXXXX";
    int fi = mkstemp(in_path), fo = mkstemp(out_path), fe = mkstemp(err_path);
    if (write(fi, input, strlen(input)) != (ssize_t)strlen(input)) return -1;
    lseek(fi, 0, SEEK_SET);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fi, 0), dup2(fo, 1), dup2(fe, 2);
        char *argv[16] = {"tokenize"};
        for (int i = 0; i < nargs; i++) argv[i + 1] = (char *)args[i];
        int rc = cmd_tokenize(nargs + 1, argv);
        fflush(NULL);
        _exit(rc);  // no atexit work in the child (the parent's state is not the child's to check)
    }
    int status;
    waitpid(pid, &status, 0);
    char *bufs[2];
    int fds[2] = {fo, fe};
    for (int k = 0; k < 2; k++) {
        off_t n = lseek(fds[k], 0, SEEK_END);
        bufs[k] = xcalloc((size_t)n + 1, 1);
        if (pread(fds[k], bufs[k], (size_t)n, 0) != n) bufs[k][0] = 0;
        close(fds[k]);
    }
    *out = bufs[0], *errout = bufs[1];
    close(fi);
    unlink(in_path), unlink(out_path), unlink(err_path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_cli(void) {
    char qwen[1200], tb[1200], *out, *err;
    snprintf(qwen, sizeof qwen, "%s", QWEN3_DIR);
    snprintf(tb, sizeof tb, "%s", TESTBED_DIR "/tokenizer.json");
    const char *enc[] = {"--tokenizer", tb};
    CHECK(run_tokenize(enc, 2, "\"Hello\"\n\"\"\n\"a<|im_end|>\"\n", &out, &err) == 0);
    CHECK(!strcmp(out, "[39,534,1368]\n[]\n[64,1585]\n"));
    free(out), free(err);
    // A bad line stops the run and is named; earlier lines are already out.
    CHECK(run_tokenize(enc, 2, "\"Hello\"\n{\"text\": 1}\n\"never\"\n", &out, &err) == 1);
    CHECK(!strcmp(out, "[39,534,1368]\n") && strstr(err, "seer: stdin:2: ") && !strchr(strchr(err, '\n') + 1, '\n'));
    free(out), free(err);
    CHECK(run_tokenize(enc, 2, "\"ok\"\nnot json\n", &out, &err) == 1 && strstr(err, "stdin:2: invalid JSON"));
    free(out), free(err);
    CHECK(run_tokenize(enc, 2, "\"bad \xff utf8\"\n", &out, &err) == 1 && strstr(err, "stdin:1:"));
    free(out), free(err);
    CHECK(run_tokenize(enc, 2, "{\"messages\": [{\"role\": \"robot\", \"content\": \"x\"}]}\n", &out, &err) == 1 &&
          strstr(err, "stdin:1:") && strstr(err, "robot"));
    free(out), free(err);
    const char *dec[] = {"--tokenizer", tb, "--decode"};
    CHECK(run_tokenize(dec, 3, "[39,534,1368,11,379,81,1479,0]\n[]\n[1585]\n", &out, &err) == 0);
    CHECK(!strcmp(out, "\"Hello, world!\"\n\"\"\n\"<|im_end|>\"\n"));
    free(out), free(err);
    CHECK(run_tokenize(dec, 3, "[1,2]\n[1588]\n", &out, &err) == 1 && strstr(err, "stdin:2:") &&
          strstr(err, "[0, 1588)"));
    free(out), free(err);
    // Chat messages through the real Qwen3 files, generation prompt with thinking off.
    const char *msg = "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}\n";
    const char *gen[] = {"--tokenizer", qwen, "--generation-prompt", "--no-thinking"};
    CHECK(run_tokenize(gen, 4, msg, &out, &err) == 0);
    // <|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n
    CHECK(!strcmp(out, "[151644,872,198,6023,151645,198,151644,77091,198,151667,271,151668,271]\n"));
    free(out), free(err);
    const char *help[] = {"--help"};
    CHECK(run_tokenize(help, 1, "", &out, &err) == 0 && strstr(out, "usage: seer tokenize"));
    free(out), free(err);
    CHECK(run_tokenize(help, 0, "", &out, &err) == 2 && strstr(err, "--tokenizer PATH is required"));
    free(out), free(err);
    const char *missing[] = {"--tokenizer", "/nonexistent"};
    CHECK(run_tokenize(missing, 2, "", &out, &err) == 1 && strstr(err, "seer: /nonexistent"));
    free(out), free(err);
}

int main(void) {
    meta = json_load_file(FIX "/meta.json", 0, NULL);
    RUN(test_sha256);
    RUN(test_load);
    RUN(test_load_errors);
    RUN(test_invalid_utf8);
    RUN(test_encode_fixtures);
    RUN(test_decode_fixtures);
    RUN(test_chat_fixtures);
    RUN(test_chat_errors);
    RUN(test_chat_template_check);
    RUN(test_threads);
    RUN(test_cli);
    for (int k = 0; k < 4; k++) tokenizer_free(toks[k]);
    json_decref(meta);
    return test_summary();
}
