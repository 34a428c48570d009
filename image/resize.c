/* resize.c — Pillow's BICUBIC resize of 8-bit RGB, bit for bit (docs/numerics.md §1.7).
 *
 * Per axis the filter is a table of int32 coefficients with 22 fractional bits, one row of
 * `ksize` taps per output index, starting at source index `first`:
 *   scale = in/out, filterscale = max(scale, 1) (antialiasing: the kernel widens on downscale),
 *   support = 2·filterscale, ksize = 2·ceil(support) + 1,
 *   centre(i) = (i + 0.5)·scale, taps j in [max(0, (int)(centre − support + 0.5)),
 *   min(in, (int)(centre + support + 0.5))), weight Keys(a = −0.5)((j − centre + 0.5)/filterscale),
 *   normalised by the taps' sum, then rounded half away from zero to int32 at 2^22.
 * Pass order: horizontal (only if the width changes) into a uint8 intermediate holding only the
 * rows the vertical pass reads, then vertical (only if the height changes). Each output sample
 * is (2^21 + Σ pixel·coeff) >> 22 clamped to [0, 255], in int32 (Σ|coeff| < 1.2·2^22, so
 * 255·Σ stays far below 2^31).
 * Every double expression keeps Pillow's operation order; the build uses -ffp-contract=off so
 * no FMA changes a rounding. Not here: any other filter, other modes, the `box` argument. */
#include "resize.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "mem.h"

#define PRECISION_BITS 22

typedef struct {
    int ksize;     /* taps per output index (unused tail entries are 0) */
    int *first;    /* [out]: first source index of each output index */
    int *count;    /* [out]: number of taps actually used */
    int32_t *coef; /* [out, ksize]: fixed-point weights */
} filter_t;

// ---- coefficients -------------------------------------------------------------------------------

/* Keys cubic convolution kernel, a = -0.5, written in Pillow's operation order. */
static double bicubic(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

static void filter_free(filter_t *f) {
    mem_free(f->first);
    mem_free(f->count);
    mem_free(f->coef);
    memset(f, 0, sizeof *f);
}

static int filter_make(int in, int out, filter_t *f) {
    memset(f, 0, sizeof *f);
    double scale = (double)in / out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    double ss = 1.0 / filterscale;
    double ks = ceil(support) * 2 + 1;
    if (ks > (double)(INT32_MAX / 2)) return HIRED_ENOMEM;
    int ksize = (int)ks;
    f->ksize = ksize;
    f->first = mem_alloc((size_t)out * sizeof(int));
    f->count = mem_alloc((size_t)out * sizeof(int));
    f->coef = mem_calloc((size_t)out, (size_t)ksize * sizeof(int32_t));
    double *w = mem_alloc((size_t)ksize * sizeof(double)); /* one row of float weights */
    if (!f->first || !f->count || !f->coef || !w) {
        mem_free(w);
        filter_free(f);
        return HIRED_ENOMEM;
    }
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int xmin = (int)(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = (int)(center + support + 0.5);
        if (xmax > in) xmax = in;
        int n = xmax - xmin;
        double sum = 0.0;
        for (int x = 0; x < n; x++) {
            w[x] = bicubic((x + xmin - center + 0.5) * ss);
            sum += w[x];
        }
        int32_t *k = f->coef + (size_t)i * (size_t)ksize;
        for (int x = 0; x < n; x++) {
            double v = w[x];
            if (sum != 0.0) v /= sum;
            k[x] = v < 0 ? (int32_t)(-0.5 + v * (1 << PRECISION_BITS)) : (int32_t)(0.5 + v * (1 << PRECISION_BITS));
        }
        f->first[i] = xmin;
        f->count[i] = n;
    }
    mem_free(w);
    return HIRED_OK;
}

static inline uint8_t clip8(int32_t acc) {
    if (acc >= (int32_t)(256 << PRECISION_BITS)) return 255;
    if (acc <= 0) return 0;
    return (uint8_t)(acc >> PRECISION_BITS);
}

// ---- passes -------------------------------------------------------------------------------------

/* dst rows r = 0..n_rows-1 are src rows row0 + r, filtered along x. dst is [n_rows, f.out, 3]. */
static void pass_horizontal(const image_t *src, int row0, int n_rows, const filter_t *f, int out_w, uint8_t *dst) {
    for (int r = 0; r < n_rows; r++) {
        const uint8_t *in = src->rgb + (size_t)(row0 + r) * (size_t)src->w * 3;
        uint8_t *o = dst + (size_t)r * (size_t)out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const int32_t *k = f->coef + (size_t)x * (size_t)f->ksize;
            const uint8_t *p = in + (size_t)f->first[x] * 3;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int t = 0; t < f->count[x]; t++) {
                s0 += p[3 * t + 0] * k[t];
                s1 += p[3 * t + 1] * k[t];
                s2 += p[3 * t + 2] * k[t];
            }
            o[3 * x + 0] = clip8(s0);
            o[3 * x + 1] = clip8(s1);
            o[3 * x + 2] = clip8(s2);
        }
    }
}

/* dst row y reads src rows first[y] - row0 ... of the w-wide image src ([*, w, 3]). */
static void pass_vertical(const uint8_t *src, int w, int row0, const filter_t *f, int out_h, uint8_t *dst) {
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < out_h; y++) {
        const int32_t *k = f->coef + (size_t)y * (size_t)f->ksize;
        const uint8_t *base = src + (size_t)(f->first[y] - row0) * stride;
        uint8_t *o = dst + (size_t)y * stride;
        for (size_t i = 0; i < stride; i++) {
            int32_t s = 1 << (PRECISION_BITS - 1);
            for (int t = 0; t < f->count[y]; t++) s += base[(size_t)t * stride + i] * k[t];
            o[i] = clip8(s);
        }
    }
}

// ---- public -------------------------------------------------------------------------------------

int resize_bicubic(const image_t *src, int new_w, int new_h, image_t *dst) {
    dst->w = dst->h = 0;
    dst->rgb = NULL;
    if (!src || !src->rgb || src->w <= 0 || src->h <= 0 || new_w <= 0 || new_h <= 0) return HIRED_EINVAL;
    int rc = image_alloc(dst, new_w, new_h);
    if (rc) return rc;
    bool need_h = new_w != src->w, need_v = new_h != src->h;
    if (!need_h && !need_v) { /* PIL: same size -> copy, no filtering */
        memcpy(dst->rgb, src->rgb, (size_t)src->w * (size_t)src->h * 3);
        return HIRED_OK;
    }
    filter_t fh = {0}, fv = {0};
    uint8_t *tmp = NULL;
    if ((need_h && (rc = filter_make(src->w, new_w, &fh))) || (need_v && (rc = filter_make(src->h, new_h, &fv)))) goto done;
    if (!need_v) {
        pass_horizontal(src, 0, src->h, &fh, new_w, dst->rgb);
    } else if (!need_h) {
        pass_vertical(src->rgb, src->w, 0, &fv, new_h, dst->rgb);
    } else {
        /* Only the source rows the vertical pass touches: [first[0], first[last] + count[last]). */
        int row0 = fv.first[0], row1 = fv.first[new_h - 1] + fv.count[new_h - 1];
        tmp = mem_alloc((size_t)(row1 - row0) * (size_t)new_w * 3);
        if (!tmp) {
            rc = HIRED_ENOMEM;
            goto done;
        }
        pass_horizontal(src, row0, row1 - row0, &fh, new_w, tmp);
        pass_vertical(tmp, new_w, row0, &fv, new_h, dst->rgb);
    }
done:
    mem_free(tmp);
    filter_free(&fh);
    filter_free(&fv);
    if (rc) image_free(dst);
    return rc;
}
