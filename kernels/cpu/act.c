/* act.c (cpu) — fast activations: branch-free kmath.h functions in loops the compiler
 * vectorises, chunks of the array over OpenMP threads when it is large. */
#include "cpu_ops.h"
#include "cpu_util.h"
#include "kmath.h"

#define GRAIN (1 << 15)
#define CHUNK (1 << 14)

K_CLONES static void gelu_erf_n(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = k_gelu_erff(x[i]);
}

K_CLONES static void quick_gelu_n(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = x[i] * k_sigmoidf(1.702f * x[i]);
}

K_CLONES static void silu_mul_n(const float *g, const float *u, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = g[i] * k_sigmoidf(g[i]) * u[i];
}

/* Chunk c of an array of n: [c·CHUNK, min(n, (c+1)·CHUNK)). */
static int64_t chunk_len(int64_t n, int64_t c) { return n - c * CHUNK < CHUNK ? n - c * CHUNK : CHUNK; }

int k_gelu_erf_cpu(k_ctx_t *ctx, const k_act_args *a) {
    (void)ctx;
    const float *x = a->x;
    float *y = a->y;
    int64_t nc = (a->n + CHUNK - 1) / CHUNK;
    int nt = k_cpu_threads_for(a->n, GRAIN, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t c = 0; c < nc; c++) gelu_erf_n(x + c * CHUNK, y + c * CHUNK, chunk_len(a->n, c));
    return HIRED_OK;
}

int k_quick_gelu_cpu(k_ctx_t *ctx, const k_act_args *a) {
    (void)ctx;
    const float *x = a->x;
    float *y = a->y;
    int64_t nc = (a->n + CHUNK - 1) / CHUNK;
    int nt = k_cpu_threads_for(a->n, GRAIN, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t c = 0; c < nc; c++) quick_gelu_n(x + c * CHUNK, y + c * CHUNK, chunk_len(a->n, c));
    return HIRED_OK;
}

int k_silu_mul_cpu(k_ctx_t *ctx, const k_silu_mul_args *a) {
    (void)ctx;
    const float *g = a->gate, *u = a->up;
    float *y = a->y;
    int64_t nc = (a->n + CHUNK - 1) / CHUNK;
    int nt = k_cpu_threads_for(a->n, GRAIN, k_cpu_max_threads());
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t c = 0; c < nc; c++)
        silu_mul_n(g + c * CHUNK, u + c * CHUNK, y + c * CHUNK, chunk_len(a->n, c));
    return HIRED_OK;
}
