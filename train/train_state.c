// train_state.c: see train_state.h.
#include "train/train_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_MAGIC "SEERCKPT"
#define CKPT_TRAILER "CRC1"
#define CKPT_VERSION 1u

// ---------------------------------------------------------------- atomic file writing

typedef struct {
    int fd;
    uLong crc;
    const char *path;  // for messages
} CkptWriter;

static int writer_put(CkptWriter *w, const void *data, size_t n, SeerErr *err) {
    const uint8_t *p = data;
    w->crc = crc32_z(w->crc, p, n);
    while (n > 0) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return seer_fail(err, "%s: write failed: %s", w->path, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fsync_parent_dir(const char *path, SeerErr *err) {
    char *copy = xstrdup(path);
    const char *dir = dirname(copy);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    int rc = 0;
    if (fd < 0 || fsync(fd) != 0)
        rc = seer_fail(err, "%s: fsync of folder failed: %s", dir, strerror(errno));
    if (fd >= 0) close(fd);
    free(copy);
    return rc;
}

// Opens path.tmp for writing; *tmp receives its malloc'd name.
static int atomic_begin(CkptWriter *w, const char *path, char **tmp, SeerErr *err) {
    size_t n = strlen(path) + 5;
    *tmp = xmalloc(n);
    snprintf(*tmp, n, "%s.tmp", path);
    w->path = *tmp;
    w->crc = crc32_z(0L, Z_NULL, 0);
    w->fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (w->fd < 0) {
        seer_fail(err, "%s: cannot create: %s", *tmp, strerror(errno));
        free(*tmp);
        return -1;
    }
    return 0;
}

// fsync + close + rename over path + fsync of the folder. On failure removes the temp file.
static int atomic_commit(CkptWriter *w, const char *path, char *tmp, int failed, SeerErr *err) {
    int rc = failed ? -1 : 0;
    if (!rc && fsync(w->fd) != 0) rc = seer_fail(err, "%s: fsync failed: %s", tmp, strerror(errno));
    if (close(w->fd) != 0 && !rc) rc = seer_fail(err, "%s: close failed: %s", tmp, strerror(errno));
    if (!rc && rename(tmp, path) != 0)
        rc = seer_fail(err, "%s: rename to %s failed: %s", tmp, path, strerror(errno));
    if (!rc) rc = fsync_parent_dir(path, err);
    if (rc) unlink(tmp);
    free(tmp);
    return rc;
}

int train_state_write_atomic(const char *path, const void *data, size_t n, SeerErr *err) {
    CkptWriter w;
    char *tmp;
    if (atomic_begin(&w, path, &tmp, err)) return -1;
    int failed = writer_put(&w, data, n, err);
    return atomic_commit(&w, path, tmp, failed, err);
}

// ---------------------------------------------------------------- header JSON

static char *header_build(const TrainState *s) {
    char seed[17];
    snprintf(seed, sizeof seed, "%016" PRIx64, s->seed);
    json_error_t jerr;
    json_t *config = s->config_json ? json_loads(s->config_json, 0, &jerr) : json_object();
    if (!config) config = json_string(s->config_json);
    json_t *h = json_pack("{s:s, s:{s:i, s:i, s:i, s:i, s:i, s:I}, s:I, s:I, s:I, s:f, "
                          "s:s, s:I, s:o}",
                          "model_sig", s->model_sig, "gate", "L", s->L, "HKV", s->HKV, "G", s->G,
                          "HD", s->HD, "DG", s->DG, "n_params", (json_int_t)s->n_params, "step",
                          (json_int_t)s->step, "tokens", (json_int_t)s->tokens, "adam_t",
                          (json_int_t)s->adam_t, "elapsed_s", s->elapsed_s, "seed", seed, "cursor_len", (json_int_t)s->cursor_len, "config",
                          config);
    char *text = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    return text;
}

static int header_parse(TrainState *s, const char *text, size_t len, const char *path,
                        SeerErr *err) {
    json_error_t jerr;
    json_t *h = json_loadb(text, len, 0, &jerr);
    if (!h) return seer_fail(err, "%s: checkpoint header is not JSON: %s", path, jerr.text);
    const char *sig = NULL, *seed = NULL;
    json_int_t L, HKV, G, HD, DG, n, step, tokens, adam_t, cursor_len;
    json_t *config = NULL;
    int rc = json_unpack_ex(h, &jerr, JSON_STRICT,
                            "{s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I}, s:I, s:I, s:I, s:F, "
                            "s:s, s:I, s:o}",
                            "model_sig", &sig, "gate", "L", &L, "HKV", &HKV, "G", &G, "HD", &HD,
                            "DG", &DG, "n_params", &n, "step", &step, "tokens", &tokens, "adam_t",
                            &adam_t, "elapsed_s", &s->elapsed_s, "seed", &seed, "cursor_len", &cursor_len, "config", &config);
    if (rc) {
        json_decref(h);
        return seer_fail(err, "%s: checkpoint header: %s", path, jerr.text);
    }
    snprintf(s->model_sig, sizeof s->model_sig, "%s", sig);
    s->L = (int)L, s->HKV = (int)HKV, s->G = (int)G, s->HD = (int)HD, s->DG = (int)DG;
    s->n_params = n, s->step = step, s->tokens = tokens, s->adam_t = adam_t;
    s->cursor_len = cursor_len < 0 ? SIZE_MAX : (size_t)cursor_len;
    s->seed = strtoull(seed, NULL, 16);
    s->config_json = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(h);
    if (n < 0 || step < 0 || cursor_len < 0)
        return seer_fail(err, "%s: checkpoint header has a negative count", path);
    return 0;
}

// ---------------------------------------------------------------- save / load

int train_state_save(const char *path, const TrainState *s, SeerErr *err) {
    char *header = header_build(s);
    if (!header) return seer_fail(err, "%s: cannot encode the checkpoint header", path);
    CkptWriter w;
    char *tmp;
    if (atomic_begin(&w, path, &tmp, err)) {
        free(header);
        return -1;
    }
    uint32_t version = CKPT_VERSION, hlen = (uint32_t)strlen(header);
    size_t nb = (size_t)s->n_params * sizeof(float);
    int failed = writer_put(&w, CKPT_MAGIC, 8, err) || writer_put(&w, &version, 4, err) ||
                 writer_put(&w, &hlen, 4, err) || writer_put(&w, header, hlen, err) ||
                 writer_put(&w, s->cursor, s->cursor_len, err) ||
                 writer_put(&w, s->params, nb, err);
    const char *pause = getenv("SEER_FAULT_CKPT_PAUSE_US");  // fault injection: see the header
    if (!failed && pause) usleep((useconds_t)strtoul(pause, NULL, 10));
    failed = failed || writer_put(&w, s->m, nb, err) || writer_put(&w, s->v, nb, err);
    if (!failed) {
        uint32_t crc = (uint32_t)w.crc;
        failed = writer_put(&w, &crc, 4, err) || writer_put(&w, CKPT_TRAILER, 4, err);
    }
    free(header);
    return atomic_commit(&w, path, tmp, failed, err);
}

static int read_whole(const char *path, uint8_t **buf, size_t *n, SeerErr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return seer_fail(err, "%s: cannot open: %s", path, strerror(errno));
    if (fseeko(f, 0, SEEK_END) != 0) {
        fclose(f);
        return seer_fail(err, "%s: cannot seek: %s", path, strerror(errno));
    }
    off_t size = ftello(f);
    rewind(f);
    *n = (size_t)size;
    *buf = xmalloc(*n ? *n : 1);
    size_t got = fread(*buf, 1, *n, f);
    fclose(f);
    if (got != *n) {
        free(*buf);
        return seer_fail(err, "%s: short read (%zu of %zu bytes)", path, got, *n);
    }
    return 0;
}

// Checks magic, trailer and CRC of a whole-file buffer; returns the header length.
static int verify_frame(const uint8_t *b, size_t n, const char *path, uint32_t *hlen,
                        SeerErr *err) {
    if (n < 24 || memcmp(b, CKPT_MAGIC, 8) != 0)
        return seer_fail(err, "%s: not a seer checkpoint (bad magic or %zu bytes)", path, n);
    uint32_t version, crc_stored;
    memcpy(&version, b + 8, 4);
    if (version != CKPT_VERSION)
        return seer_fail(err, "%s: checkpoint version %u, this seer reads version %u", path,
                         version, CKPT_VERSION);
    if (memcmp(b + n - 4, CKPT_TRAILER, 4) != 0)
        return seer_fail(err, "%s: checkpoint is truncated (no trailer at offset %zu)", path,
                         n - 4);
    memcpy(&crc_stored, b + n - 8, 4);
    uint32_t crc = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), b, n - 8);
    if (crc != crc_stored)
        return seer_fail(err, "%s: checkpoint is corrupt (CRC32 %08x, trailer says %08x)", path,
                         crc, crc_stored);
    memcpy(hlen, b + 12, 4);
    if ((size_t)*hlen > n - 24)
        return seer_fail(err, "%s: header length %u exceeds the file", path, *hlen);
    return 0;
}

int train_state_load(const char *path, TrainState *s, SeerErr *err) {
    memset(s, 0, sizeof *s);
    uint8_t *b = NULL;
    size_t n = 0;
    uint32_t hlen = 0;
    if (read_whole(path, &b, &n, err)) return -1;
    if (verify_frame(b, n, path, &hlen, err) ||
        header_parse(s, (const char *)b + 16, hlen, path, err)) {
        free(b);
        train_state_free(s);
        return -1;
    }
    size_t body = n - 24 - hlen;
    size_t nb = (size_t)s->n_params * sizeof(float);
    if (s->cursor_len > body || (size_t)s->n_params > body / 12 ||
        s->cursor_len + 3 * nb != body) {
        seer_fail(err, "%s: sizes do not add up (%zu body bytes for a %zu-byte cursor and %" PRId64
                  " parameters)", path, body, s->cursor_len, s->n_params);
        free(b);
        train_state_free(s);
        return -1;
    }
    const uint8_t *p = b + 16 + hlen;
    s->cursor = xmalloc(s->cursor_len ? s->cursor_len : 1);
    memcpy(s->cursor, p, s->cursor_len);
    p += s->cursor_len;
    float **dst[3] = {&s->params, &s->m, &s->v};
    for (int i = 0; i < 3; i++, p += nb) {
        *dst[i] = xmalloc(nb ? nb : 1);
        memcpy(*dst[i], p, nb);
    }
    free(b);
    return 0;
}

int train_state_check(const TrainState *got, const TrainState *want, const char *path,
                      SeerErr *err) {
    if (strcmp(got->model_sig, want->model_sig) != 0)
        return seer_fail(err, "%s: checkpoint is for another model (%s), this run has %s", path,
                         got->model_sig, want->model_sig);
    if (got->L != want->L || got->HKV != want->HKV || got->G != want->G || got->HD != want->HD ||
        got->DG != want->DG)
        return seer_fail(err, "%s: checkpoint gate shape L=%d HKV=%d G=%d HD=%d DG=%d differs "
                         "from this run's L=%d HKV=%d G=%d HD=%d DG=%d", path, got->L, got->HKV,
                         got->G, got->HD, got->DG, want->L, want->HKV, want->G, want->HD, want->DG);
    if (got->n_params != want->n_params)
        return seer_fail(err, "%s: checkpoint has %" PRId64 " gate parameters, this run %" PRId64,
                         path, got->n_params, want->n_params);
    return 0;
}

void train_state_free(TrainState *s) {
    free(s->cursor);
    free(s->config_json);
    free(s->params);
    free(s->m);
    free(s->v);
    s->cursor = NULL;
    s->config_json = NULL;
    s->params = s->m = s->v = NULL;
}
