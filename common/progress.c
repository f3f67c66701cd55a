// progress.c: see progress.h.
#include "common/progress.h"

#include <stdio.h>
#include <unistd.h>

#include "common/common.h"

static void format_seconds(char *buf, size_t n, double s) {
    if (s < 0 || s > 1e7) { snprintf(buf, n, "?"); return; }
    int t = (int)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%dh%02dm", t / 3600, t / 60 % 60);
    else if (t >= 60) snprintf(buf, n, "%dm%02ds", t / 60, t % 60);
    else snprintf(buf, n, "%ds", t);
}

static void progress_draw(Progress *p, int final) {
    double el = seer_now() - p->t_start;
    double rate = el > 0 ? (double)p->done / el : 0;
    char eta[32] = "", elapsed[32];
    format_seconds(elapsed, sizeof elapsed, el);
    if (p->total > 0 && !final && rate > 0) {
        char e[24];
        format_seconds(e, sizeof e, (double)(p->total - p->done) / rate);
        snprintf(eta, sizeof eta, " ETA %s", e);
    }
    if (p->total > 0)
        fprintf(stderr, "%s%s %lld/%lld %s (%.0f%%) %.1f %s/s elapsed %s%s%s", p->tty ? "\r" : "",
                p->label, (long long)p->done, (long long)p->total, p->unit,
                100.0 * (double)p->done / (double)p->total, rate, p->unit, elapsed, eta,
                p->tty ? "\033[K" : "\n");
    else
        fprintf(stderr, "%s%s %lld %s %.1f %s/s elapsed %s%s", p->tty ? "\r" : "", p->label,
                (long long)p->done, p->unit, rate, p->unit, elapsed, p->tty ? "\033[K" : "\n");
    if (final && p->tty) fputc('\n', stderr);
    fflush(stderr);
}

void progress_start(Progress *p, const char *label, int64_t total, const char *unit) {
    p->label = label;
    p->unit = unit;
    p->total = total;
    p->done = 0;
    p->t_start = p->t_last = seer_now();
    p->tty = isatty(2);
}

void progress_update(Progress *p, int64_t done) {
    p->done = done;
    double now = seer_now();
    if (now - p->t_last < (p->tty ? 0.25 : 10.0)) return;
    p->t_last = now;
    progress_draw(p, 0);
}

void progress_finish(Progress *p) { progress_draw(p, 1); }
