/* gemm_x86.c — the AVX2+FMA GEMM tiles (see gemm_x86.h). Built with baseline flags; every
 * function carries its target attribute. On other architectures k_cpu_gemm_tiles_usable() is
 * false and the entry point is never called. */
#include "gemm_x86.h"

#include <stdint.h>
#include <string.h>

#include "kmath.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <pthread.h>

#include "avx2_util.h"
#include "gemm.h"
#include "simd_x86.h"

static pthread_once_t tiles_once = PTHREAD_ONCE_INIT;
static bool tiles_cpu, tiles_on = true;

static void detect(void) {
    __builtin_cpu_init();
    tiles_cpu = k_cpu_have_f16c() && !k_cpu_avx512_usable(); /* simd_x86.h: AVX2, FMA and F16C */
}

bool k_cpu_gemm_tiles_usable(void) {
    pthread_once(&tiles_once, detect);
    return tiles_cpu && tiles_on;
}

bool k_cpu_gemm_tiles_enable(bool on) {
    pthread_once(&tiles_once, detect);
    if (on && !tiles_cpu) return false;
    tiles_on = on;
    return true;
}

#define K_TARGET __attribute__((target("avx2,fma,f16c")))
#define K_INLINE K_TARGET static inline __attribute__((always_inline))

/* 8 weights from element index i, as float32. */
K_INLINE __m256 load8(const void *w, k_gemm_wtype wt, size_t i) {
    if (wt == K_GEMM_W_F32) return _mm256_loadu_ps((const float *)w + i);
    return k_avx2_load8_half((const uint16_t *)w + i, wt == K_GEMM_W_BF16);
}

static float elem(const void *w, k_gemm_wtype wt, size_t i) {
    if (wt == K_GEMM_W_F32) return ((const float *)w)[i];
    uint16_t h = ((const uint16_t *)w)[i];
    return wt == K_GEMM_W_F16 ? k_half_to_f32(h) : k_bf16_to_f32(h);
}

/* dst[e·16 + c] = w[(r0 + c)·k + k0 + e] for c < rows (≤ 16) and e < kc, zero for c ≥ rows:
 * one panel, converted to float32 while it is transposed. */
K_TARGET static void pack_panel(float *dst, const void *w, k_gemm_wtype wt, size_t k, int r0, int rows, int k0,
                                int kc) {
    int e0 = 0;
    if (rows == K_GEMM_PANEL)
        for (; e0 + 8 <= kc; e0 += 8)
            for (int c0 = 0; c0 < K_GEMM_PANEL; c0 += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; i++) r[i] = load8(w, wt, (size_t)(r0 + c0 + i) * k + (size_t)(k0 + e0));
                k_avx2_transpose8(r);
                for (int i = 0; i < 8; i++) _mm256_storeu_ps(dst + (size_t)(e0 + i) * K_GEMM_PANEL + c0, r[i]);
            }
    for (int e = e0; e < kc; e++)
        for (int c = 0; c < K_GEMM_PANEL; c++)
            dst[(size_t)e * K_GEMM_PANEL + c] = c < rows ? elem(w, wt, (size_t)(r0 + c) * k + (size_t)(k0 + e)) : 0.0f;
}

/* y[r][0..16) for r < mr ≤ 6: the sum over e < kc of x[r·ldx + e] · panel[e][·] from zero,
 * then + y (load) and + bias. Summing from zero keeps a large y (a residual) out of the chain,
 * where it would absorb the low bits of every product. */
K_INLINE void tile(int mr, float *y, size_t ldy, const float *x, size_t ldx, const float *panel, int kc, bool load,
                   const float *bias) {
    __m256 acc[K_GEMM_TILE_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < K_GEMM_TILE_ROWS; r++)
        if (r < mr) {
            acc[r][0] = acc[r][1] = _mm256_setzero_ps();
            _mm_prefetch((const char *)(y + (size_t)r * ldy), _MM_HINT_T0);
        }
    k_avx2_tile6x16(mr, acc, x, ldx, panel, kc);
    __m256 c0 = bias ? _mm256_loadu_ps(bias) : _mm256_setzero_ps(), c1 = bias ? _mm256_loadu_ps(bias + 8) : c0;
#pragma GCC unroll 6
    for (int r = 0; r < K_GEMM_TILE_ROWS; r++) {
        if (r >= mr) continue;
        float *yr = y + (size_t)r * ldy;
        if (load) {
            acc[r][0] = _mm256_add_ps(_mm256_loadu_ps(yr), acc[r][0]);
            acc[r][1] = _mm256_add_ps(_mm256_loadu_ps(yr + 8), acc[r][1]);
        }
        if (bias) {
            acc[r][0] = _mm256_add_ps(acc[r][0], c0);
            acc[r][1] = _mm256_add_ps(acc[r][1], c1);
        }
        _mm256_storeu_ps(yr, acc[r][0]);
        _mm256_storeu_ps(yr + 8, acc[r][1]);
    }
}

K_TARGET static void tile_mr(int mr, float *y, size_t ldy, const float *x, size_t ldx, const float *panel, int kc,
                             bool load, const float *bias) {
    switch (mr) {
    case 6: tile(6, y, ldy, x, ldx, panel, kc, load, bias); break;
    case 5: tile(5, y, ldy, x, ldx, panel, kc, load, bias); break;
    case 4: tile(4, y, ldy, x, ldx, panel, kc, load, bias); break;
    case 3: tile(3, y, ldy, x, ldx, panel, kc, load, bias); break;
    case 2: tile(2, y, ldy, x, ldx, panel, kc, load, bias); break;
    default: tile(1, y, ldy, x, ldx, panel, kc, load, bias); break;
    }
}

/* A tile of cols < 16 valid columns: through a 16-wide copy (same sums, the padding discarded). */
K_TARGET static void tile_narrow(int mr, int cols, float *y, size_t ldy, const float *x, size_t ldx, const float *panel,
                                 int kc, bool load, const float *bias) {
    float t[K_GEMM_TILE_ROWS * K_GEMM_PANEL] = {0}, b[K_GEMM_PANEL] = {0};
    for (int r = 0; r < mr && load; r++) memcpy(t + r * K_GEMM_PANEL, y + (size_t)r * ldy, (size_t)cols * sizeof(float));
    if (bias) memcpy(b, bias, (size_t)cols * sizeof(float));
    tile_mr(mr, t, K_GEMM_PANEL, x, ldx, panel, kc, load, bias ? b : NULL);
    for (int r = 0; r < mr; r++) memcpy(y + (size_t)r * ldy, t + r * K_GEMM_PANEL, (size_t)cols * sizeof(float));
}

K_TARGET void k_cpu_gemm_tiles_x86(int m, int j0, int j1, int k, const float *x, size_t ldx, const void *w,
                                   k_gemm_wtype wt, const float *bias, bool accumulate, float *y, size_t ldy,
                                   float *pack) {
    for (int jc = j0; jc < j1; jc += K_GEMM_NC) {
        const int nc = j1 - jc < K_GEMM_NC ? j1 - jc : K_GEMM_NC, np = (nc + K_GEMM_PANEL - 1) / K_GEMM_PANEL;
        for (int pc = 0; pc < k; pc += K_GEMM_KC) {
            const int kc = k - pc < K_GEMM_KC ? k - pc : K_GEMM_KC;
            const bool load = accumulate || pc > 0, last = pc + kc == k;
            for (int p = 0; p < np; p++) {
                int rows = nc - p * K_GEMM_PANEL < K_GEMM_PANEL ? nc - p * K_GEMM_PANEL : K_GEMM_PANEL;
                pack_panel(pack + (size_t)p * kc * K_GEMM_PANEL, w, wt, (size_t)k, jc + p * K_GEMM_PANEL, rows, pc, kc);
            }
            for (int ic = 0; ic < m; ic += K_GEMM_MC) {
                const int ie = m - ic < K_GEMM_MC ? m : ic + K_GEMM_MC;
                for (int p = 0; p < np; p++) {
                    const int j = jc + p * K_GEMM_PANEL, cols = j1 - j < K_GEMM_PANEL ? j1 - j : K_GEMM_PANEL;
                    const float *panel = pack + (size_t)p * kc * K_GEMM_PANEL, *b = last && bias ? bias + j : NULL;
                    for (int i = ic; i < ie; i += K_GEMM_TILE_ROWS) {
                        const int mr = ie - i < K_GEMM_TILE_ROWS ? ie - i : K_GEMM_TILE_ROWS;
                        float *yt = y + (size_t)i * ldy + j;
                        const float *xt = x + (size_t)i * ldx + pc;
                        if (cols == K_GEMM_PANEL)
                            tile_mr(mr, yt, ldy, xt, ldx, panel, kc, load, b);
                        else
                            tile_narrow(mr, cols, yt, ldy, xt, ldx, panel, kc, load, b);
                    }
                }
            }
        }
    }
}

#else /* not x86-64 */

bool k_cpu_gemm_tiles_usable(void) { return false; }
bool k_cpu_gemm_tiles_enable(bool on) { return !on; }
void k_cpu_gemm_tiles_x86(int m, int j0, int j1, int k, const float *x, size_t ldx, const void *w, k_gemm_wtype wt,
                          const float *bias, bool accumulate, float *y, size_t ldy, float *pack) {
    (void)m, (void)j0, (void)j1, (void)k, (void)x, (void)ldx, (void)w, (void)wt, (void)bias, (void)accumulate, (void)y,
        (void)ldy, (void)pack; /* never planned here */
}

#endif
