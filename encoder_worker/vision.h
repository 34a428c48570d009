/* vision.h — the CLIP vision tower of a LLaVA model, up to the feature layer, on the CPU backend.
 *
 * Computes, for n preprocessed partitions at once (docs/numerics.md §2): patch embedding (no bias),
 * class token, position embedding, pre_layrnorm, pre-LN encoder blocks; returns the output of
 * the feature layer (hidden_states[vision_feature_layer], CLS row dropped) and, at any encoder
 * layers the caller asks for, the CLS query's attention probabilities. Layers past the feature
 * layer are only run as far as their attention (the MLP is skipped), and only when asked.
 * Weights stay in their checkpoint dtype (F16/BF16/F32), borrowed from the mmapped checkpoint;
 * biases and norms are converted to float32 once at load.
 * Not here: preprocessing (preprocess.h), token selection (select.h). */
#ifndef HIRED_VISION_H
#define HIRED_VISION_H

#include <stdbool.h>
#include <stdint.h>

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

/* Loads the vision tower of the model in `st` described by cfg: the blocks up to the feature
 * layer, plus those up to `max_attn_layer` (-1: none beyond). Borrows st: it must stay open
 * while the tower is used. Caller owns the result (vision_destroy). NULL with err filled
 * (naming file and tensor) on a missing tensor, wrong shape or unsupported config. */
vision_t *vision_load(const st_model_t *st, const hf_config_t *cfg, int max_attn_layer, char *err);

/* A tower at cfg's widths with random weights in dtype wdt (benchmarks). Owns its weights. */
vision_t *vision_new_random(const hf_vision_config_t *vc, int feature_layer, tensor_dtype_t wdt, uint64_t seed,
                            char *err);

void vision_destroy(vision_t **v);

/* Encoded layers (blocks computed fully) and the feature layer's hidden_states index. */
int vision_feature_hidden_index(const vision_t *v);

/* Runs the tower on pixels [n, 3, S, S] (S = image size). Fills out (caller owns it, free with
 * vision_out_free). HIRED_EINVAL (bad n or layer index), HIRED_ENOMEM, with err filled. */
int vision_encode(vision_t *v, const float *pixels, int n, const vision_opts_t *opts, vision_out_t *out, char *err);
void vision_out_free(vision_out_t *out);

/* Matmul FLOPs (2·m·n·k summed, including attention's two products) of one vision_encode of n
 * partitions with these options: what a benchmark divides by the sgemm rate. */
double vision_matmul_flops(const vision_t *v, int n, const vision_opts_t *opts);

#endif
