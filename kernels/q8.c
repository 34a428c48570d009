/* q8.c — the Q8 quantiser (see q8.h). Built with the project's strict IEEE flags: the weights
 * at load and the activations at every call go through these same lines, so a value has one
 * quantisation everywhere. */
#include "q8.h"

#include <math.h>
#include <string.h>

#include "err.h"
#include "half.h"
#include "mem.h"

/* Block b of a row: max|x| over its len values (len ≤ 32; the rest is padding). */
static float block_amax(const float *x, int64_t len) {
    float amax = 0.0f;
    for (int64_t p = 0; p < len; p++) {
        float v = fabsf(x[p]);
        if (v > amax) amax = v;
    }
    return amax;
}

/* qb [32] = round(x · id) clamped to ±127 for the len values, zeros after. */
static void block_round(const float *x, int64_t len, float id, int8_t *qb) {
    for (int64_t p = 0; p < len; p++) {
        float r = nearbyintf(x[p] * id); /* the default rounding: to nearest, ties to even */
        qb[p] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
    }
    for (int64_t p = len; p < K_Q8_BLOCK; p++) qb[p] = 0;
}

static int64_t block_len(int64_t n, int64_t p0) { return n - p0 < K_Q8_BLOCK ? (n - p0 > 0 ? n - p0 : 0) : K_Q8_BLOCK; }

void k_q8_quantize_row(const float *x, int64_t n, int8_t *q, float *d) {
    const int64_t kp = k_q8_row_stride(n), nb = kp / K_Q8_BLOCK;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t p0 = b * K_Q8_BLOCK, len = block_len(n, p0);
        const float amax = block_amax(x + p0, len);
        if (!(amax > 0.0f) || !isfinite(amax)) { /* zeros (or a value no scale can hold): all zero */
            d[b] = 0.0f;
            memset(q + p0, 0, K_Q8_BLOCK);
            continue;
        }
        d[b] = amax / 127.0f;
        block_round(x + p0, len, 127.0f / amax, q + p0);
    }
}

void k_q8_quantize_weight_row(const float *x, int64_t n, int8_t *q, uint16_t *d) {
    const int64_t kp = k_q8_row_stride(n), nb = kp / K_Q8_BLOCK;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t p0 = b * K_Q8_BLOCK, len = block_len(n, p0);
        const float amax = block_amax(x + p0, len);
        const uint16_t h = f32_to_half(amax / 127.0f);
        const float dh = half_to_f32(h);
        if (!(amax > 0.0f) || !(dh > 0.0f) || !isfinite(dh)) { /* zeros, or no half scale holds the block */
            d[b] = 0;
            memset(q + p0, 0, K_Q8_BLOCK);
            continue;
        }
        d[b] = h;
        block_round(x + p0, len, 1.0f / dh, q + p0);
    }
}

int k_q8_quantize(const void *src, tensor_dtype_t dt, int64_t rows, int64_t cols, void *dst) {
    const int64_t kp = k_q8_row_stride(cols), nb = k_q8_row_blocks(cols);
    int8_t *q = dst;
    uint16_t *d = (uint16_t *)(void *)(q + (size_t)rows * (size_t)kp);
    const size_t esz = tensor_dtype_size(dt);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *row = mem_alloc((size_t)cols * sizeof(float)); /* the row in float32 */
        failed = !row;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < rows; j++) {
            if (!row) continue;
            tensor_convert_to_f32(row, (const uint8_t *)src + (size_t)j * (size_t)cols * esz, dt, (size_t)cols);
            k_q8_quantize_weight_row(row, cols, q + (size_t)j * (size_t)kp, d + (size_t)j * (size_t)nb);
        }
        mem_free(row);
    }
    return failed ? HIRED_ENOMEM : HIRED_OK;
}

void k_q8_dequantize_row(const void *w, int64_t rows, int64_t cols, int64_t j, float *out) {
    const int64_t kp = k_q8_row_stride(cols), nb = k_q8_row_blocks(cols);
    const int8_t *q = k_q8_quants(w) + (size_t)j * (size_t)kp;
    const uint16_t *d = k_q8_scales(w, rows, cols) + (size_t)j * (size_t)nb;
    for (int64_t p = 0; p < cols; p++) out[p] = half_to_f32(d[p / K_Q8_BLOCK]) * (float)q[p];
}
