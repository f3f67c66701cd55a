// pth.c: see pth.h. Sections: tensor sets, zip writing, pickle writing, zip reading, pickle
// reading (a small stack machine for the opcodes torch.save emits), .pth reading.
#include "ckpt/pth.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "train/train_state.h"

// ---------------------------------------------------------------- tensor sets

void named_tensors_free(NamedTensorSet *s) {
    for (int i = 0; i < s->n; i++) {
        free(s->t[i].name);
        free(s->t[i].data);
    }
    free(s->t);
    s->t = NULL;
    s->n = 0;
}

const NamedTensor *named_tensors_find(const NamedTensorSet *s, const char *name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, name)) return &s->t[i];
    return NULL;
}

// ---------------------------------------------------------------- little-endian output

static void put_u16(FILE *o, uint32_t v) {
    fputc((int)(v & 0xff), o);
    fputc((int)((v >> 8) & 0xff), o);
}

static void put_u32(FILE *o, uint32_t v) {
    put_u16(o, v & 0xffff);
    put_u16(o, v >> 16);
}

// ---------------------------------------------------------------- zip writing (stored)

#define ZIP_ALIGN 64  // torch aligns every record's data to 64 bytes (extra field "FB")

typedef struct {
    char *name;
    uint32_t crc, size, offset;
} ZipEntry;

typedef struct {
    FILE *o;
    ZipEntry *e;
    int n, cap;
} ZipWriter;

static void zip_add(ZipWriter *z, const char *name, const void *data, size_t n) {
    if (z->n == z->cap) {
        z->cap = z->cap ? 2 * z->cap : 16;
        z->e = xrealloc(z->e, (size_t)z->cap * sizeof(ZipEntry));
    }
    long off = ftell(z->o);
    size_t name_len = strlen(name);
    size_t start = (size_t)off + 30 + name_len;
    size_t pad = (ZIP_ALIGN - (start + 4) % ZIP_ALIGN) % ZIP_ALIGN;  // after a 4-byte field header
    uint32_t crc = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), data, n);
    put_u32(z->o, 0x04034b50);
    put_u16(z->o, 20), put_u16(z->o, 0), put_u16(z->o, 0);  // version, flags, stored
    put_u16(z->o, 0), put_u16(z->o, 0x21);                  // 1980-01-01 00:00
    put_u32(z->o, crc), put_u32(z->o, (uint32_t)n), put_u32(z->o, (uint32_t)n);
    put_u16(z->o, (uint32_t)name_len), put_u16(z->o, (uint32_t)(4 + pad));
    fwrite(name, 1, name_len, z->o);
    put_u16(z->o, 0x4246), put_u16(z->o, (uint32_t)pad);  // "FB" padding field
    for (size_t i = 0; i < pad; i++) fputc('Z', z->o);
    fwrite(data, 1, n, z->o);
    z->e[z->n++] = (ZipEntry){xstrdup(name), crc, (uint32_t)n, (uint32_t)off};
}

static void zip_finish(ZipWriter *z) {
    long cd = ftell(z->o);
    for (int i = 0; i < z->n; i++) {
        ZipEntry *e = &z->e[i];
        put_u32(z->o, 0x02014b50);
        put_u16(z->o, 20), put_u16(z->o, 20), put_u16(z->o, 0), put_u16(z->o, 0);
        put_u16(z->o, 0), put_u16(z->o, 0x21);
        put_u32(z->o, e->crc), put_u32(z->o, e->size), put_u32(z->o, e->size);
        put_u16(z->o, (uint32_t)strlen(e->name)), put_u16(z->o, 0), put_u16(z->o, 0);
        put_u16(z->o, 0), put_u16(z->o, 0), put_u32(z->o, 0);
        put_u32(z->o, e->offset);
        fputs(e->name, z->o);
        free(e->name);
    }
    long end = ftell(z->o);
    put_u32(z->o, 0x06054b50);
    put_u16(z->o, 0), put_u16(z->o, 0), put_u16(z->o, (uint32_t)z->n), put_u16(z->o, (uint32_t)z->n);
    put_u32(z->o, (uint32_t)(end - cd)), put_u32(z->o, (uint32_t)cd), put_u16(z->o, 0);
    free(z->e);
}

// ---------------------------------------------------------------- pickle writing (protocol 2)

static void pk_put_str(FILE *o, const char *s) {
    fputc('X', o);  // BINUNICODE
    put_u32(o, (uint32_t)strlen(s));
    fputs(s, o);
}

static void pk_put_int(FILE *o, int64_t v) {
    if (v >= 0 && v < 256) {
        fputc('K', o), fputc((int)v, o);  // BININT1
    } else if (v >= 0 && v < 65536) {
        fputc('M', o), put_u16(o, (uint32_t)v);  // BININT2
    } else if (v >= INT32_MIN && v <= INT32_MAX) {
        fputc('J', o), put_u32(o, (uint32_t)(int32_t)v);  // BININT
    } else {
        fputc(0x8a, o), fputc(8, o);  // LONG1, 8 bytes two's complement
        for (int i = 0; i < 8; i++) fputc((int)(((uint64_t)v >> (8 * i)) & 0xff), o);
    }
}

static void pk_put_global(FILE *o, const char *module, const char *name) {
    fprintf(o, "c%s\n%s\n", module, name);
}

static const char *storage_name(SeerDType t) {
    return t == SEER_F32 ? "FloatStorage" : t == SEER_F16 ? "HalfStorage" : "BFloat16Storage";
}

// One dict item: name -> _rebuild_tensor_v2(storage, 0, shape, contiguous strides, False, {}).
static void pk_put_tensor(FILE *o, const PthTensor *t, int key) {
    char skey[16];
    snprintf(skey, sizeof skey, "%d", key);
    pk_put_str(o, t->name);
    pk_put_global(o, "torch._utils", "_rebuild_tensor_v2");
    fputs("((", o);
    pk_put_str(o, "storage");
    pk_put_global(o, "torch", storage_name(t->t.dtype));
    pk_put_str(o, skey);
    pk_put_str(o, "cpu");
    pk_put_int(o, tensor_numel(&t->t));
    fputs("tQ", o);  // TUPLE, BINPERSID
    pk_put_int(o, 0);
    fputc('(', o);
    for (int d = 0; d < t->t.ndim; d++) pk_put_int(o, t->t.shape[d]);
    fputs("t(", o);
    int64_t stride = 1, strides[4];
    for (int d = t->t.ndim - 1; d >= 0; d--) strides[d] = stride, stride *= t->t.shape[d];
    for (int d = 0; d < t->t.ndim; d++) pk_put_int(o, strides[d]);
    fputc('t', o);
    fputc(0x89, o);  // NEWFALSE: requires_grad
    pk_put_global(o, "collections", "OrderedDict");
    fputs(")RtR", o);  // backward hooks = OrderedDict(); close args; REDUCE
}

static void pk_put_state_dict(FILE *o, const PthTensor *t, int n) {
    fputc(0x80, o), fputc(2, o);  // PROTO 2
    pk_put_global(o, "collections", "OrderedDict");
    fputs(")R", o);
    if (n > 0) {
        fputc('(', o);
        for (int i = 0; i < n; i++) pk_put_tensor(o, &t[i], i);
        fputc('u', o);  // SETITEMS
    }
    fputc('.', o);
}

static int pth_check_input(const char *path, const PthTensor *t, int n, SeerErr *err) {
    for (int i = 0; i < n; i++) {
        if (!t[i].name || !t[i].name[0])
            return seer_fail(err, "%s: tensor %d has no name", path, i);
        if (t[i].t.ndim < 1 || t[i].t.ndim > 4)
            return seer_fail(err, "%s: tensor %s has %d dimensions (1..4 allowed)", path,
                             t[i].name, t[i].t.ndim);
        for (int j = 0; j < i; j++)
            if (!strcmp(t[i].name, t[j].name))
                return seer_fail(err, "%s: tensor name %s appears twice", path, t[i].name);
    }
    return 0;
}

int pth_write(const char *path, const PthTensor *tensors, int n, SeerErr *err) {
    if (pth_check_input(path, tensors, n, err)) return -1;
    char *pkl = NULL, *buf = NULL;
    size_t pkl_len = 0, len = 0;
    FILE *p = open_memstream(&pkl, &pkl_len);
    pk_put_state_dict(p, tensors, n);
    fclose(p);
    ZipWriter z = {.o = open_memstream(&buf, &len)};
    zip_add(&z, "archive/data.pkl", pkl, pkl_len);
    zip_add(&z, "archive/byteorder", "little", 6);
    for (int i = 0; i < n; i++) {
        char name[48];
        snprintf(name, sizeof name, "archive/data/%d", i);
        const Tensor *t = &tensors[i].t;
        zip_add(&z, name, t->data, (size_t)tensor_numel(t) * dtype_size(t->dtype));
    }
    zip_add(&z, "archive/version", "3\n", 2);
    zip_finish(&z);
    fclose(z.o);
    free(pkl);
    int rc = 0;
    if ((uint64_t)len >= 0xffffffffu)
        rc = seer_fail(err, "%s: %zu bytes needs zip64, which this writer does not produce", path, len);
    else
        rc = train_state_write_atomic(path, buf, len, err);
    free(buf);
    return rc;
}

// ---------------------------------------------------------------- zip reading

typedef struct {
    const uint8_t *b;  // whole file
    size_t n;
    const char *path;
} ZipReader;

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

// Finds the central directory (zip64 aware): *cd offset, *count entries.
static int zip_directory(const ZipReader *z, uint64_t *cd, uint64_t *count, SeerErr *err) {
    if (z->n < 22) return seer_fail(err, "%s: not a zip archive (%zu bytes)", z->path, z->n);
    size_t lo = z->n > 65557 ? z->n - 65557 : 0, e = z->n - 22 + 1;
    while (e-- > lo)
        if (rd32(z->b + e) == 0x06054b50) break;
    if (e < lo || rd32(z->b + e) != 0x06054b50)
        return seer_fail(err, "%s: not a zip archive (no end of central directory)", z->path);
    *count = rd16(z->b + e + 10);
    *cd = rd32(z->b + e + 16);
    if (*count == 0xffff || *cd == 0xffffffffu) {  // zip64: locator right before the record
        if (e < 20 || rd32(z->b + e - 20) != 0x07064b50)
            return seer_fail(err, "%s: zip64 archive without a locator", z->path);
        uint64_t r = rd64(z->b + e - 20 + 8);
        if (r > z->n - 56 || rd32(z->b + r) != 0x06064b50)
            return seer_fail(err, "%s: zip64 end record out of range", z->path);
        *count = rd64(z->b + r + 32);
        *cd = rd64(z->b + r + 48);
    }
    if (*cd > z->n) return seer_fail(err, "%s: central directory offset out of range", z->path);
    return 0;
}

// Reads a zip64 extra field's values for whichever of (size, csize, offset) are saturated.
static void zip64_extra(const uint8_t *x, size_t xn, uint64_t *size, uint64_t *csize,
                        uint64_t *off) {
    for (size_t i = 0; i + 4 <= xn;) {
        uint32_t id = rd16(x + i), sz = rd16(x + i + 2);
        if (i + 4 + sz > xn) return;
        if (id == 0x0001) {
            const uint8_t *p = x + i + 4, *end = p + sz;
            uint64_t *v[3] = {size, csize, off};
            for (int k = 0; k < 3; k++)
                if (*v[k] == 0xffffffffu && p + 8 <= end) *v[k] = rd64(p), p += 8;
        }
        i += 4 + sz;
    }
}

// Locates the stored entry called name: *data and *size, or -1 (missing / compressed / bad).
static int zip_find(const ZipReader *z, const char *name, const uint8_t **data, uint64_t *size,
                    SeerErr *err) {
    uint64_t cd, count;
    if (zip_directory(z, &cd, &count, err)) return -1;
    size_t name_len = strlen(name), p = (size_t)cd;
    for (uint64_t i = 0; i < count; i++) {
        if (p + 46 > z->n || rd32(z->b + p) != 0x02014b50)
            return seer_fail(err, "%s: broken central directory at offset %zu", z->path, p);
        uint32_t method = rd16(z->b + p + 10), nl = rd16(z->b + p + 28), xl = rd16(z->b + p + 30);
        uint32_t cl = rd16(z->b + p + 32);
        uint64_t csize = rd32(z->b + p + 20), usize = rd32(z->b + p + 24), off = rd32(z->b + p + 42);
        if (p + 46 + nl + xl + cl > z->n)
            return seer_fail(err, "%s: central directory entry %" PRIu64 " out of range", z->path, i);
        if (nl == name_len && !memcmp(z->b + p + 46, name, nl)) {
            zip64_extra(z->b + p + 46 + nl, xl, &usize, &csize, &off);
            if (method != 0 || csize != usize)
                return seer_fail(err, "%s: entry %s is compressed (method %u); only stored entries "
                                 "are read", z->path, name, method);
            if (off > z->n - 30 || rd32(z->b + off) != 0x04034b50)
                return seer_fail(err, "%s: entry %s: bad local header at offset %" PRIu64, z->path,
                                 name, off);
            uint64_t start = off + 30 + rd16(z->b + off + 26) + rd16(z->b + off + 28);
            if (start > z->n || usize > z->n - start)
                return seer_fail(err, "%s: entry %s runs past the end of the file", z->path, name);
            uint32_t crc = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), z->b + start, (size_t)usize);
            if (crc != rd32(z->b + p + 16))
                return seer_fail(err, "%s: entry %s is corrupt (CRC32 %08x, directory says %08x)",
                                 z->path, name, crc, rd32(z->b + p + 16));
            *data = z->b + start;
            *size = usize;
            return 0;
        }
        p += 46 + nl + xl + cl;
    }
    return seer_fail(err, "%s: zip has no entry %s", z->path, name);
}

// The archive folder name: the part before "/data.pkl" of the first entry that ends so.
static int zip_archive_prefix(const ZipReader *z, char *prefix, size_t cap, SeerErr *err) {
    uint64_t cd, count;
    if (zip_directory(z, &cd, &count, err)) return -1;
    size_t p = (size_t)cd;
    for (uint64_t i = 0; i < count && p + 46 <= z->n && rd32(z->b + p) == 0x02014b50; i++) {
        uint32_t nl = rd16(z->b + p + 28);
        const char *nm = (const char *)z->b + p + 46;
        if (p + 46 + nl <= z->n && nl > 9 && nl - 9 < cap && !memcmp(nm + nl - 9, "/data.pkl", 9) &&
            memchr(nm, '/', nl - 9) == NULL) {
            memcpy(prefix, nm, nl - 9);
            prefix[nl - 9] = 0;
            return 0;
        }
        p += 46 + nl + rd16(z->b + p + 30) + rd16(z->b + p + 32);
    }
    return seer_fail(err, "%s: not a PyTorch checkpoint (no <archive>/data.pkl entry)", z->path);
}

// ---------------------------------------------------------------- pickle reading

typedef enum { PK_MARK, PK_NONE, PK_BOOL, PK_INT, PK_STR, PK_TUPLE, PK_LIST, PK_DICT, PK_GLOBAL,
               PK_STORAGE, PK_TENSOR } PkKind;

typedef struct PkObj {
    PkKind kind;
    int64_t i;             // INT, BOOL value; STORAGE numel; TENSOR storage offset
    char *s;               // STR text; GLOBAL "module.name"; STORAGE key
    struct PkObj **items;  // TUPLE / LIST items; DICT key, value, key, value ...; TENSOR [storage]
    int n, cap;
    SeerDType dtype;       // STORAGE
    int ndim;              // TENSOR
    int64_t shape[4], stride[4];
} PkObj;

typedef struct {
    const uint8_t *b;
    size_t n, at;
    const char *where;     // "file: entry" for messages
    PkObj **all;           // every object made (freed together)
    int n_all, cap_all;
    PkObj **stack;
    int sp, cap_stack;
    PkObj **memo;
    int64_t cap_memo, n_memo;  // slots allocated; slots set (MEMOIZE writes slot n_memo)
    SeerErr *err;
} Pickle;

static PkObj *pk_new(Pickle *p, PkKind kind) {
    PkObj *o = xcalloc(1, sizeof *o);
    o->kind = kind;
    if (p->n_all == p->cap_all) {
        p->cap_all = p->cap_all ? 2 * p->cap_all : 64;
        p->all = xrealloc(p->all, (size_t)p->cap_all * sizeof(PkObj *));
    }
    p->all[p->n_all++] = o;
    return o;
}

static void pk_append(PkObj *c, PkObj *x) {
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->items = xrealloc(c->items, (size_t)c->cap * sizeof(PkObj *));
    }
    c->items[c->n++] = x;
}

static void pk_push(Pickle *p, PkObj *o) {
    if (p->sp == p->cap_stack) {
        p->cap_stack = p->cap_stack ? 2 * p->cap_stack : 64;
        p->stack = xrealloc(p->stack, (size_t)p->cap_stack * sizeof(PkObj *));
    }
    p->stack[p->sp++] = o;
}

static int pk_bad(Pickle *p, const char *what) {
    return seer_fail(p->err, "%s: pickle offset %zu: %s", p->where, p->at, what);
}

static PkObj *pk_pop(Pickle *p) {
    if (p->sp == 0 || p->stack[p->sp - 1]->kind == PK_MARK) {
        pk_bad(p, "stack underflow");
        return NULL;
    }
    return p->stack[--p->sp];
}

// Pops everything above the topmost MARK into a new container of the given kind.
static PkObj *pk_pop_mark(Pickle *p, PkKind kind) {
    int m = p->sp;
    while (m > 0 && p->stack[m - 1]->kind != PK_MARK) m--;
    if (m == 0) {
        pk_bad(p, "no MARK on the stack");
        return NULL;
    }
    PkObj *c = pk_new(p, kind);
    for (int i = m; i < p->sp; i++) pk_append(c, p->stack[i]);
    p->sp = m - 1;
    return c;
}

static int pk_need(Pickle *p, size_t k) {
    if (p->at + k > p->n) return pk_bad(p, "truncated");
    return 0;
}

static int pk_memo_put(Pickle *p, int64_t idx) {
    if (p->sp == 0 || idx < 0 || idx > (int64_t)1 << 24) return pk_bad(p, "bad memo put");
    if (idx >= p->cap_memo) {
        int64_t cap = idx * 2 + 16;
        p->memo = xrealloc(p->memo, (size_t)cap * sizeof(PkObj *));
        memset(p->memo + p->cap_memo, 0, (size_t)(cap - p->cap_memo) * sizeof(PkObj *));
        p->cap_memo = cap;
    }
    if (!p->memo[idx]) p->n_memo++;
    p->memo[idx] = p->stack[p->sp - 1];
    return 0;
}

static int pk_memo_get(Pickle *p, int64_t idx) {
    if (idx < 0 || idx >= p->cap_memo || !p->memo[idx]) return pk_bad(p, "memo get of an unset slot");
    pk_push(p, p->memo[idx]);
    return 0;
}

static int pk_str(Pickle *p, size_t len, PkKind kind) {
    if (pk_need(p, len)) return -1;
    PkObj *o = pk_new(p, kind);
    o->s = xmalloc(len + 1);
    memcpy(o->s, p->b + p->at, len);
    o->s[len] = 0;
    p->at += len;
    pk_push(p, o);
    return 0;
}

static int pk_int(Pickle *p, int64_t v) {
    PkObj *o = pk_new(p, PK_INT);
    o->i = v;
    pk_push(p, o);
    return 0;
}

// GLOBAL: "module\nname\n" -> "module.name".
static int pk_global(Pickle *p) {
    const uint8_t *a = p->b + p->at, *end = p->b + p->n;
    const uint8_t *nl1 = memchr(a, '\n', (size_t)(end - a));
    const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
    if (!nl2) return pk_bad(p, "truncated GLOBAL");
    PkObj *o = pk_new(p, PK_GLOBAL);
    size_t lm = (size_t)(nl1 - a), ln = (size_t)(nl2 - nl1 - 1);
    o->s = xmalloc(lm + ln + 2);
    memcpy(o->s, a, lm);
    o->s[lm] = '.';
    memcpy(o->s + lm + 1, nl1 + 1, ln);
    o->s[lm + 1 + ln] = 0;
    p->at = (size_t)(nl2 + 1 - p->b);
    pk_push(p, o);
    return 0;
}

// BINPERSID: ('storage', torch.<X>Storage, key, location, numel) -> STORAGE.
static int pk_persid(Pickle *p) {
    PkObj *t = pk_pop(p);
    if (!t) return -1;
    if (t->kind != PK_TUPLE || t->n != 5 || t->items[0]->kind != PK_STR ||
        strcmp(t->items[0]->s, "storage") || t->items[1]->kind != PK_GLOBAL ||
        t->items[2]->kind != PK_STR || t->items[4]->kind != PK_INT)
        return pk_bad(p, "persistent id is not ('storage', type, key, location, numel)");
    const char *ty = t->items[1]->s;
    PkObj *s = pk_new(p, PK_STORAGE);
    if (!strcmp(ty, "torch.BFloat16Storage")) s->dtype = SEER_BF16;
    else if (!strcmp(ty, "torch.HalfStorage")) s->dtype = SEER_F16;
    else if (!strcmp(ty, "torch.FloatStorage")) s->dtype = SEER_F32;
    else return seer_fail(p->err, "%s: storage type %s is not supported (BFloat16, Half, Float)",
                          p->where, ty);
    s->s = t->items[2]->s;
    s->i = t->items[4]->i;
    pk_push(p, s);
    return 0;
}

static int pk_int_tuple(const PkObj *t, int64_t *out, int *n) {
    if (t->kind != PK_TUPLE || t->n > 4) return -1;
    for (int i = 0; i < t->n; i++) {
        if (t->items[i]->kind != PK_INT) return -1;
        out[i] = t->items[i]->i;
    }
    *n = t->n;
    return 0;
}

// REDUCE with the two callables a state dict needs: OrderedDict() and _rebuild_tensor_v2(...).
static int pk_reduce(Pickle *p) {
    PkObj *args = pk_pop(p), *fn = pk_pop(p);
    if (!args || !fn) return -1;
    if (fn->kind != PK_GLOBAL || args->kind != PK_TUPLE) return pk_bad(p, "REDUCE of a non-global");
    if (!strcmp(fn->s, "collections.OrderedDict") && args->n == 0) {
        pk_push(p, pk_new(p, PK_DICT));
        return 0;
    }
    if (strcmp(fn->s, "torch._utils._rebuild_tensor_v2") != 0)
        return seer_fail(p->err, "%s: pickle calls %s; only a dict of tensors is supported",
                         p->where, fn->s);
    if ((args->n != 6 && args->n != 7) || args->items[0]->kind != PK_STORAGE ||
        args->items[1]->kind != PK_INT)
        return pk_bad(p, "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, ...)");
    PkObj *t = pk_new(p, PK_TENSOR);
    int nd_stride = 0;
    if (pk_int_tuple(args->items[2], t->shape, &t->ndim) ||
        pk_int_tuple(args->items[3], t->stride, &nd_stride) || nd_stride != t->ndim)
        return pk_bad(p, "tensor size/stride are not tuples of at most 4 ints");
    pk_append(t, args->items[0]);
    t->i = args->items[1]->i;
    pk_push(p, t);
    return 0;
}

static int pk_setitems(Pickle *p, PkObj *items) {
    PkObj *d = pk_pop(p);
    if (!d) return -1;
    if (d->kind != PK_DICT || items->n % 2) return pk_bad(p, "SETITEMS on a non-dict");
    for (int i = 0; i < items->n; i++) pk_append(d, items->items[i]);
    pk_push(p, d);
    return 0;
}

static int pk_tuple_n(Pickle *p, int k) {
    if (p->sp < k) return pk_bad(p, "stack underflow");
    PkObj *t = pk_new(p, PK_TUPLE);
    for (int i = p->sp - k; i < p->sp; i++) {
        if (p->stack[i]->kind == PK_MARK) return pk_bad(p, "MARK inside TUPLEn");
        pk_append(t, p->stack[i]);
    }
    p->sp -= k;
    pk_push(p, t);
    return 0;
}

// Runs one opcode. Returns 1 at STOP, 0 to continue, -1 on error.
static int pk_step(Pickle *p) {
    if (pk_need(p, 1)) return -1;
    uint8_t op = p->b[p->at++];
    const uint8_t *a = p->b + p->at;
    PkObj *c;
    switch (op) {
    case 0x80: if (pk_need(p, 1)) return -1; p->at += 1; return 0;  // PROTO
    case 0x95: if (pk_need(p, 8)) return -1; p->at += 8; return 0;  // FRAME
    case 'c': return pk_global(p);
    case 0x93: {  // STACK_GLOBAL
        PkObj *name = pk_pop(p), *mod = name ? pk_pop(p) : NULL;
        if (!mod || mod->kind != PK_STR || name->kind != PK_STR) return pk_bad(p, "bad STACK_GLOBAL");
        PkObj *g = pk_new(p, PK_GLOBAL);
        g->s = xmalloc(strlen(mod->s) + strlen(name->s) + 2);
        sprintf(g->s, "%s.%s", mod->s, name->s);
        pk_push(p, g);
        return 0;
    }
    case 'q': if (pk_need(p, 1)) return -1; p->at += 1; return pk_memo_put(p, a[0]);
    case 'r': if (pk_need(p, 4)) return -1; p->at += 4; return pk_memo_put(p, rd32(a));
    case 0x94: return pk_memo_put(p, p->n_memo);  // MEMOIZE
    case 'h': if (pk_need(p, 1)) return -1; p->at += 1; return pk_memo_get(p, a[0]);
    case 'j': if (pk_need(p, 4)) return -1; p->at += 4; return pk_memo_get(p, rd32(a));
    case '}': pk_push(p, pk_new(p, PK_DICT)); return 0;
    case ')': pk_push(p, pk_new(p, PK_TUPLE)); return 0;
    case ']': pk_push(p, pk_new(p, PK_LIST)); return 0;
    case 'N': pk_push(p, pk_new(p, PK_NONE)); return 0;
    case '(': pk_push(p, pk_new(p, PK_MARK)); return 0;
    case 0x88: case 0x89: c = pk_new(p, PK_BOOL); c->i = op == 0x88; pk_push(p, c); return 0;
    case 't': return (c = pk_pop_mark(p, PK_TUPLE)) ? (pk_push(p, c), 0) : -1;
    case 0x85: case 0x86: case 0x87: return pk_tuple_n(p, op - 0x84);
    case 'X': if (pk_need(p, 4)) return -1; p->at += 4; return pk_str(p, rd32(a), PK_STR);
    case 0x8c: if (pk_need(p, 1)) return -1; p->at += 1; return pk_str(p, a[0], PK_STR);
    case 'K': if (pk_need(p, 1)) return -1; p->at += 1; return pk_int(p, a[0]);
    case 'M': if (pk_need(p, 2)) return -1; p->at += 2; return pk_int(p, rd16(a));
    case 'J': if (pk_need(p, 4)) return -1; p->at += 4; return pk_int(p, (int32_t)rd32(a));
    case 0x8a: {  // LONG1: little-endian two's complement of n <= 8 bytes
        if (pk_need(p, 1) || pk_need(p, 1 + a[0]) || a[0] > 8) return pk_bad(p, "bad LONG1");
        uint64_t v = 0;
        for (int i = 0; i < a[0]; i++) v |= (uint64_t)a[1 + i] << (8 * i);
        if (a[0] > 0 && a[0] < 8 && (a[a[0]] & 0x80)) v |= ~(uint64_t)0 << (8 * a[0]);
        p->at += 1 + a[0];
        return pk_int(p, (int64_t)v);
    }
    case 'Q': return pk_persid(p);
    case 'R': return pk_reduce(p);
    case 'u': return (c = pk_pop_mark(p, PK_LIST)) ? pk_setitems(p, c) : -1;
    case 's': {
        PkObj *v = pk_pop(p), *k = v ? pk_pop(p) : NULL;
        if (!k) return -1;
        c = pk_new(p, PK_LIST);
        pk_append(c, k), pk_append(c, v);
        return pk_setitems(p, c);
    }
    case '.': return 1;
    default: {
        char msg[64];
        snprintf(msg, sizeof msg, "unsupported opcode 0x%02x", op);
        p->at--;
        return pk_bad(p, msg);
    }
    }
}

static void pk_free(Pickle *p) {
    for (int i = 0; i < p->n_all; i++) {
        free(p->all[i]->items);
        if (p->all[i]->kind != PK_STORAGE) free(p->all[i]->s);
        free(p->all[i]);
    }
    free(p->all);
    free(p->stack);
    free(p->memo);
}

// ---------------------------------------------------------------- .pth reading

// Copies one pickled tensor out of its storage record into t (fp32).
static int pth_tensor_copy(const ZipReader *z, const char *prefix, const PkObj *key,
                           const PkObj *val, NamedTensor *t, SeerErr *err) {
    if (key->kind != PK_STR || val->kind != PK_TENSOR)
        return seer_fail(err, "%s: the pickle is not a dict of name -> tensor", z->path);
    const PkObj *st = val->items[0];
    int64_t numel = 1, expect = 1;
    for (int d = val->ndim - 1; d >= 0; d--) {
        if (val->shape[d] < 0) return seer_fail(err, "%s: tensor %s has a negative size", z->path, key->s);
        if (val->shape[d] != 1 && val->stride[d] != expect)
            return seer_fail(err, "%s: tensor %s is not contiguous", z->path, key->s);
        expect *= val->shape[d];
        numel *= val->shape[d];
    }
    if (val->ndim < 1 || val->i < 0 || val->i + numel > st->i)
        return seer_fail(err, "%s: tensor %s (ndim %d, offset %" PRId64 ") does not fit its "
                         "storage of %" PRId64 " elements", z->path, key->s, val->ndim, val->i, st->i);
    char name[512];
    snprintf(name, sizeof name, "%s/data/%s", prefix, st->s);
    const uint8_t *data;
    uint64_t size;
    if (zip_find(z, name, &data, &size, err)) return -1;
    size_t es = dtype_size(st->dtype);
    if (size < (uint64_t)st->i * es)
        return seer_fail(err, "%s: entry %s holds %" PRIu64 " bytes, its storage needs %" PRId64,
                         z->path, name, size, st->i * (int64_t)es);
    Tensor view = {.data = data + (size_t)val->i * es, .dtype = st->dtype, .ndim = 1, .shape = {numel}};
    t->name = xstrdup(key->s);
    t->ndim = val->ndim;
    memcpy(t->shape, val->shape, sizeof t->shape);
    t->data = xmalloc((size_t)(numel ? numel : 1) * sizeof(float));
    for (int64_t i = 0; i < numel; i++) t->data[i] = tensor_get(&view, i);
    return 0;
}

static int pth_run_pickle(Pickle *p, PkObj **dict) {
    int r;
    while ((r = pk_step(p)) == 0) {}
    if (r < 0) return -1;
    if (p->sp != 1 || p->stack[0]->kind != PK_DICT)
        return seer_fail(p->err, "%s: the pickle's result is not a dict", p->where);
    *dict = p->stack[0];
    return 0;
}

static int pth_parse(const ZipReader *z, NamedTensorSet *out, SeerErr *err) {
    char prefix[256], where[512], name[300];
    const uint8_t *pkl;
    uint64_t pkl_len;
    if (zip_archive_prefix(z, prefix, sizeof prefix, err)) return -1;
    snprintf(name, sizeof name, "%s/data.pkl", prefix);
    if (zip_find(z, name, &pkl, &pkl_len, err)) return -1;
    snprintf(where, sizeof where, "%s: %s", z->path, name);
    Pickle p = {.b = pkl, .n = (size_t)pkl_len, .where = where, .err = err};
    PkObj *dict = NULL;
    int rc = pth_run_pickle(&p, &dict);
    if (!rc) {
        out->t = xcalloc((size_t)(dict->n / 2 + 1), sizeof(NamedTensor));
        // out->n counts a failed copy too, so named_tensors_free frees its partial fields.
        for (int i = 0; i + 1 < dict->n && !rc; i += 2, out->n++)
            rc = pth_tensor_copy(z, prefix, dict->items[i], dict->items[i + 1], &out->t[out->n], err);
    }
    pk_free(&p);
    return rc;
}

int pth_read(const char *path, NamedTensorSet *out, SeerErr *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return seer_fail(err, "%s: cannot open: %s", path, strerror(errno));
    fseeko(f, 0, SEEK_END);
    off_t size = ftello(f);
    rewind(f);
    uint8_t *b = xmalloc(size > 0 ? (size_t)size : 1);
    size_t got = fread(b, 1, (size_t)size, f);
    fclose(f);
    int rc;
    if (size < 0 || got != (size_t)size) rc = seer_fail(err, "%s: short read", path);
    else rc = pth_parse(&(ZipReader){.b = b, .n = got, .path = path}, out, err);
    free(b);
    if (rc) named_tensors_free(out);
    return rc;
}

