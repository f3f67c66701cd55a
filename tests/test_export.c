// test_export.c: the .pth writer and reader (round trip, a torch-written fixture when present,
// refusals), and gate folders (write, read back through safetensors and through .pth).
#define _GNU_SOURCE  // memmem
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "ckpt/gate_export.h"
#include "tests/test.h"

static void test_pth_roundtrip(void) {
    // Three dtypes, awkward shapes, a value that rounds in bf16.
    uint16_t a[2 * 3 * 5];
    float b[7];
    uint16_t c[300];
    for (int i = 0; i < 30; i++) a[i] = f32_to_bf16(0.01f * i - 0.1f);
    for (int i = 0; i < 7; i++) b[i] = 1.0f / (i + 1);
    for (int i = 0; i < 300; i++) c[i] = f32_to_f16((float)i - 150);
    PthTensor t[3] = {
        {"model.layers.0.x", {.data = a, .dtype = SEER_BF16, .ndim = 3, .shape = {2, 3, 5}}},
        {"b", {.data = b, .dtype = SEER_F32, .ndim = 1, .shape = {7}}},
        {"a.much.longer.name.that.is.over.thirty.two.chars", {.data = c, .dtype = SEER_F16, .ndim = 2, .shape = {300, 1}}},
    };
    SeerErr err;
    const char *path = test_tmp_path("rt.pth");
    CHECK(pth_write(path, t, 3, &err) == 0);
    NamedTensorSet s;
    CHECK(pth_read(path, &s, &err) == 0);
    CHECK(s.n == 3);
    const NamedTensor *x = named_tensors_find(&s, "model.layers.0.x");
    CHECK(x && x->ndim == 3 && x->shape[0] == 2 && x->shape[1] == 3 && x->shape[2] == 5);
    for (int i = 0; x && i < 30; i++) CHECK(x->data[i] == bf16_to_f32(a[i]));
    const NamedTensor *y = named_tensors_find(&s, "b");
    for (int i = 0; y && i < 7; i++) CHECK(y->data[i] == b[i]);
    const NamedTensor *z = named_tensors_find(&s, t[2].name);
    CHECK(z && z->ndim == 2 && z->shape[0] == 300 && z->data[299] == 149.0f);
    named_tensors_free(&s);
    CHECK(pth_write(test_tmp_path("empty.pth"), t, 0, &err) == 0);
    CHECK(pth_read(test_tmp_path("empty.pth"), &s, &err) == 0 && s.n == 0);
    PthTensor dup[2] = {t[1], t[1]};
    CHECK(pth_write(test_tmp_path("dup.pth"), dup, 2, &err) == -1 && strstr(err.msg, "twice"));
}

// Files written by torch.save on the GPU machine (tests/golden/check_pth.py makes them).
static void test_pth_reads_torch_files(void) {
    const char *files[] = {"tests/golden/torch_ordereddict.pth", "tests/golden/torch_dict.pth"};
    for (int f = 0; f < 2; f++) {
        if (access(files[f], F_OK) != 0) {
            printf("    (skipped: %s not present)\n", files[f]);
            continue;
        }
        NamedTensorSet s;
        SeerErr err;
        int rc = pth_read(files[f], &s, &err);
        if (rc) fprintf(stderr, "    %s\n", err.msg);
        CHECK(rc == 0);
        // The script stores w = arange(n).reshape(shape) * 0.125 - 1 in bf16, and a view.
        const NamedTensor *w = named_tensors_find(&s, "w");
        CHECK(w && w->ndim == 4 && w->shape[0] == 2 && w->shape[1] == 3 && w->shape[2] == 4 && w->shape[3] == 5);
        for (int i = 0; w && i < 120; i++) CHECK(w->data[i] == bf16_to_f32(f32_to_bf16(i * 0.125f - 1)));
        const NamedTensor *v = named_tensors_find(&s, "row_view");  // w[1] viewed: storage offset 60
        CHECK(v && v->ndim == 3 && v->data[0] == w->data[60]);
        const NamedTensor *h = named_tensors_find(&s, "half");
        CHECK(h && h->ndim == 1 && h->shape[0] == 3 && h->data[2] == 2.5f);
        named_tensors_free(&s);
    }
}

static void write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
}

static int read_fails(const char *path, const char *needle) {
    NamedTensorSet s;
    SeerErr err;
    if (pth_read(path, &s, &err) == 0) {
        named_tensors_free(&s);
        return 0;
    }
    if (!strstr(err.msg, needle)) fprintf(stderr, "    message: %s\n", err.msg);
    return strstr(err.msg, needle) != NULL;
}

// Recomputes the CRC32 of archive/data.pkl in both zip headers after the test edited the pickle.
static void fix_pickle_crc(char *buf, size_t n) {
    char *local = memmem(buf, n, "archive/data.pkl", 16);
    char *central = local ? memmem(local + 16, n - (size_t)(local + 16 - buf), "archive/data.pkl", 16) : NULL;
    if (!central) return;
    uint8_t *h = (uint8_t *)local - 30;
    uint32_t size = h[22] | h[23] << 8 | h[24] << 16 | (uint32_t)h[25] << 24;
    uint8_t *data = h + 30 + (h[26] | h[27] << 8) + (h[28] | h[29] << 8);
    uint32_t crc = (uint32_t)crc32(crc32(0L, Z_NULL, 0), data, size);
    for (int i = 0; i < 4; i++) h[14 + i] = (uint8_t)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) ((uint8_t *)central - 46)[16 + i] = (uint8_t)(crc >> (8 * i));
}

static void test_pth_refusals(void) {
    write_bytes(test_tmp_path("junk.pth"), "hello world, not a zip at all", 29);
    CHECK(read_fails(test_tmp_path("junk.pth"), "not a zip"));
    CHECK(read_fails(test_tmp_path("nope.pth"), "cannot open"));
    // A valid file, then damage: the pickle's STOP replaced by an unknown opcode.
    float v[2] = {1, 2};
    PthTensor t = {"v", {.data = v, .dtype = SEER_F32, .ndim = 1, .shape = {2}}};
    SeerErr err;
    const char *path = test_tmp_path("bad.pth");
    CHECK(pth_write(path, &t, 1, &err) == 0);
    FILE *f = fopen(path, "rb");
    char buf[8192];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char *stop = memmem(buf, n, "RtRu.", 5);  // the last tensor, SETITEMS, STOP
    CHECK(stop != NULL);
    if (stop) stop[4] = (char)0xfe;
    write_bytes(path, buf, n);
    CHECK(read_fails(path, "CRC32"));  // the edit is caught by the checksum first
    fix_pickle_crc(buf, n);
    write_bytes(path, buf, n);
    CHECK(read_fails(path, "unsupported opcode 0xfe"));
    // A pickle calling something else than the two allowed callables.
    CHECK(pth_write(path, &t, 1, &err) == 0);
    f = fopen(path, "rb");
    n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    char *g = memmem(buf, n, "_rebuild_tensor_v2", 18);
    CHECK(g != NULL);
    if (g) memcpy(g, "_rebuild_tensor_v9", 18);
    fix_pickle_crc(buf, n);
    write_bytes(path, buf, n);
    CHECK(read_fails(path, "only a dict of tensors"));
    // Truncated archive: the storage record is cut off.
    CHECK(pth_write(path, &t, 1, &err) == 0);
    write_bytes(test_tmp_path("trunc.pth"), buf, 200);
    CHECK(read_fails(test_tmp_path("trunc.pth"), "not a zip"));
}

static void test_gate_folder_roundtrip(void) {
    GateShape s = {.HKV = 2, .G = 3, .HD = 8, .DG = 6};
    int L = 3;
    int64_t P = gate_param_count(s);
    float *p = xmalloc((size_t)(L * P) * sizeof(float));
    for (int l = 0; l < L; l++) gate_params_init(p + l * P, s, 42, l);
    GateFolderInfo info = {.base_config_json = "{\"model_type\": \"qwen3\", \"hidden_size\": 48}",
                           .base_model = "/models/tiny", .loss_slice_ratio = 0.5f};
    SeerErr err;
    const char *dir = test_tmp_path("gates");
    int rc = gate_folder_write(dir, p, L, s, &info, &err);
    if (rc) fprintf(stderr, "    %s\n", err.msg);
    CHECK(rc == 0);
    for (int pass = 0; pass < 2; pass++) {  // safetensors first, then .pth alone
        float *q = NULL;
        int L2 = 0;
        GateShape s2;
        rc = gate_folder_read(dir, &q, &L2, &s2, &err);
        if (rc) fprintf(stderr, "    %s\n", err.msg);
        CHECK(rc == 0 && L2 == L && s2.HKV == 2 && s2.G == 3 && s2.HD == 8 && s2.DG == 6);
        for (int64_t i = 0; rc == 0 && i < L * P; i++) CHECK(q[i] == bf16_to_f32(f32_to_bf16(p[i])));
        free(q);
        unlink(test_tmp_path("gates/" GATE_ST_FILE));
    }
    FILE *f = fopen(test_tmp_path("gates/config.json"), "r");
    char buf[4096] = {0};
    CHECK(f && fread(buf, 1, sizeof buf - 1, f) > 0);
    if (f) fclose(f);
    CHECK(strstr(buf, "\"seerattn_k_seq_pooling_type\": \"Kmaxminavg\"") != NULL);
    CHECK(strstr(buf, "\"base_model\": \"/models/tiny\"") != NULL);
    CHECK(strstr(buf, "\"hidden_size\": 48") != NULL);
    unlink(test_tmp_path("gates/" GATE_PTH_FILE));
    float *q = NULL;
    int L2;
    GateShape s2;
    CHECK(gate_folder_read(dir, &q, &L2, &s2, &err) == -1 && strstr(err.msg, "no gates here"));
    info.base_config_json = "[1, 2]";
    CHECK(gate_folder_write(dir, p, L, s, &info, &err) == -1 && strstr(err.msg, "not a JSON object"));
    free(p);
}

int main(void) {
    test_tmpdir_make("export");
    RUN(test_pth_roundtrip);
    RUN(test_pth_reads_torch_files);
    RUN(test_pth_refusals);
    RUN(test_gate_folder_roundtrip);
    test_tmpdir_remove();
    return test_summary();
}
