/* q8.c — the Q8 quantiser (see q8.h). Built with the project's strict IEEE flags: the weights
 * at load and the activations at every call go through these same lines, so a value has one
 * quantisation everywhere. */
#include "q8.h"

#include <math.h>
#include <string.h>

#include "err.h"
#include "mem.h"

void k_q8_quantize_row(const float *x, int64_t n, int8_t *q, float *d) {
    const int64_t kp = k_q8_row_stride(n), nb = kp / K_Q8_BLOCK;
    for (int64_t b = 0; b < nb; b++) {
        const int64_t p0 = b * K_Q8_BLOCK, len = n - p0 < K_Q8_BLOCK ? (n - p0 > 0 ? n - p0 : 0) : K_Q8_BLOCK;
        float amax = 0.0f;
        for (int64_t p = 0; p < len; p++) {
            float v = fabsf(x[p0 + p]);
            if (v > amax) amax = v;
        }
        int8_t *qb = q + p0;
        if (!(amax > 0.0f) || !isfinite(amax)) { /* zeros (or a value no scale can hold): all zero */
            d[b] = 0.0f;
            memset(qb, 0, K_Q8_BLOCK);
            continue;
        }
        const float id = 127.0f / amax;
        d[b] = amax / 127.0f;
        for (int64_t p = 0; p < len; p++) {
            float r = nearbyintf(x[p0 + p] * id); /* the default rounding: to nearest, ties to even */
            qb[p] = (int8_t)(r > 127.0f ? 127.0f : r < -127.0f ? -127.0f : r);
        }
        for (int64_t p = len; p < K_Q8_BLOCK; p++) qb[p] = 0;
    }
}

int k_q8_quantize(const void *src, tensor_dtype_t dt, int64_t rows, int64_t cols, void *dst) {
    const int64_t kp = k_q8_row_stride(cols), nb = k_q8_row_blocks(cols);
    int8_t *q = dst;
    float *d = (float *)(q + (size_t)rows * (size_t)kp);
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
            k_q8_quantize_row(row, cols, q + (size_t)j * (size_t)kp, d + (size_t)j * (size_t)nb);
        }
        mem_free(row);
    }
    return failed ? HIRED_ENOMEM : HIRED_OK;
}

void k_q8_dequantize_row(const void *w, int64_t rows, int64_t cols, int64_t j, float *out) {
    const int64_t kp = k_q8_row_stride(cols), nb = k_q8_row_blocks(cols);
    const int8_t *q = k_q8_quants(w) + (size_t)j * (size_t)kp;
    const float *d = k_q8_scales(w, rows, cols) + (size_t)j * (size_t)nb;
    for (int64_t p = 0; p < cols; p++) out[p] = d[p / K_Q8_BLOCK] * (float)q[p];
}
