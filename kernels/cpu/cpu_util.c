/* cpu_util.c — threading policy, float32 conversion and row primitives for the CPU fast paths
 * (see cpu_util.h). Compiled with -O3 -ffp-contract=fast -fno-trapping-math. */
#include "cpu_util.h"

#include <cblas.h>
#include <omp.h>
#include <pthread.h>
#include <string.h>

#include "kmath.h"

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

/* IEEE half → float without branches: shift exponent+mantissa into place and rescale by 2^112
 * (which also normalises subnormals exactly); inf/NaN patched in by a select. */
K_CLONES static void half_to_f32_n(float *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = src[i];
        uint32_t em = h & 0x7fffu;
        k_fbits v;
        v.u = em << 13;
        v.f = v.f * 0x1p112f;
        v.u = em >= 0x7c00u ? (0x7f800000u | ((em & 0x3ffu) << 13)) : v.u;
        v.u |= (h & 0x8000u) << 16;
        dst[i] = v.f;
    }
}

K_CLONES static void bf16_to_f32_n(float *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        k_fbits v;
        v.u = (uint32_t)src[i] << 16;
        dst[i] = v.f;
    }
}

void k_cpu_to_f32(float *dst, const void *src, tensor_dtype_t dt, size_t n) {
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

K_CLONES void k_cpu_softmax_row(float *x, int n, int n_zero) {
    float mx[16];
    for (int l = 0; l < 16; l++) mx[l] = -INFINITY;
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) mx[l] = x[i + l] > mx[l] ? x[i + l] : mx[l];
    float m = -INFINITY;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    for (int l = 0; l < 16; l++) m = mx[l] > m ? mx[l] : m;
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
    float inv = 1.0f / s;
    for (i = 0; i < n; i++) x[i] *= inv;
    for (i = n; i < n_zero; i++) x[i] = 0.0f;
}
