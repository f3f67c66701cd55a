// gate_loss.c: CPU reference of the gate's distillation loss and its gradient (see gate_loss.h).
#include "train/gate_loss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

GateLossOpts gate_loss_default_opts(void) {
    GateLossOpts o = {0.5f, 10.0f};
    return o;
}

int gate_loss_opts_check(const GateLossOpts *o, SeerErr *err) {
    if (!(o->slice_ratio >= 0 && o->slice_ratio <= 1))
        return seer_fail(err, "gate loss: slice_ratio %g must be in [0, 1]", o->slice_ratio);
    if (!isfinite(o->scale)) return seer_fail(err, "gate loss: scale %g must be finite", o->scale);
    return 0;
}

int gate_loss_first_row(int len, float slice_ratio) {
    int p0 = (int)floor((double)len * slice_ratio);
    return p0 > SEER_BLOCK ? p0 : SEER_BLOCK;
}

int *gate_loss_first_rows(const int *doc_lens, int n_docs, float slice_ratio) {
    int *from = xmalloc(sizeof(int) * (size_t)n_docs);
    for (int d = 0; d < n_docs; d++) from[d] = gate_loss_first_row(doc_lens[d], slice_ratio);
    return from;
}

void gate_loss_plan(float *w_tok, GateLossStats *st, const int *doc_lens, int n_docs, int HKV,
                    float slice_ratio) {
    memset(st, 0, sizeof *st);
    for (int d = 0; d < n_docs; d++)
        if (doc_lens[d] > gate_loss_first_row(doc_lens[d], slice_ratio)) st->n_docs++;
    int t = 0;
    for (int d = 0; d < n_docs; d++) {
        int len = doc_lens[d], p0 = gate_loss_first_row(len, slice_ratio);
        int64_t rows = len > p0 ? (int64_t)HKV * (len - p0) : 0;
        st->n_rows += rows;
        float w = rows ? (float)(1.0 / ((double)st->n_docs * (double)rows)) : 0.0f;
        for (int p = 0; p < len; p++, t++)
            if (w_tok) w_tok[t] = p >= p0 ? w : 0.0f;
    }
}

double gate_loss_row(float *ds, const float *s, const float *P, int n, float coef) {
    float mx = -INFINITY;
    for (int j = 0; j < n; j++) mx = fmaxf(mx, s[j]);
    double z = 0;
    for (int j = 0; j < n; j++) z += exp((double)s[j] - mx);
    double lse = mx + log(z), kl = 0, sum_p = 0;
    for (int j = 0; j < n; j++) {
        sum_p += P[j];
        if (P[j] > 0) kl += P[j] * (log((double)P[j]) - ((double)s[j] - lse));
    }
    if (ds)
        for (int j = 0; j < n; j++) ds[j] = coef * (float)(exp((double)s[j] - lse) * sum_p - P[j]);
    return kl;
}

// Loss rows of group g: adds the gradient at the scores' inputs into dqr ([T, DG]) and dkr
// ([NBT, DG]) when they are not NULL; returns the group's weighted KL sum.
static double loss_group(float *dqr, float *dkr, const GateFwdCpu *f, const float *w_tok,
                         const float *target, int NB, float scale, int g) {
    int DG = f->s.DG;
    float *s = xmalloc(sizeof(float) * NB), *ds = xmalloc(sizeof(float) * NB);
    float inv_sqrt = 1.0f / sqrtf((float)DG);
    double kl = 0;
    for (int t = 0; t < f->T; t++) {
        if (w_tok[t] == 0) continue;
        int n = gate_score_row_cpu(s, f, g, t);
        const float *P = target + ((size_t)g * f->T + t) * NB;
        // ds below is d loss / d (qr . kr): the 1/sqrt(DG) of the score is folded into coef.
        kl += w_tok[t] * gate_loss_row(dqr ? ds : NULL, s, P, n, scale * w_tok[t] * inv_sqrt);
        if (!dqr) continue;
        const float *q = f->qr + ((size_t)g * f->T + t) * DG;
        const float *kr = f->kr + ((size_t)g * f->NBT + f->blk0[f->doc_of[t]]) * DG;
        float *dq = dqr + (size_t)t * DG, *dk = dkr + (size_t)f->blk0[f->doc_of[t]] * DG;
        for (int j = 0; j < n; j++) {
            for (int i = 0; i < DG; i++) {
                dq[i] += ds[j] * kr[(size_t)j * DG + i];
                dk[(size_t)j * DG + i] += ds[j] * q[i];
            }
        }
    }
    free(s), free(ds);
    return kl;
}

int gate_loss_cpu(GateLossStats *st, float *grad, const float *params, GateShape s,
                  const GateChunk *c, const float *target, const GateLossOpts *o, SeerErr *err) {
    GateLossOpts def = gate_loss_default_opts();
    if (!o) o = &def;
    if (gate_chunk_check(c, s, err) || gate_loss_opts_check(o, err)) return -1;
    float *w_tok = xmalloc(sizeof(float) * c->T);
    gate_loss_plan(w_tok, st, c->doc_lens, c->n_docs, s.HKV, o->slice_ratio);
    GateFwdCpu f;
    gate_forward_cpu(&f, params, s, c);
    double *kl_g = xcalloc(s.HKV, sizeof(double));
    float *dqn = NULL, *dkn = NULL;
    if (grad) {
        dqn = xcalloc((size_t)s.HKV * s.DG, sizeof(float));
        dkn = xcalloc((size_t)s.HKV * s.DG, sizeof(float));
    }
#pragma omp parallel for schedule(static)
    for (int g = 0; g < s.HKV; g++) {
        float *dqr = NULL, *dkr = NULL;
        if (grad) {
            dqr = xcalloc((size_t)c->T * s.DG, sizeof(float));
            dkr = xcalloc((size_t)f.NBT * s.DG, sizeof(float));
        }
        kl_g[g] = loss_group(dqr, dkr, &f, w_tok, target, c->NB, o->scale, g);
        if (grad)
            gate_backward_group_cpu(gate_params_view(grad, s), dqn + (size_t)g * s.DG,
                                    dkn + (size_t)g * s.DG, dqr, dkr, &f, params, c, g);
        free(dqr), free(dkr);
    }
    st->kl = 0;
    for (int g = 0; g < s.HKV; g++) st->kl += kl_g[g];
    st->loss = o->scale * st->kl;
    if (grad) {
        GateParams G = gate_params_view(grad, s);
        for (int g = 0; g < s.HKV; g++)
            for (int i = 0; i < s.DG; i++) {
                G.qnorm_w[i] += dqn[(size_t)g * s.DG + i];
                G.knorm_w[i] += dkn[(size_t)g * s.DG + i];
            }
    }
    free(w_tok), free(kl_g), free(dqn), free(dkn);
    gate_fwd_free(&f);
    return 0;
}
