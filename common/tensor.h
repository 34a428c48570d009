/* tensor.h — a dense host tensor: dtype, up to 4 dims, row-major strides, owning or view.
 *
 * Invariants: shape[i] >= 0 for i < ndim; strides are in elements; a tensor made by
 * tensor_new is contiguous and owns its 64-byte aligned data; a view (tensor_view, or one
 * the safetensors reader hands out) never owns and must not outlive what it points into.
 * Not here: device memory (kernels/cuda), arenas. */
#ifndef HIRED_TENSOR_H
#define HIRED_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TENSOR_MAX_DIMS 4

/* Q8 is a weight format, never an element type of a checkpoint or an activation: per row, blocks
 * of 32 int8 with one float32 scale each (kernels/q8.h has the layout and the quantiser). Only
 * weights (k_weight_t, k_matmul_args.w_dtype) carry it; the conversions below ignore it. */
typedef enum { TENSOR_DTYPE_F32 = 0, TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16, TENSOR_DTYPE_Q8 } tensor_dtype_t;

typedef struct tensor {
    tensor_dtype_t dtype;
    int ndim;
    int64_t shape[TENSOR_MAX_DIMS];
    int64_t strides[TENSOR_MAX_DIMS]; /* in elements */
    void *data;
    bool owns_data;
} tensor_t;

/* Bytes per element of a dtype (4 or 2; Q8: 1, its int8 values only — kernels/q8.h sizes the
 * whole weight with its scales). */
size_t tensor_dtype_size(tensor_dtype_t dt);
/* "F32", "F16", "BF16", "Q8". */
const char *tensor_dtype_name(tensor_dtype_t dt);

/* New zero-filled contiguous tensor. Caller owns the result (tensor_destroy); NULL on failure. */
tensor_t *tensor_new(tensor_dtype_t dt, int ndim, const int64_t *shape);
/* Frees t and, if it owns them, its data. Accepts NULL; sets *t = NULL. */
void tensor_destroy(tensor_t **t);
/* Fills *view as a non-owning contiguous view of data. Borrowed: valid while data is. */
void tensor_view(tensor_t *view, tensor_dtype_t dt, void *data, int ndim, const int64_t *shape);

int64_t tensor_nelem(const tensor_t *t);
size_t tensor_nbytes(const tensor_t *t);
bool tensor_is_contiguous(const tensor_t *t);
/* True when t has exactly this ndim and shape. */
bool tensor_shape_is(const tensor_t *t, int ndim, const int64_t *shape);
/* Writes "[a, b, c]" into buf. Returns buf. */
char *tensor_shape_str(const tensor_t *t, char *buf, size_t len);

/* Converts n elements of src (dtype dt) to float32 into dst (F32, F16, BF16; Q8 is not an
 * element type: nothing is written). */
void tensor_convert_to_f32(float *dst, const void *src, tensor_dtype_t dt, size_t n);
/* Converts n float32 values to dtype dt (round-to-nearest-even) into dst (F32, F16, BF16; Q8:
 * nothing is written, see kernels/q8.h). */
void tensor_convert_from_f32(void *dst, const float *src, tensor_dtype_t dt, size_t n);

#endif
