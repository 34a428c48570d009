/* cast_ref.c — the reference cast: half.h's scalar conversions, one value at a time. */
#include <string.h>

#include "cpu_ops.h"
#include "half.h"

void k_cast_ref(const k_cast_args *a) {
    const float *x = a->x;
    uint16_t *h = a->y;
    if (a->dtype == TENSOR_DTYPE_F32) {
        memcpy(a->y, x, (size_t)a->n * sizeof(float));
        return;
    }
    for (int64_t i = 0; i < a->n; i++) h[i] = a->dtype == TENSOR_DTYPE_F16 ? f32_to_half(x[i]) : f32_to_bf16(x[i]);
}
