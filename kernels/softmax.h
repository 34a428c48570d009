/* softmax.h — row-wise softmax in place: x[i,j] = exp(x[i,j] − max_i) / Σ_j exp(x[i,j] − max_i).
 *
 * −inf entries become exactly 0; a row of all −inf becomes NaN (as in torch). Tolerance
 * |a−b| ≤ 1e-7 + 1e-5·|ref|. x is device memory borrowed for the call.
 * Not here: attention's fused softmax (attention.h), masking. */
#ifndef HIRED_K_SOFTMAX_H
#define HIRED_K_SOFTMAX_H

#include "backend.h"

typedef struct {
    int m, n;
    void *x;              /* [m, n], in place, row-wise, max-subtracted */
    tensor_dtype_t dtype;
} k_softmax_args;

int k_softmax_check(const k_softmax_args *a, char *err);
int k_softmax(k_ctx_t *ctx, const k_softmax_args *a);

#endif
