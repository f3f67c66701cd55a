// cmd_data.c: `seer data`: JSONL -> chat template -> tokens -> best-fit-decreasing chunks -> HDF5.
//
// Rows are read in batches; each batch is rendered and tokenised on all cores (OpenMP, one row per
// task) and then collected in file order, so the output never depends on the thread count.
// All kept documents stay in memory (4 bytes a token) until packing, then chunks are written in
// the seeded shuffled order to a temp file that is renamed into place when complete.
#include <errno.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/commands.h"
#include "common/progress.h"
#include "data/chat_template.h"
#include "data/jsonl.h"
#include "data/pack.h"
#include "data/shard.h"
#include "data/tokenizer.h"

#define DATA_BATCH_ROWS 1024
#define DATA_BATCH_BYTES (64 << 20)
#define DATA_SHOW_BAD 10  // bad rows printed; the rest are only counted

static const char *const skip_words[SHARD_SKIP_N] = {
    "malformed JSON", "missing field", "invalid UTF-8", "empty document", "too long",
};

typedef struct {
    const char *tokenizer, *out, *long_policy;
    const char **inputs;  // [n_inputs]
    int n_inputs, max_len, strict, threads;
    uint64_t seed;
} DataOpts;

// Every kept document, in input order.
typedef struct {
    int32_t *ids;      // [n_tokens]
    int64_t n_tokens, cap_tokens;
    int64_t *doc_off;  // [n_docs + 1] into ids
    int n_docs, cap_docs;
} DocStore;

// Counts that end up in the summary and the shard's attributes.
typedef struct {
    int64_t *source_rows, *source_docs;  // [n_inputs]
    int64_t skipped[SHARD_SKIP_N], cropped, bad_shown, bad_total;
} DataCounts;

// One input line of the current batch and what became of it.
typedef struct {
    char *line;      // getline buffer, reused across batches
    size_t cap, len;
    int64_t lineno;
    int status;      // 0 kept, 1 blank, -1 skipped (why, err)
    ShardSkip why;
    int *ids;        // [n] tokens when kept
    int n;
    SeerErr err;
} Row;

static void data_usage(FILE *f) {
    fprintf(f,
            "usage: seer data --tokenizer PATH --input A.jsonl [B.jsonl ...] --out FILE.h5\n"
            "                 [--max-len 32768] [--seed S] [--long skip|crop] [--strict] [--threads N]\n\n"
            "Renders OpenR1-Math-style JSONL rows (\"messages\", or \"problem\"+\"solution\", or raw\n"
            "\"text\") with the chat template, tokenises them on all cores, packs the documents into\n"
            "chunks of at most --max-len tokens (best-fit-decreasing), shuffles the chunks with --seed\n"
            "and writes an HDF5 token shard (docs/FORMATS.md). The file appears only when complete.\n\n"
            "  --tokenizer PATH   tokenizer.json, or a model folder holding one\n"
            "  --input FILES      one or more JSONL files\n"
            "  --out FILE.h5      the shard to write\n"
            "  --max-len N        tokens per chunk (default 32768)\n"
            "  --seed S           chunk shuffle seed (default 0)\n"
            "  --long skip|crop   documents over --max-len: skip them (default, counted) or keep the\n"
            "                     first --max-len tokens\n"
            "  --strict           stop at the first bad row instead of skipping it\n"
            "  --threads N        tokeniser threads (default: all cores)\n");
}

// Fills o from argv; returns 0, 1 for --help, or -1 after printing the reason.
static int data_parse_args(int argc, char **argv, DataOpts *o) {
    *o = (DataOpts){.max_len = 32768, .long_policy = "skip"};
    o->inputs = xcalloc((size_t)argc, sizeof *o->inputs);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) return 1;
        if (!strcmp(a, "--strict")) { o->strict = 1; continue; }
        if (!strcmp(a, "--input")) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2)) o->inputs[o->n_inputs++] = argv[++i];
            continue;
        }
        if (!v) { fprintf(stderr, "seer: data: %s needs a value (seer data --help)\n", a); return -1; }
        i++;
        if (!strcmp(a, "--tokenizer")) o->tokenizer = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--max-len") && !parse_long(v, 1, 1 << 30, &n)) o->max_len = (int)n;
        else if (!strcmp(a, "--threads") && !parse_long(v, 1, 4096, &n)) o->threads = (int)n;
        else if (!strcmp(a, "--long") && (!strcmp(v, "skip") || !strcmp(v, "crop"))) o->long_policy = v;
        else if (!strcmp(a, "--seed")) {
            char *end;
            errno = 0;
            o->seed = strtoull(v, &end, 10);
            if (errno || end == v || *end || v[0] == '-') {
                fprintf(stderr, "seer: data: --seed wants a non-negative integer, got '%s'\n", v);
                return -1;
            }
        } else {
            fprintf(stderr, "seer: data: bad option or value: %s %s (seer data --help)\n", a, v);
            return -1;
        }
    }
    if (!o->tokenizer || !o->out || !o->n_inputs) {
        fprintf(stderr, "seer: data: --tokenizer, --input and --out are required (seer data --help)\n");
        return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- reading and tokenising

static void row_process(const Tokenizer *tok, Row *r) {
    r->status = 0;
    r->n = 0;
    free(r->ids);
    r->ids = NULL;
    if (jsonl_is_blank(r->line, r->len)) { r->status = 1; return; }
    char *text;
    size_t text_len, cap = 0;
    if (jsonl_row_text(r->line, r->len, &text, &text_len, &r->why, &r->err)) { r->status = -1; return; }
    r->n = tokenizer_encode(tok, text, text_len, &r->ids, &cap, &r->err);
    free(text);
    if (r->n < 0) { r->status = -1; r->why = SHARD_SKIP_UTF8; return; }
    if (r->n == 0) {
        seer_fail(&r->err, "the document has no tokens");
        r->status = -1;
        r->why = SHARD_SKIP_EMPTY;
    }
}

// Reads up to DATA_BATCH_ROWS lines (or DATA_BATCH_BYTES); returns the count, *bytes the bytes read.
static int batch_read(FILE *f, Row *rows, int64_t *lineno, int64_t *bytes) {
    int n = 0;
    int64_t total = 0;
    while (n < DATA_BATCH_ROWS && total < DATA_BATCH_BYTES) {
        Row *r = &rows[n];
        ssize_t got = getline(&r->line, &r->cap, f);
        if (got < 0) break;
        total += got;
        while (got > 0 && (r->line[got - 1] == '\n' || r->line[got - 1] == '\r')) got--;
        r->len = (size_t)got;
        r->lineno = ++*lineno;
        n++;
    }
    *bytes = total;
    return n;
}

static void store_append(DocStore *s, const int *ids, int n) {
    if (s->n_tokens + n > s->cap_tokens) {
        while (s->n_tokens + n > s->cap_tokens) s->cap_tokens = s->cap_tokens ? 2 * s->cap_tokens : 1 << 20;
        s->ids = xrealloc(s->ids, (size_t)s->cap_tokens * sizeof *s->ids);
    }
    if (s->n_docs == s->cap_docs) {
        s->cap_docs = s->cap_docs ? 2 * s->cap_docs : 1024;
        s->doc_off = xrealloc(s->doc_off, ((size_t)s->cap_docs + 1) * sizeof *s->doc_off);
        if (s->n_docs == 0) s->doc_off[0] = 0;
    }
    for (int i = 0; i < n; i++) s->ids[s->n_tokens + i] = ids[i];
    s->n_tokens += n;
    s->doc_off[++s->n_docs] = s->n_tokens;
}

// Counts, reports and keeps the rows of one batch in file order. Returns -1 on a --strict stop.
static int batch_collect(const DataOpts *o, int src, Row *rows, int n, DocStore *s, DataCounts *c) {
    for (int i = 0; i < n; i++) {
        Row *r = &rows[i];
        if (r->status == 1) continue;
        c->source_rows[src]++;
        if (r->status == 0 && r->n > o->max_len) {
            if (!strcmp(o->long_policy, "skip")) {
                c->skipped[SHARD_SKIP_LONG]++;
                continue;
            }
            r->n = o->max_len;
            c->cropped++;
        }
        if (r->status == 0) {
            store_append(s, r->ids, r->n);
            c->source_docs[src]++;
            continue;
        }
        c->skipped[r->why]++;
        c->bad_total++;
        if (o->strict) {
            fprintf(stderr, "seer: %s:%lld: %s: %s (--strict)\n", o->inputs[src], (long long)r->lineno,
                    skip_words[r->why], r->err.msg);
            return -1;
        }
        if (c->bad_shown < DATA_SHOW_BAD) {
            c->bad_shown++;
            fprintf(stderr, "seer: warning: %s:%lld: %s: %s (skipped)\n", o->inputs[src],
                    (long long)r->lineno, skip_words[r->why], r->err.msg);
        }
    }
    return 0;
}

// Reads, tokenises and collects every row of every input.
static int data_tokenize_all(const DataOpts *o, const Tokenizer *tok, DocStore *s, DataCounts *c,
                             int64_t total_bytes) {
    Row *rows = xcalloc(DATA_BATCH_ROWS, sizeof *rows);
    Progress p;
    progress_start(&p, "tokenize", (total_bytes + 1023) >> 10, "KiB");
    int64_t done = 0;
    int rc = 0;
    for (int src = 0; src < o->n_inputs && !rc; src++) {
        FILE *f = fopen(o->inputs[src], "rb");
        if (!f) {
            fprintf(stderr, "seer: %s: cannot open: %s\n", o->inputs[src], strerror(errno));
            rc = -1;
            break;
        }
        int64_t lineno = 0, bytes;
        int n;
        while (!rc && (n = batch_read(f, rows, &lineno, &bytes)) > 0) {
#pragma omp parallel for schedule(dynamic, 1)
            for (int i = 0; i < n; i++) row_process(tok, &rows[i]);
            rc = batch_collect(o, src, rows, n, s, c);
            done += bytes;
            progress_update(&p, (done + 1023) >> 10);
        }
        if (!rc && ferror(f)) {
            fprintf(stderr, "seer: %s: cannot read: %s\n", o->inputs[src], strerror(errno));
            rc = -1;
        }
        fclose(f);
    }
    progress_finish(&p);
    if (c->bad_total > c->bad_shown)
        fprintf(stderr, "seer: warning: %lld more bad rows not shown\n",
                (long long)(c->bad_total - c->bad_shown));
    for (int i = 0; i < DATA_BATCH_ROWS; i++) {
        free(rows[i].line);
        free(rows[i].ids);
    }
    free(rows);
    return rc;
}

// ---------------------------------------------------------------- packing and writing

static int data_write_chunks(const DataOpts *o, const DocStore *s, const PackPlan *plan,
                             ShardWriter *w, SeerErr *err) {
    int64_t *order = xmalloc(((size_t)plan->n_chunks + 1) * sizeof *order);  // [n_chunks]
    pack_permutation(plan->n_chunks, o->seed, order);
    int32_t *ids = xmalloc((size_t)o->max_len * sizeof *ids);   // [max_len]
    int32_t *lens = xmalloc((size_t)o->max_len * sizeof *lens);  // [max_len] >= docs in a chunk
    Progress p;
    progress_start(&p, "write", plan->n_chunks, "chunks");
    int rc = 0;
    for (int k = 0; k < plan->n_chunks && !rc; k++) {
        int c = (int)order[k], n = 0, nd = 0;
        for (int j = plan->chunk_start[c]; j < plan->chunk_start[c + 1]; j++) {
            int d = plan->doc[j];
            int len = (int)(s->doc_off[d + 1] - s->doc_off[d]);
            memcpy(ids + n, s->ids + s->doc_off[d], (size_t)len * sizeof *ids);
            n += len;
            lens[nd++] = len;
        }
        rc = shard_writer_add_chunk(w, ids, n, lens, nd, err);
        progress_update(&p, k + 1);
    }
    progress_finish(&p);
    free(order);
    free(ids);
    free(lens);
    return rc;
}

static void data_summary(const DataOpts *o, const DocStore *s, const PackPlan *plan,
                         const DataCounts *c, double t_tok, double t_all) {
    int64_t skipped = 0;
    for (int k = 0; k < SHARD_SKIP_N; k++) skipped += c->skipped[k];
    printf("seer data: wrote %s\n", o->out);
    printf("  documents   %d from %d file(s)\n", s->n_docs, o->n_inputs);
    printf("  tokens      %lld\n", (long long)s->n_tokens);
    printf("  chunks      %d of at most %d tokens, packing efficiency %.2f%%\n", plan->n_chunks,
           o->max_len, 100.0 * (double)s->n_tokens / ((double)plan->n_chunks * o->max_len));
    printf("  skipped     %lld:", (long long)skipped);
    for (int k = 0; k < SHARD_SKIP_N; k++) printf(" %s %lld%s", skip_words[k], (long long)c->skipped[k],
                                                  k + 1 < SHARD_SKIP_N ? "," : "\n");
    if (c->cropped) printf("  cropped     %lld to %d tokens\n", (long long)c->cropped, o->max_len);
    printf("  time        %.2f s (read + render + tokenise %.2f s: %.0f tokens/s on %d threads)\n",
           t_all, t_tok, (double)s->n_tokens / (t_tok > 0 ? t_tok : 1e-9), omp_get_max_threads());
}

// Packs, shuffles, writes and publishes the shard; prints the summary.
static int data_pack_write(const DataOpts *o, const Tokenizer *tok, const DocStore *s,
                           DataCounts *c, ShardWriter *w, double t0, double t_tok) {
    SeerErr err;
    PackPlan plan;
    int *lens = xmalloc(((size_t)s->n_docs + 1) * sizeof *lens);  // [n_docs]
    for (int d = 0; d < s->n_docs; d++) lens[d] = (int)(s->doc_off[d + 1] - s->doc_off[d]);
    int rc = pack_bfd(lens, s->n_docs, o->max_len, &plan, &err);
    free(lens);
    if (rc) { shard_writer_abort(w); fprintf(stderr, "seer: %s\n", err.msg); return -1; }
    if (data_write_chunks(o, s, &plan, w, &err)) {
        shard_writer_abort(w);
        fprintf(stderr, "seer: %s\n", err.msg);
        pack_plan_free(&plan);
        return -1;
    }
    ShardMeta m = {.tokenizer_hash = tokenizer_hash(tok), .max_len = o->max_len, .seed = o->seed,
                   .long_policy = o->long_policy, .n_sources = o->n_inputs, .source_files = o->inputs,
                   .source_rows = c->source_rows, .source_docs = c->source_docs, .cropped = c->cropped};
    memcpy(m.skipped, c->skipped, sizeof m.skipped);
    rc = shard_writer_finish(w, &m, &err);
    if (rc) fprintf(stderr, "seer: %s\n", err.msg);
    else data_summary(o, s, &plan, c, t_tok, seer_now() - t0);
    pack_plan_free(&plan);
    return rc;
}

// Sum of the input sizes, after checking each can be opened (one clear error otherwise).
static int64_t data_check_inputs(const DataOpts *o) {
    int64_t total = 0;
    for (int i = 0; i < o->n_inputs; i++) {
        FILE *f = fopen(o->inputs[i], "rb");
        struct stat st;
        if (!f || fstat(fileno(f), &st) || S_ISDIR(st.st_mode)) {
            fprintf(stderr, "seer: %s: cannot read: %s\n", o->inputs[i], f ? "it is a folder" : strerror(errno));
            if (f) fclose(f);
            return -1;
        }
        fclose(f);
        total += st.st_size;
    }
    return total;
}

int cmd_data(int argc, char **argv) {
    DataOpts o;
    int a = data_parse_args(argc, argv, &o);
    if (a) {
        if (a > 0) data_usage(stdout);
        free(o.inputs);
        return a > 0 ? 0 : 2;
    }
    if (o.threads) omp_set_num_threads(o.threads);
    double t0 = seer_now();
    int64_t total_bytes = data_check_inputs(&o);
    SeerErr err;
    Tokenizer *tok = total_bytes < 0 ? NULL : tokenizer_load(o.tokenizer, &err);
    if (tok && chat_template_check(o.tokenizer, &err)) {  // a template we would not render exactly
        tokenizer_free(tok);
        tok = NULL;
    }
    if (total_bytes >= 0 && !tok) fprintf(stderr, "seer: %s\n", err.msg);
    ShardWriter *w = tok ? shard_writer_create(o.out, &err) : NULL;
    if (tok && !w) fprintf(stderr, "seer: %s\n", err.msg);
    DocStore s = {0};
    DataCounts c = {.source_rows = xcalloc((size_t)o.n_inputs, sizeof(int64_t)),
                    .source_docs = xcalloc((size_t)o.n_inputs, sizeof(int64_t))};
    double t1 = seer_now();
    int rc = w ? data_tokenize_all(&o, tok, &s, &c, total_bytes) : -1;
    double t_tok = seer_now() - t1;
    if (!rc && s.n_docs == 0) {
        int64_t skipped = 0;
        for (int k = 0; k < SHARD_SKIP_N; k++) skipped += c.skipped[k];
        fprintf(stderr, "seer: no documents to write (%lld rows skipped)\n", (long long)skipped);
        rc = -1;
    }
    if (!rc) rc = data_pack_write(&o, tok, &s, &c, w, t0, t_tok);
    else shard_writer_abort(w);
    tokenizer_free(tok);
    free(s.ids);
    free(s.doc_off);
    free(c.source_rows);
    free(c.source_docs);
    free(o.inputs);
    return rc ? 1 : 0;
}
