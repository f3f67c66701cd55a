// tokenizer.c: byte-level BPE from a Hugging Face tokenizer.json (Qwen2/Qwen3 family).
//
// tokenizer_encode runs the steps of the `tokenizers` library, in its order:
//   1. check the text is valid UTF-8 (an error otherwise; HF cannot even receive such text);
//   2. split out the added tokens whose "normalized" flag is false, on the raw text (leftmost-longest,
//      honouring single_word / lstrip / rstrip exactly as HF's AddedVocabulary::find_matches does);
//   3. normalise each remaining piece (NFC through utf8proc, when the normalizer is NFC);
//   4. split out the added tokens whose "normalized" flag is true, on the normalised piece;
//   5. pre-tokenise each remaining piece with the Split regex, run by PCRE2 (UTF + UCP, JIT);
//   6. byte-level BPE on each word: bytes -> single-byte token ids, then merges by rank (lowest
//      first, leftmost on ties), memoised in a per-thread word cache.
// The regex is Oniguruma syntax in tokenizer.json; the one difference that matters for these
// patterns is \s (Oniguruma: Unicode White_Space, which includes U+0085; PCRE2 UCP: not U+0085),
// so \s and \S are rewritten before compiling (regex_translate).
//
// Thread safety: a loaded Tokenizer is read-only; tokenizer_encode may run on many threads at
// once. Each thread gets its own match data, JIT stack and word cache (TokState), created on
// first use and freed by tokenizer_free.
#include "data/tokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <sys/stat.h>
#include <utf8proc.h>

// ---------------------------------------------------------------------------------------------
// UTF-8
// ---------------------------------------------------------------------------------------------

// Length of the valid UTF-8 sequence at s[0..n), or 0 when it is invalid or truncated. *maximal
// gets the length of the maximal invalid prefix (>= 1) for U+FFFD substitution, as Rust's
// String::from_utf8_lossy (and so HF decode) counts it.
static int utf8_seq_len(const unsigned char *s, size_t n, int *maximal) {
    unsigned char c = s[0];
    int need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0) lo = 0xA0;
        if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F;
    } else {
        *maximal = 1;
        return 0;
    }
    for (int i = 1; i < need; i++) {
        unsigned char lo_i = i == 1 ? lo : 0x80, hi_i = i == 1 ? hi : 0xBF;
        if ((size_t)i >= n || s[i] < lo_i || s[i] > hi_i) {
            *maximal = i;
            return 0;
        }
    }
    return need;
}

// Returns 0 when s[0..n) is valid UTF-8, else -1 with *bad = offset of the first invalid byte.
static int utf8_check(const char *text, size_t n, size_t *bad) {
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0;
    while (i < n) {
        if (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        int maximal, k = utf8_seq_len(s + i, n - i, &maximal);
        if (!k) {
            *bad = i;
            return -1;
        }
        i += (size_t)k;
    }
    return 0;
}

// Decodes one code point of valid UTF-8 at s; *k gets its byte length.
static int32_t utf8_decode(const unsigned char *s, int *k) {
    if (s[0] < 0x80) return *k = 1, s[0];
    if (s[0] < 0xE0) return *k = 2, ((s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    if (s[0] < 0xF0) return *k = 3, ((s[0] & 0x0F) << 12) | ((s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    *k = 4;
    return ((s[0] & 0x07) << 18) | ((s[1] & 0x3F) << 12) | ((s[2] & 0x3F) << 6) | (s[3] & 0x3F);
}

// Code point of the last character of valid UTF-8 s[0..n) (n > 0).
static int32_t utf8_last(const unsigned char *s, size_t n) {
    size_t i = n - 1;
    while (i > 0 && (s[i] & 0xC0) == 0x80) i--;
    int k;
    return utf8_decode(s + i, &k);
}

static int utf8_encode(int32_t cp, char *out) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

// Unicode White_Space (what Rust's char::is_whitespace and regex \s test).
static int is_white_space(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F ||
           c == 0x3000;
}

// Rust regex's Unicode \w, close enough for single_word tokens: letters, marks, decimal digits,
// letter numbers, connector punctuation, ZWNJ/ZWJ.
static int is_word_char(int32_t c) {
    if (c == 0x200C || c == 0x200D) return 1;
    switch (utf8proc_category(c)) {
    case UTF8PROC_CATEGORY_LU: case UTF8PROC_CATEGORY_LL: case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM: case UTF8PROC_CATEGORY_LO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC: case UTF8PROC_CATEGORY_ME: case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL: case UTF8PROC_CATEGORY_PC:
        return 1;
    default:
        return 0;
    }
}

// ---------------------------------------------------------------------------------------------
// Hash maps: byte string -> id (vocab), token pair -> merge (rank, new id)
// ---------------------------------------------------------------------------------------------

static uint64_t hash_bytes(const char *p, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xFF51AFD7ED558CCDull);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w) * 0x94D049BB133111EBull;
    h ^= h >> 29;
    return h ? h : 1;
}

typedef struct {
    int32_t *slot;   // [mask + 1] index into koff/klen/val, -1 when empty
    uint32_t mask;
    char *arena;     // every key, NUL-terminated, back to back
    size_t arena_n, arena_cap;
    size_t *koff;    // [n] offset of each key in arena
    uint32_t *klen;  // [n]
    int32_t *val;    // [n]
    int n, cap;
} StrMap;

static void strmap_init(StrMap *m, int expected) {
    uint32_t size = 16;
    while (size < (uint32_t)expected * 2u) size <<= 1;
    m->slot = xmalloc(size * sizeof *m->slot);
    memset(m->slot, 0xFF, size * sizeof *m->slot);
    m->mask = size - 1;
    m->cap = expected > 0 ? expected : 1;
    m->koff = xmalloc((size_t)m->cap * sizeof *m->koff);
    m->klen = xmalloc((size_t)m->cap * sizeof *m->klen);
    m->val = xmalloc((size_t)m->cap * sizeof *m->val);
    m->arena_cap = (size_t)m->cap * 8 + 64;
    m->arena = xmalloc(m->arena_cap);
    m->arena_n = 0;
    m->n = 0;
}

static void strmap_free(StrMap *m) {
    free(m->slot);
    free(m->arena);
    free(m->koff);
    free(m->klen);
    free(m->val);
}

static const char *strmap_key(const StrMap *m, int e) { return m->arena + m->koff[e]; }

// Slot for key: the one holding it, or the empty one where it would go.
static uint32_t strmap_find(const StrMap *m, const char *k, size_t n) {
    uint32_t i = (uint32_t)hash_bytes(k, n) & m->mask;
    while (m->slot[i] >= 0) {
        int e = m->slot[i];
        if (m->klen[e] == n && !memcmp(strmap_key(m, e), k, n)) return i;
        i = (i + 1) & m->mask;
    }
    return i;
}

static int strmap_get(const StrMap *m, const char *k, size_t n) {
    int e = m->slot[strmap_find(m, k, n)];
    return e >= 0 ? m->val[e] : -1;
}

// Inserts k -> v; returns 0, or -1 when k was already present (its value is kept).
static int strmap_put(StrMap *m, const char *k, size_t n, int v) {
    if ((uint32_t)(m->n + 1) * 2u > m->mask + 1) {  // grow and rehash
        uint32_t size = (m->mask + 1) * 2;
        free(m->slot);
        m->slot = xmalloc(size * sizeof *m->slot);
        memset(m->slot, 0xFF, size * sizeof *m->slot);
        m->mask = size - 1;
        for (int e = 0; e < m->n; e++) m->slot[strmap_find(m, strmap_key(m, e), m->klen[e])] = e;
    }
    uint32_t i = strmap_find(m, k, n);
    if (m->slot[i] >= 0) return -1;
    if (m->n == m->cap) {
        m->cap *= 2;
        m->koff = xrealloc(m->koff, (size_t)m->cap * sizeof *m->koff);
        m->klen = xrealloc(m->klen, (size_t)m->cap * sizeof *m->klen);
        m->val = xrealloc(m->val, (size_t)m->cap * sizeof *m->val);
    }
    if (m->arena_n + n + 1 > m->arena_cap) m->arena = xrealloc(m->arena, m->arena_cap = 2 * (m->arena_n + n + 1));
    memcpy(m->arena + m->arena_n, k, n);
    m->arena[m->arena_n + n] = 0;
    m->koff[m->n] = m->arena_n;
    m->arena_n += n + 1;
    m->klen[m->n] = (uint32_t)n;
    m->val[m->n] = v;
    m->slot[i] = m->n++;
    return 0;
}

typedef struct {
    uint64_t key;  // ((a + 1) << 32) | b; 0 = empty
    int32_t rank, id;
} MergeSlot;

static inline uint64_t merge_key(int a, int b) { return ((uint64_t)(uint32_t)(a + 1) << 32) | (uint32_t)b; }
static inline uint32_t merge_hash(uint64_t k) { return (uint32_t)((k * 0x9E3779B97F4A7C15ull) >> 32); }

// ---------------------------------------------------------------------------------------------
// SHA-256 (FIPS 180-4) of the tokenizer.json bytes, for tokenizer_hash
// ---------------------------------------------------------------------------------------------

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

static inline uint32_t rotr(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void sha256_block(uint32_t h[8], const unsigned char *p) {
    uint32_t w[64], a[8];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = rotr(w[i - 15], 7) ^ rotr(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = rotr(w[i - 2], 17) ^ rotr(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    memcpy(a, h, sizeof a);
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = a[7] + (rotr(a[4], 6) ^ rotr(a[4], 11) ^ rotr(a[4], 25)) + ((a[4] & a[5]) ^ (~a[4] & a[6])) +
                      sha_k[i] + w[i];
        uint32_t t2 = (rotr(a[0], 2) ^ rotr(a[0], 13) ^ rotr(a[0], 22)) + ((a[0] & a[1]) ^ (a[0] & a[2]) ^ (a[1] & a[2]));
        memmove(a + 1, a, 7 * sizeof a[0]);
        a[4] += t1;
        a[0] = t1 + t2;
    }
    for (int i = 0; i < 8; i++) h[i] += a[i];
}

void tokenizer_sha256(const void *data, size_t n, char hex[65]) {
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    const unsigned char *p = data;
    size_t full = n / 64 * 64;
    for (size_t i = 0; i < full; i += 64) sha256_block(h, p + i);
    unsigned char tail[128] = {0};
    size_t rest = n - full, tail_len = rest + 9 <= 64 ? 64 : 128;
    memcpy(tail, p + full, rest);
    tail[rest] = 0x80;
    for (int i = 0; i < 8; i++) tail[tail_len - 1 - i] = (unsigned char)(((uint64_t)n * 8) >> (8 * i));
    for (size_t i = 0; i < tail_len; i += 64) sha256_block(h, tail + i);
    for (int i = 0; i < 8; i++) snprintf(hex + 8 * i, 9, "%08x", h[i]);
}

// ---------------------------------------------------------------------------------------------
// The tokenizer
// ---------------------------------------------------------------------------------------------

typedef struct {
    char *content;  // UTF-8; normalised at load when `normalized`
    int len, id;
    int single_word, lstrip, rstrip, normalized;
} AddedToken;

typedef struct TokState TokState;

typedef struct {
    pthread_mutex_t mu;
    TokState *head;  // every thread's state, freed by tokenizer_free
} StateList;

struct Tokenizer {
    int V;                  // max id + 1
    StrMap vocab;           // model vocab: token string (byte-level form) -> id
    char *dec;              // decoded bytes of every id, concatenated
    uint32_t *dec_off;      // [V + 1] id i decodes to dec[dec_off[i] .. dec_off[i+1])
    int byte_id[256];       // id of the single-byte token of each byte, -1 when absent
    char byte_char[256][4]; // byte-level character of each byte (UTF-8, NUL-terminated)
    MergeSlot *merges;      // [merge_mask + 1] pair -> (rank, new id)
    uint32_t merge_mask;
    AddedToken *added;      // [n_added]
    int n_added;
    unsigned char added_first[2][256];  // [normalized][byte]: some added token starts with it
    int n_kind[2];          // [normalized] how many added tokens of each kind
    int nfc;                // normalizer is NFC
    int ignore_merges;      // a whole word found in the vocab is one token
    pcre2_code *re;         // the Split pattern
    int jit;                // re is JIT-compiled
    char hash[65];
    pthread_key_t key;      // -> this thread's TokState
    StateList *states;
};

// Per-thread scratch: regex match data, the word cache and BPE work arrays.
#define CACHE_SLOTS (1u << 17)     // at most half used, then the cache is cleared
#define CACHE_MAX_WORD 256         // longer words are not cached
typedef struct {
    uint64_t h;       // 0 = empty
    uint32_t koff, ioff;
    uint16_t klen, ilen;
} CacheSlot;

typedef struct {
    int id, prev, next, len;  // len 0: merged into its left neighbour
} Sym;
typedef struct {
    int rank, pos, id;
} HeapItem;

struct TokState {
    TokState *next;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jstack;
    CacheSlot *slots;  // [CACHE_SLOTS]
    int used;
    char *kbuf;        // cached words, concatenated
    size_t klen, kcap;
    int *ibuf;         // their ids, concatenated
    size_t ilen, icap;
    Sym *sym;
    HeapItem *heap;
    int sym_cap, heap_cap;
};

// Output buffer of one encode call.
typedef struct {
    int *ids;
    size_t n, cap;
} Out;

static void out_push(Out *o, int id) {
    if (o->n == o->cap) {
        o->cap = o->cap ? o->cap * 2 : 256;
        o->ids = xrealloc(o->ids, o->cap * sizeof *o->ids);
    }
    o->ids[o->n++] = id;
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------

// GPT-2's bytes_to_unicode: printable Latin-1 bytes keep their code point, the other 68 bytes
// take 256, 257, ... in byte order.
static void byte_level_table(int32_t cp_of_byte[256]) {
    int extra = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        cp_of_byte[b] = printable ? b : 256 + extra++;
    }
}

static int char_byte[68];  // byte behind each byte-level character 256 .. 323
static pthread_once_t char_byte_once = PTHREAD_ONCE_INIT;

static void char_byte_init(void) {
    int32_t cpb[256];
    byte_level_table(cpb);
    for (int b = 0; b < 256; b++)
        if (cpb[b] >= 256) char_byte[cpb[b] - 256] = b;
}

// The byte behind a byte-level character, or -1 when cp is not one.
static int byte_of_char(int32_t cp) {
    if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return cp;
    if (cp < 256 || cp >= 256 + 68) return -1;
    pthread_once(&char_byte_once, char_byte_init);
    return char_byte[cp - 256];
}

// HF's ByteLevel decoder on one token string: the bytes behind its characters when every one is a
// byte-level character, else the string's own UTF-8. Appends to buf; returns the new length.
static size_t byte_level_decode(const char *s, size_t n, char *buf, size_t at) {
    size_t start = at;
    for (size_t i = 0; i < n;) {
        int k, b = byte_of_char(utf8_decode((const unsigned char *)s + i, &k));
        if (b < 0) {
            memcpy(buf + start, s, n);
            return start + n;
        }
        buf[at++] = (char)b;
        i += (size_t)k;
    }
    return at;
}

// Reads a whole file; gzip-compressed files (tokenizer.json.gz) are inflated transparently by zlib.
static int read_file(const char *path, char **data, size_t *n, SeerErr *err) {
    gzFile f = gzopen(path, "rb");
    if (!f) return seer_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 20, len = 0;
    *data = xmalloc(cap + 1);
    for (;;) {
        if (len == cap) *data = xrealloc(*data, (cap *= 2) + 1);
        size_t want = cap - len < (1u << 30) ? cap - len : (1u << 30);
        int got = gzread(f, *data + len, (unsigned)want);
        if (got < 0) {
            int zerr;
            SeerErr e;
            seer_fail(&e, "%s: cannot read: %s", path, gzerror(f, &zerr));
            gzclose(f);
            free(*data);
            *err = e;
            return -1;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    gzclose(f);
    (*data)[len] = 0;
    *n = len;
    return 0;
}

static int json_false_or_null(json_t *v) { return !v || json_is_null(v) || json_is_false(v); }
static int json_empty_or_null(json_t *v) {
    return !v || json_is_null(v) || (json_is_string(v) && !json_string_length(v));
}

static int load_vocab(Tokenizer *t, json_t *vocab, const char *path, SeerErr *err) {
    if (!json_is_object(vocab)) return seer_fail(err, "%s: model.vocab is not an object", path);
    strmap_init(&t->vocab, (int)json_object_size(vocab));
    const char *k;
    json_t *v;
    json_object_foreach(vocab, k, v) {
        json_int_t id = json_is_integer(v) ? json_integer_value(v) : -1;
        if (id < 0 || id >= (1 << 30)) return seer_fail(err, "%s: model.vocab[\"%s\"] is not a valid id", path, k);
        if (strmap_put(&t->vocab, k, strlen(k), (int)id) < 0)
            return seer_fail(err, "%s: model.vocab has \"%s\" twice", path, k);
        if ((int)id + 1 > t->V) t->V = (int)id + 1;
    }
    return 0;
}

// One merge entry: "a b" (older files) or ["a", "b"]. Fills the two halves.
static int merge_parts(json_t *m, const char **a, size_t *na, const char **b, size_t *nb) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ')) return -1;
        *a = s, *na = (size_t)(sp - s), *b = sp + 1, *nb = strlen(sp + 1);
        return 0;
    }
    if (json_is_array(m) && json_array_size(m) == 2 && json_is_string(json_array_get(m, 0)) &&
        json_is_string(json_array_get(m, 1))) {
        *a = json_string_value(json_array_get(m, 0)), *na = json_string_length(json_array_get(m, 0));
        *b = json_string_value(json_array_get(m, 1)), *nb = json_string_length(json_array_get(m, 1));
        return 0;
    }
    return -1;
}

// Merges as HF builds them: a map pair -> (rank = index, id of a+b); a later duplicate pair wins.
static int load_merges(Tokenizer *t, json_t *merges, const char *path, SeerErr *err) {
    if (!json_is_array(merges)) return seer_fail(err, "%s: model.merges is not an array", path);
    size_t n = json_array_size(merges);
    uint32_t size = 16;
    while (size < n * 2) size <<= 1;
    t->merges = xcalloc(size, sizeof *t->merges);
    t->merge_mask = size - 1;
    char *cat = NULL;
    size_t cat_cap = 0;
    for (size_t r = 0; r < n; r++) {
        const char *a, *b;
        size_t na, nb;
        if (merge_parts(json_array_get(merges, r), &a, &na, &b, &nb) < 0) {
            free(cat);
            return seer_fail(err, "%s: model.merges[%zu] is not a pair of tokens", path, r);
        }
        if (na + nb > cat_cap) cat = xrealloc(cat, cat_cap = 2 * (na + nb));
        memcpy(cat, a, na);
        memcpy(cat + na, b, nb);
        int ia = strmap_get(&t->vocab, a, na), ib = strmap_get(&t->vocab, b, nb);
        int ic = strmap_get(&t->vocab, cat, na + nb);
        if (ia < 0 || ib < 0 || ic < 0) {
            free(cat);
            return seer_fail(err, "%s: model.merges[%zu] (\"%.*s\" \"%.*s\") uses a token not in the vocab", path, r,
                             (int)na, a, (int)nb, b);
        }
        uint64_t key = merge_key(ia, ib);
        uint32_t i = merge_hash(key) & t->merge_mask;
        while (t->merges[i].key && t->merges[i].key != key) i = (i + 1) & t->merge_mask;
        t->merges[i] = (MergeSlot){key, (int32_t)r, ic};
    }
    free(cat);
    return 0;
}

static const MergeSlot *merge_find(const Tokenizer *t, int a, int b) {
    uint64_t key = merge_key(a, b);
    uint32_t i = merge_hash(key) & t->merge_mask;
    while (t->merges[i].key) {
        if (t->merges[i].key == key) return &t->merges[i];
        i = (i + 1) & t->merge_mask;
    }
    return NULL;
}

static int load_model(Tokenizer *t, json_t *model, const char *path, SeerErr *err) {
    if (!json_is_object(model)) return seer_fail(err, "%s: no \"model\" object", path);
    json_t *type = json_object_get(model, "type");
    if (type && (!json_is_string(type) || strcmp(json_string_value(type), "BPE")))
        return seer_fail(err, "%s: model.type is %s; only BPE is supported", path,
                         json_is_string(type) ? json_string_value(type) : "not a string");
    json_t *dropout = json_object_get(model, "dropout");
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0)
        return seer_fail(err, "%s: model.dropout is set; BPE dropout is not supported", path);
    if (!json_false_or_null(json_object_get(model, "byte_fallback")))
        return seer_fail(err, "%s: model.byte_fallback is true; only byte-level BPE is supported", path);
    if (!json_empty_or_null(json_object_get(model, "continuing_subword_prefix")) ||
        !json_empty_or_null(json_object_get(model, "end_of_word_suffix")))
        return seer_fail(err, "%s: model has a subword prefix/suffix; only byte-level BPE is supported", path);
    t->ignore_merges = json_is_true(json_object_get(model, "ignore_merges"));
    if (load_vocab(t, json_object_get(model, "vocab"), path, err) < 0) return -1;
    return load_merges(t, json_object_get(model, "merges"), path, err);
}

static int json_flag(json_t *o, const char *k) { return json_is_true(json_object_get(o, k)); }

// NFC of s[0..n) through utf8proc (malloc'd, length in *out_n), or NULL on failure.
static char *nfc_map(const char *s, size_t n, size_t *out_n) {
    utf8proc_uint8_t *out = NULL;
    utf8proc_ssize_t r = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)n, &out,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE);
    if (r < 0) return NULL;
    *out_n = (size_t)r;
    return (char *)out;
}

static int load_added(Tokenizer *t, json_t *added, const char *path, SeerErr *err) {
    if (!added || json_is_null(added)) return 0;
    if (!json_is_array(added)) return seer_fail(err, "%s: added_tokens is not an array", path);
    t->added = xcalloc(json_array_size(added) + 1, sizeof *t->added);
    size_t i;
    json_t *a;
    json_array_foreach(added, i, a) {
        json_t *id = json_object_get(a, "id"), *content = json_object_get(a, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) >= (1 << 30) ||
            !json_is_string(content))
            return seer_fail(err, "%s: added_tokens[%zu] needs an integer id and a string content", path, i);
        if (!json_string_length(content)) continue;  // HF ignores empty added tokens
        AddedToken *at = &t->added[t->n_added++];
        at->id = (int)json_integer_value(id);
        at->single_word = json_flag(a, "single_word");
        at->lstrip = json_flag(a, "lstrip");
        at->rstrip = json_flag(a, "rstrip");
        at->normalized = json_flag(a, "normalized");
        size_t n = json_string_length(content);
        at->content = memcpy(xmalloc(n + 1), json_string_value(content), n + 1);
        if (at->normalized && t->nfc) {
            size_t nn;
            char *norm = nfc_map(at->content, n, &nn);
            if (!norm) return seer_fail(err, "%s: added_tokens[%zu] cannot be normalised", path, i);
            free(at->content);
            at->content = norm;
            n = nn;
        }
        at->len = (int)n;
        t->added_first[at->normalized][(unsigned char)at->content[0]] = 1;
        t->n_kind[at->normalized]++;
        if (at->id + 1 > t->V) t->V = at->id + 1;
    }
    return 0;
}

static int load_normalizer(Tokenizer *t, json_t *norm, const char *path, SeerErr *err) {
    if (!norm || json_is_null(norm)) return 0;
    const char *type = json_string_value(json_object_get(norm, "type"));
    if (type && !strcmp(type, "Sequence")) {
        json_t *list = json_object_get(norm, "normalizers");
        if (json_is_array(list) && json_array_size(list) == 0) return 0;
        if (json_is_array(list) && json_array_size(list) == 1)
            return load_normalizer(t, json_array_get(list, 0), path, err);
    }
    if (!type || strcmp(type, "NFC"))
        return seer_fail(err, "%s: normalizer %s is not supported (only NFC or none)", path, type ? type : "?");
    t->nfc = 1;
    return 0;
}

// Rewrites an Oniguruma pattern for PCRE2: \s -> [\s\x{85}] (inside a class: \s\x{85}),
// \S -> [^\s\x{85}]. Returns a malloc'd pattern, or NULL for constructs that differ and are not
// handled (\S or \h inside a class, \h/\H anywhere).
static char *regex_translate(const char *p) {
    size_t n = strlen(p);
    char *out = xmalloc(n * 12 + 1), *o = out;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\\' && i + 1 < n) {
            char c = p[++i];
            if (c == 's') o += sprintf(o, in_class ? "\\s\\x{85}" : "[\\s\\x{85}]");
            else if (c == 'S' && !in_class) o += sprintf(o, "[^\\s\\x{85}]");
            else if (c == 'S' || c == 'h' || c == 'H') {
                free(out);
                return NULL;
            } else *o++ = '\\', *o++ = c;
            continue;
        }
        if (p[i] == '[' && !in_class) in_class = 1;
        else if (p[i] == ']' && in_class) in_class = 0;
        *o++ = p[i];
        if (in_class == 1 && p[i] == '[') {  // a ']' or '^]' right after '[' is literal
            if (p[i + 1] == '^') *o++ = p[++i];
            if (p[i + 1] == ']') *o++ = p[++i];
            in_class = 2;
        }
    }
    *o = 0;
    return out;
}

static int load_regex(Tokenizer *t, const char *pattern, const char *path, SeerErr *err) {
    char *pat = regex_translate(pattern);
    if (!pat) return seer_fail(err, "%s: the split regex uses \\h or \\S in a class, which is not supported", path);
    int code;
    PCRE2_SIZE off;
    t->re = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &off, NULL);
    free(pat);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return seer_fail(err, "%s: split regex does not compile at offset %zu: %s", path, (size_t)off, (char *)msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

// Supported: Sequence[Split(Regex, Isolated), ByteLevel(no prefix space, no regex)].
static int load_pretokenizer(Tokenizer *t, json_t *pt, const char *path, SeerErr *err) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    json_t *list = json_object_get(pt, "pretokenizers");
    json_t *split = json_array_get(list, 0), *bl = json_array_get(list, 1);
    const char *st = json_string_value(json_object_get(split, "type"));
    const char *bt = json_string_value(json_object_get(bl, "type"));
    const char *behavior = json_string_value(json_object_get(split, "behavior"));
    const char *regex = json_string_value(json_object_get(json_object_get(split, "pattern"), "Regex"));
    if (!type || strcmp(type, "Sequence") || json_array_size(list) != 2 || !st || strcmp(st, "Split") || !bt ||
        strcmp(bt, "ByteLevel"))
        return seer_fail(err, "%s: pre_tokenizer is not Sequence[Split, ByteLevel] (the Qwen2/Qwen3 kind)", path);
    if (!regex || !behavior || strcmp(behavior, "Isolated") || json_flag(split, "invert"))
        return seer_fail(err, "%s: pre_tokenizer Split must be a Regex with behavior Isolated, not inverted", path);
    if (json_flag(bl, "add_prefix_space") || json_flag(bl, "use_regex"))
        return seer_fail(err, "%s: pre_tokenizer ByteLevel with add_prefix_space or use_regex is not supported", path);
    return load_regex(t, regex, path, err);
}

static void load_byte_ids(Tokenizer *t) {
    int32_t cpb[256];
    byte_level_table(cpb);
    for (int b = 0; b < 256; b++) {
        char *c = t->byte_char[b];
        c[utf8_encode(cpb[b], c)] = 0;
        t->byte_id[b] = strmap_get(&t->vocab, c, strlen(c));
    }
}

// Decoded bytes of every id: added tokens (they win, as in HF) and vocab entries through the
// ByteLevel decoder rule.
static void load_decode_table(Tokenizer *t) {
    const char **str = xcalloc((size_t)t->V, sizeof *str);
    uint32_t *len = xcalloc((size_t)t->V, sizeof *len);
    size_t total = 0;
    for (int e = 0; e < t->vocab.n; e++) str[t->vocab.val[e]] = strmap_key(&t->vocab, e), len[t->vocab.val[e]] = t->vocab.klen[e];
    for (int i = 0; i < t->n_added; i++) str[t->added[i].id] = t->added[i].content, len[t->added[i].id] = (uint32_t)t->added[i].len;
    for (int i = 0; i < t->V; i++) total += len[i];
    t->dec = xmalloc(total + 1);
    t->dec_off = xmalloc(((size_t)t->V + 1) * sizeof *t->dec_off);
    size_t at = 0;
    for (int i = 0; i < t->V; i++) {
        t->dec_off[i] = (uint32_t)at;
        if (str[i]) at = byte_level_decode(str[i], len[i], t->dec, at);
    }
    t->dec_off[t->V] = (uint32_t)at;
    free(str);
    free(len);
}

static int load_json(Tokenizer *t, json_t *root, const char *path, SeerErr *err) {
    if (!json_is_object(root)) return seer_fail(err, "%s: top level is not an object", path);
    if (load_normalizer(t, json_object_get(root, "normalizer"), path, err) < 0) return -1;
    if (load_pretokenizer(t, json_object_get(root, "pre_tokenizer"), path, err) < 0) return -1;
    json_t *dec = json_object_get(root, "decoder");
    const char *dt = json_string_value(json_object_get(dec, "type"));
    if (!dt || strcmp(dt, "ByteLevel")) return seer_fail(err, "%s: decoder is not ByteLevel", path);
    if (load_model(t, json_object_get(root, "model"), path, err) < 0) return -1;
    if (load_added(t, json_object_get(root, "added_tokens"), path, err) < 0) return -1;
    load_byte_ids(t);
    load_decode_table(t);
    return 0;
}

static void state_free(TokState *st) {
    pcre2_match_data_free(st->md);
    pcre2_match_context_free(st->mctx);
    pcre2_jit_stack_free(st->jstack);
    free(st->slots);
    free(st->kbuf);
    free(st->ibuf);
    free(st->sym);
    free(st->heap);
    free(st);
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->states) {
        pthread_key_delete(t->key);
        for (TokState *s = t->states->head, *nx; s; s = nx) nx = s->next, state_free(s);
        pthread_mutex_destroy(&t->states->mu);
        free(t->states);
    }
    if (t->vocab.slot) strmap_free(&t->vocab);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->merges);
    free(t->dec);
    free(t->dec_off);
    pcre2_code_free(t->re);
    free(t);
}

Tokenizer *tokenizer_load(const char *path, SeerErr *err) {
    char file[4096];
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(file, sizeof file, "%s/tokenizer.json", path);
        if (access(file, R_OK) != 0) snprintf(file, sizeof file, "%s/tokenizer.json.gz", path);
    } else {
        snprintf(file, sizeof file, "%s", path);
    }
    char *data = NULL;
    size_t n = 0;
    if (read_file(file, &data, &n, err) < 0) return NULL;
    Tokenizer *t = xcalloc(1, sizeof *t);
    tokenizer_sha256(data, n, t->hash);
    json_error_t je;
    json_t *root = json_loadb(data, n, 0, &je);
    free(data);
    if (!root) {
        seer_fail(err, "%s:%d:%d: invalid JSON: %s", file, je.line, je.column, je.text);
        tokenizer_free(t);
        return NULL;
    }
    int rc = load_json(t, root, file, err);
    json_decref(root);
    if (rc < 0) {
        tokenizer_free(t);
        return NULL;
    }
    t->states = xcalloc(1, sizeof *t->states);
    pthread_mutex_init(&t->states->mu, NULL);
    if (pthread_key_create(&t->key, NULL)) {
        free(t->states);
        t->states = NULL;
        tokenizer_free(t);
        seer_fail(err, "%s: out of thread-local keys", file);
        return NULL;
    }
    return t;
}

// ---------------------------------------------------------------------------------------------
// Per-thread state
// ---------------------------------------------------------------------------------------------

static TokState *state_get(const Tokenizer *t) {
    TokState *st = pthread_getspecific(t->key);
    if (st) return st;
    st = xcalloc(1, sizeof *st);
    st->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    st->mctx = pcre2_match_context_create(NULL);
    if (t->jit) {
        st->jstack = pcre2_jit_stack_create(32 << 10, 8 << 20, NULL);
        pcre2_jit_stack_assign(st->mctx, NULL, st->jstack);
    }
    st->slots = xcalloc(CACHE_SLOTS, sizeof *st->slots);
    pthread_mutex_lock(&t->states->mu);
    st->next = t->states->head;
    t->states->head = st;
    pthread_mutex_unlock(&t->states->mu);
    pthread_setspecific(t->key, st);
    return st;
}

static void cache_clear(TokState *st) {
    memset(st->slots, 0, CACHE_SLOTS * sizeof *st->slots);
    st->used = 0;
    st->klen = st->ilen = 0;
}

// Appends the cached ids of word w to o; returns 1 on a hit.
static int cache_get(TokState *st, uint64_t h, const char *w, size_t n, Out *o) {
    for (uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);; i = (i + 1) & (CACHE_SLOTS - 1)) {
        CacheSlot *s = &st->slots[i];
        if (!s->h) return 0;
        if (s->h == h && s->klen == n && !memcmp(st->kbuf + s->koff, w, n)) {
            for (int k = 0; k < s->ilen; k++) out_push(o, st->ibuf[s->ioff + k]);
            return 1;
        }
    }
}

static void cache_put(TokState *st, uint64_t h, const char *w, size_t n, const int *ids, size_t nids) {
    if (nids > 0xFFFF) return;
    if ((uint32_t)st->used * 2 >= CACHE_SLOTS) cache_clear(st);
    if (st->klen + n > st->kcap) st->kbuf = xrealloc(st->kbuf, st->kcap = 2 * (st->klen + n) + 4096);
    if (st->ilen + nids > st->icap) st->ibuf = xrealloc(st->ibuf, (st->icap = 2 * (st->ilen + nids) + 1024) * sizeof(int));
    uint32_t i = (uint32_t)h & (CACHE_SLOTS - 1);
    while (st->slots[i].h) i = (i + 1) & (CACHE_SLOTS - 1);
    st->slots[i] = (CacheSlot){h, (uint32_t)st->klen, (uint32_t)st->ilen, (uint16_t)n, (uint16_t)nids};
    memcpy(st->kbuf + st->klen, w, n);
    memcpy(st->ibuf + st->ilen, ids, nids * sizeof(int));
    st->klen += n;
    st->ilen += nids;
    st->used++;
}

// ---------------------------------------------------------------------------------------------
// BPE on one word
// ---------------------------------------------------------------------------------------------

static int heap_less(HeapItem a, HeapItem b) { return a.rank < b.rank || (a.rank == b.rank && a.pos < b.pos); }

static void heap_push(TokState *st, int *n, HeapItem it) {
    if (*n == st->heap_cap) st->heap = xrealloc(st->heap, (size_t)(st->heap_cap = 2 * st->heap_cap + 64) * sizeof *st->heap);
    int i = (*n)++;
    while (i > 0 && heap_less(it, st->heap[(i - 1) / 2])) st->heap[i] = st->heap[(i - 1) / 2], i = (i - 1) / 2;
    st->heap[i] = it;
}

static HeapItem heap_pop(TokState *st, int *n) {
    HeapItem top = st->heap[0], last = st->heap[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && heap_less(st->heap[c + 1], st->heap[c])) c++;
        if (!heap_less(st->heap[c], last)) break;
        st->heap[i] = st->heap[c], i = c;
    }
    if (*n > 0) st->heap[i] = last;
    return top;
}

static void push_pair(const Tokenizer *t, TokState *st, int *nheap, int pos) {
    int nx = st->sym[pos].next;
    if (nx < 0) return;
    const MergeSlot *m = merge_find(t, st->sym[pos].id, st->sym[nx].id);
    if (m) heap_push(st, nheap, (HeapItem){m->rank, pos, m->id});
}

// Merges the bytes of w[0..n) into tokens; appends their ids to o. Bytes without a single-byte
// token are dropped (HF without unk_token does the same).
static void bpe_word(const Tokenizer *t, TokState *st, const char *w, size_t n, Out *o) {
    if ((int)n > st->sym_cap) st->sym = xrealloc(st->sym, (size_t)(st->sym_cap = (int)n * 2) * sizeof *st->sym);
    int ns = 0, nheap = 0;
    for (size_t i = 0; i < n; i++) {
        int id = t->byte_id[(unsigned char)w[i]];
        if (id < 0) continue;
        st->sym[ns] = (Sym){id, ns - 1, ns + 1, 1};
        ns++;
    }
    if (!ns) return;
    st->sym[ns - 1].next = -1;
    for (int i = 0; i + 1 < ns; i++) push_pair(t, st, &nheap, i);
    while (nheap) {
        HeapItem top = heap_pop(st, &nheap);
        Sym *a = &st->sym[top.pos];
        if (!a->len || a->next < 0) continue;
        const MergeSlot *m = merge_find(t, a->id, st->sym[a->next].id);
        if (!m || m->id != top.id) continue;  // stale: this pair changed since it was pushed
        Sym *b = &st->sym[a->next];
        a->id = top.id;
        a->len += b->len;
        b->len = 0;
        a->next = b->next;
        if (a->next >= 0) st->sym[a->next].prev = top.pos;
        if (a->prev >= 0) push_pair(t, st, &nheap, a->prev);
        push_pair(t, st, &nheap, top.pos);
    }
    for (int i = 0; i >= 0; i = st->sym[i].next) out_push(o, st->sym[i].id);
}

// A word found whole in the vocab (ignore_merges): its id, or -1.
static int whole_word_id(const Tokenizer *t, const char *w, size_t n) {
    char buf[4 * CACHE_MAX_WORD];
    size_t k = 0;
    if (n > CACHE_MAX_WORD) return -1;
    for (size_t i = 0; i < n; i++) {
        const char *c = t->byte_char[(unsigned char)w[i]];
        size_t cl = strlen(c);
        memcpy(buf + k, c, cl);
        k += cl;
    }
    return strmap_get(&t->vocab, buf, k);
}

static void encode_word(const Tokenizer *t, TokState *st, const char *w, size_t n, Out *o) {
    if (t->ignore_merges) {
        int id = whole_word_id(t, w, n);
        if (id >= 0) return out_push(o, id);
    }
    if (n > CACHE_MAX_WORD) return bpe_word(t, st, w, n, o);
    uint64_t h = hash_bytes(w, n);
    if (cache_get(st, h, w, n, o)) return;
    size_t start = o->n;
    bpe_word(t, st, w, n, o);
    cache_put(st, h, w, n, o->ids + start, o->n - start);
}

// ---------------------------------------------------------------------------------------------
// Encoding: added tokens, normalisation, pre-tokenisation
// ---------------------------------------------------------------------------------------------

// Pre-tokenises s[0..n) with the Split regex (Isolated: matches and the gaps between them are
// words; an empty match only splits) and encodes every word.
static int encode_words(const Tokenizer *t, TokState *st, const char *s, size_t n, Out *o, SeerErr *err) {
    size_t gap = 0, pos = 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(st->md);
    while (pos < n) {
        int rc = t->jit ? pcre2_jit_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, st->md, st->mctx)
                        : pcre2_match(t->re, (PCRE2_SPTR)s, n, pos, PCRE2_NO_UTF_CHECK, st->md, st->mctx);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return seer_fail(err, "split regex failed at byte %zu of a %zu-byte piece: %s", pos, n, (char *)msg);
        }
        size_t s0 = ov[0], e0 = ov[1];
        if (s0 > gap) encode_word(t, st, s + gap, s0 - gap, o);
        gap = s0;
        if (e0 == s0) {  // empty match: a split point; step over one character
            int k = 1;
            if (s0 < n) utf8_decode((const unsigned char *)s + s0, &k);
            pos = s0 + (size_t)k;
            continue;
        }
        encode_word(t, st, s + s0, e0 - s0, o);
        gap = pos = e0;
    }
    if (gap < n) encode_word(t, st, s + gap, n - gap, o);
    return 0;
}

// Longest added token (of the given normalized kind) starting at s[i]; NULL when none.
static const AddedToken *added_at(const Tokenizer *t, int normalized, const char *s, size_t n, size_t i) {
    const AddedToken *best = NULL;
    for (int k = 0; k < t->n_added; k++) {
        const AddedToken *a = &t->added[k];
        if (a->normalized == normalized && (size_t)a->len <= n - i && (!best || a->len > best->len) &&
            !memcmp(s + i, a->content, (size_t)a->len))
            best = a;
    }
    return best;
}

static int encode_normalized(const Tokenizer *t, TokState *st, const char *s, size_t n, Out *o, SeerErr *err);

// Splits s[0..n) on added tokens of one kind (leftmost-longest, non-overlapping, then HF's
// single_word / lstrip / rstrip rules); the gaps go on to the next stage.
static int split_added(const Tokenizer *t, TokState *st, int normalized, const char *s, size_t n, Out *o,
                       SeerErr *err) {
    const unsigned char *u = (const unsigned char *)s;
    size_t done = 0;  // HF's start_offset: end of the last emitted piece
    for (size_t i = 0; i < n && t->n_kind[normalized];) {
        const AddedToken *a = t->added_first[normalized][u[i]] ? added_at(t, normalized, s, n, i) : NULL;
        if (!a) {
            i++;
            continue;
        }
        size_t start = i, stop = i + (size_t)a->len;
        i = stop;
        if (a->single_word && ((start > 0 && is_word_char(utf8_last(u, start))) ||
                               (stop < n && is_word_char(utf8_decode(u + stop, &(int){0})))))
            continue;
        if (a->lstrip) {
            size_t ns = start;
            while (ns > 0 && is_white_space(utf8_last(u, ns))) {
                ns--;
                while (ns > 0 && (u[ns] & 0xC0) == 0x80) ns--;
            }
            start = ns > done ? ns : done;
        }
        while (a->rstrip && stop < n) {
            int k;
            if (!is_white_space(utf8_decode(u + stop, &k))) break;
            stop += (size_t)k;
        }
        if (done < start) {
            int rc = normalized ? encode_words(t, st, s + done, start - done, o, err)
                                : encode_normalized(t, st, s + done, start - done, o, err);
            if (rc < 0) return -1;
        }
        out_push(o, a->id);
        done = stop;
    }
    if (done >= n) return 0;
    return normalized ? encode_words(t, st, s + done, n - done, o, err)
                      : encode_normalized(t, st, s + done, n - done, o, err);
}

// NFC-normalises one piece (text below U+0300 is already NFC and is passed through), then splits
// out normalized added tokens and pre-tokenises the rest.
static int encode_normalized(const Tokenizer *t, TokState *st, const char *s, size_t n, Out *o, SeerErr *err) {
    int need = 0;
    if (t->nfc)
        for (size_t i = 0; i < n && !need; i++) need = (unsigned char)s[i] >= 0xCC;
    if (!need) return split_added(t, st, 1, s, n, o, err);
    size_t nn;
    char *norm = nfc_map(s, n, &nn);
    if (!norm) return seer_fail(err, "NFC normalisation failed");
    int rc = split_added(t, st, 1, norm, nn, o, err);
    free(norm);
    return rc;
}

int tokenizer_encode(const Tokenizer *tok, const char *text, size_t len, int **ids, size_t *cap, SeerErr *err) {
    size_t bad;
    if (utf8_check(text, len, &bad) < 0) return seer_fail(err, "invalid UTF-8 at byte %zu", bad);
    Out o = {*ids, 0, *cap};
    int rc = split_added(tok, state_get(tok), 0, text, len, &o, err);
    *ids = o.ids;
    *cap = o.cap;
    if (rc < 0) return -1;
    if (o.n > (size_t)INT32_MAX) return seer_fail(err, "text of %zu bytes gives more than 2^31 tokens", len);
    return (int)o.n;
}

// ---------------------------------------------------------------------------------------------
// Decoding and lookups
// ---------------------------------------------------------------------------------------------

char *tokenizer_decode(const Tokenizer *tok, const int *ids, int n, size_t *out_len) {
    size_t raw_n = 0;
    for (int i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < tok->V) raw_n += tok->dec_off[ids[i] + 1] - tok->dec_off[ids[i]];
    unsigned char *raw = xmalloc(raw_n + 1);
    size_t k = 0;
    for (int i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= tok->V) continue;
        uint32_t a = tok->dec_off[ids[i]], b = tok->dec_off[ids[i] + 1];
        memcpy(raw + k, tok->dec + a, b - a);
        k += b - a;
    }
    // from_utf8_lossy: each maximal invalid prefix becomes U+FFFD (3 bytes, never more than 3x).
    char *out = xmalloc(3 * raw_n + 1);
    size_t j = 0;
    for (size_t i = 0; i < raw_n;) {
        int maximal, len = utf8_seq_len(raw + i, raw_n - i, &maximal);
        if (len) {
            memcpy(out + j, raw + i, (size_t)len);
            j += (size_t)len, i += (size_t)len;
        } else {
            memcpy(out + j, "\xEF\xBF\xBD", 3);
            j += 3, i += (size_t)maximal;
        }
    }
    free(raw);
    out[j] = 0;
    if (out_len) *out_len = j;
    return out;
}

int tokenizer_token_id(const Tokenizer *tok, const char *token) {
    size_t n = strlen(token);
    for (int i = 0; i < tok->n_added; i++)
        if ((size_t)tok->added[i].len == n && !memcmp(tok->added[i].content, token, n)) return tok->added[i].id;
    return strmap_get(&tok->vocab, token, n);
}

int tokenizer_vocab_size(const Tokenizer *tok) { return tok->V; }

const char *tokenizer_hash(const Tokenizer *tok) { return tok->hash; }
