/* gather.h — data movement by index on the device: row gather (image features into the
 * residual stream, kept tokens out of the feature map, packed visual rows into the prompt,
 * candidate logits) and the index mask (EOS ids masked to −inf while min_tokens is not met).
 *
 * gather: y[i, 0:d] = x[r, 0:d] with r = idx[i] (or r = i when idx is NULL), row i of y at
 * i·ldy and row r of x at r·ldx; ldx = 0 means d, ldy = 0 means d. A pure copy: exact on every
 * backend. Rows of y must not overlap rows of x that are read.
 * mask: y[idx[i]] = value for i < n.
 * Every index must lie in range (the callers build them; a check cannot read device memory).
 * Pointers are device memory borrowed for the call. */
#ifndef HIRED_K_GATHER_H
#define HIRED_K_GATHER_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    int n, d;             /* rows gathered, values per row */
    const void *x;        /* source rows of dtype, row stride ldx */
    int ldx;
    const int32_t *idx;   /* [n] source row per output row, or NULL (row i) */
    void *y;              /* [n, d] of dtype, row stride ldy */
    int ldy;
    tensor_dtype_t dtype;
} k_gather_args;

int k_gather_check(const k_gather_args *a, char *err);
int k_gather(k_ctx_t *ctx, const k_gather_args *a);

typedef struct {
    int n;                /* indices */
    const int32_t *idx;   /* [n], each in [0, len) */
    int len;              /* elements of y */
    float value;
    void *y;              /* [len] of dtype */
    tensor_dtype_t dtype;
} k_mask_args;

int k_mask_check(const k_mask_args *a, char *err);
int k_mask(k_ctx_t *ctx, const k_mask_args *a);

#endif
