/* simd_x86.h — hand-written AVX2+FMA+F16C kernels for the two places the compiler cannot
 * vectorise well on its own: IEEE half → float conversion (vcvtph2ps) and the memory-bound
 * decode matvec over F16/BF16 weights (several weight rows streamed at once). Callers check k_cpu_have_f16c() first (run-time CPUID, never a
 * build-host flag); on other machines the portable loops in cpu_util.c / matmul.c run instead.
 * Internal to kernels/cpu. */
#ifndef HIRED_K_SIMD_X86_H
#define HIRED_K_SIMD_X86_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* True when this CPU has AVX2, FMA and F16C (and the kernels below were compiled in). */
bool k_cpu_have_f16c(void);
/* dst[i] = (float)src[i] for n IEEE halves. Requires k_cpu_have_f16c(). */
void k_cpu_f16_to_f32_f16c(float *dst, const uint16_t *src, size_t n);
/* For rows j in [j0, j1) of w [*, k] (F16, or BF16 when bf16) and nr ≤ 8 rows of x (stride
 * ldx): dot[r·ld_dot + (j − j0)] = Σ_p x[r][p]·w[j][p]. Requires k_cpu_have_f16c(). */
void k_cpu_half_dot_rows_x86(const uint16_t *w, bool bf16, int k, int j0, int j1, const float *x, size_t ldx, int nr,
                             float *dot, size_t ld_dot);
/* The same for float32 weights w [*, k] (the decode shapes of F32 models, m ≤ 8): the library
 * sgemm reads the weights at a fraction of the memory's rate there (hired-bench-gemm, m = 4).
 * Requires k_cpu_have_f16c(). */
void k_cpu_f32_dot_rows_x86(const float *w, int k, int j0, int j1, const float *x, size_t ldx, int nr, float *dot,
                            size_t ld_dot);

/* Half weight rows w [nj, k] (F16, or BF16 when bf16) dotted with nr rows of x:
 * dot[r*ld_dot + j] has the bits k_cpu_half_dot_rows_x86 gives for that x row alone (nr = 1)
 * — the row-invariant matmul's kernel on AVX2 machines (register tiles of 2 weight rows x 3 x
 * rows, k in blocks of K_CPU_LIKE1_KB outermost within each K_CPU_LIKE1_J weight rows).
 * xp: x packed by k_cpu_like1_pack_x; x itself (stride ldx) for the tail past k rounded down to
 * 16. Requires k_cpu_have_f16c(). */
#define K_CPU_LIKE1_KB 128
#define K_CPU_LIKE1_J 8
void k_cpu_dot_rows_like1_tiles_x86(const uint16_t *w, bool bf16, int k, int nj, const float *xp, const float *x,
                                    size_t ldx, int nr, float *dot, size_t ld_dot);
/* xp[b][r][0 .. K_CPU_LIKE1_KB) = x[r][b*KB ...] over the first k rounded down to 16 columns of
 * nr rows: nr * k_cpu_like1_pack_floats(k) floats. */
void k_cpu_like1_pack_x(float *xp, const float *x, size_t ldx, int nr, int k);
static inline size_t k_cpu_like1_pack_floats(int k) {
    return (size_t)((k / 16 * 16 + K_CPU_LIKE1_KB - 1) / K_CPU_LIKE1_KB) * K_CPU_LIKE1_KB;
}

/* Whether the CPU also has AVX-512F/VL (32 vector registers) for the kernel below. */
bool k_cpu_have_avx512vl(void);

/* nw ≤ 4 weight rows w [nw, k] (F16, or BF16 when bf16) and nx ≤ 4 rows of x (stride ldx):
 * dot[r·ld_dot + j] = the bits k_cpu_half_dot_rows_x86 gives for x row r alone (nr = 1), from
 * a register tile of zmm accumulators. Requires k_cpu_have_avx512vl(). */
void k_cpu_half_dot_tile_like1_x86(const uint16_t *w, bool bf16, int k, int nw, const float *x, size_t ldx, int nx,
                                   float *dot, size_t ld_dot);

/* Whether the CPU has AVX512-BF16 dot products (vdpbf16ps) with AVX-512BW/VL, for the kernel
 * below. Asked once per process. */
bool k_cpu_have_bf16_dot(void);
/* nw ≤ 4 bf16 weight rows w [nw, k] and nx ≤ 4 bf16 rows of x (stride ldxb ≥ k rounded up to 32,
 * zero beyond k): dot[r·ld_dot + j] = Σ_p x[r][p]·w[j][p] with bf16 × bf16 products summed in
 * float32 (vdpbf16ps, 16 lanes, then a fixed reduction). The bits of a (weight row, x row) pair
 * do not depend on nw, nx or the other rows. Requires k_cpu_have_bf16_dot(). */
void k_cpu_bf16_dot_tile_x86(const uint16_t *w, int k, int nw, const uint16_t *xb, size_t ldxb, int nx, float *dot,
                             size_t ld_dot);

#endif
