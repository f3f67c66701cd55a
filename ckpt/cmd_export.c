// cmd_export.c: `seer export`: a training run's checkpoint -> a gate folder (SPEC.md section 7).
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt/gate_export.h"
#include "common/commands.h"
#include "train/train_state.h"

static void export_usage(FILE *f) {
    fprintf(f,
            "usage: seer export --run RUN_DIR --out GATES_DIR [--base-model NAME]\n\n"
            "Writes the gates of a training run's last checkpoint as a SeerAttention gate folder:\n"
            "config.json (the base model's config + base_model + seerattn_* keys), model.safetensors\n"
            "and attn_gate_weights.pth (what the release loads), bf16, the release's tensor names.\n\n"
            "  --run RUN_DIR       a `seer train` run folder (its checkpoint.seer)\n"
            "  --out GATES_DIR     the folder to write (created; files are replaced atomically)\n"
            "  --base-model NAME   base_model to record, e.g. a hub id (default: the run's --model)\n");
}

// Writes the gate folder from a loaded checkpoint.
static int export_state(const TrainState *st, const char *run, const char *out,
                        const char *base_model, SeerErr *err) {
    json_error_t jerr;
    json_t *c = json_loads(st->config_json, 0, &jerr);
    json_t *mc = json_object_get(c, "model_config");
    json_t *ratio = json_object_get(json_object_get(c, "flags"), "loss_slice_ratio");
    const char *bm = base_model ? base_model : json_string_value(json_object_get(c, "base_model"));
    if (!json_is_object(mc) || !json_is_number(ratio) || !bm) {
        json_decref(c);
        return seer_fail(err, "%s/%s: the run's config lacks model_config, base_model or "
                         "loss_slice_ratio", run, TRAIN_STATE_FILE);
    }
    char *mc_text = json_dumps(mc, JSON_COMPACT);
    GateFolderInfo info = {.base_config_json = mc_text, .base_model = bm,
                           .loss_slice_ratio = (float)json_number_value(ratio)};
    GateShape s = {.HKV = st->HKV, .G = st->G, .HD = st->HD, .DG = st->DG};
    int rc = gate_folder_write(out, st->params, st->L, s, &info, err);
    free(mc_text);
    json_decref(c);
    return rc;
}

int cmd_export(int argc, char **argv) {
    const char *run = NULL, *out = NULL, *base_model = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            export_usage(stdout);
            return 0;
        }
        if (!v || (strcmp(a, "--run") && strcmp(a, "--out") && strcmp(a, "--base-model"))) {
            fprintf(stderr, "seer: %s: unknown flag or missing value (see seer export --help)\n", a);
            return 2;
        }
        *(!strcmp(a, "--run") ? &run : !strcmp(a, "--out") ? &out : &base_model) = v;
        i++;
    }
    if (!run || !out) {
        fprintf(stderr, "seer: export needs --run RUN_DIR and --out GATES_DIR (see --help)\n");
        return 2;
    }
    char *path = path_join(run, TRAIN_STATE_FILE);
    TrainState st;
    SeerErr err;
    int rc = train_state_load(path, &st, &err);
    if (!rc) rc = export_state(&st, run, out, base_model, &err);
    if (!rc)
        printf("exported %d layers of gates (step %lld) from %s to %s/{config.json,%s,%s}\n", st.L,
               (long long)st.step, path, out, GATE_ST_FILE, GATE_PTH_FILE);
    else
        fprintf(stderr, "seer: %s\n", err.msg);
    train_state_free(&st);
    free(path);
    return rc ? 1 : 0;
}
