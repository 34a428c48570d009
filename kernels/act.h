/* act.h — elementwise activations: exact-erf GELU (projector), quick GELU (CLIP MLP), SiLU·up
 * (Llama/Mistral MLP).
 *
 * Every op maps n float32 values; y may equal the input (in place). Tolerance against the
 * double-precision reference: |a−b| ≤ 1e-7 + 2e-6·|ref| (test_k_act). Pointers are borrowed
 * for the call. */
#ifndef HIRED_K_ACT_H
#define HIRED_K_ACT_H

#include <stdint.h>

typedef struct {
    int64_t n;
    const float *x; /* [n] */
    float *y;       /* [n]; may alias x */
} k_act_args;

/* y = 0.5·x·(1 + erf(x/√2)) — exact erf, not the tanh approximation. */
int k_gelu_erf_check(const k_act_args *a, char *err);
void k_gelu_erf_ref(const k_act_args *a);
void k_gelu_erf_cpu(const k_act_args *a);

/* y = x·sigmoid(1.702·x). */
int k_quick_gelu_check(const k_act_args *a, char *err);
void k_quick_gelu_ref(const k_act_args *a);
void k_quick_gelu_cpu(const k_act_args *a);

typedef struct {
    int64_t n;
    const float *gate; /* [n] */
    const float *up;   /* [n] */
    float *y;          /* [n]; may alias gate or up */
} k_silu_mul_args;

/* y = silu(gate)·up with silu(g) = g·sigmoid(g). */
int k_silu_mul_check(const k_silu_mul_args *a, char *err);
void k_silu_mul_ref(const k_silu_mul_args *a);
void k_silu_mul_cpu(const k_silu_mul_args *a);

#endif
