// test.h: a tiny test harness. Each tests/test_<area>.c is one binary:
//
//   static void test_roundtrip(void) { CHECK(x == 1); CHECK_CLOSE(a, b, 1e-5); }
//   int main(void) { RUN(test_roundtrip); return test_summary(); }
//
// Every RUN prints "ok - name" or "FAIL - name" with the failing checks; test_summary prints
// "# passed N failed M" (tests/run.sh adds these up) and returns non-zero on any failure.
#pragma once
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "model/model.h"

static int test_passed_, test_failed_, test_checks_failed_;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (!(cond)) {                                                              \
            test_checks_failed_++;                                                  \
            fprintf(stderr, "    %s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

// |a - b| <= tol * max(1, |b|); NaN never passes.
#define CHECK_CLOSE(a, b, tol)                                                               \
    do {                                                                                     \
        double a_ = (double)(a), b_ = (double)(b);                                           \
        if (!(fabs(a_ - b_) <= (tol) * fmax(1.0, fabs(b_)))) {                               \
            test_checks_failed_++;                                                           \
            fprintf(stderr, "    %s:%d: %s = %.9g, expected %s = %.9g (tol %g)\n", __FILE__,  \
                    __LINE__, #a, a_, #b, b_, (double)(tol));                                \
        }                                                                                    \
    } while (0)

#define RUN(fn)                                                         \
    do {                                                                \
        test_checks_failed_ = 0;                                        \
        fn();                                                           \
        if (test_checks_failed_) { test_failed_++; printf("FAIL - %s\n", #fn); } \
        else { test_passed_++; printf("ok - %s\n", #fn); }              \
        fflush(stdout);                                                 \
    } while (0)

static inline int test_summary(void) {
    printf("# passed %d failed %d\n", test_passed_, test_failed_);
    return test_failed_ ? 1 : 0;
}

// Largest |a-b| / max(|b|, floor) over n elements; NaN anywhere gives INFINITY.
static inline double max_rel_err(const float *a, const float *b, long n, double floor_) {
    double worst = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]) / fmax(fabs((double)b[i]), floor_);
        if (d != d) return INFINITY;
        if (d > worst) worst = d;
    }
    return worst;
}

// ---------------------------------------------------------------- temp folder (tests that write files)

static char test_tmpdir[64];  // /tmp/seer_test_<area>_XXXXXX once test_tmpdir_make has run

// Makes this binary's temp folder; aborts when it cannot (nothing else can run then).
static inline void test_tmpdir_make(const char *area) {
    snprintf(test_tmpdir, sizeof test_tmpdir, "/tmp/seer_test_%s_XXXXXX", area);
    if (!mkdtemp(test_tmpdir)) abort();
}

// "<test_tmpdir>/<name>" in one of 64 rotating buffers: valid for the next 63 calls (enough for
// every argv a test builds).
static inline char *test_tmp_path(const char *name) {
    static char buf[64][512];
    static int k;
    k = (k + 1) % 64;
    snprintf(buf[k], sizeof buf[k], "%s/%s", test_tmpdir, name);
    return buf[k];
}

// Removes the temp folder and everything in it; returns 0, or -1 (said on stderr) when it could
// not be removed.
static inline int test_tmpdir_remove(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", test_tmpdir);
    if (system(cmd) == 0) return 0;
    fprintf(stderr, "could not remove %s\n", test_tmpdir);
    return -1;
}

// ---------------------------------------------------------------- running the seer binary

// buf = BUILD/seer for a test binary at BUILD/tests/<name> (argv0). Prints a FAIL line and
// returns -1 when it is not built.
static inline int test_find_seer(char *buf, size_t n, const char *argv0) {
    const char *slash = strrchr(argv0, '/');
    int dir = slash ? (int)(slash - argv0) : 1;
    snprintf(buf, n, "%.*s/../seer", dir, slash ? argv0 : ".");
    if (access(buf, X_OK) == 0) return 0;
    printf("FAIL - %s not built\n", buf);
    return -1;
}

// Starts argv[0] with argv (NULL-terminated), its stdout and stderr appended to the file log;
// returns the child's pid.
static inline pid_t test_spawn(const char *const *argv, const char *log) {
    pid_t pid = fork();
    if (pid != 0) return pid;
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    dup2(fd, 1), dup2(fd, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

// Waits for pid: its exit status, or 128 + the signal that ended it.
static inline int test_wait(pid_t pid) {
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

// 1 when the first 64 KB of the file at path contain needle.
static inline int test_file_has(const char *path, const char *needle) {
    static char buf[1 << 16];
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strstr(buf, needle) != NULL;
}

// Number of newline-terminated lines in the file at path, -1 when it cannot be read.
static inline int test_count_lines(const char *path) {
    FILE *f = fopen(path, "r");
    int n = 0, c;
    if (!f) return -1;
    while ((c = fgetc(f)) != EOF) n += c == '\n';
    fclose(f);
    return n;
}

// model_load of `dir` (relative to the repository root) as a check: on failure it prints the
// error, counts a failed check and returns -1.
static inline int test_model_load(Model *m, const char *dir) {
    SeerErr err = {{0}};
    if (!model_load(m, dir, &err)) return 0;
    fprintf(stderr, "    %s: %s (run the tests from the repository root)\n", dir, err.msg);
    CHECK(0);
    return -1;
}
