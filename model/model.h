// model.h: a frozen Hugging Face decoder (Qwen3, Qwen2 / R1-Distill-Qwen, Llama): its config and
// weights as views into the memory-mapped checkpoint (no copies). Shared by train/ and eval/.
//
// Dimensions: D hidden, L layers, H query heads, HKV key/value heads, G = H/HKV, HD head dim,
// F MLP width, V vocabulary. Linear weights keep the Hugging Face layout [out, in] (y = x W^T).
#pragma once
#include "common/common.h"
#include "common/tensor.h"

typedef enum { ARCH_QWEN3 = 0, ARCH_QWEN2 = 1, ARCH_LLAMA = 2 } ModelArch;

typedef struct {
    ModelArch arch;
    int D, L, H, HKV, HD, F, V;
    float rope_theta;
    float rms_eps;
    int tie_embeddings;  // lm_head shares the embedding matrix
    int qk_norm;         // Qwen3: RMSNorm over HD on q and k before RoPE
    int qkv_bias;        // Qwen2: biases on the q/k/v projections
    int bos_id, eos_id;  // -1 when the config has none
    int max_pos;         // max_position_embeddings
} ModelConfig;

typedef struct {
    Tensor attn_norm;       // [D]
    Tensor wq;              // [H*HD, D]
    Tensor wk, wv;          // [HKV*HD, D]
    Tensor bq;              // [H*HD]    (qkv_bias only; ndim 0 otherwise)
    Tensor bk, bv;          // [HKV*HD]  (qkv_bias only)
    Tensor q_norm, k_norm;  // [HD]      (qk_norm only)
    Tensor wo;              // [D, H*HD]
    Tensor mlp_norm;        // [D]
    Tensor w_gate, w_up;    // [F, D]
    Tensor w_down;          // [D, F]
} LayerWeights;

typedef struct {
    Tensor embed;          // [V, D]
    Tensor final_norm;     // [D]
    Tensor lm_head;        // [V, D]; the same view as embed when tied
    LayerWeights *layers;  // [L]
} ModelWeights;

typedef struct SafetensorsSet SafetensorsSet;  // ckpt/safetensors.h

typedef struct {
    ModelConfig cfg;
    ModelWeights w;
    SafetensorsSet *files;  // owns the memory maps the weights point into
} Model;

// Loads config.json and model.safetensors (or the sharded index) from a Hugging Face folder.
// Every tensor is checked against the config; on failure fills err (naming the file) and returns -1.
int model_load(Model *m, const char *dir, SeerErr *err);
void model_free(Model *m);

// Bytes of all weight tensors bound by model_load (the embedding counted once when tied).
int64_t model_weight_bytes(const Model *m);

// Writes random weights for cfg into the existing folder dir, every tensor in `dtype` under its
// Hugging Face name: DIR/model.safetensors when shard_bytes is 0, else shards of at most shard_bytes
// (a larger tensor gets a shard of its own) named model-0000k-of-0000n.safetensors plus
// model.safetensors.index.json. Values: uniform in [-0.05, 0.05), norms 1 + that; the same for the
// same seed whatever the thread count. Writes no config.json (see hf_config_write). -1 with err on
// I/O failure.
int model_write_random(const ModelConfig *cfg, const char *dir, SeerDType dtype, uint64_t shard_bytes,
                       uint64_t seed, SeerErr *err);
