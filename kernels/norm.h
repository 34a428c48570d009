/* norm.h — row normalisations: LayerNorm (CLIP) and RMSNorm (Llama/Mistral, HF order).
 *
 * x and y are [m, d] dense of dtype (F32 on the CPU) and y may equal x (in place). Statistics
 * are computed in float32 by the fast path and in double by the reference; tolerance
 * |a−b| ≤ 1e-5 + 1e-5·|ref| for inputs of unit scale. Pointers are device memory borrowed for
 * the call. Not here: the residual add (add.h). */
#ifndef HIRED_K_NORM_H
#define HIRED_K_NORM_H

#include "backend.h"

typedef struct {
    int m, d;
    const void *x;        /* [m, d] */
    void *y;              /* [m, d]; may equal x */
    const float *gamma;   /* [d] */
    const float *beta;    /* [d] or NULL (no shift) */
    float eps;
    tensor_dtype_t dtype; /* x and y */
} k_layernorm_args;

/* y = (x − mean) / sqrt(var + eps) · gamma + beta, biased variance over each row of d. */
int k_layernorm_check(const k_layernorm_args *a, char *err);
int k_layernorm(k_ctx_t *ctx, const k_layernorm_args *a);

typedef struct {
    int m, d;
    const void *x;        /* [m, d] */
    void *y;              /* [m, d]; may equal x */
    const float *gamma;   /* [d] */
    float eps;
    tensor_dtype_t dtype; /* x and y */
} k_rmsnorm_args;

/* y = (x · rsqrt(mean(x²) + eps)) · gamma — HF order: normalise, then times weight. */
int k_rmsnorm_check(const k_rmsnorm_args *a, char *err);
int k_rmsnorm(k_ctx_t *ctx, const k_rmsnorm_args *a);

#endif
