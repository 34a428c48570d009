/* softmax.c (cpu) — fast row softmax: the shared vectorised row kernel (cpu_util.c), rows over
 * OpenMP threads when the matrix is large. */
#include "cpu_ops.h"
#include "cpu_util.h"

#define GRAIN_FLOATS (1 << 15)

int k_softmax_cpu(k_ctx_t *ctx, const k_softmax_args *a) {
    (void)ctx;
    float *x = a->x; /* [m, n] */
    int nt = k_cpu_threads_for((int64_t)a->m * a->n, GRAIN_FLOATS, k_cpu_max_threads());
    int rc = a->n >= 4096 ? 1 : 4096 / a->n; /* rows per dynamically scheduled chunk (~16 KiB) */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int i = 0; i < a->m; i++) k_cpu_softmax_row(x + (size_t)i * a->n, a->n, a->n);
    return HIRED_OK;
}
