/* q8.h — 8-bit weights (TENSOR_DTYPE_Q8): the layout, the one quantiser and the arithmetic every
 * backend's Q8 matmul implements.
 *
 * A Q8 weight [rows, cols] is one block of memory:
 *   quants  [rows, kp] int8, kp = cols rounded up to a multiple of 64 (the padding is zero);
 *   scales  [rows, kp/32] float32, right after the quants (kp is a multiple of 64, so the scales
 *           start 64-byte aligned when the block does; the scales of padding blocks are zero).
 * Row j's block b (32 values from column 32·b) holds q[p] = round(w[p] / d) with d = max|w| / 127
 * over the block (round to nearest, ties to even; an all-zero block has d = 0 and q = 0), so
 * |q| ≤ 127 and w ≈ d·q within d/2.
 *
 * The matmul (matmul.h) with Q8 weights quantises each x row the same way, block by block
 * (dx_b, qx), and computes y[i, j] = Σ_b dx_b · dw_b · Σ_{p in b} qx[p]·qw[p]: the integer block
 * sums are exact (|Σ| ≤ 32·127² < 2²⁴), only the float32 combination of the block terms
 * differs between implementations (the reference sums in double). Every output row depends only
 * on its own x row: the op is row-invariant by construction.
 * Not here: the kernels (kernels/cpu/matmul_q8.c), loading (model/weights.h). */
#ifndef HIRED_K_Q8_H
#define HIRED_K_Q8_H

#include <stddef.h>
#include <stdint.h>

#include "tensor.h"

#define K_Q8_BLOCK 32

/* Row stride of the quants: cols rounded up to a multiple of 64. */
static inline int64_t k_q8_row_stride(int64_t cols) { return (cols + 63) / 64 * 64; }
/* Scales per row (blocks, padding included). */
static inline int64_t k_q8_row_blocks(int64_t cols) { return k_q8_row_stride(cols) / K_Q8_BLOCK; }
/* Bytes of a Q8 weight [rows, cols], quants and scales. */
static inline size_t k_q8_bytes(int64_t rows, int64_t cols) {
    const size_t kp = (size_t)k_q8_row_stride(cols);
    return (size_t)rows * (kp + kp / K_Q8_BLOCK * sizeof(float));
}
static inline const int8_t *k_q8_quants(const void *w) { return (const int8_t *)w; }
static inline const float *k_q8_scales(const void *w, int64_t rows, int64_t cols) {
    return (const float *)((const int8_t *)w + (size_t)rows * (size_t)k_q8_row_stride(cols));
}

/* Scratch bytes the CPU matmul takes per x row it quantises (int8 values, the same plus 128 as
 * uint8, the scales, and the scales repeated per lane), a multiple of 64. */
static inline size_t k_q8_act_row_bytes(int64_t k) {
    const size_t kp = (size_t)k_q8_row_stride(k), nb = kp / K_Q8_BLOCK;
    return (2 * kp + nb * sizeof(float) * 9 + 63) / 64 * 64;
}

/* One row of n floats quantised into q [k_q8_row_stride(n)] (padding zeroed) and d
 * [k_q8_row_blocks(n)]. The quantiser of weights and of activations alike. */
void k_q8_quantize_row(const float *x, int64_t n, int8_t *q, float *d);

/* src [rows, cols] of dtype dt (F32, F16 or BF16, row-major) quantised into dst, a block of
 * k_q8_bytes(rows, cols) bytes (OpenMP threads over the rows). 0, or HIRED_ENOMEM when a
 * thread's row buffer cannot be allocated (dst is then incomplete). */
int k_q8_quantize(const void *src, tensor_dtype_t dt, int64_t rows, int64_t cols, void *dst);

/* Row j of a Q8 weight dequantised into out [cols] (d·q): for tests and tools. */
void k_q8_dequantize_row(const void *w, int64_t rows, int64_t cols, int64_t j, float *out);

#endif
