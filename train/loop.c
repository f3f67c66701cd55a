// loop.c: see loop.h. Sections: configuration (defaults, JSON, resume rules), the run's
// resources (model, shard, gates, optimizer), one optimizer step, checkpoints, the run.
#include "train/loop.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "ckpt/hf_config.h"
#include "common/progress.h"
#include "data/shard.h"
#include "data/tokenizer.h"
#include "eval/recall.h"
#include "model/forward_cpu.h"
#include "model/model.h"
#include "train/adamw.h"
#include "train/gate.h"
#include "train/gate_loss.h"
#include "train/run_log.h"
#include "train/schedule.h"
#include "train/train_state.h"
#ifdef SEER_CUDA
#include "common/cuda_check.h"
#include "train/step_cuda.h"
#endif

#define TRAIN_GATE_DG 128  // SPEC.md section 1: gate hidden size

void train_config_default(TrainConfig *c) {
    *c = (TrainConfig){.max_steps = 800, .chunks_per_step = 16, .seed = 0, .lr = 1e-3f,
                       .min_lr = 1e-5f, .warmup = 20, .clip = 1.0f, .gate_loss_scale = 10.0f,
                       .loss_slice_ratio = 0.5f, .ckpt_every = 50, .heldout = -1,
                       .budgets = {256, 512, 1024, 2048, 4096}, .n_budgets = 5};
}

// ---------------------------------------------------------------- configuration as JSON

// The flags that change the math: kept by a resumed run.
typedef struct {
    const char *key;  // JSON key (the flag is --key with '-' for '_')
    unsigned bit;     // TRAIN_GIVEN_*
    char type;        // 'i' int, 'f' float, 'u' uint64
    size_t off;
} MathFlag;

static const MathFlag math_flags[] = {
    {"max_steps", TRAIN_GIVEN_MAX_STEPS, 'i', offsetof(TrainConfig, max_steps)},
    {"chunks_per_step", TRAIN_GIVEN_CHUNKS, 'i', offsetof(TrainConfig, chunks_per_step)},
    {"seed", TRAIN_GIVEN_SEED, 'u', offsetof(TrainConfig, seed)},
    {"lr", TRAIN_GIVEN_LR, 'f', offsetof(TrainConfig, lr)},
    {"min_lr", TRAIN_GIVEN_MIN_LR, 'f', offsetof(TrainConfig, min_lr)},
    {"warmup", TRAIN_GIVEN_WARMUP, 'i', offsetof(TrainConfig, warmup)},
    {"clip", TRAIN_GIVEN_CLIP, 'f', offsetof(TrainConfig, clip)},
    {"gate_loss_scale", TRAIN_GIVEN_SCALE, 'f', offsetof(TrainConfig, gate_loss_scale)},
    {"loss_slice_ratio", TRAIN_GIVEN_SLICE, 'f', offsetof(TrainConfig, loss_slice_ratio)},
    {"heldout", TRAIN_GIVEN_HELDOUT, 'i', offsetof(TrainConfig, heldout)},
};
#define N_MATH_FLAGS (int)(sizeof math_flags / sizeof math_flags[0])

static json_t *flag_json(const TrainConfig *c, const MathFlag *f) {
    const char *p = (const char *)c + f->off;
    if (f->type == 'i') return json_integer(*(const int *)p);
    if (f->type == 'u') return json_integer((json_int_t) * (const uint64_t *)p);
    return json_real(*(const float *)p);
}

static json_t *flags_json(const TrainConfig *c) {
    json_t *j = json_object();
    for (int i = 0; i < N_MATH_FLAGS; i++) json_object_set_new(j, math_flags[i].key, flag_json(c, &math_flags[i]));
    json_t *b = json_array();
    for (int i = 0; i < c->n_budgets; i++) json_array_append_new(b, json_integer(c->budgets[i]));
    json_object_set_new(j, "budgets", b);
    json_object_set_new(j, "ckpt_every", json_integer(c->ckpt_every));
    json_object_set_new(j, "device", json_string(c->device == TRAIN_DEVICE_CUDA ? "cuda" : "cpu"));
    json_object_set_new(j, "eval_recall", json_boolean(c->eval_recall));
    json_object_set_new(j, "threads", json_integer(omp_get_max_threads()));
    json_object_set_new(j, "model", json_string(c->model_dir));
    json_object_set_new(j, "data", json_string(c->data_path));
    return j;
}

// Takes the math flags of a checkpoint's config; a flag given now with another value fails.
// The model and data paths are taken from it when not given (*model, *data: malloc'd copies).
static int flags_from_checkpoint(TrainConfig *c, const char *config_text, const char *path,
                                 char **model, char **data, SeerErr *err) {
    json_error_t jerr;
    json_t *root = json_loads(config_text, 0, &jerr), *flags = json_object_get(root, "flags");
    if (!json_is_object(flags)) {
        json_decref(root);
        return seer_fail(err, "%s: checkpoint config has no \"flags\" object", path);
    }
    const char *sm = json_string_value(json_object_get(flags, "model"));
    const char *sd = json_string_value(json_object_get(flags, "data"));
    if (!c->model_dir && sm) c->model_dir = *model = xstrdup(sm);
    if (!c->data_path && sd) c->data_path = *data = xstrdup(sd);
    for (int i = 0; i < N_MATH_FLAGS; i++) {
        const MathFlag *f = &math_flags[i];
        json_t *v = json_object_get(flags, f->key);
        char *p = (char *)c + f->off;
        if (!json_is_number(v)) {
            json_decref(root);
            return seer_fail(err, "%s: checkpoint config lacks flag %s", path, f->key);
        }
        double stored = json_number_value(v), now = f->type == 'i' ? *(int *)p : f->type == 'u'
                                                       ? (double)*(uint64_t *)p : *(float *)p;
        int differs = f->type == 'f' ? (float)stored != (float)now
                    : f->type == 'u' ? (uint64_t)json_integer_value(v) != *(uint64_t *)p
                                     : stored != now;
        if ((c->given & f->bit) && differs) {
            json_decref(root);
            return seer_fail(err, "--%s %g differs from the checkpoint's %g: a resumed run keeps "
                             "the flags it started with (%s)", f->key, now, stored, path);
        }
        if (f->type == 'i') *(int *)p = (int)json_integer_value(v);
        else if (f->type == 'u') *(uint64_t *)p = (uint64_t)json_integer_value(v);
        else *(float *)p = (float)stored;
    }
    json_decref(root);
    return 0;
}

static int config_check(const TrainConfig *c, SeerErr *err) {
    if (!c->model_dir || !c->data_path || !c->out_dir)
        return seer_fail(err, "--model, --data and --out are required");
    if (c->max_steps < 1 || c->chunks_per_step < 1 || c->warmup < 0 || c->ckpt_every < 1)
        return seer_fail(err, "--max-steps, --chunks-per-step, --ckpt-every must be >= 1 and "
                         "--warmup >= 0");
    if (!(c->lr > 0) || !(c->min_lr >= 0) || c->min_lr > c->lr || !isfinite(c->lr))
        return seer_fail(err, "--lr %g / --min-lr %g: need 0 <= min-lr <= lr, lr > 0", c->lr, c->min_lr);
    if (!(c->clip >= 0) || !isfinite(c->clip)) return seer_fail(err, "--clip %g must be >= 0", c->clip);
    GateLossOpts o = {.slice_ratio = c->loss_slice_ratio, .scale = c->gate_loss_scale};
    return gate_loss_opts_check(&o, err);
}

// ---------------------------------------------------------------- the run's resources

typedef struct {
    TrainConfig cfg;
    Model model;
    int model_loaded;
    GateShape s;
    int L;
    int64_t P, n;          // parameters per layer, in all
    float *params, *grads; // [L, P]
    AdamW opt;
    ShardReader *sr;
    ShardCursor cur;
    TrainState ident;      // identity fields only (what a checkpoint must match)
    json_t *config;        // the run's config.json
    RunLog log;
    int log_open;
    double *layer_loss;    // [L] of the current step
    int64_t step, tokens;
    double elapsed0, t0;   // elapsed before this process; its start time
    GateLossOpts lopts;
    char *ckpt_path;
    char *stored_model, *stored_data;  // paths taken from the checkpoint when not given
    Progress prog;
#ifdef SEER_CUDA
    StepCuda *sc;  // the CUDA path (--device cuda), else NULL
#endif
} TrainRun;

static int cuda_fetch_state(TrainRun *r, SeerErr *err);  // the CUDA path, below

static uLong crc_prefix(uLong crc, const Tensor *t) {
    size_t n = (size_t)tensor_numel(t) * dtype_size(t->dtype);
    return crc32_z(crc, t->data, n < (1u << 20) ? n : (1u << 20));
}

// "qwen3 D.. L.. H.. HKV.. HD.. F.. V.. theta.. crc32 ..": shape plus a sample of the weights.
static void model_signature(char *out, size_t n, const Model *m) {
    const ModelConfig *c = &m->cfg;
    uLong crc = crc32_z(0L, Z_NULL, 0);
    crc = crc_prefix(crc, &m->w.embed);
    crc = crc_prefix(crc, &m->w.layers[0].wq);
    crc = crc_prefix(crc, &m->w.layers[c->L - 1].w_down);
    snprintf(out, n, "%s D%d L%d H%d HKV%d HD%d F%d V%d theta%g weights-crc32 %08lx",
             hf_arch_name(c->arch), c->D, c->L, c->H, c->HKV, c->HD, c->F, c->V, c->rope_theta,
             (unsigned long)crc);
}

static int device_check(const TrainConfig *c, SeerErr *err) {
    if (c->device != TRAIN_DEVICE_CUDA) return 0;
#ifndef SEER_CUDA
    return seer_fail(err, "--device cuda: this seer was built without CUDA (no nvcc when it was "
                     "built); rebuild with the CUDA toolkit or use --device cpu");
#else
    struct cudaDeviceProp prop;
    return cuda_current_device(&prop, "--device cuda", err);
#endif
}

// Opens the shard, checking its tokenizer against the model folder's when it has one.
static int open_data(TrainRun *r, SeerErr *err) {
    char *tok_path = path_join(r->cfg.model_dir, "tokenizer.json");
    const char *hash = NULL;
    Tokenizer *tok = NULL;
    if (access(tok_path, F_OK) == 0) {
        tok = tokenizer_load(tok_path, err);
        if (!tok) {
            free(tok_path);
            return -1;
        }
        hash = tokenizer_hash(tok);
    }
    free(tok_path);
    r->sr = shard_open(r->cfg.data_path, hash, err);
    tokenizer_free(tok);
    if (!r->sr) return -1;
    int64_t nc = shard_n_chunks(r->sr);
    if (r->cfg.heldout < 0) r->cfg.heldout = r->cfg.eval_recall ? (nc > 4 ? 2 : nc > 1 ? 1 : 0) : 0;
    if (r->cfg.eval_recall && r->cfg.heldout < 1)
        return seer_fail(err, "--eval-recall needs held-out chunks (--heldout >= 1)");
    return shard_split_heldout(r->sr, r->cfg.heldout, err);
}

static json_t *run_config_json(TrainRun *r, SeerErr *err) {
    char *path = path_join(r->cfg.model_dir, "config.json");
    json_error_t jerr;
    json_t *mc = json_load_file(path, 0, &jerr);
    if (!mc) {
        seer_fail(err, "%s:%d: %s", path, jerr.line, jerr.text);
        free(path);
        return NULL;
    }
    free(path);
    return json_pack("{s:o, s:s, s:o, s:s, s:{s:s, s:I, s:I, s:s}}", "flags", flags_json(&r->cfg),
                     "base_model", r->cfg.model_dir, "model_config", mc, "model_sig",
                     r->ident.model_sig, "data", "path", r->cfg.data_path, "chunks",
                     (json_int_t)shard_n_chunks(r->sr), "tokens", (json_int_t)shard_n_tokens(r->sr),
                     "tokenizer_hash", shard_tokenizer_hash(r->sr));
}

static int setup_gates(TrainRun *r, SeerErr *err) {
    const ModelConfig *mc = &r->model.cfg;
    r->s = (GateShape){.HKV = mc->HKV, .G = mc->H / mc->HKV, .HD = mc->HD, .DG = TRAIN_GATE_DG};
    if (gate_shape_check(r->s, err)) return -1;
    r->L = mc->L;
    r->P = gate_param_count(r->s);
    r->n = r->P * r->L;
    r->params = xmalloc((size_t)r->n * sizeof(float));
    r->grads = xcalloc((size_t)r->n, sizeof(float));
    r->layer_loss = xcalloc((size_t)r->L, sizeof(double));
    for (int l = 0; l < r->L; l++) gate_params_init(r->params + l * r->P, r->s, r->cfg.seed, l);
    adamw_init(&r->opt, r->n, adamw_default_hyper());
    TrainState *id = &r->ident;
    model_signature(id->model_sig, sizeof id->model_sig, &r->model);
    id->L = r->L, id->HKV = r->s.HKV, id->G = r->s.G, id->HD = r->s.HD, id->DG = r->s.DG;
    id->n_params = r->n;
    r->lopts = (GateLossOpts){.slice_ratio = r->cfg.loss_slice_ratio, .scale = r->cfg.gate_loss_scale};
    return 0;
}

// Restores weights, moments, progress and cursor; checks the model and the data.
static int restore_checkpoint(TrainRun *r, TrainState *st, SeerErr *err) {
    if (train_state_check(st, &r->ident, r->ckpt_path, err)) return -1;
    if (st->cursor_len != sizeof(ShardCursor))
        return seer_fail(err, "%s: data cursor of %zu bytes, expected %zu", r->ckpt_path,
                         st->cursor_len, sizeof(ShardCursor));
    json_error_t jerr;
    json_t *cj = json_loads(st->config_json, 0, &jerr), *data = json_object_get(cj, "data");
    int64_t nc = json_integer_value(json_object_get(data, "chunks"));
    int64_t nt = json_integer_value(json_object_get(data, "tokens"));
    json_decref(cj);
    if (nc != shard_n_chunks(r->sr) || nt != shard_n_tokens(r->sr))
        return seer_fail(err, "%s has %" PRId64 " chunks / %" PRId64 " tokens; the checkpoint %s "
                         "was trained on %" PRId64 " / %" PRId64, r->cfg.data_path,
                         shard_n_chunks(r->sr), shard_n_tokens(r->sr), r->ckpt_path, nc, nt);
    memcpy(r->params, st->params, (size_t)r->n * sizeof(float));
    memcpy(r->opt.m, st->m, (size_t)r->n * sizeof(float));
    memcpy(r->opt.v, st->v, (size_t)r->n * sizeof(float));
    memcpy(&r->cur, st->cursor, sizeof r->cur);
    r->opt.t = st->adam_t;
    r->step = st->step;
    r->tokens = st->tokens;
    r->elapsed0 = st->elapsed_s;
    return 0;
}

static int save_checkpoint(TrainRun *r, SeerErr *err) {
    if (cuda_fetch_state(r, err)) return -1;
    TrainState st = r->ident;
    st.step = r->step;
    st.tokens = r->tokens;
    st.adam_t = r->opt.t;
    st.elapsed_s = r->elapsed0 + seer_now() - r->t0;
    st.seed = r->cfg.seed;
    st.cursor = (uint8_t *)&r->cur;
    st.cursor_len = sizeof r->cur;
    st.config_json = json_dumps(r->config, JSON_COMPACT | JSON_SORT_KEYS);
    st.params = r->params, st.m = r->opt.m, st.v = r->opt.v;
    int rc = train_state_save(r->ckpt_path, &st, err);
    free(st.config_json);
    if (!rc) rc = run_log_write_svg(&r->log, err);
    return rc;
}

static void run_free(TrainRun *r) {
#ifdef SEER_CUDA
    step_cuda_free(r->sc);
#endif
    if (r->log_open) run_log_close(&r->log);
    json_decref(r->config);
    shard_close(r->sr);
    if (r->model_loaded) model_free(&r->model);
    adamw_free(&r->opt);
    free(r->params);
    free(r->grads);
    free(r->layer_loss);
    free(r->ckpt_path);
    free(r->stored_model);
    free(r->stored_data);
}

// ---------------------------------------------------------------- the CUDA path

#ifdef SEER_CUDA
// The whole step on the GPU (train/step_cuda.h); the host keeps copies of params and moments
// for checkpoints and recall, fetched when needed.
static int cuda_setup(TrainRun *r, SeerErr *err) {
    StepCudaOpts o = step_cuda_default_opts(shard_max_len(r->sr), 64);
    o.DG = r->s.DG;
    o.loss = r->lopts;
    o.hp = r->opt.hp;
    if (step_cuda_create(&r->sc, &r->model.cfg, &o, stderr, err) ||
        step_cuda_upload_model(r->sc, &r->model, err))
        return -1;
    return step_cuda_set_state(r->sc, r->params, r->opt.m, r->opt.v, r->opt.t, err);
}

// Runs the step's chunks on the GPU; fills layer_loss, *norm and the new state.
static int cuda_step(TrainRun *r, float lr, double *norm, int64_t *tokens, SeerErr *err) {
    if (step_cuda_begin(r->sc, err)) return -1;
    for (int c = 0; c < r->cfg.chunks_per_step; c++) {
        ShardChunk ch;
        if (shard_next(r->sr, &r->cur, &ch, err) ||
            step_cuda_chunk(r->sc, ch.ids, ch.n_tokens, ch.doc_lens, ch.n_docs, NULL, err))
            return -1;
        *tokens += ch.n_tokens;
    }
    if (step_cuda_finish(r->sc, lr, r->cfg.clip, r->layer_loss, norm, err)) return -1;
    r->opt.t++;
    return 0;
}

// Device -> host copies of params and moments (before a checkpoint or recall).
static int cuda_fetch_state(TrainRun *r, SeerErr *err) {
    return r->sc ? step_cuda_get_state(r->sc, r->params, r->opt.m, r->opt.v, &r->opt.t, err) : 0;
}

static double cuda_used_mb(void) {
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
    return (double)(total_b - free_b) / (1024.0 * 1024.0);
}
#else
static int cuda_fetch_state(TrainRun *r, SeerErr *err) { return 0; }
#endif

// ---------------------------------------------------------------- one optimizer step

typedef struct {
    TrainRun *r;
} HookCtx;

// Per layer of the frozen forward: this layer's gate loss, gradient added into r->grads.
static int train_layer_hook(void *vctx, const ForwardLayerView *v, SeerErr *err) {
    TrainRun *r = ((HookCtx *)vctx)->r;
    GateChunk c = {.q = v->q_nope, .k = v->k_nope, .doc_lens = v->doc_lens, .n_docs = v->n_docs,
                   .T = v->T, .NB = v->NB, .rope_theta = r->model.cfg.rope_theta};
    GateLossStats st;
    int64_t off = (int64_t)v->layer * r->P;
    if (gate_loss_cpu(&st, r->grads + off, r->params + off, r->s, &c, v->target, &r->lopts, err))
        return -1;
    r->layer_loss[v->layer] += st.loss;
    return 0;
}

static double peak_mem_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0;
}

// Advances the counters and appends the step's metrics.
static int train_step_log(TrainRun *r, double loss, float lr, double norm, int64_t step_tokens,
                          double t_step, SeerErr *err) {
    r->step++;
    r->tokens += step_tokens;
    double dt = seer_now() - t_step;
    StepMetrics m = {.step = (int)r->step, .loss = loss, .layer_loss = r->layer_loss, .lr = lr,
                     .grad_norm = norm, .tokens = r->tokens,
                     .tokens_per_s = dt > 0 ? step_tokens / dt : 0,
                     .elapsed_s = r->elapsed0 + seer_now() - r->t0, .peak_mem_mb = peak_mem_mb()};
#ifdef SEER_CUDA
    if (r->sc) m.peak_mem_mb += cuda_used_mb();  // host peak RSS + device memory in use
#endif
    return run_log_append(&r->log, &m, err);
}

// Accumulates chunks_per_step chunks, then clips, steps AdamW and logs. Returns -1 on error.
static int train_step(TrainRun *r, SeerErr *err) {
    double t_step = seer_now();
    int C = r->cfg.chunks_per_step;
    int64_t step_tokens = 0;
    LrSchedule sch = {r->cfg.lr, r->cfg.min_lr, r->cfg.warmup, r->cfg.max_steps};
    float lr = schedule_lr(&sch, (int)r->step);
    double norm = 0, loss = 0;
#ifdef SEER_CUDA
    if (r->sc) {
        if (cuda_step(r, lr, &norm, &step_tokens, err)) return -1;
        for (int l = 0; l < r->L; l++) loss += r->layer_loss[l];
        return train_step_log(r, loss, lr, norm, step_tokens, t_step, err);
    }
#endif
    memset(r->grads, 0, (size_t)r->n * sizeof(float));
    memset(r->layer_loss, 0, (size_t)r->L * sizeof(double));
    HookCtx hc = {r};
    ForwardHook hook = {.fn = train_layer_hook, .ctx = &hc, .want_target = 1};
    for (int c = 0; c < C; c++) {
        ShardChunk ch;
        if (shard_next(r->sr, &r->cur, &ch, err) ||
            forward_cpu(&r->model, ch.ids, ch.n_tokens, ch.doc_lens, ch.n_docs, NULL,
                        FORWARD_LOGITS_ALL, &hook, err))
            return -1;
        step_tokens += ch.n_tokens;
    }
    float inv = 1.0f / (float)C;  // mean over the step's chunks
    for (int64_t i = 0; i < r->n; i++) r->grads[i] *= inv;
    for (int l = 0; l < r->L; l++) loss += (r->layer_loss[l] /= C);
    norm = adamw_clip_grad(r->grads, r->n, r->cfg.clip);
    if (!isfinite(norm) || !isfinite(loss))
        return seer_fail(err, "step %" PRId64 ": non-finite loss %g / gradient norm %g; stopped "
                         "(the run folder keeps its last checkpoint)", r->step + 1, loss, norm);
    adamw_step(&r->opt, r->params, r->grads, lr);
    return train_step_log(r, loss, lr, norm, step_tokens, t_step, err);
}

// ---------------------------------------------------------------- recall

static int run_recall(TrainRun *r, const char *tag, RecallReport *rep, SeerErr *err) {
    int64_t nc = shard_n_chunks(r->sr), k = r->cfg.heldout;
    int64_t *ids = xmalloc((size_t)k * sizeof(int64_t));
    for (int64_t i = 0; i < k; i++) ids[i] = nc - k + i;
    fprintf(stderr, "recall %s training on %" PRId64 " held-out chunk(s)...\n", tag, k);
    int rc = recall_eval(rep, &r->model, r->params, r->s, r->sr, ids, (int)k, r->cfg.budgets,
                         r->cfg.n_budgets, err);
    free(ids);
    if (!rc) rc = recall_write(rep, r->cfg.out_dir, tag, err);
    return rc;
}

// ---------------------------------------------------------------- the run

static int open_run(TrainRun *r, SeerErr *err) {
    if (!r->cfg.out_dir) return seer_fail(err, "--out RUN_DIR is required");
    if (mkdir(r->cfg.out_dir, 0755) != 0 && errno != EEXIST)
        return seer_fail(err, "%s: cannot create the run folder: %s", r->cfg.out_dir, strerror(errno));
    r->ckpt_path = path_join(r->cfg.out_dir, TRAIN_STATE_FILE);
    int have = access(r->ckpt_path, F_OK) == 0;
    if (have && !r->cfg.resume)
        return seer_fail(err, "%s already holds a checkpoint: pass --resume to continue it, or "
                         "choose another --out", r->cfg.out_dir);
    if (device_check(&r->cfg, err)) return -1;
    TrainState st = {0};
    if (have && train_state_load(r->ckpt_path, &st, err)) return -1;
    int rc = have ? flags_from_checkpoint(&r->cfg, st.config_json, r->ckpt_path,
                                                   &r->stored_model, &r->stored_data, err) : 0;
    if (!rc) rc = config_check(&r->cfg, err);
    if (!rc && r->cfg.threads > 0) omp_set_num_threads(r->cfg.threads);
    if (!rc) rc = model_load(&r->model, r->cfg.model_dir, err);
    r->model_loaded = !rc;
    if (!rc) rc = setup_gates(r, err);
    if (!rc) rc = open_data(r, err);
    if (!rc && have) rc = restore_checkpoint(r, &st, err);
    if (!rc && !have) r->cur = (ShardCursor){.seed = r->cfg.seed};
    train_state_free(&st);
#ifdef SEER_CUDA
    if (!rc && r->cfg.device == TRAIN_DEVICE_CUDA) rc = cuda_setup(r, err);
#endif
    if (!rc && have) fprintf(stderr, "resuming %s at step %" PRId64 "\n", r->ckpt_path, r->step);
    else if (!rc && r->cfg.resume) fprintf(stderr, "no checkpoint in %s yet: starting at step 0\n", r->cfg.out_dir);
    if (!rc && !(r->config = run_config_json(r, err))) rc = -1;
    if (rc) return -1;
    char *cpath = path_join(r->cfg.out_dir, "config.json");
    char *text = json_dumps(r->config, JSON_INDENT(2) | JSON_SORT_KEYS);
    rc = train_state_write_atomic(cpath, text, strlen(text), err);
    free(text);
    free(cpath);
    if (!rc) rc = run_log_open(&r->log, r->cfg.out_dir, r->L, have ? (int)r->step : -1, err);
    r->log_open = !rc;
    return rc;
}

static void print_step_line(TrainRun *r) {
    if (r->prog.tty) fprintf(stderr, "\r\033[K");
    int n = r->log.n;
    printf("step %" PRId64 "/%d  loss %.4f  lr %.2e  tokens %" PRId64 "  elapsed %.0fs\n", r->step,
           r->cfg.max_steps, n ? r->log.loss[n - 1] : NAN,
           (double)schedule_lr(&(LrSchedule){r->cfg.lr, r->cfg.min_lr, r->cfg.warmup, r->cfg.max_steps},
                               (int)r->step - 1),
           r->tokens, r->elapsed0 + seer_now() - r->t0);
    fflush(stdout);
}

static int train_steps(TrainRun *r, SeerErr *err) {
    int64_t first = r->step;
    progress_start(&r->prog, "train", r->cfg.max_steps - first, "steps");
    if (r->cfg.quiet) r->prog.tty = 0, r->prog.t_last = 1e300;
    while (r->step < r->cfg.max_steps) {
        if (train_step(r, err)) return -1;
        int last = r->step == r->cfg.max_steps;
        if (r->step % r->cfg.ckpt_every == 0 || last) {
            if (save_checkpoint(r, err)) return -1;
            if (!r->cfg.quiet) print_step_line(r);
        }
        if (!r->cfg.quiet) progress_update(&r->prog, r->step - first);
    }
    if (!r->cfg.quiet && r->step > first) progress_finish(&r->prog);
    return 0;
}

int train_run(const TrainConfig *c, SeerErr *err) {
    TrainRun r = {.cfg = *c, .t0 = seer_now()};
    int rc = open_run(&r, err);
    RecallReport before = {0}, after = {0};
    int have_before = 0;
    if (!rc && r.cfg.eval_recall && r.step == 0) {
        rc = run_recall(&r, "before", &before, err);
        have_before = !rc;
        if (!rc) recall_print(&before, stdout, "recall before training");
    }
    if (!rc) rc = train_steps(&r, err);
    if (!rc && r.cfg.eval_recall) {
        rc = cuda_fetch_state(&r, err) || run_recall(&r, "after", &after, err) ? -1 : 0;
        if (!rc) recall_print(&after, stdout, "recall after training");
        if (!rc && have_before) recall_print_compare(&before, &after, stdout);
        if (!rc) recall_free(&after);
    }
    if (have_before) recall_free(&before);
    if (!rc)
        printf("run folder %s: %" PRId64 " steps, %" PRId64 " tokens, checkpoint %s\n",
               r.cfg.out_dir, r.step, r.tokens, r.ckpt_path);
    run_free(&r);
    return rc;
}
