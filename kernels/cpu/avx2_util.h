/* avx2_util.h — small AVX2 helpers shared by the x86 kernels (simd_x86.c, attention_x86.c,
 * gemm_x86.c). Always inlined into their callers, whose target attributes include AVX2.
 * Internal to kernels/cpu; x86-64 with GCC or clang only. */
#ifndef HIRED_K_CPU_AVX2_UTIL_H
#define HIRED_K_CPU_AVX2_UTIL_H

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sum of v's eight lanes, in a fixed order (halves, then pairs, then the last two). */
static inline __attribute__((always_inline, target("avx2"))) float k_avx2_hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* 8 half values at w as floats (exact): IEEE halves through vcvtph2ps, bfloat16 by widening and
 * shifting into the upper half of each float. */
static inline __attribute__((always_inline, target("avx2,f16c"))) __m256 k_avx2_load8_half(const uint16_t *w,
                                                                                            bool bf16) {
    __m128i h = _mm_loadu_si128((const __m128i *)w);
    if (bf16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/* 8×8 block transpose: rows r[0..7] of 8 floats become columns. */
static inline __attribute__((always_inline, target("avx2"))) void k_avx2_transpose8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* acc[r][0..1] += Σ_{e < n} x[r·ldx + e] · panel[e·16 .. e·16 + 16) for r < mr ≤ 6: the inner
 * loop of a 6-row × 16-column register tile (12 accumulators, two panel loads and up to six
 * broadcasts per step), one FMA chain per element in order of e. */
static inline __attribute__((always_inline, target("avx2,fma"))) void
k_avx2_tile6x16(int mr, __m256 acc[6][2], const float *x, size_t ldx, const float *panel, int n) {
#pragma GCC unroll 2
    for (int e = 0; e < n; e++) {
        __m256 b0 = _mm256_loadu_ps(panel + (size_t)e * 16);
        __m256 b1 = _mm256_loadu_ps(panel + (size_t)e * 16 + 8);
#pragma GCC unroll 6
        for (int r = 0; r < 6; r++) {
            if (r >= mr) continue;
            __m256 a = _mm256_broadcast_ss(x + (size_t)r * ldx + e);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
}
#endif

#endif
