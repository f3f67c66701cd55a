// recall.c: see recall.h. One CPU forward per held-out chunk; at every layer's hook the gate,
// oracle and Quest rankings of each (group, token) row are scored against the target.
#include "eval/recall.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/forward_cpu.h"
#include "train/run_log.h"
#include "train/train_state.h"

enum { M_GATE = 0, M_QUEST = 1, M_ORACLE = 2, M_N = 3 };

int recall_parse_budgets(const char *s, int *budgets, int *n, SeerErr *err) {
    *n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long b = strtol(p, &end, 10);
        if (end == p || b <= 0 || b % SEER_BLOCK || b > (1 << 24) || (*end && *end != ','))
            return seer_fail(err, "--budgets %s: expected positive multiples of %d separated by "
                             "commas", s, SEER_BLOCK);
        if (*n == RECALL_MAX_BUDGETS)
            return seer_fail(err, "--budgets %s: at most %d budgets", s, RECALL_MAX_BUDGETS);
        if (*n > 0 && b <= budgets[*n - 1])
            return seer_fail(err, "--budgets %s: budgets must increase", s);
        budgets[(*n)++] = (int)b;
        p = *end ? end + 1 : end;
    }
    if (*n == 0) return seer_fail(err, "--budgets is empty");
    return 0;
}

// ---------------------------------------------------------------- ranking one row

typedef struct {
    float score;
    int idx;
} Ranked;

static int ranked_cmp(const void *a, const void *b) {
    const Ranked *x = a, *y = b;
    if (x->score != y->score) return x->score > y->score ? -1 : 1;
    return x->idx - y->idx;
}

// Recall of the top-k blocks by score for each budget with n > k; out[b] (NAN when n <= k).
// score, P: [n]; tmp: [n] scratch.
static void rank_recall(double *out, const float *score, const float *P, int n, const int *ks,
                        int nb, Ranked *tmp) {
    double total = 0;
    for (int j = 0; j < n; j++) {
        tmp[j] = (Ranked){isnan(score[j]) ? -INFINITY : score[j], j};
        total += P[j];
    }
    qsort(tmp, (size_t)n, sizeof *tmp, ranked_cmp);
    double cum = 0;
    int taken = 0;
    for (int b = 0; b < nb; b++) {
        if (n <= ks[b] || total <= 0) {
            out[b] = NAN;
            continue;
        }
        while (taken < ks[b]) cum += P[tmp[taken++].idx];
        out[b] = cum / total;
    }
}

// ---------------------------------------------------------------- the layer hook

typedef struct {
    RecallReport *r;
    const float *params;  // [L, P]
    GateShape s;
    float theta;
    int ks[RECALL_MAX_BUDGETS];
    double *sums;         // [L, n_budgets, M_N] sums of row recall
    SeerErr *err;
} RecallCtx;

// Page bounds of post-RoPE keys: kmax, kmin [NBT, HKV, HD]; base[t] = first block of t's doc.
static int quest_pages(float *kmax, float *kmin, int *base, const ForwardLayerView *v) {
    int HKV = v->HKV, HD = v->HD, nbt = 0, t0 = 0;
    for (int d = 0; d < v->n_docs; d++) {
        int len = v->doc_lens[d], nbd = ceil_div(len, SEER_BLOCK);
        for (int t = 0; t < len; t++) base[t0 + t] = nbt;
        for (int j = 0; j < nbd; j++) {
            float *mx = kmax + (size_t)(nbt + j) * HKV * HD, *mn = kmin + (size_t)(nbt + j) * HKV * HD;
            int a = t0 + j * SEER_BLOCK, e = t0 + (j + 1 < nbd ? (j + 1) * SEER_BLOCK : len);
            for (int i = 0; i < HKV * HD; i++) mx[i] = -INFINITY, mn[i] = INFINITY;
            for (int t = a; t < e; t++)
                for (int i = 0; i < HKV * HD; i++) {
                    float k = v->k[(size_t)t * HKV * HD + i];
                    mx[i] = fmaxf(mx[i], k), mn[i] = fminf(mn[i], k);
                }
        }
        nbt += nbd;
        t0 += len;
    }
    return nbt;
}

// Quest score of group g for token t over its n allowed pages (MAX over the group's heads).
static void quest_row(float *out, const ForwardLayerView *v, const float *kmax, const float *kmin,
                      int base, int g, int t, int n) {
    int HKV = v->HKV, HD = v->HD, G = v->H / v->HKV;
    for (int j = 0; j < n; j++) {
        const float *mx = kmax + ((size_t)(base + j) * HKV + g) * HD;
        const float *mn = kmin + ((size_t)(base + j) * HKV + g) * HD;
        float best = -INFINITY;
        for (int h = g * G; h < (g + 1) * G; h++) {
            const float *q = v->q + ((size_t)t * v->H + h) * HD;
            float sc = 0;
            for (int c = 0; c < HD; c++) sc += fmaxf(q[c] * mx[c], q[c] * mn[c]);
            best = fmaxf(best, sc);
        }
        out[j] = best;
    }
}

static int recall_layer_hook(void *vctx, const ForwardLayerView *v, SeerErr *err) {
    RecallCtx *c = vctx;
    RecallReport *r = c->r;
    int T = v->T, NB = v->NB, HKV = v->HKV, nb = r->n_budgets, l = v->layer;
    GateChunk gc = {.q = v->q_nope, .k = v->k_nope, .doc_lens = v->doc_lens, .n_docs = v->n_docs,
                    .T = T, .NB = NB, .rope_theta = c->theta};
    float *logp = xmalloc((size_t)HKV * T * NB * sizeof(float));  // [HKV, T, NB]
    const float *params = c->params + (size_t)l * gate_param_count(c->s);
    if (gate_scores_cpu(logp, params, c->s, &gc, err)) {
        free(logp);
        return -1;
    }
    int nbt_max = T / SEER_BLOCK + v->n_docs;
    float *kmax = xmalloc((size_t)nbt_max * HKV * v->HD * sizeof(float));
    float *kmin = xmalloc((size_t)nbt_max * HKV * v->HD * sizeof(float));
    int *base = xmalloc((size_t)T * sizeof(int));
    quest_pages(kmax, kmin, base, v);
    double *res = xmalloc((size_t)HKV * T * nb * M_N * sizeof(double));  // [HKV, T, nb, M_N]
#pragma omp parallel
    {
        Ranked *tmp = xmalloc((size_t)NB * sizeof(Ranked));
        float *qs = xmalloc((size_t)NB * sizeof(float));
#pragma omp for schedule(dynamic, 16)
        for (int t = 0; t < T; t++)
            for (int g = 0; g < HKV; g++) {
                int n = v->pos[t] / SEER_BLOCK;
                double *o = res + ((size_t)g * T + t) * nb * M_N;
                const float *P = v->target + ((size_t)g * T + t) * NB;
                if (n < 1) {
                    for (int i = 0; i < nb * M_N; i++) o[i] = NAN;
                    continue;
                }
                quest_row(qs, v, kmax, kmin, base[t], g, t, n);
                double rec[M_N][RECALL_MAX_BUDGETS];
                rank_recall(rec[M_GATE], logp + ((size_t)g * T + t) * NB, P, n, c->ks, nb, tmp);
                rank_recall(rec[M_QUEST], qs, P, n, c->ks, nb, tmp);
                rank_recall(rec[M_ORACLE], P, P, n, c->ks, nb, tmp);
                for (int b = 0; b < nb; b++)
                    for (int m = 0; m < M_N; m++) o[b * M_N + m] = rec[m][b];
            }
        free(qs);
        free(tmp);
    }
    for (size_t row = 0; row < (size_t)HKV * T; row++)  // fixed-order sums
        for (int b = 0; b < nb; b++) {
            const double *o = res + (row * nb + b) * M_N;
            if (isnan(o[M_ORACLE])) continue;
            for (int m = 0; m < M_N; m++) c->sums[((size_t)l * nb + b) * M_N + m] += o[m];
            r->rows[(size_t)l * nb + b]++;
        }
    free(res);
    free(base);
    free(kmin);
    free(kmax);
    free(logp);
    return 0;
}

// ---------------------------------------------------------------- evaluation

static void report_init(RecallReport *r, int L, const int *budgets, int nb) {
    memset(r, 0, sizeof *r);
    r->L = L;
    r->n_budgets = nb;
    memcpy(r->budgets, budgets, (size_t)nb * sizeof(int));
    r->gate = xcalloc((size_t)L * nb, sizeof(double));
    r->oracle = xcalloc((size_t)L * nb, sizeof(double));
    r->quest = xcalloc((size_t)L * nb, sizeof(double));
    r->rows = xcalloc((size_t)L * nb, sizeof(int64_t));
}

int recall_eval(RecallReport *r, const Model *m, const float *params, GateShape s,
                ShardReader *sr, const int64_t *chunks, int n_chunks, const int *budgets,
                int n_budgets, SeerErr *err) {
    const ModelConfig *mc = &m->cfg;
    if (s.HKV != mc->HKV || s.G * s.HKV != mc->H || s.HD != mc->HD)
        return seer_fail(err, "gates (HKV %d, G %d, HD %d) do not fit the model (HKV %d, H %d, "
                         "HD %d)", s.HKV, s.G, s.HD, mc->HKV, mc->H, mc->HD);
    if (n_budgets < 1 || n_budgets > RECALL_MAX_BUDGETS)
        return seer_fail(err, "recall: %d budgets (1..%d)", n_budgets, RECALL_MAX_BUDGETS);
    report_init(r, mc->L, budgets, n_budgets);
    RecallCtx c = {.r = r, .params = params, .s = s, .theta = mc->rope_theta, .err = err};
    for (int b = 0; b < n_budgets; b++) c.ks[b] = budgets[b] / SEER_BLOCK;
    c.sums = xcalloc((size_t)mc->L * n_budgets * M_N, sizeof(double));
    ForwardHook hook = {.fn = recall_layer_hook, .ctx = &c, .want_target = 1};
    int rc = 0;
    for (int i = 0; i < n_chunks && !rc; i++) {
        ShardChunk ch;
        rc = shard_read_chunk(sr, chunks[i], &ch, err);
        if (!rc)
            rc = forward_cpu(m, ch.ids, ch.n_tokens, ch.doc_lens, ch.n_docs, NULL,
                             FORWARD_LOGITS_ALL, &hook, err);
        if (!rc) r->tokens += ch.n_tokens, r->n_chunks++;
    }
    for (int i = 0; i < mc->L * n_budgets; i++) {
        double n = (double)r->rows[i];
        r->gate[i] = n > 0 ? c.sums[(size_t)i * M_N + M_GATE] / n : NAN;
        r->quest[i] = n > 0 ? c.sums[(size_t)i * M_N + M_QUEST] / n : NAN;
        r->oracle[i] = n > 0 ? c.sums[(size_t)i * M_N + M_ORACLE] / n : NAN;
    }
    free(c.sums);
    if (rc) recall_free(r);
    return rc;
}

double recall_overall(const RecallReport *r, const double *method, int b) {
    double s = 0;
    int n = 0;
    for (int l = 0; l < r->L; l++)
        if (!isnan(method[l * r->n_budgets + b])) s += method[l * r->n_budgets + b], n++;
    return n ? s / n : NAN;
}

static int64_t rows_overall(const RecallReport *r, int b) {
    int64_t n = 0;
    for (int l = 0; l < r->L; l++) n += r->rows[l * r->n_budgets + b];
    return n;
}

// ---------------------------------------------------------------- reports

static void print_cell(FILE *f, double x) {
    if (isnan(x)) fprintf(f, " %6s", "-");
    else fprintf(f, " %6.3f", x);
}

void recall_print(const RecallReport *r, FILE *f, const char *title) {
    int nb = r->n_budgets;
    fprintf(f, "%s: %d chunk(s), %lld tokens; share of the true block-max attention kept by k = "
               "budget/64 blocks\n", title, r->n_chunks, (long long)r->tokens);
    fprintf(f, "%5s", "");
    for (int b = 0; b < nb; b++) fprintf(f, " | %-20d", r->budgets[b]);
    fprintf(f, "\n%5s", "layer");
    for (int b = 0; b < nb; b++) fprintf(f, " | %6s %6s %6s", "gate", "quest", "oracle");
    fputc('\n', f);
    for (int l = 0; l <= r->L; l++) {
        if (l < r->L) fprintf(f, "%5d", l);
        else fprintf(f, "%5s", "all");
        for (int b = 0; b < nb; b++) {
            fprintf(f, " |");
            const double *ms[3] = {r->gate, r->quest, r->oracle};
            for (int m = 0; m < 3; m++)
                print_cell(f, l < r->L ? ms[m][l * nb + b] : recall_overall(r, ms[m], b));
        }
        fputc('\n', f);
    }
    fprintf(f, "%5s", "rows");
    for (int b = 0; b < nb; b++) fprintf(f, " | %20lld", (long long)rows_overall(r, b));
    fprintf(f, "\n");
}

void recall_print_compare(const RecallReport *before, const RecallReport *after, FILE *f) {
    fprintf(f, "%8s %12s %12s %8s %8s %10s\n", "budget", "gate before", "gate after", "quest",
            "oracle", "rows");
    for (int b = 0; b < after->n_budgets; b++) {
        fprintf(f, "%8d %12.3f %12.3f %8.3f %8.3f %10lld\n", after->budgets[b],
                recall_overall(before, before->gate, b), recall_overall(after, after->gate, b),
                recall_overall(after, after->quest, b), recall_overall(after, after->oracle, b),
                (long long)rows_overall(after, b));
    }
}

static json_t *json_num_array(const double *x, int n, int stride) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, isnan(x[i * stride]) ? json_null() : json_real(x[i * stride]));
    return a;
}

static json_t *report_json(const RecallReport *r) {
    int nb = r->n_budgets;
    json_t *j = json_object(), *layers = json_array(), *budgets = json_array(), *rows = json_array();
    for (int b = 0; b < nb; b++) {
        json_array_append_new(budgets, json_integer(r->budgets[b]));
        json_array_append_new(rows, json_integer(rows_overall(r, b)));
    }
    json_object_set_new(j, "budgets", budgets);
    json_object_set_new(j, "chunks", json_integer(r->n_chunks));
    json_object_set_new(j, "tokens", json_integer(r->tokens));
    json_object_set_new(j, "quest_group_combine", json_string("max"));
    double ov[M_N][RECALL_MAX_BUDGETS];
    for (int b = 0; b < nb; b++) {
        ov[M_GATE][b] = recall_overall(r, r->gate, b);
        ov[M_QUEST][b] = recall_overall(r, r->quest, b);
        ov[M_ORACLE][b] = recall_overall(r, r->oracle, b);
    }
    json_object_set_new(j, "overall", json_pack("{s:o, s:o, s:o, s:o}", "gate",
                                                json_num_array(ov[M_GATE], nb, 1), "quest",
                                                json_num_array(ov[M_QUEST], nb, 1), "oracle",
                                                json_num_array(ov[M_ORACLE], nb, 1), "rows", rows));
    for (int l = 0; l < r->L; l++) {
        json_t *lr = json_array();
        for (int b = 0; b < nb; b++) json_array_append_new(lr, json_integer(r->rows[l * nb + b]));
        json_array_append_new(layers, json_pack("{s:i, s:o, s:o, s:o, s:o}", "layer", l, "gate",
                                                json_num_array(r->gate + l * nb, nb, 1), "quest",
                                                json_num_array(r->quest + l * nb, nb, 1), "oracle",
                                                json_num_array(r->oracle + l * nb, nb, 1), "rows", lr));
    }
    json_object_set_new(j, "layers", layers);
    return j;
}

int recall_write(const RecallReport *r, const char *dir, const char *tag, SeerErr *err) {
    int nb = r->n_budgets;
    size_t n = strlen(dir) + strlen(tag) + 32;
    char *path = xmalloc(n);
    json_t *j = report_json(r);
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    snprintf(path, n, "%s/recall_%s.json", dir, tag);
    int rc = train_state_write_atomic(path, text, strlen(text), err);
    free(text);
    double x[RECALL_MAX_BUDGETS], y[M_N][RECALL_MAX_BUDGETS];
    for (int b = 0; b < nb; b++) {
        x[b] = r->budgets[b];
        y[M_GATE][b] = recall_overall(r, r->gate, b);
        y[M_QUEST][b] = recall_overall(r, r->quest, b);
        y[M_ORACLE][b] = recall_overall(r, r->oracle, b);
    }
    ChartSeries s[M_N] = {{.name = "gate", .x = x, .y = y[M_GATE], .n = nb, .bold = 1},
                          {.name = "quest", .x = x, .y = y[M_QUEST], .n = nb},
                          {.name = "oracle (ceiling)", .x = x, .y = y[M_ORACLE], .n = nb}};
    char title[128];
    snprintf(title, sizeof title, "attention recall (%s), mean over layers", tag);
    snprintf(path, n, "%s/recall_%s.svg", dir, tag);
    if (!rc)
        rc = run_log_write_chart(path, title, "token budget", "share of block-max attention kept",
                                 s, M_N, 0, err);
    free(path);
    return rc;
}

void recall_free(RecallReport *r) {
    free(r->gate);
    free(r->oracle);
    free(r->quest);
    free(r->rows);
    memset(r, 0, sizeof *r);
}
