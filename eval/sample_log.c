// sample_log.c: the resumable per-sample log of `seer eval` (see sample_log.h).
#define _GNU_SOURCE
#include "eval/sample_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

char *sample_log_path(const char *out) {
    size_t n = strlen(out);
    int json = n > 5 && !strcmp(out + n - 5, ".json");
    size_t stem = json ? n - 5 : n;
    char *p = xmalloc(stem + sizeof ".samples.jsonl");
    memcpy(p, out, stem);
    strcpy(p + stem, ".samples.jsonl");
    return p;
}

static void logged_free(LoggedSample *s) {
    free(s->id), free(s->g.output), free(s->g.pred), free(s->sel), free(s->valid);
}

// The first key whose value differs between the two settings objects (either side may lack it).
static const char *first_difference(const json_t *a, const json_t *b) {
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)a, k, v)
        if (!json_equal(v, json_object_get(b, k))) return k;
    json_object_foreach((json_t *)b, k, v)
        if (!json_object_get(a, k)) return k;
    return "?";
}

static int read_counts(double *dst, const json_t *arr, int L) {
    if (!json_is_array(arr) || (int)json_array_size(arr) != L) return -1;
    for (int l = 0; l < L; l++) {
        json_t *x = json_array_get(arr, (size_t)l);
        if (!json_is_number(x)) return -1;
        dst[l] = json_number_value(x);
    }
    return 0;
}

// One sample line into s (owning its strings); -1 when the line is not a complete sample.
static int parse_sample(LoggedSample *s, const char *line, int L) {
    json_t *o = json_loads(line, 0, NULL);
    json_t *pred = json_object_get(o, "pred");
    memset(s, 0, sizeof *s);
    s->sel = xmalloc(sizeof(double) * (size_t)L), s->valid = xmalloc(sizeof(double) * (size_t)L);
    int ok = o && json_is_integer(json_object_get(o, "index")) && json_is_string(json_object_get(o, "id")) &&
             json_is_string(json_object_get(o, "output")) && (json_is_string(pred) || json_is_null(pred)) &&
             read_counts(s->sel, json_object_get(o, "sel"), L) == 0 &&
             read_counts(s->valid, json_object_get(o, "valid"), L) == 0;
    if (ok) {
        s->index = (int)json_integer_value(json_object_get(o, "index"));
        s->id = xstrdup(json_string_value(json_object_get(o, "id")));
        s->g.output = xstrdup(json_string_value(json_object_get(o, "output")));
        s->g.pred = json_is_string(pred) ? xstrdup(json_string_value(pred)) : NULL;
        s->g.correct = json_is_true(json_object_get(o, "correct"));
        s->g.n_gen = (int)json_integer_value(json_object_get(o, "n_gen"));
        s->g.line_acc = json_number_value(json_object_get(o, "line_acc"));
        s->tm.t_prefill = json_number_value(json_object_get(o, "t_prefill"));
        s->tm.t_decode = json_number_value(json_object_get(o, "t_decode"));
        s->tm.n_prefill = json_integer_value(json_object_get(o, "n_prefill"));
        s->tm.n_decode = json_integer_value(json_object_get(o, "n_decode"));
    } else {
        logged_free(s);
    }
    json_decref(o);
    return ok ? 0 : -1;
}

// Appends o (consumed) as one compact line and flushes it to disk.
static int write_line(SampleLog *lg, json_t *o, size_t flags, SeerErr *err) {
    char *line = o ? json_dumps(o, JSON_COMPACT | flags) : NULL;
    int bad = !line || fputs(line, lg->f) == EOF || fputc('\n', lg->f) == EOF || fflush(lg->f) || fsync(fileno(lg->f));
    free(line), json_decref(o);
    return bad ? seer_fail(err, "%s: write failed: %s", lg->path, strerror(errno)) : 0;
}

static int write_header(SampleLog *lg, const json_t *settings, SeerErr *err) {
    return write_line(lg, json_pack("{s:O}", "settings", (json_t *)settings), JSON_SORT_KEYS, err);
}

// Reads an existing log: checks its settings line, collects its samples, cuts a torn last line
// (an empty file gets its settings line now).
static int read_existing(SampleLog *lg, const json_t *settings, SeerErr *err) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    off_t good = 0;
    int lineno = 0, rc = 0, torn = 0;
    while (rc == 0 && (n = getline(&line, &cap, lg->f)) > 0) {
        lineno++;
        int complete = line[n - 1] == '\n';
        if (lineno == 1) {
            json_t *h = complete ? json_loads(line, 0, NULL) : NULL;
            json_t *had = json_object_get(h, "settings");
            if (!had) rc = seer_fail(err, "%s:1: not a seer eval sample log (delete it or choose another --out)", lg->path);
            else if (!json_equal(had, settings))
                rc = seer_fail(err, "%s: written by a run with other settings ('%s' differs); delete it or choose another --out",
                               lg->path, first_difference(settings, had));
            json_decref(h);
        } else {
            LoggedSample s;
            if (!complete || parse_sample(&s, line, lg->L)) {
                torn = 1;
                break;
            }
            lg->done = xrealloc(lg->done, sizeof(LoggedSample) * (size_t)(lg->n_done + 1));
            lg->done[lg->n_done++] = s;
        }
        if (rc == 0) good += n;
    }
    if (rc == 0 && torn) {
        if (getline(&line, &cap, lg->f) > 0)
            rc = seer_fail(err, "%s:%d: not a sample line (the log is damaged; delete it to start over)", lg->path, lineno);
        else
            fprintf(stderr, "seer: warning: %s:%d: incomplete last line (an interrupted write) dropped\n", lg->path, lineno);
    }
    free(line);
    if (rc == 0 && (fflush(lg->f) || ftruncate(fileno(lg->f), good) || fseeko(lg->f, good, SEEK_SET)))
        rc = seer_fail(err, "%s: cannot truncate to its last complete line: %s", lg->path, strerror(errno));
    if (rc == 0 && good == 0) rc = write_header(lg, settings, err);
    return rc;
}

static int by_index(const void *a, const void *b) {
    const LoggedSample *x = a, *y = b;
    return (x->index > y->index) - (x->index < y->index);
}

int sample_log_open(SampleLog *lg, const char *out, const json_t *settings, int L, SeerErr *err) {
    memset(lg, 0, sizeof *lg);
    lg->path = sample_log_path(out), lg->L = L;
    lg->f = fopen(lg->path, "r+");
    if (lg->f) {
        if (read_existing(lg, settings, err)) return -1;
        qsort(lg->done, (size_t)lg->n_done, sizeof *lg->done, by_index);
        return 0;
    }
    if (errno != ENOENT || !(lg->f = fopen(lg->path, "w+")))
        return seer_fail(err, "%s: cannot open: %s", lg->path, strerror(errno));
    return write_header(lg, settings, err);
}

const LoggedSample *sample_log_find(const SampleLog *lg, int index, const char *id) {
    int lo = 0, hi = lg->n_done;  // done is sorted by index (sample_log_open)
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (lg->done[mid].index < index) lo = mid + 1;
        else hi = mid;
    }
    return lo < lg->n_done && lg->done[lo].index == index && !strcmp(lg->done[lo].id, id) ? &lg->done[lo] : NULL;
}

int sample_log_append(SampleLog *lg, const LoggedSample *s, SeerErr *err) {
    json_t *sel = json_array(), *valid = json_array();
    for (int l = 0; l < lg->L; l++)
        json_array_append_new(sel, json_real(s->sel[l])), json_array_append_new(valid, json_real(s->valid[l]));
    json_t *o = json_pack("{s:i, s:s, s:s, s:o, s:b, s:i, s:f, s:o, s:o, s:f, s:f, s:I, s:I}", "index", s->index,
                          "id", s->id, "output", s->g.output, "pred", s->g.pred ? json_string(s->g.pred) : json_null(),
                          "correct", s->g.correct, "n_gen", s->g.n_gen, "line_acc", s->g.line_acc, "sel", sel,
                          "valid", valid, "t_prefill", s->tm.t_prefill, "t_decode", s->tm.t_decode, "n_prefill",
                          (json_int_t)s->tm.n_prefill, "n_decode", (json_int_t)s->tm.n_decode);
    return write_line(lg, o, 0, err);
}

void sample_log_close(SampleLog *lg) {
    if (lg->f) fclose(lg->f);
    for (int i = 0; i < lg->n_done; i++) logged_free(&lg->done[i]);
    free(lg->done), free(lg->path);
    memset(lg, 0, sizeof *lg);
}
