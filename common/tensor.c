/* tensor.c — see tensor.h. */
#include "tensor.h"

#include <stdio.h>
#include <string.h>

#include "half.h"
#include "mem.h"

size_t tensor_dtype_size(tensor_dtype_t dt) { return dt == TENSOR_DTYPE_F32 ? 4 : dt == TENSOR_DTYPE_Q8 ? 1 : 2; }

const char *tensor_dtype_name(tensor_dtype_t dt) {
    switch (dt) {
    case TENSOR_DTYPE_F32: return "F32";
    case TENSOR_DTYPE_F16: return "F16";
    case TENSOR_DTYPE_BF16: return "BF16";
    case TENSOR_DTYPE_Q8: return "Q8";
    }
    return "?";
}

static void set_contiguous(tensor_t *t, tensor_dtype_t dt, int ndim, const int64_t *shape) {
    memset(t, 0, sizeof *t);
    t->dtype = dt;
    t->ndim = ndim;
    int64_t stride = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        t->shape[i] = shape[i];
        t->strides[i] = stride;
        stride *= shape[i];
    }
}

tensor_t *tensor_new(tensor_dtype_t dt, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > TENSOR_MAX_DIMS) return NULL;
    for (int i = 0; i < ndim; i++)
        if (shape[i] < 0) return NULL;
    tensor_t *t = mem_alloc(sizeof *t);
    if (!t) return NULL;
    set_contiguous(t, dt, ndim, shape);
    size_t n = tensor_nbytes(t);
    t->data = mem_alloc_aligned(n);
    if (!t->data) {
        mem_free(t);
        return NULL;
    }
    memset(t->data, 0, n);
    t->owns_data = true;
    return t;
}

void tensor_destroy(tensor_t **t) {
    if (!t || !*t) return;
    if ((*t)->owns_data) mem_free_aligned((*t)->data);
    mem_free(*t);
    *t = NULL;
}

void tensor_view(tensor_t *view, tensor_dtype_t dt, void *data, int ndim, const int64_t *shape) {
    set_contiguous(view, dt, ndim, shape);
    view->data = data;
    view->owns_data = false;
}

int64_t tensor_nelem(const tensor_t *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

size_t tensor_nbytes(const tensor_t *t) { return (size_t)tensor_nelem(t) * tensor_dtype_size(t->dtype); }

bool tensor_is_contiguous(const tensor_t *t) {
    int64_t stride = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != stride) return false;
        stride *= t->shape[i];
    }
    return true;
}

bool tensor_shape_is(const tensor_t *t, int ndim, const int64_t *shape) {
    if (t->ndim != ndim) return false;
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] != shape[i]) return false;
    return true;
}

char *tensor_shape_str(const tensor_t *t, char *buf, size_t len) {
    size_t off = 0;
    off += (size_t)snprintf(buf, len, "[");
    for (int i = 0; i < t->ndim && off < len; i++)
        off += (size_t)snprintf(buf + off, len - off, i ? ", %lld" : "%lld", (long long)t->shape[i]);
    if (off < len) snprintf(buf + off, len - off, "]");
    return buf;
}

void tensor_convert_to_f32(float *dst, const void *src, tensor_dtype_t dt, size_t n) {
    const uint16_t *h = src;
    switch (dt) {
    case TENSOR_DTYPE_F32: memcpy(dst, src, n * 4); break;
    case TENSOR_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = half_to_f32(h[i]);
        break;
    case TENSOR_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(h[i]);
        break;
    case TENSOR_DTYPE_Q8: break; /* a weight format, not an element type */
    }
}

void tensor_convert_from_f32(void *dst, const float *src, tensor_dtype_t dt, size_t n) {
    uint16_t *h = dst;
    switch (dt) {
    case TENSOR_DTYPE_F32: memcpy(dst, src, n * 4); break;
    case TENSOR_DTYPE_F16:
        for (size_t i = 0; i < n; i++) h[i] = f32_to_half(src[i]);
        break;
    case TENSOR_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) h[i] = f32_to_bf16(src[i]);
        break;
    case TENSOR_DTYPE_Q8: break;
    }
}
