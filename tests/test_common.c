// test_common.c: dtype conversions and error formatting.
#include <string.h>

#include "common/common.h"
#include "common/tensor.h"
#include "tests/test.h"

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

static void test_error_message(void) {
    SeerErr e;
    CHECK(seer_fail(&e, "%s: bad %d", "x.json", 3) == -1);
    CHECK(!strcmp(e.msg, "x.json: bad 3"));
}

int main(void) {
    RUN(test_bf16_roundtrip);
    RUN(test_f16_roundtrip);
    RUN(test_error_message);
    return test_summary();
}
