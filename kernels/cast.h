/* cast.h — float32 values rounded into a narrower dtype on the device: y[i] = x[i] as F16 or
 * BF16 (or copied, for F32), round-to-nearest-even, values past the half range to ±inf and any
 * nan to the quiet nan (half.h's f32_to_half / f32_to_bf16: the contract on every backend, bit
 * for bit). What writes new keys and values into an F16 or BF16 KV cache, straight from the
 * float32 projections into the cache's rows, without a trip through host memory.
 * Pointers are device memory borrowed for the call; x and y must not overlap. */
#ifndef HIRED_K_CAST_H
#define HIRED_K_CAST_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    int64_t n;            /* elements */
    const void *x;        /* [n] float32 */
    void *y;              /* [n] of dtype */
    tensor_dtype_t dtype; /* F16, BF16 or F32 */
} k_cast_args;

int k_cast_check(const k_cast_args *a, char *err);
int k_cast(k_ctx_t *ctx, const k_cast_args *a);

#endif
