/* vision.h — the CLIP vision tower of a LLaVA model, up to the feature layer, on a device.
 *
 * Computes, for n preprocessed partitions at once (docs/numerics.md §2): patch embedding (no bias),
 * class token, position embedding, pre_layrnorm, pre-LN encoder blocks; returns the output of
 * the feature layer (hidden_states[vision_feature_layer], CLS row dropped) and, at any encoder
 * layers the caller asks for, the CLS query's attention probabilities. Layers past the feature
 * layer are only run as far as their attention (the MLP is skipped), and only when asked.
 * Weights are placed on the device once (k_weight_t): matrices in their checkpoint dtype
 * (F16/BF16/F32; on the CPU borrowed from the mmapped checkpoint), biases and norms converted to
 * float32 once at load. Every op runs through the caller's context; activations and outputs come
 * from its arena, so a warm context encodes without allocating.
 * Not here: preprocessing (preprocess.h), token selection (select.h), moving results to the
 * host (the encode pipeline). */
#ifndef HIRED_VISION_H
#define HIRED_VISION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hfconfig.h"
#include "st.h"
#include "tensor.h"

#define VISION_MAX_ATTN_LAYERS 8

typedef struct vision vision_t;

typedef struct {
    int n_attn_layers;                        /* how many layers' CLS attention to return */
    int attn_layers[VISION_MAX_ATTN_LAYERS];  /* 0-based encoder layer indices, any order */
    bool want_pm;      /* PruMerge inputs at layer pm_layer (set want_pm; 0 is a valid layer) */
    int pm_layer;
} vision_opts_t;

/* Every pointer is device memory in the context's arena (see vision_encode). */
typedef struct {
    int n;             /* partitions */
    int n_patches;     /* 576 */
    int d;             /* hidden width */
    int n_heads;
    int n_attn_layers; /* as requested, same order */
    float *features;   /* [n, n_patches, d]: feature-layer output without the CLS row */
    float *cls_attn;   /* [n_attn_layers, n, n_patches]: CLS->patch probabilities summed over heads */
    float *cls_attn_heads; /* [n_attn_layers, n, n_heads, n_patches + 1]: per-head CLS row, all keys */
    float *pm_attn;    /* [n, n_patches] (want_pm): softmax(q_cls·Kᵀ/√d) over all n_patches+1 keys as one
                        * full-width head, patch columns (PruMerge's attention, docs/selection.md §3) */
    float *pm_keys;    /* [n, n_patches, d] (want_pm): k_proj output of that layer, CLS row dropped */
} vision_out_t;

/* Loads the vision tower of the model in `st` described by cfg onto dev: the blocks up to the
 * feature layer, plus those up to `max_attn_layer` (-1: none beyond). Borrows st and dev: they
 * must outlive the tower. Caller owns the result (vision_destroy). NULL with err filled (naming
 * file and tensor) on a missing tensor, wrong shape, unsupported config, or weights the device
 * cannot run. */
vision_t *vision_load(const st_model_t *st, const hf_config_t *cfg, k_device_t *dev, int max_attn_layer, char *err);

/* A tower at cfg's widths with random weights in dtype wdt (benchmarks), on dev. */
vision_t *vision_new_random(const hf_vision_config_t *vc, int feature_layer, k_device_t *dev, tensor_dtype_t wdt,
                            uint64_t seed, char *err);

/* Frees. Accepts NULL; sets *v = NULL. */
void vision_destroy(vision_t **v);

/* Encoded layers (blocks computed fully) and the feature layer's hidden_states index. */
int vision_feature_hidden_index(const vision_t *v);

/* Arena bytes vision_encode takes on ctx for n partitions with these options: what a caller
 * reserves (k_ctx_reserve) so that the encode allocates nothing. */
size_t vision_arena_bytes(const vision_t *v, const k_ctx_t *ctx, int n, const vision_opts_t *opts);

/* Runs the tower on host pixels [n, 3, S, S] (S = image size; uploaded here). Fills *out with
 * device memory from ctx's arena, allocated first and kept: valid until the caller releases the
 * arena below its mark from before the call, or resets it. The tower is only read (several
 * threads may encode with their own contexts). HIRED_EINVAL (bad n or layer index), HIRED_ENOMEM,
 * or an op's failure (HIRED_ECUDA, ...), with err filled. */
int vision_encode(const vision_t *v, k_ctx_t *ctx, const float *pixels, int n, const vision_opts_t *opts,
                  vision_out_t *out, char *err);

/* Matmul FLOPs (2·m·n·k summed, including attention's two products) of one vision_encode of n
 * partitions with these options: what a benchmark divides by the sgemm rate. */
double vision_matmul_flops(const vision_t *v, int n, const vision_opts_t *opts);

#endif
