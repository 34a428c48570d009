/* matmul_ref.c — reference linear layer: plain loops, double accumulation, weights converted
 * element by element with the scalar half.h routines. Obviously correct, slow. */
#include <stdint.h>

#include "half.h"
#include "cpu_ops.h"
#include "q8.h"

static double weight_at(const k_matmul_args *a, size_t i) {
    switch (a->w_dtype) {
    case TENSOR_DTYPE_F16: return half_to_f32(((const uint16_t *)a->w)[i]);
    case TENSOR_DTYPE_BF16: return bf16_to_f32(((const uint16_t *)a->w)[i]);
    default: return ((const float *)a->w)[i];
    }
}

/* Q8 weights (q8.h): each 32-block of an x row quantised on its own (blocks are independent, so
 * this is the row's quantisation), the integer block sum exact, the block terms summed in double. */
static void matmul_q8_ref(const k_matmul_args *a) {
    const size_t ldx = a->ldx ? (size_t)a->ldx : (size_t)a->k, ldy = a->ldy ? (size_t)a->ldy : (size_t)a->n;
    const size_t kp = (size_t)k_q8_row_stride(a->k), nb = kp / K_Q8_BLOCK;
    const int8_t *wq = k_q8_quants(a->w);
    const uint16_t *wd = k_q8_scales(a->w, a->n, a->k);
    const float *x = a->x;
    float *y = a->y;
    for (int i = 0; i < a->m; i++) {
        for (int j = 0; j < a->n; j++) {
            double s = 0.0;
            for (int p0 = 0; p0 < a->k; p0 += K_Q8_BLOCK) {
                const int len = a->k - p0 < K_Q8_BLOCK ? a->k - p0 : K_Q8_BLOCK;
                int8_t qx[64];
                float dx[2];
                k_q8_quantize_row(x + i * ldx + p0, len, qx, dx);
                int32_t isum = 0;
                for (int p = 0; p < len; p++) isum += (int32_t)qx[p] * wq[(size_t)j * kp + (size_t)p0 + (size_t)p];
                s += (double)dx[0] * (double)half_to_f32(wd[(size_t)j * nb + (size_t)p0 / K_Q8_BLOCK]) * (double)isum;
            }
            if (a->bias) s += a->bias[j];
            float *yp = &y[i * ldy + j];
            *yp = a->accumulate ? (float)((double)*yp + s) : (float)s;
        }
    }
}

void k_matmul_ref(const k_matmul_args *a) {
    if (a->w_dtype == TENSOR_DTYPE_Q8) {
        matmul_q8_ref(a);
        return;
    }
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
