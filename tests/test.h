// test.h: a tiny test harness. Each tests/test_<area>.c is one binary:
//
//   static void test_roundtrip(void) { CHECK(x == 1); CHECK_CLOSE(a, b, 1e-5); }
//   int main(void) { RUN(test_roundtrip); return test_summary(); }
//
// Every RUN prints "ok - name" or "FAIL - name" with the failing checks; test_summary prints
// "# passed N failed M" (tests/run.sh adds these up) and returns non-zero on any failure.
#pragma once
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
