/* simd_x86.c — AVX2+FMA+F16C kernels (see simd_x86.h). Each function carries its own target
 * attribute, so the file builds with baseline flags and nothing here runs unless the CPU has the
 * features. On non-x86 builds the entry points exist but k_cpu_have_f16c() is false. */
#include "simd_x86.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gemm.h"
#include "half.h"
#include "log.h"

// ---- the ISA cap (HIRED_MAX_CPU_ISA) -------------------------------------------------------------

static pthread_once_t cap_once = PTHREAD_ONCE_INIT;
static bool capped;

static void read_cap(void) {
    const char *e = getenv("HIRED_MAX_CPU_ISA");
    if (!e || !*e || !strcasecmp(e, "native")) return;
    if (!strcasecmp(e, "avx2")) capped = true;
    else log_warn("HIRED_MAX_CPU_ISA=%s is not avx2 or native; ignored", e);
}

bool k_cpu_isa_capped(void) {
    pthread_once(&cap_once, read_cap);
    return capped;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#include <pthread.h>

#include "avx2_util.h"

/* avx2 and fma through the compiler's CPU model (which also checks that the OS saves the YMM
 * state); f16c from CPUID leaf 1 directly, because clang's __builtin_cpu_supports does not know
 * the name "f16c". Asked once per process: every matmul plan asks, and CPUID traps to the
 * hypervisor in a virtual machine. */
static pthread_once_t f16c_once = PTHREAD_ONCE_INIT;
static bool have_f16c;

static void detect_f16c(void) {
    __builtin_cpu_init();
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    have_f16c = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
}

bool k_cpu_have_f16c(void) {
    pthread_once(&f16c_once, detect_f16c);
    return have_f16c;
}

#define K_TARGET __attribute__((target("avx2,fma,f16c")))

K_TARGET void k_cpu_f16_to_f32_f16c(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 a = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i)));
        __m256 b = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i + 8)));
        __m256 c = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i + 16)));
        __m256 d = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i + 24)));
        _mm256_storeu_ps(dst + i, a);
        _mm256_storeu_ps(dst + i + 8, b);
        _mm256_storeu_ps(dst + i + 16, c);
        _mm256_storeu_ps(dst + i + 24, d);
    }
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    for (; i < n; i++) dst[i] = half_to_f32(src[i]);
}


static inline float scalar_w(uint16_t h, bool bf16) { return bf16 ? bf16_to_f32(h) : half_to_f32(h); }

/* The weight types of the decode dot kernels below; a constant in each instantiation. */
typedef enum { DW_F16, DW_BF16, DW_F32 } dot_w;

/* 8 weights from element i of w, as floats. */
K_TARGET static inline __attribute__((always_inline)) __m256 wload8(const void *w, size_t i, dot_w t) {
    if (t == DW_F32) return _mm256_loadu_ps((const float *)w + i);
    return k_avx2_load8_half((const uint16_t *)w + i, t == DW_BF16);
}

static inline __attribute__((always_inline)) float wscalar(const void *w, size_t i, dot_w t) {
    if (t == DW_F32) return ((const float *)w)[i];
    return scalar_w(((const uint16_t *)w)[i], t == DW_BF16);
}

/* One x row: four weight rows at a time (four memory streams), two accumulators each. One row
 * at a time (the same bits) read a decode step's matrices 5-7% faster in a microbenchmark of
 * its own, but hired-bench-llm's whole decode step ran 1-3% slower with it in four of five
 * alternated pairs (Zen 4, AVX2 code, 2 threads), and four rows stay ahead on matrices that
 * stay in cache; so four it is. */
K_TARGET static inline __attribute__((always_inline)) void dot_rows_1(const void *w, int k, int j0, int j1,
                                                                      const float *x, float *dot, dot_w t) {
    int k16 = k / 16 * 16;
    int j = j0;
    for (; j + 4 <= j1; j += 4) {
        const size_t o0 = (size_t)j * k, o1 = o0 + k, o2 = o1 + k, o3 = o2 + k;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps();
        __m256 c0 = _mm256_setzero_ps(), c1 = _mm256_setzero_ps(), d0 = _mm256_setzero_ps(), d1 = _mm256_setzero_ps();
        for (int p = 0; p < k16; p += 16) {
            __m256 x0 = _mm256_loadu_ps(x + p), x1 = _mm256_loadu_ps(x + p + 8);
            a0 = _mm256_fmadd_ps(wload8(w, o0 + p, t), x0, a0);
            a1 = _mm256_fmadd_ps(wload8(w, o0 + p + 8, t), x1, a1);
            b0 = _mm256_fmadd_ps(wload8(w, o1 + p, t), x0, b0);
            b1 = _mm256_fmadd_ps(wload8(w, o1 + p + 8, t), x1, b1);
            c0 = _mm256_fmadd_ps(wload8(w, o2 + p, t), x0, c0);
            c1 = _mm256_fmadd_ps(wload8(w, o2 + p + 8, t), x1, c1);
            d0 = _mm256_fmadd_ps(wload8(w, o3 + p, t), x0, d0);
            d1 = _mm256_fmadd_ps(wload8(w, o3 + p + 8, t), x1, d1);
        }
        float s0 = k_avx2_hsum(_mm256_add_ps(a0, a1)), s1 = k_avx2_hsum(_mm256_add_ps(b0, b1));
        float s2 = k_avx2_hsum(_mm256_add_ps(c0, c1)), s3 = k_avx2_hsum(_mm256_add_ps(d0, d1));
        for (int p = k16; p < k; p++) { /* explicit fused tails: the row-invariant kernel repeats them exactly */
            s0 = __builtin_fmaf(wscalar(w, o0 + p, t), x[p], s0), s1 = __builtin_fmaf(wscalar(w, o1 + p, t), x[p], s1);
            s2 = __builtin_fmaf(wscalar(w, o2 + p, t), x[p], s2), s3 = __builtin_fmaf(wscalar(w, o3 + p, t), x[p], s3);
        }
        dot[j - j0] = s0, dot[j + 1 - j0] = s1, dot[j + 2 - j0] = s2, dot[j + 3 - j0] = s3;
    }
    for (; j < j1; j++) {
        const size_t o0 = (size_t)j * k;
        __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
        for (int p = 0; p < k16; p += 16) {
            a0 = _mm256_fmadd_ps(wload8(w, o0 + p, t), _mm256_loadu_ps(x + p), a0);
            a1 = _mm256_fmadd_ps(wload8(w, o0 + p + 8, t), _mm256_loadu_ps(x + p + 8), a1);
        }
        float s0 = k_avx2_hsum(_mm256_add_ps(a0, a1));
        for (int p = k16; p < k; p++) s0 = __builtin_fmaf(wscalar(w, o0 + p, t), x[p], s0);
        dot[j - j0] = s0;
    }
}

/* dot[r·ld_dot + jo] for weight row at element offset o and x rows [0, nr): one 8-wide sum
 * per x row in order of k, reduced, then the tail. */
K_TARGET static inline __attribute__((always_inline)) void dot_store(const void *w, size_t o, int k, int k8,
                                                                     const float *x, size_t ldx, int nr,
                                                                     const __m256 *acc, float *dot, size_t ld_dot,
                                                                     size_t jo, dot_w t) {
    for (int r = 0; r < nr; r++) {
        float s = k_avx2_hsum(acc[r]);
        for (int p = k8; p < k; p++) s += wscalar(w, o + p, t) * x[r * ldx + p];
        dot[r * ld_dot + jo] = s;
    }
}

/* Up to 8 x rows: each weight vector feeds one FMA chain per x row. With 4 rows or fewer, two
 * weight rows at a time, so that each x load feeds two FMAs and 2·nr independent chains hide
 * the FMA latency (one row's 4 chains would wait on it). Either way a (weight row, x row) sum
 * runs in the same order, so the bits do not depend on the pairing. */
K_TARGET static inline __attribute__((always_inline)) void dot_rows_n(const void *w, int k, int j0, int j1,
                                                                      const float *x, size_t ldx, int nr, float *dot,
                                                                      size_t ld_dot, dot_w t) {
    int k8 = k / 8 * 8;
    int j = j0;
    if (nr <= 4)
        for (; j + 2 <= j1; j += 2) {
            const size_t o0 = (size_t)j * k, o1 = o0 + k;
            __m256 acc0[4], acc1[4];
            for (int r = 0; r < 4; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
            for (int p = 0; p < k8; p += 8) {
                __m256 w0 = wload8(w, o0 + p, t), w1 = wload8(w, o1 + p, t);
#pragma GCC unroll 4
                for (int r = 0; r < 4; r++)
                    if (r < nr) {
                        __m256 xv = _mm256_loadu_ps(x + r * ldx + p);
                        acc0[r] = _mm256_fmadd_ps(w0, xv, acc0[r]);
                        acc1[r] = _mm256_fmadd_ps(w1, xv, acc1[r]);
                    }
            }
            dot_store(w, o0, k, k8, x, ldx, nr, acc0, dot, ld_dot, (size_t)(j - j0), t);
            dot_store(w, o1, k, k8, x, ldx, nr, acc1, dot, ld_dot, (size_t)(j + 1 - j0), t);
        }
    for (; j < j1; j++) {
        const size_t o0 = (size_t)j * k;
        __m256 acc[8];
        for (int r = 0; r < 8; r++) acc[r] = _mm256_setzero_ps();
        for (int p = 0; p < k8; p += 8) {
            __m256 wv = wload8(w, o0 + p, t);
            for (int r = 0; r < nr; r++) acc[r] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + r * ldx + p), acc[r]);
        }
        dot_store(w, o0, k, k8, x, ldx, nr, acc, dot, ld_dot, (size_t)(j - j0), t);
    }
}

/* Half weight rows w [nj, k] (F16, or BF16) dotted with nr x rows, each x row with the
 * accumulation order of dot_rows_1 (two 8-wide sums over 16-element steps, added, reduced,
 * then the fused tail): the bits dot_rows_1 gives for that x row alone. Register tiles for CPUs
 * with AVX2 only (16 vector registers): two weight rows x three x rows hold 12 accumulators
 * (each pair's a0, a1 of dot_rows_1), so 4 weight vectors (converted in the loop, exactly) and
 * 6 x loads feed 12 FMAs per 16-element step. k runs in blocks of K_CPU_LIKE1_KB elements,
 * outermost, so that a block of up to LIKE1_SG x rows stays in L1 while every pair of the up
 * to K_CPU_LIKE1_J weight rows passes over it; the accumulators are parked in `acc` between
 * blocks (a store and a load change no bits). Two earlier shapes measured worse on a Zen 3
 * (2 threads, m = 4 and 16 at 4096 x 4096): converting the weights to float32 in a pass of
 * their own first (writing and reading 4 bytes a weight) and taking the pairs outermost (all
 * of x from L2 again for every pair) held the tiles to 50-95 GFLOP/s, where this shape runs
 * at 97-114. x comes packed by block (k_cpu_like1_pack_x): a block's slices of all x rows are
 * contiguous; x rows a power of two apart would map to the same L1 sets and evict each
 * other. */
#define LIKE1_SG 12

void k_cpu_like1_pack_x(float *xp, const float *x, size_t ldx, int nr, int k) {
    const int k16 = k / 16 * 16;
    for (int p0 = 0, b = 0; p0 < k16; p0 += K_CPU_LIKE1_KB, b++) {
        const int len = p0 + K_CPU_LIKE1_KB < k16 ? K_CPU_LIKE1_KB : k16 - p0;
        for (int r = 0; r < nr; r++)
            memcpy(xp + ((size_t)b * nr + r) * K_CPU_LIKE1_KB, x + (size_t)r * ldx + p0, (size_t)len * sizeof(float));
    }
}

K_TARGET static inline __attribute__((always_inline)) void like1_avx2_block(const uint16_t *u, const uint16_t *v,
                                                                            const bool bf16, const int nw,
                                                                            const float *xb, const int nx, int len,
                                                                            __m256 *acc /* [nx][2 rows][2 halves] */) {
    __m256 a[3][2][2];
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++)
#pragma GCC unroll 2
        for (int j = 0; j < 2; j++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                if (r < nx && j < nw) a[r][j][h] = _mm256_load_ps((const float *)&acc[r * 4 + j * 2 + h]);
    for (int p = 0; p < len; p += 16) {
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) {
            const __m256 w0 = k_avx2_load8_half(u + p + 8 * h, bf16);
            const __m256 w1 = nw > 1 ? k_avx2_load8_half(v + p + 8 * h, bf16) : w0;
#pragma GCC unroll 3
            for (int r = 0; r < 3; r++) {
                if (r >= nx) continue;
                __m256 xv = _mm256_loadu_ps(xb + (size_t)r * K_CPU_LIKE1_KB + p + 8 * h);
                __asm__("" : "+x"(xv)); /* one load feeds both FMAs (the compiler would fold it into each) */
                a[r][0][h] = _mm256_fmadd_ps(w0, xv, a[r][0][h]);
                if (nw > 1) a[r][1][h] = _mm256_fmadd_ps(w1, xv, a[r][1][h]);
            }
        }
    }
#pragma GCC unroll 3
    for (int r = 0; r < 3; r++)
#pragma GCC unroll 2
        for (int j = 0; j < 2; j++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++)
                if (r < nx && j < nw) _mm256_store_ps((float *)&acc[r * 4 + j * 2 + h], a[r][j][h]);
}

K_TARGET static inline __attribute__((always_inline)) void like1_tiles(const uint16_t *w, const bool bf16, int k,
                                                                       int nj, const float *xp, const float *x,
                                                                       size_t ldx, int nr, float *dot, size_t ld_dot) {
    const int k16 = k / 16 * 16;
    /* acc[(pair · LIKE1_SG + x row) · 4 + weight row of the pair · 2 + half] */
    __m256 acc[K_CPU_LIKE1_J / 2 * LIKE1_SG * 4];
    for (int j0 = 0; j0 < nj; j0 += K_CPU_LIKE1_J) {
        const int jn = j0 + K_CPU_LIKE1_J <= nj ? K_CPU_LIKE1_J : nj - j0;
        for (int r0 = 0; r0 < nr; r0 += LIKE1_SG) {
            const int ng = r0 + LIKE1_SG <= nr ? LIKE1_SG : nr - r0;
            for (size_t i = 0; i < sizeof acc / sizeof acc[0]; i++) acc[i] = _mm256_setzero_ps();
            for (int p0 = 0, b = 0; p0 < k16; p0 += K_CPU_LIKE1_KB, b++) {
                const int len = p0 + K_CPU_LIKE1_KB < k16 ? K_CPU_LIKE1_KB : k16 - p0;
                for (int jp = 0; jp < jn; jp += 2) {
                    const int nw = jp + 2 <= jn ? 2 : 1;
                    const uint16_t *u = w + (size_t)(j0 + jp) * k + p0, *v = nw > 1 ? u + k : u;
                    for (int r = 0, nx; r < ng; r += nx) {
                        const float *xb = xp + ((size_t)b * nr + r0 + r) * K_CPU_LIKE1_KB;
                        /* groups of three, the last four rows as two pairs (a lone row runs at a
                         * third of the rate) */
                        nx = ng - r == 4 ? 2 : r + 3 <= ng ? 3 : ng - r;
                        __m256 *ac = acc + ((size_t)(jp / 2) * LIKE1_SG + r) * 4;
                        /* constant tile shapes, so every branch on nw and nx folds away */
                        if (nw == 2 && nx == 3) like1_avx2_block(u, v, bf16, 2, xb, 3, len, ac);
                        else if (nw == 2 && nx == 2) like1_avx2_block(u, v, bf16, 2, xb, 2, len, ac);
                        else if (nw == 2) like1_avx2_block(u, v, bf16, 2, xb, 1, len, ac);
                        else if (nx == 3) like1_avx2_block(u, v, bf16, 1, xb, 3, len, ac);
                        else if (nx == 2) like1_avx2_block(u, v, bf16, 1, xb, 2, len, ac);
                        else like1_avx2_block(u, v, bf16, 1, xb, 1, len, ac);
                    }
                }
            }
            for (int jj = 0; jj < jn; jj++) {
                const uint16_t *wr = w + (size_t)(j0 + jj) * k;
                for (int r = 0; r < ng; r++) {
                    const float *xr = x + (size_t)(r0 + r) * ldx;
                    const __m256 *ac = acc + ((size_t)(jj / 2) * LIKE1_SG + r) * 4 + (jj % 2) * 2;
                    float s = k_avx2_hsum(_mm256_add_ps(ac[0], ac[1]));
                    for (int p = k16; p < k; p++) s = __builtin_fmaf(scalar_w(wr[p], bf16), xr[p], s);
                    dot[(size_t)(r0 + r) * ld_dot + j0 + jj] = s;
                }
            }
        }
    }
}

K_TARGET static void like1_tiles_f16(const uint16_t *w, int k, int nj, const float *xp, const float *x, size_t ldx,
                                     int nr, float *dot, size_t ld_dot) {
    like1_tiles(w, false, k, nj, xp, x, ldx, nr, dot, ld_dot);
}

K_TARGET static void like1_tiles_bf16(const uint16_t *w, int k, int nj, const float *xp, const float *x, size_t ldx,
                                      int nr, float *dot, size_t ld_dot) {
    like1_tiles(w, true, k, nj, xp, x, ldx, nr, dot, ld_dot);
}

void k_cpu_dot_rows_like1_tiles_x86(const uint16_t *w, bool bf16, int k, int nj, const float *xp, const float *x,
                                    size_t ldx, int nr, float *dot, size_t ld_dot) {
    if (bf16)
        like1_tiles_bf16(w, k, nj, xp, x, ldx, nr, dot, ld_dot);
    else
        like1_tiles_f16(w, k, nj, xp, x, ldx, nr, dot, ld_dot);
}

/* AVX-512VL's 32 vector registers: the tiles below. */
#define K_TARGET512 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl")))

bool k_cpu_avx512_usable(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && !k_cpu_isa_capped();
}

bool k_cpu_have_avx512vl(void) {
    return k_cpu_have_f16c() && k_cpu_avx512_usable() && __builtin_cpu_supports("avx512vl");
}


/* ---- the register-tiled row-invariant kernel (AVX-512F) ----------------------------------------
 * One zmm accumulator per (x row, weight row) covers the 16 elements of a step: its low eight
 * lanes are dot_rows_1's a0 and its high eight its a1, each lane updated by the same fused
 * multiply-add in the same order, so adding the halves, reducing and the fused tail give the
 * bits of dot_rows_1 for that x row alone. Tiles of up to 4 weight rows × 4 x rows keep 16
 * accumulators in registers through the whole k loop: 8 loads feed 16 FMAs, so the product is
 * bound by arithmetic, not by loads, once several x rows share the weights. */

K_TARGET512 static inline __m512 load16w(const uint16_t *w, bool bf16) {
    __m256i h = _mm256_loadu_si256((const __m256i *)w);
    if (bf16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
    return _mm512_cvtph_ps(h);
}

/* k_avx2_hsum(a0 + a1) of dot_rows_1, with a0, a1 the halves of v. */
K_TARGET512 static inline float hsum_halves(__m512 v) {
    __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    return k_avx2_hsum(_mm256_add_ps(_mm512_castps512_ps256(v), hi));
}

K_TARGET512 static inline __attribute__((always_inline)) void like1_tile(const uint16_t *w, int k, const int nw,
                                                                         const float *x, size_t ldx, const int nx,
                                                                         float *dot, size_t ld_dot, bool bf16) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
    const int k16 = k / 16 * 16;
    for (int p = 0; p < k16; p += 16) {
        __m512 wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            if (j < nw) wv[j] = load16w(w + (size_t)j * k + p, bf16);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r >= nx) continue;
            __m512 xv = _mm512_loadu_ps(x + (size_t)r * ldx + p);
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                if (j < nw) acc[r][j] = _mm512_fmadd_ps(wv[j], xv, acc[r][j]);
        }
    }
    for (int r = 0; r < nx; r++)
        for (int j = 0; j < nw; j++) {
            float s = hsum_halves(acc[r][j]);
            const uint16_t *wr = w + (size_t)j * k;
            const float *xr = x + (size_t)r * ldx;
            for (int p = k16; p < k; p++) s = __builtin_fmaf(scalar_w(wr[p], bf16), xr[p], s);
            dot[(size_t)r * ld_dot + j] = s;
        }
}

/* The tile shapes as constants, so every branch on nw and nx above folds away. */
#define LIKE1_TILE_CASES(BF)                                                                                          \
    switch (nw * 8 + nx) {                                                                                            \
    case 4 * 8 + 4: like1_tile(w, k, 4, x, ldx, 4, dot, ld_dot, BF); break;                                           \
    case 4 * 8 + 3: like1_tile(w, k, 4, x, ldx, 3, dot, ld_dot, BF); break;                                           \
    case 4 * 8 + 2: like1_tile(w, k, 4, x, ldx, 2, dot, ld_dot, BF); break;                                           \
    case 4 * 8 + 1: like1_tile(w, k, 4, x, ldx, 1, dot, ld_dot, BF); break;                                           \
    default:                                                                                                          \
        for (int j = 0; j < nw; j++) like1_tile(w + (size_t)j * k, k, 1, x, ldx, nx, dot + j, ld_dot, BF);           \
    }

K_TARGET512 static void like1_tile_f16(const uint16_t *w, int k, int nw, const float *x, size_t ldx, int nx, float *dot,
                                       size_t ld_dot) {
    LIKE1_TILE_CASES(false)
}

K_TARGET512 static void like1_tile_bf16(const uint16_t *w, int k, int nw, const float *x, size_t ldx, int nx,
                                        float *dot, size_t ld_dot) {
    LIKE1_TILE_CASES(true)
}

void k_cpu_half_dot_tile_like1_x86(const uint16_t *w, bool bf16, int k, int nw, const float *x, size_t ldx, int nx,
                                   float *dot, size_t ld_dot) {
    if (bf16)
        like1_tile_bf16(w, k, nw, x, ldx, nx, dot, ld_dot);
    else
        like1_tile_f16(w, k, nw, x, ldx, nx, dot, ld_dot);
}

/* ---- bf16 dot products (AVX512-BF16) ----------------------------------------------------------
 * One zmm accumulator per (x row, weight row): each step of 32 elements is one vdpbf16ps, lane i
 * taking the products of elements 2i and 2i+1. Every call, whatever the tile shape, runs the same
 * instruction sequence per (x row, weight row) — the same loads, the same dpbf16 chain, the same
 * masked tail, the same reduction — so a row's dot product has the same bits for any m. */
#define K_TARGETBF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512vl,avx512bw,avx512bf16")))

static pthread_once_t bf16dot_once = PTHREAD_ONCE_INIT;
static bool have_bf16dot;

static void detect_bf16dot(void) {
    __builtin_cpu_init();
    have_bf16dot = k_cpu_have_avx512vl() && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512bf16");
}

bool k_cpu_have_bf16_dot(void) {
    pthread_once(&bf16dot_once, detect_bf16dot);
    return have_bf16dot;
}

/* The sum of v's 16 lanes in a fixed order: halves, quarters, pairs. */
K_TARGETBF16 static inline float hsum16(__m512 v) {
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

K_TARGETBF16 static inline __attribute__((always_inline)) void bf16_tile(const uint16_t *w, int k, const int nw,
                                                                        const uint16_t *xb, size_t ldxb, const int nx,
                                                                        float *dot, size_t ld_dot) {
    __m512 acc[4][4];
#pragma GCC unroll 4
    for (int r = 0; r < 4; r++)
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++) acc[r][j] = _mm512_setzero_ps();
    const int k32 = k / 32 * 32;
    for (int p = 0; p < k32; p += 32) {
        __m512i wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            if (j < nw) wv[j] = _mm512_loadu_si512((const void *)(w + (size_t)j * k + p));
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r >= nx) continue;
            __m512i xv = _mm512_loadu_si512((const void *)(xb + (size_t)r * ldxb + p));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                if (j < nw) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], (__m512bh)xv, (__m512bh)wv[j]);
        }
    }
    if (k32 < k) { /* the tail: weights past k read as zero (x is zero-padded to 32) */
        const __mmask32 mk = (__mmask32)((1ull << (k - k32)) - 1);
        __m512i wv[4];
#pragma GCC unroll 4
        for (int j = 0; j < 4; j++)
            if (j < nw) wv[j] = _mm512_maskz_loadu_epi16(mk, w + (size_t)j * k + k32);
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
            if (r >= nx) continue;
            __m512i xv = _mm512_loadu_si512((const void *)(xb + (size_t)r * ldxb + k32));
#pragma GCC unroll 4
            for (int j = 0; j < 4; j++)
                if (j < nw) acc[r][j] = _mm512_dpbf16_ps(acc[r][j], (__m512bh)xv, (__m512bh)wv[j]);
        }
    }
    for (int r = 0; r < nx; r++)
        for (int j = 0; j < nw; j++) dot[(size_t)r * ld_dot + j] = hsum16(acc[r][j]);
}

K_TARGETBF16 static void bf16_tile_any(const uint16_t *w, int k, int nw, const uint16_t *xb, size_t ldxb, int nx,
                                       float *dot, size_t ld_dot) {
    switch (nw * 8 + nx) {
    case 4 * 8 + 4: bf16_tile(w, k, 4, xb, ldxb, 4, dot, ld_dot); break;
    case 4 * 8 + 3: bf16_tile(w, k, 4, xb, ldxb, 3, dot, ld_dot); break;
    case 4 * 8 + 2: bf16_tile(w, k, 4, xb, ldxb, 2, dot, ld_dot); break;
    case 4 * 8 + 1: bf16_tile(w, k, 4, xb, ldxb, 1, dot, ld_dot); break;
    default:
        for (int j = 0; j < nw; j++) bf16_tile(w + (size_t)j * k, k, 1, xb, ldxb, nx, dot + j, ld_dot);
    }
}

void k_cpu_bf16_dot_tile_x86(const uint16_t *w, int k, int nw, const uint16_t *xb, size_t ldxb, int nx, float *dot,
                             size_t ld_dot) {
    bf16_tile_any(w, k, nw, xb, ldxb, nx, dot, ld_dot);
}

/* The instantiations per weight type (the type is a constant inside each). */
K_TARGET static void dot_f16(const uint16_t *w, int k, int j0, int j1, const float *x, size_t ldx, int nr, float *dot,
                             size_t ld_dot) {
    if (nr == 1)
        dot_rows_1(w, k, j0, j1, x, dot, DW_F16);
    else
        dot_rows_n(w, k, j0, j1, x, ldx, nr, dot, ld_dot, DW_F16);
}

K_TARGET static void dot_bf16(const uint16_t *w, int k, int j0, int j1, const float *x, size_t ldx, int nr, float *dot,
                              size_t ld_dot) {
    if (nr == 1)
        dot_rows_1(w, k, j0, j1, x, dot, DW_BF16);
    else
        dot_rows_n(w, k, j0, j1, x, ldx, nr, dot, ld_dot, DW_BF16);
}

void k_cpu_half_dot_rows_x86(const uint16_t *w, bool bf16, int k, int j0, int j1, const float *x, size_t ldx, int nr,
                             float *dot, size_t ld_dot) {
    if (bf16)
        dot_bf16(w, k, j0, j1, x, ldx, nr, dot, ld_dot);
    else
        dot_f16(w, k, j0, j1, x, ldx, nr, dot, ld_dot);
}

K_TARGET void k_cpu_f32_dot_rows_x86(const float *w, int k, int j0, int j1, const float *x, size_t ldx, int nr,
                                     float *dot, size_t ld_dot) {
    if (nr == 1)
        dot_rows_1(w, k, j0, j1, x, dot, DW_F32);
    else
        dot_rows_n(w, k, j0, j1, x, ldx, nr, dot, ld_dot, DW_F32);
}

#else /* not x86-64 */

void k_cpu_half_dot_tile_like1_x86(const uint16_t *w, bool bf16, int k, int nw, const float *x, size_t ldx, int nx,
                                   float *dot, size_t ld_dot) {
    for (int r = 0; r < nx; r++) k_cpu_half_dot_rows_x86(w, bf16, k, 0, nw, x + (size_t)r * ldx, ldx, 1, dot + (size_t)r * ld_dot, 1);
}

bool k_cpu_avx512_usable(void) { return false; }
bool k_cpu_have_avx512vl(void) { return false; }
bool k_cpu_have_bf16_dot(void) { return false; }
void k_cpu_bf16_dot_tile_x86(const uint16_t *w, int k, int nw, const uint16_t *xb, size_t ldxb, int nx, float *dot,
                             size_t ld_dot) {
    (void)w, (void)k, (void)nw, (void)xb, (void)ldxb, (void)nx, (void)dot, (void)ld_dot; /* never planned here */
}
void k_cpu_like1_pack_x(float *xp, const float *x, size_t ldx, int nr, int k) {
    (void)xp, (void)x, (void)ldx, (void)nr, (void)k; /* the kernel below reads x itself */
}
void k_cpu_dot_rows_like1_tiles_x86(const uint16_t *w, bool bf16, int k, int nj, const float *xp, const float *x,
                                    size_t ldx, int nr, float *dot, size_t ld_dot) {
    (void)xp;
    for (int j = 0; j < nj; j++)
        for (int r = 0; r < nr; r++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                uint16_t h = w[(size_t)j * k + p];
                s += (bf16 ? bf16_to_f32(h) : half_to_f32(h)) * x[r * ldx + p];
            }
            dot[r * ld_dot + (size_t)j] = s;
        }
}

bool k_cpu_have_f16c(void) { return false; }
void k_cpu_f16_to_f32_f16c(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = half_to_f32(src[i]);
}
void k_cpu_half_dot_rows_x86(const uint16_t *w, bool bf16, int k, int j0, int j1, const float *x, size_t ldx, int nr,
                             float *dot, size_t ld_dot) {
    for (int j = j0; j < j1; j++)
        for (int r = 0; r < nr; r++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) {
                uint16_t h = w[(size_t)j * k + p];
                s += (bf16 ? bf16_to_f32(h) : half_to_f32(h)) * x[r * ldx + p];
            }
            dot[r * ld_dot + (size_t)(j - j0)] = s;
        }
}

void k_cpu_f32_dot_rows_x86(const float *w, int k, int j0, int j1, const float *x, size_t ldx, int nr, float *dot,
                            size_t ld_dot) {
    for (int j = j0; j < j1; j++)
        for (int r = 0; r < nr; r++) {
            float s = 0.0f;
            for (int p = 0; p < k; p++) s += w[(size_t)j * k + p] * x[r * ldx + p];
            dot[r * ld_dot + (size_t)(j - j0)] = s;
        }
}

#endif
