/* add.c (cpu) — fast elementwise sum: a vectorised loop over chunks on OpenMP threads. */
#include "add.h"
#include "cpu_util.h"

#define GRAIN (1 << 16)
#define CHUNK (1 << 15)

K_CLONES static void add_n(const float *a, const float *b, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void k_add_cpu(const k_add_args *a) {
    int64_t nc = (a->n + CHUNK - 1) / CHUNK;
    int nt = k_cpu_threads_for(a->n, GRAIN, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t c = 0; c < nc; c++) {
        int64_t len = a->n - c * CHUNK < CHUNK ? a->n - c * CHUNK : CHUNK;
        add_n(a->a + c * CHUNK, a->b + c * CHUNK, a->y + c * CHUNK, len);
    }
}
