// hf_config.c: see hf_config.h.
#include "ckpt/hf_config.h"

#include "ckpt/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *arch;        // "architectures"[0]
    const char *model_type;  // "model_type"
    ModelArch id;
    int max_pos_default;
} HfArch;

static const HfArch hf_archs[] = {
    {"Qwen3ForCausalLM", "qwen3", ARCH_QWEN3, 32768},
    {"Qwen2ForCausalLM", "qwen2", ARCH_QWEN2, 32768},
    {"LlamaForCausalLM", "llama", ARCH_LLAMA, 2048},
};
#define HF_N_ARCHS ((int)(sizeof hf_archs / sizeof hf_archs[0]))
#define HF_SUPPORTED "Qwen3ForCausalLM (qwen3), Qwen2ForCausalLM (qwen2), LlamaForCausalLM (llama)"

const char *hf_arch_name(ModelArch arch) {
    for (int i = 0; i < HF_N_ARCHS; i++)
        if (hf_archs[i].id == arch) return hf_archs[i].arch;
    return "unknown";
}

// The field, or NULL when absent or JSON null (transformers treats both as "not set").
static const json_t *hf_get(const json_t *root, const char *key) {
    const json_t *v = json_object_get(root, key);
    return json_is_null(v) ? NULL : v;
}

// ---------------------------------------------------------------------------------------------
// typed fields
// ---------------------------------------------------------------------------------------------

// An integer field in [lo, hi]; absent gives dflt, or an error when required. Integral reals pass.
static int hf_int(const json_t *root, const char *key, int required, int64_t dflt, int64_t lo, int64_t hi,
                  int *out, const char *path, SeerErr *err) {
    const json_t *v = hf_get(root, key);
    int64_t x;
    if (!v) {
        if (required) return seer_fail(err, "%s: missing field '%s'", path, key);
        x = dflt;
    } else if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) && fabs(json_real_value(v)) < 1e15) {
        x = (int64_t)json_real_value(v);
    } else {
        return seer_fail(err, "%s: field '%s' must be an integer", path, key);
    }
    if (x < lo || x > hi)
        return seer_fail(err, "%s: field '%s' is %lld, expected %lld to %lld", path, key, (long long)x,
                         (long long)lo, (long long)hi);
    *out = (int)x;
    return 0;
}

// A positive finite number field; absent gives dflt.
static int hf_num(const json_t *root, const char *key, double dflt, double *out, const char *path, SeerErr *err) {
    const json_t *v = hf_get(root, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_number(v) || !(json_number_value(v) > 0) || !isfinite(json_number_value(v)))
        return seer_fail(err, "%s: field '%s' must be a positive number", path, key);
    *out = json_number_value(v);
    return 0;
}

static int hf_bool(const json_t *root, const char *key, int dflt, int *out, const char *path, SeerErr *err) {
    const json_t *v = hf_get(root, key);
    if (!v) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) return seer_fail(err, "%s: field '%s' must be true or false", path, key);
    *out = json_is_true(v);
    return 0;
}

// A token id: an integer, a list of integers (its first), or absent / null / [] (-1).
static int hf_token(const json_t *root, const char *key, int *out, const char *path, SeerErr *err) {
    const json_t *v = hf_get(root, key);
    if (json_is_array(v)) v = json_array_size(v) ? json_array_get(v, 0) : NULL;
    *out = -1;
    if (!v) return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
        return seer_fail(err, "%s: field '%s' must be a token id or a list of them", path, key);
    *out = (int)json_integer_value(v);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// the parts of the config
// ---------------------------------------------------------------------------------------------

static int hf_parse_arch(const json_t *root, const HfArch **out, const char *path, SeerErr *err) {
    const json_t *archs = hf_get(root, "architectures"), *mt = hf_get(root, "model_type");
    const char *arch = json_is_array(archs) ? json_string_value(json_array_get(archs, 0)) : NULL;
    const char *type = json_string_value(mt);
    if (!arch && !type)
        return seer_fail(err, "%s: no 'architectures' or 'model_type' field (supported: %s)", path, HF_SUPPORTED);
    for (int i = 0; i < HF_N_ARCHS; i++) {
        const HfArch *a = &hf_archs[i];
        if (arch ? strcmp(arch, a->arch) : strcmp(type, a->model_type)) continue;
        if (arch && type && strcmp(type, a->model_type))
            return seer_fail(err, "%s: field 'model_type' is '%s' but architectures says %s (model_type '%s')",
                             path, type, a->arch, a->model_type);
        *out = a;
        return 0;
    }
    return seer_fail(err, "%s: unsupported architecture '%s' (supported: %s)", path, arch ? arch : type, HF_SUPPORTED);
}

// Refuses scaled RoPE in an object with "rope_type" or "type" (rope_scaling, rope_parameters).
static int hf_check_rope_type(const json_t *obj, const char *key, const char *path, SeerErr *err) {
    if (!obj) return 0;
    if (!json_is_object(obj)) return seer_fail(err, "%s: field '%s' must be an object", path, key);
    const json_t *t = hf_get(obj, "rope_type");
    if (!t) t = hf_get(obj, "type");
    const char *name = json_string_value(t);
    if (t && (!name || strcmp(name, "default")))
        return seer_fail(err, "%s: field '%s' asks for RoPE type '%s'; only unscaled (default) RoPE is supported",
                         path, key, name ? name : "?");
    return 0;
}

static int hf_parse_rope(const json_t *root, ModelConfig *c, const char *path, SeerErr *err) {
    const json_t *params = hf_get(root, "rope_parameters");
    if (hf_check_rope_type(hf_get(root, "rope_scaling"), "rope_scaling", path, err)) return -1;
    if (hf_check_rope_type(params, "rope_parameters", path, err)) return -1;
    double top, nested;
    if (hf_num(root, "rope_theta", 0, &top, path, err)) return -1;
    if (params && hf_num(params, "rope_theta", 0, &nested, path, err)) return -1;
    if (!params) nested = 0;
    if (top && nested && top != nested)
        return seer_fail(err, "%s: field 'rope_theta' is %g but rope_parameters.rope_theta is %g", path, top, nested);
    c->rope_theta = (float)(top ? top : nested ? nested : 10000.0);
    return 0;
}

// Sliding-window attention on any layer is refused (layer_types, or use_sliding_window with
// max_window_layers below the layer count: transformers slides layers >= max_window_layers).
static int hf_check_full_attention(const json_t *root, int L, const char *path, SeerErr *err) {
    const json_t *types = hf_get(root, "layer_types");
    size_t i;
    const json_t *t;
    if (types && !json_is_array(types)) return seer_fail(err, "%s: field 'layer_types' must be a list", path);
    json_array_foreach(types, i, t) {
        if (!json_is_string(t) || strcmp(json_string_value(t), "full_attention"))
            return seer_fail(err, "%s: field 'layer_types'[%zu] is not \"full_attention\"; sliding-window attention is not supported",
                             path, i);
    }
    int sliding, max_window;
    if (hf_bool(root, "use_sliding_window", 0, &sliding, path, err)) return -1;
    if (hf_int(root, "max_window_layers", 0, 28, 0, INT32_MAX, &max_window, path, err)) return -1;
    if (sliding && max_window < L)
        return seer_fail(err, "%s: field 'use_sliding_window' is true (layers >= %d would slide); sliding-window attention is not supported",
                         path, max_window);
    return 0;
}

// Biases beyond q/k/v and activations other than SiLU are not modelled: refuse instead of ignoring.
static int hf_check_unmodelled(const json_t *root, ModelArch arch, const char *path, SeerErr *err) {
    const json_t *act = hf_get(root, "hidden_act");
    if (act && (!json_is_string(act) || strcmp(json_string_value(act), "silu")))
        return seer_fail(err, "%s: field 'hidden_act' must be \"silu\"", path);
    int attn_bias, mlp_bias;
    if (hf_bool(root, "attention_bias", 0, &attn_bias, path, err)) return -1;
    if (hf_bool(root, "mlp_bias", 0, &mlp_bias, path, err)) return -1;
    if (arch != ARCH_QWEN2 && attn_bias)  // Qwen2 always has q/k/v bias and ignores this field
        return seer_fail(err, "%s: field 'attention_bias' is true (bias on o_proj) for %s; not supported", path,
                         hf_arch_name(arch));
    if (mlp_bias) return seer_fail(err, "%s: field 'mlp_bias' is true; not supported", path);
    return 0;
}

static int hf_parse_sizes(const json_t *root, ModelConfig *c, const char *path, SeerErr *err) {
    const int big = 1 << 24;
    if (hf_int(root, "hidden_size", 1, 0, 1, big, &c->D, path, err) ||
        hf_int(root, "num_hidden_layers", 1, 0, 1, 4096, &c->L, path, err) ||
        hf_int(root, "num_attention_heads", 1, 0, 1, 4096, &c->H, path, err) ||
        hf_int(root, "num_key_value_heads", 0, c->H, 1, 4096, &c->HKV, path, err) ||
        hf_int(root, "intermediate_size", 1, 0, 1, big, &c->F, path, err) ||
        hf_int(root, "vocab_size", 1, 0, 1, big, &c->V, path, err))
        return -1;
    if (c->H % c->HKV)
        return seer_fail(err, "%s: field 'num_attention_heads' (%d) is not a multiple of num_key_value_heads (%d)",
                         path, c->H, c->HKV);
    if (!hf_get(root, "head_dim") && c->D % c->H)
        return seer_fail(err, "%s: no field 'head_dim' and hidden_size (%d) is not a multiple of num_attention_heads (%d)",
                         path, c->D, c->H);
    if (hf_int(root, "head_dim", 0, c->D / c->H, 2, 4096, &c->HD, path, err)) return -1;
    if (c->HD % 2) return seer_fail(err, "%s: field 'head_dim' is %d; RoPE needs an even head_dim", path, c->HD);
    if ((int64_t)c->H * c->HD > big) return seer_fail(err, "%s: num_attention_heads x head_dim is too large", path);
    return 0;
}

int hf_config_from_json(ModelConfig *cfg, const json_t *root, const char *path, SeerErr *err) {
    ModelConfig c;
    memset(&c, 0, sizeof c);
    if (!json_is_object(root)) return seer_fail(err, "%s: not a JSON object", path);
    const HfArch *a = NULL;
    double eps;
    if (hf_parse_arch(root, &a, path, err)) return -1;
    c.arch = a->id;
    c.qk_norm = a->id == ARCH_QWEN3;
    c.qkv_bias = a->id == ARCH_QWEN2;
    if (hf_parse_sizes(root, &c, path, err) || hf_parse_rope(root, &c, path, err) ||
        hf_check_full_attention(root, c.L, path, err) || hf_check_unmodelled(root, c.arch, path, err) ||
        hf_num(root, "rms_norm_eps", 1e-6, &eps, path, err) ||
        hf_bool(root, "tie_word_embeddings", 0, &c.tie_embeddings, path, err) ||
        hf_token(root, "bos_token_id", &c.bos_id, path, err) || hf_token(root, "eos_token_id", &c.eos_id, path, err) ||
        hf_int(root, "max_position_embeddings", 0, a->max_pos_default, 1, INT32_MAX, &c.max_pos, path, err))
        return -1;
    c.rms_eps = (float)eps;
    *cfg = c;
    return 0;
}

int hf_config_load(ModelConfig *cfg, const char *path, SeerErr *err) {
    json_error_t jerr;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        if (access(path, R_OK) != 0) return seer_fail(err, "%s: cannot open: %s", path, strerror(errno));
        return seer_fail(err, "%s:%d: bad JSON: %s", path, jerr.line, jerr.text);
    }
    int rc = hf_config_from_json(cfg, root, path, err);
    json_decref(root);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// writing
// ---------------------------------------------------------------------------------------------

static json_t *hf_config_to_json(const ModelConfig *c) {
    const HfArch *a = &hf_archs[0];
    for (int i = 0; i < HF_N_ARCHS; i++)
        if (hf_archs[i].id == c->arch) a = &hf_archs[i];
    json_t *root = json_pack("{s:[s], s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:b, s:i, s:s}",
                             "architectures", a->arch, "model_type", a->model_type, "hidden_size", c->D,
                             "num_hidden_layers", c->L, "num_attention_heads", c->H, "num_key_value_heads", c->HKV,
                             "head_dim", c->HD, "intermediate_size", c->F, "vocab_size", c->V, "rope_theta",
                             (double)c->rope_theta, "rms_norm_eps", (double)c->rms_eps, "tie_word_embeddings",
                             c->tie_embeddings, "max_position_embeddings", c->max_pos, "hidden_act", "silu");
    json_object_set_new(root, "bos_token_id", c->bos_id >= 0 ? json_integer(c->bos_id) : json_null());
    json_object_set_new(root, "eos_token_id", c->eos_id >= 0 ? json_integer(c->eos_id) : json_null());
    return root;
}

int hf_config_write(const ModelConfig *cfg, const char *path, SeerErr *err) {
    json_t *root = hf_config_to_json(cfg);
    char *text = json_dumps(root, JSON_INDENT(2));
    json_decref(root);
    int rc = st_write_bytes(path, text, strlen(text), err);
    free(text);
    return rc;
}
