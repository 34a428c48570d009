/* st.h — safetensors: one file (mmapped, header fully bounds-checked) and a whole Hugging Face
 * model directory (sharded through model.safetensors.index.json, or a single model.safetensors).
 *
 * Tensor names are canonicalised to the pre-transformers-4.52 llava-hf layout on load
 * (docs/numerics.md §7.3): "model.language_model.X" -> "language_model.model.X",
 * "model.vision_tower.X" -> "vision_tower.X", "model.multi_modal_projector.X" ->
 * "multi_modal_projector.X", "model.image_newline" -> "image_newline",
 * top-level "lm_head.X" -> "language_model.lm_head.X". Callers always ask for the old names.
 * Lookups canonicalise the requested name the same way, so the new names work too.
 * Supported dtypes: F32, F16, BF16 (the other safetensors dtypes are listed but refused with
 * HIRED_EUNSUPPORTED when fetched; dtype strings outside the format make the file malformed).
 * Headers may hold up to 8 dimensions; views are limited to TENSOR_MAX_DIMS.
 * Alignment: a view points into the map and is refused (HIRED_EUNSUPPORTED) when the tensor's
 * bytes are not aligned for its dtype (legal safetensors, never written by the Python library);
 * st_model_load_f32 copies and converts regardless of alignment.
 * Views are read-only memory (PROT_READ): never write through view->data.
 * Every error message names the file and, where there is one, the tensor. Error codes:
 * HIRED_ENOTFOUND (missing file or tensor), HIRED_EIO, HIRED_EFORMAT (malformed header or index),
 * HIRED_EUNSUPPORTED, HIRED_ESHAPE, HIRED_ENOMEM. */
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
/* The same, returning the HIRED_E* code; *out is NULL on failure. Caller owns *out. */
int st_file_open_rc(const char *path, st_file_t **out, char *err);
/* Unmaps and frees. Accepts NULL; sets *f = NULL. */
void st_file_close(st_file_t **f);
/* Number of tensors, and the i-th name in header order (canonical form). Borrowed. */
int st_file_count(const st_file_t *f);
const char *st_file_name(const st_file_t *f, int i);
/* The path the file was opened with. Borrowed. */
const char *st_file_path(const st_file_t *f);
/* Value of a __metadata__ string key, or NULL. Borrowed, valid until close. */
const char *st_file_metadata(const st_file_t *f, const char *key);
/* Fills *view (non-owning, pointing into the map) for tensor `name`. Borrowed: valid until the
 * file is closed. HIRED_ENOTFOUND / HIRED_EUNSUPPORTED (dtype) with err filled. */
int st_file_get(const st_file_t *f, const char *name, tensor_t *view, char *err);

/* Opens every shard of the model directory `dir`: through model.safetensors.index.json when it
 * exists (each distinct shard opened once; every tensor of weight_map must be in its shard;
 * shard names containing '/' or ".." are refused), else model.safetensors. Caller owns the
 * result (st_model_close); NULL with err filled on failure. */
st_model_t *st_model_open(const char *dir, char *err);
/* The same, returning the HIRED_E* code; *out is NULL on failure. Caller owns *out. */
int st_model_open_rc(const char *dir, st_model_t **out, char *err);
/* Unmaps every shard and frees. Accepts NULL; sets *m = NULL. */
void st_model_close(st_model_t **m);
/* Number of tensors in the model (the index's weight_map, or the single file), and the i-th
 * canonical name in sorted order. Borrowed, valid until st_model_close. */
int st_model_count(const st_model_t *m);
const char *st_model_name(const st_model_t *m, int i);
/* True when the model has tensor `name` (any dtype). */
bool st_model_has(const st_model_t *m, const char *name);
/* As st_file_get, across shards. Borrowed view, valid until st_model_close. */
int st_model_get(const st_model_t *m, const char *name, tensor_t *view, char *err);
/* Checks that `name` exists with exactly this shape, converts it to float32 into a new buffer.
 * Caller owns the result (mem_free_aligned). NULL with err naming file and tensor: missing
 * ("DIR/shard: tensor 'X' not found"; the directory when the index lacks X), wrong shape
 * ("...: tensor 'X' has shape [a, b], expected [c, d]"), unsupported dtype, out of memory. */
float *st_model_load_f32(const st_model_t *m, const char *name, int ndim, const int64_t *shape, char *err);
/* As st_model_get, after checking that `name` has exactly this shape (HIRED_ESHAPE with the
 * message above; HIRED_ENOTFOUND when missing). Borrowed view, valid until st_model_close:
 * how model code takes its weight matrices in their checkpoint dtype. */
int st_model_get_shaped(const st_model_t *m, const char *name, int ndim, const int64_t *shape, tensor_t *view,
                        char *err);
/* Hands back to the kernel the pages of view's bytes (those wholly inside them) once the caller
 * has made its own copy of the tensor (rounded to bf16, quantised, copied to a device): without
 * this, the checkpoint's mapped pages stay in the process's resident set beside the copy, so a
 * model held in bf16 or 8 bits took the checkpoint's memory and the copy's. The view stays valid:
 * reading it again brings the pages back from the file. Does nothing for a view that does not
 * lie in one of m's mappings. */
void st_model_release(const st_model_t *m, const tensor_t *view);
/* The shard file path that holds `name`, or NULL. Borrowed, valid until st_model_close. */
const char *st_model_file_of(const st_model_t *m, const char *name);

#endif
