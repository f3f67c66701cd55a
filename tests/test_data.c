// test_data.c: packing, token shards (write, read, cursor, refusals) and `seer data` end to end.
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/pack.h"
#include "data/shard.h"
#include "tests/test.h"

static char tmpdir[64];

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

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
    const char *path = tmp_path("rt.h5");
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
    const char *path = tmp_path("cur.h5");
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
    const char *path = tmp_path("ref.h5");
    CHECK(write_test_shard(path, 4, 96, "tokA") == 0);
    SeerErr err;
    CHECK(shard_open(path, "tokB", &err) == NULL);
    CHECK(strstr(err.msg, "tokA") && strstr(err.msg, "tokB") && strstr(err.msg, path));
    set_version(path, 2);
    CHECK(shard_open(path, "tokA", &err) == NULL && strstr(err.msg, "version 2"));
    CHECK(shard_open(tmp_path("missing.h5"), NULL, &err) == NULL && strstr(err.msg, "missing.h5"));
    FILE *f = fopen(tmp_path("junk.h5"), "w");
    fputs("not hdf5\n", f);
    fclose(f);
    CHECK(shard_open(tmp_path("junk.h5"), NULL, &err) == NULL && strstr(err.msg, "not an HDF5"));
}

static void test_shard_atomic(void) {
    const char *path = tmp_path("atomic.h5");
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
    CHECK(shard_writer_create(tmp_path("no/such/dir/x.h5"), &err) == NULL && strstr(err.msg, "no/such/dir"));
    char cmd[128];  // no temp files left behind
    snprintf(cmd, sizeof cmd, "ls %s | grep -q tmp", tmpdir);
    CHECK(system(cmd) != 0);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/seer_test_data_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    RUN(test_pack_known_case);
    RUN(test_pack_matches_naive_bfd);
    RUN(test_pack_edges);
    RUN(test_permutation);
    RUN(test_shard_roundtrip);
    RUN(test_shard_cursor);
    RUN(test_shard_refusals);
    RUN(test_shard_atomic);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) return 1;
    return test_summary();
}
