// test_ckpt.c: safetensors reader/writer, HF config parsing, model_load, and every kind of bad input
// (each must give -1 and one line naming the file and the problem, never a crash).
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ckpt/hf_config.h"
#include "ckpt/safetensors.h"
#include "model/model.h"
#include "tests/test.h"

// rc must be -1 and the message one line holding every given substring. SEER_TEST_SHOW_ERRORS=1 in
// the environment prints every message, to review how they read.
#define CHECK_ERR(rc, err, ...)                                                           \
    do {                                                                                  \
        const char *subs_[] = {__VA_ARGS__, NULL};                                        \
        int rc_ = (rc), bad_ = rc_ != -1 || strchr((err).msg, '\n') != NULL;              \
        for (int i_ = 0; subs_[i_]; i_++) bad_ |= strstr((err).msg, subs_[i_]) == NULL;   \
        CHECK(!bad_);                                                                     \
        if (bad_ || getenv("SEER_TEST_SHOW_ERRORS"))                                      \
            fprintf(stderr, "    rc %d, message: %s\n", rc_, (err).msg);                  \
    } while (0)

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) seer_die("cannot write %s", path);
    fwrite(data, 1, n, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) { write_file(path, text, strlen(text)); }

// A safetensors file: header length, `header` as given, then data_bytes bytes of 0x5a.
static void write_st_raw(const char *path, uint64_t header_len, const char *header, size_t data_bytes) {
    size_t hn = strlen(header), n = 8 + hn + data_bytes;
    uint8_t *buf = xmalloc(n);
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(header_len >> (8 * i));
    memcpy(buf + 8, header, hn);
    memset(buf + 8 + hn, 0x5a, data_bytes);
    write_file(path, buf, n);
    free(buf);
}

static void write_st(const char *name, const char *header, size_t data_bytes) {
    write_st_raw(test_tmp_path(name), strlen(header), header, data_bytes);
}

static char *make_dir(const char *name) {
    char *p = test_tmp_path(name);
    mkdir(p, 0755);
    return p;
}

// ---------------------------------------------------------------------------------------------
// safetensors: bad files
// ---------------------------------------------------------------------------------------------

// st_open of tmp file `name` must fail with a message naming it and holding every substring.
#define EXPECT_OPEN_FAIL(name, ...)                                \
    do {                                                           \
        SafetensorsSet *s_ = (SafetensorsSet *)1;                  \
        SeerErr e_ = {{0}};                                        \
        CHECK_ERR(st_open(&s_, test_tmp_path(name), &e_), e_, name, __VA_ARGS__); \
        CHECK(s_ == NULL);                                         \
    } while (0)

static void test_st_truncated(void) {
    write_file(test_tmp_path("empty.safetensors"), "", 0);
    EXPECT_OPEN_FAIL("empty.safetensors", "truncated");
    write_file(test_tmp_path("five.safetensors"), "\x10\0\0\0\0", 5);
    EXPECT_OPEN_FAIL("five.safetensors", "truncated");
    write_st_raw(test_tmp_path("past.safetensors"), 1000, "{}", 4);
    EXPECT_OPEN_FAIL("past.safetensors", "runs past the end");
    write_st_raw(test_tmp_path("huge.safetensors"), UINT64_MAX, "{}", 4);
    EXPECT_OPEN_FAIL("huge.safetensors", "runs past the end");
    // A real file cut short: the last tensor's range now runs past the end.
    float x[6] = {1, 2, 3, 4, 5, 6};
    StTensor t = {"x", {x, SEER_F32, 2, {2, 3}}};
    SeerErr err = {{0}};
    CHECK(st_write(test_tmp_path("cut.safetensors"), &t, 1, NULL, &err) == 0);
    FILE *f = fopen(test_tmp_path("cut.safetensors"), "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fclose(f);
    CHECK(truncate(test_tmp_path("cut.safetensors"), n - 3) == 0);
    EXPECT_OPEN_FAIL("cut.safetensors", "out of range");
}

static void test_st_bad_header(void) {
    write_st("json.safetensors", "{\"x\": {\"dtype\": \"F32\",", 0);
    EXPECT_OPEN_FAIL("json.safetensors", "bad JSON header");
    write_st("array.safetensors", "[1, 2]", 0);
    EXPECT_OPEN_FAIL("array.safetensors", "not a JSON object");
    write_st("nodtype.safetensors", "{\"x\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4);
    EXPECT_OPEN_FAIL("nodtype.safetensors", "'x'", "dtype");
    write_st("negshape.safetensors", "{\"x\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}", 4);
    EXPECT_OPEN_FAIL("negshape.safetensors", "'x'", "shape[0]");
    write_st("offs.safetensors", "{\"x\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4]}}", 4);
    EXPECT_OPEN_FAIL("offs.safetensors", "'x'", "data_offsets");
    write_st("meta.safetensors", "{\"__metadata__\": {\"a\": 1}}", 0);
    EXPECT_OPEN_FAIL("meta.safetensors", "__metadata__");
    write_st("dims.safetensors",
             "{\"x\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 4]}}", 4);
    EXPECT_OPEN_FAIL("dims.safetensors", "'x'", "9 dimensions");
}

static void test_st_bad_ranges(void) {
    write_st("overlap.safetensors",
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12);
    EXPECT_OPEN_FAIL("overlap.safetensors", "'a' and 'b' overlap");
    write_st("range.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}", 8);
    EXPECT_OPEN_FAIL("range.safetensors", "'a'", "out of range");
    write_st("backward.safetensors", "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", 8);
    EXPECT_OPEN_FAIL("backward.safetensors", "'a'", "end before");
    write_st("size.safetensors", "{\"a\": {\"dtype\": \"BF16\", \"shape\": [3, 2], \"data_offsets\": [0, 8]}}", 8);
    EXPECT_OPEN_FAIL("size.safetensors", "'a'", "12 bytes", "hold 8");
    write_st("dup.safetensors",
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8);
    EXPECT_OPEN_FAIL("dup.safetensors", "duplicate");
    // Zero-size tensors may share an offset; holes between tensors are harmless.
    write_st("zero.safetensors",
             "{\"a\": {\"dtype\": \"F32\", \"shape\": [0, 3], \"data_offsets\": [0, 0]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"c\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [8, 12]}}", 12);
    SafetensorsSet *s;
    SeerErr err = {{0}};
    CHECK(st_open(&s, test_tmp_path("zero.safetensors"), &err) == 0);
    if (s) CHECK(s->n_entries == 3);
    st_close(s);
}

static void test_st_dtypes(void) {
    write_st("dt.safetensors",
             "{\"i\": {\"dtype\": \"I64\", \"shape\": [2], \"data_offsets\": [0, 16]},"
             " \"f4\": {\"dtype\": \"F4\", \"shape\": [4], \"data_offsets\": [16, 18]},"
             " \"s\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [20, 24]},"
             " \"h\": {\"dtype\": \"F16\", \"shape\": [2, 1], \"data_offsets\": [24, 28]}}", 28);
    SafetensorsSet *s;
    SeerErr err = {{0}};
    CHECK(st_open(&s, test_tmp_path("dt.safetensors"), &err) == 0);
    if (!s) return;
    Tensor t;
    CHECK_ERR(st_get(s, "i", &t, &err), err, "dt.safetensors", "'i'", "dtype I64");
    CHECK_ERR(st_get(s, "f4", &t, &err), err, "'f4'", "dtype F4");
    CHECK_ERR(st_get(s, "s", &t, &err), err, "'s'", "0 dimensions");
    CHECK_ERR(st_get(s, "nope", &t, &err), err, "dt.safetensors", "missing tensor 'nope'");
    CHECK(st_get(s, "h", &t, &err) == 0);
    CHECK(t.dtype == SEER_F16 && t.ndim == 2 && t.shape[0] == 2 && t.shape[1] == 1);
    st_close(s);
}

// ---------------------------------------------------------------------------------------------
// safetensors: sharded index
// ---------------------------------------------------------------------------------------------

static const char *ONE_A = "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";
static const char *ONE_B = "{\"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}";

static void test_st_index(void) {
    make_dir("idx");
    write_st("idx/s1.safetensors", ONE_A, 4);
    write_st("idx/s2.safetensors", ONE_B, 4);
    write_text(test_tmp_path("idx/ok.json"), "{\"metadata\": {}, \"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s2.safetensors\"}}");
    SafetensorsSet *s;
    SeerErr err = {{0}};
    CHECK(st_open(&s, test_tmp_path("idx/ok.json"), &err) == 0);
    if (s) {
        CHECK(s->n_files == 2 && s->n_entries == 2);
        const StEntry *b = st_find(s, "b");
        CHECK(b && strstr(st_entry_path(s, b), "s2.safetensors"));
        st_close(s);
    }
    write_text(test_tmp_path("idx/missing.json"), "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"gone.safetensors\"}}");
    EXPECT_OPEN_FAIL("idx/missing.json", "gone.safetensors", "cannot open");
    write_text(test_tmp_path("idx/wrong.json"), "{\"weight_map\": {\"a\": \"s2.safetensors\"}}");
    EXPECT_OPEN_FAIL("idx/wrong.json", "'a'", "s2.safetensors", "no such tensor");
    write_st("idx/s3.safetensors", ONE_A, 4);
    write_text(test_tmp_path("idx/dup.json"), "{\"weight_map\": {\"a\": \"s1.safetensors\", \"b\": \"s3.safetensors\"}}");
    EXPECT_OPEN_FAIL("idx/dup.json", "duplicate tensor 'a'", "s1.safetensors", "s3.safetensors");
    write_text(test_tmp_path("idx/nomap.json"), "{\"metadata\": {}}");
    EXPECT_OPEN_FAIL("idx/nomap.json", "weight_map");
    write_text(test_tmp_path("idx/escape.json"), "{\"weight_map\": {\"a\": \"../s1.safetensors\"}}");
    EXPECT_OPEN_FAIL("idx/escape.json", "'a'", "not a shard file name");
    write_text(test_tmp_path("idx/badjson.json"), "{\"weight_map\": {\"a\": }}");
    EXPECT_OPEN_FAIL("idx/badjson.json", "bad JSON");
    EXPECT_OPEN_FAIL("idx/absent.json", "cannot open");
    write_text(test_tmp_path("idx/badshard.json"), "{\"weight_map\": {\"a\": \"s1.safetensors\", \"c\": \"junk.safetensors\"}}");
    write_text(test_tmp_path("idx/junk.safetensors"), "junk");
    EXPECT_OPEN_FAIL("idx/badshard.json", "junk.safetensors", "truncated");
    // A folder with neither file.
    SeerErr e2 = {{0}};
    CHECK_ERR(st_open_dir(&s, make_dir("nothing"), &e2), e2, "nothing", "no model.safetensors");
}

// ---------------------------------------------------------------------------------------------
// safetensors: writer
// ---------------------------------------------------------------------------------------------

static void test_st_roundtrip(void) {
    float a[15];
    uint16_t b[7], c[24];
    for (int i = 0; i < 15; i++) a[i] = (float)i * -1.25f + 0.1f;
    for (int i = 0; i < 7; i++) b[i] = (uint16_t)(0x3f80 + 977 * i);
    for (int i = 0; i < 24; i++) c[i] = (uint16_t)(0x1234 * i + 7);
    float one = 3.5f;
    StTensor ts[] = {
        {"half", {c, SEER_F16, 3, {2, 3, 4}}},  // 2-byte first in the list: the writer reorders
        {"bf", {b, SEER_BF16, 1, {7}}},
        {"mat", {a, SEER_F32, 2, {3, 5}}},
        {"empty", {NULL, SEER_F32, 2, {0, 4}}},
        {"one", {&one, SEER_F32, 4, {1, 1, 1, 1}}},
    };
    const char *meta[] = {"format", "pt", "note", "round \"trip\"", NULL};
    SeerErr err = {{0}};
    CHECK(st_write(test_tmp_path("rt.safetensors"), ts, 5, meta, &err) == 0);
    SafetensorsSet *s;
    CHECK(st_open(&s, test_tmp_path("rt.safetensors"), &err) == 0);
    if (!s) return;
    CHECK(s->n_entries == 5);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | s->files[0].map[i];
    CHECK((8 + hlen) % 8 == 0);
    for (int i = 0; i < 5; i++) {
        Tensor t;
        CHECK(st_get(s, ts[i].name, &t, &err) == 0);
        CHECK(t.dtype == ts[i].t.dtype && t.ndim == ts[i].t.ndim);
        for (int d = 0; d < t.ndim; d++) CHECK(t.shape[d] == ts[i].t.shape[d]);
        size_t nb = (size_t)tensor_numel(&t) * dtype_size(t.dtype);
        CHECK(nb == 0 || memcmp(t.data, ts[i].t.data, nb) == 0);
        CHECK((uintptr_t)t.data % dtype_size(t.dtype) == 0);
    }
    CHECK(strstr((const char *)s->files[0].map + 8, "\"note\":\"round \\\"trip\\\"\"") != NULL);
    st_close(s);
    // Overwrite in place: the new content replaces the old one completely.
    CHECK(st_write(test_tmp_path("rt.safetensors"), ts + 1, 1, NULL, &err) == 0);
    CHECK(st_open(&s, test_tmp_path("rt.safetensors"), &err) == 0);
    if (s) CHECK(s->n_entries == 1 && st_find(s, "bf") && !st_find(s, "mat"));
    st_close(s);
    // No tensors at all is a valid file.
    CHECK(st_write(test_tmp_path("none.safetensors"), NULL, 0, NULL, &err) == 0);
    CHECK(st_open(&s, test_tmp_path("none.safetensors"), &err) == 0);
    if (s) CHECK(s->n_entries == 0);
    st_close(s);
}

static void test_st_write_bad(void) {
    float x[2] = {1, 2};
    StTensor dup[] = {{"x", {x, SEER_F32, 1, {2}}}, {"x", {x, SEER_F32, 1, {2}}}};
    SeerErr err = {{0}};
    CHECK_ERR(st_write(test_tmp_path("w1.safetensors"), dup, 2, NULL, &err), err, "w1.safetensors", "duplicate tensor 'x'");
    StTensor scalar = {"s", {x, SEER_F32, 0, {0}}};
    CHECK_ERR(st_write(test_tmp_path("w2.safetensors"), &scalar, 1, NULL, &err), err, "'s'", "0 dimensions");
    StTensor meta = {"__metadata__", {x, SEER_F32, 1, {2}}};
    CHECK_ERR(st_write(test_tmp_path("w3.safetensors"), &meta, 1, NULL, &err), err, "reserved name");
    StTensor nodata = {"n", {NULL, SEER_F32, 1, {2}}};
    CHECK_ERR(st_write(test_tmp_path("w4.safetensors"), &nodata, 1, NULL, &err), err, "'n'", "no data");
    CHECK_ERR(st_write(test_tmp_path("no/such/dir/w.safetensors"), dup, 1, NULL, &err), err, "no/such/dir", "temp file");
    CHECK(access(test_tmp_path("w1.safetensors"), F_OK) != 0);
}

// ---------------------------------------------------------------------------------------------
// HF config
// ---------------------------------------------------------------------------------------------

#define QWEN3_BASE                                                                                    \
    "\"architectures\": [\"Qwen3ForCausalLM\"], \"model_type\": \"qwen3\", \"hidden_size\": 64, "    \
    "\"num_hidden_layers\": 2, \"num_attention_heads\": 4, "                                        \
    "\"intermediate_size\": 96, \"vocab_size\": 128"

// Writes {QWEN3_BASE, extra} (or `full` when given) as DIR/config.json and parses it.
static int parse_config(const char *full, const char *extra, ModelConfig *c, SeerErr *err) {
    char text[2048];
    if (full) snprintf(text, sizeof text, "%s", full);
    else snprintf(text, sizeof text, "{" QWEN3_BASE "%s%s}", *extra ? ", " : "", extra);
    char *dir = make_dir("cfg");
    char path[300];
    snprintf(path, sizeof path, "%s/config.json", dir);
    write_text(path, text);
    return hf_config_load(c, path, err);
}

static void test_config_ok(void) {
    ModelConfig c;
    SeerErr err = {{0}};
    CHECK(parse_config(NULL, "\"num_key_value_heads\": 2, \"head_dim\": 32, \"rope_theta\": 1000000, \"eos_token_id\": [7, 9], \"bos_token_id\": null, "
                             "\"tie_word_embeddings\": true, \"use_sliding_window\": false, \"sliding_window\": null",
                       &c, &err) == 0);
    CHECK(c.arch == ARCH_QWEN3 && c.qk_norm && !c.qkv_bias);
    CHECK(c.D == 64 && c.L == 2 && c.H == 4 && c.HKV == 2 && c.HD == 32 && c.F == 96 && c.V == 128);
    CHECK(c.rope_theta == 1e6f && c.rms_eps == 1e-6f && c.tie_embeddings && c.max_pos == 32768);
    CHECK(c.eos_id == 7 && c.bos_id == -1);
    // Llama defaults: kv heads = heads, head_dim = hidden / heads, theta 1e4, 2048 positions.
    CHECK(parse_config("{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 96, \"num_hidden_layers\": 1,"
                       " \"num_attention_heads\": 3, \"intermediate_size\": 10, \"vocab_size\": 5,"
                       " \"rms_norm_eps\": 1e-5, \"rope_scaling\": null, \"bos_token_id\": 1}",
                       NULL, &c, &err) == 0);
    CHECK(c.arch == ARCH_LLAMA && c.HKV == 3 && c.HD == 32 && c.rope_theta == 10000.0f && c.max_pos == 2048);
    CHECK(c.rms_eps == 1e-5f && !c.tie_embeddings && !c.qk_norm && !c.qkv_bias && c.bos_id == 1 && c.eos_id == -1);
    // Qwen2 by model_type only; theta from rope_parameters (transformers v5); its attention_bias is ignored.
    CHECK(parse_config("{\"model_type\": \"qwen2\", \"hidden_size\": 64, \"num_hidden_layers\": 1,"
                       " \"num_attention_heads\": 2, \"intermediate_size\": 10, \"vocab_size\": 5, \"attention_bias\": true,"
                       " \"rope_parameters\": {\"rope_type\": \"default\", \"rope_theta\": 5e5},"
                       " \"use_sliding_window\": true, \"max_window_layers\": 1}",
                       NULL, &c, &err) == 0);
    CHECK(c.arch == ARCH_QWEN2 && c.qkv_bias && c.rope_theta == 5e5f && c.HD == 32);
    // The written config reads back the same.
    ModelConfig back;
    CHECK(hf_config_write(&c, test_tmp_path("cfg/written.json"), &err) == 0);
    CHECK(hf_config_load(&back, test_tmp_path("cfg/written.json"), &err) == 0);
    CHECK(memcmp(&back, &c, sizeof c) == 0);
}

static void test_config_bad(void) {
    ModelConfig c;
    SeerErr err = {{0}};
    CHECK_ERR(parse_config("{\"architectures\": [\"Qwen3ForCausalLM\"], \"num_hidden_layers\": 2}", NULL, &c, &err),
              err, "config.json", "missing field 'hidden_size'");
    CHECK_ERR(parse_config(NULL, "\"num_key_value_heads\": 3", &c, &err), err, "config.json",
              "'num_attention_heads' (4) is not a multiple of num_key_value_heads (3)");
    CHECK_ERR(parse_config("{\"model_type\": \"llama\", \"hidden_size\": 100, \"num_hidden_layers\": 1,"
                           " \"num_attention_heads\": 3, \"intermediate_size\": 10, \"vocab_size\": 5}", NULL, &c, &err),
              err, "config.json", "head_dim", "not a multiple");
    CHECK_ERR(parse_config("{\"model_type\": \"llama\", \"hidden_size\": 0, \"num_hidden_layers\": 1,"
                           " \"num_attention_heads\": 3, \"intermediate_size\": 10, \"vocab_size\": 5}", NULL, &c, &err),
              err, "config.json", "'hidden_size' is 0");
    CHECK_ERR(parse_config("{\"model_type\": \"llama\", \"hidden_size\": \"96\", \"num_hidden_layers\": 1,"
                           " \"num_attention_heads\": 3, \"intermediate_size\": 10, \"vocab_size\": 5}", NULL, &c, &err),
              err, "config.json", "'hidden_size' must be an integer");
    CHECK_ERR(parse_config(NULL, "\"head_dim\": 33", &c, &err), err, "config.json", "'head_dim'", "even");
    CHECK_ERR(parse_config(NULL, "\"num_key_value_heads\": -2", &c, &err), err, "'num_key_value_heads' is -2");
    CHECK_ERR(parse_config("{\"architectures\": [\"MistralForCausalLM\"], \"hidden_size\": 4}", NULL, &c, &err),
              err, "config.json", "unsupported architecture 'MistralForCausalLM'", "Qwen3ForCausalLM", "LlamaForCausalLM");
    CHECK_ERR(parse_config("{\"hidden_size\": 4}", NULL, &c, &err), err, "config.json", "no 'architectures'");
    CHECK_ERR(parse_config("{\"architectures\": [\"Qwen2ForCausalLM\"], \"model_type\": \"llama\"}", NULL, &c, &err),
              err, "config.json", "model_type", "Qwen2ForCausalLM");
    CHECK_ERR(parse_config(NULL, "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4}", &c, &err), err,
              "config.json", "rope_scaling", "yarn");
    CHECK_ERR(parse_config(NULL, "\"rope_scaling\": {\"type\": \"linear\"}", &c, &err), err, "rope_scaling", "linear");
    CHECK_ERR(parse_config(NULL, "\"rope_theta\": 1e6, \"rope_parameters\": {\"rope_theta\": 1e4}", &c, &err), err,
              "config.json", "rope_theta");
    CHECK_ERR(parse_config(NULL, "\"use_sliding_window\": true, \"max_window_layers\": 1", &c, &err), err,
              "config.json", "use_sliding_window");
    CHECK_ERR(parse_config(NULL, "\"layer_types\": [\"full_attention\", \"sliding_attention\"]", &c, &err), err,
              "config.json", "layer_types'[1]");
    CHECK_ERR(parse_config(NULL, "\"attention_bias\": true", &c, &err), err, "config.json", "attention_bias");
    CHECK_ERR(parse_config(NULL, "\"hidden_act\": \"gelu\"", &c, &err), err, "config.json", "hidden_act");
    CHECK_ERR(parse_config(NULL, "\"tie_word_embeddings\": 1", &c, &err), err, "tie_word_embeddings");
    CHECK_ERR(parse_config(NULL, "\"rms_norm_eps\": -1", &c, &err), err, "rms_norm_eps");
    CHECK_ERR(parse_config("{\"architectures\": [\"Qwen3ForCausalLM\"],", NULL, &c, &err), err, "config.json", "bad JSON");
    CHECK_ERR(hf_config_load(&c, test_tmp_path("cfg/absent.json"), &err), err, "absent.json", "cannot open");
}

// The bench configs are the real ones of the models the paper uses.
static void test_config_bench_files(void) {
    struct { const char *file; ModelArch arch; int D, L, H, HKV, HD, F, V, tie; } want[] = {
        {"bench/configs/qwen3-4b.json", ARCH_QWEN3, 2560, 36, 32, 8, 128, 9728, 151936, 1},
        {"bench/configs/qwen3-8b.json", ARCH_QWEN3, 4096, 36, 32, 8, 128, 12288, 151936, 0},
        {"bench/configs/qwen3-14b.json", ARCH_QWEN3, 5120, 40, 40, 8, 128, 17408, 151936, 0},
        {"bench/configs/r1-distill-qwen-14b.json", ARCH_QWEN2, 5120, 48, 40, 8, 128, 13824, 152064, 0},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        ModelConfig c;
        SeerErr err = {{0}};
        if (access(want[i].file, R_OK) != 0) {
            printf("# skip %s (run from the repository root)\n", want[i].file);
            continue;
        }
        CHECK(hf_config_load(&c, want[i].file, &err) == 0);
        CHECK(c.arch == want[i].arch && c.D == want[i].D && c.L == want[i].L && c.H == want[i].H);
        CHECK(c.HKV == want[i].HKV && c.HD == want[i].HD && c.F == want[i].F && c.V == want[i].V);
        CHECK(c.tie_embeddings == want[i].tie && c.rope_theta == 1e6f);
    }
}

// ---------------------------------------------------------------------------------------------
// model_load
// ---------------------------------------------------------------------------------------------

static ModelConfig tiny_config(ModelArch arch, int tie) {
    ModelConfig c = {.arch = arch, .D = 64, .L = 2, .H = 4, .HKV = 2, .HD = 24, .F = 96, .V = 131,
                     .rope_theta = 1e4f, .rms_eps = 1e-6f, .tie_embeddings = tie, .qk_norm = arch == ARCH_QWEN3,
                     .qkv_bias = arch == ARCH_QWEN2, .bos_id = 1, .eos_id = 2, .max_pos = 4096};
    return c;
}

// Writes config.json and random weights for c into DIR/name; returns the folder.
static char *write_model(const char *name, const ModelConfig *c, SeerDType dt, uint64_t shard_bytes) {
    char *dir = make_dir(name), cfg[300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    SeerErr err = {{0}};
    if (hf_config_write(c, cfg, &err) || model_write_random(c, dir, dt, shard_bytes, 42, &err))
        seer_die("%s", err.msg);
    return dir;
}

static void check_shape(const Tensor *t, int ndim, int64_t d0, int64_t d1) {
    CHECK(t->ndim == ndim && t->shape[0] == d0 && (ndim == 1 || t->shape[1] == d1));
}

static void check_model(const Model *m, const ModelConfig *c, SeerDType dt) {
    CHECK(memcmp(&m->cfg, c, sizeof *c) == 0);
    int64_t QD = c->H * c->HD, KD = c->HKV * c->HD;
    check_shape(&m->w.embed, 2, c->V, c->D);
    check_shape(&m->w.lm_head, 2, c->V, c->D);
    CHECK((m->w.lm_head.data == m->w.embed.data) == !!c->tie_embeddings);
    check_shape(&m->w.final_norm, 1, c->D, 0);
    for (int l = 0; l < c->L; l++) {
        const LayerWeights *w = &m->w.layers[l];
        check_shape(&w->wq, 2, QD, c->D);
        check_shape(&w->wk, 2, KD, c->D);
        check_shape(&w->wv, 2, KD, c->D);
        check_shape(&w->wo, 2, c->D, QD);
        check_shape(&w->w_gate, 2, c->F, c->D);
        check_shape(&w->w_up, 2, c->F, c->D);
        check_shape(&w->w_down, 2, c->D, c->F);
        check_shape(&w->attn_norm, 1, c->D, 0);
        check_shape(&w->mlp_norm, 1, c->D, 0);
        CHECK(w->bq.ndim == (c->qkv_bias ? 1 : 0) && w->bk.ndim == w->bq.ndim && w->bv.ndim == w->bq.ndim);
        if (c->qkv_bias) check_shape(&w->bk, 1, KD, 0);
        CHECK(w->q_norm.ndim == (c->qk_norm ? 1 : 0) && w->k_norm.ndim == w->q_norm.ndim);
        if (c->qk_norm) check_shape(&w->q_norm, 1, c->HD, 0);
        CHECK(w->wq.dtype == dt && w->w_down.dtype == dt);
        // Random init: norms near 1, weights in [-0.05, 0.05].
        float n0 = tensor_get(&w->attn_norm, 5), x = tensor_get(&w->w_down, tensor_numel(&w->w_down) - 1);
        CHECK(n0 > 0.94f && n0 < 1.06f && x > -0.051f && x < 0.051f);
    }
}

static void test_model_archs(void) {
    struct { ModelArch arch; int tie; SeerDType dt; } cases[] = {
        {ARCH_QWEN3, 0, SEER_BF16}, {ARCH_QWEN3, 1, SEER_BF16}, {ARCH_QWEN2, 0, SEER_F32},
        {ARCH_QWEN2, 1, SEER_F16}, {ARCH_LLAMA, 0, SEER_F16}, {ARCH_LLAMA, 1, SEER_F32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ModelConfig c = tiny_config(cases[i].arch, cases[i].tie);
        char name[32];
        snprintf(name, sizeof name, "arch%zu", i);
        char *dir = write_model(name, &c, cases[i].dt, 0);
        Model m;
        SeerErr err = {{0}};
        CHECK(model_load(&m, dir, &err) == 0);
        if (err.msg[0]) fprintf(stderr, "    %s\n", err.msg);
        check_model(&m, &c, cases[i].dt);
        int64_t per_layer = 2 * (int64_t)c.D * c.H * c.HD + 2 * (int64_t)c.D * c.HKV * c.HD + 3 * (int64_t)c.D * c.F +
                            2 * c.D + (c.qk_norm ? 2 * c.HD : 0) + (c.qkv_bias ? (c.H + 2 * c.HKV) * c.HD : 0);
        int64_t n = c.L * per_layer + c.D + (c.tie_embeddings ? 1 : 2) * (int64_t)c.V * c.D;
        CHECK(model_weight_bytes(&m) == n * (int64_t)dtype_size(cases[i].dt));
        model_free(&m);
    }
}

static void test_model_sharded(void) {
    ModelConfig c = tiny_config(ARCH_QWEN2, 0);
    char *one = write_model("whole", &c, SEER_BF16, 0), *many = write_model("shards", &c, SEER_BF16, 20000);
    Model a, b;
    SeerErr err = {{0}};
    CHECK(model_load(&a, one, &err) == 0);
    CHECK(model_load(&b, many, &err) == 0);
    if (!a.files || !b.files) return;
    CHECK(a.files->n_files == 1 && b.files->n_files > 4);
    CHECK(strstr(b.files->path, "model.safetensors.index.json") != NULL);
    check_model(&b, &c, SEER_BF16);
    // Same seed, same bytes, whatever the file layout.
    for (int l = 0; l < c.L; l++) {
        CHECK(!memcmp(a.w.layers[l].w_up.data, b.w.layers[l].w_up.data, (size_t)c.F * c.D * 2));
        CHECK(!memcmp(a.w.layers[l].bv.data, b.w.layers[l].bv.data, (size_t)c.HKV * c.HD * 2));
    }
    CHECK(!memcmp(a.w.lm_head.data, b.w.lm_head.data, (size_t)c.V * c.D * 2));
    model_free(&a);
    model_free(&b);
    CHECK(a.files == NULL && a.w.layers == NULL);
}

// Rewrites DIR/model.safetensors with every tensor except `drop` plus `extra` (when not NULL).
static void rewrite_model(const char *dir, const char *drop, const StTensor *extra) {
    char path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    SafetensorsSet *s;
    SeerErr err = {{0}};
    if (st_open(&s, path, &err)) seer_die("%s", err.msg);
    StTensor *ts = xcalloc((size_t)s->n_entries + 1, sizeof *ts);
    int n = 0;
    for (int i = 0; i < s->n_entries; i++) {
        if (drop && !strcmp(s->entries[i].name, drop)) continue;
        ts[n].name = s->entries[i].name;
        if (st_get(s, ts[n].name, &ts[n].t, &err)) seer_die("%s", err.msg);
        n++;
    }
    if (extra) ts[n++] = *extra;
    if (st_write(path, ts, n, NULL, &err)) seer_die("%s", err.msg);  // mapping stays valid: new inode
    free(ts);
    st_close(s);
}

static void test_model_bad(void) {
    ModelConfig c = tiny_config(ARCH_QWEN3, 0);
    char *dir = write_model("bad", &c, SEER_BF16, 0);
    Model m;
    SeerErr err = {{0}};
    // Extra tensors (rotary inv_freq) are ignored.
    float inv[12] = {0};
    StTensor extra = {"model.layers.0.self_attn.rotary_emb.inv_freq", {inv, SEER_F32, 1, {12}}};
    rewrite_model(dir, NULL, &extra);
    CHECK(model_load(&m, dir, &err) == 0);
    model_free(&m);
    // A config with one more layer than the checkpoint: missing tensors, named with file and shape.
    ModelConfig more = c;
    more.L = 3;
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    CHECK(hf_config_write(&more, cfg, &err) == 0);
    CHECK_ERR(model_load(&m, dir, &err), err, "bad/model.safetensors", "missing tensor 'model.layers.2.input_layernorm.weight'",
              "[64]", "config.json");
    CHECK(m.files == NULL && m.w.layers == NULL);
    // Wrong shapes for the config.
    ModelConfig wide = c;
    wide.F = 100;
    CHECK(hf_config_write(&wide, cfg, &err) == 0);
    CHECK_ERR(model_load(&m, dir, &err), err, "bad/model.safetensors", "'model.layers.0.mlp.gate_proj.weight'",
              "shape [96, 64], expected [100, 64]");
    ModelConfig heads = c;
    heads.HD = 16;
    CHECK(hf_config_write(&heads, cfg, &err) == 0);
    CHECK_ERR(model_load(&m, dir, &err), err, "'model.layers.0.self_attn.q_proj.weight'", "[96, 64]", "[64, 64]");
    // Untied config, checkpoint without lm_head.
    CHECK(hf_config_write(&c, cfg, &err) == 0);
    rewrite_model(dir, "lm_head.weight", NULL);
    CHECK_ERR(model_load(&m, dir, &err), err, "missing tensor 'lm_head.weight'", "[131, 64]");
    // Tied config: the same checkpoint loads.
    ModelConfig tied = c;
    tied.tie_embeddings = 1;
    CHECK(hf_config_write(&tied, cfg, &err) == 0);
    CHECK(model_load(&m, dir, &err) == 0);
    model_free(&m);
    // Missing q_norm (a Qwen2-style checkpoint under a Qwen3 config).
    rewrite_model(dir, "model.layers.1.self_attn.k_norm.weight", NULL);
    CHECK_ERR(model_load(&m, dir, &err), err, "missing tensor 'model.layers.1.self_attn.k_norm.weight'");
    // Unsupported dtype on a tensor the model needs: patch "BF16" -> "I16 " in the header.
    char *d2 = write_model("badtype", &c, SEER_BF16, 0), path[300];
    snprintf(path, sizeof path, "%s/model.safetensors", d2);
    FILE *f = fopen(path, "r+b");
    char head[8192] = {0};
    size_t got = f ? fread(head, 1, sizeof head - 1, f) : 0;
    char *at = got > 8 ? strstr(head + 8, "\"model.embed_tokens.weight\":{\"dtype\":\"BF16\"") : NULL;
    CHECK(at != NULL);
    if (at) {
        memcpy(strstr(at, "\"BF16\""), "\"I16\" ", 6);
        fseek(f, 0, SEEK_SET);
        CHECK(fwrite(head, 1, got, f) == got);
    }
    if (f) fclose(f);
    CHECK_ERR(model_load(&m, d2, &err), err, "badtype/model.safetensors", "'model.embed_tokens.weight'", "dtype I16");
    // Broken config and no weights at all.
    write_text(cfg, "{\"architectures\": [\"GPT2LMHeadModel\"]}");
    CHECK_ERR(model_load(&m, dir, &err), err, "bad/config.json", "unsupported architecture");
    CHECK_ERR(model_load(&m, make_dir("empty"), &err), err, "empty/config.json", "cannot open");
    CHECK(hf_config_write(&c, test_tmp_path("empty/config.json"), &err) == 0);
    CHECK_ERR(model_load(&m, test_tmp_path("empty"), &err), err, "empty", "no model.safetensors");
}

// The testbed model committed in data/testbed loads with the shapes its README states.
static void test_model_testbed(void) {
    const char *dir = "data/testbed/model";
    if (access(dir, R_OK) != 0) {
        printf("# skip testbed (run from the repository root)\n");
        return;
    }
    Model m;
    SeerErr err = {{0}};
    CHECK(model_load(&m, dir, &err) == 0);
    if (err.msg[0]) fprintf(stderr, "    %s\n", err.msg);
    const ModelConfig *c = &m.cfg;
    CHECK(c->arch == ARCH_QWEN3 && c->D == 256 && c->L == 6 && c->H == 8 && c->HKV == 2 && c->HD == 64);
    CHECK(c->V == 1600 && c->tie_embeddings && c->rope_theta == 1e4f && c->eos_id == 1585);
    CHECK(m.w.embed.dtype == SEER_BF16 && m.w.lm_head.data == m.w.embed.data);
    CHECK(model_weight_bytes(&m) > 11000000 && model_weight_bytes(&m) < 11844744);
    model_free(&m);
}

int main(void) {
    test_tmpdir_make("ckpt");
    RUN(test_st_truncated);
    RUN(test_st_bad_header);
    RUN(test_st_bad_ranges);
    RUN(test_st_dtypes);
    RUN(test_st_index);
    RUN(test_st_roundtrip);
    RUN(test_st_write_bad);
    RUN(test_config_ok);
    RUN(test_config_bad);
    RUN(test_config_bench_files);
    RUN(test_model_archs);
    RUN(test_model_sharded);
    RUN(test_model_bad);
    RUN(test_model_testbed);
    test_tmpdir_remove();
    return test_summary();
}
