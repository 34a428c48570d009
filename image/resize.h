/* resize.h — Pillow's Image.resize(size, BICUBIC) on 8-bit RGB, bit-exact (docs/numerics.md §1.7):
 * separable, horizontal pass first into a uint8 intermediate, antialiased (kernel widened by the
 * scale on downscale), Keys cubic a=-0.5, 22-bit fixed-point coefficients. Equal size = copy. */
#ifndef HIRED_RESIZE_H
#define HIRED_RESIZE_H

#include "image.h"

/* Resizes src to new_w x new_h into dst (allocated here; caller owns, image_free).
 * 0, HIRED_EINVAL (non-positive size) or HIRED_ENOMEM. */
int resize_bicubic(const image_t *src, int new_w, int new_h, image_t *dst);

#endif
