/* matmul_ref.c — reference linear layer: plain loops, double accumulation, weights converted
 * element by element with the scalar half.h routines. Obviously correct, slow. */
#include <stdint.h>

#include "half.h"
#include "cpu_ops.h"

static double weight_at(const k_matmul_args *a, size_t i) {
    switch (a->w_dtype) {
    case TENSOR_DTYPE_F16: return half_to_f32(((const uint16_t *)a->w)[i]);
    case TENSOR_DTYPE_BF16: return bf16_to_f32(((const uint16_t *)a->w)[i]);
    default: return ((const float *)a->w)[i];
    }
}

void k_matmul_ref(const k_matmul_args *a) {
    size_t ldx = a->ldx ? (size_t)a->ldx : (size_t)a->k;
    size_t ldy = a->ldy ? (size_t)a->ldy : (size_t)a->n;
    const float *x = a->x; /* [m, k] */
    float *y = a->y;       /* [m, n] */
    for (int i = 0; i < a->m; i++) {
        for (int j = 0; j < a->n; j++) {
            double s = 0.0;
            for (int p = 0; p < a->k; p++) s += (double)x[i * ldx + p] * weight_at(a, (size_t)j * a->k + p);
            if (a->bias) s += a->bias[j];
            float *yp = &y[i * ldy + j];
            *yp = a->accumulate ? (float)((double)*yp + s) : (float)s;
        }
    }
}
