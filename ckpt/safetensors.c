// safetensors.c: see safetensors.h.
#include "ckpt/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20)  // the reference implementation's limit on the JSON header

// ---------------------------------------------------------------------------------------------
// dtypes
// ---------------------------------------------------------------------------------------------

typedef struct {
    const char *name;
    int size;  // bytes per element
} StDType;

// Every dtype the format defines with a whole number of bytes per element. Others (sub-byte
// packed types) are kept with an unchecked byte range and refused by st_get.
static const StDType st_dtypes[] = {
    {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
    {"I16", 2}, {"I8", 1},  {"U64", 8}, {"U32", 4},  {"U16", 2}, {"U8", 1},
    {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1}, {"F8_E8M0", 1}, {"C64", 8},
};

static int st_dtype_size(const char *name) {
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, name)) return st_dtypes[i].size;
    return 0;
}

static int st_dtype_supported(const char *name, SeerDType *out) {
    if (!strcmp(name, "F32")) *out = SEER_F32;
    else if (!strcmp(name, "F16")) *out = SEER_F16;
    else if (!strcmp(name, "BF16")) *out = SEER_BF16;
    else return 0;
    return 1;
}

// ---------------------------------------------------------------------------------------------
// mapping files
// ---------------------------------------------------------------------------------------------

// Maps `path` read-only into f. A zero-byte file gets map NULL, size 0 (the parser reports it).
static int st_map_file(StFile *f, const char *path, SeerErr *err) {
    memset(f, 0, sizeof *f);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return seer_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return seer_fail(err, "%s: not a regular file", path);
    }
    f->size = (size_t)st.st_size;
    if (f->size > 0) {
        void *p = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return seer_fail(err, "%s: cannot map %zu bytes: %s", path, f->size, strerror(e));
        }
        f->map = p;
    }
    close(fd);
    f->path = xstrdup(path);
    return 0;
}

void st_close(SafetensorsSet *s) {
    if (!s) return;
    for (int i = 0; i < s->n_files; i++) {
        if (s->files[i].map) munmap((void *)s->files[i].map, s->files[i].size);
        free(s->files[i].path);
    }
    for (int i = 0; i < s->n_entries; i++) free(s->entries[i].name);
    free(s->files);
    free(s->entries);
    free(s->path);
    free(s);
}

static int st_add_file(SafetensorsSet *s, const char *path, SeerErr *err) {
    s->files = xrealloc(s->files, (size_t)(s->n_files + 1) * sizeof *s->files);
    if (st_map_file(&s->files[s->n_files], path, err)) return -1;
    s->n_files++;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// parsing one file's header
// ---------------------------------------------------------------------------------------------

static uint64_t st_read_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

// A JSON value as a non-negative int64, or -1 when it is not one.
static int64_t st_json_nonneg(const json_t *v) {
    if (!json_is_integer(v)) return -1;
    json_int_t x = json_integer_value(v);
    return x < 0 ? -1 : (int64_t)x;
}

static int st_check_metadata(const json_t *meta, const char *path, SeerErr *err) {
    if (json_is_null(meta)) return 0;
    if (!json_is_object(meta))
        return seer_fail(err, "%s: header: __metadata__ is not an object", path);
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)meta, key, val) {
        if (!json_is_string(val))
            return seer_fail(err, "%s: header: __metadata__ value of '%s' is not a string", path, key);
    }
    return 0;
}

// Parses one header entry {"dtype", "shape", "data_offsets"} into e (name not set). buf_size is
// the data buffer's size; data points at its start.
static int st_parse_entry(StEntry *e, const char *name, const json_t *v, const uint8_t *data,
                          uint64_t buf_size, const char *path, SeerErr *err) {
    if (!json_is_object(v)) return seer_fail(err, "%s: header: tensor '%s' is not an object", path, name);
    const json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
                 *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return seer_fail(err, "%s: tensor '%s': missing or non-string dtype", path, name);
    if (!json_is_array(sh)) return seer_fail(err, "%s: tensor '%s': missing or non-array shape", path, name);
    if (!json_is_array(off) || json_array_size(off) != 2)
        return seer_fail(err, "%s: tensor '%s': data_offsets must be [begin, end]", path, name);
    snprintf(e->dtype_name, sizeof e->dtype_name, "%s", json_string_value(dt));
    e->supported = st_dtype_supported(e->dtype_name, &e->dtype);
    int esize = st_dtype_size(e->dtype_name);

    size_t nd = json_array_size(sh);
    if (nd > ST_MAX_DIMS)
        return seer_fail(err, "%s: tensor '%s' has %zu dimensions (at most %d)", path, name, nd, ST_MAX_DIMS);
    e->ndim = (int)nd;
    uint64_t numel = 1;
    for (size_t i = 0; i < nd; i++) {
        int64_t d = st_json_nonneg(json_array_get(sh, i));
        if (d < 0) return seer_fail(err, "%s: tensor '%s': shape[%zu] is not a non-negative integer", path, name, i);
        e->shape[i] = d;
        if (__builtin_mul_overflow(numel, (uint64_t)d, &numel))
            return seer_fail(err, "%s: tensor '%s': shape overflows", path, name);
    }
    int64_t begin = st_json_nonneg(json_array_get(off, 0)), end = st_json_nonneg(json_array_get(off, 1));
    if (begin < 0 || end < 0)
        return seer_fail(err, "%s: tensor '%s': data_offsets are not non-negative integers", path, name);
    if (end < begin)
        return seer_fail(err, "%s: tensor '%s': data_offsets [%lld, %lld] end before they begin", path, name,
                         (long long)begin, (long long)end);
    if ((uint64_t)end > buf_size)
        return seer_fail(err, "%s: tensor '%s': data_offsets [%lld, %lld] out of range (data buffer has %llu bytes)",
                         path, name, (long long)begin, (long long)end, (unsigned long long)buf_size);
    uint64_t nbytes = 0;
    if (esize && __builtin_mul_overflow(numel, (uint64_t)esize, &nbytes))
        return seer_fail(err, "%s: tensor '%s': byte size overflows", path, name);
    if (esize && nbytes != (uint64_t)(end - begin))
        return seer_fail(err, "%s: tensor '%s': %s x %llu elements is %llu bytes but data_offsets [%lld, %lld] hold %lld",
                         path, name, e->dtype_name, (unsigned long long)numel, (unsigned long long)nbytes,
                         (long long)begin, (long long)end, (long long)(end - begin));
    e->nbytes = (uint64_t)(end - begin);
    e->data = data + begin;
    return 0;
}

static int st_cmp_by_data(const void *a, const void *b) {
    const StEntry *x = a, *y = b;
    return x->data < y->data ? -1 : x->data > y->data ? 1 : 0;
}

// Overlap check over the entries [first, n) of one file; sorts that range by data address.
static int st_check_overlaps(SafetensorsSet *s, int first, const char *path, SeerErr *err) {
    StEntry *e = s->entries + first;
    int n = s->n_entries - first;
    if (n == 0) return 0;
    qsort(e, (size_t)n, sizeof *e, st_cmp_by_data);
    const StEntry *prev = NULL;
    for (int i = 0; i < n; i++) {
        if (e[i].nbytes == 0) continue;
        if (prev && e[i].data < prev->data + prev->nbytes)
            return seer_fail(err, "%s: tensors '%s' and '%s' overlap in the data buffer", path, prev->name, e[i].name);
        prev = &e[i];
    }
    return 0;
}

// Validates file `fi` of s and appends its tensors to s->entries.
static int st_parse_file(SafetensorsSet *s, int fi, SeerErr *err) {
    const StFile *f = &s->files[fi];
    if (f->size < 8)
        return seer_fail(err, "%s: truncated: %zu bytes, but a safetensors file starts with an 8-byte header length",
                         f->path, f->size);
    uint64_t n = st_read_le64(f->map);
    if (n > f->size - 8)
        return seer_fail(err, "%s: header length %llu runs past the end of the file (%zu bytes): truncated or not safetensors",
                         f->path, (unsigned long long)n, f->size);
    if (n > ST_MAX_HEADER)
        return seer_fail(err, "%s: header length %llu exceeds the %u-byte limit", f->path, (unsigned long long)n, ST_MAX_HEADER);
    json_error_t jerr;
    json_t *root = json_loadb((const char *)f->map + 8, (size_t)n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return seer_fail(err, "%s: bad JSON header at byte %d: %s", f->path, 8 + jerr.position, jerr.text);
    int rc = 0, first = s->n_entries;
    if (!json_is_object(root)) {
        rc = seer_fail(err, "%s: header is not a JSON object", f->path);
        goto done;
    }
    const uint8_t *data = f->map + 8 + n;
    uint64_t buf_size = f->size - 8 - n;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if ((rc = st_check_metadata(val, f->path, err))) goto done;
            continue;
        }
        s->entries = xrealloc(s->entries, (size_t)(s->n_entries + 1) * sizeof *s->entries);
        StEntry *e = &s->entries[s->n_entries];
        memset(e, 0, sizeof *e);
        if ((rc = st_parse_entry(e, key, val, data, buf_size, f->path, err))) goto done;
        e->name = xstrdup(key);
        e->file = fi;
        s->n_entries++;
    }
    rc = st_check_overlaps(s, first, f->path, err);
done:
    json_decref(root);
    return rc;
}

static int st_cmp_by_name(const void *a, const void *b) {
    return strcmp(((const StEntry *)a)->name, ((const StEntry *)b)->name);
}

const StEntry *st_find(const SafetensorsSet *s, const char *name) {
    StEntry key = {.name = (char *)name};
    if (s->n_entries == 0) return NULL;
    return bsearch(&key, s->entries, (size_t)s->n_entries, sizeof key, st_cmp_by_name);
}

// Sorts all entries by name and refuses duplicates (within a file JSON parsing already did).
static int st_finish(SafetensorsSet *s, SeerErr *err) {
    if (s->n_entries == 0) return 0;
    qsort(s->entries, (size_t)s->n_entries, sizeof *s->entries, st_cmp_by_name);
    for (int i = 1; i < s->n_entries; i++)
        if (!strcmp(s->entries[i - 1].name, s->entries[i].name))
            return seer_fail(err, "%s: duplicate tensor '%s' in %s and %s", s->path, s->entries[i].name,
                             s->files[s->entries[i - 1].file].path, s->files[s->entries[i].file].path);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// opening: one file, a sharded index, a folder
// ---------------------------------------------------------------------------------------------

// The folder part of path ("." when there is none), in a new string.
static char *st_dirname(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return xstrdup(".");
    if (slash == path) return xstrdup("/");
    size_t n = (size_t)(slash - path);
    char *d = xmalloc(n + 1);
    memcpy(d, path, n);
    d[n] = 0;
    return d;
}

// Index of the shard file named `name` (relative to dir) in s, mapping and parsing it when new.
static int st_shard_index(SafetensorsSet *s, const char *dir, const char *name, SeerErr *err) {
    char *path = path_join(dir, name);
    for (int i = 0; i < s->n_files; i++)
        if (!strcmp(s->files[i].path, path)) {
            free(path);
            return i;
        }
    int rc = st_add_file(s, path, err);
    if (rc == 0) rc = st_parse_file(s, s->n_files - 1, err);
    if (rc) {  // name the index too: it lists a shard that is missing or broken
        char inner[sizeof err->msg];
        memcpy(inner, err->msg, sizeof inner);
        seer_fail(err, "%s: %.900s", s->path, inner);
    }
    free(path);
    return rc ? -1 : s->n_files - 1;
}

static int st_open_index(SafetensorsSet *s, SeerErr *err) {
    json_error_t jerr;
    if (access(s->path, R_OK) != 0) return seer_fail(err, "%s: cannot open: %s", s->path, strerror(errno));
    json_t *root = json_load_file(s->path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) return seer_fail(err, "%s:%d: bad JSON: %s", s->path, jerr.line, jerr.text);
    json_t *map = json_object_get(root, "weight_map");
    int rc = 0;
    char *dir = st_dirname(s->path);
    if (!json_is_object(map)) {
        rc = seer_fail(err, "%s: no \"weight_map\" object", s->path);
        goto done;
    }
    const char *key;
    json_t *val;
    json_object_foreach(map, key, val) {  // pass 1: open every shard named
        const char *shard = json_string_value(val);
        if (!shard || !*shard || strchr(shard, '/') || !strcmp(shard, ".") || !strcmp(shard, "..")) {
            rc = seer_fail(err, "%s: weight_map entry '%s' is not a shard file name", s->path, key);
            goto done;
        }
        if (st_shard_index(s, dir, shard, err) < 0) {
            rc = -1;
            goto done;
        }
    }
    if ((rc = st_finish(s, err))) goto done;
    json_object_foreach(map, key, val) {  // pass 2: every entry is where the map says
        char *path = path_join(dir, json_string_value(val));
        const StEntry *e = st_find(s, key);
        int ok = e && !strcmp(s->files[e->file].path, path);
        free(path);
        if (!ok) {
            rc = seer_fail(err, "%s: weight_map puts tensor '%s' in %s, but that shard has no such tensor",
                           s->path, key, json_string_value(val));
            goto done;
        }
    }
done:
    free(dir);
    json_decref(root);
    return rc;
}

static int st_has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int st_open(SafetensorsSet **out, const char *path, SeerErr *err) {
    SafetensorsSet *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    int rc;
    if (st_has_suffix(path, ".json")) {
        rc = st_open_index(s, err);
    } else {
        rc = st_add_file(s, path, err);
        if (rc == 0) rc = st_parse_file(s, 0, err);
        if (rc == 0) rc = st_finish(s, err);
    }
    if (rc) {
        st_close(s);
        *out = NULL;
        return -1;
    }
    *out = s;
    return 0;
}

int st_open_dir(SafetensorsSet **out, const char *dir, SeerErr *err) {
    char *index = path_join(dir, "model.safetensors.index.json"), *single = path_join(dir, "model.safetensors");
    int rc;
    if (access(index, F_OK) == 0) rc = st_open(out, index, err);
    else if (access(single, F_OK) == 0) rc = st_open(out, single, err);
    else {
        *out = NULL;
        rc = seer_fail(err, "%s: no model.safetensors or model.safetensors.index.json", dir);
    }
    free(index);
    free(single);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// lookup
// ---------------------------------------------------------------------------------------------

const char *st_entry_path(const SafetensorsSet *s, const StEntry *e) { return s->files[e->file].path; }

int st_get(const SafetensorsSet *s, const char *name, Tensor *t, SeerErr *err) {
    const StEntry *e = st_find(s, name);
    if (!e) return seer_fail(err, "%s: missing tensor '%s'", s->path, name);
    const char *path = st_entry_path(s, e);
    if (!e->supported)
        return seer_fail(err, "%s: tensor '%s' has dtype %s; seer reads F32, F16 and BF16", path, name, e->dtype_name);
    if (e->ndim < 1 || e->ndim > 4)
        return seer_fail(err, "%s: tensor '%s' has %d dimensions; seer reads 1 to 4", path, name, e->ndim);
    memset(t, 0, sizeof *t);
    t->data = e->data;
    t->dtype = e->dtype;
    t->ndim = e->ndim;
    for (int i = 0; i < e->ndim; i++) t->shape[i] = e->shape[i];
    return 0;
}

void st_prefetch(const SafetensorsSet *s) {
    for (int i = 0; i < s->n_files; i++)
        if (s->files[i].map) madvise((void *)s->files[i].map, s->files[i].size, MADV_WILLNEED);
}

// ---------------------------------------------------------------------------------------------
// writing
// ---------------------------------------------------------------------------------------------

static int st_write_all(int fd, const void *buf, uint64_t n, const char *path, SeerErr *err) {
    const uint8_t *p = buf;
    while (n > 0) {
        size_t chunk = n > (1u << 30) ? (1u << 30) : (size_t)n;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return seer_fail(err, "%s: write failed: %s", path, w < 0 ? strerror(errno) : "no progress");
        p += w;
        n -= (uint64_t)w;
    }
    return 0;
}

// Creates a temp file beside `path`; its name goes to *tmp (caller frees).
static int st_atomic_begin(const char *path, char **tmp, SeerErr *err) {
    size_t n = strlen(path) + 16;
    *tmp = xmalloc(n);
    snprintf(*tmp, n, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(*tmp);
    if (fd < 0) {
        seer_fail(err, "%s: cannot create a temp file beside it: %s", path, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return -1;
    }
    fchmod(fd, 0644);
    return fd;
}

// fsyncs and closes fd, renames tmp over path, fsyncs the folder. On failure removes tmp.
static int st_atomic_commit(int fd, char *tmp, const char *path, int failed, SeerErr *err) {
    int rc = failed ? -1 : 0;
    if (!rc && fsync(fd) != 0) rc = seer_fail(err, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && !rc) rc = seer_fail(err, "%s: close failed: %s", path, strerror(errno));
    if (!rc && rename(tmp, path) != 0) rc = seer_fail(err, "%s: rename from temp file failed: %s", path, strerror(errno));
    if (rc) {
        unlink(tmp);
    } else {
        char *dir = st_dirname(path);
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            if (fsync(dfd) != 0) rc = seer_fail(err, "%s: fsync of folder %s failed: %s", path, dir, strerror(errno));
            close(dfd);
        }
        free(dir);
    }
    free(tmp);
    return rc;
}

// Checks the writer's input: names, dims, data pointers, duplicates.
static int st_check_input(const char *path, const StTensor *ts, int n, SeerErr *err) {
    if (n < 0) return seer_fail(err, "%s: negative tensor count %d", path, n);
    for (int i = 0; i < n; i++) {
        const StTensor *t = &ts[i];
        if (!t->name || !*t->name || !strcmp(t->name, "__metadata__"))
            return seer_fail(err, "%s: tensor %d has an empty or reserved name", path, i);
        if (t->t.ndim < 1 || t->t.ndim > 4)
            return seer_fail(err, "%s: tensor '%s' has %d dimensions (1 to 4 allowed)", path, t->name, t->t.ndim);
        for (int d = 0; d < t->t.ndim; d++)
            if (t->t.shape[d] < 0) return seer_fail(err, "%s: tensor '%s' has a negative dimension", path, t->name);
        if (!t->t.data && tensor_numel(&t->t) > 0)
            return seer_fail(err, "%s: tensor '%s' has no data", path, t->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(ts[j].name, t->name)) return seer_fail(err, "%s: duplicate tensor '%s'", path, t->name);
    }
    return 0;
}

// Data order: larger element size first (so each tensor starts aligned to its element size when the
// buffer starts 8-aligned), then the caller's order.
static int *st_layout_order(const StTensor *ts, int n) {
    int *order = xmalloc((size_t)(n ? n : 1) * sizeof *order), k = 0;
    for (size_t es = 4; es >= 1; es /= 2)
        for (int i = 0; i < n; i++)
            if (dtype_size(ts[i].t.dtype) == es) order[k++] = i;
    return order;
}

// The padded header text (length a multiple of 8) for tensors in `order`; *len gets its length.
static char *st_header_text(const StTensor *ts, const int *order, int n, const char *const *metadata,
                            size_t *len) {
    json_t *root = json_object();
    if (metadata && metadata[0]) {
        json_t *meta = json_object();
        for (int i = 0; metadata[i] && metadata[i + 1]; i += 2)
            json_object_set_new(meta, metadata[i], json_string(metadata[i + 1]));
        json_object_set_new(root, "__metadata__", meta);
    }
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const StTensor *t = &ts[order[k]];
        uint64_t nb = (uint64_t)tensor_numel(&t->t) * dtype_size(t->t.dtype);
        json_t *shape = json_array();
        for (int d = 0; d < t->t.ndim; d++) json_array_append_new(shape, json_integer(t->t.shape[d]));
        json_object_set_new(root, t->name,
                            json_pack("{s:s, s:o, s:[I,I]}", "dtype", dtype_name(t->t.dtype), "shape", shape,
                                      "data_offsets", (json_int_t)off, (json_int_t)(off + nb)));
        off += nb;
    }
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    size_t raw = strlen(text), padded = (raw + 7) / 8 * 8;
    char *out = xmalloc(padded + 1);
    memcpy(out, text, raw);
    memset(out + raw, ' ', padded - raw);
    out[padded] = 0;
    free(text);
    *len = padded;
    return out;
}

int st_write(const char *path, const StTensor *tensors, int n, const char *const *metadata, SeerErr *err) {
    if (st_check_input(path, tensors, n, err)) return -1;
    int *order = st_layout_order(tensors, n);
    size_t hlen;
    char *header = st_header_text(tensors, order, n, metadata, &hlen);
    char *tmp;
    int fd = st_atomic_begin(path, &tmp, err), failed = 0;
    if (fd >= 0) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        failed = st_write_all(fd, len8, 8, path, err) || st_write_all(fd, header, hlen, path, err);
        for (int k = 0; k < n && !failed; k++) {
            const Tensor *t = &tensors[order[k]].t;
            failed = st_write_all(fd, t->data, (uint64_t)tensor_numel(t) * dtype_size(t->dtype), path, err);
        }
    }
    free(order);
    free(header);
    if (fd < 0) return -1;
    return st_atomic_commit(fd, tmp, path, failed, err);
}

int st_write_bytes(const char *path, const void *data, size_t n, SeerErr *err) {
    char *tmp;
    int fd = st_atomic_begin(path, &tmp, err);
    if (fd < 0) return -1;
    return st_atomic_commit(fd, tmp, path, st_write_all(fd, data, n, path, err), err);
}

int st_write_index(const char *path, const char *const *names, const char *const *shards, int n,
                   uint64_t total_size, SeerErr *err) {
    json_t *map = json_object();
    for (int i = 0; i < n; i++) json_object_set_new(map, names[i], json_string(shards[i]));
    json_t *root = json_pack("{s:{s:I}, s:o}", "metadata", "total_size", (json_int_t)total_size, "weight_map", map);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    int rc = st_write_bytes(path, text, strlen(text), err);
    free(text);
    return rc;
}
