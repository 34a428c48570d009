/* preprocess.h — LLaVA-NeXT anyres and LLaVA-1.5 preprocessing, bit-exact with transformers'
 * slow (PIL) image processors (llava-next.md §1, transformers >= 4.52 padding):
 *   NeXT: grid choice (select_best_resolution) -> aspect-preserving PIL bicubic resize ->
 *         black padding (extra pixel bottom/right) -> 336x336 tiles row-major, after a base
 *         image (the original squashed to 336x336) -> rescale + normalise -> CHW float32.
 *   1.5:  shortest edge 336 (PIL bicubic) -> centre crop 336 -> rescale + normalise.
 * Not here: decoding (image.h), the PIL resize itself (resize.h). */
#ifndef HIRED_PREPROCESS_H
#define HIRED_PREPROCESS_H

#include <stdint.h>

#include "hfconfig.h"
#include "image.h"

#define PREP_MAX_PARTITIONS 10

typedef struct {
    int n;              /* partitions: 1 (LLaVA-1.5) or rows*cols+1 (NeXT) */
    int rows, cols;     /* NeXT grid (1x1 for LLaVA-1.5) */
    int orig_h, orig_w; /* image_sizes: the decoded image's (height, width) */
    int size;           /* tile side, 336 */
    uint8_t *tiles;     /* [n, size, size, 3] uint8 before rescale (what PIL produced) */
    float *pixels;      /* [n, 3, size, size] pixel_values; owned (prep_free) */
} prep_out_t;

/* Picks the pinpoint as select_best_resolution does; writes (height, width). */
void prep_select_best_resolution(int h, int w, const int (*pinpoints)[2], int n_pinpoints, int *best_h, int *best_w);
/* LLaVA-NeXT anyres preprocessing. Caller owns out (prep_free). 0 or HIRED_E* with err. */
int prep_llava_next(const image_t *img, const hf_preproc_t *pp, const int (*pinpoints)[2], int n_pinpoints,
                    prep_out_t *out, char *err);
/* LLaVA-1.5 (CLIPImageProcessor) preprocessing: one partition. */
int prep_llava15(const image_t *img, const hf_preproc_t *pp, prep_out_t *out, char *err);
void prep_free(prep_out_t *out);

#endif
