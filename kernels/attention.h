// attention.h: causal varlen attention over a packed chunk, optionally emitting the gate's
// training target (SPEC.md section 2) in the same pass. CPU reference here; CUDA twin in attention.cu.
//
// A chunk holds n_docs documents back to back (doc_lens sum to T); positions and causality restart
// per document, nothing attends across documents. G = H / HKV; query head h reads KV head h / G.
#pragma once

// q:      [T, H, HD] post-RoPE queries        out: [T, H, HD]
// k, v:   [T, HKV, HD] post-RoPE keys, values
// target: [HKV, T, NB] or NULL, NB = ceil(max doc len / 64). For token t at in-document position
//         p, entries j < floor(p/64) hold P[g, t, j] of SPEC.md section 2 (block max of the exact
//         softmax, max over the group's heads, strictly block-causal, normalised to sum 1); every
//         other entry (and every row with p < 64) is 0.
// Scale is 1/sqrt(HD).
void attention_forward_cpu(float *out, float *target, const float *q, const float *k,
                           const float *v, const int *doc_lens, int n_docs, int T, int H, int HKV,
                           int HD, int NB);
