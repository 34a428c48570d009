/* norm.h — row normalisations: LayerNorm (CLIP) and RMSNorm (Llama/Mistral, HF order).
 *
 * x and y are [m, d] dense float32 and y may equal x (in place). Statistics are computed
 * in float32 by the fast path and in double by the reference; tolerance |a−b| ≤ 1e-5 + 1e-5·|ref|
 * for inputs of unit scale. Pointers are borrowed for the call.
 * Not here: the residual add (add.h). */
#ifndef HIRED_K_NORM_H
#define HIRED_K_NORM_H

typedef struct {
    int m, d;
    const float *x;     /* [m, d] */
    float *y;           /* [m, d]; may equal x */
    const float *gamma; /* [d] */
    const float *beta;  /* [d] or NULL (no shift) */
    float eps;
} k_layernorm_args;

/* y = (x − mean) / sqrt(var + eps) · gamma + beta, biased variance over each row of d. */
int k_layernorm_check(const k_layernorm_args *a, char *err);
void k_layernorm_ref(const k_layernorm_args *a);
void k_layernorm_cpu(const k_layernorm_args *a);

typedef struct {
    int m, d;
    const float *x;     /* [m, d] */
    float *y;           /* [m, d]; may equal x */
    const float *gamma; /* [d] */
    float eps;
} k_rmsnorm_args;

/* y = (x · rsqrt(mean(x²) + eps)) · gamma — HF order: normalise, then times weight. */
int k_rmsnorm_check(const k_rmsnorm_args *a, char *err);
void k_rmsnorm_ref(const k_rmsnorm_args *a);
void k_rmsnorm_cpu(const k_rmsnorm_args *a);

#endif
