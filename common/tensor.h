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

// Element i of a tensor of any supported dtype, as fp32.
static inline float tensor_get(const Tensor *t, int64_t i) {
    switch (t->dtype) {
    case SEER_F32: return ((const float *)t->data)[i];
    case SEER_F16: return f16_to_f32(((const uint16_t *)t->data)[i]);
    default: return bf16_to_f32(((const uint16_t *)t->data)[i]);
    }
}
