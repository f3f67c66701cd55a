// adamw.h: AdamW over one flat fp32 parameter vector (the gates' master weights), with
// global-norm gradient clipping. Decoupled weight decay as in Loshchilov & Hutter; bias
// correction as in PyTorch's torch.optim.AdamW. Deterministic: one fixed-order loop per step.
#pragma once
#include <stdint.h>

typedef struct {
    float beta1, beta2, eps, weight_decay;  // SPEC.md section 3: 0.9, 0.999, 1e-8, 0
} AdamWHyper;

typedef struct {
    AdamWHyper hp;
    int64_t n;    // number of parameters
    int64_t t;    // optimizer steps taken so far (bias correction uses t + 1 on the next step)
    float *m;     // [n] first moment
    float *v;     // [n] second moment
} AdamW;

// The paper's defaults: beta 0.9/0.999, eps 1e-8, weight decay 0.
AdamWHyper adamw_default_hyper(void);

// Allocates zeroed moments for n parameters (n >= 0; n == 0 gives a no-op optimizer).
void adamw_init(AdamW *opt, int64_t n, AdamWHyper hp);
void adamw_free(AdamW *opt);

// One update with learning rate lr: p -= lr * (m_hat / (sqrt(v_hat) + eps) + wd * p).
// p, g: [n]. g is read only. Increments opt->t. NaN in g propagates into p (the caller checks
// the gradient norm first and refuses non-finite steps).
void adamw_step(AdamW *opt, float *p, const float *g, float lr);

// L2 norm of g ([n]) accumulated in double in index order (bit-reproducible).
double adamw_grad_norm(const float *g, int64_t n);

// Scales g ([n]) in place so its L2 norm is at most max_norm, the way torch's clip_grad_norm_
// does (coefficient max_norm / (norm + 1e-6), applied only when below 1). max_norm <= 0 disables
// clipping. Returns the norm before clipping.
double adamw_clip_grad(float *g, int64_t n, double max_norm);
