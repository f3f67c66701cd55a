// model_load.c: binds a Hugging Face checkpoint's tensors to ModelWeights (model_load / model_free),
// and writes random-weights checkpoints of any config (model_write_random) for tests and benchmarks.
//
// One table (model_weight_specs) lists every weight of a config with its Hugging Face name, its
// expected shape and where it goes in ModelWeights; loading and writing both walk it.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/hf_config.h"
#include "ckpt/safetensors.h"
#include "model/model.h"

typedef struct {
    char name[96];
    int ndim;          // 1 or 2
    int64_t shape[2];
    Tensor *dst;       // into a ModelWeights
    int is_norm;       // RMSNorm weight (random init around 1)
} WeightSpec;

static void spec_add(WeightSpec *s, int *n, Tensor *dst, int is_norm, int64_t d0, int64_t d1, const char *fmt,
                     int layer) {
    WeightSpec *w = &s[(*n)++];
    snprintf(w->name, sizeof w->name, fmt, layer);
    w->ndim = d1 ? 2 : 1;
    w->shape[0] = d0;
    w->shape[1] = d1;
    w->dst = dst;
    w->is_norm = is_norm;
}

// Fills specs (room for 3 + 14 * L) for cfg, pointing into w (whose layers must be allocated).
// Returns the count. lm_head is listed only when not tied.
static int model_weight_specs(const ModelConfig *c, ModelWeights *w, WeightSpec *s) {
    int n = 0;
    int64_t D = c->D, QD = (int64_t)c->H * c->HD, KD = (int64_t)c->HKV * c->HD, F = c->F;
    spec_add(s, &n, &w->embed, 0, c->V, D, "model.embed_tokens.weight", 0);
    for (int l = 0; l < c->L; l++) {
        LayerWeights *lw = &w->layers[l];
        spec_add(s, &n, &lw->attn_norm, 1, D, 0, "model.layers.%d.input_layernorm.weight", l);
        spec_add(s, &n, &lw->wq, 0, QD, D, "model.layers.%d.self_attn.q_proj.weight", l);
        spec_add(s, &n, &lw->wk, 0, KD, D, "model.layers.%d.self_attn.k_proj.weight", l);
        spec_add(s, &n, &lw->wv, 0, KD, D, "model.layers.%d.self_attn.v_proj.weight", l);
        if (c->qkv_bias) {
            spec_add(s, &n, &lw->bq, 0, QD, 0, "model.layers.%d.self_attn.q_proj.bias", l);
            spec_add(s, &n, &lw->bk, 0, KD, 0, "model.layers.%d.self_attn.k_proj.bias", l);
            spec_add(s, &n, &lw->bv, 0, KD, 0, "model.layers.%d.self_attn.v_proj.bias", l);
        }
        if (c->qk_norm) {
            spec_add(s, &n, &lw->q_norm, 1, c->HD, 0, "model.layers.%d.self_attn.q_norm.weight", l);
            spec_add(s, &n, &lw->k_norm, 1, c->HD, 0, "model.layers.%d.self_attn.k_norm.weight", l);
        }
        spec_add(s, &n, &lw->wo, 0, D, QD, "model.layers.%d.self_attn.o_proj.weight", l);
        spec_add(s, &n, &lw->mlp_norm, 1, D, 0, "model.layers.%d.post_attention_layernorm.weight", l);
        spec_add(s, &n, &lw->w_gate, 0, F, D, "model.layers.%d.mlp.gate_proj.weight", l);
        spec_add(s, &n, &lw->w_up, 0, F, D, "model.layers.%d.mlp.up_proj.weight", l);
        spec_add(s, &n, &lw->w_down, 0, D, F, "model.layers.%d.mlp.down_proj.weight", l);
    }
    spec_add(s, &n, &w->final_norm, 1, D, 0, "model.norm.weight", 0);
    if (!c->tie_embeddings) spec_add(s, &n, &w->lm_head, 0, c->V, D, "lm_head.weight", 0);
    return n;
}

static int model_max_specs(const ModelConfig *c) { return 3 + 14 * c->L; }

static void shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

// ---------------------------------------------------------------------------------------------
// loading
// ---------------------------------------------------------------------------------------------

static int model_bind(const SafetensorsSet *s, const WeightSpec *w, const char *config_path, SeerErr *err) {
    char want[64], got[64];
    shape_str(want, sizeof want, w->ndim, w->shape);
    const StEntry *e = st_find(s, w->name);
    if (!e) return seer_fail(err, "%s: missing tensor '%s' (expected shape %s from %s)", s->path, w->name, want, config_path);
    int same = e->ndim == w->ndim;
    for (int i = 0; same && i < w->ndim; i++) same = e->shape[i] == w->shape[i];
    if (!same) {
        shape_str(got, sizeof got, e->ndim, e->shape);
        return seer_fail(err, "%s: tensor '%s' has shape %s, expected %s from %s", st_entry_path(s, e), w->name, got,
                         want, config_path);
    }
    return st_get(s, w->name, w->dst, err);
}

int model_load(Model *m, const char *dir, SeerErr *err) {
    memset(m, 0, sizeof *m);
    char *config_path = path_join(dir, "config.json");
    int rc = hf_config_load(&m->cfg, config_path, err);
    if (rc == 0) rc = st_open_dir(&m->files, dir, err);
    if (rc == 0) {
        m->w.layers = xcalloc((size_t)m->cfg.L, sizeof *m->w.layers);
        WeightSpec *specs = xmalloc((size_t)model_max_specs(&m->cfg) * sizeof *specs);
        int ns = model_weight_specs(&m->cfg, &m->w, specs);
        for (int i = 0; i < ns && rc == 0; i++) rc = model_bind(m->files, &specs[i], config_path, err);
        if (m->cfg.tie_embeddings) m->w.lm_head = m->w.embed;
        free(specs);
    }
    free(config_path);
    if (rc) model_free(m);
    return rc;
}

void model_free(Model *m) {
    st_close(m->files);
    free(m->w.layers);
    memset(m, 0, sizeof *m);
}

int64_t model_weight_bytes(const Model *m) {
    ModelWeights w = m->w;
    WeightSpec *specs = xmalloc((size_t)model_max_specs(&m->cfg) * sizeof *specs);
    int ns = model_weight_specs(&m->cfg, &w, specs);
    int64_t total = 0;
    for (int i = 0; i < ns; i++) total += tensor_numel(specs[i].dst) * (int64_t)dtype_size(specs[i].dst->dtype);
    free(specs);
    return total;
}

// ---------------------------------------------------------------------------------------------
// writing random checkpoints
// ---------------------------------------------------------------------------------------------

static uint64_t splitmix64(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// Fills numel values of dtype: uniform in [-0.05, 0.05), or 1 + that for norms. Chunks of 64K
// elements get their own stream (seed, tensor, chunk), so the result does not depend on threads.
static void fill_random(void *data, SeerDType dtype, int64_t numel, int is_norm, uint64_t seed, int tensor) {
    const int64_t CH = 1 << 16;
    int64_t nch = (numel + CH - 1) / CH;
#pragma omp parallel for schedule(static) if (numel > (1 << 20))
    for (int64_t c = 0; c < nch; c++) {
        uint64_t st = seed ^ ((uint64_t)tensor << 40) ^ (uint64_t)c * 0x2545f4914f6cdd1dull;
        int64_t end = (c + 1) * CH < numel ? (c + 1) * CH : numel;
        for (int64_t i = c * CH; i < end; i++) {
            float u = (float)(splitmix64(&st) >> 40) * (1.0f / 16777216.0f);  // [0, 1)
            float x = (is_norm ? 1.0f : 0.0f) + 0.1f * u - 0.05f;
            if (dtype == SEER_F32) ((float *)data)[i] = x;
            else if (dtype == SEER_F16) ((uint16_t *)data)[i] = f32_to_f16(x);
            else ((uint16_t *)data)[i] = f32_to_bf16(x);
        }
    }
}

// Writes specs [first, last) as one safetensors file at `path`.
static int write_shard(const char *path, const WeightSpec *specs, int first, int last, SeerDType dtype, uint64_t seed,
                       SeerErr *err) {
    int n = last - first;
    StTensor *ts = xcalloc((size_t)(n ? n : 1), sizeof *ts);
    void **bufs = xcalloc((size_t)(n ? n : 1), sizeof *bufs);
    for (int i = 0; i < n; i++) {
        const WeightSpec *w = &specs[first + i];
        Tensor *t = &ts[i].t;
        t->dtype = dtype;
        t->ndim = w->ndim;
        t->shape[0] = w->shape[0];
        t->shape[1] = w->shape[1];
        bufs[i] = xmalloc((size_t)(tensor_numel(t) * (int64_t)dtype_size(dtype)));
        fill_random(bufs[i], dtype, tensor_numel(t), w->is_norm, seed, first + i);
        t->data = bufs[i];
        ts[i].name = w->name;
    }
    const char *meta[] = {"format", "pt", NULL};
    int rc = st_write(path, ts, n, meta, err);
    for (int i = 0; i < n; i++) free(bufs[i]);
    free(bufs);
    free(ts);
    return rc;
}

// Assigns specs to shards of at most shard_bytes (a tensor larger than that gets a shard of its own);
// shard[i] gets the shard of spec i. Returns the shard count.
static int plan_shards(const WeightSpec *specs, int n, SeerDType dtype, uint64_t shard_bytes, int *shard) {
    int k = 0;
    uint64_t used = 0;
    for (int i = 0; i < n; i++) {
        uint64_t b = (uint64_t)specs[i].shape[0] * (uint64_t)(specs[i].ndim == 2 ? specs[i].shape[1] : 1) *
                     dtype_size(dtype);
        if (used > 0 && shard_bytes && used + b > shard_bytes) {
            k++;
            used = 0;
        }
        shard[i] = k;
        used += b;
    }
    return n ? k + 1 : 1;
}

static int write_sharded(const char *dir, const WeightSpec *specs, int n, SeerDType dtype,
                         uint64_t shard_bytes, uint64_t seed, SeerErr *err) {
    int *shard = xmalloc((size_t)(n ? n : 1) * sizeof *shard);
    int ns = plan_shards(specs, n, dtype, shard_bytes, shard), rc = 0;
    char **files = xcalloc((size_t)ns, sizeof *files);
    size_t plen = strlen(dir) + 64;
    char *path = xmalloc(plen);
    uint64_t total = 0;
    for (int k = 0, first = 0; k < ns && rc == 0; k++) {
        int last = first;
        while (last < n && shard[last] == k) last++;
        files[k] = xmalloc(48);
        snprintf(files[k], 48, "model-%05d-of-%05d.safetensors", k + 1, ns);
        snprintf(path, plen, "%s/%s", dir, files[k]);
        rc = write_shard(path, specs, first, last, dtype, seed, err);
        first = last;
    }
    const char **names = xmalloc((size_t)(n ? n : 1) * sizeof *names), **where = xmalloc((size_t)(n ? n : 1) * sizeof *where);
    for (int i = 0; i < n; i++) {
        names[i] = specs[i].name;
        where[i] = files[shard[i]];
        total += (uint64_t)specs[i].shape[0] * (uint64_t)(specs[i].ndim == 2 ? specs[i].shape[1] : 1) * dtype_size(dtype);
    }
    snprintf(path, plen, "%s/model.safetensors.index.json", dir);
    if (rc == 0) rc = st_write_index(path, names, where, n, total, err);
    for (int k = 0; k < ns; k++) free(files[k]);
    free(files);
    free(names);
    free(where);
    free(path);
    free(shard);
    return rc;
}

int model_write_random(const ModelConfig *cfg, const char *dir, SeerDType dtype, uint64_t shard_bytes, uint64_t seed,
                       SeerErr *err) {
    ModelWeights w;
    memset(&w, 0, sizeof w);
    w.layers = xcalloc((size_t)cfg->L, sizeof *w.layers);
    WeightSpec *specs = xmalloc((size_t)model_max_specs(cfg) * sizeof *specs);
    int n = model_weight_specs(cfg, &w, specs), rc;
    if (shard_bytes) {
        rc = write_sharded(dir, specs, n, dtype, shard_bytes, seed, err);
    } else {
        char *path = path_join(dir, "model.safetensors");
        rc = write_shard(path, specs, 0, n, dtype, seed, err);
        free(path);
    }
    free(specs);
    free(w.layers);
    return rc;
}
