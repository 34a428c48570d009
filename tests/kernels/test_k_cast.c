/* test_k_cast — the fast cast (half.h's branch-free conversions, vectorised and threaded) is bit
 * for bit the reference (the scalar f32_to_half / f32_to_bf16) over a sweep of 2^24 float bit
 * patterns spread across the whole 32-bit range (every sign, exponent and rounding case; an
 * exhaustive run of all 2^32 agreed when the conversions were written), pins known values, and
 * _check rejects what it must. */
#include <stdlib.h>
#include <string.h>

#include "cast.h"
#include "err.h"
#include "half.h"
#include "ktest.h"
#include "test.h"

static void sweep(tensor_dtype_t dt) {
    const int64_t n = (int64_t)1 << 24;
    float *x = malloc((size_t)n * 4);
    uint16_t *y = malloc((size_t)n * 2), *yr = malloc((size_t)n * 2);
    for (int64_t i = 0; i < n; i++) { /* every value of the high 24 bits, the low 8 varied */
        const uint32_t b = (uint32_t)i * 256u + (uint32_t)((uint64_t)i * 2654435761u >> 24 & 0xffu);
        memcpy(&x[i], &b, 4);
    }
    k_cast_args a = {.n = n, .x = x, .y = y, .dtype = dt};
    CHECK_EQ_INT(k_cast_cpu(ktest_ctx(), &a), 0);
    a.y = yr;
    k_cast_ref(&a);
    int64_t bad = 0, first = -1;
    for (int64_t i = 0; i < n; i++)
        if (y[i] != yr[i] && !bad++) first = i;
    CHECK_MSG(bad == 0, "cast to %s: %lld of %lld differ from the reference (first: bits %08x and up gave %04x, not %04x)",
              tensor_dtype_name(dt), (long long)bad, (long long)n, first >= 0 ? (unsigned)first * 256u : 0u,
              first >= 0 ? y[first] : 0, first >= 0 ? yr[first] : 0);
    free(x), free(y), free(yr);
}

int main(void) {
    sweep(TENSOR_DTYPE_F16);
    sweep(TENSOR_DTYPE_BF16);
    /* known values: 1, a tie to even (1 + 2^-11 → 1), the smallest subnormal half, 65504, the
     * first value rounding past it (inf), a nan */
    const float x[] = {1.0f, 1.00048828125f, 5.9604644775390625e-8f, 65504.0f, 65520.0f, -2.0f};
    uint16_t h[6], b[6];
    float xn[7];
    memcpy(xn, x, sizeof x);
    uint32_t nan = 0x7fc12345u;
    memcpy(&xn[6], &nan, 4);
    k_cast_args a = {.n = 6, .x = x, .y = h, .dtype = TENSOR_DTYPE_F16};
    CHECK_EQ_INT(k_cast_cpu(ktest_ctx(), &a), 0);
    CHECK_EQ_INT(h[0], 0x3c00);
    CHECK_EQ_INT(h[1], 0x3c00);
    CHECK_EQ_INT(h[2], 0x0001);
    CHECK_EQ_INT(h[3], 0x7bff);
    CHECK_EQ_INT(h[4], 0x7c00);
    CHECK_EQ_INT(h[5], 0xc000);
    a = (k_cast_args){.n = 6, .x = x, .y = b, .dtype = TENSOR_DTYPE_BF16};
    CHECK_EQ_INT(k_cast_cpu(ktest_ctx(), &a), 0);
    CHECK_EQ_INT(b[0], 0x3f80);
    CHECK_EQ_INT(b[5], 0xc000);
    uint16_t hn;
    a = (k_cast_args){.n = 1, .x = &xn[6], .y = &hn, .dtype = TENSOR_DTYPE_F16};
    CHECK_EQ_INT(k_cast_cpu(ktest_ctx(), &a), 0);
    CHECK_EQ_INT(hn, 0x7e00); /* the quiet nan, payload dropped */
    float f[2];
    a = (k_cast_args){.n = 2, .x = x, .y = f, .dtype = TENSOR_DTYPE_F32};
    CHECK_EQ_INT(k_cast_cpu(ktest_ctx(), &a), 0);
    CHECK(f[0] == 1.0f && f[1] == x[1]);

    char err[HIRED_ERR_LEN];
    a = (k_cast_args){.n = 2, .x = x, .y = h, .dtype = TENSOR_DTYPE_F16};
    CHECK_EQ_INT(k_cast_check(&a, err), 0);
    a.n = 0;
    CHECK_EQ_INT(k_cast_check(&a, err), HIRED_EINVAL);
    a.n = 2, a.y = NULL;
    CHECK_EQ_INT(k_cast_check(&a, err), HIRED_EINVAL);
    a.y = h, a.dtype = TENSOR_DTYPE_Q8;
    CHECK_EQ_INT(k_cast_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "cast") != NULL);
    return test_summary();
}
