/* weights.h — how the model code takes its weights: from a checkpoint (st_model_t) or from a
 * seeded random generator (benchmarks), placed once on a device as k_weight_t.
 *
 * Matrices keep their checkpoint dtype (F16/BF16/F32): on the CPU backend the weight borrows
 * the read-only mmap view (no copy), so the checkpoint must stay open while the weight is used;
 * another backend copies it once. Whatever is copied or converted (a device's copy, 8-bit or
 * bf16 weights) hands the checkpoint's pages back once done (st_model_release), so the process
 * does not hold both. Vectors (norms, biases, embeddings the model adds) are
 * converted to float32 once and owned by the weight.
 * Every error names the file and tensor (st.h's messages). Free with k_weight_free.
 * Not here: which tensors a model has (vision.c, llm.c, projector.c). */
#ifndef HIRED_WEIGHTS_H
#define HIRED_WEIGHTS_H

#include <stdint.h>

#include "backend.h"
#include "st.h"

/* Tensor `name` of exactly shape[0..ndim) placed as the matrix [shape[0], Π shape[1..]] in its
 * checkpoint dtype (a conv weight [D, C, p, p] becomes [D, C·p·p]). 0 or HIRED_E* with err. */
int weights_matrix(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                   k_weight_t *w, char *err);
/* The same quantised to 8 bits at load (kernels/q8.h: per row, blocks of 32 int8 with a float32
 * scale) from its F16/BF16/F32 checkpoint values: a new block owned by the weight (the
 * checkpoint's mmap is only read, then released). HIRED_EUNSUPPORTED on a device other than the CPU. */
int weights_matrix_q8(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                      k_weight_t *w, char *err);
/* The same rounded to bf16 at load (to nearest even) from its F16/F32 checkpoint values: a new
 * block owned by the weight; a BF16 tensor is placed as weights_matrix does (no copy). */
int weights_matrix_bf16(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                        k_weight_t *w, char *err);
/* Tensor `name` of exactly shape[0..ndim) converted to float32 and placed as [shape[0],
 * Π shape[1..]] (a vector [n] becomes [n, 1]). 0 or HIRED_E* with err. */
int weights_f32(const st_model_t *st, k_device_t *dev, const char *name, int ndim, const int64_t *shape,
                k_weight_t *w, char *err);
/* A [rows, cols] weight in dtype with values base + u, u uniform in [−scale, scale), a pure
 * function of (seed, element index) (filled in parallel, reproducible). Owned by the weight.
 * Q8: those float32 values quantised (kernels/q8.h). */
int weights_random(k_device_t *dev, tensor_dtype_t dtype, int64_t rows, int64_t cols, uint64_t seed, float base,
                   float scale, k_weight_t *w, char *err);

/* The weight's data as float32 device memory (only valid for F32 weights: norms, biases). */
static inline const float *weights_f32_data(const k_weight_t *w) { return (const float *)w->data; }

#endif
