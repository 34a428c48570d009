/* add.c (cpu) — fast sums: the elementwise a + b as a vectorised loop over chunks on OpenMP
 * threads, and column sums of a row block (rows added in order, columns vectorised). */
#include "cpu_ops.h"
#include "cpu_util.h"

#define GRAIN (1 << 16)
#define CHUNK (1 << 15)

K_CLONES static void add_n(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

int k_add_cpu(k_ctx_t *ctx, const k_add_args *a) {
    (void)ctx;
    const float *x0 = a->a, *x1 = a->b;
    float *y = a->y;
    int64_t nc = (a->n + CHUNK - 1) / CHUNK;
    int nt = k_cpu_threads_for(a->n, GRAIN, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t c = 0; c < nc; c++) {
        int64_t len = a->n - c * CHUNK < CHUNK ? a->n - c * CHUNK : CHUNK;
        add_n(x0 + c * CHUNK, x1 + c * CHUNK, y + c * CHUNK, len);
    }
    return HIRED_OK;
}

/* y[0..n) += x[0..n): one row into the running sums (kept in float32, as the reference). */
K_CLONES static void accumulate_row(float *y, const float *x, int n) {
    for (int j = 0; j < n; j++) y[j] += x[j];
}

int k_sum_rows_cpu(k_ctx_t *ctx, const k_sum_rows_args *a) {
    (void)ctx;
    const float *x = a->x; /* [m, n], stride ldx */
    float *y = a->y;       /* [n] */
    size_t ld = a->ldx ? (size_t)a->ldx : (size_t)a->n;
    for (int j = 0; j < a->n; j++) y[j] = 0.0f;
    for (int i = 0; i < a->m; i++) accumulate_row(y, x + i * ld, a->n);
    return HIRED_OK;
}
