/* topk.h — indices of the k largest of n values (HiRED token selection, top-k sampling, greedy
 * argmax as k = 1, a full descending sort as k = n).
 *
 * Order: descending value; equal values (including −0 = +0) by ascending index; NaN sorts
 * below everything (NaNs among themselves by index). The fast path and reference return the
 * same indices. Pointers are device memory borrowed for the call. */
#ifndef HIRED_K_TOPK_H
#define HIRED_K_TOPK_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    int n, k;             /* 0 ≤ k ≤ n */
    const void *x;        /* [n] of dtype */
    int32_t *idx;         /* [k] out, best first */
    tensor_dtype_t dtype;
} k_topk_args;

int k_topk_check(const k_topk_args *a, char *err);
int k_topk(k_ctx_t *ctx, const k_topk_args *a);

#endif
