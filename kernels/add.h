/* add.h — sums: the elementwise y = a + b (residual connections, position embeddings) and the
 * column sums of a row block, y[j] = Σ_i x[i, j] (CLS attention summed over heads).
 *
 * add: y may alias a or b; exact (the fast path and the reference agree bit for bit).
 * sum_rows: float32 sums taken in row order i = 0, 1, ..., m−1 on every backend, so the fast
 * path and the reference agree bit for bit too. Pointers are device memory borrowed for the
 * call. */
#ifndef HIRED_K_ADD_H
#define HIRED_K_ADD_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    int64_t n;
    const void *a, *b;    /* [n] */
    void *y;              /* [n]; may alias a or b */
    tensor_dtype_t dtype;
} k_add_args;

int k_add_check(const k_add_args *a, char *err);
int k_add(k_ctx_t *ctx, const k_add_args *a);

typedef struct {
    int m, n;
    const void *x;        /* [m, n], row stride ldx (0 = n) */
    int ldx;
    void *y;              /* [n]; must not overlap x */
    tensor_dtype_t dtype;
} k_sum_rows_args;

int k_sum_rows_check(const k_sum_rows_args *a, char *err);
int k_sum_rows(k_ctx_t *ctx, const k_sum_rows_args *a);

#endif
