// gate_export.c: see gate_export.h.
#include "ckpt/gate_export.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/safetensors.h"
#include "train/train_state.h"

// ---------------------------------------------------------------- gate folders

static const char *const gate_part_names[4] = {"attngate_linear_q", "attngate_linear_k",
                                               "attngate_qnorm", "attngate_knorm"};

static void gate_tensor_name(char *buf, size_t n, int layer, int part) {
    snprintf(buf, n, "model.layers.%d.self_attn.attn_gate.%s.weight", layer, gate_part_names[part]);
}

// Shape of part (0 wq, 1 wk, 2 qnorm, 3 knorm) in the release's layout; returns ndim.
static int gate_part_shape(GateShape s, int part, int64_t *shape) {
    if (part == 0) { shape[0] = s.HKV, shape[1] = s.G, shape[2] = s.HD, shape[3] = s.DG; return 4; }
    if (part == 1) { shape[0] = s.HKV, shape[1] = 3 * s.HD, shape[2] = s.DG; return 3; }
    shape[0] = s.DG;
    return 1;
}

// Offset of part inside one layer's flat vector (train/gate.h order).
static int64_t gate_part_offset(GateShape s, int part) {
    int64_t q = (int64_t)s.HKV * s.G * s.HD * s.DG, k = (int64_t)s.HKV * 3 * s.HD * s.DG;
    return part == 0 ? 0 : part == 1 ? q : part == 2 ? q + k : q + k + s.DG;
}

static char *gate_config_text(const GateFolderInfo *info, GateShape s, const char *dir,
                              SeerErr *err) {
    json_error_t jerr;
    json_t *c = json_loads(info->base_config_json, 0, &jerr);
    if (!json_is_object(c)) {
        json_decref(c);
        seer_fail(err, "%s: the base model's config is not a JSON object", dir);
        return NULL;
    }
    json_object_set_new(c, "base_model", json_string(info->base_model));
    json_object_set_new(c, "seerattn_gate_block_size", json_integer(SEER_BLOCK));
    json_object_set_new(c, "seerattn_gate_hidden_size", json_integer(s.DG));
    json_object_set_new(c, "seerattn_k_seq_pooling_type", json_string("Kmaxminavg"));
    json_object_set_new(c, "seerattn_q_head_pooling_type", json_string("Qproj"));
    json_object_set_new(c, "seerattn_use_qk_norm", json_true());
    json_object_set_new(c, "seerattn_use_rope", json_true());
    json_object_set_new(c, "seerattn_loss_slice_ratio", json_real(info->loss_slice_ratio));
    char *text = json_dumps(c, JSON_INDENT(2));
    json_decref(c);
    return text;
}

int gate_folder_write(const char *dir, const float *params, int L, GateShape s,
                      const GateFolderInfo *info, SeerErr *err) {
    if (gate_shape_check(s, err) || L < 1)
        return L < 1 ? seer_fail(err, "%s: no gate layers to write", dir) : -1;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return seer_fail(err, "%s: cannot create folder: %s", dir, strerror(errno));
    char *config = gate_config_text(info, s, dir, err);
    if (!config) return -1;
    int64_t P = gate_param_count(s), total = (int64_t)L * P;
    uint16_t *bf = xmalloc((size_t)total * sizeof(uint16_t));  // [L, P]
    for (int64_t i = 0; i < total; i++) bf[i] = f32_to_bf16(params[i]);
    StTensor *st = xcalloc((size_t)L * 4, sizeof(StTensor));
    PthTensor *pt = xcalloc((size_t)L * 4, sizeof(PthTensor));
    char (*names)[96] = xcalloc((size_t)L * 4, sizeof *names);
    for (int l = 0; l < L; l++)
        for (int part = 0; part < 4; part++) {
            int i = l * 4 + part;
            gate_tensor_name(names[i], sizeof names[i], l, part);
            Tensor t = {.data = bf + l * P + gate_part_offset(s, part), .dtype = SEER_BF16};
            t.ndim = gate_part_shape(s, part, t.shape);
            st[i] = (StTensor){names[i], t};
            pt[i] = (PthTensor){names[i], t};
        }
    size_t n = strlen(dir) + 32;
    char *path = xmalloc(n);
    static const char *const meta[] = {"format", "pt", NULL};
    snprintf(path, n, "%s/" GATE_ST_FILE, dir);
    int rc = st_write(path, st, L * 4, meta, err);
    snprintf(path, n, "%s/" GATE_PTH_FILE, dir);
    if (!rc) rc = pth_write(path, pt, L * 4, err);
    snprintf(path, n, "%s/config.json", dir);
    if (!rc) rc = train_state_write_atomic(path, config, strlen(config), err);
    free(path);
    free(names);
    free(pt);
    free(st);
    free(bf);
    free(config);
    return rc;
}

static int gate_shape_from_layer0(const NamedTensorSet *set, const char *what, GateShape *s,
                                  SeerErr *err) {
    char name[96];
    gate_tensor_name(name, sizeof name, 0, 0);
    const NamedTensor *q = named_tensors_find(set, name);
    gate_tensor_name(name, sizeof name, 0, 1);
    const NamedTensor *k = named_tensors_find(set, name);
    if (!q || !k) return seer_fail(err, "%s: no gate tensors for layer 0 (%s)", what, name);
    if (q->ndim != 4 || k->ndim != 3)
        return seer_fail(err, "%s: layer 0 gate weights have %d and %d dimensions, expected 4 "
                         "([HKV, G, HD, DG]) and 3 ([HKV, 3*HD, DG])", what, q->ndim, k->ndim);
    *s = (GateShape){.HKV = (int)q->shape[0], .G = (int)q->shape[1], .HD = (int)q->shape[2],
                     .DG = (int)q->shape[3]};
    return gate_shape_check(*s, err);
}

int gate_params_from_tensors(const NamedTensorSet *set, const char *what, float **params, int *L,
                             GateShape *s, SeerErr *err) {
    if (gate_shape_from_layer0(set, what, s, err)) return -1;
    char name[96];
    int n = 0;
    for (;; n++) {
        gate_tensor_name(name, sizeof name, n, 0);
        if (!named_tensors_find(set, name)) break;
    }
    int64_t P = gate_param_count(*s);
    float *p = xmalloc((size_t)n * P * sizeof(float));
    for (int l = 0; l < n; l++)
        for (int part = 0; part < 4; part++) {
            gate_tensor_name(name, sizeof name, l, part);
            const NamedTensor *t = named_tensors_find(set, name);
            int64_t shape[4];
            int nd = gate_part_shape(*s, part, shape);
            if (!t || t->ndim != nd || memcmp(t->shape, shape, (size_t)nd * sizeof(int64_t))) {
                free(p);
                return seer_fail(err, "%s: %s is %s, expected the shape of layer 0's gate", what,
                                 name, t ? "of another shape" : "missing");
            }
            int64_t numel = 1;
            for (int d = 0; d < nd; d++) numel *= shape[d];
            memcpy(p + l * P + gate_part_offset(*s, part), t->data, (size_t)numel * sizeof(float));
        }
    *params = p;
    *L = n;
    return 0;
}

// Copies every gate tensor of a safetensors file into a NamedTensorSet.
static int gate_tensors_from_st(const SafetensorsSet *st, NamedTensorSet *out, SeerErr *err) {
    out->t = xcalloc((size_t)st->n_entries + 1, sizeof(NamedTensor));
    for (int i = 0; i < st->n_entries; i++) {
        const StEntry *e = &st->entries[i];
        if (!strstr(e->name, ".attn_gate.")) continue;
        Tensor t;
        if (st_get(st, e->name, &t, err)) return -1;
        NamedTensor *g = &out->t[out->n++];
        int64_t numel = tensor_numel(&t);
        g->name = xstrdup(e->name);
        g->ndim = t.ndim;
        memcpy(g->shape, t.shape, sizeof g->shape);
        g->data = xmalloc((size_t)(numel ? numel : 1) * sizeof(float));
        for (int64_t j = 0; j < numel; j++) g->data[j] = tensor_get(&t, j);
    }
    return 0;
}

int gate_folder_read(const char *dir, float **params, int *L, GateShape *s, SeerErr *err) {
    size_t n = strlen(dir) + 32;
    char *path = xmalloc(n);
    NamedTensorSet set = {0};
    int rc;
    snprintf(path, n, "%s/" GATE_ST_FILE, dir);
    if (access(path, F_OK) == 0) {
        SafetensorsSet *st = NULL;
        rc = st_open(&st, path, err);
        if (!rc) rc = gate_tensors_from_st(st, &set, err);
        st_close(st);
    } else {
        snprintf(path, n, "%s/" GATE_PTH_FILE, dir);
        if (access(path, F_OK) != 0)
            rc = seer_fail(err, "%s: no gates here (neither %s nor %s)", dir, GATE_ST_FILE, GATE_PTH_FILE);
        else
            rc = pth_read(path, &set, err);
    }
    if (!rc) rc = gate_params_from_tensors(&set, path, params, L, s, err);
    named_tensors_free(&set);
    free(path);
    return rc;
}

int gate_load_dir(const char *dir, float **params, int *L, GateShape *s, SeerErr *err) {
    char *path = path_join(dir, TRAIN_STATE_FILE);
    if (access(path, F_OK) != 0) {
        free(path);
        return gate_folder_read(dir, params, L, s, err);
    }
    TrainState st;
    int rc = train_state_load(path, &st, err);
    free(path);
    if (rc) return -1;
    *s = (GateShape){.HKV = st.HKV, .G = st.G, .HD = st.HD, .DG = st.DG};
    *L = st.L;
    *params = st.params;  // taken over: not freed below
    st.params = NULL;
    train_state_free(&st);
    return 0;
}
