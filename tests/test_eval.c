// test_eval.c: the grader (boxed extraction, normalisation, numbers / letters / lists, the
// testbed's trace score), the CPU decode engine against the prefill forward, the selection
// policies' invariants, and the sampler.
#define _GNU_SOURCE
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ckpt/hf_config.h"
#include "eval/engine.h"
#include "eval/grade.h"
#include "model/forward_cpu.h"
#include "tests/test.h"

// ---------------------------------------------------------------------------------------------
// Grader

static int boxed_is(const char *text, const char *want) {
    char *got = grade_last_boxed(text);
    int ok = want ? got && !strcmp(got, want) : got == NULL;
    if (!ok) fprintf(stderr, "    boxed(%s) = %s, want %s\n", text, got ? got : "NULL", want ? want : "NULL");
    free(got);
    return ok;
}

static void test_boxed(void) {
    CHECK(boxed_is("so \\boxed{42}.", "42"));
    CHECK(boxed_is("\\boxed{1} then \\boxed{\\frac{1}{2}}", "\\frac{1}{2}"));
    CHECK(boxed_is("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"));
    CHECK(boxed_is("</think>\n\n\\boxed{ kzz}", " kzz"));
    CHECK(boxed_is("\\boxed{a{b}c} and \\fbox{7}", "7"));
    CHECK(boxed_is("\\boxed{\\{1,2\\}}", "\\{1,2\\}"));
    CHECK(boxed_is("answer: \\boxed 5 done", "5"));
    CHECK(boxed_is("\\boxed{12", NULL));
    CHECK(boxed_is("no box here", NULL));
    CHECK(boxed_is("\\boxed{}", ""));
}

static void test_normalize(void) {
    char *s = grade_normalize(" \\left( 3, \\dfrac{\\pi}{2} \\right). ");
    CHECK(!strcmp(s, "(3,\\frac{\\pi}{2})"));
    free(s);
    s = grade_normalize("\\text{ B }");
    CHECK(!strcmp(s, "B"));
    free(s);
    s = grade_normalize("$90^\\circ$");
    CHECK(!strcmp(s, "90"));
    free(s);
    s = grade_normalize("x = 5");
    CHECK(!strcmp(s, "5"));
    free(s);
    s = grade_normalize("\\rightarrow");  // not \right followed by "arrow"
    CHECK(!strcmp(s, "\\rightarrow"));
    free(s);
}

static void test_grade(void) {
    CHECK(grade_answer(" kzz", "kzz"));          // the testbed's space inside the box
    CHECK(!grade_answer(" kzy", "kzz"));
    CHECK(grade_answer("\\frac{1}{2}", "0.5"));
    CHECK(grade_answer("-\\dfrac{3}{4}", "-0.75"));
    CHECK(grade_answer("1/3", "0.333333"));
    CHECK(grade_answer("1,000", "1000"));
    CHECK(grade_answer("070", "70"));
    CHECK(grade_answer("50", "0.5"));             // ref * 100
    CHECK(grade_answer("0.5", "50"));             // ref / 100
    CHECK(grade_answer("10\\%", "10"));
    CHECK(!grade_answer("4", "5"));
    CHECK(!grade_answer("5.001", "5"));
    CHECK(grade_answer("(B)", "B"));
    CHECK(grade_answer("\\text{C}", "C"));
    CHECK(grade_answer("D. 10^-11 ev", "D"));
    CHECK(!grade_answer("A", "B"));
    CHECK(grade_answer("3, 1, 2", "1,2,3"));
    CHECK(grade_answer("\\frac{1}{2}, 2", "2, 0.5"));
    CHECK(!grade_answer("1,2", "1,2,3"));
    CHECK(!grade_answer("1,2,2", "1,2,3"));
    CHECK(grade_answer("(3,\\frac{\\pi}{2})", "\\left( 3, \\frac{\\pi}{2} \\right)"));
    CHECK(!grade_answer(NULL, "5"));
    CHECK(!grade_answer("", ""));
    CHECK(!grade_answer("   ", "5"));
}

static const char *TRACE_PROBLEM =
    "Below is a list of arrows between keys.\n\n- aaa bbb\n- ccc ddd\n- bbb ccc\n- ddd eee\n"
    "- eee aaa\n\nStart at aaa and follow the arrows 4 times. Which key do you reach?";

static void test_line_acc(void) {
    const char *good = "<think>\n- aaa bbb, 04 left\n- bbb ccc, 03 left\n- ccc ddd, 02 left\n"
                       "- ddd eee, 01 left\n</think>\n\n\\boxed{ eee}";
    CHECK_CLOSE(grade_trace_line_acc(TRACE_PROBLEM, good), 1.0, 1e-12);
    // Line 2 looks up the wrong dst; line 3 then follows from it correctly (it counts).
    const char *one_bad = "<think>\n- aaa bbb, 04 left\n- bbb ddd, 03 left\n- ddd eee, 02 left\n"
                          "- eee aaa, 01 left\n</think>";
    CHECK_CLOSE(grade_trace_line_acc(TRACE_PROBLEM, one_bad), 0.75, 1e-12);
    // Line 2 does not continue from line 1's dst.
    const char *jump = "- aaa bbb, 04 left\n- ccc ddd, 03 left\n";
    CHECK_CLOSE(grade_trace_line_acc(TRACE_PROBLEM, jump), 0.25, 1e-12);
    CHECK_CLOSE(grade_trace_line_acc(TRACE_PROBLEM, ""), 0.0, 1e-12);
    CHECK(grade_trace_line_acc("What is 1+1?", good) < 0);
}

// ---------------------------------------------------------------------------------------------
// Engine on a tiny random Qwen3 (G = 3, HD = 16, blocks of 64: T = 400 spans seven)

static Model model;
static float *gates;  // [L, gate_param_count(GS)]
static const GateShape GS = {.HKV = 2, .G = 3, .HD = 16, .DG = 8};
enum { TT = 400, VV = 97 };
static int ids[TT];

static void setup_model(void) {
    ModelConfig c = {.arch = ARCH_QWEN3, .D = 48, .L = 2, .H = 6, .HKV = 2, .HD = 16, .F = 40,
                     .V = VV, .rope_theta = 1e4f, .rms_eps = 1e-6f, .tie_embeddings = 1,
                     .qk_norm = 1, .bos_id = 1, .eos_id = 2, .max_pos = 4096};
    SeerErr err;
    if (hf_config_write(&c, test_tmp_path("config.json"), &err) ||
        model_write_random(&c, test_tmpdir, SEER_BF16, 0, 7, &err) || model_load(&model, test_tmpdir, &err))
        seer_die("%s", err.msg);
    int64_t P = gate_param_count(GS);
    gates = xmalloc(sizeof(float) * (size_t)(P * c.L));
    for (int l = 0; l < c.L; l++) gate_params_init(gates + l * P, GS, 11, l);
    uint64_t x = 99;
    for (int t = 0; t < TT; t++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ids[t] = 3 + (int)((x >> 33) % (VV - 3));
    }
}

// m = -1: the gate with its K-compression cache rounded to E4M3 (kcomp_fp8).
static Engine *make_engine(EngineMethod m, int budget, int Tmax) {
    Engine *e = NULL;
    SeerErr err;
    EnginePolicy pol = {.method = m < 0 ? ENGINE_GATE : m, .budget = budget, .kcomp_fp8 = m < 0};
    if (engine_create(&e, &model, gates, model.cfg.L, GS, pol, Tmax, &err)) seer_die("%s", err.msg);
    return e;
}

// Prefills ids[0..P) and steps through ids[P..T); logits[t] ([T, V]) = prediction after token t.
static void run_engine(Engine *e, int P, float *logits) {
    SeerErr err;
    if (engine_prefill(e, ids, P, logits + (size_t)(P - 1) * VV, &err)) seer_die("%s", err.msg);
    for (int t = P; t < TT; t++)
        if (engine_step(e, ids[t], logits + (size_t)t * VV, &err)) seer_die("%s", err.msg);
}

static void test_engine_teacher_forcing(void) {
    float *ref = xmalloc(sizeof(float) * TT * VV), *got = xmalloc(sizeof(float) * TT * VV);
    SeerErr err;
    int T = TT;
    if (forward_cpu(&model, ids, T, &T, 1, ref, FORWARD_LOGITS_ALL, NULL, &err)) seer_die("%s", err.msg);
    int prompts[] = {1, 37, 64};
    for (int i = 0; i < 3; i++) {
        int P = prompts[i];
        Engine *e = make_engine(ENGINE_DENSE, 0, TT);
        run_engine(e, P, got);
        size_t off = (size_t)(P - 1) * VV, n = (size_t)(TT - P + 1) * VV;
        double rel = max_rel_err(got + off, ref + off, (long)n, 1.0);
        if (!(rel <= 1e-4)) fprintf(stderr, "    prompt %d: max rel err %g\n", P, rel);
        CHECK(rel <= 1e-4);
        double sp[2], overall = engine_sparsity(e, sp);
        CHECK(sp[0] == 0 && sp[1] == 0 && overall == 0);
        CHECK(engine_len(e) == TT);
        engine_free(e);
    }
    free(ref), free(got);
}

// A budget larger than the cache selects every block: the same logits as dense.
static void test_engine_all_blocks_is_dense(void) {
    float *dense = xmalloc(sizeof(float) * TT * VV), *got = xmalloc(sizeof(float) * TT * VV);
    Engine *e = make_engine(ENGINE_DENSE, 0, TT);
    run_engine(e, 20, dense);
    engine_free(e);
    EngineMethod ms[] = {ENGINE_GATE, ENGINE_ORACLE, ENGINE_QUEST};
    for (int i = 0; i < 3; i++) {
        e = make_engine(ms[i], 64 * 8, TT);
        run_engine(e, 20, got);
        double rel = max_rel_err(got + 19 * VV, dense + 19 * VV, (long)(TT - 19) * VV, 1.0);
        if (!(rel <= 1e-5)) fprintf(stderr, "    %s: max rel err %g\n", engine_method_name(ms[i]), rel);
        CHECK(rel <= 1e-5);
        CHECK(engine_sparsity(e, NULL) == 0);
        engine_free(e);
    }
    free(dense), free(got);
}

// Checks every head's list of every layer after a step at cache length len: strictly
// descending, within range, block 0 and the current block present, at most max_n entries.
static int lists_ok(const Engine *e, int len, int max_n) {
    int nb_cap, ok = 1, nb = (len + 63) / 64;
    for (int l = 0; l < model.cfg.L; l++) {
        const int32_t *lists = engine_block_lists(e, l, &nb_cap);
        if (!lists) return 0;
        for (int h = 0; h < model.cfg.H; h++) {
            const int32_t *li = lists + (size_t)h * nb_cap;
            int n = 0, has0 = 0, hascur = 0;
            for (; n < nb_cap && li[n] >= 0; n++) {
                ok &= li[n] < nb && (n == 0 || li[n] < li[n - 1]);
                has0 |= li[n] == 0, hascur |= li[n] == nb - 1;
            }
            for (int i = n; i < nb_cap; i++) ok &= li[i] == -1;
            ok &= has0 && hascur && n <= max_n;
        }
    }
    return ok;
}

static void test_engine_selection_invariants(void) {
    EngineMethod ms[] = {ENGINE_GATE, ENGINE_ORACLE, ENGINE_QUEST};
    int max_n[] = {1 + 2, 1 + 2, 3 + 2};  // budget 64: one block (Quest: three pages) + 0 + current
    float *logits = xmalloc(sizeof(float) * VV);
    SeerErr err;
    for (int i = 0; i < 3; i++) {
        Engine *e = make_engine(ms[i], 64, TT);
        int nb_cap;
        CHECK(engine_prefill(e, ids, 5, logits, &err) == 0);
        CHECK(engine_block_lists(e, 0, &nb_cap) == NULL);  // no step yet
        int ok = 1;
        for (int t = 5; t < TT; t++) {
            CHECK(engine_step(e, ids[t], logits, &err) == 0);
            ok &= lists_ok(e, t + 1, max_n[i]);
        }
        CHECK(ok);
        double sp[2], overall = engine_sparsity(e, sp);
        CHECK(sp[0] > 0 && sp[1] > 0 && overall > 0);
        engine_free(e);
    }
    free(logits);
}

// The gate's K-compression cache and Quest's pages built by the prefill equal those built token
// by token. Layer 0's keys depend on the tokens only (deeper layers see the sparse attention of
// the steps), so its lists must agree: prefill T - 60 tokens vs prefill 3 + steps, then the same
// 60 steps, comparing layer 0's lists after each. Also the gate with an E4M3 K-compression cache
// (both paths round it).
static void test_engine_prefill_matches_steps(void) {
    EngineMethod ms[] = {ENGINE_GATE, ENGINE_QUEST, ENGINE_ORACLE, (EngineMethod)-1};
    float *logits = xmalloc(sizeof(float) * VV);
    SeerErr err;
    for (int i = 0; i < 4; i++) {
        Engine *ea = make_engine(ms[i], 64, TT), *eb = make_engine(ms[i], 64, TT);
        int ok = engine_prefill(ea, ids, TT - 60, logits, &err) == 0 &&
                 engine_prefill(eb, ids, 3, logits, &err) == 0;
        for (int t = 3; t < TT - 60 && ok; t++) ok = engine_step(eb, ids[t], logits, &err) == 0;
        for (int t = TT - 60; t < TT && ok; t++) {
            ok = engine_step(ea, ids[t], logits, &err) == 0 && engine_step(eb, ids[t], logits, &err) == 0;
            int nb_a, nb_b;
            const int32_t *la = engine_block_lists(ea, 0, &nb_a), *lb = engine_block_lists(eb, 0, &nb_b);
            ok = ok && la && lb && nb_a == nb_b && !memcmp(la, lb, sizeof(int32_t) * nb_a * model.cfg.H);
        }
        if (!ok) fprintf(stderr, "    %s%s: layer 0 lists differ\n", engine_method_name(ms[i] < 0 ? ENGINE_GATE : ms[i]),
                         ms[i] < 0 ? " (E4M3)" : "");
        CHECK(ok);
        engine_free(ea), engine_free(eb);
    }
    free(logits);
}

static void test_engine_dense_layers(void) {
    Engine *e = NULL;
    SeerErr err;
    EnginePolicy pol = {.method = ENGINE_QUEST, .budget = 64, .dense_layers = 1};
    CHECK(engine_create(&e, &model, NULL, 0, GS, pol, TT, &err) == 0);
    float *logits = xmalloc(sizeof(float) * TT * VV);
    run_engine(e, 10, logits);
    int nb;
    double sp[2];
    engine_sparsity(e, sp);
    CHECK(engine_block_lists(e, 0, &nb) == NULL && engine_block_lists(e, 1, &nb) != NULL);
    CHECK(sp[0] == 0 && sp[1] > 0);
    engine_free(e);
    free(logits);
}

static void test_engine_errors(void) {
    Engine *e = NULL;
    SeerErr err;
    float logits[VV];
    EnginePolicy gate = {.method = ENGINE_GATE, .budget = 256};
    CHECK(engine_create(&e, &model, NULL, 0, GS, gate, 100, &err) == -1 && strstr(err.msg, "gates"));
    GateShape wrong = GS;
    wrong.HD = 8;
    CHECK(engine_create(&e, &model, gates, 2, wrong, gate, 100, &err) == -1 && strstr(err.msg, "fit"));
    CHECK(engine_create(&e, &model, gates, 3, GS, gate, 100, &err) == -1);
    EnginePolicy quest_thr = {.method = ENGINE_QUEST, .budget = 0, .threshold = 0.01f};
    CHECK(engine_create(&e, &model, NULL, 0, GS, quest_thr, 100, &err) == -1);
    EnginePolicy small = {.method = ENGINE_ORACLE, .budget = 32};
    CHECK(engine_create(&e, &model, NULL, 0, GS, small, 100, &err) == -1);
    EnginePolicy dense = {.method = ENGINE_DENSE};
    CHECK(engine_create(&e, &model, NULL, 0, GS, dense, 0, &err) == -1);
    CHECK(engine_create(&e, &model, NULL, 0, GS, dense, 4, &err) == 0);
    CHECK(engine_step(e, 5, logits, &err) == -1 && strstr(err.msg, "prefill"));
    CHECK(engine_prefill(e, ids, 5, logits, &err) == -1);
    CHECK(engine_prefill(e, ids, 3, logits, &err) == 0);
    CHECK(engine_step(e, VV, logits, &err) == -1 && strstr(err.msg, "vocabulary"));
    CHECK(engine_step(e, 5, logits, &err) == 0);
    CHECK(engine_step(e, 5, logits, &err) == -1 && strstr(err.msg, "full"));
    engine_free(e);
    EngineMethod m;
    CHECK(engine_parse_method("quest", &m, &err) == 0 && m == ENGINE_QUEST);
    CHECK(engine_parse_method("window", &m, &err) == -1);
}

// ---------------------------------------------------------------------------------------------
// Sampler

static void test_sampler(void) {
    float logits[5] = {0.5f, 2.0f, 2.0f, -1.0f, 1.0f};
    Sampler greedy = {0};
    CHECK(sampler_pick(&greedy, logits, 5) == 1);  // ties: lowest id
    Sampler k1 = {.temperature = 1, .top_p = 1, .top_k = 1, .state = 3};
    CHECK(sampler_pick(&k1, logits, 5) == 1);
    Sampler p0 = {.temperature = 1, .top_p = 1e-6f, .state = 3};
    CHECK(sampler_pick(&p0, logits, 5) == 1);
    // Two tokens with probabilities 1/4 and 3/4.
    float two[2] = {0.0f, logf(3.0f)};
    Sampler s = {.temperature = 1, .top_p = 1, .state = 42}, s2 = s;
    int ones = 0, same = 1;
    for (int i = 0; i < 4000; i++) {
        int x = sampler_pick(&s, two, 2);
        ones += x;
        same &= x == sampler_pick(&s2, two, 2);
    }
    CHECK(same);
    CHECK(fabs(ones / 4000.0 - 0.75) < 0.03);
    // top_p 0.5 keeps only the 3/4 token.
    Sampler half = {.temperature = 1, .top_p = 0.5f, .state = 1};
    int any0 = 0;
    for (int i = 0; i < 200; i++) any0 |= sampler_pick(&half, two, 2) == 0;
    CHECK(!any0);
}

int main(void) {
    RUN(test_boxed);
    RUN(test_normalize);
    RUN(test_grade);
    RUN(test_line_acc);
    test_tmpdir_make("eval");
    omp_set_num_threads(1);  // the tiny model's per-token ops are far too small to share
    setup_model();
    RUN(test_engine_teacher_forcing);
    RUN(test_engine_all_blocks_is_dense);
    RUN(test_engine_selection_invariants);
    RUN(test_engine_prefill_matches_steps);
    RUN(test_engine_dense_layers);
    RUN(test_engine_errors);
    RUN(test_sampler);
    model_free(&model);
    free(gates);
    test_tmpdir_remove();
    return test_summary();
}
