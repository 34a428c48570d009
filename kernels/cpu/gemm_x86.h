/* gemm_x86.h — an AVX2+FMA GEMM in register tiles for linear layers with F16 or BF16 weights
 * or F32, used by matmul.c for the CONVERT and SGEMM plans (more than K_MATMUL_FUSED_MAX_M
 * rows: prefill chunks and the vision tower) on CPUs with AVX2, FMA and F16C but without
 * AVX-512, whose CPUs keep the measured oneDNN path.
 *
 * Why hand-written: with half weights the library path first converts a block of weight rows
 * to float32 in a pass of its own (read 2 bytes, write 4), and the GEMM library then reads that
 * block again to pack it into its own layout (read 4, write 4). Here the conversion is the
 * packing: each weight element is read once per call, converted while it is transposed into
 * panels of 16 rows, and the panels stay in cache while every row of x passes over them. The
 * tile is the attention tiles' (attention_x86.h): 6 rows of x × 16 weight rows, 12 ymm
 * accumulators, two panel loads and six broadcasts per step of k. hired-bench-kernels 0.5 tiles
 * on an AVX2 EPYC (Zen 3, 2 threads, the two paths interleaved), F16 weights: CLIP shapes
 * (577 rows) 167-181 GFLOP/s against 165-174 for convert + oneDNN's sgemm (1.01-1.04x);
 * prefill chunks (512 rows × 4096/11008) 175-178 against 156-158 (1.12-1.13x). With float32
 * weights the tiles first only equalled oneDNN's sgemm (0.94-1.02x); since they prefetch y
 * (below) they beat it, the two interleaved 20 times each on the same Zen 3: CLIP 577 × 1024 ×
 * 1024 183 against 168 GFLOP/s (1.09x), 577 × 4096 × 1024 180 against 159 (1.13x), 577 × 1024 ×
 * 4096 1.04x, 2885 × 1024 × 1024 1.03x, 2900 × 4096 × 4096 1.01x. So float32 weights run here
 * too.
 *
 * Blocking, per thread (threads take slices of w's rows, so nothing is shared but x): weight
 * rows K_GEMM_NC at a time × k in blocks of K_GEMM_KC are packed (K_GEMM_NC·K_GEMM_KC floats,
 * in L2), then x in blocks of K_GEMM_MC rows (in L2) runs over every panel (in L1 while the
 * block's tiles pass). y is read back and added to across k blocks; a tile prefetches its
 * rows of y before its k loop, so that read-back is in L1 when the accumulators are stored
 * (perf had put 7-8% of the time on those loads; the prefetch gained 3-4% at the prefill and
 * CLIP shapes, the two builds interleaved in one process).
 *
 * Sums: each block of K_GEMM_KC terms is one float32 FMA chain in order of k, from zero, added
 * to y (the earlier blocks' sum, or y itself when accumulating); the bias is added last. The
 * order depends neither on m, on the row's tile nor on the thread count, so a row gets the
 * same bits in any call.
 * Internal to kernels/cpu. */
#ifndef HIRED_K_CPU_GEMM_X86_H
#define HIRED_K_CPU_GEMM_X86_H

#include <stdbool.h>
#include <stddef.h>

#define K_GEMM_TILE_ROWS 6
#define K_GEMM_PANEL 16
#define K_GEMM_KC 256
#define K_GEMM_NC 256
#define K_GEMM_MC 96

/* The weights' element type. */
typedef enum { K_GEMM_W_F32, K_GEMM_W_F16, K_GEMM_W_BF16 } k_gemm_wtype;

/* True when the tiles run: the CPU has AVX2, FMA and F16C and no AVX-512F, and
 * k_cpu_gemm_tiles_enable has not turned them off. CPUID is asked once per process. */
bool k_cpu_gemm_tiles_usable(void);
/* Tests and benchmarks: run the tiles where the CPU can (on) or the library path always (off).
 * False when on is asked of a CPU without them. Not to be called while a kernel runs. */
bool k_cpu_gemm_tiles_enable(bool on);

/* Floats of one thread's packing buffer. */
static inline size_t k_cpu_gemm_tiles_pack_floats(void) { return (size_t)K_GEMM_NC * K_GEMM_KC; }

/* y[i][j] (+)= Σ_p x[i·ldx + p] · w_j[p] (+ bias[j]) for i < m and j0 ≤ j < j1, w_j the row j of
 * w (row stride k, element type wt). pack: k_cpu_gemm_tiles_pack_floats() floats of this
 * caller's own. */
void k_cpu_gemm_tiles_x86(int m, int j0, int j1, int k, const float *x, size_t ldx, const void *w, k_gemm_wtype wt,
                          const float *bias, bool accumulate, float *y, size_t ldy, float *pack);

#endif
