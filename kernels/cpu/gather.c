/* gather.c (cpu) — row gather as memcpy per row (rows over OpenMP threads when there are many
 * bytes), and the index mask. Exact: the reference does the same copies element by element. */
#include <string.h>

#include "cpu_ops.h"
#include "cpu_util.h"

#define GRAIN_FLOATS (1 << 16)

int k_gather_cpu(k_ctx_t *ctx, const k_gather_args *a) {
    (void)ctx;
    const float *x = a->x;
    float *y = a->y;
    size_t ldx = a->ldx ? (size_t)a->ldx : (size_t)a->d, ldy = a->ldy ? (size_t)a->ldy : (size_t)a->d;
    int nt = k_cpu_threads_for((int64_t)a->n * a->d, GRAIN_FLOATS, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int i = 0; i < a->n; i++) {
        size_t r = a->idx ? (size_t)a->idx[i] : (size_t)i;
        memcpy(y + i * ldy, x + r * ldx, (size_t)a->d * sizeof(float));
    }
    return HIRED_OK;
}

int k_mask_cpu(k_ctx_t *ctx, const k_mask_args *a) {
    (void)ctx;
    k_mask_ref(a);
    return HIRED_OK;
}
