/* cpu_util.c — threading policy, float32 conversion and row primitives for the CPU fast paths
 * (see cpu_util.h). Compiled with -O3 -ffp-contract=fast -fno-trapping-math. */
#include "cpu_util.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include "kmath.h"
#include "simd_x86.h"

// ---- threading ---------------------------------------------------------------------------------

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_single(void) { openblas_set_num_threads(1); }

void k_cpu_blas_init(void) { pthread_once(&blas_once, blas_single); }

int k_cpu_max_threads(void) { return omp_in_parallel() ? 1 : omp_get_max_threads(); }

int k_cpu_threads_for(int64_t work, int64_t grain, int max_threads) {
    if (max_threads < 1) max_threads = 1;
    if (grain < 1) grain = 1;
    int64_t t = work / grain;
    if (t < 1) t = 1;
    return t < max_threads ? (int)t : max_threads;
}

// ---- conversion --------------------------------------------------------------------------------

K_CLONES static void half_to_f32_n(float *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = k_half_to_f32(src[i]);
}

K_CLONES static void bf16_to_f32_n(float *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = k_bf16_to_f32(src[i]);
}

void k_cpu_to_f32(float *dst, const void *src, tensor_dtype_t dt, size_t n) {
    if (dt == TENSOR_DTYPE_F16 && k_cpu_have_f16c())
        k_cpu_f16_to_f32_f16c(dst, src, n);
    else
        k_cpu_to_f32_portable(dst, src, dt, n);
}

void k_cpu_to_f32_portable(float *dst, const void *src, tensor_dtype_t dt, size_t n) {
    switch (dt) {
    case TENSOR_DTYPE_F16: half_to_f32_n(dst, src, n); break;
    case TENSOR_DTYPE_BF16: bf16_to_f32_n(dst, src, n); break;
    default: memcpy(dst, src, n * sizeof(float)); break;
    }
}

// ---- row primitives ----------------------------------------------------------------------------

K_CLONES float k_cpu_dot(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) acc[l] += a[i + l] * b[i + l];
    float s = 0.0f;
    for (; i < n; i++) s += a[i] * b[i];
    for (int l = 0; l < 16; l++) s += acc[l];
    return s;
}

/* Row maximum through the order-preserving map of float bits to int32 (flip the magnitude bits
 * of negatives), so the reduction is an integer max the compiler vectorises (a float max with
 * NaN semantics does not vectorise without -ffinite-math-only). A positive NaN wins (the row
 * becomes NaN, as it would anyway); n ≥ 1. */
K_CLONES static float row_max(const float *x, int n) {
    int32_t best = INT32_MIN;
    for (int i = 0; i < n; i++) {
        k_fbits v;
        v.f = x[i];
        int32_t key = v.i ^ ((v.i >> 31) & 0x7fffffff);
        best = key > best ? key : best;
    }
    k_fbits r;
    r.i = best ^ ((best >> 31) & 0x7fffffff);
    return r.f;
}

K_CLONES float k_cpu_exp_row(float *x, int n, int n_zero) {
    float m = row_max(x, n);
    int i;
    float acc[16] = {0};
    for (i = 0; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            float e = k_expf(x[i + l] - m);
            x[i + l] = e;
            acc[l] += e;
        }
    float s = 0.0f;
    for (; i < n; i++) {
        float e = k_expf(x[i] - m);
        x[i] = e;
        s += e;
    }
    for (int l = 0; l < 16; l++) s += acc[l];
    for (i = n; i < n_zero; i++) x[i] = 0.0f;
    return s;
}

K_CLONES void k_cpu_softmax_row(float *x, int n, int n_zero) {
    float inv = 1.0f / k_cpu_exp_row(x, n, n_zero);
    for (int i = 0; i < n; i++) x[i] *= inv;
}
