/* preprocess.c — LLaVA-NeXT anyres and LLaVA-1.5 preprocessing (see preprocess.h).
 *
 * Numerics follow transformers' slow processors operation by operation (docs/numerics.md §1.2-1.8):
 * Python's int / int true division and int * float products are IEEE doubles here, int() is a
 * C truncating cast, math.ceil is ceil(). The uint8 -> float step is a per-channel table of the
 * 256 possible results of (float)((double)u8 * rescale_factor), then (x - mean_f32) / std_f32
 * in float: exactly numpy's float64 multiply, float32 cast and float32 normalise.
 * Invariant: on success tiles and pixels hold n partitions; on failure out is zeroed.
 * Not here: the resize kernel (resize.c), decoding (image.c). */
#include "preprocess.h"

#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "err.h"
#include "anyres.h"
#include "mem.h"
#include "resize.h"

#define PREP_MAX_SIDE 8192 /* sanity bound on the tile side and pinpoint sides */
#define PREP_MAX_RESIZED_PIXELS 64e6 /* LLaVA-1.5: a 1x2000 image would become 336x672000 */

// ---- shared steps -------------------------------------------------------------------------------

void prep_free(prep_out_t *out) {
    if (!out) return;
    mem_free(out->tiles);
    mem_free_aligned(out->pixels);
    memset(out, 0, sizeof *out);
}

static int check_common(const image_t *img, const hf_preproc_t *pp, char *err) {
    if (!img || !img->rgb || img->w <= 0 || img->h <= 0) return hired_errf(err, HIRED_EINVAL, "preprocess: empty image");
    if (!pp) return hired_errf(err, HIRED_EINVAL, "preprocess: no preprocessor parameters");
    if (pp->resample != 3)
        return hired_errf(err, HIRED_EUNSUPPORTED, "preprocess: resample=%d is not supported (only 3 = BICUBIC)",
                          pp->resample);
    if (pp->crop_h != pp->crop_w || pp->crop_h < 1 || pp->crop_h > PREP_MAX_SIDE)
        return hired_errf(err, HIRED_EUNSUPPORTED, "preprocess: crop_size %dx%d must be square, 1..%d", pp->crop_h,
                          pp->crop_w, PREP_MAX_SIDE);
    if (pp->shortest_edge < 1 || pp->shortest_edge > PREP_MAX_SIDE)
        return hired_errf(err, HIRED_EUNSUPPORTED, "preprocess: shortest_edge %d outside 1..%d", pp->shortest_edge,
                          PREP_MAX_SIDE);
    if (pp->do_rescale && !(isfinite(pp->rescale_factor) && pp->rescale_factor > 0))
        return hired_errf(err, HIRED_EINVAL, "preprocess: rescale_factor %g must be positive", pp->rescale_factor);
    for (int c = 0; c < 3 && pp->do_normalize; c++)
        if (!isfinite(pp->mean[c]) || !isfinite(pp->std[c]) || pp->std[c] == 0.0f)
            return hired_errf(err, HIRED_EINVAL, "preprocess: image_mean[%d]=%g / image_std[%d]=%g invalid", c,
                              (double)pp->mean[c], c, (double)pp->std[c]);
    return HIRED_OK;
}

static int out_alloc(prep_out_t *out, int n, int size, char *err) {
    size_t per = (size_t)size * (size_t)size * 3;
    out->tiles = mem_alloc((size_t)n * per);
    out->pixels = mem_alloc_aligned((size_t)n * per * sizeof(float));
    if (!out->tiles || !out->pixels) {
        prep_free(out);
        return hired_errf(err, HIRED_ENOMEM, "preprocess: out of memory for %d partitions of %dx%d", n, size, size);
    }
    out->n = n;
    out->size = size;
    return HIRED_OK;
}

/* Copies the tw x th window at (x0, y0) of src into tile ([th, tw, 3]). Pixels outside src are
 * black (0), which is how the padding of §1.4 is applied without building the canvas. */
static void cut_rect(const image_t *src, int x0, int y0, int tw, int th, uint8_t *tile) {
    memset(tile, 0, (size_t)tw * (size_t)th * 3);
    int xa = x0 < 0 ? 0 : x0, xb = x0 + tw < src->w ? x0 + tw : src->w;
    if (xb <= xa) return;
    for (int y = 0; y < th; y++) {
        int sy = y0 + y;
        if (sy < 0 || sy >= src->h) continue;
        memcpy(tile + ((size_t)y * tw + (size_t)(xa - x0)) * 3, src->rgb + ((size_t)sy * src->w + (size_t)xa) * 3,
               (size_t)(xb - xa) * 3);
    }
}

static void cut_window(const image_t *src, int x0, int y0, int size, uint8_t *tile) {
    cut_rect(src, x0, y0, size, size, tile);
}

int prep_compat_parse(const char *s, prep_compat_t *out) {
    if (s && !strcmp(s, "hf")) *out = PREP_COMPAT_HF;
    else if (s && !strcmp(s, "authors")) *out = PREP_COMPAT_AUTHORS;
    else return HIRED_EINVAL;
    return HIRED_OK;
}

const char *prep_compat_name(prep_compat_t c) { return c == PREP_COMPAT_AUTHORS ? "authors" : "hf"; }

/* The authors' short edge tile (tw x th, one side S − 1): cut from the canvas, resized shortest
 * edge -> S with the long side int(S·long/short) (PIL bicubic), top-left S x S kept (the centre
 * crop offset is (long − S) div 2 = 0 here). */
static int short_tile(const image_t *resized, int x0, int y0, int tw, int th, int S, uint8_t *tile) {
    image_t cut = {0}, big = {0};
    int rc = image_alloc(&cut, tw, th);
    if (rc) return rc;
    cut_rect(resized, x0, y0, tw, th, cut.rgb);
    int sh = th <= tw ? th : tw, lg = th <= tw ? tw : th;
    int nl = (int)((double)((long long)S * lg) / (double)sh);
    int nw = th <= tw ? nl : S, nh = th <= tw ? S : nl;
    rc = resize_bicubic(&cut, nw, nh, &big);
    image_free(&cut);
    if (rc) return rc;
    cut_window(&big, (nw - S) / 2, (nh - S) / 2, S, tile);
    image_free(&big);
    return HIRED_OK;
}

/* tiles [n, S, S, 3] uint8 -> pixels [n, 3, S, S] float32 (§1.6). */
static void tiles_to_pixels(const hf_preproc_t *pp, prep_out_t *out) {
    float lut[3][256];
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++) {
            float x = pp->do_rescale ? (float)((double)v * pp->rescale_factor) : (float)v;
            if (pp->do_normalize) x = (x - pp->mean[c]) / pp->std[c];
            lut[c][v] = x;
        }
    size_t plane = (size_t)out->size * (size_t)out->size;
    for (int p = 0; p < out->n; p++) {
        const uint8_t *t = out->tiles + (size_t)p * plane * 3;
        float *px = out->pixels + (size_t)p * plane * 3;
        for (size_t i = 0; i < plane; i++)
            for (int c = 0; c < 3; c++) px[(size_t)c * plane + i] = lut[c][t[3 * i + c]];
    }
}

// ---- LLaVA-NeXT ---------------------------------------------------------------------------------

int prep_llava_next(const image_t *img, const hf_preproc_t *pp, const int (*pinpoints)[2], int n_pinpoints,
                    prep_out_t *out, char *err) {
    return prep_llava_next_compat(img, pp, pinpoints, n_pinpoints, PREP_COMPAT_HF, out, err);
}

int prep_llava_next_compat(const image_t *img, const hf_preproc_t *pp, const int (*pinpoints)[2], int n_pinpoints,
                           prep_compat_t compat, prep_out_t *out, char *err) {
    memset(out, 0, sizeof *out);
    int rc = check_common(img, pp, err);
    if (rc) return rc;
    const int S = pp->crop_h;
    if (pp->shortest_edge != S)
        return hired_errf(err, HIRED_EUNSUPPORTED,
                          "preprocess: LLaVA-NeXT needs shortest_edge (%d) equal to the crop size (%d)",
                          pp->shortest_edge, S);
    if (!pinpoints || n_pinpoints < 1 || n_pinpoints > HF_MAX_PINPOINTS)
        return hired_errf(err, HIRED_EINVAL, "preprocess: %d grid pinpoints (need 1..%d)", n_pinpoints, HF_MAX_PINPOINTS);
    for (int i = 0; i < n_pinpoints; i++) {
        int ph = pinpoints[i][0], pw = pinpoints[i][1];
        if (ph < S || pw < S || ph > PREP_MAX_SIDE || pw > PREP_MAX_SIDE || ph % S || pw % S)
            return hired_errf(err, HIRED_EINVAL, "preprocess: pinpoint %d (%d, %d) is not a multiple of %d within %d",
                              i, ph, pw, S, PREP_MAX_SIDE);
        if ((ph / S) * (pw / S) + 1 > PREP_MAX_PARTITIONS)
            return hired_errf(err, HIRED_EUNSUPPORTED, "preprocess: pinpoint %d (%d, %d) gives more than %d partitions",
                              i, ph, pw, PREP_MAX_PARTITIONS);
    }

    int th, tw, nh, nw;
    anyres_best_resolution(img->h, img->w, pinpoints, n_pinpoints, &th, &tw);
    anyres_patch_output_size(img->h, img->w, th, tw, &nh, &nw);
    const int rows = th / S, cols = tw / S;
    if ((rc = out_alloc(out, rows * cols + 1, S, err))) return rc;
    out->rows = rows;
    out->cols = cols;
    out->orig_h = img->h;
    out->orig_w = img->w;
    out->new_h = nh;
    out->new_w = nw;
    out->pad_top = (th - nh) / 2; /* >= 4.52: floor(diff/2) before, the rest after */
    out->pad_left = (tw - nw) / 2;

    image_t resized = {0}, base = {0};
    size_t tile_bytes = (size_t)S * S * 3;
    if ((rc = resize_bicubic(img, S, S, &base)) || (rc = resize_bicubic(img, nw, nh, &resized))) {
        image_free(&base);
        prep_free(out);
        return hired_errf(err, rc, "preprocess: resizing %dx%d to %dx%d and %dx%d failed (%s)", img->w, img->h, S, S,
                          nw, nh, hired_strerror(rc));
    }
    memcpy(out->tiles, base.rgb, tile_bytes); /* partition 0: the squashed original */
    /* the canvas: th x tw, or (authors) the resized image with floor(diff/2) on both sides */
    const int canvas_h = compat == PREP_COMPAT_AUTHORS ? nh + 2 * out->pad_top : th;
    const int canvas_w = compat == PREP_COMPAT_AUTHORS ? nw + 2 * out->pad_left : tw;
    for (int r = 0; r < rows && !rc; r++)
        for (int c = 0; c < cols && !rc; c++) {
            uint8_t *tile = out->tiles + (size_t)(1 + r * cols + c) * tile_bytes;
            int tw_ = canvas_w - c * S < S ? canvas_w - c * S : S, th_ = canvas_h - r * S < S ? canvas_h - r * S : S;
            if (tw_ == S && th_ == S)
                cut_window(&resized, c * S - out->pad_left, r * S - out->pad_top, S, tile);
            else
                rc = short_tile(&resized, c * S - out->pad_left, r * S - out->pad_top, tw_, th_, S, tile);
        }
    if (rc) {
        image_free(&base);
        image_free(&resized);
        prep_free(out);
        return hired_errf(err, rc, "preprocess: resizing a short edge tile failed (%s)", hired_strerror(rc));
    }
    image_free(&base);
    image_free(&resized);
    tiles_to_pixels(pp, out);
    return HIRED_OK;
}

// ---- LLaVA-1.5 ----------------------------------------------------------------------------------

int prep_llava15(const image_t *img, const hf_preproc_t *pp, prep_out_t *out, char *err) {
    memset(out, 0, sizeof *out);
    int rc = check_common(img, pp, err);
    if (rc) return rc;
    const int S = pp->crop_h, E = pp->shortest_edge;
    if (!pp->do_resize || !pp->do_center_crop)
        return hired_errf(err, HIRED_EUNSUPPORTED, "preprocess: LLaVA-1.5 needs do_resize and do_center_crop");
    if (E < S)
        return hired_errf(err, HIRED_EUNSUPPORTED, "preprocess: shortest_edge %d smaller than crop %d (would pad)", E, S);
    /* get_resize_output_image_size(default_to_square=False): short side -> E,
     * long side -> int(E * long / short). */
    int w = img->w, h = img->h;
    int sh = w <= h ? w : h, lg = w <= h ? h : w;
    double l = (double)((long long)E * lg) / (double)sh;
    if (l * E > PREP_MAX_RESIZED_PIXELS)
        return hired_errf(err, HIRED_ERANGE, "preprocess: %dx%d would be resized to %.0fx%d pixels, over the limit of %.0f",
                          w, h, l, E, PREP_MAX_RESIZED_PIXELS);
    int nl = (int)l;
    int nw = w <= h ? E : nl, nh = w <= h ? nl : E;
    if ((rc = out_alloc(out, 1, S, err))) return rc;
    out->rows = out->cols = 1;
    out->orig_h = h;
    out->orig_w = w;
    out->new_h = nh;
    out->new_w = nw;
    out->pad_top = -((nh - S) / 2); /* centre crop offsets (negative "padding") */
    out->pad_left = -((nw - S) / 2);
    image_t resized = {0};
    if ((rc = resize_bicubic(img, nw, nh, &resized))) {
        prep_free(out);
        return hired_errf(err, rc, "preprocess: resizing %dx%d to %dx%d failed (%s)", w, h, nw, nh, hired_strerror(rc));
    }
    cut_window(&resized, -out->pad_left, -out->pad_top, S, out->tiles);
    image_free(&resized);
    tiles_to_pixels(pp, out);
    return HIRED_OK;
}

int prep_for_model(const image_t *img, const hf_config_t *cfg, const hf_preproc_t *pp, prep_out_t *out, char *err) {
    return prep_for_model_compat(img, cfg, pp, PREP_COMPAT_HF, out, err);
}

int prep_for_model_compat(const image_t *img, const hf_config_t *cfg, const hf_preproc_t *pp, prep_compat_t compat,
                          prep_out_t *out, char *err) {
    if (cfg->kind != HF_MODEL_LLAVA_NEXT) return prep_llava15(img, pp, out, err);
    const int(*pins)[2] = pp->n_pinpoints ? pp->pinpoints : cfg->pinpoints;
    int npins = pp->n_pinpoints ? pp->n_pinpoints : cfg->n_pinpoints;
    return prep_llava_next_compat(img, pp, pins, npins, compat, out, err);
}
