/* gemm.h — the one float32 GEMM every CPU fast path calls (matmul, attention, patch embedding),
 * row-major, C[m,n] = alpha · A[m,k] · op(B) + beta · C with op(B) = B [k,n] or Bᵀ (B [n,k]).
 *
 * Which library runs it is chosen once per process from what the CPU can do, never from a table
 * of CPU models (hired-bench-gemm measured the candidates side by side; gemm.c says why the
 * winner won):
 *   K_GEMM_ONEDNN    oneDNN's sgemm, whose JIT kernels follow the ISA oneDNN reads from cpuid
 *                    (AVX-512, AVX2 ...). Chosen when oneDNN's effective ISA is AVX2 or better.
 *   K_GEMM_OPENBLAS  OpenBLAS as the process loaded it. Chosen on CPUs without AVX2, where
 *                    oneDNN has no JIT GEMM and OpenBLAS's own kernels for old cores are sound.
 * HIRED_GEMM=onednn|openblas in the environment overrides the choice (comparisons, bisecting a
 * numerics question); anything else there is ignored with a warning.
 * One row (m = 1, a matrix-vector product: decode, the CLS-probability rows) runs OpenBLAS's
 * sgemv in both families: memory-bound, so the core type matters little, and oneDNN 2.6's m = 1
 * path was measured at ~130 ms for CLIP's 16 CLS rows (577 keys × 64, key stride 3072) in a
 * 5-tile run where sgemv takes 0.2 ms.
 *
 * Threads: called from inside an OpenMP parallel region each library runs on the calling thread
 * alone (oneDNN checks omp_in_parallel; OpenBLAS is set to one thread, cpu_util.h), so the
 * callers' OpenMP splits stay the only parallelism. Internal to kernels/cpu. */
#ifndef HIRED_K_CPU_GEMM_H
#define HIRED_K_CPU_GEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { K_GEMM_OPENBLAS = 0, K_GEMM_ONEDNN, K_GEMM_FAMILY_COUNT } k_gemm_family;

/* The family this process runs (chosen on first call, thread-safe). */
k_gemm_family k_cpu_gemm_family_id(void);
/* One line for logs and benchmarks, e.g. "oneDNN 2.6.3 (avx512_core_bf16)" or
 * "OpenBLAS 0.3.21 (Prescott)". Static storage. */
const char *k_cpu_gemm_family(void);
/* Tests and benchmarks: run family f from now on (false when f is not available). Not to be
 * called while another thread runs a kernel. */
bool k_cpu_gemm_force(k_gemm_family f);
/* The family's name alone ("onednn", "openblas"). */
const char *k_cpu_gemm_family_name(k_gemm_family f);

/* True when hired may use AVX-512 (F at least) here: the CPU has it and HIRED_MAX_CPU_ISA does
 * not cap the CPU kernels at AVX2 (k_cpu_isa_capped). Every AVX-512 path asks this, never the
 * CPU alone. Both are defined in simd_x86.c. */
bool k_cpu_avx512_usable(void);
/* True when HIRED_MAX_CPU_ISA=avx2 is set: hired's own kernels and oneDNN keep to AVX2/FMA/F16C
 * on a CPU with AVX-512, as on one without it (to reproduce an AVX2-only machine's paths and
 * figures, or to keep AVX-512 off where it costs clock speed). Read once per process; another
 * value than avx2 or native is warned about and ignored. */
bool k_cpu_isa_capped(void);

/* C = alpha·A·op(B) + beta·C as above; lda ≥ k, ldb ≥ (trans_b ? k : n), ldc ≥ n, all > 0. */
void k_cpu_sgemm(bool trans_b, int m, int n, int k, float alpha, const float *a, size_t lda, const float *b, size_t ldb,
                 float beta, float *c, size_t ldc);

/* True when oneDNN runs bf16 matmul natively on this CPU (its ISA has AVX512-BF16 or AMX):
 * the condition for matmul's BF16 precision (matmul.h). Emulated bf16 is never used. */
bool k_cpu_have_bf16_gemm(void);
/* C[m,n] = A[m,k] · B[n,k]ᵀ (+ bias[n]) with bf16 A and B (row strides lda, ldb) and float32
 * C (ldc), products exact in float32 and sums in float32; accumulate: C += that instead. oneDNN
 * threads it over the OpenMP threads (one inside a parallel region). False, with C untouched,
 * when oneDNN refuses (the caller then runs the float32 path). */
bool k_cpu_gemm_bf16_nt(int m, int n, int k, const uint16_t *a, size_t lda, const uint16_t *b, size_t ldb,
                        const float *bias, bool accumulate, float *c, size_t ldc);

#endif
