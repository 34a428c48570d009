/* norm.c (cpu) — fast LayerNorm and RMSNorm: per row, vectorised float32 sums with 16 partial
 * accumulators (two passes over a row that sits in L1), rows spread over OpenMP threads when the
 * tensor is large. */
#include <math.h>
#include <stddef.h>

#include "cpu_ops.h"
#include "cpu_util.h"

/* Rows per thread below which threading does not pay. */
#define ROW_GRAIN_FLOATS (1 << 15)

K_CLONES static void layernorm_row(const float *x, float *y, int d, const float *gamma, const float *beta, float eps) {
    float acc[16] = {0};
    int j = 0;
    for (; j + 16 <= d; j += 16)
        for (int l = 0; l < 16; l++) acc[l] += x[j + l];
    float s = 0.0f;
    for (; j < d; j++) s += x[j];
    for (int l = 0; l < 16; l++) s += acc[l];
    float mean = s / (float)d;
    float acc2[16] = {0};
    for (j = 0; j + 16 <= d; j += 16)
        for (int l = 0; l < 16; l++) {
            float t = x[j + l] - mean;
            acc2[l] += t * t;
        }
    float v = 0.0f;
    for (; j < d; j++) v += (x[j] - mean) * (x[j] - mean);
    for (int l = 0; l < 16; l++) v += acc2[l];
    float rstd = 1.0f / sqrtf(v / (float)d + eps);
    if (beta)
        for (j = 0; j < d; j++) y[j] = (x[j] - mean) * rstd * gamma[j] + beta[j];
    else
        for (j = 0; j < d; j++) y[j] = (x[j] - mean) * rstd * gamma[j];
}

K_CLONES static void rmsnorm_row(const float *x, float *y, int d, const float *gamma, float eps) {
    float acc[16] = {0};
    int j = 0;
    for (; j + 16 <= d; j += 16)
        for (int l = 0; l < 16; l++) acc[l] += x[j + l] * x[j + l];
    float s = 0.0f;
    for (; j < d; j++) s += x[j] * x[j];
    for (int l = 0; l < 16; l++) s += acc[l];
    float rstd = 1.0f / sqrtf(s / (float)d + eps);
    for (j = 0; j < d; j++) y[j] = (x[j] * rstd) * gamma[j];
}

int k_layernorm_cpu(k_ctx_t *ctx, const k_layernorm_args *a) {
    (void)ctx;
    const float *x = a->x; /* [m, d] */
    float *y = a->y;       /* [m, d] */
    int nt = k_cpu_threads_for((int64_t)a->m * a->d, ROW_GRAIN_FLOATS, k_cpu_max_threads());
    int rc = a->d >= 4096 ? 1 : 4096 / a->d; /* rows per dynamically scheduled chunk (~16 KiB) */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int i = 0; i < a->m; i++)
        layernorm_row(x + (size_t)i * a->d, y + (size_t)i * a->d, a->d, a->gamma, a->beta, a->eps);
    return HIRED_OK;
}

int k_rmsnorm_cpu(k_ctx_t *ctx, const k_rmsnorm_args *a) {
    (void)ctx;
    const float *x = a->x; /* [m, d] */
    float *y = a->y;       /* [m, d] */
    int nt = k_cpu_threads_for((int64_t)a->m * a->d, ROW_GRAIN_FLOATS, k_cpu_max_threads());
    int rc = a->d >= 4096 ? 1 : 4096 / a->d; /* rows per dynamically scheduled chunk (~16 KiB) */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int i = 0; i < a->m; i++) rmsnorm_row(x + (size_t)i * a->d, y + (size_t)i * a->d, a->d, a->gamma, a->eps);
    return HIRED_OK;
}
