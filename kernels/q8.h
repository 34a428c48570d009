/* q8.h — 8-bit weights (TENSOR_DTYPE_Q8): the layout, the one quantiser and the arithmetic every
 * backend's Q8 matmul implements.
 *
 * A Q8 weight [rows, cols] is one block of memory:
 *   quants  [rows, kp] int8, kp = cols rounded up to a multiple of 64 (the padding is zero);
 *   scales  [rows, kp/32] IEEE half (F16), right after the quants (kp is a multiple of 64, so
 *           the scales start 64-byte aligned when the block does; the scales of padding blocks
 *           are zero). 34 bytes per 32 weights, as llama.cpp's Q8_0: a decode step streams
 *           them, and float32 scales were 6% more bytes.
 * Row j's block b (32 values from column 32·b) holds the scale d = max|w| / 127 over the block
 * rounded to the nearest half, and q[p] = round(w[p] / d) (to nearest, ties to even, clamped to
 * ±127; an all-zero block, or one whose scale rounds to 0 or past the half range, has d = 0
 * and q = 0), so w ≈ d·q within d/2 (plus the scale's rounding, at most 2⁻¹¹·|w|).
 *
 * The matmul (matmul.h) with Q8 weights quantises each x row the same way, block by block, with
 * float32 scales (dx_b, qx: k_q8_quantize_row), and computes
 * y[i, j] = Σ_b dx_b · dw_b · Σ_{p in b} qx[p]·qw[p]: the integer block sums are exact
 * (|Σ| ≤ 32·127² < 2²⁴), only the float32 combination of the block terms differs between
 * implementations (the reference sums in double). Every output row depends only
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
    return (size_t)rows * (kp + kp / K_Q8_BLOCK * sizeof(uint16_t));
}
static inline const int8_t *k_q8_quants(const void *w) { return (const int8_t *)w; }
static inline const uint16_t *k_q8_scales(const void *w, int64_t rows, int64_t cols) {
    return (const uint16_t *)(const void *)((const int8_t *)w + (size_t)rows * (size_t)k_q8_row_stride(cols));
}

/* Scratch bytes the CPU matmul takes per x row it quantises (int8 values, the same plus 128 as
 * uint8, the scales, and the scales repeated per lane), a multiple of 64. */
static inline size_t k_q8_act_row_bytes(int64_t k) {
    const size_t kp = (size_t)k_q8_row_stride(k), nb = kp / K_Q8_BLOCK;
    return (2 * kp + nb * sizeof(float) * 9 + 63) / 64 * 64;
}

/* One row of n floats quantised into q [k_q8_row_stride(n)] (padding zeroed) and float32 scales
 * d [k_q8_row_blocks(n)] (d = max|x| / 127): the activations' quantiser. A weight row
 * (k_q8_quantize) takes the same blocks and rounding with its scale rounded to a half first. */
void k_q8_quantize_row(const float *x, int64_t n, int8_t *q, float *d);

/* One weight row of n floats into q [k_q8_row_stride(n)] and half scales d [k_q8_row_blocks(n)]:
 * each block's scale rounded to a half first, its values rounded against that scale (the
 * layout above). What k_q8_quantize does row by row. */
void k_q8_quantize_weight_row(const float *x, int64_t n, int8_t *q, uint16_t *d);

/* src [rows, cols] of dtype dt (F32, F16 or BF16, row-major) quantised into dst, a block of
 * k_q8_bytes(rows, cols) bytes (OpenMP threads over the rows). 0, or HIRED_ENOMEM when a
 * thread's row buffer cannot be allocated (dst is then incomplete). */
int k_q8_quantize(const void *src, tensor_dtype_t dt, int64_t rows, int64_t cols, void *dst);

/* Row j of a Q8 weight dequantised into out [cols] (d·q): for tests and tools. */
void k_q8_dequantize_row(const void *w, int64_t rows, int64_t cols, int64_t j, float *out);

#endif
