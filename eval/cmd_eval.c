// cmd_eval.c: `seer eval`: generate answers to AIME / MATH / GPQA-style JSONL problems (or the
// testbed's) with dense, gated-sparse, oracle or Quest attention on the CPU engine, grade them and
// report accuracy, generation length, per-layer sparsity and speed (eval/engine.h, eval/grade.h).
#define _GNU_SOURCE
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt/gate_export.h"
#include "common/commands.h"
#include "common/progress.h"
#include "data/chat_template.h"
#include "data/tokenizer.h"
#include "eval/engine.h"
#include "eval/grade.h"
#include "eval/sample_log.h"

#define EVAL_MATH_SUFFIX "\nPlease reason step by step, and put your final answer within \\boxed{}."

static void eval_usage(FILE *f) {
    fprintf(f,
            "usage: seer eval --model DIR --data FILE.jsonl --method dense|gate|oracle|quest\n"
            "                 [--gates DIR] [--budget 256 | --threshold X] [options]\n\n"
            "Generates an answer for every problem on the CPU: the prompt goes through the chat\n"
            "template (generation prompt, thinking on), prefill is dense, and every decode step\n"
            "attends per layer only to the 64-token blocks the method selects (block 0 and the\n"
            "current block always kept). The last \\boxed{} of the output is graded against\n"
            "\"answer\" (strings, numbers, choice letters, unordered lists). Prints accuracy, mean\n"
            "generation length, sparsity per layer and tokens/s; for the testbed's pointer-chasing\n"
            "problems also the line accuracy of the trace.\n\n"
            "  --model DIR         Hugging Face model folder (config, safetensors, tokenizer)\n"
            "  --data FILE.jsonl   rows with \"problem\" (the math instruction is appended) or\n"
            "                      \"question\" (used as is), and \"answer\"; \"id\" optional\n"
            "  --method M          dense | gate | oracle | quest\n"
            "  --gates DIR         gate folder or `seer train` run folder (needed by gate)\n"
            "  --budget N          tokens kept per layer and KV group: N/64 blocks; Quest keeps\n"
            "                      max(3, N/64) pages per query head (256)\n"
            "  --threshold X       gate / oracle: keep blocks with probability > X instead\n"
            "  --dense-layers N    the first N layers attend densely (0)\n"
            "  --rope-last         gate: RoPE block j's key at j*64+63 (the release's decode quirk)\n"
            "  --kcomp-fp8         gate: K-compression cache rounded to fp8 E4M3, as the GPU's\n"
            "                      optional E4M3 cache (bench select --kcomp fp8) stores it\n"
            "  --limit N           only the first N problems\n"
            "  --samples N         generations per problem; accuracy is the mean (1)\n"
            "  --max-new N         generated tokens at most (256)\n"
            "  --temperature T     0 = greedy (default); e.g. 0.6 to sample\n"
            "  --top-p P           nucleus mass when sampling (0.95)\n"
            "  --top-k K           keep the K most likely tokens first, 0 = off (0)\n"
            "  --seed S            sampling seed (0)\n"
            "  --suffix TEXT       text appended to \"problem\" rows (the math instruction)\n"
            "  --no-suffix         append nothing\n"
            "  --out FILE.json     write every number and every output as JSON; each graded sample\n"
            "                      also goes at once to FILE.samples.jsonl, and a rerun with the\n"
            "                      same settings reuses those samples (resume after a crash, or\n"
            "                      a larger --limit)\n"
            "  --threads N         CPU threads (all cores)\n");
}

typedef struct {
    const char *model, *data, *gates, *out, *suffix;
    EnginePolicy pol;
    long limit, samples, max_new, top_k, threads;
    double temperature, top_p;
    unsigned long long seed;
} EvalArgs;

// ---------------------------------------------------------------------------------------------
// Arguments

static int parse_flag_long(const char *flag, const char *v, long lo, long hi, long *out, SeerErr *err) {
    if (parse_long(v, lo, hi, out))
        return seer_fail(err, "%s needs an integer in [%ld, %ld], got '%s'", flag, lo, hi, v);
    return 0;
}

static int parse_double(const char *flag, const char *v, double lo, double hi, double *out,
                        SeerErr *err) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !(x >= lo && x <= hi))
        return seer_fail(err, "%s needs a number in [%g, %g], got '%s'", flag, lo, hi, v);
    *out = x;
    return 0;
}

// One flag with a value; 0 when handled, 1 when unknown, -1 with err on a bad value.
static int eval_parse_value(EvalArgs *a, const char *f, const char *v, SeerErr *err) {
    long n;
    double x;
    if (!strcmp(f, "--model")) a->model = v;
    else if (!strcmp(f, "--data")) a->data = v;
    else if (!strcmp(f, "--gates")) a->gates = v;
    else if (!strcmp(f, "--out")) a->out = v;
    else if (!strcmp(f, "--suffix")) a->suffix = v;
    else if (!strcmp(f, "--method")) return engine_parse_method(v, &a->pol.method, err);
    else if (!strcmp(f, "--budget")) {
        if (parse_flag_long(f, v, 1, 1 << 24, &n, err)) return -1;
        a->pol.budget = (int)n;
    } else if (!strcmp(f, "--threshold")) {
        if (parse_double(f, v, 0, 0.999999, &x, err)) return -1;
        a->pol.threshold = (float)x, a->pol.budget = 0;
    } else if (!strcmp(f, "--dense-layers")) {
        if (parse_flag_long(f, v, 0, 100000, &n, err)) return -1;
        a->pol.dense_layers = (int)n;
    } else if (!strcmp(f, "--limit")) return parse_flag_long(f, v, 1, 1L << 30, &a->limit, err);
    else if (!strcmp(f, "--samples")) return parse_flag_long(f, v, 1, 1 << 20, &a->samples, err);
    else if (!strcmp(f, "--max-new")) return parse_flag_long(f, v, 1, 1 << 24, &a->max_new, err);
    else if (!strcmp(f, "--top-k")) return parse_flag_long(f, v, 0, 1 << 24, &a->top_k, err);
    else if (!strcmp(f, "--threads")) return parse_flag_long(f, v, 1, 4096, &a->threads, err);
    else if (!strcmp(f, "--temperature")) return parse_double(f, v, 0, 100, &a->temperature, err);
    else if (!strcmp(f, "--top-p")) return parse_double(f, v, 1e-6, 1, &a->top_p, err);
    else if (!strcmp(f, "--seed")) {
        if (parse_flag_long(f, v, 0, 0x7fffffffffffffffL, &n, err)) return -1;
        a->seed = (unsigned long long)n;
    } else return 1;
    return 0;
}

// Returns 0, 1 for --help, -1 with err.
static int eval_parse_args(int argc, char **argv, EvalArgs *a, SeerErr *err) {
    *a = (EvalArgs){.suffix = EVAL_MATH_SUFFIX, .pol = {.method = ENGINE_DENSE, .budget = 256},
                    .samples = 1, .max_new = 256, .top_p = 0.95};
    int method_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) return 1;
        if (!strcmp(f, "--no-suffix")) { a->suffix = ""; continue; }
        if (!strcmp(f, "--rope-last")) { a->pol.rope_last = 1; continue; }
        if (!strcmp(f, "--kcomp-fp8")) { a->pol.kcomp_fp8 = 1; continue; }
        if (!v) return seer_fail(err, "%s: unknown flag or missing value (see seer eval --help)", f);
        int r = eval_parse_value(a, f, v, err);
        if (r < 0) return -1;
        if (r > 0) return seer_fail(err, "%s: unknown flag (see seer eval --help)", f);
        method_set |= !strcmp(f, "--method");
        i++;
    }
    if (!a->model || !a->data || !method_set)
        return seer_fail(err, "--model, --data and --method are required (see seer eval --help)");
    if (a->pol.method == ENGINE_GATE && !a->gates)
        return seer_fail(err, "--method gate needs --gates DIR");
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Problems

typedef struct {
    char *id;       // "id", "unique_id", or the line number
    char *text;     // the problem as given ("problem" or "question")
    char *answer;   // the reference answer as a string
    int *ids;       // [n_ids] the rendered, tokenised prompt
    int n_ids;
} Problem;

static void problems_free(Problem *p, int n) {
    for (int i = 0; i < n; i++) free(p[i].id), free(p[i].text), free(p[i].answer), free(p[i].ids);
    free(p);
}

// A JSON scalar as a string: strings as they are, integers in decimal, integral reals without
// a fraction ("27.0" -> "27"), other reals with %.17g; NULL for anything else.
static char *json_scalar_text(json_t *v) {
    char buf[64];
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    if (json_is_integer(v)) snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) {
        double x = json_real_value(v);
        if (x == floor(x) && fabs(x) < 1e15) snprintf(buf, sizeof buf, "%.0f", x);
        else snprintf(buf, sizeof buf, "%.17g", x);
    } else return NULL;
    return xstrdup(buf);
}

// Fills p from one JSONL row (line number ln of path); -1 with err naming the file and line.
static int problem_from_row(Problem *p, const char *line, const char *path, long ln, SeerErr *err) {
    json_error_t je;
    json_t *row = json_loads(line, 0, &je);
    if (!row || !json_is_object(row)) {
        json_decref(row);
        return seer_fail(err, "%s:%ld: not a JSON object (%s)", path, ln, row ? "other type" : je.text);
    }
    json_t *text = json_object_get(row, "problem");
    if (!json_is_string(text)) text = json_object_get(row, "question");
    json_t *id = json_object_get(row, "id");
    if (!id) id = json_object_get(row, "unique_id");
    p->answer = json_scalar_text(json_object_get(row, "answer"));
    p->text = json_is_string(text) ? xstrdup(json_string_value(text)) : NULL;
    p->id = id ? json_scalar_text(id) : NULL;
    if (!p->id) {
        char buf[32];
        snprintf(buf, sizeof buf, "%ld", ln);
        p->id = xstrdup(buf);
    }
    int has_problem = json_is_string(json_object_get(row, "problem"));
    json_decref(row);
    if (!p->text) return seer_fail(err, "%s:%ld: no \"problem\" or \"question\" string", path, ln);
    if (!p->answer) return seer_fail(err, "%s:%ld: no \"answer\" (string or number)", path, ln);
    return has_problem;
}

// Renders and tokenises problem p's prompt (text + suffix for "problem" rows).
static int problem_encode(Problem *p, int add_suffix, const char *suffix, const Tokenizer *tok,
                          SeerErr *err) {
    size_t n = strlen(p->text) + (add_suffix ? strlen(suffix) : 0) + 1;
    char *user = xmalloc(n);
    snprintf(user, n, "%s%s", p->text, add_suffix ? suffix : "");
    ChatMessage msg = {"user", user};
    char *prompt = chat_render(&msg, 1, (ChatOptions){.add_generation_prompt = 1, .enable_thinking = 1}, err);
    free(user);
    if (!prompt) return -1;
    size_t cap = 0;
    p->n_ids = tokenizer_encode(tok, prompt, strlen(prompt), &p->ids, &cap, err);
    free(prompt);
    return p->n_ids < 0 ? -1 : 0;
}

// Reads up to limit (0: all) problems of path and tokenises their prompts.
static int problems_read(const EvalArgs *a, const Tokenizer *tok, Problem **out, int *n_out,
                         SeerErr *err) {
    FILE *f = fopen(a->data, "r");
    if (!f) return seer_fail(err, "%s: cannot open: %s", a->data, strerror(errno));
    Problem *ps = NULL;
    int n = 0, rc = 0;
    char *line = NULL;
    size_t cap = 0;
    long ln = 0;
    while ((a->limit == 0 || n < a->limit) && getline(&line, &cap, f) >= 0) {
        ln++;
        if (strspn(line, " \t\r\n") == strlen(line)) continue;
        ps = xrealloc(ps, sizeof(Problem) * (size_t)(n + 1));
        memset(&ps[n], 0, sizeof(Problem));
        int r = problem_from_row(&ps[n], line, a->data, ln, err);
        n++;
        if (r < 0 || problem_encode(&ps[n - 1], r, a->suffix, tok, err)) {
            rc = -1;
            break;
        }
    }
    free(line);
    fclose(f);
    if (rc == 0 && n == 0) rc = seer_fail(err, "%s: no problems", a->data);
    if (rc) {
        problems_free(ps, n);
        return -1;
    }
    *out = ps, *n_out = n;
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Generation

typedef struct {
    int ids[3], n;  // <|im_end|>, <|endoftext|>, the config's eos (those that exist)
} StopSet;

static StopSet stop_set(const Tokenizer *tok, const ModelConfig *c) {
    StopSet s = {.n = 0};
    int cand[3] = {tokenizer_token_id(tok, "<|im_end|>"), tokenizer_token_id(tok, "<|endoftext|>"), c->eos_id};
    for (int i = 0; i < 3; i++)
        if (cand[i] >= 0) s.ids[s.n++] = cand[i];
    return s;
}

static int is_stop(const StopSet *s, int id) {
    for (int i = 0; i < s->n; i++)
        if (s->ids[i] == id) return 1;
    return 0;
}

// Generates one sample for p: dense prefill, then steps until a stop token or max_new tokens.
static int generate(Engine *e, const Problem *p, Sampler *sm, const StopSet *stop, int max_new,
                    int V, int *gen, int *n_gen, float *logits, EvalTiming *tm, SeerErr *err) {
    double t0 = seer_now();
    if (engine_prefill(e, p->ids, p->n_ids, logits, err)) return -1;
    double t1 = seer_now();
    tm->t_prefill += t1 - t0, tm->n_prefill += p->n_ids;
    int n = 0;
    while (n < max_new) {
        int id = sampler_pick(sm, logits, V);
        if (is_stop(stop, id)) break;
        gen[n++] = id;
        if (n == max_new) break;
        if (engine_step(e, id, logits, err)) return -1;
        tm->n_decode++;
    }
    tm->t_decode += seer_now() - t1;
    *n_gen = n;
    return 0;
}

static void sample_grade(GradedSample *s, const Problem *p, const Tokenizer *tok, const int *gen, int n) {
    s->n_gen = n;
    s->output = tokenizer_decode(tok, gen, n, NULL);
    s->pred = grade_last_boxed(s->output);
    s->correct = grade_answer(s->pred, p->answer);
    s->line_acc = grade_trace_line_acc(p->text, s->output);
}

// ---------------------------------------------------------------------------------------------
// Report

typedef struct {
    int n_prob, n_samples, L;
    GradedSample *s;    // [n_prob, n_samples]
    double *sel, *valid;  // [L] selected and valid blocks over every sample (resumed ones too)
    double *sparsity;   // [L] from sel and valid
    double overall;     // sparsity over every layer
    EvalTiming tm;
    double elapsed;
    int n_resumed;      // samples taken from the sample log
} EvalReport;

static void report_free(EvalReport *r) {
    for (int i = 0; r->s && i < r->n_prob * r->n_samples; i++) free(r->s[i].output), free(r->s[i].pred);
    free(r->s), free(r->sel), free(r->valid), free(r->sparsity);
}

typedef struct {
    double acc, line_acc, gen_len;
    int n, n_correct, n_line;
} Totals;

static Totals report_totals(const EvalReport *r) {
    Totals t = {0};
    t.n = r->n_prob * r->n_samples;
    for (int i = 0; i < t.n; i++) {
        t.n_correct += r->s[i].correct;
        t.gen_len += r->s[i].n_gen;
        if (r->s[i].line_acc >= 0) t.line_acc += r->s[i].line_acc, t.n_line++;
    }
    t.acc = (double)t.n_correct / t.n, t.gen_len /= t.n;
    if (t.n_line) t.line_acc /= t.n_line;
    return t;
}

static double rate(int64_t n, double s) { return s > 0 ? (double)n / s : 0; }

static void method_label(char *buf, size_t n, const EnginePolicy *p) {
    if (p->method == ENGINE_DENSE) snprintf(buf, n, "dense");
    else if (p->budget > 0) snprintf(buf, n, "%s@%d", engine_method_name(p->method), p->budget);
    else snprintf(buf, n, "%s>%g", engine_method_name(p->method), (double)p->threshold);
    if (p->method == ENGINE_GATE && p->kcomp_fp8) strncat(buf, " (E4M3 K-compression)", n - strlen(buf) - 1);
}

static void report_print(const EvalReport *r, const EvalArgs *a) {
    Totals t = report_totals(r);
    char label[64];
    method_label(label, sizeof label, &a->pol);
    printf("eval %s on %s: %d problems x %d sample(s), %s\n", label, a->data, r->n_prob,
           r->n_samples, a->temperature > 0 ? "sampled" : "greedy");
    printf("  accuracy         %.3f (%d/%d)\n", t.acc, t.n_correct, t.n);
    if (t.n_line) printf("  line acc         %.3f\n", t.line_acc);
    printf("  mean gen length  %.1f tokens\n", t.gen_len);
    printf("  sparsity         overall %.3f; per layer", r->overall);
    for (int l = 0; l < r->L; l++) printf(" %.2f", r->sparsity[l]);
    printf("\n  prefill          %.0f tokens/s (%lld tokens, %.1f s)\n", rate(r->tm.n_prefill, r->tm.t_prefill),
           (long long)r->tm.n_prefill, r->tm.t_prefill);
    printf("  decode           %.1f tokens/s (%lld steps, %.1f s)\n", rate(r->tm.n_decode, r->tm.t_decode),
           (long long)r->tm.n_decode, r->tm.t_decode);
    printf("  elapsed          %.1f s on %d thread(s)", r->elapsed, omp_get_max_threads());
    if (r->n_resumed) printf("; %d sample(s) taken from the sample log", r->n_resumed);
    printf("\n");
}

static json_t *report_samples_json(const EvalReport *r, const Problem *ps) {
    json_t *arr = json_array();
    for (int i = 0; i < r->n_prob * r->n_samples; i++) {
        const GradedSample *s = &r->s[i];
        const Problem *p = &ps[i / r->n_samples];
        json_t *o = json_pack("{s:s, s:i, s:s, s:o, s:b, s:i, s:s}", "id", p->id, "sample",
                              i % r->n_samples, "answer", p->answer, "pred",
                              s->pred ? json_string(s->pred) : json_null(), "correct", s->correct,
                              "gen_len", s->n_gen, "output", s->output ? s->output : "");
        if (s->line_acc >= 0) json_object_set_new(o, "line_acc", json_real(s->line_acc));
        json_array_append_new(arr, o);
    }
    return arr;
}

// The settings that decide every sample: the sample log's first line (not --limit or --threads).
static json_t *eval_settings(const EvalArgs *a) {
    json_t *gates = a->gates && a->pol.method == ENGINE_GATE ? json_string(a->gates) : json_null();
    json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:i, s:f, s:i, s:b, s:I, s:I, s:f, s:f, s:I, s:I, s:s}", "model",
                     a->model, "data", a->data, "method", engine_method_name(a->pol.method), "gates", gates,
                     "budget", a->pol.budget, "threshold", (double)a->pol.threshold, "dense_layers",
                     a->pol.dense_layers, "rope_last", a->pol.rope_last, "samples_per_problem", (json_int_t)a->samples,
                     "max_new", (json_int_t)a->max_new, "temperature", a->temperature, "top_p", a->top_p,
                     "top_k", (json_int_t)a->top_k, "seed", (json_int_t)a->seed, "suffix", a->suffix);
    if (a->pol.kcomp_fp8) json_object_set_new(o, "kcomp_fp8", json_true());  // absent: older logs still match
    return o;
}

// The report: the settings of eval_settings, then the numbers and every sample.
static json_t *report_json(const EvalReport *r, const EvalArgs *a, const Problem *ps) {
    Totals t = report_totals(r);
    json_t *sp = json_array();
    for (int l = 0; l < r->L; l++) json_array_append_new(sp, json_real(r->sparsity[l]));
    json_t *o = eval_settings(a);
    json_object_set_new(o, "problems", json_integer(r->n_prob));
    json_object_set_new(o, "accuracy", json_real(t.acc));
    json_object_set_new(o, "line_acc", t.n_line ? json_real(t.line_acc) : json_null());
    json_object_set_new(o, "mean_gen_len", json_real(t.gen_len));
    json_object_set_new(o, "sparsity_per_layer", sp);
    json_object_set_new(o, "sparsity_overall", json_real(r->overall));
    json_object_set_new(o, "prefill_tokens_per_s", json_real(rate(r->tm.n_prefill, r->tm.t_prefill)));
    json_object_set_new(o, "decode_tokens_per_s", json_real(rate(r->tm.n_decode, r->tm.t_decode)));
    json_object_set_new(o, "elapsed_s", json_real(r->elapsed));
    json_object_set_new(o, "threads", json_integer(omp_get_max_threads()));
    json_object_set_new(o, "results", report_samples_json(r, ps));
    return o;
}

// Writes the JSON report to path atomically (temp file, fsync, rename).
static int report_write(const EvalReport *r, const EvalArgs *a, const Problem *ps, SeerErr *err) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", a->out);
    json_t *o = report_json(r, a, ps);
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) rc = seer_fail(err, "%s: cannot write: %s", tmp, strerror(errno));
    else {
        int bad = json_dumpf(o, f, JSON_INDENT(1)) != 0 || fputc('\n', f) == EOF || fflush(f) != 0 ||
                  fsync(fileno(f)) != 0;
        bad |= fclose(f) != 0;
        if (bad || rename(tmp, a->out)) rc = seer_fail(err, "%s: write failed: %s", a->out, strerror(errno));
    }
    if (rc) unlink(tmp);
    json_decref(o);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Run

typedef struct {
    Model m;
    Tokenizer *tok;
    float *gates;
    int gates_L;
    GateShape gs;
    Problem *ps;
    int n_prob;
    int model_loaded;
} EvalInputs;

static int inputs_load(EvalInputs *in, const EvalArgs *a, SeerErr *err) {
    memset(in, 0, sizeof *in);
    SeerErr tmpl;
    if (chat_template_check(a->model, &tmpl))
        fprintf(stderr, "seer: warning: prompts use the Qwen3 chat template: %s\n", tmpl.msg);
    if (!(in->tok = tokenizer_load(a->model, err)) || model_load(&in->m, a->model, err)) return -1;
    in->model_loaded = 1;
    if (a->pol.method == ENGINE_GATE && gate_load_dir(a->gates, &in->gates, &in->gates_L, &in->gs, err))
        return -1;
    return problems_read(a, in->tok, &in->ps, &in->n_prob, err);
}

static void inputs_free(EvalInputs *in) {
    problems_free(in->ps, in->n_prob);
    free(in->gates);
    if (in->model_loaded) model_free(&in->m);
    tokenizer_free(in->tok);
}

// Adds one sample's block counts and timing to the report's totals.
static void report_add(EvalReport *r, const LoggedSample *d) {
    for (int l = 0; l < r->L; l++) r->sel[l] += d->sel[l], r->valid[l] += d->valid[l];
    r->tm.t_prefill += d->tm.t_prefill, r->tm.t_decode += d->tm.t_decode;
    r->tm.n_prefill += d->tm.n_prefill, r->tm.n_decode += d->tm.n_decode;
}

// Sample i from the log into r: its grade, its block counts and its timing.
static void sample_restore(EvalReport *r, int i, const LoggedSample *d) {
    r->s[i] = d->g;
    r->s[i].output = xstrdup(d->g.output), r->s[i].pred = d->g.pred ? xstrdup(d->g.pred) : NULL;
    report_add(r, d);
    r->n_resumed++;
}

// Generates and grades every sample of every problem into r, taking those the log (if any)
// already holds and logging the others as they finish.
static int eval_loop(Engine *e, const EvalInputs *in, const EvalArgs *a, SampleLog *lg, EvalReport *r,
                     SeerErr *err) {
    const ModelConfig *c = &in->m.cfg;
    StopSet stop = stop_set(in->tok, c);
    int *gen = xmalloc(sizeof(int) * (size_t)a->max_new);
    float *logits = xmalloc(sizeof(float) * (size_t)c->V);
    double *sel = xmalloc(sizeof(double) * (size_t)r->L), *valid = xmalloc(sizeof(double) * (size_t)r->L);
    Progress pg;
    progress_start(&pg, "eval", (int64_t)r->n_prob * r->n_samples, "samples");
    int rc = 0;
    for (int i = 0; i < r->n_prob * r->n_samples && rc == 0; i++) {
        const Problem *p = &in->ps[i / r->n_samples];
        const LoggedSample *done = lg ? sample_log_find(lg, i, p->id) : NULL;
        if (done) {
            sample_restore(r, i, done);
        } else {
            Sampler sm = {(float)a->temperature, (float)a->top_p, (int)a->top_k,
                          a->seed * 0x9e3779b97f4a7c15ull + (uint64_t)i};
            LoggedSample d = {.index = i, .id = (char *)p->id, .sel = sel, .valid = valid};
            engine_reset_stats(e);  // the engine's block counts become this sample's
            int n;
            rc = generate(e, p, &sm, &stop, (int)a->max_new, c->V, gen, &n, logits, &d.tm, err);
            if (rc == 0) {
                sample_grade(&r->s[i], p, in->tok, gen, n);
                engine_block_counts(e, sel, valid);
                report_add(r, &d);
                d.g = r->s[i];
                if (lg) rc = sample_log_append(lg, &d, err);
            }
        }
        progress_update(&pg, i + 1);
    }
    progress_finish(&pg);
    free(gen), free(logits), free(sel), free(valid);
    return rc;
}

static int eval_run(const EvalArgs *a, SeerErr *err) {
    double t0 = seer_now();
    EvalInputs in;
    if (inputs_load(&in, a, err)) {
        inputs_free(&in);
        return -1;
    }
    int Tmax = 0;
    for (int i = 0; i < in.n_prob; i++) Tmax = in.ps[i].n_ids > Tmax ? in.ps[i].n_ids : Tmax;
    Tmax += (int)a->max_new;
    Engine *e = NULL;
    EvalReport r = {.n_prob = in.n_prob, .n_samples = (int)a->samples, .L = in.m.cfg.L};
    r.s = xcalloc((size_t)r.n_prob * r.n_samples, sizeof(GradedSample));
    r.sel = xcalloc((size_t)r.L, sizeof(double)), r.valid = xcalloc((size_t)r.L, sizeof(double));
    r.sparsity = xcalloc((size_t)r.L, sizeof(double));
    SampleLog lg = {0};
    int rc = engine_create(&e, &in.m, in.gates, in.gates_L, in.gs, a->pol, Tmax, err);
    if (rc == 0 && a->out) {
        json_t *settings = eval_settings(a);
        rc = sample_log_open(&lg, a->out, settings, r.L, err);
        json_decref(settings);
        if (rc == 0 && lg.n_done)
            fprintf(stderr, "seer: eval: %s holds %d finished sample(s) of these settings; they are reused\n",
                    lg.path, lg.n_done);
    }
    if (rc == 0) rc = eval_loop(e, &in, a, a->out ? &lg : NULL, &r, err);
    if (rc == 0) {
        r.overall = engine_sparsity_from(r.sel, r.valid, r.L, r.sparsity);
        r.elapsed = seer_now() - t0;
        report_print(&r, a);
        if (a->out) rc = report_write(&r, a, in.ps, err);
    }
    sample_log_close(&lg);
    report_free(&r);
    engine_free(e);
    inputs_free(&in);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    EvalArgs a;
    SeerErr err;
    int r = eval_parse_args(argc, argv, &a, &err);
    if (r == 1) {
        eval_usage(stdout);
        return 0;
    }
    if (r == 0 && a.threads > 0) omp_set_num_threads((int)a.threads);
    if (r < 0 || eval_run(&a, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
