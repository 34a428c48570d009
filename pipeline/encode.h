/* encode.h — the vision half of the pipeline: one image's bytes → the kept visual tokens.
 *
 *   decode (image.h) → LLaVA-NeXT anyres / LLaVA-1.5 preprocessing (preprocess.h) → vision tower
 *   on the device with the CLS-attention layers the strategy needs (vision.h) → download of the
 *   attention rows (and, for PruMerge, the features and keys) → token selection on the host
 *   (select.h) → gather of the kept rows on the device → download => visual_t (common/visual.h)
 *
 * This is the one encode pipeline: the encoder worker, `hired run` (run.h) and `hired encode`
 * all call enc_run, so a job served by hired-encoder selects exactly the tokens `hired run`
 * selects. The attention layers are fixed per model: allocation layer 0 and the selection layer
 * = the feature block for HiRED, the last layer for PruMerge.
 * An enc_model_t is read-only once loaded: several threads may run enc_run at once, each with
 * its own context. enc_run resets the context's arena and reserves what the encode needs, so a
 * context that has encoded an image of n partitions encodes the next without allocating in the
 * tower.
 * Not here: the language side (generate.h), wire formats (common/visual.h, the workers). */
#ifndef HIRED_ENCODE_H
#define HIRED_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hfconfig.h"
#include "preprocess.h"
#include "select.h"
#include "visual.h"

typedef struct enc_model enc_model_t;

typedef struct {
    sel_opts_t sel;       /* strategy, budget r, alpha, split, spatial */
    prep_compat_t compat; /* hf (default) | authors: the HiRED authors' 4.42 preprocessing and
                             packing (preprocess.h, pack.h), to reproduce their numbers */
    size_t max_pixels;    /* largest width × height decoded (0: image.h's default) */
} enc_params_t;

typedef struct {
    double ms_decode_image, ms_preprocess, ms_vision, ms_select;
    int visual_total;                 /* tokens before selection */
    int visual_kept;                  /* tokens the selection kept */
    int budget_total, budget_base, budget_sub; /* the selection's budgets (select.h) */
} enc_stats_t;

/* The head-summed CLS attention rows a HiRED encode read, on the host: [n, patches] each. */
typedef struct {
    int n, patches;
    int layers[2];            /* encoder layers of alloc and select */
    float *alloc, *select;    /* owned (enc_attn_free) */
} enc_attn_t;

/* Defaults: hired r = 0.2, alpha 0.5, reference split, hf preprocessing, default pixel limit. */
void enc_params_default(enc_params_t *p);

/* Loads the vision half of a llava-hf model directory onto dev: config.json,
 * preprocessor_config.json, the safetensors (mmapped), the tower up to the last layer (for
 * PruMerge), else up to the feature layer. Borrows dev. Caller owns the result
 * (enc_model_destroy). NULL with err filled. */
enc_model_t *enc_model_load(const char *dir, k_device_t *dev, char *err);
void enc_model_destroy(enc_model_t **m);
/* Borrowed, valid until enc_model_destroy. */
const hf_config_t *enc_model_config(const enc_model_t *m);
/* Whether the checkpoint has the last vision layer PruMerge reads. */
bool enc_model_has_prumerge(const enc_model_t *m);

/* The whole vision half on n bytes of an encoded image. Fills *out (host; caller owns it:
 * visual_free), st (may be NULL) and, when attn is not NULL and the strategy is hired, *attn
 * (caller owns it: enc_attn_free). Errors name the stage ("image: ...", "preprocess: ...",
 * "vision: ...", "select: ..."): HIRED_EFORMAT / EUNSUPPORTED / ERANGE for a bad image or
 * options, HIRED_ENOMEM, or a backend fault (HIRED_ECUDA). */
int enc_run(const enc_model_t *m, k_ctx_t *ctx, const uint8_t *bytes, size_t n, const enc_params_t *p,
            visual_t *out, enc_stats_t *st, enc_attn_t *attn, char *err);
void enc_attn_free(enc_attn_t *a);

/* One synthetic mid-grey image through preprocessing and the tower (HiRED's layers), so the
 * first real job does not pay for page faults on the weights and finds the arena grown. */
int enc_warmup(const enc_model_t *m, k_ctx_t *ctx, char *err);

#endif
