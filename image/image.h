/* image.h — decoding image bytes to 8-bit RGB exactly as PIL's Image.open(...).convert("RGB")
 * would (docs/numerics.md §1.1, §1.9): JPEG through libjpeg-turbo (ISLOW IDCT, fancy upsampling,
 * JCS_RGB; CMYK and YCCK JPEGs inverted and converted to RGB with Pillow's arithmetic), PNG/GIF/BMP
 * through stb_image; alpha dropped (no compositing), grayscale replicated, palette expanded, no
 * EXIF rotation. The format is chosen by signature; WebP, TIFF, PSD, PNM, HDR, HEIF/AVIF,
 * JPEG 2000, ICO and QOI are refused, TGA is not recognised (no signature). The pixel-count
 * limit is checked from the header before any pixel buffer is allocated. Truncated files are
 * errors. Thread-safe (no state of its own;
 * nothing in hired may call stbi_set_flip_vertically_on_load, a process-wide stb setting).
 * Not here: resizing (resize.h), tiling (preprocess.h). */
#ifndef HIRED_IMAGE_H
#define HIRED_IMAGE_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int w, h;
    uint8_t *rgb; /* [h, w, 3], row-major, R,G,B; owned (image_free) */
} image_t;

/* Decodes `n` bytes (borrowed). max_pixels bounds w*h, inclusive (0 = default 50 megapixels).
 * Caller owns out->rgb (image_free). HIRED_EFORMAT (corrupt, truncated, empty, unrecognised),
 * HIRED_EUNSUPPORTED (recognised format or colour space we refuse), HIRED_ERANGE (too many
 * pixels), HIRED_ENOMEM, HIRED_EINVAL (NULL bytes) with err filled; out is then empty. */
int image_decode(const uint8_t *bytes, size_t n, size_t max_pixels, image_t *out, char *err);
/* Reads a whole file (at most 1 GiB) and decodes it; err starts with the path. Adds
 * HIRED_ENOTFOUND (no such file) and HIRED_EIO. Caller owns out->rgb (image_free). */
int image_load_file(const char *path, size_t max_pixels, image_t *out, char *err);
/* New zeroed w x h image. 0, HIRED_EINVAL (non-positive size) or HIRED_ENOMEM. Caller owns
 * img->rgb (image_free). */
int image_alloc(image_t *img, int w, int h);
/* Frees the pixels and zeroes *img. Accepts an empty image. */
void image_free(image_t *img);

#endif
