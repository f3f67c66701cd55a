// shard.c: see shard.h. HDF5 1.10 C API; every dataset is 1-D, chunked, shuffled and deflated.
#include "data/shard.h"

#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/pack.h"

#define SHARD_IDS_CHUNK (1 << 16)    // ids per HDF5 chunk (256 KiB before compression)
#define SHARD_META_CHUNK (1 << 14)   // elements per HDF5 chunk of the small index datasets
#define SHARD_FLUSH_IDS (1 << 22)    // the writer buffers this many ids between writes
#define SHARD_DEFLATE_LEVEL 1

static const char *const skip_names[SHARD_SKIP_N] = {
    "malformed_json", "missing_field", "invalid_utf8", "empty", "too_long",
};

const char *shard_skip_name(ShardSkip why) {
    return why >= 0 && why < SHARD_SKIP_N ? skip_names[why] : "unknown";
}

// ---------------------------------------------------------------- HDF5 helpers

static herr_t h5_first_error(unsigned n, const H5E_error2_t *e, void *data) {
    if (n == 0) snprintf((char *)data, 256, "%s", e->desc ? e->desc : "unknown HDF5 error");
    return 0;
}

// The innermost message of HDF5's error stack (where the failure was detected).
static const char *h5_reason(char buf[256]) {
    snprintf(buf, 256, "unknown HDF5 error");
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, h5_first_error, buf);
    return buf;
}

// Our messages replace HDF5's own stack dump on stderr.
static void h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// A 1-D dataset of n elements (extendible), chunked, byte-shuffled and deflated.
static hid_t h5_create_1d(hid_t file, const char *name, hid_t type, int64_t n, int64_t chunk) {
    hsize_t dims = (hsize_t)n, maxdims = H5S_UNLIMITED;
    hsize_t cdims = (hsize_t)(n > 0 && n < chunk ? n : chunk);  // n = 0: a dataset that grows
    hid_t space = H5Screate_simple(1, &dims, &maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &cdims);
    H5Pset_shuffle(dcpl);
    H5Pset_deflate(dcpl, SHARD_DEFLATE_LEVEL);
    hid_t ds = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl);
    H5Sclose(space);
    return ds;
}

// Writes n elements at offset `at` of a 1-D dataset (growing it to at + n first).
static herr_t h5_write_at(hid_t ds, hid_t type, int64_t at, int64_t n, const void *buf) {
    hsize_t end = (hsize_t)(at + n), start = (hsize_t)at, count = (hsize_t)n;
    if (n == 0) return 0;
    if (H5Dset_extent(ds, &end) < 0) return -1;
    hid_t fspace = H5Dget_space(ds), mspace = H5Screate_simple(1, &count, NULL);
    herr_t rc = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (rc >= 0) rc = H5Dwrite(ds, type, mspace, fspace, H5P_DEFAULT, buf);
    H5Sclose(mspace);
    H5Sclose(fspace);
    return rc;
}

static herr_t h5_write_1d(hid_t file, const char *name, hid_t type, int64_t n, const void *buf) {
    hid_t ds = h5_create_1d(file, name, type, n, SHARD_META_CHUNK);
    if (ds < 0) return -1;
    herr_t rc = n ? H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : 0;
    H5Dclose(ds);
    return rc;
}

static herr_t h5_attr_write(hid_t obj, const char *name, hid_t type, int n, const void *buf) {
    hsize_t dims = (hsize_t)n;
    hid_t space = n < 0 ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, &dims, NULL);
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, type, buf);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return rc;
}

static hid_t h5_str_type(void) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

static herr_t h5_attr_str(hid_t obj, const char *name, const char *value) {
    hid_t t = h5_str_type();
    herr_t rc = h5_attr_write(obj, name, t, -1, &value);
    H5Tclose(t);
    return rc;
}

static herr_t h5_attr_i64(hid_t obj, const char *name, int64_t v) {
    return h5_attr_write(obj, name, H5T_NATIVE_INT64, -1, &v);
}

// ---------------------------------------------------------------- writer

struct ShardWriter {
    char *path, *tmp;
    hid_t file, ids;
    int64_t n_ids;        // ids already in the /ids dataset
    int32_t *buf;         // [SHARD_FLUSH_IDS] ids not yet written
    int64_t buf_n;
    int64_t *chunk_off;   // [n_chunks + 1] into ids
    int64_t *doc_off;     // [n_chunks + 1] into doc_lens
    int64_t n_chunks, cap_chunks;
    int32_t *doc_lens;    // [n_docs]
    int64_t n_docs, cap_docs;
    int max_chunk;        // longest chunk so far
};

ShardWriter *shard_writer_create(const char *path, SeerErr *err) {
    h5_quiet();
    ShardWriter *w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    size_t n = strlen(path) + 32;
    w->tmp = xmalloc(n);
    snprintf(w->tmp, n, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        seer_fail(err, "%s: cannot create the output (%s)", w->tmp, strerror(errno));
        free(w->tmp);
        w->tmp = NULL;
        shard_writer_abort(w);
        return NULL;
    }
    close(fd);
    char why[256];
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    w->ids = w->file < 0 ? -1 : h5_create_1d(w->file, "ids", H5T_NATIVE_INT32, 0, SHARD_IDS_CHUNK);
    if (w->ids < 0) {
        seer_fail(err, "%s: HDF5 cannot create the file (%s)", w->tmp, h5_reason(why));
        shard_writer_abort(w);
        return NULL;
    }
    w->buf = xmalloc(SHARD_FLUSH_IDS * sizeof *w->buf);
    w->cap_chunks = 1024;
    w->chunk_off = xcalloc((size_t)w->cap_chunks + 1, sizeof *w->chunk_off);
    w->doc_off = xcalloc((size_t)w->cap_chunks + 1, sizeof *w->doc_off);
    w->cap_docs = 4096;
    w->doc_lens = xmalloc((size_t)w->cap_docs * sizeof *w->doc_lens);
    return w;
}

static int writer_flush(ShardWriter *w, SeerErr *err) {
    char why[256];
    if (h5_write_at(w->ids, H5T_NATIVE_INT32, w->n_ids, w->buf_n, w->buf) < 0)
        return seer_fail(err, "%s: cannot write token ids (%s)", w->tmp, h5_reason(why));
    w->n_ids += w->buf_n;
    w->buf_n = 0;
    return 0;
}

int shard_writer_add_chunk(ShardWriter *w, const int32_t *ids, int n, const int32_t *doc_lens,
                           int n_docs, SeerErr *err) {
    int64_t sum = 0;
    for (int i = 0; i < n_docs; i++) {
        if (doc_lens[i] < 1) return seer_fail(err, "%s: chunk %lld: document of %d tokens", w->tmp,
                                              (long long)w->n_chunks, doc_lens[i]);
        sum += doc_lens[i];
    }
    if (n < 1 || n_docs < 1 || sum != n)
        return seer_fail(err, "%s: chunk %lld: %d ids but %d documents of %lld tokens", w->tmp,
                         (long long)w->n_chunks, n, n_docs, (long long)sum);
    if (w->n_chunks == w->cap_chunks) {
        w->cap_chunks *= 2;
        w->chunk_off = xrealloc(w->chunk_off, ((size_t)w->cap_chunks + 1) * sizeof *w->chunk_off);
        w->doc_off = xrealloc(w->doc_off, ((size_t)w->cap_chunks + 1) * sizeof *w->doc_off);
    }
    while (w->n_docs + n_docs > w->cap_docs) w->cap_docs *= 2;
    w->doc_lens = xrealloc(w->doc_lens, (size_t)w->cap_docs * sizeof *w->doc_lens);
    memcpy(w->doc_lens + w->n_docs, doc_lens, (size_t)n_docs * sizeof *doc_lens);
    w->n_docs += n_docs;
    for (int done = 0; done < n;) {
        if (w->buf_n == SHARD_FLUSH_IDS && writer_flush(w, err)) return -1;
        int take = (int)(SHARD_FLUSH_IDS - w->buf_n) < n - done ? (int)(SHARD_FLUSH_IDS - w->buf_n) : n - done;
        memcpy(w->buf + w->buf_n, ids + done, (size_t)take * sizeof *ids);
        w->buf_n += take;
        done += take;
    }
    w->n_chunks++;
    w->chunk_off[w->n_chunks] = w->chunk_off[w->n_chunks - 1] + n;
    w->doc_off[w->n_chunks] = w->n_docs;
    if (n > w->max_chunk) w->max_chunk = n;
    return 0;
}

static herr_t writer_attrs(ShardWriter *w, const ShardMeta *m) {
    hid_t f = w->file;
    herr_t rc = h5_attr_str(f, "format", SHARD_FORMAT);
    rc |= h5_attr_i64(f, "format_version", SHARD_FORMAT_VERSION);
    rc |= h5_attr_str(f, "tokenizer_hash", m->tokenizer_hash ? m->tokenizer_hash : "");
    rc |= h5_attr_i64(f, "max_len", m->max_len);
    rc |= h5_attr_write(f, "seed", H5T_NATIVE_UINT64, -1, &m->seed);
    rc |= h5_attr_str(f, "long_policy", m->long_policy ? m->long_policy : "skip");
    rc |= h5_attr_i64(f, "n_docs", w->n_docs);
    rc |= h5_attr_i64(f, "n_tokens", w->n_ids);
    rc |= h5_attr_i64(f, "n_chunks", w->n_chunks);
    rc |= h5_attr_i64(f, "cropped", m->cropped);
    for (int k = 0; k < SHARD_SKIP_N; k++) {
        char name[64];
        snprintf(name, sizeof name, "skipped_%s", skip_names[k]);
        rc |= h5_attr_i64(f, name, m->skipped[k]);
    }
    if (m->n_sources > 0) {
        hid_t t = h5_str_type();
        rc |= h5_attr_write(f, "source_files", t, m->n_sources, m->source_files);
        H5Tclose(t);
        rc |= h5_attr_write(f, "source_rows", H5T_NATIVE_INT64, m->n_sources, m->source_rows);
        rc |= h5_attr_write(f, "source_docs", H5T_NATIVE_INT64, m->n_sources, m->source_docs);
    }
    return rc < 0 ? -1 : 0;
}

// fsync a file or folder by path.
static int fsync_path(const char *p) {
    int fd = open(p, O_RDONLY);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

static int writer_publish(ShardWriter *w, SeerErr *err) {
    if (fsync_path(w->tmp) < 0)
        return seer_fail(err, "%s: cannot sync to disk (%s)", w->tmp, strerror(errno));
    if (rename(w->tmp, w->path) < 0)
        return seer_fail(err, "%s: cannot rename to %s (%s)", w->tmp, w->path, strerror(errno));
    char *dir = xstrdup(w->path), *slash = strrchr(dir, '/');
    if (slash) *(slash == dir ? slash + 1 : slash) = 0;
    fsync_path(slash ? dir : ".");  // best effort: some file systems refuse fsync on folders
    free(dir);
    return 0;
}

int shard_writer_finish(ShardWriter *w, const ShardMeta *meta, SeerErr *err) {
    char why[256];
    int rc = writer_flush(w, err);
    if (!rc && w->max_chunk > meta->max_len)
        rc = seer_fail(err, "%s: a chunk of %d tokens exceeds max_len %d", w->tmp, w->max_chunk,
                       meta->max_len);
    if (!rc && (h5_write_1d(w->file, "chunk_offsets", H5T_NATIVE_INT64, w->n_chunks + 1, w->chunk_off) < 0 ||
                h5_write_1d(w->file, "doc_offsets", H5T_NATIVE_INT64, w->n_chunks + 1, w->doc_off) < 0 ||
                h5_write_1d(w->file, "doc_lens", H5T_NATIVE_INT32, w->n_docs, w->doc_lens) < 0 ||
                writer_attrs(w, meta) < 0))
        rc = seer_fail(err, "%s: cannot write the index (%s)", w->tmp, h5_reason(why));
    if (!rc) {
        herr_t c = H5Dclose(w->ids);  // flushes the ids chunk cache: a full disk shows here
        w->ids = -1;
        if (H5Fclose(w->file) < 0) c = -1;
        w->file = -1;
        if (c < 0) rc = seer_fail(err, "%s: cannot close (%s)", w->tmp, h5_reason(why));
    }
    if (!rc) rc = writer_publish(w, err);
    if (!rc) {
        free(w->tmp);
        w->tmp = NULL;
    }
    shard_writer_abort(w);
    return rc;
}

void shard_writer_abort(ShardWriter *w) {
    if (!w) return;
    if (w->ids > 0) H5Dclose(w->ids);
    if (w->file > 0) H5Fclose(w->file);
    if (w->tmp) unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w->buf);
    free(w->chunk_off);
    free(w->doc_off);
    free(w->doc_lens);
    free(w);
}

// ---------------------------------------------------------------- reader

struct ShardReader {
    char *path;
    hid_t file, ids;
    int64_t n_chunks, n_docs, n_tokens, n_train;
    int max_len;
    uint64_t seed;
    char *hash;
    int64_t *chunk_off;  // [n_chunks + 1] into ids
    int64_t *doc_off;    // [n_chunks + 1] into doc_lens
    int32_t *doc_lens;   // [n_docs]
    int32_t *buf;        // [max_len] ids of the last chunk read
    int64_t *perm;       // [n_train] order of epoch perm_epoch (perm_epoch < 0: none yet)
    int64_t perm_epoch;
    uint64_t perm_seed;
};

// Reads a scalar integer attribute (any integer type in the file). -1 when absent or not one.
static int h5_attr_read_i64(hid_t obj, const char *name, hid_t mem_type, void *v) {
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = H5Aget_type(a), s = H5Aget_space(a);
    int ok = H5Tget_class(t) == H5T_INTEGER && H5Sget_simple_extent_npoints(s) == 1 &&
             H5Aread(a, mem_type, v) >= 0;
    H5Sclose(s);
    H5Tclose(t);
    H5Aclose(a);
    return ok ? 0 : -1;
}

// Reads a scalar string attribute (variable or fixed length) into a malloc'd copy, or NULL.
static char *h5_attr_read_str(hid_t obj, const char *name) {
    if (H5Aexists(obj, name) <= 0) return NULL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = H5Aget_type(a);
    char *out = NULL;
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        if (H5Aread(a, t, &s) >= 0 && s) out = xstrdup(s);
        H5free_memory(s);
    } else if (H5Tget_class(t) == H5T_STRING) {
        size_t n = H5Tget_size(t);
        out = xcalloc(n + 1, 1);
        if (H5Aread(a, t, out) < 0) {
            free(out);
            out = NULL;
        }
    }
    H5Tclose(t);
    H5Aclose(a);
    return out;
}

// Reads a whole 1-D dataset of exactly n elements into buf (converted to mem_type).
static int h5_read_1d(ShardReader *r, const char *name, hid_t mem_type, int64_t n, void *buf,
                      SeerErr *err) {
    char why[256];
    if (H5Lexists(r->file, name, H5P_DEFAULT) <= 0)
        return seer_fail(err, "%s: no dataset /%s", r->path, name);
    hid_t ds = H5Dopen2(r->file, name, H5P_DEFAULT), s = H5Dget_space(ds);
    hsize_t dims = 0;
    int rank = H5Sget_simple_extent_ndims(s);
    if (rank == 1) H5Sget_simple_extent_dims(s, &dims, NULL);
    H5Sclose(s);
    int rc = 0;
    if (rank != 1 || (int64_t)dims != n)
        rc = seer_fail(err, "%s: /%s has %lld elements (rank %d), expected %lld", r->path, name,
                       (long long)dims, rank, (long long)n);
    else if (n && H5Dread(ds, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) < 0)
        rc = seer_fail(err, "%s: cannot read /%s (%s)", r->path, name, h5_reason(why));
    H5Dclose(ds);
    return rc;
}

// Format, version and tokenizer checks, then the counts.
static int reader_attrs(ShardReader *r, const char *expect_hash, SeerErr *err) {
    char *fmt = h5_attr_read_str(r->file, "format");
    int bad = !fmt || strcmp(fmt, SHARD_FORMAT);
    free(fmt);
    if (bad) return seer_fail(err, "%s: not a seer token shard (no format=\"%s\" attribute)", r->path, SHARD_FORMAT);
    int64_t version = -1, max_len = 0;
    h5_attr_read_i64(r->file, "format_version", H5T_NATIVE_INT64, &version);
    if (version != SHARD_FORMAT_VERSION)
        return seer_fail(err, "%s: token shard format version %lld, this seer reads version %d "
                         "(re-run seer data)", r->path, (long long)version, SHARD_FORMAT_VERSION);
    r->hash = h5_attr_read_str(r->file, "tokenizer_hash");
    if (!r->hash) return seer_fail(err, "%s: no tokenizer_hash attribute", r->path);
    if (expect_hash && strcmp(r->hash, expect_hash))
        return seer_fail(err, "%s: made with tokenizer %s, but this model's tokenizer is %s "
                         "(re-run seer data with this model's tokenizer)", r->path, r->hash, expect_hash);
    if (h5_attr_read_i64(r->file, "n_chunks", H5T_NATIVE_INT64, &r->n_chunks) ||
        h5_attr_read_i64(r->file, "n_docs", H5T_NATIVE_INT64, &r->n_docs) ||
        h5_attr_read_i64(r->file, "n_tokens", H5T_NATIVE_INT64, &r->n_tokens) ||
        h5_attr_read_i64(r->file, "max_len", H5T_NATIVE_INT64, &max_len) ||
        h5_attr_read_i64(r->file, "seed", H5T_NATIVE_UINT64, &r->seed))
        return seer_fail(err, "%s: missing or non-integer count attribute (n_chunks, n_docs, "
                         "n_tokens, max_len, seed)", r->path);
    if (r->n_chunks < 0 || r->n_docs < r->n_chunks || r->n_tokens < r->n_docs || max_len < 1 ||
        max_len > (1 << 30) || r->n_docs > INT32_MAX)
        return seer_fail(err, "%s: implausible counts (chunks %lld, docs %lld, tokens %lld, max_len %lld)",
                         r->path, (long long)r->n_chunks, (long long)r->n_docs,
                         (long long)r->n_tokens, (long long)max_len);
    r->max_len = (int)max_len;
    return 0;
}

// Offsets start at 0, end at the counts, every chunk has 1..max_len tokens and at least one
// document, and its documents' lengths (each >= 1) add up to its token count.
static int reader_validate(ShardReader *r, SeerErr *err) {
    if (r->chunk_off[0] != 0 || r->chunk_off[r->n_chunks] != r->n_tokens || r->doc_off[0] != 0 ||
        r->doc_off[r->n_chunks] != r->n_docs)
        return seer_fail(err, "%s: offsets do not span the ids and documents", r->path);
    for (int64_t c = 0; c < r->n_chunks; c++) {
        int64_t n = r->chunk_off[c + 1] - r->chunk_off[c], sum = 0;
        if (n < 1 || n > r->max_len || r->doc_off[c + 1] <= r->doc_off[c] ||
            r->doc_off[c + 1] > r->n_docs)
            return seer_fail(err, "%s: chunk %lld: %lld tokens or its document range is invalid",
                             r->path, (long long)c, (long long)n);
        for (int64_t d = r->doc_off[c]; d < r->doc_off[c + 1]; d++) {
            if (r->doc_lens[d] < 1) return seer_fail(err, "%s: document %lld has length %d", r->path,
                                                     (long long)d, r->doc_lens[d]);
            sum += r->doc_lens[d];
        }
        if (sum != n)
            return seer_fail(err, "%s: chunk %lld: documents add up to %lld tokens, not %lld", r->path,
                             (long long)c, (long long)sum, (long long)n);
    }
    return 0;
}

ShardReader *shard_open(const char *path, const char *expect_hash, SeerErr *err) {
    h5_quiet();
    ShardReader *r = xcalloc(1, sizeof *r);
    r->path = xstrdup(path);
    r->perm_epoch = -1;
    r->file = r->ids = -1;
    char why[256];
    if (access(path, R_OK) < 0) {
        seer_fail(err, "%s: cannot open (%s)", path, strerror(errno));
        shard_close(r);
        return NULL;
    }
    r->file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (r->file < 0) {
        seer_fail(err, "%s: not an HDF5 file (%s)", path, h5_reason(why));
        shard_close(r);
        return NULL;
    }
    if (reader_attrs(r, expect_hash, err)) {
        shard_close(r);
        return NULL;
    }
    r->chunk_off = xmalloc(((size_t)r->n_chunks + 1) * sizeof *r->chunk_off);
    r->doc_off = xmalloc(((size_t)r->n_chunks + 1) * sizeof *r->doc_off);
    r->doc_lens = xmalloc(((size_t)r->n_docs + 1) * sizeof *r->doc_lens);
    r->buf = xmalloc((size_t)r->max_len * sizeof *r->buf);
    hsize_t n_ids = 0;
    if (h5_read_1d(r, "chunk_offsets", H5T_NATIVE_INT64, r->n_chunks + 1, r->chunk_off, err) ||
        h5_read_1d(r, "doc_offsets", H5T_NATIVE_INT64, r->n_chunks + 1, r->doc_off, err) ||
        h5_read_1d(r, "doc_lens", H5T_NATIVE_INT32, r->n_docs, r->doc_lens, err) ||
        reader_validate(r, err)) {
        shard_close(r);
        return NULL;
    }
    r->ids = H5Lexists(r->file, "ids", H5P_DEFAULT) > 0 ? H5Dopen2(r->file, "ids", H5P_DEFAULT) : -1;
    if (r->ids >= 0) {
        hid_t s = H5Dget_space(r->ids);
        if (H5Sget_simple_extent_ndims(s) != 1) n_ids = (hsize_t)-1;
        else H5Sget_simple_extent_dims(s, &n_ids, NULL);
        H5Sclose(s);
    }
    if (r->ids < 0 || (int64_t)n_ids != r->n_tokens) {
        seer_fail(err, "%s: /ids is missing or does not hold %lld tokens", path, (long long)r->n_tokens);
        shard_close(r);
        return NULL;
    }
    r->n_train = r->n_chunks;
    return r;
}

void shard_close(ShardReader *r) {
    if (!r) return;
    if (r->ids >= 0) H5Dclose(r->ids);
    if (r->file >= 0) H5Fclose(r->file);
    free(r->path);
    free(r->hash);
    free(r->chunk_off);
    free(r->doc_off);
    free(r->doc_lens);
    free(r->buf);
    free(r->perm);
    free(r);
}

int64_t shard_n_chunks(const ShardReader *r) { return r->n_chunks; }
int64_t shard_n_docs(const ShardReader *r) { return r->n_docs; }
int64_t shard_n_tokens(const ShardReader *r) { return r->n_tokens; }
int shard_max_len(const ShardReader *r) { return r->max_len; }
uint64_t shard_seed(const ShardReader *r) { return r->seed; }
const char *shard_tokenizer_hash(const ShardReader *r) { return r->hash; }
int64_t shard_n_train(const ShardReader *r) { return r->n_train; }

int shard_split_heldout(ShardReader *r, int64_t k, SeerErr *err) {
    if (k < 0 || k >= r->n_chunks)
        return seer_fail(err, "%s: cannot hold out %lld of %lld chunks (at least one must remain "
                         "for training)", r->path, (long long)k, (long long)r->n_chunks);
    r->n_train = r->n_chunks - k;
    r->perm_epoch = -1;
    return 0;
}

int shard_read_chunk(ShardReader *r, int64_t c, ShardChunk *out, SeerErr *err) {
    char why[256];
    if (c < 0 || c >= r->n_chunks)
        return seer_fail(err, "%s: chunk %lld out of range [0, %lld)", r->path, (long long)c,
                         (long long)r->n_chunks);
    hsize_t start = (hsize_t)r->chunk_off[c], count = (hsize_t)(r->chunk_off[c + 1] - r->chunk_off[c]);
    hid_t fspace = H5Dget_space(r->ids), mspace = H5Screate_simple(1, &count, NULL);
    herr_t rc = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (rc >= 0) rc = H5Dread(r->ids, H5T_NATIVE_INT32, mspace, fspace, H5P_DEFAULT, r->buf);
    H5Sclose(mspace);
    H5Sclose(fspace);
    if (rc < 0)
        return seer_fail(err, "%s: cannot read chunk %lld (%s)", r->path, (long long)c, h5_reason(why));
    out->index = c;
    out->n_tokens = (int)count;
    out->n_docs = (int)(r->doc_off[c + 1] - r->doc_off[c]);
    out->ids = r->buf;
    out->doc_lens = r->doc_lens + r->doc_off[c];
    return 0;
}

int shard_next(ShardReader *r, ShardCursor *cur, ShardChunk *out, SeerErr *err) {
    if (cur->epoch < 0 || cur->pos < 0 || cur->pos >= r->n_train)
        return seer_fail(err, "%s: cursor (epoch %lld, position %lld) outside the %lld training chunks",
                         r->path, (long long)cur->epoch, (long long)cur->pos, (long long)r->n_train);
    if (r->perm_epoch != cur->epoch || r->perm_seed != cur->seed) {
        r->perm = xrealloc(r->perm, (size_t)r->n_train * sizeof *r->perm);
        pack_permutation(r->n_train, cur->seed ^ ((uint64_t)cur->epoch * 0xd1b54a32d192ed03ull), r->perm);
        r->perm_epoch = cur->epoch;
        r->perm_seed = cur->seed;
    }
    if (shard_read_chunk(r, r->perm[cur->pos], out, err)) return -1;
    if (++cur->pos == r->n_train) {
        cur->epoch++;
        cur->pos = 0;
    }
    return 0;
}
