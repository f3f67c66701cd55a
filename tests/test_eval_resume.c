// test_eval_resume.c: `seer eval --out` survives a crash. On the committed testbed model and four
// short problems, runs the evaluation straight, then the same one killed with SIGKILL once its
// sample log holds a sample, and reruns it: the report must equal the straight run's (outputs,
// grades, per-layer sparsity). Also: a torn last log line is dropped, a damaged line in the middle
// and a change of settings are refused with the log left as it was, a larger --limit reuses the
// logged samples. Runs the real binary: BUILD/seer beside BUILD/tests/.
#define _GNU_SOURCE
#include <jansson.h>
#include <signal.h>
#include <string.h>

#include "eval/sample_log.h"
#include "tests/test.h"

static char seer_bin[512];

// Four pointer-chasing problems of 24 arrows each (4 blocks with the answer, so a 64-token budget
// skips blocks), short enough that a run takes about a second on two cores.
static void write_problems(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) seer_die("cannot write %s", path);
    const char *keys[] = {"kab", "kqz", "kmn", "kxy", "kzz", "kpo", "kit", "kuv"};
    for (int i = 0; i < 4; i++) {
        fprintf(f, "{\"id\": \"p%d\", \"question\": \"", i);
        for (int a = 0; a < 24; a++) fprintf(f, "- %s %s\\n", keys[(a + i) % 8], keys[(3 * a + i + 1) % 8]);
        fprintf(f, "start %s, 2 steps\", \"answer\": \"%s\"}\n", keys[i], keys[(i + 2) % 8]);
    }
    fclose(f);
}

// Starts `seer eval` with report `out` (a tmp path) over the first `limit` problems; extra flag
// and value when given. Output to out.log.
static pid_t start_eval(const char *out, const char *limit, const char *flag, const char *val) {
    char log[600];
    snprintf(log, sizeof log, "%s.log", out);
    const char *argv[32] = {seer_bin, "eval", "--model", "data/testbed/model", "--data",
                            test_tmp_path("problems.jsonl"), "--method", "oracle", "--budget", "64",
                            "--max-new", "40", "--threads", "2", "--limit", limit, "--out", out};
    int n = 18;
    if (flag) argv[n++] = flag, argv[n++] = val;
    argv[n] = NULL;
    return test_spawn(argv, log);
}

static int run_eval(const char *out, const char *limit, const char *flag, const char *val) {
    return test_wait(start_eval(out, limit, flag, val));
}

// The parts of two reports that a resumed run must reproduce exactly.
static int reports_equal(const char *a_path, const char *b_path) {
    json_t *a = json_load_file(a_path, 0, NULL), *b = json_load_file(b_path, 0, NULL);
    const char *keys[] = {"accuracy", "line_acc", "mean_gen_len", "sparsity_per_layer", "sparsity_overall", "problems"};
    int ok = a && b;
    for (int i = 0; ok && i < 6; i++) ok = json_equal(json_object_get(a, keys[i]), json_object_get(b, keys[i]));
    json_t *ra = json_object_get(a, "results"), *rb = json_object_get(b, "results");
    ok = ok && json_array_size(ra) == json_array_size(rb);
    for (size_t i = 0; ok && i < json_array_size(ra); i++) {
        json_t *x = json_array_get(ra, i), *y = json_array_get(rb, i);
        ok = json_equal(json_object_get(x, "output"), json_object_get(y, "output")) &&
             json_equal(json_object_get(x, "correct"), json_object_get(y, "correct")) &&
             json_equal(json_object_get(x, "id"), json_object_get(y, "id"));
    }
    json_decref(a), json_decref(b);
    return ok;
}

static void test_log_path(void) {
    char *a = sample_log_path("runs/r.json"), *b = sample_log_path("report");
    CHECK(!strcmp(a, "runs/r.samples.jsonl") && !strcmp(b, "report.samples.jsonl"));
    free(a), free(b);
}

static void test_straight(void) {
    CHECK(run_eval(test_tmp_path("A.json"), "4", NULL, NULL) == 0);
    CHECK(test_count_lines(test_tmp_path("A.samples.jsonl")) == 5);  // settings + 4 samples
    json_t *a = json_load_file(test_tmp_path("A.json"), 0, NULL);
    CHECK(json_number_value(json_object_get(a, "sparsity_overall")) > 0);  // blocks were skipped
    json_decref(a);
}

static void test_kill_and_rerun(void) {
    const char *out = test_tmp_path("B.json"), *slog = test_tmp_path("B.samples.jsonl");
    pid_t pid = start_eval(out, "4", NULL, NULL);
    double t0 = seer_now();
    while (test_count_lines(slog) < 2 && seer_now() - t0 < 60) usleep(2000);
    kill(pid, SIGKILL);
    int killed = test_wait(pid) == 128 + SIGKILL;
    if (!killed) fprintf(stderr, "    the run finished before the kill\n");
    CHECK(access(out, F_OK) != 0 || !killed);  // no report from a killed run
    CHECK(run_eval(out, "4", NULL, NULL) == 0);
    CHECK(!killed || test_file_has(test_tmp_path("B.json.log"), "they are reused"));
    CHECK(reports_equal(out, test_tmp_path("A.json")));
    CHECK(test_count_lines(slog) == 5);
}

static void test_torn_and_damaged_lines(void) {
    const char *out = test_tmp_path("A.json"), *slog = test_tmp_path("A.samples.jsonl");
    FILE *f = fopen(slog, "a");
    fputs("{\"index\": 3, \"id\": \"p3\", \"out", f);  // a write cut short
    fclose(f);
    CHECK(run_eval(out, "4", NULL, NULL) == 0);
    CHECK(test_file_has(test_tmp_path("A.json.log"), "incomplete last line"));
    CHECK(test_count_lines(slog) == 5 && reports_equal(out, test_tmp_path("B.json")));
    // a damaged line with complete lines after it: refused, nothing written
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "sed -i '3s/.*/garbage/' '%s'", slog);
    CHECK(system(cmd) == 0);
    CHECK(run_eval(out, "4", NULL, NULL) == 1);
    CHECK(test_file_has(test_tmp_path("A.json.log"), "A.samples.jsonl:3: not a sample line"));
    CHECK(test_count_lines(slog) == 5);
}

static void test_other_settings_refused(void) {
    const char *out = test_tmp_path("B.json");
    CHECK(run_eval(out, "4", "--budget", "128") == 1);
    CHECK(test_file_has(test_tmp_path("B.json.log"), "other settings ('budget' differs)"));
    CHECK(test_count_lines(test_tmp_path("B.samples.jsonl")) == 5);
}

// A log holding the first two samples (the settings line and two lines of B's) and --limit 4.
static void test_larger_limit_reuses(void) {
    const char *out = test_tmp_path("C.json");
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "head -n 3 '%s' > '%s'", test_tmp_path("B.samples.jsonl"), test_tmp_path("C.samples.jsonl"));
    CHECK(system(cmd) == 0);
    CHECK(run_eval(out, "4", NULL, NULL) == 0);
    CHECK(test_file_has(test_tmp_path("C.json.log"), "holds 2 finished sample(s)"));
    CHECK(reports_equal(out, test_tmp_path("A.json")));
}

int main(int argc, char **argv) {
    (void)argc;
    if (test_find_seer(seer_bin, sizeof seer_bin, argv[0])) return 1;
    test_tmpdir_make("eval_resume");
    write_problems(test_tmp_path("problems.jsonl"));
    RUN(test_log_path);
    RUN(test_straight);
    RUN(test_kill_and_rerun);
    RUN(test_torn_and_damaged_lines);
    RUN(test_other_settings_refused);
    RUN(test_larger_limit_reuses);
    int rc = test_summary();
    if (test_failed_ == 0) test_tmpdir_remove();
    return rc;
}
