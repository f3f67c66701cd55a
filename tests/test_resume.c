// test_resume.c: exact resume under SIGKILL. On a tiny random Qwen3 and a tiny shard, runs
// `seer train` N steps straight, then the same run killed with SIGKILL at random moments
// (some land inside a checkpoint write) and resumed each time until done: the final gates,
// AdamW moments and step must be bit-identical. Also: a corrupt checkpoint, another model and a
// changed flag are refused with clear messages, and a run folder with a checkpoint is not
// overwritten without --resume. Runs the real binary: BUILD/seer beside BUILD/tests/.
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ckpt/hf_config.h"
#include "data/shard.h"
#include "model/model.h"
#include "tests/test.h"
#include "train/train_state.h"

static char seer_bin[512];
enum { STEPS = 14 };

static void write_model(const char *name, int D, uint64_t seed) {
    ModelConfig c = {.arch = ARCH_QWEN3, .D = D, .L = 2, .H = 4, .HKV = 2, .HD = 64, .F = 48,
                     .V = 97, .rope_theta = 1e4f, .rms_eps = 1e-6f, .tie_embeddings = 1,
                     .qk_norm = 1, .bos_id = 1, .eos_id = 2, .max_pos = 4096};
    char *dir = test_tmp_path(name), cfg[600];
    mkdir(dir, 0755);
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    SeerErr err;
    if (hf_config_write(&c, cfg, &err) || model_write_random(&c, dir, SEER_BF16, 0, seed, &err))
        seer_die("%s", err.msg);
}

// 10 chunks of one or two documents of 130..300 tokens (ids < 97).
static void write_shard(const char *path) {
    SeerErr err;
    ShardWriter *w = shard_writer_create(path, &err);
    if (!w) seer_die("%s", err.msg);
    uint64_t x = 12345;
    int32_t ids[600], lens[2];
    for (int c = 0; c < 10; c++) {
        int nd = 1 + c % 2, n = 0;
        for (int d = 0; d < nd; d++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            lens[d] = 130 + (int)((x >> 33) % 171);
            for (int i = 0; i < lens[d]; i++, n++) {
                x = x * 6364136223846793005ull + 1442695040888963407ull;
                ids[n] = 3 + (int)((x >> 33) % 94);
            }
        }
        if (shard_writer_add_chunk(w, ids, n, lens, nd, &err)) seer_die("%s", err.msg);
    }
    ShardMeta m = {.tokenizer_hash = "test", .max_len = 600, .seed = 1, .long_policy = "skip"};
    if (shard_writer_finish(w, &m, &err)) seer_die("%s", err.msg);
}

// Starts `seer train` on run folder `out` (with --resume when resume), output to out.log.
static pid_t start_train(const char *out, int resume, const char *extra_flag, const char *extra_val,
                         const char *model) {
    char log[600], steps[16];
    snprintf(log, sizeof log, "%s.log", out);
    snprintf(steps, sizeof steps, "%d", STEPS);
    const char *argv[32] = {seer_bin, "train", "--model", model, "--data", test_tmp_path("tokens.h5"),
                            "--out", out, "--max-steps", steps, "--chunks-per-step", "2",
                            "--warmup", "3", "--lr", "0.01", "--ckpt-every", "1",
                            "--threads", "2"};
    int n = 20;
    if (resume) argv[n++] = "--resume";
    if (extra_flag) argv[n++] = extra_flag, argv[n++] = extra_val;
    argv[n] = NULL;
    return test_spawn(argv, log);
}

static int run_train(const char *out, int resume, const char *flag, const char *val, const char *model) {
    return test_wait(start_train(out, resume, flag, val, model));
}

static int log_has(const char *out, const char *needle) {
    char path[600];
    snprintf(path, sizeof path, "%s.log", out);
    return test_file_has(path, needle);
}

static void load_ckpt(const char *dir, TrainState *s) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, TRAIN_STATE_FILE);
    SeerErr err;
    memset(s, 0, sizeof *s);
    if (access(path, F_OK) != 0) return;  // killed before its first checkpoint
    if (train_state_load(path, s, &err)) {
        fprintf(stderr, "    %s\n", err.msg);
        memset(s, 0, sizeof *s);
    }
}

static double straight_s;  // wall time of the straight run

static void test_straight_run(void) {
    double t = seer_now();
    CHECK(run_train(test_tmp_path("A"), 0, NULL, NULL, test_tmp_path("model")) == 0);
    straight_s = seer_now() - t;
    TrainState a;
    load_ckpt(test_tmp_path("A"), &a);
    CHECK(a.step == STEPS && a.params != NULL);
    train_state_free(&a);
}

static void test_kill_and_resume_is_exact(void) {
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    int kills = 0, in_write = 0;
    char B[512];
    snprintf(B, sizeof B, "%s", test_tmp_path("B"));
    // The first kill waits a random time in the first fifth of a straight run, then for the next
    // checkpoint write to be under way (its temp file appears; the writer pauses half-way, see
    // train_state.h) and lands inside it. Then up to 4 kills at random moments in the next
    // 0.3 run-lengths, each followed by a resume: early enough that the first resume is always
    // killed before it finishes, even on a loaded machine.
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", B, TRAIN_STATE_FILE);
    setenv("SEER_FAULT_CKPT_PAUSE_US", "20000", 1);
    pid_t pid = start_train(B, 0, NULL, NULL, test_tmp_path("model"));
    usleep((useconds_t)(straight_s * 1e6 * 0.2 * rand() / (double)RAND_MAX));
    double t_end = seer_now() + 60;
    while (access(tmp, F_OK) != 0 && seer_now() < t_end) usleep(200);
    kill(pid, SIGKILL);
    if (test_wait(pid) == 128 + SIGKILL) kills++, in_write += access(tmp, F_OK) == 0;
    unsetenv("SEER_FAULT_CKPT_PAUSE_US");
    for (int i = 0; i < 4; i++) {
        pid = start_train(B, 1, NULL, NULL, test_tmp_path("model"));
        usleep((useconds_t)(straight_s * 1e6 * 0.3 * rand() / (double)RAND_MAX));
        kill(pid, SIGKILL);
        if (test_wait(pid) != 128 + SIGKILL) break;  // it finished first
        kills++;
    }
    CHECK(kills >= 2 && in_write == 1);
    CHECK(run_train(B, 1, NULL, NULL, test_tmp_path("model")) == 0);
    printf("    %d SIGKILLs (%d during a checkpoint write), kill seed %u\n", kills, in_write, seed);
    TrainState a, b;
    load_ckpt(test_tmp_path("A"), &a);
    load_ckpt(B, &b);
    CHECK(a.params && b.params && a.n_params == b.n_params && b.step == STEPS);
    if (a.params && b.params && a.n_params == b.n_params) {
        size_t nb = (size_t)a.n_params * sizeof(float);
        CHECK(memcmp(a.params, b.params, nb) == 0);
        CHECK(memcmp(a.m, b.m, nb) == 0 && memcmp(a.v, b.v, nb) == 0);
        CHECK(a.tokens == b.tokens && a.adam_t == b.adam_t);
        CHECK(memcmp(a.cursor, b.cursor, a.cursor_len) == 0);
    }
    train_state_free(&a);
    train_state_free(&b);
}

static void test_refusals(void) {
    const char *A = test_tmp_path("A");
    // Without --resume an existing run folder is not overwritten.
    CHECK(run_train(A, 0, NULL, NULL, test_tmp_path("model")) == 1 && log_has(A, "pass --resume"));
    // A changed hyperparameter on resume.
    CHECK(run_train(A, 1, "--seed", "7", test_tmp_path("model")) == 1 && log_has(A, "--seed 7 differs"));
    // Another model (same shape, other weights).
    CHECK(run_train(A, 1, NULL, NULL, test_tmp_path("model2")) == 1 && log_has(A, "another model"));
    // A corrupt checkpoint.
    char *ck = test_tmp_path("A/" TRAIN_STATE_FILE);
    FILE *f = fopen(ck, "r+b");
    fseek(f, 1000, SEEK_SET);
    int c = fgetc(f);
    fseek(f, 1000, SEEK_SET);
    fputc(c ^ 1, f);
    fclose(f);
    CHECK(run_train(A, 1, NULL, NULL, test_tmp_path("model")) == 1 && log_has(A, "checkpoint is corrupt"));
}

int main(int argc, char **argv) {
    (void)argc;
    if (test_find_seer(seer_bin, sizeof seer_bin, argv[0])) return 1;
    test_tmpdir_make("resume");
    write_model("model", 32, 42);
    write_model("model2", 32, 43);
    write_shard(test_tmp_path("tokens.h5"));
    RUN(test_straight_run);
    RUN(test_kill_and_resume_is_exact);
    RUN(test_refusals);
    if (test_failed_ == 0) test_tmpdir_remove();
    if (test_failed_) fprintf(stderr, "    logs kept in %s\n", test_tmpdir);
    return test_summary();
}
