/* cast.c (cpu) — the fast cast: half.h's branch-free conversions in loops the compiler
 * vectorises, over chunks on OpenMP threads. Bit for bit the reference (test_k_cast). */
#include <string.h>

#include "cpu_ops.h"
#include "cpu_util.h"
#include "half.h"

#define GRAIN (1 << 16)
#define CHUNK (1 << 15)

K_CLONES static void to_half_n(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b); /* the float's bits (no aliasing through a cast pointer) */
        y[i] = f32_bits_to_half(b);
    }
}

K_CLONES static void to_bf16_n(const float *x, uint16_t *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b); /* the float's bits (no aliasing through a cast pointer) */
        y[i] = f32_bits_to_bf16(b);
    }
}

int k_cast_cpu(k_ctx_t *ctx, const k_cast_args *a) {
    (void)ctx;
    const float *x = a->x;
    const int64_t nc = (a->n + CHUNK - 1) / CHUNK;
    const int nt = k_cpu_threads_for(a->n, GRAIN, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t c = 0; c < nc; c++) {
        const int64_t i0 = c * CHUNK, len = a->n - i0 < CHUNK ? a->n - i0 : CHUNK;
        if (a->dtype == TENSOR_DTYPE_F32) memcpy((float *)a->y + i0, x + i0, (size_t)len * sizeof(float));
        else if (a->dtype == TENSOR_DTYPE_F16) to_half_n(x + i0, (uint16_t *)a->y + i0, len);
        else to_bf16_n(x + i0, (uint16_t *)a->y + i0, len);
    }
    return HIRED_OK;
}
