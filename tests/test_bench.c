// test_bench.c: the host-side helpers of `seer bench` (packed-chunk document lengths, option parsing,
// the refusals of `seer bench decode`'s --graph, --pdl and --floor, its sparse points' rotated
// block lists).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/bench.h"
#include "tests/test.h"

// The list repeats until T tokens are used; the last length (and any longer than T) is cut.
static void test_make_docs_repeats_and_cuts(void) {
    int lens[100];
    SeerErr err;
    CHECK(bench_make_docs(lens, "30,50", 100, &err) == 3);
    CHECK(lens[0] == 30 && lens[1] == 50 && lens[2] == 20);
    CHECK(bench_make_docs(lens, "6000", 100, &err) == 1);
    CHECK(lens[0] == 100);
    CHECK(bench_make_docs(lens, "1", 7, &err) == 7);
    int sum = 0;
    for (int i = 0; i < 7; i++) sum += lens[i];
    CHECK(sum == 7 && lens[6] == 1);
    CHECK(bench_make_docs(lens, "40,60", 100, &err) == 2);
    CHECK(lens[0] == 40 && lens[1] == 60);
}

// An empty list used to loop forever; bad entries used to become 1-token documents.
static void test_make_docs_refusals(void) {
    int lens[10];
    SeerErr err;
    const char *bad[] = {"", ",", "5,", ",5", "5,,5", "0", "-3", "abc", "5x", "99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err.msg[0] = 0;
        CHECK(bench_make_docs(lens, bad[i], 10, &err) == -1);
        CHECK(!strncmp(err.msg, "--docs: ", 8));
    }
    CHECK(bench_make_docs(lens, "5", 0, &err) == -1);
}

// Exit status of bench_flag_int(flag, v, lo, hi) run in a child (0 when it returned want).
static int flag_int_status(const char *v, long lo, long hi, long want) {
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        _exit(bench_flag_int("--n", v, lo, hi) == want ? 0 : 1);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_flag_int(void) {
    CHECK(flag_int_status("42", 1, 100, 42) == 0);
    CHECK(flag_int_status("1", 1, 100, 1) == 0);
    CHECK(flag_int_status("100", 1, 100, 100) == 0);
    const char *bad[] = {"", "0", "101", "-3", "12abc", "4.5", "abc"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(flag_int_status(bad[i], 1, 100, 0) == 2);
}

// An option without its value exits with status 2, like a bad value.
static void test_missing_value(void) {
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        bench_missing_value("bench decode", "--batch");
    }
    int st;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2);
}

int bench_decode_main(int argc, char **argv);  // bench/bench_decode.c

// Exit status of `seer bench decode ARGS...` run in a child; its stderr (up to cap - 1 bytes) in msg.
// Only for arguments refused while parsing, before any CUDA call.
static int decode_status(char *msg, size_t cap, int argc, char **argv) {
    char path[] = "/tmp/seer_test_bench_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, 2);
        _exit(bench_decode_main(argc, argv) == 0 ? 0 : 1);
    }
    int status = test_wait(pid);
    ssize_t n = pread(fd, msg, cap - 1, 0);
    msg[n > 0 ? n : 0] = 0;
    close(fd), unlink(path);
    return status;
}

// `seer bench decode ARGS...` is refused with exit status 2 and stderr containing want.
static int decode_refused(int argc, char **argv, const char *want) {
    char msg[512];
    return decode_status(msg, sizeof msg, argc, argv) == 2 && strstr(msg, want) != NULL;
}

// --graph takes 0 or 1 like --pdl: another value or none is refused with exit status 2.
static void test_decode_graph_flag(void) {
    char *bad[] = {"decode", "--graph", "2"};
    CHECK(decode_refused(3, bad, "seer: bench: --graph needs an integer in [0, 1], got '2'"));
    char *missing[] = {"decode", "--graph"};
    CHECK(decode_refused(2, missing, "seer: bench decode: --graph needs a value (seer bench decode --help)"));
    char *pdl[] = {"decode", "--pdl", "2"};  // the same refusal as its model
    CHECK(decode_refused(3, pdl, "seer: bench: --pdl needs an integer in [0, 1], got '2'"));
}

// --floor takes 0 or 1 like --graph: another value or none is refused with exit status 2.
static void test_decode_floor_flag(void) {
    char *bad[] = {"decode", "--floor", "2"};
    CHECK(decode_refused(3, bad, "seer: bench: --floor needs an integer in [0, 1], got '2'"));
    char *word[] = {"decode", "--floor", "yes"};
    CHECK(decode_refused(3, word, "seer: bench: --floor needs an integer in [0, 1], got 'yes'"));
    char *missing[] = {"decode", "--floor"};
    CHECK(decode_refused(2, missing, "seer: bench decode: --floor needs a value (seer bench decode --help)"));
    char *after_ok[] = {"decode", "--floor", "1", "--graph", "7"};  // --floor 1 itself is taken
    char msg[512];
    CHECK(decode_status(msg, sizeof msg, 5, after_ok) == 2);
    CHECK(strstr(msg, "--graph needs an integer") != NULL && !strstr(msg, "--floor"));
}

// --queue takes a tile count in [0, 4096].
static void test_decode_queue_flag(void) {
    char *neg[] = {"decode", "--queue", "-1"};
    CHECK(decode_refused(3, neg, "seer: bench: --queue needs an integer in [0, 4096], got '-1'"));
    char *missing[] = {"decode", "--queue"};
    CHECK(decode_refused(2, missing, "seer: bench decode: --queue needs a value (seer bench decode --help)"));
}

static void test_parse_list(void) {
    double v[3];
    CHECK(bench_parse_list(v, 3, "0,0.5,0.9", 0) == 3 && v[0] == 0 && v[1] == 0.5 && v[2] == 0.9);
    CHECK(bench_parse_list(v, 3, "8k,131072", 1) == 2 && v[0] == 8192 && v[1] == 131072);
    CHECK(bench_parse_list(v, 3, "8k", 0) == -1);         // k only where lengths are parsed
    CHECK(bench_parse_list(v, 3, "1,2,3,4", 0) == -1);    // more than max
    const char *bad[] = {"", ",", "abc", "1,x", "2kk"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) CHECK(bench_parse_list(v, 3, bad[i], 1) == -1);
}

// Slots: the buffers' count, raised until the slots' reads exceed 4x L2, capped at 64.
static void test_rotation_slots(void) {
    CHECK(bench_rotation_slots(1, 214e6, 52e6) == 1);   // B16 32k 90%: 214 MB a call already
    CHECK(bench_rotation_slots(1, 26.8e6, 52e6) == 8);  // B1 64k 90%: 27 MB a call
    CHECK(bench_rotation_slots(7, 3.4e6, 52e6) == 62);
    CHECK(bench_rotation_slots(3, 1e3, 52e6) == 64);
    CHECK(bench_rotation_slots(5, 0, 52e6) == 5);       // dense: the buffers as they are
}

// Every slot's list is descending, distinct and in range; slots on one buffer read disjoint
// blocks while their windows fit, and wrap (overlap) only past that.
static void test_block_lists(void) {
    enum { SLOTS = 6, NBUF = 2, PAIRS = 3, NB = 40, NSEL = 12 };
    int32_t idx[SLOTS * PAIRS * NSEL];
    uint32_t rng = 7;
    bench_block_lists(idx, SLOTS, NBUF, PAIRS, NB, NSEL, &rng);
    for (int p = 0; p < PAIRS; p++) {
        int seen[NBUF][NB] = {{0}};
        for (int s = 0; s < SLOTS; s++) {
            const int32_t *l = idx + (s * PAIRS + p) * NSEL;
            for (int i = 0; i < NSEL; i++) {
                CHECK(l[i] >= 0 && l[i] < NB);
                if (i) CHECK(l[i] < l[i - 1]);
                seen[s % NBUF][l[i]]++;
            }
        }
        for (int b = 0; b < NBUF; b++) {  // 3 windows of 12 on each buffer: 36 of 40 blocks, once
            int once = 0, more = 0;
            for (int j = 0; j < NB; j++) once += seen[b][j] == 1, more += seen[b][j] > 1;
            CHECK(once == 3 * NSEL && more == 0);
        }
    }
    int32_t wrap[4 * NSEL];  // one pair, one buffer, 4 windows of 12 over 40 blocks: 8 repeat
    bench_block_lists(wrap, 4, 1, 1, NB, NSEL, &rng);
    int count[NB] = {0}, twice = 0;
    for (int i = 0; i < 4 * NSEL; i++) count[wrap[i]]++;
    for (int j = 0; j < NB; j++) {
        CHECK(count[j] >= 1);
        twice += count[j] == 2;
    }
    CHECK(twice == 4 * NSEL - NB);
}

int main(void) {
    RUN(test_make_docs_repeats_and_cuts);
    RUN(test_make_docs_refusals);
    RUN(test_flag_int);
    RUN(test_missing_value);
    RUN(test_parse_list);
    RUN(test_decode_graph_flag);
    RUN(test_decode_floor_flag);
    RUN(test_decode_queue_flag);
    RUN(test_rotation_slots);
    RUN(test_block_lists);
    return test_summary();
}
