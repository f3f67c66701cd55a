// hf_config.h: a Hugging Face config.json -> ModelConfig (model/model.h).
//
// Architectures: Qwen3ForCausalLM / "qwen3" (q_norm, k_norm), Qwen2ForCausalLM / "qwen2" (bias on
// q/k/v; DeepSeek-R1-Distill-Qwen), LlamaForCausalLM / "llama". Defaults follow the transformers
// config classes: num_key_value_heads = num_attention_heads, head_dim = hidden_size /
// num_attention_heads, rope_theta 10000 (top level or rope_parameters.rope_theta), rms_norm_eps 1e-6,
// tie_word_embeddings false, max_position_embeddings 32768 (Qwen) / 2048 (Llama), bos/eos -1 when
// absent (a list gives its first id).
//
// Refused with one line naming the file and the field: a missing required size (hidden_size,
// num_hidden_layers, num_attention_heads, intermediate_size, vocab_size), a non-positive or
// non-integer size, heads not a multiple of kv heads, hidden_size not divisible by heads when there is
// no head_dim, an odd head_dim, rope_theta given twice with different values, scaled RoPE
// (rope_scaling / rope_parameters with a rope_type other than "default"), sliding-window attention,
// hidden_act other than silu, attention_bias / mlp_bias on Qwen3 or Llama (bias on o_proj / the MLP is
// not modelled), an architecture and model_type that disagree, an unsupported architecture.
#pragma once
#include <jansson.h>

#include "common/common.h"
#include "model/model.h"

// Reads and parses `path`. Returns -1 with err on a missing file, bad JSON or any refusal above.
int hf_config_load(ModelConfig *cfg, const char *path, SeerErr *err);

// Parses an already-loaded JSON object; `path` only names the source in messages.
int hf_config_from_json(ModelConfig *cfg, const json_t *root, const char *path, SeerErr *err);

// Writes a minimal config.json for cfg (architectures, model_type and every field above), atomically.
// Loading it gives back cfg exactly. -1 with err on I/O failure.
int hf_config_write(const ModelConfig *cfg, const char *path, SeerErr *err);

// "Qwen3ForCausalLM", "Qwen2ForCausalLM" or "LlamaForCausalLM".
const char *hf_arch_name(ModelArch arch);
