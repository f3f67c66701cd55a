// test_common.c: dtype conversions and error formatting.
#include <math.h>
#include <string.h>

#include "common/common.h"
#include "common/tensor.h"
#include "tests/test.h"
#ifdef SEER_CUDA
#include "common/cuda_check.h"
#endif

static void test_bf16_roundtrip(void) {
    CHECK(bf16_to_f32(f32_to_bf16(1.0f)) == 1.0f);
    CHECK(bf16_to_f32(f32_to_bf16(-2.5f)) == -2.5f);
    CHECK_CLOSE(bf16_to_f32(f32_to_bf16(3.14159f)), 3.14159, 1e-2);
    CHECK(f32_to_bf16(1.00390625f) == 0x3f80);  // exactly halfway: rounds to even
    float nan = bf16_to_f32(f32_to_bf16(NAN));
    CHECK(nan != nan);
}

static void test_f16_roundtrip(void) {
    float vals[] = {0.0f, 1.0f, -1.5f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.333333f};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
        CHECK_CLOSE(f16_to_f32(f32_to_f16(vals[i])), vals[i], 1e-3);
    CHECK(isinf(f16_to_f32(f32_to_f16(1e6f))));
    CHECK(f32_to_f16(1.0f) == 0x3c00);
}

// Every E4M3 byte decodes to the value its fields say and encodes back to itself; rounding is to
// nearest even, saturating at 448; NaN stays NaN.
static void test_e4m3(void) {
    for (int v = 0; v < 256; v++) {
        float f = e4m3_to_f32((uint8_t)v);
        int e = (v >> 3) & 15, m = v & 7;
        if (e == 15 && m == 7) {
            CHECK(isnan(f) && f32_to_e4m3(f) == (uint8_t)v);
            continue;
        }
        double want = (e ? (8 + m) * ldexp(1, e - 10) : m * ldexp(1, -9)) * (v & 0x80 ? -1 : 1);
        CHECK(f == (float)want);
        if (v != 0x80) CHECK(f32_to_e4m3(f) == (uint8_t)v);  // -0 encodes as 0x80 too
    }
    CHECK(f32_to_e4m3(1.0625f) == 0x38);            // halfway between 1 and 1.125: even (1)
    CHECK(f32_to_e4m3(1.1875f) == 0x3a);            // halfway between 1.125 and 1.25: even (1.25)
    CHECK(f32_to_e4m3(3.0f / 1024) == 0x02);        // subnormal halfway 1.5 * 2^-9: even (2 * 2^-9)
    CHECK(f32_to_e4m3(460.0f) == 0x7e && f32_to_e4m3(-INFINITY) == 0xfe);  // saturate to 448
    CHECK(f32_to_e4m3(0.0009f) == 0x00);            // below half the smallest subnormal
    CHECK(e4m3_to_f32(f32_to_e4m3(0.3f)) == 0.3125f);
}

static void test_error_message(void) {
    SeerErr e;
    CHECK(seer_fail(&e, "%s: bad %d", "x.json", 3) == -1);
    CHECK(!strcmp(e.msg, "x.json: bad 3"));
}

#ifdef SEER_CUDA
// With a GPU: its properties. Without one (CI): one line naming the caller and the reason.
static void test_cuda_current_device(void) {
    struct cudaDeviceProp prop;
    SeerErr err;
    if (cuda_current_device(&prop, "bench decode", &err) == 0)
        CHECK(prop.multiProcessorCount > 0);
    else
        CHECK(strncmp(err.msg, "bench decode: no usable CUDA device (", 37) == 0 && !strchr(err.msg, '\n'));
}
#endif

int main(void) {
    RUN(test_bf16_roundtrip);
    RUN(test_f16_roundtrip);
    RUN(test_e4m3);
    RUN(test_error_message);
#ifdef SEER_CUDA
    RUN(test_cuda_current_device);
#endif
    return test_summary();
}
