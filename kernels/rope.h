/* rope.h — HF half-split rotary position embedding (docs/numerics.md §6.2), in place on q or k.
 *
 * For each row i (position pos0 + i), each head, and each i2 < head_dim/2:
 *   inv_freq = 1 / powf((float)theta, (float)(2·i2) / (float)head_dim)   (float32, as torch)
 *   angle    = (float)pos · inv_freq (float32 product); c = cosf(angle), s = sinf(angle)
 *   out[i2] = x[i2]·c − x[i2+h/2]·s;   out[i2+h/2] = x[i2+h/2]·c + x[i2]·s
 * Dims (i2, i2 + head_dim/2) rotate together — not the interleaved Meta pairing.
 * Tolerance against the reference: |a−b| ≤ 1e-6 + 1e-5·|ref| (positions up to 32k).
 * x is device memory borrowed for the call. Not here: applying it inside attention. */
#ifndef HIRED_K_ROPE_H
#define HIRED_K_ROPE_H

#include "backend.h"

typedef struct {
    int t, n_head, head_dim; /* head_dim even */
    void *x;                 /* [t, n_head*head_dim] of dtype, row stride ld (0 = dense); in place */
    int ld;
    int pos0;                /* row i has position pos0 + i (≥ 0) */
    double theta;            /* rope base, > 0 (10000, 1e6) */
    tensor_dtype_t dtype;
} k_rope_args;

int k_rope_check(const k_rope_args *a, char *err);
int k_rope(k_ctx_t *ctx, const k_rope_args *a);

#endif
