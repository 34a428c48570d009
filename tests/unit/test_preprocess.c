/* test_preprocess.c — LLaVA-NeXT / LLaVA-1.5 preprocessing geometry and numerics.
 *
 * Pins (docs/numerics.md §1.2-1.8, llava-hf parameters filled by hand):
 *  - grid choice: squares <= 336 -> (336, 672) (strict tie-break keeps the first listed);
 *    600x600 and 683x683 -> 2x2; 1000x400 (WxH) -> 1x3; 400x1000 -> 3x1; 640x480 -> 2x2; and
 *    1133x567 / 1141x570 -> (336, 672), where IEEE-double truncation (671.9999999999999,
 *    335.99999999999994) decides against (672, 672) / (336, 1008) that exact arithmetic picks;
 *  - resize targets of the §4.4 table (300x300 -> 337 wide: ceil of 336.00000000000006);
 *  - padding: floor(diff/2) before, the odd pixel after; padded pixels are black and
 *    normalise to (-1.792263, -1.752097, -1.480220);
 *  - tile layout: base = the original squashed to 336x336, then row-major tiles cut from the
 *    padded canvas; pixels are CHW and equal (float)((double)u8 / 255 ...) normalised in float;
 *  - LLaVA-1.5: 640x480 -> 448x336, crop x in [56, 392); portrait and odd sizes;
 *  - parameter validation and allocation failures (out zeroed, no leaks under ASan). */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "preprocess.h"
#include "resize.h"
#include "test.h"

static const int PINS[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

/* llava-hf/llava-v1.6-* and llava-1.5 preprocessor_config.json values; mean/std go through a
 * double as the JSON loader and numpy do. */
static hf_preproc_t llava_pp(void) {
    hf_preproc_t pp;
    memset(&pp, 0, sizeof pp);
    pp.shortest_edge = 336;
    pp.crop_h = pp.crop_w = 336;
    pp.do_resize = pp.do_center_crop = pp.do_rescale = pp.do_normalize = pp.do_pad = pp.do_convert_rgb = true;
    pp.rescale_factor = 0.00392156862745098;
    const double mean[3] = {0.48145466, 0.4578275, 0.40821073}, std[3] = {0.26862954, 0.26130258, 0.27577711};
    for (int c = 0; c < 3; c++) {
        pp.mean[c] = (float)mean[c];
        pp.std[c] = (float)std[c];
    }
    pp.resample = 3;
    pp.n_pinpoints = 5;
    memcpy(pp.pinpoints, PINS, sizeof PINS);
    return pp;
}

static void make_image(image_t *img, int w, int h, uint32_t seed) {
    CHECK_EQ_INT(image_alloc(img, w, h), 0);
    for (size_t i = 0; i < (size_t)w * h * 3; i++) {
        seed = seed * 1664525u + 1013904223u;
        img->rgb[i] = (uint8_t)(64 + (seed >> 25)); /* never 0: padding stays distinguishable */
    }
}

static float expect_pixel(const hf_preproc_t *pp, int c, uint8_t v) {
    float x = (float)((double)v * pp->rescale_factor);
    return (x - pp->mean[c]) / pp->std[c];
}

// ---- geometry -----------------------------------------------------------------------------------

static void test_grid_choice(void) {
    const struct {
        int w, h, ph, pw;
    } cases[] = {
        {1, 1, 336, 672},       {100, 100, 336, 672},   {300, 300, 336, 672},  {336, 336, 336, 672},
        {79, 79, 336, 672},     {600, 600, 672, 672},   {683, 683, 672, 672},  {1000, 400, 336, 1008},
        {400, 1000, 1008, 336}, {640, 480, 672, 672},   {672, 672, 672, 672},  {1000, 600, 672, 672},
        {1024, 899, 672, 672},  {1133, 567, 336, 672},  {1141, 570, 336, 672}, {1, 5000, 336, 672},
        {5000, 1, 336, 672}, /* every candidate has effective 0: the smallest first-listed wins */
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int bh, bw;
        anyres_best_resolution(cases[i].h, cases[i].w, PINS, 5, &bh, &bw);
        CHECK_MSG(bh == cases[i].ph && bw == cases[i].pw, "%dx%d (WxH): got (%d, %d), want (%d, %d)", cases[i].w,
                  cases[i].h, bh, bw, cases[i].ph, cases[i].pw);
    }
    /* order matters on ties: with the two 2-tile pinpoints swapped, 300x300 becomes 2x1 */
    const int swapped[2][2] = {{672, 336}, {336, 672}};
    int bh, bw;
    anyres_best_resolution(300, 300, swapped, 2, &bh, &bw);
    CHECK(bh == 672 && bw == 336);
    anyres_best_resolution(300, 300, PINS, 0, &bh, &bw);
    CHECK(bh == 0 && bw == 0);
}

static void test_resize_targets(void) {
    /* docs/numerics.md §4.4: image WxH, pinpoint (h, w), resized (h, w) */
    const struct {
        int w, h, th, tw, nh, nw;
    } cases[] = {
        {672, 672, 672, 672, 672, 672}, {1000, 600, 672, 672, 404, 672}, {600, 1000, 672, 672, 672, 404},
        {640, 480, 672, 672, 504, 672}, {1024, 899, 672, 672, 590, 672}, {1100, 808, 672, 672, 494, 672},
        {1000, 400, 336, 1008, 336, 840}, {300, 300, 336, 672, 336, 337},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        int th, tw, nh, nw;
        anyres_best_resolution(cases[i].h, cases[i].w, PINS, 5, &th, &tw);
        CHECK_MSG(th == cases[i].th && tw == cases[i].tw, "%dx%d: pinpoint (%d, %d)", cases[i].w, cases[i].h, th, tw);
        anyres_patch_output_size(cases[i].h, cases[i].w, th, tw, &nh, &nw);
        CHECK_MSG(nh == cases[i].nh && nw == cases[i].nw, "%dx%d: resized (%d, %d), want (%d, %d)", cases[i].w,
                  cases[i].h, nh, nw, cases[i].nh, cases[i].nw);
    }
}

// ---- LLaVA-NeXT end to end ----------------------------------------------------------------------

/* Checks tiles against an independent assembly from resize_bicubic, and pixels against the
 * formula, for one image. */
static void check_next(int w, int h, int rows, int cols, int nh, int nw, int pad_top, int pad_left) {
    hf_preproc_t pp = llava_pp();
    image_t img = {0}, base = {0}, rs = {0};
    make_image(&img, w, h, (uint32_t)(w * 7919 + h));
    prep_out_t out;
    char err[HIRED_ERR_LEN];
    int rc = prep_llava_next(&img, &pp, PINS, 5, &out, err);
    CHECK_MSG(rc == 0, "%dx%d: %s", w, h, err);
    if (rc) {
        image_free(&img);
        return;
    }
    CHECK_MSG(out.rows == rows && out.cols == cols && out.n == rows * cols + 1, "%dx%d: grid %dx%d n %d", w, h, out.rows,
              out.cols, out.n);
    CHECK(out.orig_h == h && out.orig_w == w && out.size == 336);
    CHECK_MSG(out.new_h == nh && out.new_w == nw && out.pad_top == pad_top && out.pad_left == pad_left,
              "%dx%d: resized %dx%d pad top %d left %d", w, h, out.new_w, out.new_h, out.pad_top, out.pad_left);
    CHECK_EQ_INT(resize_bicubic(&img, 336, 336, &base), 0);
    CHECK_EQ_INT(resize_bicubic(&img, nw, nh, &rs), 0);
    const size_t S = 336, plane = S * S;
    CHECK(memcmp(out.tiles, base.rgb, plane * 3) == 0);
    long bad = 0, black = 0;
    for (int r = 0; r < out.rows; r++)
        for (int c = 0; c < out.cols; c++) {
            const uint8_t *t = out.tiles + (size_t)(1 + r * out.cols + c) * plane * 3;
            for (size_t y = 0; y < S; y++)
                for (size_t x = 0; x < S; x++) {
                    long cy = (long)(r * S + y) - pad_top, cx = (long)(c * S + x) - pad_left;
                    bool inside = cy >= 0 && cy < nh && cx >= 0 && cx < nw;
                    for (int ch = 0; ch < 3; ch++) {
                        uint8_t want = inside ? rs.rgb[((size_t)cy * nw + (size_t)cx) * 3 + ch] : 0;
                        bad += t[(y * S + x) * 3 + ch] != want;
                    }
                    black += !inside;
                }
        }
    CHECK_MSG(bad == 0, "%dx%d: %ld tile samples misplaced", w, h, bad);
    CHECK_EQ_INT(black, (long)rows * cols * (long)plane - (long)nh * nw);
    long badpx = 0;
    for (int p = 0; p < out.n; p++)
        for (int ch = 0; ch < 3; ch++)
            for (size_t i = 0; i < plane; i++)
                badpx += out.pixels[((size_t)p * 3 + ch) * plane + i] != expect_pixel(&pp, ch, out.tiles[((size_t)p * plane + i) * 3 + ch]);
    CHECK_MSG(badpx == 0, "%dx%d: %ld pixel values differ", w, h, badpx);
    prep_free(&out);
    CHECK(out.tiles == NULL && out.pixels == NULL && out.n == 0);
    image_free(&img);
    image_free(&base);
    image_free(&rs);
}

static void test_next_layouts(void) {
    check_next(300, 300, 1, 2, 336, 337, 0, 167);     /* odd diff 335: 167 left, 168 right */
    check_next(1000, 600, 2, 2, 404, 672, 134, 0);    /* even diff 268: 134 / 134 */
    check_next(600, 1000, 2, 2, 672, 404, 0, 134);
    check_next(1000, 400, 1, 3, 336, 840, 0, 84);     /* 1x3 */
    check_next(400, 1000, 3, 1, 840, 336, 84, 0);     /* 3x1 */
    check_next(640, 480, 2, 2, 504, 672, 84, 0);
    check_next(300, 150, 1, 2, 336, 672, 0, 0);       /* ceil(672.0000000000001) = 673, capped at 672 */
    check_next(701, 350, 1, 3, 336, 673, 0, 167);     /* 1x3 with an odd diff */
    check_next(1, 1, 1, 2, 336, 336, 0, 168);
}

static void test_padding_value(void) {
    hf_preproc_t pp = llava_pp();
    image_t img = {0};
    make_image(&img, 300, 300, 5);
    prep_out_t out;
    char err[HIRED_ERR_LEN];
    CHECK_EQ_INT(prep_llava_next(&img, &pp, PINS, 5, &out, err), 0);
    const size_t plane = 336 * 336;
    /* tile 1 = grid (0, 0): column 0 is padding; tile 2 = (0, 1): column 335 is padding */
    const float want[3] = {-1.792263f, -1.752097f, -1.480220f};
    for (int c = 0; c < 3 && out.pixels; c++) {
        CHECK_NEAR(out.pixels[(1 * 3 + c) * plane + 0], want[c], 1e-6);
        CHECK_NEAR(out.pixels[(2 * 3 + c) * plane + 335], want[c], 1e-6);
        CHECK(out.pixels[(1 * 3 + c) * plane + 167] != out.pixels[(1 * 3 + c) * plane + 0]); /* first image column */
    }
    prep_free(&out);
    /* do_rescale / do_normalize off: raw values pass through */
    pp.do_normalize = false;
    CHECK_EQ_INT(prep_llava_next(&img, &pp, PINS, 5, &out, err), 0);
    CHECK(out.pixels && out.pixels[3 * plane + 0] == 0.0f); /* tile 1, R, padding */
    CHECK(out.pixels && out.pixels[0] == (float)((double)out.tiles[0] * pp.rescale_factor));
    prep_free(&out);
    pp.do_rescale = false;
    CHECK_EQ_INT(prep_llava_next(&img, &pp, PINS, 5, &out, err), 0);
    CHECK(out.pixels && out.pixels[0] == (float)out.tiles[0]);
    prep_free(&out);
    image_free(&img);
}

// ---- LLaVA-1.5 ----------------------------------------------------------------------------------

static void check_15(int w, int h, int nw, int nh, int x0, int y0) {
    hf_preproc_t pp = llava_pp();
    image_t img = {0}, rs = {0};
    make_image(&img, w, h, (uint32_t)(w + 31 * h));
    prep_out_t out;
    char err[HIRED_ERR_LEN];
    int rc = prep_llava15(&img, &pp, &out, err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) {
        image_free(&img);
        return;
    }
    CHECK(out.n == 1 && out.rows == 1 && out.cols == 1 && out.size == 336 && out.orig_w == w && out.orig_h == h);
    CHECK_MSG(out.new_w == nw && out.new_h == nh && -out.pad_left == x0 && -out.pad_top == y0,
              "%dx%d: resized %dx%d crop at (%d, %d)", w, h, out.new_w, out.new_h, -out.pad_left, -out.pad_top);
    CHECK_EQ_INT(resize_bicubic(&img, nw, nh, &rs), 0);
    long bad = 0;
    for (int y = 0; y < 336; y++)
        bad += memcmp(out.tiles + (size_t)y * 336 * 3, rs.rgb + ((size_t)(y + y0) * nw + (size_t)x0) * 3, 336 * 3) != 0;
    CHECK_MSG(bad == 0, "%dx%d: %ld crop rows differ", w, h, bad);
    const size_t plane = 336 * 336;
    long badpx = 0;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < plane; i++) badpx += out.pixels[c * plane + i] != expect_pixel(&pp, c, out.tiles[i * 3 + c]);
    CHECK(badpx == 0);
    prep_free(&out);
    image_free(&img);
    image_free(&rs);
}

static void test_llava15(void) {
    check_15(640, 480, 448, 336, 56, 0); /* docs/numerics.md §1.8 */
    check_15(480, 640, 336, 448, 0, 56);
    check_15(500, 333, 504, 336, 84, 0); /* int(336*500/333) = int(504.50...) */
    check_15(336, 336, 336, 336, 0, 0);  /* equal size: copy, no crop */
    check_15(100, 101, 336, 339, 0, 1);  /* upscale; (339-336)//2 = 1 */
}

// ---- errors -------------------------------------------------------------------------------------

static void test_validation(void) {
    image_t img = {0};
    make_image(&img, 40, 30, 1);
    prep_out_t out;
    char err[HIRED_ERR_LEN];
    hf_preproc_t pp = llava_pp();
    pp.resample = 2;
    CHECK_EQ_INT(prep_llava_next(&img, &pp, PINS, 5, &out, err), HIRED_EUNSUPPORTED);
    CHECK(strstr(err, "resample=2") != NULL && out.tiles == NULL && out.n == 0);
    CHECK_EQ_INT(prep_llava15(&img, &pp, &out, err), HIRED_EUNSUPPORTED);
    pp = llava_pp();
    pp.shortest_edge = 224;
    CHECK_EQ_INT(prep_llava_next(&img, &pp, PINS, 5, &out, err), HIRED_EUNSUPPORTED);
    CHECK_EQ_INT(prep_llava15(&img, &pp, &out, err), HIRED_EUNSUPPORTED);
    pp = llava_pp();
    pp.crop_w = 335;
    CHECK_EQ_INT(prep_llava15(&img, &pp, &out, err), HIRED_EUNSUPPORTED);
    pp = llava_pp();
    pp.std[1] = 0.0f;
    CHECK_EQ_INT(prep_llava15(&img, &pp, &out, err), HIRED_EINVAL);
    pp = llava_pp();
    const int bad_pins[2][2] = {{336, 672}, {500, 336}};
    CHECK_EQ_INT(prep_llava_next(&img, &pp, bad_pins, 2, &out, err), HIRED_EINVAL);
    CHECK(strstr(err, "(500, 336)") != NULL);
    const int many[1][2] = {{1008, 1008}}; /* 9 tiles + base = 10: allowed */
    CHECK_EQ_INT(prep_llava_next(&img, &pp, many, 1, &out, err), 0);
    CHECK(out.n == 10);
    prep_free(&out);
    const int too_many[1][2] = {{1344, 1008}};
    CHECK_EQ_INT(prep_llava_next(&img, &pp, too_many, 1, &out, err), HIRED_EUNSUPPORTED);
    CHECK_EQ_INT(prep_llava_next(&img, &pp, PINS, 0, &out, err), HIRED_EINVAL);
    image_t empty = {0};
    CHECK_EQ_INT(prep_llava_next(&empty, &pp, PINS, 5, &out, err), HIRED_EINVAL);
    CHECK_EQ_INT(prep_llava15(&empty, &pp, &out, err), HIRED_EINVAL);
    image_t strip = {0};
    make_image(&strip, 1, 2000, 2); /* 1.5 would resize to 336x672000 */
    CHECK_EQ_INT(prep_llava15(&strip, &pp, &out, err), HIRED_ERANGE);
    image_free(&strip);
    prep_free(&out); /* zeroed out: no-op */
    prep_free(NULL);
    image_free(&img);
}

static void test_alloc_failures(void) {
    /* Same code paths at a 28-pixel tile size, so the sweep stays fast under ASan. */
    image_t img = {0};
    make_image(&img, 90, 50, 9);
    hf_preproc_t pp = llava_pp();
    pp.shortest_edge = pp.crop_h = pp.crop_w = 28;
    const int pins[3][2] = {{28, 56}, {56, 28}, {56, 56}};
    char err[HIRED_ERR_LEN];
    for (int path = 0; path < 2; path++) {
        int ok = 0;
        for (long k = 0; k < 200 && !ok; k++) {
            prep_out_t out;
            mem_fail_after(k, false);
            int rc = path ? prep_llava15(&img, &pp, &out, err) : prep_llava_next(&img, &pp, pins, 3, &out, err);
            mem_fail_after(-1, false);
            CHECK_MSG(rc == 0 || rc == HIRED_ENOMEM, "path %d, failure %ld: rc %d", path, k, rc);
            if (rc) CHECK(out.tiles == NULL && out.pixels == NULL && out.n == 0);
            ok = rc == 0;
            prep_free(&out);
        }
        CHECK(ok);
    }
    image_free(&img);
}

int main(void) {
    test_grid_choice();
    test_resize_targets();
    test_next_layouts();
    test_padding_value();
    test_llava15();
    test_validation();
    test_alloc_failures();
    return test_summary();
}
