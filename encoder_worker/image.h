/* image.h — decoding image bytes to 8-bit RGB exactly as PIL's Image.open(...).convert("RGB")
 * would (llava-next.md §1.1, §1.9): JPEG through libjpeg-turbo (ISLOW IDCT, fancy upsampling,
 * JCS_RGB), PNG/BMP/GIF/TGA/PSD/PNM through stb_image; alpha dropped (no compositing),
 * grayscale replicated, no EXIF rotation. The pixel-count limit is checked from the header
 * before any pixel buffer is allocated. Not here: resizing (resize.h), tiling (preprocess.h). */
#ifndef HIRED_IMAGE_H
#define HIRED_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb; /* [h, w, 3], row-major, R,G,B; owned (image_free) */
} image_t;

/* Decodes `n` bytes. max_pixels bounds w*h (0 = default 50 megapixels). Caller owns out->rgb
 * (image_free). HIRED_EFORMAT (corrupt/truncated/empty), HIRED_EUNSUPPORTED (format),
 * HIRED_ERANGE (too many pixels) with err filled; out is then empty. */
int image_decode(const uint8_t *bytes, size_t n, size_t max_pixels, image_t *out, char *err);
/* Reads a whole file and decodes it (convenience for tools and tests). */
int image_load_file(const char *path, size_t max_pixels, image_t *out, char *err);
/* New zeroed w x h image. 0 or HIRED_ENOMEM. */
int image_alloc(image_t *img, int w, int h);
/* Frees the pixels and zeroes *img. Accepts an empty image. */
void image_free(image_t *img);

#endif
