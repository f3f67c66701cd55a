// test_data.c: packing, token shards (write, read, cursor, refusals) and `seer data` end to end.
#include <fcntl.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/commands.h"
#include "data/jsonl.h"
#include "data/pack.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "tests/test.h"


static int file_exists(const char *p) { return access(p, F_OK) == 0; }

static uint64_t rng_state = 12345;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(rng_state >> 33);
}

// ---------------------------------------------------------------- packing

// The plan's chunk of every document, checking each appears exactly once and no chunk overflows.
static void check_plan(const PackPlan *p, const int *len, int n, int max_len, int *chunk_of) {
    CHECK(p->n_docs == n);
    int *seen = calloc((size_t)n + 1, sizeof *seen);
    for (int c = 0; c < p->n_chunks; c++) {
        int64_t sum = 0;
        CHECK(p->chunk_start[c + 1] > p->chunk_start[c]);
        for (int k = p->chunk_start[c]; k < p->chunk_start[c + 1]; k++) {
            int d = p->doc[k];
            CHECK(d >= 0 && d < n);
            if (d < 0 || d >= n) continue;
            seen[d]++;
            chunk_of[d] = c;
            sum += len[d];
        }
        CHECK(sum == p->chunk_tokens[c]);
        CHECK(sum <= max_len);
    }
    for (int d = 0; d < n; d++) CHECK(seen[d] == 1);
    free(seen);
}

static void test_pack_known_case(void) {
    // Decreasing: 8(5) 7(1) 5(2) 5(3) 3(0) 2(4) 1(6). 8 opens c0 (room 2), 7 opens c1 (room 3),
    // 5 opens c2 (room 5), 5 fills c2, 3 fills c1, 2 fills c0, 1 opens c3.
    int len[] = {3, 7, 5, 5, 2, 8, 1}, chunk_of[7];
    PackPlan p;
    SeerErr err;
    CHECK(pack_bfd(len, 7, 10, &p, &err) == 0);
    CHECK(p.n_chunks == 4);
    check_plan(&p, len, 7, 10, chunk_of);
    int want_chunk[] = {1, 1, 2, 2, 0, 0, 3};
    for (int d = 0; d < 7; d++) CHECK(chunk_of[d] == want_chunk[d]);
    CHECK(p.doc[0] == 5 && p.doc[1] == 4);  // placement order inside a chunk: longest first
    pack_plan_free(&p);

    // Ties in room go to the lowest chunk index: 4 4 2 2 2 into 6 -> c0 {0, 2}, c1 {1, 3}, c2 {4}.
    int len2[] = {4, 4, 2, 2, 2}, chunk2[5];
    CHECK(pack_bfd(len2, 5, 6, &p, &err) == 0);
    check_plan(&p, len2, 5, 6, chunk2);
    CHECK(p.n_chunks == 3 && chunk2[0] == 0 && chunk2[2] == 0 && chunk2[1] == 1 && chunk2[3] == 1 &&
          chunk2[4] == 2);
    pack_plan_free(&p);
}

// The same rule written the slow obvious way: scan every chunk for the least room that fits.
static void naive_bfd(const int *len, int n, int max_len, int *chunk_of, int *n_chunks) {
    int *order = malloc((size_t)n * sizeof *order), *room = malloc((size_t)n * sizeof *room), nc = 0;
    for (int i = 0; i < n; i++) order[i] = i;
    for (int i = 1; i < n; i++)  // insertion sort: decreasing length, then increasing index
        for (int j = i; j > 0 && len[order[j - 1]] < len[order[j]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (int k = 0; k < n; k++) {
        int d = order[k], best = -1;
        for (int c = 0; c < nc; c++)
            if (room[c] >= len[d] && (best < 0 || room[c] < room[best])) best = c;
        if (best < 0) room[best = nc++] = max_len;
        room[best] -= len[d];
        chunk_of[d] = best;
    }
    *n_chunks = nc;
    free(order);
    free(room);
}

static void test_pack_matches_naive_bfd(void) {
    int max_lens[] = {1, 7, 64, 1000};
    for (int t = 0; t < 4; t++) {
        int max_len = max_lens[t], n = 1500, nc_naive;
        int *len = malloc((size_t)n * sizeof *len), *a = malloc((size_t)n * sizeof *a);
        int *b = malloc((size_t)n * sizeof *b);
        int64_t total = 0;
        for (int i = 0; i < n; i++) {  // skewed: many short, some long, a few exactly max_len
            int r = (int)(rnd() % 100);
            len[i] = r < 5 ? max_len : r < 60 ? 1 + (int)(rnd() % (uint32_t)(max_len / 8 + 1))
                                               : 1 + (int)(rnd() % (uint32_t)max_len);
            if (len[i] > max_len) len[i] = max_len;
            total += len[i];
        }
        PackPlan p;
        SeerErr err;
        CHECK(pack_bfd(len, n, max_len, &p, &err) == 0);
        check_plan(&p, len, n, max_len, a);
        naive_bfd(len, n, max_len, b, &nc_naive);
        CHECK(p.n_chunks == nc_naive);
        CHECK(p.n_chunks >= (total + max_len - 1) / max_len);
        int same = 1;
        for (int i = 0; i < n; i++) same &= a[i] == b[i];
        CHECK(same);
        pack_plan_free(&p);
        free(len);
        free(a);
        free(b);
    }
}

static void test_pack_edges(void) {
    PackPlan p;
    SeerErr err;
    CHECK(pack_bfd(NULL, 0, 10, &p, &err) == 0 && p.n_chunks == 0);
    pack_plan_free(&p);
    int one[] = {10}, zero[] = {0}, big[] = {11};
    CHECK(pack_bfd(one, 1, 10, &p, &err) == 0 && p.n_chunks == 1 && p.chunk_tokens[0] == 10);
    pack_plan_free(&p);
    CHECK(pack_bfd(zero, 1, 10, &p, &err) == -1 && strstr(err.msg, "document 0"));
    CHECK(pack_bfd(big, 1, 10, &p, &err) == -1 && strstr(err.msg, "11 tokens"));
    CHECK(pack_bfd(one, 1, 0, &p, &err) == -1);
}

static void test_permutation(void) {
    int64_t a[257], b[257], c[257];
    pack_permutation(257, 42, a);
    pack_permutation(257, 42, b);
    pack_permutation(257, 43, c);
    int seen[257] = {0}, same = 1, diff = 0, moved = 0;
    for (int i = 0; i < 257; i++) {
        CHECK(a[i] >= 0 && a[i] < 257);
        if (a[i] >= 0 && a[i] < 257) seen[a[i]]++;
        same &= a[i] == b[i];
        diff += a[i] != c[i];
        moved += a[i] != i;
    }
    for (int i = 0; i < 257; i++) CHECK(seen[i] == 1);
    CHECK(same && diff > 200 && moved > 200);
    pack_permutation(0, 1, a);
    pack_permutation(1, 1, a);
    CHECK(a[0] == 0);
}

// ---------------------------------------------------------------- shards

// Writes `nc` chunks: chunk c has c % 3 + 1 documents; document tokens are (c * 1000 + k).
static int write_test_shard(const char *path, int nc, int max_len, const char *hash) {
    SeerErr err;
    ShardWriter *w = shard_writer_create(path, &err);
    if (!w) return -1;
    int32_t ids[256], lens[3];
    for (int c = 0; c < nc; c++) {
        int nd = c % 3 + 1, n = 0;
        for (int d = 0; d < nd; d++) {
            lens[d] = 1 + (c * 7 + d * 13) % (max_len / 3);
            for (int k = 0; k < lens[d]; k++, n++) ids[n] = c * 1000 + n;
        }
        if (shard_writer_add_chunk(w, ids, n, lens, nd, &err)) {
            shard_writer_abort(w);
            return -1;
        }
    }
    const char *files[] = {"a.jsonl", "b.jsonl"};
    int64_t rows[] = {10, 20}, docs[] = {9, 18};
    ShardMeta m = {.tokenizer_hash = hash, .max_len = max_len, .seed = 99, .long_policy = "skip",
                   .n_sources = 2, .source_files = files, .source_rows = rows, .source_docs = docs};
    m.skipped[SHARD_SKIP_JSON] = 2;
    m.skipped[SHARD_SKIP_LONG] = 1;
    return shard_writer_finish(w, &m, &err);
}

static void test_shard_roundtrip(void) {
    const char *path = test_tmp_path("rt.h5");
    CHECK(write_test_shard(path, 50, 96, "abc123") == 0);
    SeerErr err;
    ShardReader *r = shard_open(path, "abc123", &err);
    CHECK(r != NULL);
    if (!r) { fprintf(stderr, "    %s\n", err.msg); return; }
    CHECK(shard_n_chunks(r) == 50 && shard_max_len(r) == 96 && shard_seed(r) == 99);
    CHECK(!strcmp(shard_tokenizer_hash(r), "abc123"));
    int64_t docs = 0, toks = 0;
    for (int c = 0; c < 50; c++) {
        ShardChunk ch;
        CHECK(shard_read_chunk(r, c, &ch, &err) == 0);
        CHECK(ch.index == c && ch.n_docs == c % 3 + 1);
        int ok = 1, sum = 0;
        for (int k = 0; k < ch.n_tokens; k++) ok &= ch.ids[k] == c * 1000 + k;
        for (int d = 0; d < ch.n_docs; d++) {
            ok &= ch.doc_lens[d] == 1 + (c * 7 + d * 13) % 32;
            sum += ch.doc_lens[d];
        }
        CHECK(ok && sum == ch.n_tokens);
        docs += ch.n_docs;
        toks += ch.n_tokens;
    }
    CHECK(docs == shard_n_docs(r) && toks == shard_n_tokens(r));
    ShardChunk ch;
    CHECK(shard_read_chunk(r, 50, &ch, &err) == -1 && strstr(err.msg, "out of range"));
    shard_close(r);
    r = shard_open(path, NULL, &err);  // any tokenizer accepted
    CHECK(r != NULL);
    shard_close(r);
}

// Reads n chunk indices from the cursor.
static void take(ShardReader *r, ShardCursor *cur, int n, int64_t *out) {
    SeerErr err;
    for (int i = 0; i < n; i++) {
        ShardChunk ch;
        out[i] = shard_next(r, cur, &ch, &err) == 0 ? ch.index : -1;
    }
}

static void test_shard_cursor(void) {
    const char *path = test_tmp_path("cur.h5");
    CHECK(write_test_shard(path, 23, 96, "h") == 0);
    SeerErr err;
    ShardReader *r = shard_open(path, "h", &err), *r2 = shard_open(path, "h", &err);
    CHECK(r && r2);
    if (!r || !r2) return;
    CHECK(shard_split_heldout(r, 3, &err) == 0 && shard_n_train(r) == 20);
    CHECK(shard_split_heldout(r2, 3, &err) == 0);
    ShardCursor cur = {.seed = 5, .epoch = 0, .pos = 0};
    int64_t first[40], rest[30], again[30];
    take(r, &cur, 40, first);  // two whole epochs
    CHECK(cur.epoch == 2 && cur.pos == 0);
    for (int e = 0; e < 2; e++) {  // each epoch visits the 20 training chunks once
        int seen[23] = {0};
        for (int i = 0; i < 20; i++) if (first[e * 20 + i] >= 0) seen[first[e * 20 + i]]++;
        for (int c = 0; c < 20; c++) CHECK(seen[c] == 1);
        CHECK(seen[20] == 0 && seen[21] == 0 && seen[22] == 0);
    }
    int differ = 0;
    for (int i = 0; i < 20; i++) differ += first[i] != first[20 + i];
    CHECK(differ > 0);  // a new order every epoch
    take(r, &cur, 7, rest);
    ShardCursor saved = cur;  // a checkpoint here
    take(r, &cur, 30, rest);
    take(r2, &saved, 30, again);  // restored in a fresh reader
    for (int i = 0; i < 30; i++) CHECK(rest[i] == again[i] && rest[i] >= 0);
    CHECK(saved.epoch == cur.epoch && saved.pos == cur.pos);
    ShardCursor bad = {.seed = 5, .epoch = 0, .pos = 20};
    ShardChunk ch;
    CHECK(shard_next(r, &bad, &ch, &err) == -1 && strstr(err.msg, "cursor"));
    CHECK(shard_split_heldout(r, 23, &err) == -1);
    CHECK(shard_read_chunk(r, 22, &ch, &err) == 0);  // held-out chunks stay readable by index
    shard_close(r);
    shard_close(r2);
}

static void set_version(const char *path, int64_t v) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, "format_version", H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_INT64, &v);
    H5Aclose(a);
    H5Fclose(f);
}

static void test_shard_refusals(void) {
    const char *path = test_tmp_path("ref.h5");
    CHECK(write_test_shard(path, 4, 96, "tokA") == 0);
    SeerErr err;
    CHECK(shard_open(path, "tokB", &err) == NULL);
    CHECK(strstr(err.msg, "tokA") && strstr(err.msg, "tokB") && strstr(err.msg, path));
    set_version(path, 2);
    CHECK(shard_open(path, "tokA", &err) == NULL && strstr(err.msg, "version 2"));
    CHECK(shard_open(test_tmp_path("missing.h5"), NULL, &err) == NULL && strstr(err.msg, "missing.h5"));
    FILE *f = fopen(test_tmp_path("junk.h5"), "w");
    fputs("not hdf5\n", f);
    fclose(f);
    CHECK(shard_open(test_tmp_path("junk.h5"), NULL, &err) == NULL && strstr(err.msg, "not an HDF5"));
}

static void test_shard_atomic(void) {
    const char *path = test_tmp_path("atomic.h5");
    SeerErr err;
    ShardWriter *w = shard_writer_create(path, &err);
    CHECK(w != NULL);
    int32_t ids[5] = {1, 2, 3, 4, 5}, lens[2] = {2, 3};
    CHECK(shard_writer_add_chunk(w, ids, 5, lens, 2, &err) == 0);
    CHECK(!file_exists(path));  // nothing at the final name while writing
    CHECK(shard_writer_add_chunk(w, ids, 4, lens, 2, &err) == -1);  // lengths do not add up
    shard_writer_abort(w);
    CHECK(!file_exists(path));
    w = shard_writer_create(path, &err);
    CHECK(shard_writer_add_chunk(w, ids, 5, lens, 2, &err) == 0);
    ShardMeta m = {.tokenizer_hash = "x", .max_len = 4};  // the chunk of 5 does not fit
    CHECK(shard_writer_finish(w, &m, &err) == -1 && strstr(err.msg, "max_len 4"));
    CHECK(!file_exists(path));
    CHECK(shard_writer_create(test_tmp_path("no/such/dir/x.h5"), &err) == NULL && strstr(err.msg, "no/such/dir"));
    char cmd[128];  // no temp files left behind
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", test_tmpdir);
    CHECK(system(cmd) != 0);
}

// ---------------------------------------------------------------- seer data end to end

static const char *testbed_tokenizer(void) {
    return file_exists("data/testbed/model/tokenizer.json") ? "data/testbed/model/tokenizer.json"
                                                            : "../shared/testbed/model/tokenizer.json";
}

// Runs `seer data` with stdout and stderr captured into test_tmpdir/out.txt; returns its exit status.
static int run_data(char **argv) {
    int argc = 0;
    while (argv[argc]) argc++;
    fflush(stdout);
    fflush(stderr);
    int o = dup(1), e = dup(2), fd = open(test_tmp_path("out.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fd, 1);
    dup2(fd, 2);
    int rc = cmd_data(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(o, 1);
    dup2(e, 2);
    close(fd);
    close(o);
    close(e);
    return rc;
}

// The captured output of the last run_data (static buffer).
static const char *run_output(void) {
    static char buf[16384];
    FILE *f = fopen(test_tmp_path("out.txt"), "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = 0;
    if (f) fclose(f);
    return buf;
}

// Good rows (line numbers in comments) between bad ones; 30 "text" rows of varied length at the end.
static const char *write_jsonl(const char *name) {
    const char *path = test_tmp_path(name);
    FILE *f = fopen(path, "w");
    fputs("{\"answer\": \"4\", \"messages\": [{\"role\": \"user\", \"content\": \"What is 2+2?\"}, "
          "{\"role\": \"assistant\", \"content\": \"<think>\\nadd\\n</think>\\n\\n4\"}]}\n", f);  // 1
    fputs("\n", f);                                                                           // 2 blank
    fputs("{\"problem\": \"Find x.\", \"solution\": \"x = 1\"}\n", f);                           // 3
    fputs("{\"text\": \"plain text, no template\"}\n", f);                                     // 4
    fputs("{\"messages\": [ broken\n", f);                                                    // 5 JSON
    fputs("{\"problem\": \"no solution\"}\n", f);                                             // 6 field
    fputs("{\"text\": \"\"}\n", f);                                                           // 7 empty
    fputs("{\"text\": \"bad \xff byte\"}\n", f);                                              // 8 UTF-8
    fputs("{\"messages\": [{\"role\": \"robot\", \"content\": \"beep\"}]}\n", f);              // 9 field
    for (int i = 0; i < 30; i++) {                                                            // 10..39
        fprintf(f, "{\"text\": \"row %d:", i);
        for (int k = 0; k < 3 + (i * 37) % 60; k++) fprintf(f, " word%d", k);
        fputs("\"}\n", f);
    }
    fclose(f);
    return path;
}

// Expected token ids of every good row of the file, by rendering and encoding each line directly.
static int expected_docs(const Tokenizer *tok, const char *path, int **ids, int *lens, int max) {
    FILE *f = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    int n = 0;
    while ((got = getline(&line, &cap, f)) > 0 && n < max) {
        char *text;
        size_t len, icap = 0;
        ShardSkip why;
        SeerErr err;
        if (jsonl_is_blank(line, (size_t)got) || jsonl_row_text(line, (size_t)got - 1, &text, &len, &why, &err))
            continue;
        ids[n] = NULL;
        lens[n] = tokenizer_encode(tok, text, len, &ids[n], &icap, &err);
        free(text);
        n++;
    }
    free(line);
    fclose(f);
    return n;
}

// Every document of the shard equals exactly one expected document (each used once).
static void check_shard_docs(const char *path, const Tokenizer *tok, int **ids, int *lens, int n) {
    SeerErr err;
    ShardReader *r = shard_open(path, tokenizer_hash(tok), &err);
    CHECK(r != NULL);
    if (!r) { fprintf(stderr, "    %s\n", err.msg); return; }
    CHECK(shard_n_docs(r) == n);
    int *used = calloc((size_t)n, sizeof *used);
    for (int64_t c = 0; c < shard_n_chunks(r); c++) {
        ShardChunk ch;
        CHECK(shard_read_chunk(r, c, &ch, &err) == 0);
        int off = 0;
        for (int d = 0; d < ch.n_docs; d++) {
            int found = 0;
            for (int e = 0; e < n && !found; e++)
                if (!used[e] && lens[e] == ch.doc_lens[d] &&
                    !memcmp(ids[e], ch.ids + off, (size_t)lens[e] * sizeof(int)))
                    used[e] = found = 1;
            CHECK(found);
            off += ch.doc_lens[d];
        }
    }
    for (int e = 0; e < n; e++) CHECK(used[e]);
    free(used);
    shard_close(r);
}

static void test_data_end_to_end(void) {
    SeerErr err;
    Tokenizer *tok = tokenizer_load(testbed_tokenizer(), &err);
    CHECK(tok != NULL);
    if (!tok) { fprintf(stderr, "    %s\n", err.msg); return; }
    const char *in = write_jsonl("rows.jsonl"), *out = test_tmp_path("rows.h5");
    char *argv[] = {"data", "--tokenizer", (char *)testbed_tokenizer(), "--input", (char *)in,
                    "--out", (char *)out, "--max-len", "160", "--seed", "7", NULL};
    CHECK(run_data(argv) == 0);
    const char *log = run_output();
    CHECK(strstr(log, "rows.jsonl:5: malformed JSON"));
    CHECK(strstr(log, "rows.jsonl:6: missing field"));
    CHECK(strstr(log, "rows.jsonl:7: empty document"));
    CHECK(strstr(log, "rows.jsonl:8: invalid UTF-8"));
    CHECK(strstr(log, "rows.jsonl:9: missing field"));
    CHECK(!strstr(log, "rows.jsonl:2:"));  // a blank line is not a row
    CHECK(strstr(log, "packing efficiency"));
    int *ids[64], lens[64];
    int n = expected_docs(tok, in, ids, lens, 64);
    CHECK(n == 33);
    // the raw "text" row decodes back to itself; the chat rows went through the template
    size_t dl;
    char *dec = tokenizer_decode(tok, ids[2], lens[2], &dl);
    CHECK(!strcmp(dec, "plain text, no template"));
    free(dec);
    dec = tokenizer_decode(tok, ids[0], lens[0], &dl);
    CHECK(!strncmp(dec, "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", 60));
    free(dec);
    int keep = 0;  // documents over --max-len 160 were skipped
    for (int i = 0; i < n; i++) {
        if (lens[i] > 160) { free(ids[i]); continue; }
        ids[keep] = ids[i];
        lens[keep++] = lens[i];
    }
    CHECK(keep < n && strstr(log, "too long"));
    check_shard_docs(out, tok, ids, lens, keep);
    for (int i = 0; i < keep; i++) free(ids[i]);
    tokenizer_free(tok);
}

// Chunk order of a shard as a string of first ids, for comparing runs.
static void shard_signature(const char *path, char *sig, size_t n) {
    SeerErr err;
    ShardReader *r = shard_open(path, NULL, &err);
    sig[0] = 0;
    if (!r) return;
    for (int64_t c = 0; c < shard_n_chunks(r); c++) {
        ShardChunk ch;
        if (shard_read_chunk(r, c, &ch, &err)) break;
        size_t l = strlen(sig);
        snprintf(sig + l, n - l, "%d/%d/%d,", ch.n_tokens, ch.n_docs, ch.ids[ch.n_tokens - 1]);
    }
    shard_close(r);
}

static void test_data_deterministic(void) {
    const char *in = write_jsonl("det.jsonl"), *tk = testbed_tokenizer();
    char *a1[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)in, "--out",
                  (char *)test_tmp_path("d1.h5"), "--max-len", "100", "--long", "crop", "--seed", "3",
                  "--threads", "1", NULL};
    char *a2[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)in, "--out",
                  (char *)test_tmp_path("d2.h5"), "--max-len", "100", "--long", "crop", "--seed", "3",
                  "--threads", "2", NULL};
    char *a3[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)in, "--out",
                  (char *)test_tmp_path("d3.h5"), "--max-len", "100", "--long", "crop", "--seed", "4", NULL};
    CHECK(run_data(a1) == 0 && run_data(a2) == 0 && run_data(a3) == 0);
    CHECK(strstr(run_output(), "cropped"));
    static char s1[8192], s2[8192], s3[8192];
    shard_signature(test_tmp_path("d1.h5"), s1, sizeof s1);
    shard_signature(test_tmp_path("d2.h5"), s2, sizeof s2);
    shard_signature(test_tmp_path("d3.h5"), s3, sizeof s3);
    CHECK(s1[0] && !strcmp(s1, s2));  // thread count does not matter
    CHECK(strcmp(s1, s3) != 0);       // the seed does
}

static void test_data_failures(void) {
    const char *in = write_jsonl("fail.jsonl"), *tk = testbed_tokenizer(), *out = test_tmp_path("fail.h5");
    char *strict[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)in, "--out", (char *)out,
                      "--strict", NULL};
    CHECK(run_data(strict) != 0 && strstr(run_output(), "fail.jsonl:5: malformed JSON"));
    CHECK(!file_exists(out));
    char *missing[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)in,
                       (char *)test_tmp_path("nope.jsonl"), "--out", (char *)out, NULL};
    CHECK(run_data(missing) != 0 && strstr(run_output(), "seer: ") && strstr(run_output(), "nope.jsonl: cannot read: "));
    char *folder[] = {"data", "--tokenizer", (char *)tk, "--input", test_tmpdir, "--out", (char *)out, NULL};
    CHECK(run_data(folder) != 0 && strstr(run_output(), ": cannot read: it is a folder"));
    char *badout[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)in, "--out",
                      (char *)test_tmp_path("no/dir/x.h5"), NULL};
    CHECK(run_data(badout) != 0 && strstr(run_output(), "no/dir/x.h5"));
    FILE *f = fopen(test_tmp_path("allbad.jsonl"), "w");
    fputs("{oops\n[]\n", f);
    fclose(f);
    char *allbad[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)test_tmp_path("allbad.jsonl"),
                      "--out", (char *)out, NULL};
    CHECK(run_data(allbad) != 0 && strstr(run_output(), "no documents"));
    CHECK(!file_exists(out));
    f = fopen(test_tmp_path("manybad.jsonl"), "w");  // 13 bad rows: 10 shown, 3 only counted
    for (int i = 0; i < 13; i++) fputs("{\"nothing\": 1}\n", f);
    fputs("{\"text\": \"one good row\"}\n", f);
    fclose(f);
    char *manybad[] = {"data", "--tokenizer", (char *)tk, "--input", (char *)test_tmp_path("manybad.jsonl"),
                       "--out", (char *)out, NULL};
    CHECK(run_data(manybad) == 0);
    const char *log = run_output();
    CHECK(strstr(log, "manybad.jsonl:10: missing field") && !strstr(log, "manybad.jsonl:11:"));
    CHECK(strstr(log, "3 more bad rows not shown") && strstr(log, "missing field 13"));
    CHECK(file_exists(out));
    char *help[] = {"data", "--help", NULL}, *bad[] = {"data", "--max-len", "0", NULL};
    CHECK(run_data(help) == 0 && strstr(run_output(), "usage: seer data"));
    CHECK(run_data(bad) != 0);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", test_tmpdir);
    CHECK(system(cmd) != 0);
}

int main(void) {
    test_tmpdir_make("data");
    RUN(test_pack_known_case);
    RUN(test_pack_matches_naive_bfd);
    RUN(test_pack_edges);
    RUN(test_permutation);
    RUN(test_shard_roundtrip);
    RUN(test_shard_cursor);
    RUN(test_shard_refusals);
    RUN(test_shard_atomic);
    RUN(test_data_end_to_end);
    RUN(test_data_deterministic);
    RUN(test_data_failures);
    if (test_tmpdir_remove()) return 1;
    return test_summary();
}
