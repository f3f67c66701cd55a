// test_gate.c: the AttnGate and its loss on the CPU (train/gate.h, train/gate_loss.h).
//
// The reference here is an independent double-precision implementation of SPEC.md sections 1-3
// (forward, masked log-softmax, KL, per-document row means): the fp32 loss must match it, and the
// fp32 analytic gradient must match its central finite differences, on awkward shapes.
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tests/test.h"
#include "train/gate.h"
#include "train/gate_loss.h"

// ---------------------------------------------------------------------------------------------
// Random inputs

static uint64_t rng_state = 0x1234567ull;
static double urand(void) {  // [0, 1)
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng_state >> 11) * 0x1.0p-53;
}
static float nrand(void) { return (float)(sqrt(-2 * log(1 - urand())) * cos(6.283185307179586 * urand())); }

typedef struct {
    GateShape s;
    int n_docs, T, NB;
    int lens[8];
    float theta, ratio;
    float *q, *k, *target, *params;  // [T,H,HD] [T,HKV,HD] [HKV,T,NB] [n_params]
    GateChunk c;
} Case;

// Random q/k, params (init + jittered norm weights) and a target whose rows are distributions over
// the allowed blocks with about a fifth of the entries exactly 0.
static void case_make(Case *x, GateShape s, const int *lens, int n_docs, float theta, float ratio) {
    memset(x, 0, sizeof *x);
    x->s = s;
    x->n_docs = n_docs;
    x->theta = theta;
    x->ratio = ratio;
    int longest = 0;
    for (int d = 0; d < n_docs; d++) {
        x->lens[d] = lens[d];
        x->T += lens[d];
        if (lens[d] > longest) longest = lens[d];
    }
    x->NB = ceil_div(longest, SEER_BLOCK) + 1;  // one spare column: the stride is not the count
    int H = s.HKV * s.G;
    x->q = malloc(sizeof(float) * x->T * H * s.HD);
    x->k = malloc(sizeof(float) * x->T * s.HKV * s.HD);
    for (int i = 0; i < x->T * H * s.HD; i++) x->q[i] = nrand();
    for (int i = 0; i < x->T * s.HKV * s.HD; i++) x->k[i] = nrand() + 0.3f;
    int64_t np = gate_param_count(s);
    x->params = malloc(sizeof(float) * np);
    gate_params_init(x->params, s, 7, 3);
    GateParams P = gate_params_view(x->params, s);
    for (int i = 0; i < s.DG; i++) P.qnorm_w[i] = 1 + 0.3f * nrand(), P.knorm_w[i] = 1 + 0.3f * nrand();
    x->target = calloc((size_t)s.HKV * x->T * x->NB, sizeof(float));
    for (int g = 0; g < s.HKV; g++) {
        int t = 0;
        for (int d = 0; d < n_docs; d++)
            for (int p = 0; p < lens[d]; p++, t++) {
                float *row = x->target + ((size_t)g * x->T + t) * x->NB;
                int n = p / SEER_BLOCK;
                double sum = 0;
                for (int j = 0; j < n; j++) sum += row[j] = urand() < 0.2 ? 0.0f : (float)pow(urand(), 3);
                for (int j = 0; j < n && sum > 0; j++) row[j] = (float)(row[j] / sum);
            }
    }
    x->c = (GateChunk){x->q, x->k, x->lens, n_docs, x->T, x->NB, theta};
}

static void case_free(Case *x) { free(x->q), free(x->k), free(x->target), free(x->params); }

// ---------------------------------------------------------------------------------------------
// The double-precision reference: SPEC.md sections 1-3 written out directly.

static void ref_norm_rope(double *out, const double *u, const double *w, int DG, int pos, double theta) {
    double ss = 0;
    for (int i = 0; i < DG; i++) ss += u[i] * u[i];
    double r = 1 / sqrt(ss / DG + 1e-6), n[GATE_DG_MAX];
    for (int i = 0; i < DG; i++) n[i] = u[i] * r * w[i];
    for (int i = 0; i < DG / 2; i++) {
        double a = pos * pow(theta, -2.0 * i / DG), c = cos(a), sn = sin(a);
        out[i] = n[i] * c - n[i + DG / 2] * sn;
        out[i + DG / 2] = n[i + DG / 2] * c + n[i] * sn;
    }
}

// Loss (scale * kl) of Case x with parameters pd (double, the flat layout); scores out (log-softmax,
// [HKV, T, NB], masked entries untouched) when ls is not NULL.
static double ref_loss(const Case *x, const double *pd, float scale, double *ls) {
    GateShape s = x->s;
    int H = s.HKV * s.G, K = s.G * s.HD, DG = s.DG;
    const double *wq = pd, *wk = pd + (size_t)s.HKV * K * DG, *qn = wk + (size_t)s.HKV * 3 * s.HD * DG,
                 *kn = qn + DG;
    int docs_sup = 0;
    for (int d = 0; d < x->n_docs; d++) {
        int p0 = (int)floor(x->lens[d] * (double)x->ratio);
        if (p0 < 64) p0 = 64;
        docs_sup += x->lens[d] > p0;
    }
    double total = 0, u[GATE_DG_MAX];
    double *qr = malloc(sizeof(double) * x->T * DG), *kr = malloc(sizeof(double) * x->NB * DG);
    double *s_row = malloc(sizeof(double) * x->NB), *kc = malloc(sizeof(double) * 3 * s.HD);
    for (int g = 0; g < s.HKV; g++) {
        int t0 = 0;
        for (int d = 0; d < x->n_docs; d++) {
            int len = x->lens[d], nb = ceil_div(len, 64);
            for (int p = 0; p < len; p++) {
                const float *xq = x->q + ((size_t)(t0 + p) * H + g * s.G) * s.HD;
                for (int o = 0; o < DG; o++) u[o] = 0;
                for (int i = 0; i < K; i++)
                    for (int o = 0; o < DG; o++) u[o] += xq[i] * wq[((size_t)g * K + i) * DG + o];
                ref_norm_rope(qr + (size_t)p * DG, u, qn, DG, p, x->theta);
            }
            for (int j = 0; j < nb; j++) {
                int n = len - 64 * j < 64 ? len - 64 * j : 64;
                for (int c = 0; c < s.HD; c++) {
                    double mx = -INFINITY, mn = INFINITY, sum = 0;
                    for (int i = 0; i < n; i++) {
                        double v = x->k[((size_t)(t0 + 64 * j + i) * s.HKV + g) * s.HD + c];
                        mx = fmax(mx, v), mn = fmin(mn, v), sum += v;
                    }
                    kc[c] = mx, kc[s.HD + c] = mn, kc[2 * s.HD + c] = sum / n;
                }
                for (int o = 0; o < DG; o++) u[o] = 0;
                for (int i = 0; i < 3 * s.HD; i++)
                    for (int o = 0; o < DG; o++) u[o] += kc[i] * wk[((size_t)g * 3 * s.HD + i) * DG + o];
                ref_norm_rope(kr + (size_t)j * DG, u, kn, DG, 64 * j, x->theta);
            }
            int p0 = (int)floor(len * (double)x->ratio);
            if (p0 < 64) p0 = 64;
            int rows = s.HKV * (len - p0);
            for (int p = 64; p < len; p++) {
                int n = p / 64;
                double mx = -INFINITY, z = 0;
                for (int j = 0; j < n; j++) {
                    double dot = 0;
                    for (int i = 0; i < DG; i++) dot += qr[(size_t)p * DG + i] * kr[(size_t)j * DG + i];
                    s_row[j] = dot / sqrt((double)DG);
                    mx = fmax(mx, s_row[j]);
                }
                for (int j = 0; j < n; j++) z += exp(s_row[j] - mx);
                double lse = mx + log(z), kl = 0;
                const float *P = x->target + ((size_t)g * x->T + t0 + p) * x->NB;
                for (int j = 0; j < n; j++) {
                    if (ls) ls[((size_t)g * x->T + t0 + p) * x->NB + j] = s_row[j] - lse;
                    if (P[j] > 0) kl += P[j] * (log((double)P[j]) - (s_row[j] - lse));
                }
                if (p >= p0) total += kl / rows / docs_sup;
            }
            t0 += len;
        }
    }
    free(qr), free(kr), free(s_row), free(kc);
    return scale * total;
}

// ---------------------------------------------------------------------------------------------
// Tests

static void test_param_counts(void) {
    GateShape q8 = {8, 4, 128, 128}, q14 = {8, 5, 128, 128};
    CHECK(gate_param_count(q8) == 917760);
    CHECK(36 * gate_param_count(q8) == 33039360);
    CHECK(gate_param_count(q14) == 1048832);
    CHECK(40 * gate_param_count(q14) == 41953280);
    GateShape tb = {2, 4, 64, 128};  // the testbed model
    float *p = malloc(sizeof(float) * gate_param_count(tb));
    GateParams v = gate_params_view(p, tb);
    CHECK(v.wk - v.wq == 2 * 4 * 64 * 128);
    CHECK(v.qnorm_w - v.wk == 2 * 3 * 64 * 128);
    CHECK(v.knorm_w - v.qnorm_w == 128);
    CHECK(v.knorm_w + 128 - p == gate_param_count(tb));
    free(p);
}

static void test_init(void) {
    GateShape tb = {2, 4, 64, 128};
    int64_t n = gate_param_count(tb), n_lin = n - 256;
    float *a = malloc(sizeof(float) * n), *b = malloc(sizeof(float) * n);
    gate_params_init(a, tb, 42, 0);
    gate_params_init(b, tb, 42, 0);
    CHECK(memcmp(a, b, sizeof(float) * n) == 0);
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < n_lin; i++) sum += a[i], sq += (double)a[i] * a[i];
    CHECK(fabs(sum / n_lin) < 5e-4);
    CHECK_CLOSE(sqrt(sq / n_lin), 0.02, 0.01);
    int ones = 1;
    for (int64_t i = n_lin; i < n; i++) ones &= a[i] == 1.0f;
    CHECK(ones);
    gate_params_init(b, tb, 42, 1);
    CHECK(memcmp(a, b, sizeof(float) * n_lin) != 0);
    gate_params_init(b, tb, 43, 0);
    CHECK(memcmp(a, b, sizeof(float) * n_lin) != 0);
    // Pinned values: a change of the generator (or a libm that rounds differently) shows here.
    CHECK(a[0] == -0.00804378372f);
    CHECK(a[n_lin - 1] == -0.0213481635f);
    free(a), free(b);
}

static void test_checks(void) {
    SeerErr err;
    GateShape ok = {2, 2, 8, 8};
    CHECK(gate_shape_check(ok, &err) == 0);
    CHECK(gate_shape_check((GateShape){2, 2, 8, 7}, &err) == -1 && strstr(err.msg, "even"));
    CHECK(gate_shape_check((GateShape){0, 2, 8, 8}, &err) == -1 && strstr(err.msg, "HKV 0"));
    float buf[1] = {0};
    int lens[2] = {100, 30};
    GateChunk c = {buf, buf, lens, 2, 130, 2, 1e4f};
    CHECK(gate_chunk_check(&c, ok, &err) == 0);
    c.T = 131;
    CHECK(gate_chunk_check(&c, ok, &err) == -1 && strstr(err.msg, "sum to 130"));
    c.T = 130, c.NB = 1;
    CHECK(gate_chunk_check(&c, ok, &err) == -1 && strstr(err.msg, "NB 1"));
    c.NB = 2, lens[1] = 0;
    CHECK(gate_chunk_check(&c, ok, &err) == -1 && strstr(err.msg, "document 1"));
    lens[1] = 30, c.rope_theta = 0;
    CHECK(gate_chunk_check(&c, ok, &err) == -1 && strstr(err.msg, "rope_theta"));
    GateLossOpts o = {1.5f, 10};
    CHECK(gate_loss_opts_check(&o, &err) == -1 && strstr(err.msg, "slice_ratio"));
    o = (GateLossOpts){0.5f, NAN};
    CHECK(gate_loss_opts_check(&o, &err) == -1 && strstr(err.msg, "scale"));
}

static void test_plan(void) {
    int lens[4] = {200, 40, 129, 64};  // supervised tokens: 100, none, 65 (p 64..128), none
    float w[433];
    GateLossStats st;
    gate_loss_plan(w, &st, lens, 4, 3, 0.5f);
    CHECK(st.n_docs == 2);
    CHECK(st.n_rows == 3 * (100 + 65));
    CHECK(w[99] == 0 && w[100] == (float)(1.0 / (2.0 * 300)));
    CHECK(w[240 + 63] == 0 && w[240 + 64] == (float)(1.0 / (2.0 * 195)));
    CHECK(w[432] == 0);
    gate_loss_plan(w, &st, lens, 4, 3, 1.0f);
    CHECK(st.n_docs == 0 && st.n_rows == 0);
    int *from = gate_loss_first_rows(lens, 4, 0.5f);  // the rows a CUDA forward is asked for
    CHECK(from[0] == 100 && from[1] == 64 && from[2] == 64 && from[3] == 64);
    free(from);
}

// fp32 loss and scores against the double reference.
static void check_forward(GateShape s, const int *lens, int n_docs, float theta, float ratio) {
    Case x;
    case_make(&x, s, lens, n_docs, theta, ratio);
    int64_t np = gate_param_count(s);
    double *pd = malloc(sizeof(double) * np);
    for (int64_t i = 0; i < np; i++) pd[i] = x.params[i];
    size_t ns = (size_t)s.HKV * x.T * x.NB;
    double *ls_ref = malloc(sizeof(double) * ns);
    float *ls = malloc(sizeof(float) * ns);
    GateLossOpts o = {ratio, 10};
    double ref = ref_loss(&x, pd, o.scale, ls_ref);
    GateLossStats st;
    SeerErr err;
    CHECK(gate_loss_cpu(&st, NULL, x.params, s, &x.c, x.target, &o, &err) == 0);
    CHECK_CLOSE(st.loss, ref, 1e-5);
    CHECK_CLOSE(st.kl * 10, st.loss, 1e-12);
    CHECK(gate_scores_cpu(ls, x.params, s, &x.c, &err) == 0);
    double worst = 0;
    int t = 0, masks_ok = 1;
    for (int d = 0; d < n_docs; d++)
        for (int p = 0; p < lens[d]; p++, t++)
            for (int g = 0; g < s.HKV; g++)
                for (int j = 0; j < x.NB; j++) {
                    size_t i = ((size_t)g * x.T + t) * x.NB + j;
                    if (j < p / 64) worst = fmax(worst, fabs(ls[i] - ls_ref[i]) / fmax(1, fabs(ls_ref[i])));
                    else masks_ok &= isinf(ls[i]) && ls[i] < 0;
                }
    CHECK(worst < 1e-5);
    CHECK(masks_ok);
    free(pd), free(ls_ref), free(ls);
    case_free(&x);
}

static void test_forward_vs_double(void) {
    int a[5] = {150, 30, 200, 64, 129}, b[1] = {300}, c[4] = {65, 190, 7, 256};
    check_forward((GateShape){2, 4, 64, 16}, a, 5, 1e4f, 0.5f);
    check_forward((GateShape){1, 1, 128, 8}, b, 1, 1e6f, 0.5f);
    check_forward((GateShape){3, 5, 64, 32}, c, 4, 1e4f, 0.3f);
}

// Analytic fp32 gradient against central differences of the double reference, at n_probe
// parameters of each tensor. Error is measured against the tensor's largest probed gradient.
static void check_grad(GateShape s, const int *lens, int n_docs, float theta, float ratio, int n_probe) {
    Case x;
    case_make(&x, s, lens, n_docs, theta, ratio);
    int64_t np = gate_param_count(s);
    float *grad = calloc(np, sizeof(float));
    GateLossOpts o = {ratio, 10};
    GateLossStats st;
    SeerErr err;
    CHECK(gate_loss_cpu(&st, grad, x.params, s, &x.c, x.target, &o, &err) == 0);
    double *pd = malloc(sizeof(double) * np);
    for (int64_t i = 0; i < np; i++) pd[i] = x.params[i];
    GateParams P = gate_params_view(x.params, s);
    int64_t start[4] = {0, P.wk - x.params, P.qnorm_w - x.params, P.knorm_w - x.params};
    int64_t size[4] = {start[1], start[2] - start[1], s.DG, s.DG};
    for (int part = 0; part < 4; part++) {
        double gmax = 0, worst = 0, fd[64], an[64];
        for (int i = 0; i < n_probe; i++) {
            int64_t e = start[part] + (int64_t)(urand() * size[part]);
            double h = 1e-4 * fmax(fabs(pd[e]), 0.01), keep = pd[e];
            pd[e] = keep + h;
            double lp = ref_loss(&x, pd, o.scale, NULL);
            pd[e] = keep - h;
            double lm = ref_loss(&x, pd, o.scale, NULL);
            pd[e] = keep;
            fd[i] = (lp - lm) / (2 * h), an[i] = grad[e];
            gmax = fmax(gmax, fabs(fd[i]));
        }
        for (int i = 0; i < n_probe; i++) worst = fmax(worst, fabs(an[i] - fd[i]) / fmax(fabs(fd[i]), 1e-2 * gmax));
        if (getenv("GATE_TEST_VERBOSE") || !(worst < 5e-4)) fprintf(stderr, "    part %d: worst rel err %.3g (gmax %.3g)\n", part, worst, gmax);
        CHECK(worst < 5e-4);
        CHECK(gmax > 0);
    }
    free(grad), free(pd);
    case_free(&x);
}

static void test_grad_finite_differences(void) {
    int a[5] = {150, 30, 200, 64, 129}, b[1] = {300}, c[4] = {65, 190, 7, 256}, d[2] = {200, 70};
    check_grad((GateShape){2, 4, 64, 16}, a, 5, 1e4f, 0.5f, 12);
    check_grad((GateShape){1, 1, 128, 8}, b, 1, 1e6f, 0.5f, 12);
    check_grad((GateShape){3, 5, 64, 32}, c, 4, 1e4f, 0.3f, 10);
    check_grad((GateShape){2, 4, 128, 128}, d, 2, 1e6f, 0.5f, 6);
}

// The chunk's loss is the mean of its documents' losses; short documents do not count.
static void test_mean_over_documents(void) {
    GateShape s = {2, 2, 16, 8};
    int lens[3] = {300, 50, 170};
    Case x;
    case_make(&x, s, lens, 3, 1e4f, 0.5f);
    GateLossStats all, one;
    SeerErr err;
    CHECK(gate_loss_cpu(&all, NULL, x.params, s, &x.c, x.target, NULL, &err) == 0);
    CHECK(all.n_docs == 2);
    double sum = 0;
    int t0 = 0;
    for (int d = 0; d < 3; d++) {
        float *tg = malloc(sizeof(float) * s.HKV * lens[d] * x.NB);
        for (int g = 0; g < s.HKV; g++)
            memcpy(tg + (size_t)g * lens[d] * x.NB, x.target + ((size_t)g * x.T + t0) * x.NB,
                   sizeof(float) * lens[d] * x.NB);
        GateChunk c = {x.q + (size_t)t0 * s.HKV * s.G * s.HD, x.k + (size_t)t0 * s.HKV * s.HD,
                       &lens[d], 1, lens[d], x.NB, x.theta};
        CHECK(gate_loss_cpu(&one, NULL, x.params, s, &c, tg, NULL, &err) == 0);
        CHECK(one.n_docs == (d != 1));
        sum += one.loss;
        t0 += lens[d];
        free(tg);
    }
    CHECK_CLOSE(all.loss, sum / 2, 1e-6);
    case_free(&x);
}

// No supervised row: loss 0 and no gradient. Gradients accumulate. Threads do not change bits.
static void test_edges_and_determinism(void) {
    GateShape s = {2, 3, 16, 8};
    int lens[3] = {130, 20, 97};
    Case x;
    case_make(&x, s, lens, 3, 1e4f, 0.5f);
    int64_t np = gate_param_count(s);
    float *g1 = calloc(np, sizeof(float)), *g2 = calloc(np, sizeof(float));
    GateLossOpts none = {1.0f, 10};
    GateLossStats st;
    SeerErr err;
    CHECK(gate_loss_cpu(&st, g1, x.params, s, &x.c, x.target, &none, &err) == 0);
    int zero = st.loss == 0 && st.n_docs == 0;
    for (int64_t i = 0; i < np; i++) zero &= g1[i] == 0;
    CHECK(zero);
    omp_set_num_threads(1);
    CHECK(gate_loss_cpu(&st, g1, x.params, s, &x.c, x.target, NULL, &err) == 0);
    omp_set_num_threads(2);
    GateLossStats st2;
    CHECK(gate_loss_cpu(&st2, g2, x.params, s, &x.c, x.target, NULL, &err) == 0);
    CHECK(memcmp(g1, g2, sizeof(float) * np) == 0);
    CHECK(st.loss == st2.loss);
    CHECK(gate_loss_cpu(&st2, g2, x.params, s, &x.c, x.target, NULL, &err) == 0);
    double worst = 0;
    for (int64_t i = 0; i < np; i++) worst = fmax(worst, fabs(g2[i] - 2 * g1[i]) / fmax(fabs(g1[i]), 1e-3));
    CHECK(worst < 1e-5);
    x.c.NB = 2;  // too small for the 130-token document
    CHECK(gate_loss_cpu(&st, g1, x.params, s, &x.c, x.target, NULL, &err) == -1 && strstr(err.msg, "NB 2"));
    free(g1), free(g2);
    case_free(&x);
}

int main(void) {
    RUN(test_param_counts);
    RUN(test_init);
    RUN(test_checks);
    RUN(test_plan);
    RUN(test_forward_vs_double);
    RUN(test_grad_finite_differences);
    RUN(test_mean_over_documents);
    RUN(test_edges_and_determinism);
    return test_summary();
}
