/* cpu_util.h — what the CPU fast paths share: the threading policy, dtype conversion to
 * float32, and the vectorised row primitives (dot, softmax) several ops use.
 *
 * Threading policy: all parallelism comes from OpenMP; OpenBLAS is switched to one thread on
 * first use (k_cpu_blas_init) so that GEMMs issued from OpenMP threads never oversubscribe the
 * cores and no second pool of spinning threads competes with OpenMP's. This is a process-wide
 * OpenBLAS setting: the kernels assume they own BLAS threading in the process.
 * Hot loops carry K_CLONES: the compiler emits x86-64-v4/v3/baseline versions chosen at run
 * time (no host sniffing at build time). Internal to kernels/cpu; not a public API. */
#ifndef HIRED_K_CPU_UTIL_H
#define HIRED_K_CPU_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define K_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define K_CLONES
#endif

/* Sets OpenBLAS to one thread, once per process (thread-safe). */
void k_cpu_blas_init(void);
/* OpenMP threads available to a kernel called from this thread (1 inside a parallel region). */
int k_cpu_max_threads(void);
/* Threads worth using for `work` units when one thread should get at least `grain` units. */
int k_cpu_threads_for(int64_t work, int64_t grain, int max_threads);

/* dst[i] = src[i] as float32 for n elements of dtype dt (exact); F16 through F16C when the CPU
 * has it (simd_x86.h), otherwise k_cpu_to_f32_portable. */
void k_cpu_to_f32(float *dst, const void *src, tensor_dtype_t dt, size_t n);
/* The same in portable vectorisable C (branch-free bit manipulation). */
void k_cpu_to_f32_portable(float *dst, const void *src, tensor_dtype_t dt, size_t n);
/* Σ a[i]·b[i] in float32 with 16 partial sums. */
float k_cpu_dot(const float *a, const float *b, int n);
/* x[0..n) = softmax(x[0..n)) in place (max-subtracted), then x[n..n_zero) = 0. */
void k_cpu_softmax_row(float *x, int n, int n_zero);
/* The unnormalised half of it: x[0..n) = exp(x − max), x[n..n_zero) = 0; returns Σ exp(x − max).
 * Attention divides its much shorter output rows by the sum instead of the scores. */
float k_cpu_exp_row(float *x, int n, int n_zero);

#endif
