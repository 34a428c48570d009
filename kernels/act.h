/* act.h — elementwise activations: exact-erf GELU (projector), quick GELU (CLIP MLP), SiLU·up
 * (Llama/Mistral MLP).
 *
 * Every op maps n values of dtype (F32 on the CPU); y may equal the input (in place). Tolerance
 * against the double-precision reference: |a−b| ≤ 1e-7 + 2e-6·|ref| (test_k_act). Pointers are
 * device memory borrowed for the call. */
#ifndef HIRED_K_ACT_H
#define HIRED_K_ACT_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    int64_t n;
    const void *x;        /* [n] */
    void *y;              /* [n]; may alias x */
    tensor_dtype_t dtype;
} k_act_args;

/* y = 0.5·x·(1 + erf(x/√2)) — exact erf, not the tanh approximation. */
int k_gelu_erf_check(const k_act_args *a, char *err);
int k_gelu_erf(k_ctx_t *ctx, const k_act_args *a);

/* y = x·sigmoid(1.702·x). */
int k_quick_gelu_check(const k_act_args *a, char *err);
int k_quick_gelu(k_ctx_t *ctx, const k_act_args *a);

typedef struct {
    int64_t n;
    const void *gate;     /* [n] */
    const void *up;       /* [n] */
    void *y;              /* [n]; may alias gate or up */
    tensor_dtype_t dtype;
} k_silu_mul_args;

/* y = silu(gate)·up with silu(g) = g·sigmoid(g). */
int k_silu_mul_check(const k_silu_mul_args *a, char *err);
int k_silu_mul(k_ctx_t *ctx, const k_silu_mul_args *a);

#endif
