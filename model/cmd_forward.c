// cmd_forward.c: `seer forward`: load a Hugging Face checkpoint, run the CPU reference forward over
// token ids (or text, with the model's tokenizer.json) and print the most likely next tokens.
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/hf_config.h"
#include "common/commands.h"
#include "data/tokenizer.h"
#include "model/forward_cpu.h"

static void forward_usage(FILE *f) {
    fprintf(f,
            "usage: seer forward --model DIR (--ids \"1 2 3\" | --text \"...\") [--docs \"2 1\"] [--top K]\n\n"
            "Runs the exact fp32 CPU forward of a Hugging Face model (Qwen3, Qwen2, Llama) and prints\n"
            "the top next tokens (id, logit, probability) after the last token of every document.\n\n"
            "  --model DIR   folder with config.json and model.safetensors (or a sharded index)\n"
            "  --ids LIST    token ids, separated by spaces or commas\n"
            "  --text STR    text to encode with DIR/tokenizer.json (instead of --ids)\n"
            "  --docs LIST   document lengths of a packed input (sum = number of tokens); positions\n"
            "                restart and attention stays inside each document (default: one document)\n"
            "  --top K       how many tokens to print per document (default 5)\n");
}

// Parses integers separated by spaces / commas into a malloc'd array. -1 with err on a bad entry.
static int parse_int_list(const char *s, const char *flag, int **out, int *n, SeerErr *err) {
    int cap = 16, *v = xmalloc(sizeof(int) * cap);
    *n = 0;
    while (*s) {
        if (*s == ' ' || *s == ',' || *s == '\t' || *s == '\n') { s++; continue; }
        char *end;
        errno = 0;
        long x = strtol(s, &end, 10);
        if (end == s || errno || x < INT_MIN || x > INT_MAX ||
            (*end && *end != ' ' && *end != ',' && *end != '\t' && *end != '\n')) {
            int len = (int)strcspn(s, " ,\t\n");
            free(v);
            return seer_fail(err, "%s: '%.*s' is not an integer (entry %d)", flag, len < 40 ? len : 40, s,
                             *n);
        }
        if (*n == cap) v = xrealloc(v, sizeof(int) * (cap *= 2));
        v[(*n)++] = (int)x;
        s = end;
    }
    if (*n == 0) {
        free(v);
        return seer_fail(err, "%s: empty list", flag);
    }
    *out = v;
    return 0;
}

// Encodes text with DIR/tokenizer.json; the tokenizer is returned for printing tokens (NULL on error).
static Tokenizer *encode_text(const char *dir, const char *text, int **ids, int *T, SeerErr *err) {
    Tokenizer *tok = tokenizer_load(dir, err);
    if (!tok) return NULL;
    size_t cap = 0;
    *ids = NULL;
    int n = tokenizer_encode(tok, text, strlen(text), ids, &cap, err);
    if (n <= 0) {
        if (n == 0) seer_fail(err, "--text: encodes to no tokens");
        free(*ids);
        tokenizer_free(tok);
        return NULL;
    }
    *T = n;
    return tok;
}

// Prints the top-k tokens of one logits row [V] with softmax probabilities.
static void print_top(const float *row, int V, int k, const Tokenizer *tok) {
    float mx = row[0];
    for (int i = 1; i < V; i++) mx = row[i] > mx ? row[i] : mx;
    double sum = 0;
    for (int i = 0; i < V; i++) sum += exp((double)row[i] - mx);
    int *best = xmalloc(sizeof(int) * k);
    for (int r = 0; r < k; r++) {  // k passes of selection: fine for small k
        int b = -1;
        for (int i = 0; i < V; i++) {
            int taken = 0;
            for (int j = 0; j < r && !taken; j++) taken = best[j] == i;
            if (!taken && (b < 0 || row[i] > row[b])) b = i;
        }
        best[r] = b;
        printf("  %2d  id %-7d logit %9.4f  prob %.6f", r + 1, b, row[b], exp((double)row[b] - mx) / sum);
        if (tok) {
            size_t len;
            char *s = tokenizer_decode(tok, &b, 1, &len);
            printf("  \"");
            for (size_t c = 0; c < len; c++)
                if ((unsigned char)s[c] < 32 || s[c] == '"' || s[c] == '\\') printf("\\x%02x", (unsigned char)s[c]);
                else putchar(s[c]);
            printf("\"");
            free(s);
        }
        printf("\n");
    }
    free(best);
}

typedef struct {
    const char *model, *ids, *text, *docs;
    int top;
} ForwardArgs;

// Returns 0 on success, 1 to stop with an error already printed, 2 for usage, 3 after --help.
static int forward_parse_args(int argc, char **argv, ForwardArgs *a) {
    *a = (ForwardArgs){.top = 5};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--help") || !strcmp(o, "-h")) { forward_usage(stdout); return 3; }
        if (i + 1 >= argc) { fprintf(stderr, "seer: forward: %s needs a value\n", o); return 2; }
        const char *v = argv[++i];
        if (!strcmp(o, "--model")) a->model = v;
        else if (!strcmp(o, "--ids")) a->ids = v;
        else if (!strcmp(o, "--text")) a->text = v;
        else if (!strcmp(o, "--docs")) a->docs = v;
        else if (!strcmp(o, "--top")) {
            char *end;
            long k = strtol(v, &end, 10);
            if (*end || k < 1 || k > 1000) {
                fprintf(stderr, "seer: forward: --top must be an integer in [1, 1000], got '%s'\n", v);
                return 1;
            }
            a->top = (int)k;
        } else { fprintf(stderr, "seer: forward: unknown option '%s'\n", o); forward_usage(stderr); return 2; }
    }
    if (!a->model || (!a->ids == !a->text)) {
        fprintf(stderr, "seer: forward: needs --model and exactly one of --ids / --text\n");
        forward_usage(stderr);
        return 2;
    }
    return 0;
}

// Loads the tokenizer for printing when DIR/tokenizer.json exists (silently none otherwise).
static Tokenizer *optional_tokenizer(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    if (access(path, R_OK) != 0) return NULL;
    SeerErr err;
    return tokenizer_load(dir, &err);
}

// Prints the header and the top tokens of every document.
static void print_report(const ForwardArgs *a, const Model *m, const int *ids, int T, const int *docs,
                         int n_docs, const float *logits, double ms, const Tokenizer *tok) {
    const ModelConfig *c = &m->cfg;
    printf("%s: %s, L=%d D=%d H=%d HKV=%d HD=%d F=%d V=%d, %s weights\n", a->model, hf_arch_name(c->arch),
           c->L, c->D, c->H, c->HKV, c->HD, c->F, c->V, dtype_name(m->w.embed.dtype));
    printf("%d tokens in %d document%s, CPU forward %.1f ms\n", T, n_docs, n_docs > 1 ? "s" : "", ms);
    int end = 0, k = a->top < c->V ? a->top : c->V;
    for (int d = 0; d < n_docs; d++) {
        end += docs[d];
        printf("document %d (%d tokens), after token %d:\n", d, docs[d], ids[end - 1]);
        print_top(logits + (size_t)d * c->V, c->V, k, tok);
    }
}

// Everything after argument parsing; -1 with err on any failure (bad ids, docs, model, forward).
static int forward_run(const ForwardArgs *a, SeerErr *err) {
    int *ids = NULL, *docs = NULL, T = 0, n_docs = 1, rc = -1, loaded = 0;
    Tokenizer *tok = NULL;
    float *logits = NULL;
    Model m;
    if (a->text ? !(tok = encode_text(a->model, a->text, &ids, &T, err))
                : parse_int_list(a->ids, "--ids", &ids, &T, err) != 0)
        goto done;
    if (a->docs) {
        if (parse_int_list(a->docs, "--docs", &docs, &n_docs, err)) goto done;
    } else {
        docs = xmalloc(sizeof(int));
        docs[0] = T;
    }
    if (model_load(&m, a->model, err)) goto done;
    loaded = 1;
    if (!tok) tok = optional_tokenizer(a->model);
    logits = xmalloc(sizeof(float) * n_docs * m.cfg.V);
    double t0 = seer_now();
    if (forward_cpu(&m, ids, T, docs, n_docs, logits, FORWARD_LOGITS_DOC_LAST, NULL, err)) goto done;
    print_report(a, &m, ids, T, docs, n_docs, logits, 1e3 * (seer_now() - t0), tok);
    rc = 0;
done:
    free(logits);
    if (loaded) model_free(&m);
    if (tok) tokenizer_free(tok);
    free(ids), free(docs);
    return rc;
}

int cmd_forward(int argc, char **argv) {
    ForwardArgs a;
    int rc = forward_parse_args(argc, argv, &a);
    if (rc) return rc == 3 ? 0 : rc;
    SeerErr err = {{0}};
    if (forward_run(&a, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
