// test_train.c: AdamW, clipping, the schedule, the checkpoint file (round trip, corruption,
// identity checks), the metrics log (resume truncation, torn lines) and the SVG chart.
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/test.h"
#include "train/adamw.h"
#include "train/run_log.h"
#include "train/schedule.h"
#include "train/train_state.h"

// ---------------------------------------------------------------- AdamW

// Three AdamW steps against the formula written out in double (PyTorch's AdamW).
static void test_adamw_matches_formula(void) {
    AdamWHyper hp = adamw_default_hyper();
    hp.weight_decay = 0.1f;  // exercise the decoupled decay too
    enum { N = 7 };
    float p[N], g[N];
    double rp[N], rm[N] = {0}, rv[N] = {0};
    for (int i = 0; i < N; i++) p[i] = (float)(rp[i] = 0.3 * i - 1.0);
    AdamW opt;
    adamw_init(&opt, N, hp);
    float lrs[3] = {1e-3f, 5e-4f, 2e-3f};
    for (int s = 0; s < 3; s++) {
        for (int i = 0; i < N; i++) g[i] = (float)sin(1.7 * i + s) * (i == 3 ? 1e-6f : 1.0f);
        adamw_step(&opt, p, g, lrs[s]);
        double lr = lrs[s], b1 = 0.9, b2 = 0.999, t = s + 1;
        for (int i = 0; i < N; i++) {
            rm[i] = b1 * rm[i] + (1 - b1) * g[i];
            rv[i] = b2 * rv[i] + (1 - b2) * (double)g[i] * g[i];
            double mh = rm[i] / (1 - pow(b1, t)), vh = rv[i] / (1 - pow(b2, t));
            rp[i] = rp[i] * (1 - lr * 0.1) - lr * mh / (sqrt(vh) + 1e-8);
        }
    }
    for (int i = 0; i < N; i++) CHECK_CLOSE(p[i], rp[i], 1e-6);
    CHECK(opt.t == 3);
    adamw_free(&opt);
}

static void test_adamw_zero_params(void) {
    AdamW opt;
    adamw_init(&opt, 0, adamw_default_hyper());
    adamw_step(&opt, NULL, NULL, 1e-3f);
    CHECK(opt.t == 1);
    adamw_free(&opt);
}

static void test_clip(void) {
    float g[4] = {3, 4, 0, 0};
    double n = adamw_clip_grad(g, 4, 1.0);
    CHECK_CLOSE(n, 5.0, 1e-12);
    CHECK_CLOSE(adamw_grad_norm(g, 4), 1.0, 1e-5);
    float h[2] = {0.3f, 0.4f};
    CHECK_CLOSE(adamw_clip_grad(h, 2, 1.0), 0.5, 1e-6);
    CHECK(h[0] == 0.3f && h[1] == 0.4f);  // below the limit: untouched
    float k[2] = {30, 40};
    adamw_clip_grad(k, 2, 0);  // disabled
    CHECK(k[0] == 30 && k[1] == 40);
    float nan_g[2] = {NAN, 1};
    CHECK(isnan(adamw_grad_norm(nan_g, 2)));
}

// ---------------------------------------------------------------- schedule

static void test_schedule(void) {
    LrSchedule s = {.lr = 1e-3f, .min_lr = 1e-5f, .warmup = 20, .max_steps = 800};
    CHECK_CLOSE(schedule_lr(&s, 0), 1e-3 / 20, 1e-6);
    CHECK_CLOSE(schedule_lr(&s, 19), 1e-3, 1e-6);
    CHECK_CLOSE(schedule_lr(&s, 20), 1e-3, 1e-6);
    CHECK_CLOSE(schedule_lr(&s, 799), 1e-5, 1e-9);
    CHECK_CLOSE(schedule_lr(&s, 5000), 1e-5, 1e-9);
    double mid = 1e-5 + (1e-3 - 1e-5) * 0.5;  // half way through the cosine
    CHECK_CLOSE(schedule_lr(&s, 20 + (799 - 20) / 2), mid, 2e-3);
    for (int i = 21; i < 800; i++) CHECK(schedule_lr(&s, i) <= schedule_lr(&s, i - 1));
    LrSchedule w = {.lr = 1.0f, .min_lr = 0.0f, .warmup = 0, .max_steps = 1};
    CHECK(schedule_lr(&w, 0) == 1.0f);
}

// ---------------------------------------------------------------- checkpoint file

static void fill_state(TrainState *s, int64_t n) {
    memset(s, 0, sizeof *s);
    snprintf(s->model_sig, sizeof s->model_sig, "qwen3 D64 L2 test");
    s->L = 2, s->HKV = 1, s->G = 2, s->HD = 8, s->DG = 4;
    s->n_params = n;
    s->step = 7, s->tokens = 12345, s->adam_t = 7, s->elapsed_s = 1.5;
    s->seed = 0xfedcba9876543210ull;
    s->cursor_len = 5;
    s->cursor = (uint8_t *)xstrdup("abcd");
    s->config_json = xstrdup("{\"lr\":0.001,\"model\":\"x\"}");
    s->params = xmalloc((size_t)n * 4), s->m = xmalloc((size_t)n * 4), s->v = xmalloc((size_t)n * 4);
    for (int64_t i = 0; i < n; i++) s->params[i] = (float)i * 0.5f, s->m[i] = -(float)i, s->v[i] = (float)i * i;
}

static void test_ckpt_roundtrip(void) {
    TrainState a, b;
    SeerErr err;
    fill_state(&a, 1000);
    const char *path = test_tmp_path("ck.seer");
    CHECK(train_state_save(path, &a, &err) == 0);
    CHECK(access(test_tmp_path("ck.seer.tmp"), F_OK) != 0);  // no temp file left behind
    CHECK(train_state_load(path, &b, &err) == 0);
    CHECK(train_state_check(&b, &a, path, &err) == 0);
    CHECK(b.step == 7 && b.tokens == 12345 && b.adam_t == 7 && b.seed == a.seed);
    CHECK(b.cursor_len == 5 && !memcmp(b.cursor, "abcd", 5));
    CHECK(!memcmp(b.params, a.params, 4000) && !memcmp(b.m, a.m, 4000) && !memcmp(b.v, a.v, 4000));
    CHECK(strstr(b.config_json, "\"lr\"") != NULL);
    train_state_free(&b);
    train_state_free(&a);
}

static int load_fails_with(const char *path, const char *needle) {
    TrainState s;
    SeerErr err;
    int rc = train_state_load(path, &s, &err);
    if (rc == 0) {
        train_state_free(&s);
        return 0;
    }
    if (!strstr(err.msg, needle)) fprintf(stderr, "    message: %s\n", err.msg);
    return strstr(err.msg, needle) != NULL && strstr(err.msg, path) != NULL;
}

static void test_ckpt_corrupt_refused(void) {
    TrainState a;
    SeerErr err;
    fill_state(&a, 100);
    const char *path = test_tmp_path("bad.seer");
    CHECK(train_state_save(path, &a, &err) == 0);
    struct stat st;
    stat(path, &st);
    FILE *f = fopen(path, "r+b");  // flip one bit in the middle of the parameters
    fseek(f, st.st_size / 2, SEEK_SET);
    int c = fgetc(f);
    fseek(f, st.st_size / 2, SEEK_SET);
    fputc(c ^ 4, f);
    fclose(f);
    CHECK(load_fails_with(path, "corrupt"));
    CHECK(truncate(path, st.st_size - 3) == 0);
    CHECK(load_fails_with(path, "truncated"));
    CHECK(truncate(path, 10) == 0);
    CHECK(load_fails_with(path, "not a seer checkpoint"));
    CHECK(load_fails_with(test_tmp_path("missing.seer"), "cannot open"));
    train_state_free(&a);
}

static void test_ckpt_identity(void) {
    TrainState a, b;
    SeerErr err;
    fill_state(&a, 10);
    fill_state(&b, 10);
    b.HD = 16;
    CHECK(train_state_check(&a, &b, "p", &err) == -1 && strstr(err.msg, "gate shape"));
    b.HD = a.HD;
    snprintf(b.model_sig, sizeof b.model_sig, "other");
    CHECK(train_state_check(&a, &b, "p", &err) == -1 && strstr(err.msg, "another model"));
    snprintf(b.model_sig, sizeof b.model_sig, "%s", a.model_sig);
    b.n_params = 11;
    CHECK(train_state_check(&a, &b, "p", &err) == -1 && strstr(err.msg, "parameters"));
    train_state_free(&a);
    train_state_free(&b);
}

// ---------------------------------------------------------------- metrics log and charts

static void test_run_log_resume(void) {
    RunLog log;
    SeerErr err;
    double ll[2] = {0.5, 0.25};
    CHECK(run_log_open(&log, test_tmpdir, 2, -1, &err) == 0);
    for (int s = 1; s <= 5; s++) {
        StepMetrics m = {.step = s, .loss = 1.0 / s, .layer_loss = ll, .lr = 1e-3, .tokens = 100 * s};
        CHECK(run_log_append(&log, &m, &err) == 0);
    }
    CHECK(run_log_write_svg(&log, &err) == 0);
    run_log_close(&log);
    const char *mp = test_tmp_path("metrics.jsonl");
    FILE *f = fopen(mp, "a");  // a torn line, as after kill -9 in the middle of a write
    fputs("{\"step\":6,\"lo", f);
    fclose(f);
    CHECK(run_log_open(&log, test_tmpdir, 2, 3, &err) == 0);  // checkpoint was at step 3
    CHECK(log.n == 3 && log.steps[2] == 3);
    CHECK_CLOSE(log.layer_loss[2 * 2 + 1], 0.25, 1e-12);
    run_log_close(&log);
    CHECK(test_count_lines(mp) == 3);
    f = fopen(mp, "a");  // a broken line in the middle is an error with its line number
    fputs("not json\n{\"step\":4,\"loss\":1}\n", f);
    fclose(f);
    CHECK(run_log_open(&log, test_tmpdir, 2, 10, &err) == -1 && strstr(err.msg, "metrics.jsonl:4"));
    struct stat st;
    CHECK(stat(test_tmp_path("loss.svg"), &st) == 0 && st.st_size > 500);
}

static void test_chart_edge_cases(void) {
    SeerErr err;
    double x[1] = {3}, y[1] = {0.0};
    ChartSeries s[2] = {{.name = "one point", .x = x, .y = y, .n = 1, .bold = 1},
                        {.name = "empty", .x = x, .y = y, .n = 0}};
    CHECK(run_log_write_chart(test_tmp_path("c1.svg"), "t", "x", "y", s, 2, 1, &err) == 0);
    CHECK(run_log_write_chart(test_tmp_path("c2.svg"), "t", "x", "y", s, 2, 0, &err) == 0);
    CHECK(run_log_write_chart(test_tmp_path("c3.svg"), "t", "x", "y", NULL, 0, 0, &err) == 0);
    CHECK(run_log_write_chart("/nonexistent/dir/c.svg", "t", "x", "y", s, 1, 0, &err) == -1);
    FILE *f = fopen(test_tmp_path("c1.svg"), "r");
    char buf[4096] = {0};
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) > 0);
    if (f) fclose(f);
    CHECK(strstr(buf, "<svg") && strstr(buf, "</svg>") && !strstr(buf, "nan") && !strstr(buf, "inf"));
}

int main(void) {
    test_tmpdir_make("train");
    RUN(test_adamw_matches_formula);
    RUN(test_adamw_zero_params);
    RUN(test_clip);
    RUN(test_schedule);
    RUN(test_ckpt_roundtrip);
    RUN(test_ckpt_corrupt_refused);
    RUN(test_ckpt_identity);
    RUN(test_run_log_resume);
    RUN(test_chart_edge_cases);
    test_tmpdir_remove();
    return test_summary();
}
