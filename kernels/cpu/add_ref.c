/* add_ref.c — reference elementwise sum and column sums. The column sums add rows in order in
 * float32: the op's contract fixes that order, so every backend matches this bit for bit. */
#include <stddef.h>

#include "cpu_ops.h"

void k_add_ref(const k_add_args *a) {
    const float *x0 = a->a, *x1 = a->b;
    float *y = a->y;
    for (int64_t i = 0; i < a->n; i++) y[i] = x0[i] + x1[i];
}

void k_sum_rows_ref(const k_sum_rows_args *a) {
    const float *x = a->x;
    float *y = a->y;
    size_t ld = a->ldx ? (size_t)a->ldx : (size_t)a->n;
    for (int j = 0; j < a->n; j++) {
        float s = 0.0f;
        for (int i = 0; i < a->m; i++) s += x[i * ld + j];
        y[j] = s;
    }
}
