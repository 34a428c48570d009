/* matmul.h — the linear layer: y[m,n] (+)= x[m,k] · wᵀ (+ bias), w in torch Linear layout [n,k].
 *
 * Activations x and y are of dtype `dtype` (F32: the only one the CPU backend runs); weights
 * may be F32, F16 or BF16 (converted to float32 on the fly, products and sums in float32 or
 * wider). Tolerance against the reference: NMSE ≤ 1e-10 for every weight dtype (conversion to
 * float32 is exact; only the summation order and precision differ).
 * Every pointer is device memory borrowed for the duration of the call; nothing is retained.
 * Not here: attention's GEMMs (attention.h), patch embedding (embed.h), the CPU paths
 * (kernels/cpu/cpu_ops.h). */
#ifndef HIRED_K_MATMUL_H
#define HIRED_K_MATMUL_H

#include <stdbool.h>

#include "backend.h"

typedef struct {
    int m, n, k;
    const void *x;          /* [m, k] of dtype, row stride ldx (0 means k) */
    int ldx;
    const void *w;          /* [n, k] row-major (torch Linear weight [out,in]), dtype w_dtype */
    tensor_dtype_t w_dtype; /* F32, F16 or BF16 */
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
} k_matmul_args;

/* 0, or HIRED_EINVAL with one sentence in err (err may be NULL). */
int k_matmul_check(const k_matmul_args *a, char *err);
/* Runs the op on ctx's backend: 0, or HIRED_E* with k_ctx_err(ctx). */
int k_matmul(k_ctx_t *ctx, const k_matmul_args *a);

// ---- plan: the CPU path's choices, in plain C so tests can reach every branch ---------------

typedef enum {
    K_MATMUL_SGEMM = 0, /* F32 weights: sgemm on slices of y */
    K_MATMUL_FUSED,     /* F16/BF16, small m: per-row convert + dot (memory-bound decode shape) */
    K_MATMUL_CONVERT,   /* F16/BF16, larger m: convert block_n rows of w (threaded), then sgemm
                         * the block split across threads like SGEMM */
    K_MATMUL_ROWS,      /* row_invariant: each x row dotted with every w row in a fixed order
                         * (threads take slices of w's rows; any m) */
} k_matmul_variant;

typedef struct {
    k_matmul_variant variant;
    int n_threads; /* OpenMP threads worth using (1 = serial) */
    bool split_m;  /* SGEMM/CONVERT: threads take slices of x's rows (else slices of w's rows) */
    int block_n;   /* CONVERT: rows of w converted per scratch block (multiple of 16 or n) */
    bool simd;     /* F16/BF16 weights: use the AVX2+FMA+F16C kernels (only on CPUs with them) */
} k_matmul_launch;

/* Largest m that takes the fused path for F16/BF16 weights. */
#define K_MATMUL_FUSED_MAX_M 8

/* Fills *l for a checked a, at most max_threads threads (≥ 1) and whether the CPU has
 * AVX2+FMA+F16C (the CPU path passes what it detects at run time). */
void k_matmul_plan(const k_matmul_args *a, int max_threads, bool have_simd, k_matmul_launch *l);
/* Scratch bytes the CPU path takes for l (CONVERT: one block of converted weights). */
size_t k_matmul_plan_scratch(const k_matmul_args *a, const k_matmul_launch *l);

#endif
