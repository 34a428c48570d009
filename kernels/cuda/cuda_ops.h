/* cuda_ops.h — the CUDA backend's entry points, per op: the registry's CUDA column
 * (kernels/registry.c) and nothing else calls these. Plain C declarations, defined in
 * cuda_ops.cu.
 *
 * k_<op>_cuda(ctx, a): the op on checked arguments whose pointers are device memory of ctx's
 * device, with F32 activations (weights F32, F16 or BF16 where the op has weights), issued on
 * ctx's stream without synchronising (topk is the exception: it downloads its n scores, ranks
 * them on the host with the CPU backend and uploads the k indices). Scratch comes from ctx's
 * arena (k_<op>_cuda_workspace bytes). Returns 0, HIRED_ENOMEM (arena), or HIRED_ECUDA with the
 * failed call named in k_ctx_err(ctx).
 *
 * Numerics (tolerances against the reference, test_backend_ops): matmul with F32 weights is an
 * F32 cuBLAS GEMM (no TF32), NMSE ≤ 1e-10 like the CPU; with F16/BF16 weights the activations
 * are rounded to the weights' dtype and multiplied on tensor cores with F32 accumulation, so
 * the error is that rounding's: NMSE ≤ 1e-6 (F16) and ≤ 2e-5 (BF16). Every other op keeps the
 * CPU's documented tolerance: norms, softmax and attention reduce in float32, activations and
 * rope's angle tables in double, add, sum_rows (rows added in order), embed, gather, mask,
 * cast (half.h's conversions on the float's bits) and topk are exact; patch_embed converts its
 * weight to F32 and runs the F32 GEMM. */
#ifndef HIRED_CUDA_OPS_H
#define HIRED_CUDA_OPS_H

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

#ifdef __cplusplus
extern "C" {
#endif

int k_matmul_cuda(k_ctx_t *ctx, const k_matmul_args *a);
size_t k_matmul_cuda_workspace(const k_matmul_args *a);
int k_layernorm_cuda(k_ctx_t *ctx, const k_layernorm_args *a);
int k_rmsnorm_cuda(k_ctx_t *ctx, const k_rmsnorm_args *a);
int k_softmax_cuda(k_ctx_t *ctx, const k_softmax_args *a);
int k_attention_cuda(k_ctx_t *ctx, const k_attention_args *a);
int k_attn_row_cuda(k_ctx_t *ctx, const k_attn_row_args *a);
int k_gelu_erf_cuda(k_ctx_t *ctx, const k_act_args *a);
int k_quick_gelu_cuda(k_ctx_t *ctx, const k_act_args *a);
int k_silu_mul_cuda(k_ctx_t *ctx, const k_silu_mul_args *a);
int k_rope_cuda(k_ctx_t *ctx, const k_rope_args *a);
int k_add_cuda(k_ctx_t *ctx, const k_add_args *a);
int k_cast_cuda(k_ctx_t *ctx, const k_cast_args *a);
int k_sum_rows_cuda(k_ctx_t *ctx, const k_sum_rows_args *a);
int k_embed_cuda(k_ctx_t *ctx, const k_embed_args *a);
int k_patch_embed_cuda(k_ctx_t *ctx, const k_patch_embed_args *a);
size_t k_patch_embed_cuda_workspace(const k_patch_embed_args *a);
int k_topk_cuda(k_ctx_t *ctx, const k_topk_args *a);
int k_gather_cuda(k_ctx_t *ctx, const k_gather_args *a);
int k_mask_cuda(k_ctx_t *ctx, const k_mask_args *a);

#ifdef __cplusplus
}
#endif

#endif
