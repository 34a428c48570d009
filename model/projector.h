/* projector.h — LLaVA's multimodal projector (docs/numerics.md §3) and the learned image_newline.
 *
 * y = linear_2(gelu_erf(linear_1(x))) per token, biases per config.multimodal_projector_bias,
 * applied to the K features the encoder kept (never to dropped ones). linear_1 is
 * [d_text, d_vision], linear_2 [d_text, d_text]; weights are placed on the device once in their
 * checkpoint dtype (F16/BF16/F32; on the CPU borrowed from the mmapped checkpoint); biases and
 * image_newline are converted to float32 at load.
 * Not here: packing and newline placement (pack.h). */
#ifndef HIRED_PROJECTOR_H
#define HIRED_PROJECTOR_H

#include "backend.h"
#include "hfconfig.h"
#include "st.h"

typedef struct projector projector_t;

/* Loads multi_modal_projector.* (and image_newline for LLaVA-NeXT) of the model in st described
 * by cfg onto dev. Borrows st and dev: they must outlive the projector. Caller owns the result
 * (projector_destroy). NULL with err (naming file and tensor) on a missing tensor, wrong shape,
 * unsupported activation, or weights the device cannot run. */
projector_t *projector_load(const st_model_t *st, const hf_config_t *cfg, k_device_t *dev, char *err);
/* Frees. Accepts NULL; sets *p = NULL. */
void projector_destroy(projector_t **p);

int projector_d_in(const projector_t *p);  /* vision width (1024) */
int projector_d_out(const projector_t *p); /* text width (4096) */
/* image_newline [d_out] float32 in device memory, or NULL (LLaVA-1.5). Borrowed, valid until
 * projector_destroy. */
const float *projector_newline(const projector_t *p);

/* y[k, d_out] = projector(x[k, d_in]) through ctx; x and y are device memory (y must not overlap
 * x); the hidden activations come from ctx's arena. k = 0 is a no-op. HIRED_ENOMEM or an op's
 * failure, with err filled. */
int projector_apply(const projector_t *p, k_ctx_t *ctx, const float *x, int k, float *y, char *err);

#endif
