/* test_tensor — tensors, half/bfloat16 conversion, the allocation fault hook. */
#include "test.h"

#include <string.h>

#include "half.h"
#include "mem.h"
#include "tensor.h"

static void test_half_roundtrip(void) {
    /* every finite half converts to float and back unchanged */
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if (((h >> 10) & 0x1f) == 0x1f) continue;
        float f = half_to_f32((uint16_t)h);
        if (f32_to_half(f) != h) bad++;
    }
    CHECK_EQ_INT(bad, 0);
    CHECK_EQ_INT(half_to_f32(0x3c00), 1);
    CHECK(half_to_f32(0xc000) == -2.0f);
    CHECK(half_to_f32(0x0001) == 5.9604644775390625e-8f);
    /* ties round to even: 1 + 2^-11 is halfway between 1 and 1+2^-10 */
    CHECK_EQ_INT(f32_to_half(1.0f + 0x1p-11f), 0x3c00);
    CHECK_EQ_INT(f32_to_half(1.0f + 3 * 0x1p-11f), 0x3c02);
    CHECK_EQ_INT(f32_to_half(65520.0f), 0x7c00);
    CHECK_EQ_INT(f32_to_half(65504.0f), 0x7bff);
    CHECK_EQ_INT(f32_to_bf16(1.0f), 0x3f80);
    CHECK(bf16_to_f32(0x4049) == 3.140625f);
}

static void test_tensor_basics(void) {
    int64_t shape[3] = {2, 3, 4};
    tensor_t *t = tensor_new(TENSOR_DTYPE_F32, 3, shape);
    CHECK(t != NULL);
    CHECK_EQ_INT(tensor_nelem(t), 24);
    CHECK_EQ_INT(tensor_nbytes(t), 96);
    CHECK_EQ_INT(t->strides[0], 12);
    CHECK(tensor_is_contiguous(t));
    CHECK(tensor_shape_is(t, 3, shape));
    char buf[64];
    CHECK(strcmp(tensor_shape_str(t, buf, sizeof buf), "[2, 3, 4]") == 0);
    tensor_destroy(&t);
    CHECK(t == NULL);
    tensor_destroy(&t); /* NULL-safe */
}

static void test_alloc_failure(void) {
    int64_t shape[1] = {16};
    for (long i = 0; i < 2; i++) {
        mem_fail_after(i, false);
        tensor_t *t = tensor_new(TENSOR_DTYPE_F16, 1, shape);
        CHECK(t == NULL);
    }
    mem_fail_after(-1, false);
    tensor_t *t = tensor_new(TENSOR_DTYPE_F16, 1, shape);
    CHECK(t != NULL);
    tensor_destroy(&t);
}

int main(void) {
    test_half_roundtrip();
    test_tensor_basics();
    test_alloc_failure();
    return test_summary();
}
