/* weights.c — checkpoint tensors and random values placed as k_weight_t (see weights.h). */
#include "weights.h"

#include "err.h"
#include "mem.h"
#include "q8.h"

/* Rows and columns of the matrix view of shape[0..ndim). */
static void as_matrix(int ndim, const int64_t *shape, int64_t *rows, int64_t *cols) {
    *rows = shape[0];
    *cols = 1;
    for (int i = 1; i < ndim; i++) *cols *= shape[i];
}

/* The checked tensor `name` of shape[ndim] and its [rows, cols] view. 0 or HIRED_E* with err. */
static int get_matrix(const st_model_t *st, const char *name, int ndim, const int64_t *shape, tensor_t *t,
                      int64_t *rows, int64_t *cols, char *err) {
    int rc = st_model_get_shaped(st, name, ndim, shape, t, err);
    if (!rc) as_matrix(ndim, shape, rows, cols);
    return rc;
}

int weights_matrix(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                   k_weight_t *w, char *err) {
    tensor_t t;
    int64_t rows, cols;
    int rc = get_matrix(st, name, ndim, shape, &t, &rows, &cols, err);
    if (rc) return rc;
    rc = k_weight_place(dev, t.data, t.dtype, rows, cols, false, w, err);
    /* on the CPU the weights are the mapped bytes; a device has copied them */
    if (!rc && k_device_backend(dev) != K_BACKEND_CPU) st_model_release(st, &t);
    return rc;
}

int weights_matrix_q8(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                      k_weight_t *w, char *err) {
    tensor_t t;
    int64_t rows, cols;
    int rc = get_matrix(st, name, ndim, shape, &t, &rows, &cols, err);
    if (rc) return rc;
    if (k_device_backend(dev) != K_BACKEND_CPU) /* before any work: the placement would refuse it */
        return k_weight_place(dev, t.data, TENSOR_DTYPE_Q8, rows, cols, false, w, err);
    void *q = mem_alloc_aligned(k_q8_bytes(rows, cols));
    if (!q || k_q8_quantize(t.data, t.dtype, rows, cols, q)) {
        mem_free_aligned(q);
        return hired_errf(err, HIRED_ENOMEM, "%s: out of memory quantising [%lld, %lld] to 8 bits", name,
                          (long long)rows, (long long)cols);
    }
    st_model_release(st, &t); /* the checkpoint's pages are no longer needed (st.h) */
    return k_weight_place(dev, q, TENSOR_DTYPE_Q8, rows, cols, true, w, err);
}

int weights_matrix_bf16(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                        k_weight_t *w, char *err) {
    tensor_t t;
    int64_t rows, cols;
    int rc = get_matrix(st, name, ndim, shape, &t, &rows, &cols, err);
    if (rc) return rc;
    if (t.dtype == TENSOR_DTYPE_BF16) return k_weight_place(dev, t.data, t.dtype, rows, cols, false, w, err);
    const size_t n = (size_t)rows * (size_t)cols, esz = tensor_dtype_size(t.dtype), block = 4096;
    uint16_t *host = mem_alloc_aligned(n * 2);
    if (!host) return hired_errf(err, HIRED_ENOMEM, "%s: out of memory rounding [%lld, %lld] to bf16", name,
                                 (long long)rows, (long long)cols);
    const long long nb = (long long)((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (long long b = 0; b < nb; b++) { /* exact to float32, then rounded to nearest even */
        float buf[4096];
        size_t i0 = (size_t)b * block, cnt = n - i0 < block ? n - i0 : block;
        tensor_convert_to_f32(buf, (const uint8_t *)t.data + i0 * esz, t.dtype, cnt);
        tensor_convert_from_f32(host + i0, buf, TENSOR_DTYPE_BF16, cnt);
    }
    st_model_release(st, &t); /* the checkpoint's pages are no longer needed (st.h) */
    return k_weight_place(dev, host, TENSOR_DTYPE_BF16, rows, cols, true, w, err);
}

int weights_f32(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                k_weight_t *w, char *err) {
    float *v = st_model_load_f32(st, name, ndim, shape, err);
    if (!v) return HIRED_ENOTFOUND;
    int64_t rows, cols;
    as_matrix(ndim, shape, &rows, &cols);
    return k_weight_place(dev, v, TENSOR_DTYPE_F32, rows, cols, true, w, err);
}

/* A value in [−scale, scale) that depends only on (seed, i) (splitmix64 finaliser on a counter). */
static float rnd_at(uint64_t seed, uint64_t i, float scale) {
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return scale * ((float)(z >> 40) / (float)(1ull << 24) * 2.0f - 1.0f);
}

/* Q8: each row's values in float32, then quantised (one row buffer per thread). */
static int random_q8(k_device_t *dev, int64_t rows, int64_t cols, uint64_t seed, float base, float scale, k_weight_t *w,
                     char *err) {
    uint8_t *host = mem_alloc_aligned(k_q8_bytes(rows, cols));
    if (!host) return hired_errf(err, HIRED_ENOMEM, "out of memory for [%lld, %lld] random 8-bit weights",
                                 (long long)rows, (long long)cols);
    const int64_t kp = k_q8_row_stride(cols), nb = k_q8_row_blocks(cols);
    uint16_t *scales = (uint16_t *)(void *)(host + (size_t)rows * (size_t)kp);
    int failed = 0;
#pragma omp parallel reduction(| : failed)
    {
        float *row = mem_alloc((size_t)cols * sizeof(float));
        failed = !row;
#pragma omp for schedule(static)
        for (int64_t j = 0; j < rows; j++) {
            if (!row) continue;
            for (int64_t p = 0; p < cols; p++) row[p] = base + rnd_at(seed, (uint64_t)(j * cols + p), scale);
            k_q8_quantize_weight_row(row, cols, (int8_t *)host + (size_t)j * (size_t)kp, scales + (size_t)j * (size_t)nb);
        }
        mem_free(row);
    }
    if (failed) {
        mem_free_aligned(host);
        return hired_errf(err, HIRED_ENOMEM, "out of memory for random 8-bit weights");
    }
    return k_weight_place(dev, host, TENSOR_DTYPE_Q8, rows, cols, true, w, err);
}

int weights_random(k_device_t *dev, tensor_dtype_t dtype, int64_t rows, int64_t cols, uint64_t seed, float base,
                   float scale, k_weight_t *w, char *err) {
    if (dtype == TENSOR_DTYPE_Q8) return random_q8(dev, rows, cols, seed, base, scale, w, err);
    const size_t n = (size_t)rows * (size_t)cols, esz = tensor_dtype_size(dtype), block = 4096;
    uint8_t *host = mem_alloc_aligned(n * esz);
    if (!host) return hired_errf(err, HIRED_ENOMEM, "out of memory for %zu random weights", n);
    const long long nb = (long long)((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (long long b = 0; b < nb; b++) {
        float buf[4096];
        size_t i0 = (size_t)b * block, cnt = n - i0 < block ? n - i0 : block;
        for (size_t i = 0; i < cnt; i++) buf[i] = base + rnd_at(seed, i0 + i, scale);
        tensor_convert_from_f32(host + i0 * esz, buf, dtype, cnt);
    }
    return k_weight_place(dev, host, dtype, rows, cols, true, w, err);
}
