/* cpu_ops.h — the CPU backend's entry points and the reference loops, per op. Only the
 * registry (kernels/registry.c), the kernel tests and the kernel benchmark include this header;
 * model code reaches these through k_<op>(ctx, &args), never directly (a ctest checks it).
 *
 * k_<op>_cpu(ctx, a): the fast path (OpenBLAS, OpenMP, AVX2/AVX-512 chosen at run time) on
 * checked arguments with F32 activations; scratch comes from ctx's arena. Returns 0; paths that
 * need scratch fall back to a slower one that needs none when the arena cannot grow, so they
 * never fail. k_<op>_cpu_workspace(a): the arena bytes that call takes.
 * k_<op>_ref(a): plain loops in double (or exact) arithmetic, no allocation, the yardstick every
 * backend is compared with. Pointers in the arguments are host memory here. */
#ifndef HIRED_K_CPU_OPS_H
#define HIRED_K_CPU_OPS_H

#include <stdbool.h>
#include <stddef.h>

#include "act.h"
#include "add.h"
#include "attention.h"
#include "backend.h"
#include "cast.h"
#include "embed.h"
#include "gather.h"
#include "matmul.h"
#include "norm.h"
#include "rope.h"
#include "softmax.h"
#include "topk.h"

/* matmul: sgemm slices on OpenMP threads (single-threaded BLAS; the CPU backend sets OpenBLAS
 * to one thread for the whole process on first use, see cpu_util.h, and OMP_NUM_THREADS bounds
 * the threads); F16/BF16 weights converted in blocks of rows (up to 16 MiB of float32) into
 * arena scratch, or for small m streamed through a fused convert-and-dot kernel; without
 * scratch the fused kernel. */
void k_matmul_ref(const k_matmul_args *a);
int k_matmul_cpu(k_ctx_t *ctx, const k_matmul_args *a);
size_t k_matmul_cpu_workspace(const k_matmul_args *a);
/* k_matmul_cpu with a given launch instead of its own plan — any variant on any shape (tests
 * force each branch; the bench compares them). l->variant must suit a->w_dtype (SGEMM for F32
 * weights, FUSED, CONVERT or BF16 otherwise; BF16 only where k_cpu_have_bf16_gemm()) and
 * l->simd must only be set on a CPU with AVX2+FMA+F16C. */
int k_matmul_cpu_planned(k_ctx_t *ctx, const k_matmul_args *a, const k_matmul_launch *l);

/* Q8 weights (q8.h, kernels/cpu/matmul_q8.c): the kernel family, chosen by CPUID. */
typedef enum { K_Q8_ISA_PORTABLE = 0, K_Q8_ISA_AVX2, K_Q8_ISA_VNNI, K_Q8_ISA_COUNT } k_q8_isa;
/* The best kernel this CPU runs (what k_matmul_cpu uses). */
k_q8_isa k_matmul_q8_best_isa(void);
bool k_matmul_q8_isa_available(k_q8_isa isa);
/* "AVX-512 VNNI", "AVX2 maddubs", "portable C". Static storage. */
const char *k_matmul_q8_isa_name(k_q8_isa isa);
/* A checked matmul with Q8 weights under launch l (variant K_MATMUL_Q8: n_threads, block_m) with
 * the kernel isa (which must be available; tests run each). 0, or HIRED_ENOMEM with k_ctx_err
 * when the arena cannot hold block_m quantised x rows. */
int k_matmul_q8_cpu(k_ctx_t *ctx, const k_matmul_args *a, const k_matmul_launch *l, k_q8_isa isa);

void k_layernorm_ref(const k_layernorm_args *a);
int k_layernorm_cpu(k_ctx_t *ctx, const k_layernorm_args *a);
void k_rmsnorm_ref(const k_rmsnorm_args *a);
int k_rmsnorm_cpu(k_ctx_t *ctx, const k_rmsnorm_args *a);

void k_softmax_ref(const k_softmax_args *a);
int k_softmax_cpu(k_ctx_t *ctx, const k_softmax_args *a);

/* attention: per (head, block of queries) sgemm scores into arena scratch, softmax rows, sgemm
 * with v; work items over OpenMP threads. Decode (t_q = 1) groups the q heads of one kv head
 * into one GEMM. Without scratch it streams keys with an online softmax. */
void k_attention_ref(const k_attention_args *a);
int k_attention_cpu(k_ctx_t *ctx, const k_attention_args *a);
size_t k_attention_cpu_workspace(const k_attention_args *a);
/* attn_row: per head one matrix-vector product (k_cpu_sgemm) of the keys with the query, then
 * the shared exp row. */
void k_attn_row_ref(const k_attn_row_args *a);
int k_attn_row_cpu(k_ctx_t *ctx, const k_attn_row_args *a);

void k_gelu_erf_ref(const k_act_args *a);
int k_gelu_erf_cpu(k_ctx_t *ctx, const k_act_args *a);
void k_quick_gelu_ref(const k_act_args *a);
int k_quick_gelu_cpu(k_ctx_t *ctx, const k_act_args *a);
void k_silu_mul_ref(const k_silu_mul_args *a);
int k_silu_mul_cpu(k_ctx_t *ctx, const k_silu_mul_args *a);

/* rope: cos/sin once per row, applied to every head; rows over OpenMP threads. */
void k_rope_ref(const k_rope_args *a);
int k_rope_cpu(k_ctx_t *ctx, const k_rope_args *a);

/* cast: half.h's branch-free conversions, vectorised, over chunks on OpenMP threads; bit for bit
 * the reference's scalar ones. */
void k_cast_ref(const k_cast_args *a);
int k_cast_cpu(k_ctx_t *ctx, const k_cast_args *a);
void k_add_ref(const k_add_args *a);
int k_add_cpu(k_ctx_t *ctx, const k_add_args *a);
void k_sum_rows_ref(const k_sum_rows_args *a);
int k_sum_rows_cpu(k_ctx_t *ctx, const k_sum_rows_args *a);

void k_embed_ref(const k_embed_args *a);
int k_embed_cpu(k_ctx_t *ctx, const k_embed_args *a);
/* patch_embed: im2col into arena scratch, then the fast matmul; without scratch, the
 * reference loops. */
void k_patch_embed_ref(const k_patch_embed_args *a);
int k_patch_embed_cpu(k_ctx_t *ctx, const k_patch_embed_args *a);
size_t k_patch_embed_cpu_workspace(const k_patch_embed_args *a);

/* topk: k selection passes (ref, O(n·k)); a bounded heap kept in idx itself (cpu, O(n log k),
 * no scratch). */
void k_topk_ref(const k_topk_args *a);
int k_topk_cpu(k_ctx_t *ctx, const k_topk_args *a);

void k_gather_ref(const k_gather_args *a);
int k_gather_cpu(k_ctx_t *ctx, const k_gather_args *a);
void k_mask_ref(const k_mask_args *a);
int k_mask_cpu(k_ctx_t *ctx, const k_mask_args *a);

#endif
