// bench_load.c: `seer bench load`: how long loading a checkpoint costs against reading its bytes.
//
// Loading is model_load (maps the shards, parses and checks the headers, binds every tensor) plus
// touching every 4 KiB page of every weight, so the page cache really holds the bytes afterwards.
// The baseline is plain read() of the same files into one reused 16 MiB buffer: the least any
// loader that gets the bytes into memory can cost. Both run cold (page cache dropped, with
// /proc/sys/vm/drop_caches when allowed, else posix_fadvise(DONTNEED) per file, the residency checked
// with mincore) and warm.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench/bench.h"
#include "ckpt/hf_config.h"
#include "ckpt/safetensors.h"
#include "model/model.h"

int bench_load_main(int argc, char **argv);

static void load_usage(FILE *f) {
    fprintf(f,
            "usage: seer bench load --config FILE --dir DIR [--write] [--seed N] [--shard-gb G]\n\n"
            "Times model_load + touching every weight page against read() of the same files, with the\n"
            "page cache cold and warm, and prints GB, seconds and GB/s for each.\n\n"
            "  --config FILE  with --write: a Hugging Face config.json (e.g. bench/configs/qwen3-8b.json)\n"
            "  --dir DIR      the checkpoint folder to time (written first with --write)\n"
            "  --write        write DIR: the config plus random bf16 weights in shards and an index\n"
            "  --seed N       random seed for --write (default 1)\n"
            "  --shard-gb G   shard size for --write in GB (default 5)\n");
}

typedef struct {
    char **paths;  // [n] every file of the checkpoint: shards, index, config.json
    int n;
} FileList;

static void files_add(FileList *fl, const char *path) {
    fl->paths = xrealloc(fl->paths, (size_t)(fl->n + 1) * sizeof *fl->paths);
    fl->paths[fl->n++] = xstrdup(path);
}

static int files_list(FileList *fl, const char *dir, SeerErr *err) {
    SafetensorsSet *s;
    if (st_open_dir(&s, dir, err)) return -1;
    for (int i = 0; i < s->n_files; i++) files_add(fl, s->files[i].path);
    if (strcmp(s->path, s->files[0].path)) files_add(fl, s->path);  // the index
    st_close(s);
    char cfg[4096];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    files_add(fl, cfg);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// page cache
// ---------------------------------------------------------------------------------------------

// Drops the files from the page cache; returns how.
static const char *cache_drop(const FileList *fl) {
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
        int ok = write(fd, "3\n", 2) == 2;
        close(fd);
        if (ok) return "drop_caches";
    }
    for (int i = 0; i < fl->n; i++) {
        int f = open(fl->paths[i], O_RDONLY);
        if (f < 0) continue;
        fdatasync(f);
        posix_fadvise(f, 0, 0, POSIX_FADV_DONTNEED);
        close(f);
    }
    return "fadvise";
}

// Fraction of the files' pages in the page cache (mincore).
static double cache_resident(const FileList *fl) {
    uint64_t pages = 0, in = 0;
    long psz = sysconf(_SC_PAGESIZE);
    for (int i = 0; i < fl->n; i++) {
        int fd = open(fl->paths[i], O_RDONLY);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size == 0) {
            if (fd >= 0) close(fd);
            continue;
        }
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        close(fd);
        if (p == MAP_FAILED) continue;
        size_t np = ((size_t)st.st_size + (size_t)psz - 1) / (size_t)psz;
        unsigned char *vec = xmalloc(np);
        if (mincore(p, (size_t)st.st_size, vec) == 0)
            for (size_t k = 0; k < np; k++) in += vec[k] & 1;
        pages += np;
        free(vec);
        munmap(p, (size_t)st.st_size);
    }
    return pages ? (double)in / (double)pages : 0;
}

// ---------------------------------------------------------------------------------------------
// the two ways to get the bytes
// ---------------------------------------------------------------------------------------------

// read() of every file into one reused buffer; returns bytes read (-1 on error).
static int64_t time_read(const FileList *fl, SeerErr *err) {
    const size_t BUF = 16u << 20;
    char *buf = xmalloc(BUF);
    int64_t total = 0;
    for (int i = 0; i < fl->n && total >= 0; i++) {
        int fd = open(fl->paths[i], O_RDONLY);
        if (fd < 0) {
            total = seer_fail(err, "%s: cannot open: %s", fl->paths[i], strerror(errno));
            break;
        }
        ssize_t r;
        while ((r = read(fd, buf, BUF)) > 0) total += r;
        if (r < 0) total = seer_fail(err, "%s: read failed: %s", fl->paths[i], strerror(errno));
        close(fd);
    }
    free(buf);
    return total;
}

// One byte per 4 KiB page of t, and its last byte.
static uint64_t touch_tensor(const Tensor *t) {
    const volatile uint8_t *p = t->data;
    uint64_t n = (uint64_t)tensor_numel(t) * dtype_size(t->dtype), sum = 0;
    for (uint64_t i = 0; i < n; i += 4096) sum += p[i];
    if (n) sum += p[n - 1];
    return sum;
}

static uint64_t touch_model(const Model *m) {
    uint64_t sum = touch_tensor(&m->w.embed) + touch_tensor(&m->w.final_norm);
    if (!m->cfg.tie_embeddings) sum += touch_tensor(&m->w.lm_head);
    for (int l = 0; l < m->cfg.L; l++) {
        const LayerWeights *w = &m->w.layers[l];
        const Tensor *ts[] = {&w->attn_norm, &w->wq, &w->wk, &w->wv, &w->bq, &w->bk, &w->bv, &w->q_norm,
                              &w->k_norm, &w->wo, &w->mlp_norm, &w->w_gate, &w->w_up, &w->w_down};
        for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) sum += touch_tensor(ts[i]);
    }
    return sum;
}

typedef struct {
    char name[48];
    double gb, seconds, resident;
    double load_s;  // model_load alone (load cases)
} LoadRow;

// model_load (+ st_prefetch) + touch; fills the row. -1 with err when the model does not load.
static int time_load(const char *dir, int prefetch, LoadRow *row, SeerErr *err) {
    Model m;
    double t0 = seer_now();
    if (model_load(&m, dir, err)) return -1;
    double t1 = seer_now();
    if (prefetch) st_prefetch(m.files);
    volatile uint64_t sum = touch_model(&m);
    (void)sum;
    row->seconds = seer_now() - t0;
    row->load_s = t1 - t0;
    row->gb = (double)model_weight_bytes(&m) / 1e9;
    model_free(&m);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// the command
// ---------------------------------------------------------------------------------------------

static int write_checkpoint(const char *config, const char *dir, uint64_t seed, double shard_gb, SeerErr *err) {
    ModelConfig c;
    if (hf_config_load(&c, config, err)) return -1;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return seer_fail(err, "%s: cannot create: %s", dir, strerror(errno));
    FILE *f = fopen(config, "rb");
    if (!f) return seer_fail(err, "%s: cannot open: %s", config, strerror(errno));
    char text[1 << 16];
    size_t n = fread(text, 1, sizeof text, f);
    fclose(f);
    if (n == sizeof text) return seer_fail(err, "%s: larger than %zu bytes; not a config.json", config, sizeof text);
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    if (st_write_bytes(path, text, n, err)) return -1;
    double t0 = seer_now();
    if (model_write_random(&c, dir, SEER_BF16, (uint64_t)(shard_gb * 1e9), seed, err)) return -1;
    fprintf(stderr, "wrote %s (random bf16 weights, %.3g GB shards) in %.1f s\n", dir, shard_gb, seer_now() - t0);
    return 0;
}

static void print_rows(const LoadRow *rows, int n, const char *how) {
    printf("\n%-36s %8s %9s %8s %10s %12s\n", "case", "GB", "seconds", "GB/s", "resident", "model_load");
    for (int i = 0; i < n; i++) {
        const LoadRow *r = &rows[i];
        char load[32] = "";
        if (r->load_s > 0) snprintf(load, sizeof load, "%.1f ms", 1e3 * r->load_s);
        printf("%-36s %8.2f %9.2f %8.2f %9.0f%% %12s\n", r->name, r->gb, r->seconds, r->gb / r->seconds,
               100 * r->resident, load);
    }
    printf("\ncold = page cache dropped with %s before the case; resident = share of the checkpoint's\n"
           "pages in the page cache when the case started; model_load = mapping + header checks + binding.\n",
           how);
}

static int run_cases(const char *dir, SeerErr *err) {
    FileList fl = {0};
    if (files_list(&fl, dir, err)) return -1;
    const char *how = "";
    LoadRow rows[6];
    memset(rows, 0, sizeof rows);
    int rc = 0, k = 0;
    for (int warm = 0; warm < 2 && rc == 0; warm++) {
        for (int c = 0; c < 3 && rc == 0; c++, k++) {
            LoadRow *r = &rows[k];
            if (!warm) how = cache_drop(&fl);
            r->resident = cache_resident(&fl);
            snprintf(r->name, sizeof r->name, "%s %s", c == 0 ? "read()" : c == 1 ? "model_load + touch"
                                                                              : "model_load + prefetch + touch",
                     warm ? "warm" : "cold");
            if (c == 0) {
                double t0 = seer_now();
                int64_t bytes = time_read(&fl, err);
                r->seconds = seer_now() - t0;
                r->gb = (double)bytes / 1e9;
                rc = bytes < 0 ? -1 : 0;
            } else {
                rc = time_load(dir, c == 2, r, err);
            }
            fprintf(stderr, "%s: %.2f s\n", r->name, r->seconds);
        }
    }
    if (rc == 0) print_rows(rows, k, how);
    for (int i = 0; i < fl.n; i++) free(fl.paths[i]);
    free(fl.paths);
    return rc;
}

int bench_load_main(int argc, char **argv) {
    const char *config = NULL, *dir = NULL;
    int do_write = 0;
    uint64_t seed = 1;
    double shard_gb = 5;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            load_usage(stdout);
            return 0;
        } else if (!strcmp(a, "--write")) {
            do_write = 1;
        } else if (v && !strcmp(a, "--config")) {
            config = argv[++i];
        } else if (v && !strcmp(a, "--dir")) {
            dir = argv[++i];
        } else if (v && !strcmp(a, "--seed")) {
            seed = (uint64_t)bench_flag_int(a, argv[++i], 0, 0x7fffffffffffffffL);
        } else if (v && !strcmp(a, "--shard-gb")) {
            shard_gb = atof(argv[++i]);
        } else {
            fprintf(stderr, "seer: bench load: unknown or incomplete option '%s'\n", a);
            load_usage(stderr);
            return 2;
        }
    }
    if (!dir || (do_write && !config) || !(shard_gb > 0)) {
        load_usage(stderr);
        return 2;
    }
    SeerErr err = {{0}};
    if ((do_write && write_checkpoint(config, dir, seed, shard_gb, &err)) || run_cases(dir, &err)) {
        fprintf(stderr, "seer: %s\n", err.msg);
        return 1;
    }
    return 0;
}
