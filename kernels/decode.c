// decode.c: CPU references, host-side validation and the split heuristic of decode.h.
#include "kernels/decode.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

DecodeParams decode_params_contiguous(const void *q, const void *k, const void *v, void *out,
                                      const int32_t *cache_len, const int32_t *block_idx,
                                      int B, int H, int HKV, int HD, int Tmax, int max_sel,
                                      SeerDType dtype) {
    DecodeParams p;
    memset(&p, 0, sizeof p);
    p.q = q, p.k = k, p.v = v, p.out = out, p.cache_len = cache_len, p.block_idx = block_idx;
    p.q_sh = HD, p.q_sb = (int64_t)H * HD;
    p.o_sh = HD, p.o_sb = (int64_t)H * HD;
    p.k_st = p.v_st = HD;
    p.k_sh = p.v_sh = (int64_t)Tmax * HD;
    p.k_sb = p.v_sb = (int64_t)HKV * Tmax * HD;
    p.max_sel = block_idx ? max_sel : 0;
    p.idx_sh = p.max_sel, p.idx_sb = (int64_t)HKV * p.max_sel;
    p.B = B, p.H = H, p.HKV = HKV, p.HD = HD, p.Tmax = Tmax;
    p.n_split = 1;
    p.scale = 1.0f / sqrtf((float)HD);
    p.dtype = dtype;
    return p;
}

int decode_num_splits(int pairs, int tiles, int n_sm, int ctas_per_sm, int min_tiles,
                      int max_splits) {
    int slots = n_sm * ctas_per_sm;
    if (pairs <= 0 || tiles <= 0 || slots <= 0) return 1;
    int cap = tiles / (min_tiles > 0 ? min_tiles : 1);
    if (cap > max_splits) cap = max_splits;
    if (cap < 1) cap = 1;
    double eff[cap + 1], best = 0;
    for (int s = 1; s <= cap; s++) {
        int64_t programs = (int64_t)pairs * s;
        int64_t waves = (programs + slots - 1) / slots;
        eff[s] = (double)programs / (double)(waves * slots);
        if (eff[s] > best) best = eff[s];
    }
    for (int s = 1; s <= cap; s++)
        if (eff[s] >= 0.95) return s;
    for (int s = 1; s <= cap; s++)
        if (eff[s] == best) return s;
    return 1;
}

int decode_queue_splits(int max_tiles, int tiles_per_unit) {
    if (max_tiles <= 0 || tiles_per_unit <= 0) return 1;
    int s = ceil_div(max_tiles, tiles_per_unit);
    return s < 1 ? 1 : s > 64 ? 64 : s;
}

static const int32_t *pair_list(const DecodeParams *p, const int32_t *idx, int b, int kvh) {
    return idx + b * p->idx_sb + kvh * p->idx_sh;
}

int decode_pair_tiles(const DecodeParams *p, int b, int kvh) {
    if (!p->block_idx) return ceil_div(p->cache_len[b], SEER_BLOCK);
    const int32_t *list = pair_list(p, p->block_idx, b, kvh);
    int n = 0;
    while (n < p->max_sel && list[n] >= 0) n++;
    return n;
}

static int validate_dims(const DecodeParams *p, SeerErr *err) {
    if (p->B <= 0 || p->H <= 0 || p->HKV <= 0 || p->HD <= 0 || p->Tmax <= 0)
        return seer_fail(err, "decode: dimensions must be positive (B %d H %d HKV %d HD %d Tmax %d)",
                         p->B, p->H, p->HKV, p->HD, p->Tmax);
    if (p->H % p->HKV)
        return seer_fail(err, "decode: H %d is not a multiple of HKV %d", p->H, p->HKV);
    if (p->dtype != SEER_BF16 && p->dtype != SEER_F16 && p->dtype != SEER_F32)
        return seer_fail(err, "decode: unsupported dtype %d", (int)p->dtype);
    if (p->n_split < 1) return seer_fail(err, "decode: n_split %d < 1", p->n_split);
    if (p->n_split > 1 && (!p->o_part || !p->lse_part))
        return seer_fail(err, "decode: n_split %d needs the o_part/lse_part workspace", p->n_split);
    if (p->q_sh < p->HD || p->o_sh < p->HD || p->k_st < p->HD || p->v_st < p->HD ||
        p->q_sb < (int64_t)p->H * p->q_sh || p->o_sb < (int64_t)p->H * p->o_sh ||
        p->k_sh < (int64_t)p->Tmax * p->k_st || p->v_sh < (int64_t)p->Tmax * p->v_st ||
        p->k_sb < (int64_t)p->HKV * p->k_sh || p->v_sb < (int64_t)p->HKV * p->v_sh)
        return seer_fail(err, "decode: a stride is smaller than the rows it steps over");
    if (p->queue && p->n_prog < 0) return seer_fail(err, "decode: n_prog %d < 0", p->n_prog);
    if (p->block_idx && (p->max_sel <= 0 || p->idx_sh < p->max_sel ||
                         p->idx_sb < (int64_t)p->HKV * p->idx_sh))
        return seer_fail(err, "decode: block_idx needs max_sel > 0 and strides >= max_sel (max_sel %d)",
                         p->max_sel);
    return 0;
}

static int validate_list(const DecodeParams *p, const int32_t *list, int len, int b, int kvh,
                         SeerErr *err) {
    int nb = ceil_div(len, SEER_BLOCK);
    for (int i = 0; i < p->max_sel; i++) {
        int32_t j = list[i];
        if (j < -1 || j >= nb)
            return seer_fail(err, "decode: block_idx[%d, %d, %d] = %d is out of range [0, %d) "
                             "for cache length %d", b, kvh, i, j, nb, len);
        if (i == 0) continue;
        int32_t prev = list[i - 1];
        if (prev == -1 && j != -1)
            return seer_fail(err, "decode: block_idx[%d, %d, %d] = %d follows -1 padding", b, kvh,
                             i, j);
        if (j != -1 && j >= prev)
            return seer_fail(err, "decode: block_idx[%d, %d, %d..%d] = %d, %d is not strictly "
                             "descending (sorted descending, no duplicates)", b, kvh, i - 1, i,
                             prev, j);
    }
    return 0;
}

int decode_validate(const DecodeParams *p, const int32_t *cache_len_host,
                    const int32_t *block_idx_host, SeerErr *err) {
    if (validate_dims(p, err)) return -1;
    for (int b = 0; b < p->B; b++)
        if (cache_len_host[b] < 0 || cache_len_host[b] > p->Tmax)
            return seer_fail(err, "decode: cache_len[%d] = %d is outside the cache [0, %d]", b,
                             cache_len_host[b], p->Tmax);
    if (!p->block_idx) return 0;
    if (!block_idx_host) return seer_fail(err, "decode: sparse launch without a host copy of block_idx");
    for (int b = 0; b < p->B; b++)
        for (int kvh = 0; kvh < p->HKV; kvh++)
            if (validate_list(p, pair_list(p, block_idx_host, b, kvh), cache_len_host[b], b, kvh,
                              err))
                return -1;
    return 0;
}

static float load_elem(const void *base, int64_t i, SeerDType t) {
    const uint16_t *h = (const uint16_t *)base;
    switch (t) {
    case SEER_F32: return ((const float *)base)[i];
    case SEER_F16: return f16_to_f32(h[i]);
    default: return bf16_to_f32(h[i]);
    }
}

static void store_elem(void *base, int64_t i, float x, SeerDType t) {
    switch (t) {
    case SEER_F32: ((float *)base)[i] = x; break;
    case SEER_F16: ((uint16_t *)base)[i] = f32_to_f16(x); break;
    default: ((uint16_t *)base)[i] = f32_to_bf16(x); break;
    }
}

// Block of tile t of pair (b, kvh): t itself when dense, the t-th list entry when sparse.
static int tile_block(const DecodeParams *p, int b, int kvh, int t) {
    return p->block_idx ? pair_list(p, p->block_idx, b, kvh)[t] : t;
}

// Scores of the query against the valid keys [i0, i1) of one block, scaled; returns their max.
static float tile_scores(const DecodeParams *p, int b, int kvh, const float *q /* [HD] */, int i0,
                         int i1, float *sc /* [64] */) {
    float mx = -INFINITY;
    for (int i = i0; i < i1; i++) {
        int64_t ko = b * p->k_sb + kvh * p->k_sh + i * p->k_st;
        float x = 0;
        for (int d = 0; d < p->HD; d++) x += q[d] * load_elem(p->k, ko + d, p->dtype);
        sc[i - i0] = x * p->scale;
        if (sc[i - i0] > mx) mx = sc[i - i0];
    }
    return mx;
}

// One (b, query head h, split s): online softmax over the split's tiles, fp32, one rescale per
// 64-key tile (as the CUDA kernel does). scratch: [2*HD + 64] floats.
static void split_one(const DecodeParams *p, int b, int h, int s, float *scratch) {
    int kvh = h / (p->H / p->HKV), len = p->cache_len[b], HD = p->HD, t0, t1;
    float *acc = scratch, *q = scratch + HD, *sc = scratch + 2 * HD;  // [HD] [HD] [64]
    decode_split_range(decode_pair_tiles(p, b, kvh), p->n_split, s, &t0, &t1);
    const int64_t qo = b * p->q_sb + h * p->q_sh;
    for (int d = 0; d < HD; d++) acc[d] = 0, q[d] = load_elem(p->q, qo + d, p->dtype);
    float m = -INFINITY, l = 0;
    for (int t = t0; t < t1; t++) {
        int i0 = tile_block(p, b, kvh, t) * SEER_BLOCK, i1 = i0 + SEER_BLOCK < len ? i0 + SEER_BLOCK : len;
        if (i1 <= i0) continue;
        float m_new = fmaxf(m, tile_scores(p, b, kvh, q, i0, i1, sc)), corr = expf(m - m_new);
        l *= corr;
        for (int d = 0; d < HD; d++) acc[d] *= corr;
        for (int i = i0; i < i1; i++) {
            float w = expf(sc[i - i0] - m_new);
            int64_t vo = b * p->v_sb + kvh * p->v_sh + i * p->v_st;
            l += w;
            for (int d = 0; d < HD; d++) acc[d] += w * load_elem(p->v, vo + d, p->dtype);
        }
        m = m_new;
    }
    int64_t ws = ((int64_t)b * p->H + h) * p->n_split + s;
    for (int d = 0; d < HD; d++) p->o_part[ws * HD + d] = l > 0 ? acc[d] / l : 0.0f;
    p->lse_part[ws] = l > 0 ? m + logf(l) : -INFINITY;
}

void decode_split_cpu(const DecodeParams *p) {
#pragma omp parallel
    {
        float *scratch = xmalloc(sizeof(float) * (2 * (size_t)p->HD + SEER_BLOCK));
#pragma omp for collapse(3) schedule(dynamic)
        for (int b = 0; b < p->B; b++)
            for (int h = 0; h < p->H; h++)
                for (int s = 0; s < p->n_split; s++) split_one(p, b, h, s, scratch);
        free(scratch);
    }
}

void decode_combine_cpu(const DecodeParams *p) {
    int S = p->n_split, HD = p->HD;
#pragma omp parallel for collapse(2)
    for (int b = 0; b < p->B; b++)
        for (int h = 0; h < p->H; h++) {
            int64_t ws = ((int64_t)b * p->H + h) * S;
            float mx = -INFINITY;
            for (int s = 0; s < S; s++) mx = fmaxf(mx, p->lse_part[ws + s]);
            int64_t oo = b * p->o_sb + h * p->o_sh;
            for (int d = 0; d < HD; d++) {
                float num = 0, den = 0;
                for (int s = 0; s < S && mx > -INFINITY; s++) {
                    float w = expf(p->lse_part[ws + s] - mx);
                    num += w * p->o_part[(ws + s) * HD + d];
                    den += w;
                }
                store_elem(p->out, oo + d, den > 0 ? num / den : 0.0f, p->dtype);
            }
        }
}

void decode_attention_cpu(const DecodeParams *p) {
    decode_split_cpu(p);
    decode_combine_cpu(p);
}

// allowed[i] = 1 when token i < len lies in a selected block of pair (b, kvh).
static void allowed_tokens(const DecodeParams *p, int b, int kvh, unsigned char *allowed) {
    int len = p->cache_len[b];
    memset(allowed, 0, (size_t)p->Tmax);
    if (!p->block_idx) {
        memset(allowed, 1, (size_t)len);
        return;
    }
    int n = decode_pair_tiles(p, b, kvh);
    for (int t = 0; t < n; t++) {
        int blk = tile_block(p, b, kvh, t);
        for (int i = blk * SEER_BLOCK; i < blk * SEER_BLOCK + SEER_BLOCK && i < len; i++) allowed[i] = 1;
    }
}

void decode_reference_cpu(float *out_f32, const DecodeParams *p) {
    int G = p->H / p->HKV, HD = p->HD;
#pragma omp parallel
    {
        unsigned char *allowed = xmalloc((size_t)p->Tmax);
        double *logit = xmalloc(sizeof(double) * p->Tmax), *acc = xmalloc(sizeof(double) * HD);
#pragma omp for collapse(2)
        for (int b = 0; b < p->B; b++)
            for (int h = 0; h < p->H; h++) {
                int kvh = h / G, len = p->cache_len[b];
                allowed_tokens(p, b, kvh, allowed);
                double mx = -INFINITY, den = 0;
                for (int i = 0; i < len; i++) {
                    if (!allowed[i]) continue;
                    double x = 0;
                    for (int d = 0; d < HD; d++)
                        x += (double)load_elem(p->q, b * p->q_sb + h * p->q_sh + d, p->dtype) *
                             load_elem(p->k, b * p->k_sb + kvh * p->k_sh + i * p->k_st + d, p->dtype);
                    logit[i] = x * p->scale;
                    if (logit[i] > mx) mx = logit[i];
                }
                for (int d = 0; d < HD; d++) acc[d] = 0;
                for (int i = 0; i < len; i++) {
                    if (!allowed[i]) continue;
                    double w = exp(logit[i] - mx);
                    den += w;
                    for (int d = 0; d < HD; d++)
                        acc[d] += w * load_elem(p->v, b * p->v_sb + kvh * p->v_sh + i * p->v_st + d,
                                                p->dtype);
                }
                float *o = out_f32 + ((int64_t)b * p->H + h) * HD;
                for (int d = 0; d < HD; d++) o[d] = den > 0 ? (float)(acc[d] / den) : 0.0f;
            }
        free(allowed), free(logit), free(acc);
    }
}
