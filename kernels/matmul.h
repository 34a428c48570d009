/* matmul.h — the linear layer: y[m,n] (+)= x[m,k] · wᵀ (+ bias), w in torch Linear layout [n,k].
 *
 * Activations are float32; weights may be F32, F16 or BF16 (converted to float32 on the fly,
 * products and sums in float32 or wider). Tolerance against k_matmul_ref: NMSE ≤ 1e-10 for every
 * weight dtype (conversion to float32 is exact; only the summation order and precision differ).
 * Every pointer is borrowed for the duration of the call; nothing is retained.
 * Not here: attention's GEMMs (attention.h), patch embedding (embed.h). */
#ifndef HIRED_K_MATMUL_H
#define HIRED_K_MATMUL_H

#include <stdbool.h>

#include "tensor.h"

typedef struct {
    int m, n, k;
    const float *x;         /* [m, k], row stride ldx (0 means k) */
    int ldx;
    const void *w;          /* [n, k] row-major (torch Linear weight [out,in]), dtype w_dtype */
    tensor_dtype_t w_dtype; /* F32, F16 or BF16 */
    const float *bias;      /* [n] or NULL */
    float *y;               /* [m, n], row stride ldy (0 means n); must not overlap x, w, bias */
    int ldy;
    bool accumulate;        /* y += x·wᵀ (+bias) instead of y = x·wᵀ (+bias) */
} k_matmul_args;

/* 0, or HIRED_EINVAL with one sentence in err (err may be NULL). */
int k_matmul_check(const k_matmul_args *a, char *err);
/* Plain loops with double accumulation. */
void k_matmul_ref(const k_matmul_args *a);
/* Fast path: OpenBLAS sgemm (single-threaded BLAS, split across OpenMP threads; the CPU backend
 * sets OpenBLAS to one thread for the whole process on first use, see kernels/cpu/cpu_util.h,
 * and OMP_NUM_THREADS bounds the threads); F16/BF16
 * weights are converted in blocks of rows (up to 16 MiB of float32) into scratch, or for small m
 * streamed through a fused convert-and-dot kernel. Never fails: if scratch cannot be allocated
 * it falls back to the fused kernel. */
void k_matmul_cpu(const k_matmul_args *a);

// ---- plan: the CPU path's choices, in plain C so tests can reach every branch ---------------

typedef enum {
    K_MATMUL_SGEMM = 0, /* F32 weights: sgemm on slices of y */
    K_MATMUL_FUSED,     /* F16/BF16, small m: per-row convert + dot (memory-bound decode shape) */
    K_MATMUL_CONVERT,   /* F16/BF16, larger m: convert block_n rows of w (threaded), then sgemm
                         * the block split across threads like SGEMM */
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
 * AVX2+FMA+F16C (k_matmul_cpu passes what it detects at run time). */
void k_matmul_plan(const k_matmul_args *a, int max_threads, bool have_simd, k_matmul_launch *l);
/* k_matmul_cpu with a given launch instead of its own plan — any variant on any shape
 * (tests force each branch; the bench compares them). l->variant must suit a->w_dtype (SGEMM for
 * F32 weights, FUSED or CONVERT otherwise) and l->simd must only be set on a CPU with
 * AVX2+FMA+F16C. */
void k_matmul_cpu_planned(const k_matmul_args *a, const k_matmul_launch *l);

#endif
