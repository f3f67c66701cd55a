// adamw.c: see adamw.h.
#include "train/adamw.h"

#include <math.h>
#include <stdlib.h>

#include "common/common.h"

AdamWHyper adamw_default_hyper(void) {
    return (AdamWHyper){.beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-8f, .weight_decay = 0.0f};
}

void adamw_init(AdamW *opt, int64_t n, AdamWHyper hp) {
    opt->hp = hp;
    opt->n = n;
    opt->t = 0;
    opt->m = xcalloc((size_t)(n > 0 ? n : 1), sizeof(float));
    opt->v = xcalloc((size_t)(n > 0 ? n : 1), sizeof(float));
}

void adamw_free(AdamW *opt) {
    free(opt->m);
    free(opt->v);
    opt->m = opt->v = NULL;
    opt->n = 0;
}

void adamw_step(AdamW *opt, float *p, const float *g, float lr) {
    const AdamWHyper *hp = &opt->hp;
    opt->t++;
    // Bias corrections in double, then folded into one step size and one denominator scale,
    // as torch does: p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps).
    double bc1 = 1.0 - pow((double)hp->beta1, (double)opt->t);
    double bc2 = 1.0 - pow((double)hp->beta2, (double)opt->t);
    float step = (float)(lr / bc1);
    float bc2_sqrt = (float)sqrt(bc2);
    float decay = 1.0f - lr * hp->weight_decay;
    float b1 = hp->beta1, b2 = hp->beta2;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < opt->n; i++) {
        float gi = g[i];
        float mi = b1 * opt->m[i] + (1.0f - b1) * gi;
        float vi = b2 * opt->v[i] + (1.0f - b2) * gi * gi;
        opt->m[i] = mi;
        opt->v[i] = vi;
        p[i] = p[i] * decay - step * mi / (sqrtf(vi) / bc2_sqrt + hp->eps);
    }
}

double adamw_grad_norm(const float *g, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)g[i] * (double)g[i];
    return sqrt(s);
}

double adamw_clip_grad(float *g, int64_t n, double max_norm) {
    double norm = adamw_grad_norm(g, n);
    if (max_norm <= 0) return norm;
    double coef = max_norm / (norm + 1e-6);
    if (coef >= 1.0) return norm;
    float c = (float)coef;
    for (int64_t i = 0; i < n; i++) g[i] *= c;
    return norm;
}
