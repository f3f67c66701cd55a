// bench_tokenize.c: `seer bench tokenize`: single-thread tokenizer throughput in MB/s of UTF-8 text.
//
// Reads a JSON-lines corpus (one JSON string per line), then encodes every text once per pass on one
// thread. The first pass starts with an empty word cache (cold); the best pass is reported too.
// bench/tokenize_hf.py times Hugging Face `tokenizers` on the same file the same way.
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "data/tokenizer.h"

typedef struct {
    char **text;   // [n]
    size_t *len;   // [n]
    int n;
    size_t bytes;  // sum of len
} Corpus;

static void bench_tokenize_usage(FILE *f) {
    fprintf(f, "usage: seer bench tokenize --tokenizer PATH --input FILE.jsonl [--repeat N]\n\n"
               "Encodes every line of FILE.jsonl (each a JSON string) on one thread, N passes (default 5),\n"
               "and prints MB/s (1 MB = 1e6 bytes of UTF-8 input) for the first (cold cache) and best pass.\n"
               "Compare with: python3 bench/tokenize_hf.py --tokenizer PATH --input FILE.jsonl\n");
}

static int corpus_read(const char *path, Corpus *c, SeerErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return seer_fail(err, "%s: cannot open", path);
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t got;
    memset(c, 0, sizeof *c);
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        json_t *v = json_loadb(line, (size_t)got, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (!json_is_string(v)) {
            json_decref(v);
            free(line);
            fclose(f);
            return seer_fail(err, "%s:%zu: not a JSON string", path, lineno);
        }
        c->text = xrealloc(c->text, (size_t)(c->n + 1) * sizeof *c->text);
        c->len = xrealloc(c->len, (size_t)(c->n + 1) * sizeof *c->len);
        c->len[c->n] = json_string_length(v);
        c->text[c->n] = memcpy(xmalloc(c->len[c->n] + 1), json_string_value(v), c->len[c->n] + 1);
        c->bytes += c->len[c->n++];
        json_decref(v);
    }
    free(line);
    fclose(f);
    return 0;
}

int bench_tokenize_main(int argc, char **argv) {
    const char *tok_path = NULL, *input = NULL;
    int repeat = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            bench_tokenize_usage(stdout);
            return 0;
        } else if (!strcmp(argv[i], "--tokenizer") && i + 1 < argc) tok_path = argv[++i];
        else if (!strcmp(argv[i], "--input") && i + 1 < argc) input = argv[++i];
        else if (!strcmp(argv[i], "--repeat") && i + 1 < argc) {
            repeat = (int)bench_flag_int("--repeat", argv[i + 1], 1, 1000000);
            i++;
        }
        else {
            fprintf(stderr, "seer: bench tokenize: unknown or incomplete option '%s'\n", argv[i]);
            bench_tokenize_usage(stderr);
            return 2;
        }
    }
    if (!tok_path || !input || repeat < 1) {
        bench_tokenize_usage(stderr);
        return 2;
    }
    SeerErr err;
    Corpus c;
    double t0 = seer_now();
    Tokenizer *tok = tokenizer_load(tok_path, &err);
    double t_load = seer_now() - t0;
    if (!tok || corpus_read(input, &c, &err) < 0) {
        fprintf(stderr, "seer: %s\n", err.msg);
        tokenizer_free(tok);
        return 1;
    }
    int *ids = NULL;
    size_t cap = 0;
    long long tokens = 0;
    double first = 0, best = 1e30;
    for (int r = 0; r < repeat; r++) {
        tokens = 0;
        double t = seer_now();
        for (int i = 0; i < c.n; i++) {
            int n = tokenizer_encode(tok, c.text[i], c.len[i], &ids, &cap, &err);
            if (n < 0) seer_die("%s:%d: %s", input, i + 1, err.msg);
            tokens += n;
        }
        t = seer_now() - t;
        if (r == 0) first = t;
        if (t < best) best = t;
    }
    printf("seer tokenize: %d texts, %.3f MB, %lld tokens, load %.2f s\n", c.n, c.bytes / 1e6, tokens, t_load);
    printf("seer tokenize: first pass %.1f MB/s (%.3f s), best of %d %.1f MB/s (%.3f s), %.2f Mtok/s\n",
           c.bytes / 1e6 / first, first, repeat, c.bytes / 1e6 / best, best, tokens / 1e6 / best);
    for (int i = 0; i < c.n; i++) free(c.text[i]);
    free(c.text);
    free(c.len);
    free(ids);
    tokenizer_free(tok);
    return 0;
}
