/* preprocess.h — LLaVA-NeXT anyres and LLaVA-1.5 preprocessing, bit-exact with transformers'
 * slow (PIL) image processors (docs/numerics.md §1, transformers >= 4.52 padding):
 *   NeXT: grid choice (select_best_resolution) -> aspect-preserving PIL bicubic resize ->
 *         black padding (extra pixel bottom/right) -> 336x336 tiles row-major, after a base
 *         image (the original squashed to 336x336) -> rescale + normalise -> CHW float32.
 *   1.5:  shortest edge 336 (PIL bicubic) -> centre crop 336 -> rescale + normalise.
 * Parameters come from hf_preproc_t: resample must be 3 (BICUBIC); NeXT needs
 * shortest_edge == crop_h == crop_w (the tile side; llava-hf: 336) and pinpoints that are
 * multiples of it; 1.5 needs do_resize, do_center_crop and shortest_edge >= crop_h == crop_w.
 * do_rescale / do_normalize are honoured; do_pad (batch padding of the tile count) and
 * do_convert_rgb (always RGB here) do not change one image's values.
 * PREP_COMPAT_AUTHORS reproduces the HiRED authors' transformers fork (4.42, docs/numerics.md §1.4,
 * §1.6) instead: padding floor(diff/2) on both sides, so an odd margin leaves the canvas one
 * pixel short and the last tile row (or column) 335 pixels tall (wide); such a tile is resized
 * shortest edge -> 336 (long edge int(336·336/335) = 337, PIL bicubic) and its top-left 336x336
 * kept (centre crop offset (337 − 336) div 2 = 0). Other tiles and the base are unchanged.
 * Not here: decoding (image.h), the PIL resize itself (resize.h), the grid and resize geometry
 * (common/anyres.h), token counts / unpadding (model/pack.h). */
#ifndef HIRED_PREPROCESS_H
#define HIRED_PREPROCESS_H

#include <stdint.h>

#include "anyres.h"
#include "hfconfig.h"
#include "image.h"

#define PREP_MAX_PARTITIONS 10

/* Which transformers the preprocessing (and packing, pack.h) reproduces. */
typedef enum { PREP_COMPAT_HF = 0, PREP_COMPAT_AUTHORS } prep_compat_t;

/* Parses "hf" / "authors". 0 or HIRED_EINVAL. */
int prep_compat_parse(const char *s, prep_compat_t *out);
const char *prep_compat_name(prep_compat_t c);

typedef struct {
    int n;              /* partitions: 1 (LLaVA-1.5) or rows*cols+1 (NeXT) */
    int rows, cols;     /* NeXT grid (1x1 for LLaVA-1.5) */
    int orig_h, orig_w; /* image_sizes: the decoded image's (height, width) */
    int size;           /* tile side, 336 */
    int new_h, new_w;   /* size after the aspect-preserving (NeXT) or shortest-edge (1.5) resize */
    int pad_top, pad_left; /* NeXT: offset of the resized image in the padded canvas; 1.5: minus the crop offset */
    uint8_t *tiles;     /* [n, size, size, 3] uint8 before rescale (what PIL produced); owned (prep_free) */
    float *pixels;      /* [n, 3, size, size] pixel_values; owned (prep_free) */
} prep_out_t;

/* LLaVA-NeXT anyres preprocessing. pinpoints (height, width) are borrowed. Caller owns out
 * (prep_free). 0 or HIRED_E* with err; out is then empty. */
int prep_llava_next(const image_t *img, const hf_preproc_t *pp, const int (*pinpoints)[2], int n_pinpoints,
                    prep_out_t *out, char *err);
/* The same with the compatibility mode chosen (prep_llava_next is PREP_COMPAT_HF). */
int prep_llava_next_compat(const image_t *img, const hf_preproc_t *pp, const int (*pinpoints)[2], int n_pinpoints,
                           prep_compat_t compat, prep_out_t *out, char *err);
/* LLaVA-1.5 (CLIPImageProcessor) preprocessing: one partition. Caller owns out (prep_free). */
int prep_llava15(const image_t *img, const hf_preproc_t *pp, prep_out_t *out, char *err);
/* The path the model in cfg uses: LLaVA-NeXT anyres with the processor's pinpoints (else the
 * model config's), or LLaVA-1.5. Caller owns out (prep_free). */
int prep_for_model(const image_t *img, const hf_config_t *cfg, const hf_preproc_t *pp, prep_out_t *out, char *err);
/* The same with the compatibility mode (LLaVA-1.5 has none: both modes are identical there). */
int prep_for_model_compat(const image_t *img, const hf_config_t *cfg, const hf_preproc_t *pp, prep_compat_t compat,
                          prep_out_t *out, char *err);
/* Frees tiles and pixels and zeroes *out. Accepts an empty (zeroed) out. */
void prep_free(prep_out_t *out);

#endif
