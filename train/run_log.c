// run_log.c: see run_log.h.
#include "train/run_log.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/train_state.h"

// ---------------------------------------------------------------- in-memory history

static void history_push(RunLog *log, int step, double loss, const double *layer_loss) {
    if (log->n == log->cap) {
        log->cap = log->cap ? 2 * log->cap : 64;
        log->steps = xrealloc(log->steps, (size_t)log->cap * sizeof(int));
        log->loss = xrealloc(log->loss, (size_t)log->cap * sizeof(double));
        log->layer_loss = xrealloc(log->layer_loss, (size_t)log->cap * log->L * sizeof(double));
    }
    log->steps[log->n] = step;
    log->loss[log->n] = loss;
    for (int l = 0; l < log->L; l++)
        log->layer_loss[(size_t)log->n * log->L + l] = layer_loss ? layer_loss[l] : NAN;
    log->n++;
}

// Reads one metrics line into the history; returns 1 to keep it, 0 to drop it, -1 if malformed.
static int history_parse_line(RunLog *log, const char *line, int keep_through) {
    json_error_t jerr;
    json_t *j = json_loads(line, 0, &jerr);
    json_t *jstep = json_object_get(j, "step"), *jloss = json_object_get(j, "loss");
    if (!j || !json_is_integer(jstep) || !json_is_number(jloss)) {
        json_decref(j);
        return -1;
    }
    int step = (int)json_integer_value(jstep);
    if (step > keep_through) {
        json_decref(j);
        return 0;
    }
    double *ll = xcalloc((size_t)log->L, sizeof(double));
    json_t *arr = json_object_get(j, "layer_loss");
    for (int l = 0; l < log->L; l++) {
        json_t *x = json_array_get(arr, (size_t)l);
        ll[l] = json_is_number(x) ? json_number_value(x) : NAN;
    }
    history_push(log, step, json_number_value(jloss), ll);
    free(ll);
    json_decref(j);
    return 1;
}

// Loads the existing metrics.jsonl (steps <= keep_through) and returns the kept text.
static int history_load(RunLog *log, const char *path, int keep_through, char **kept,
                        size_t *kept_len, SeerErr *err) {
    FILE *f = fopen(path, "r");
    FILE *out = open_memstream(kept, kept_len);
    if (!f) {  // no metrics yet: nothing to keep
        fclose(out);
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int lineno = 0, rc = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        int torn = line[len - 1] != '\n';
        int r = history_parse_line(log, line, keep_through);
        if (r < 0 && torn) break;  // the process died mid-line: drop it
        if (r < 0) {
            rc = seer_fail(err, "%s:%d: not a metrics line (JSON with step and loss)", path, lineno);
            break;
        }
        if (r > 0) fputs(line, out);
    }
    free(line);
    fclose(f);
    fclose(out);
    return rc;
}

int run_log_open(RunLog *log, const char *dir, int L, int keep_through, SeerErr *err) {
    memset(log, 0, sizeof *log);
    log->dir = xstrdup(dir);
    log->L = L;
    char *path = path_join(dir, "metrics.jsonl");
    int rc = 0;
    if (keep_through >= 0) {
        char *kept = NULL;
        size_t kept_len = 0;
        rc = history_load(log, path, keep_through, &kept, &kept_len, err);
        if (!rc) rc = train_state_write_atomic(path, kept, kept_len, err);
        free(kept);
    }
    if (!rc) {
        log->f = fopen(path, keep_through >= 0 ? "a" : "w");
        if (!log->f) rc = seer_fail(err, "%s: cannot open for writing: %s", path, strerror(errno));
    }
    free(path);
    if (rc) run_log_close(log);
    return rc;
}

int run_log_append(RunLog *log, const StepMetrics *m, SeerErr *err) {
    FILE *f = log->f;
    fprintf(f, "{\"step\":%d,\"loss\":%.9g,\"layer_loss\":[", m->step, m->loss);
    for (int l = 0; l < log->L; l++) fprintf(f, "%s%.9g", l ? "," : "", m->layer_loss[l]);
    fprintf(f, "],\"lr\":%.9g,\"grad_norm\":%.9g,\"tokens\":%" PRId64 ",\"tokens_per_s\":%.1f,"
               "\"elapsed_s\":%.3f,\"peak_mem_mb\":%.1f}\n",
            m->lr, m->grad_norm, m->tokens, m->tokens_per_s, m->elapsed_s, m->peak_mem_mb);
    if (fflush(f) != 0 || ferror(f))
        return seer_fail(err, "%s/metrics.jsonl: write failed: %s", log->dir, strerror(errno));
    history_push(log, m->step, m->loss, m->layer_loss);
    return 0;
}

int run_log_write_svg(const RunLog *log, SeerErr *err) {
    int L = log->L, n = log->n;
    double *x = xmalloc((size_t)(n ? n : 1) * sizeof(double));
    double *ys = xmalloc((size_t)(n ? n : 1) * (L + 1) * sizeof(double));
    ChartSeries *s = xcalloc((size_t)L + 1, sizeof(ChartSeries));
    char (*names)[32] = xcalloc((size_t)L + 1, sizeof *names);
    for (int i = 0; i < n; i++) x[i] = log->steps[i];
    for (int c = 0; c <= L; c++) {
        double *y = ys + (size_t)c * (n ? n : 1);
        for (int i = 0; i < n; i++) y[i] = c == 0 ? log->loss[i] : log->layer_loss[(size_t)i * L + c - 1];
        if (c == 0) snprintf(names[c], sizeof names[c], "total");
        else snprintf(names[c], sizeof names[c], "layer %d", c - 1);
        s[c] = (ChartSeries){.name = names[c], .x = x, .y = y, .n = n, .bold = c == 0};
    }
    char *path = path_join(log->dir, "loss.svg");
    int rc = run_log_write_chart(path, "gate distillation loss (KL x scale)", "optimizer step",
                                 "loss (log scale)", s, L + 1, 1, err);
    free(path);
    free(names);
    free(s);
    free(ys);
    free(x);
    return rc;
}

void run_log_close(RunLog *log) {
    if (log->f) fclose(log->f);
    free(log->dir);
    free(log->steps);
    free(log->loss);
    free(log->layer_loss);
    memset(log, 0, sizeof *log);
}

// ---------------------------------------------------------------- SVG chart

enum { CH_W = 860, CH_H = 500, CH_LEFT = 80, CH_RIGHT = 170, CH_TOP = 40, CH_BOTTOM = 60 };

static const char *chart_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                     "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

typedef struct {
    double x0, x1, y0, y1;  // data range (y in log10 when log_y)
    int log_y;
} ChartFrame;

static double frame_px(const ChartFrame *f, double x) {
    return CH_LEFT + (x - f->x0) / (f->x1 - f->x0) * (CH_W - CH_LEFT - CH_RIGHT);
}

static double frame_py(const ChartFrame *f, double y) {
    double v = f->log_y ? log10(y) : y;
    return CH_H - CH_BOTTOM - (v - f->y0) / (f->y1 - f->y0) * (CH_H - CH_TOP - CH_BOTTOM);
}

// A "nice" tick spacing (1, 2 or 5 x 10^k) giving about `want` ticks over span.
static double nice_step(double span, int want) {
    double raw = span / want, p = pow(10, floor(log10(raw))), m = raw / p;
    return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

static void frame_fit(ChartFrame *f, const ChartSeries *s, int ns, int log_y) {
    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY, pos = INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; i < s[k].n; i++) {
            double x = s[k].x[i], y = s[k].y[i];
            if (!isfinite(x) || !isfinite(y)) continue;
            xmin = fmin(xmin, x), xmax = fmax(xmax, x), ymin = fmin(ymin, y), ymax = fmax(ymax, y);
            if (y > 0) pos = fmin(pos, y);
        }
    if (!isfinite(xmin)) xmin = 0, xmax = 1, ymin = 0, ymax = 1, pos = 1;
    if (xmax <= xmin) xmax = xmin + 1;
    f->log_y = log_y && isfinite(pos);
    if (f->log_y) {
        f->y0 = floor(log10(pos)), f->y1 = ceil(log10(fmax(ymax, pos)));
        if (f->y1 <= f->y0) f->y1 = f->y0 + 1;
    } else {
        if (ymax <= ymin) ymax = ymin + 1;
        double st = nice_step(ymax - ymin, 5);
        f->y0 = floor(ymin / st) * st, f->y1 = ceil(ymax / st) * st;
    }
    f->x0 = xmin, f->x1 = xmax;
}

static void chart_axes(FILE *o, const ChartFrame *f, const char *xlabel, const char *ylabel) {
    int xr = CH_W - CH_RIGHT, yb = CH_H - CH_BOTTOM;
    fprintf(o, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#333\"/>\n",
            CH_LEFT, CH_TOP, xr - CH_LEFT, yb - CH_TOP);
    double xs = nice_step(f->x1 - f->x0, 8);
    for (double x = ceil(f->x0 / xs) * xs; x <= f->x1 + 1e-9 * xs; x += xs) {
        double px = frame_px(f, x);
        fprintf(o, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#ddd\"/>"
                   "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%g</text>\n",
                px, CH_TOP, px, yb, px, yb + 18, x);
    }
    double ys = f->log_y ? 1 : nice_step(f->y1 - f->y0, 5);
    for (double y = f->y0; y <= f->y1 + 1e-9 * ys; y += ys) {
        double v = f->log_y ? pow(10, y) : y, py = frame_py(f, v);
        fprintf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/>"
                   "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%g</text>\n",
                CH_LEFT, py, xr, py, CH_LEFT - 6, py + 4, v);
    }
    fprintf(o, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", (CH_LEFT + xr) / 2,
            CH_H - 18, xlabel);
    fprintf(o, "<text transform=\"translate(20,%d) rotate(-90)\" text-anchor=\"middle\">%s</text>\n",
            (CH_TOP + yb) / 2, ylabel);
}

static void chart_series(FILE *o, const ChartFrame *f, const ChartSeries *s, int k) {
    const char *color = s->bold ? "#000" : chart_colors[k % 10];
    double floor_y = f->log_y ? pow(10, f->y0) : -INFINITY;
    if (s->n > 0) {
        fprintf(o, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"%s\" points=\"", color,
                s->bold ? "2.5" : "1.2");
        for (int i = 0; i < s->n; i++)
            if (isfinite(s->y[i]) && isfinite(s->x[i]))
                fprintf(o, "%.1f,%.1f ", frame_px(f, s->x[i]), frame_py(f, fmax(s->y[i], floor_y)));
        fprintf(o, "\"/>\n");
        if (s->n <= 12)
            for (int i = 0; i < s->n; i++)
                if (isfinite(s->y[i]))
                    fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n",
                            frame_px(f, s->x[i]), frame_py(f, fmax(s->y[i], floor_y)), color);
    }
    int ly = CH_TOP + 10 + 18 * k, lx = CH_W - CH_RIGHT + 14;
    fprintf(o, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\">%s</text>\n",
            lx, ly, lx + 22, ly, color, s->bold ? "2.5" : "1.2", lx + 28, ly + 4, s->name);
}

int run_log_write_chart(const char *path, const char *title, const char *xlabel,
                        const char *ylabel, const ChartSeries *s, int ns, int log_y, SeerErr *err) {
    char *buf = NULL;
    size_t len = 0;
    FILE *o = open_memstream(&buf, &len);
    ChartFrame f;
    frame_fit(&f, s, ns, log_y);
    fprintf(o, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "font-family=\"sans-serif\" font-size=\"12\">\n"
               "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
               "<text x=\"%d\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">%s</text>\n",
            CH_W, CH_H, (CH_LEFT + CH_W - CH_RIGHT) / 2, title);
    chart_axes(o, &f, xlabel, ylabel);
    int k = 0;
    for (int pass = 0; pass < 2; pass++)  // bold series drawn last, on top
        for (int i = 0; i < ns; i++)
            if ((pass == 1) == (s[i].bold != 0)) chart_series(o, &f, &s[i], k++);
    fprintf(o, "</svg>\n");
    fclose(o);
    int rc = train_state_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}
