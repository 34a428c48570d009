/* anyres.h — LLaVA-NeXT's anyres geometry: which grid of tiles an image is cut into, and the size
 * it is resized to inside that grid. Shared by preprocessing (image/preprocess.c) and the paper
 * budget split of token selection (model/select.c), which must agree to the pixel.
 * Pure arithmetic, no state. Not here: resizing and tiling themselves (image/preprocess.h). */
#ifndef HIRED_ANYRES_H
#define HIRED_ANYRES_H

/* Picks the pinpoint as select_best_resolution does (IEEE doubles, int() truncations, strict
 * tie-break keeping the first listed); writes (height, width). pinpoints are (height, width);
 * n_pinpoints <= 0 writes (0, 0). */
void anyres_best_resolution(int h, int w, const int (*pinpoints)[2], int n_pinpoints, int *best_h, int *best_w);
/* get_patch_output_size: the size (new_h, new_w) an h x w image is resized to inside the
 * target (th, tw), aspect preserved, with ceil of a double product. */
void anyres_patch_output_size(int h, int w, int th, int tw, int *new_h, int *new_w);

#endif
