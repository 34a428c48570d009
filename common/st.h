/* st.h — safetensors: one file (mmapped, header fully bounds-checked) and a whole Hugging Face
 * model directory (sharded through model.safetensors.index.json, or a single model.safetensors).
 *
 * Tensor names are canonicalised to the pre-transformers-4.52 llava-hf layout on load
 * (llava-next.md §7.3): "model.language_model.X" -> "language_model.model.X",
 * "model.vision_tower.X" -> "vision_tower.X", "model.multi_modal_projector.X" ->
 * "multi_modal_projector.X", "model.image_newline" -> "image_newline",
 * top-level "lm_head.X" -> "language_model.lm_head.X". Callers always ask for the old names.
 * Supported dtypes: F32, F16, BF16 (others are listed but refused when fetched).
 * Every error message names the file and, where there is one, the tensor. */
#ifndef HIRED_ST_H
#define HIRED_ST_H

#include <stdbool.h>
#include <stddef.h>

#include "tensor.h"

typedef struct st_file st_file_t;
typedef struct st_model st_model_t;

/* Opens and mmaps one .safetensors file, validating the whole header (length, JSON, dtypes,
 * shapes, offsets inside the data section, no overlaps). Caller owns the result
 * (st_file_close); NULL with err filled on failure. */
st_file_t *st_file_open(const char *path, char *err);
/* Unmaps and frees. Accepts NULL; sets *f = NULL. */
void st_file_close(st_file_t **f);
/* Number of tensors, and the i-th name in header order (canonical form). Borrowed. */
int st_file_count(const st_file_t *f);
const char *st_file_name(const st_file_t *f, int i);
/* Value of a __metadata__ string key, or NULL. Borrowed, valid until close. */
const char *st_file_metadata(const st_file_t *f, const char *key);
/* Fills *view (non-owning, pointing into the map) for tensor `name`. Borrowed: valid until the
 * file is closed. HIRED_ENOTFOUND / HIRED_EUNSUPPORTED (dtype) with err filled. */
int st_file_get(const st_file_t *f, const char *name, tensor_t *view, char *err);

/* Opens every shard of the model directory `dir`. Caller owns the result (st_model_close). */
st_model_t *st_model_open(const char *dir, char *err);
void st_model_close(st_model_t **m);
bool st_model_has(const st_model_t *m, const char *name);
/* As st_file_get, across shards. Borrowed view, valid until st_model_close. */
int st_model_get(const st_model_t *m, const char *name, tensor_t *view, char *err);
/* Checks that `name` exists with exactly this shape, converts it to float32 into a new buffer.
 * Caller owns the result (mem_free_aligned). NULL with err naming file and tensor (missing,
 * wrong shape, unsupported dtype, out of memory). */
float *st_model_load_f32(const st_model_t *m, const char *name, int ndim, const int64_t *shape, char *err);
/* The shard file path that holds `name`, or NULL. Borrowed. */
const char *st_model_file_of(const st_model_t *m, const char *name);

#endif
