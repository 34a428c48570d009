/* matmul.h — the linear layer: y[m,n] (+)= x[m,k] · wᵀ (+ bias), w in torch Linear layout [n,k].
 *
 * Activations x and y are of dtype `dtype` (F32: the only one the CPU backend runs); weights
 * may be F32, F16 or BF16. Precision (k_matmul_prec, per call or the process default):
 *   F32   weights converted to float32 on the fly, products and sums in float32 or wider: the
 *         reference path. Tolerance against the reference: NMSE ≤ 1e-10 for every weight dtype
 *         (conversion to float32 is exact; only the summation order and precision differ).
 *   BF16  for F16/BF16 weights on a CPU with native bf16 dot products (AVX512-BF16, AMX; see
 *         k_cpu_have_bf16_gemm): x rounded to bf16 (round to nearest even), F16 weights rounded
 *         to bf16, bf16 × bf16 products accumulated in float32 (oneDNN's bf16 matmul) for
 *         m > K_MATMUL_FUSED_MAX_M. Decode shapes (m ≤ K_MATMUL_FUSED_MAX_M) and row-invariant
 *         calls: BF16 weights take bf16 dot products too (AVX512-BF16 register tiles, the same
 *         bits for every m); F16 weights keep the exact fused kernel there (rounding them per
 *         call would cost the bandwidth-bound step; a model that wants bf16 decode holds its
 *         weights in BF16, llm.h LLM_WEIGHTS_BF16). Each rounding is
 *         a relative error ≤ 2⁻⁹, so for products of independent terms NMSE ≈ 1.3e-6 per rounded
 *         operand. Tolerance: NMSE ≤ 1e-5 (both operands rounded, margin for short sums).
 *         Where the CPU lacks native bf16 the F32 path runs instead.
 * Q8 weights (q8.h; the CPU backend only): x quantised per row and 32-block to int8, integer
 *         block dot products, float32 combination of the blocks — one arithmetic for every m,
 *         row-invariant by construction. Against the reference (the same quantisation, block
 *         terms summed in double): NMSE ≤ 1e-10 (only float32 rounding of at most k/32 terms).
 * Every pointer is device memory borrowed for the duration of the call; nothing is retained.
 * Not here: attention's GEMMs (attention.h), patch embedding (embed.h), the CPU paths
 * (kernels/cpu/cpu_ops.h). */
#ifndef HIRED_K_MATMUL_H
#define HIRED_K_MATMUL_H

#include <stdbool.h>

#include "backend.h"

/* Arithmetic of a matmul with F16/BF16 weights (F32 weights always run in float32). */
typedef enum {
    K_MATMUL_PREC_DEFAULT = 0, /* the process default: k_matmul_default_prec() */
    K_MATMUL_PREC_F32,         /* float32 products: the reference path */
    K_MATMUL_PREC_BF16,        /* bf16 × bf16 products, float32 sums, where the CPU has them */
} k_matmul_prec;

typedef struct {
    int m, n, k;
    const void *x;          /* [m, k] of dtype, row stride ldx (0 means k) */
    int ldx;
    const void *w;          /* [n, k] row-major (torch Linear weight [out,in]), dtype w_dtype */
    tensor_dtype_t w_dtype; /* F32, F16, BF16, or Q8 (q8.h: w is the whole block, quants and scales) */
    const float *bias;      /* [n] or NULL */
    void *y;                /* [m, n] of dtype, row stride ldy (0 means n); must not overlap x, w, bias */
    int ldy;
    bool accumulate;        /* y += x·wᵀ (+bias) instead of y = x·wᵀ (+bias) */
    tensor_dtype_t dtype;   /* x and y */
    bool row_invariant;     /* every row of y is the same bits whatever m, the other rows of x
                             * and the thread count (continuous batching: a sequence's numbers
                             * do not depend on what else is in the batch). On the CPU with
                             * F16/BF16 weights these are the bits of the m = 1 fused path, so a
                             * batched decode row equals a solo decode step. */
    k_matmul_prec prec;     /* 0: the process default */
} k_matmul_args;

/* The process default precision: HIRED_MATMUL_PRECISION=bf16 or f32 in the environment (read
 * once; anything else, or unset, is F32). Never K_MATMUL_PREC_DEFAULT. */
k_matmul_prec k_matmul_default_prec(void);
/* Whether BF16 precision runs with bf16 products on d (the CPU backend on a CPU with native bf16:
 * oneDNN's bf16 GEMM and AVX512-BF16 dot products); elsewhere it falls back to float32. */
bool k_device_bf16_products(const k_device_t *d);
/* Whether d runs linear layers of more than K_MATMUL_FUSED_MAX_M rows and attention in hired's
 * AVX2 register tiles (the CPU backend on a CPU with AVX2, FMA and F16C and no AVX-512) rather
 * than through the GEMM library. */
bool k_device_cpu_tiles(const k_device_t *d);
/* a->prec resolved against the default. */
k_matmul_prec k_matmul_prec_of(const k_matmul_args *a);

/* 0, or HIRED_EINVAL with one sentence in err (err may be NULL). */
int k_matmul_check(const k_matmul_args *a, char *err);
/* Runs the op on ctx's backend: 0, or HIRED_E* with k_ctx_err(ctx). */
int k_matmul(k_ctx_t *ctx, const k_matmul_args *a);

/* The rate k_matmul reaches on ctx at m×n×k with weights of w_dtype and precision prec: best of
 * reps timed calls after one warm-up, in GFLOP/s (0 when the buffers cannot be allocated or the
 * op fails). For benchmarks: the "measured peak" they print beside their figures. The data are
 * fixed pseudo-random values; the device buffers are freed before it returns. */
double k_matmul_rate(k_ctx_t *ctx, int m, int n, int k, tensor_dtype_t w_dtype, k_matmul_prec prec, int reps);

// ---- plan: the CPU path's choices, in plain C so tests can reach every branch ---------------

typedef enum {
    K_MATMUL_SGEMM = 0, /* F32 weights: sgemm on slices of y (decode shapes too without simd) */
    K_MATMUL_FUSED,     /* small m: per-row convert + dot (memory-bound decode shape); F16/BF16,
                         * and F32 with simd (AVX2 dots that stream w once) */
    K_MATMUL_CONVERT,   /* F16/BF16, larger m: convert block_n rows of w (threaded), then sgemm
                         * the block split across threads like SGEMM; with simd on a CPU with
                         * AVX2 and no AVX-512 the backend's GEMM tiles instead, which convert
                         * w while packing it (kernels/cpu/gemm_x86.h) */
    K_MATMUL_ROWS,      /* row_invariant: each x row dotted with every w row in a fixed order
                         * (threads take slices of w's rows; any m) */
    K_MATMUL_BF16,      /* F16/BF16, larger m, BF16 precision: x (block_m rows at a time) and,
                         * for F16, block_n rows of w rounded to bf16, then oneDNN's bf16 matmul */
    K_MATMUL_BF16DOT,   /* BF16 weights, BF16 precision, m ≤ K_MATMUL_FUSED_MAX_M or row_invariant:
                         * x rounded to bf16 once, register tiles of 4 weight rows × 4 x rows
                         * of bf16 dot products (AVX512-BF16); one arithmetic for every m, so
                         * row-invariant whether or not asked */
    K_MATMUL_Q8,        /* Q8 weights, any m: block_m x rows at a time quantised to int8, then
                         * integer block dot products (q8.h); threads take slices of w's rows.
                         * Row-invariant whether or not asked */
} k_matmul_variant;

typedef struct {
    k_matmul_variant variant;
    int n_threads; /* OpenMP threads worth using (1 = serial) */
    bool split_m;  /* SGEMM/CONVERT: threads take slices of x's rows (else slices of w's rows) */
    int block_n;   /* CONVERT/BF16: rows of w converted per scratch block (multiple of 16 or n) */
    int block_m;   /* BF16: rows of x rounded to bf16 per scratch block; Q8: rows of x quantised */
    bool simd;     /* F16/BF16 weights: use the AVX2+FMA+F16C kernels (only on CPUs with them) */
} k_matmul_launch;

/* Rows of x quantised per group by the Q8 path (bounds its scratch). */
#define K_MATMUL_Q8_BLOCK_M 64

/* Largest m that takes the fused path for F16/BF16 weights. */
#define K_MATMUL_FUSED_MAX_M 8

/* Fills *l for a checked a, at most max_threads threads (≥ 1), whether the CPU has
 * AVX2+FMA+F16C and whether it has native bf16 (oneDNN's bf16 GEMM and AVX512-BF16 dot
 * products; the CPU path passes what it detects at run time). */
void k_matmul_plan(const k_matmul_args *a, int max_threads, bool have_simd, bool have_bf16, k_matmul_launch *l);
/* Scratch bytes the CPU path takes for l (CONVERT: one block of converted weights, or the GEMM
 * tiles' per-thread packing where that is larger; BF16: a block
 * of x and, for F16 weights, a block of w, both in bf16; BF16DOT: every x row in bf16, padded
 * to 32 elements; Q8: block_m quantised x rows). */
size_t k_matmul_plan_scratch(const k_matmul_args *a, const k_matmul_launch *l);

#endif
