// tensor.h: element types and non-owning tensor views (e.g. into a memory-mapped checkpoint).
#pragma once
#include <stdint.h>
#include <string.h>

typedef enum { SEER_F32 = 0, SEER_F16 = 1, SEER_BF16 = 2 } SeerDType;

static inline size_t dtype_size(SeerDType t) { return t == SEER_F32 ? 4 : 2; }
static inline const char *dtype_name(SeerDType t) {
    return t == SEER_F32 ? "F32" : t == SEER_F16 ? "F16" : "BF16";
}

// A view of row-major data; `data` is not owned. ndim 0 means "absent" (e.g. no bias).
typedef struct {
    const void *data;
    SeerDType dtype;
    int ndim;
    int64_t shape[4];
} Tensor;

static inline int64_t tensor_numel(const Tensor *t) {
    int64_t n = t->ndim ? 1 : 0;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Round to nearest even; NaN stays NaN.
static inline uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
    if (exp == 0) {
        if (man == 0) {
            u = sign;
        } else {  // subnormal: renormalise
            exp = 127 - 15 + 1;
            while (!(man & 0x400u)) { man <<= 1; exp--; }
            u = sign | (exp << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        u = sign | 0x7f800000u | (man << 13);
    } else {
        u = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Round to nearest even, with overflow to inf and gradual underflow.
static inline uint16_t f32_to_f16(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u);
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);  // rounds to >= 65520: inf
    if (a < 0x38800000u) {                                     // subnormal or zero in f16
        float af;
        memcpy(&af, &a, 4);
        float scaled = af * 16777216.0f;  // 2^24: one f16 subnormal ulp becomes 1
        uint32_t m = (uint32_t)__builtin_nearbyintf(scaled);
        return (uint16_t)(sign | m);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1u);
    return (uint16_t)(sign | ((r - 0x38000000u) >> 13));
}

// fp8 E4M3 as NVIDIA's cvt (bias 7, no infinities, S.1111.111 NaN, largest finite 448): the
// K-compression cache's optional storage type (SelectConfig.kcomp_fp8).
static inline float e4m3_to_f32(uint8_t v) {
    uint32_t sign = (uint32_t)(v & 0x80u) << 24, exp = (v >> 3) & 0xfu, man = v & 7u, u;
    if (exp == 15 && man == 7) {
        u = sign | 0x7fc00000u;
    } else if (exp == 0) {  // subnormal: man * 2^-9
        float m = (float)man * (1.0f / 512.0f);
        memcpy(&u, &m, 4);
        u |= sign;
    } else {
        u = sign | ((exp + 127 - 7) << 23) | (man << 20);
    }
    float f;
    memcpy(&f, &u, 4);
    return f;
}

// Round to nearest even, saturating: everything beyond 448 (infinities too) becomes +-448; NaN
// stays NaN (cvt.rn.satfinite.e4m3x2.f32).
static inline uint8_t f32_to_e4m3(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7f;
    if (a >= 0x43e00000u) return sign | 0x7e;  // >= 448
    if (a < 0x3c800000u) {                     // below 2^-6: subnormal, one ulp = 2^-9
        float af;
        memcpy(&af, &a, 4);
        return sign | (uint8_t)__builtin_nearbyintf(af * 512.0f);
    }
    uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u);  // keep 3 mantissa bits
    return sign | (uint8_t)(((((r >> 23) & 0xffu) - 127 + 7) << 3) | ((r >> 20) & 7u));
}

// Element i of a tensor of any supported dtype, as fp32.
static inline float tensor_get(const Tensor *t, int64_t i) {
    switch (t->dtype) {
    case SEER_F32: return ((const float *)t->data)[i];
    case SEER_F16: return f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return bf16_to_f32(((const uint16_t *)t->data)[i]);
    }
}
