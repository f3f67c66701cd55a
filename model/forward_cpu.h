// forward_cpu.h: the exact fp32 forward pass of the frozen model on the CPU (the reference every
// other path is tested against), over one packed chunk of documents.
//
//   embed -> per layer: rmsnorm -> q,k,v = x Wq^T, x Wk^T, x Wv^T (+ bias, Qwen2)
//                       -> q/k rmsnorm over HD (Qwen3)        <- "nope" q/k (the gate's input)
//                       -> RoPE (positions restart per document)
//                       -> causal GQA attention within each document (+ gate target on request)
//                       -> o_proj -> residual -> rmsnorm -> SwiGLU MLP -> residual
//         -> final rmsnorm -> logits = x lm_head^T
//
// A chunk holds n_docs documents back to back: ids [T], doc_lens [n_docs] summing to T. Nothing
// attends across documents, so the result for each document equals running it alone.
#pragma once
#include "common/common.h"
#include "model/model.h"

// What a layer hook sees. Every pointer is valid only during the call (the buffers are reused by
// the next layer); copy what you keep. Token order is the chunk's: t indexes ids.
typedef struct {
    int layer;               // 0 .. L-1
    int T, H, HKV, HD, NB;   // NB = ceil(longest document / 64); 0 when no target was requested
    int n_docs;
    const int *doc_lens;     // [n_docs]
    const int *pos;          // [T] position of each token inside its document
    const float *q_nope;     // [T, H, HD]   after bias and q_norm, before RoPE (gate query input)
    const float *k_nope;     // [T, HKV, HD] after bias and k_norm, before RoPE (gate key input)
    const float *q;          // [T, H, HD]   after RoPE
    const float *k;          // [T, HKV, HD] after RoPE
    const float *v;          // [T, HKV, HD]
    const float *target;     // [HKV, T, NB] gate target of SPEC.md section 2 (see attention.h),
                             //   or NULL when the hook did not ask for it
} ForwardLayerView;

// Called once per layer, after attention and before o_proj. Return 0 to go on, or -1 (having filled
// err) to stop the forward, which then returns -1 with that message.
typedef int (*ForwardLayerFn)(void *ctx, const ForwardLayerView *view, SeerErr *err);

typedef struct {
    ForwardLayerFn fn;
    void *ctx;
    int want_target;  // non-zero: compute the gate target at every layer (costs [HKV, T, NB] floats)
} ForwardHook;

// Which rows of logits forward_cpu writes.
typedef enum {
    FORWARD_LOGITS_ALL = 0,       // logits: [T, V], one row per token
    FORWARD_LOGITS_DOC_LAST = 1,  // logits: [n_docs, V], the last token of each document
} ForwardLogits;

// Runs the model over a packed chunk. ids: [T]; doc_lens: [n_docs] (each >= 1, sum T);
// logits: see `rows`, or NULL to skip the lm head (the trainer's case); hook: NULL or as above.
// Activations come from one allocation sized up front, freed before returning.
// Returns 0, or -1 with err naming the problem: T < 1, n_docs < 1, an id outside [0, V), a
// document length < 1, lengths that do not sum to T, or a hook failure. Positions past the
// config's max_position_embeddings are computed like any other (as Hugging Face does).
int forward_cpu(const Model *m, const int *ids, int T, const int *doc_lens, int n_docs,
                float *logits, ForwardLogits rows, const ForwardHook *hook, SeerErr *err);
