/* test_resize.c — resize_bicubic against Pillow, byte for byte.
 *
 * Pins: every case of tests/fixtures/resize/index.txt ("resize" lines, made by
 * tools/reference/make_resize_cases.py with Pillow's Image.resize(BICUBIC)) is reproduced
 * exactly — horizontal-only, vertical-only, both axes, up and down, 1->7, 500->3, 336->337,
 * 335->336; equal size is a plain copy; invalid sizes give HIRED_EINVAL and an empty dst;
 * a constant image stays constant; every allocation failure gives HIRED_ENOMEM without leaks;
 * and the comparison itself notices a single changed byte. */
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "mem.h"
#include "resize.h"
#include "test.h"

/* Number of differing bytes (or -1 when the sizes differ); prints the first difference. */
static long image_diff(const image_t *a, const image_t *b, const char *what) {
    if (a->w != b->w || a->h != b->h) {
        fprintf(stderr, "%s: size %dx%d vs %dx%d\n", what, a->w, a->h, b->w, b->h);
        return -1;
    }
    long n = 0;
    size_t bytes = (size_t)a->w * a->h * 3;
    for (size_t i = 0; i < bytes; i++)
        if (a->rgb[i] != b->rgb[i]) {
            if (n == 0)
                fprintf(stderr, "%s: first difference at x=%zu y=%zu c=%zu: %d vs %d\n", what, (i / 3) % (size_t)a->w,
                        i / 3 / (size_t)a->w, i % 3, a->rgb[i], b->rgb[i]);
            n++;
        }
    return n;
}

static void fill_random(image_t *img, uint32_t seed) {
    for (size_t i = 0; i < (size_t)img->w * img->h * 3; i++) {
        seed = seed * 1664525u + 1013904223u;
        img->rgb[i] = (uint8_t)(seed >> 24);
    }
}

// ---- against Pillow -----------------------------------------------------------------------------

static void test_pillow_cases(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s", test_fixture("resize/index.txt"));
    FILE *f = fopen(path, "r");
    CHECK_MSG(f != NULL, "cannot open %s", path);
    if (!f) return;
    char line[1024];
    int n_cases = 0;
    CHECK(fgets(line, sizeof line, f) && strncmp(line, "hired-resize-cases 1", 20) == 0);
    while (fgets(line, sizeof line, f)) {
        char src_name[256], out_name[256];
        int ow, oh;
        if (sscanf(line, "resize %255s %255s %d %d", src_name, out_name, &ow, &oh) != 4) continue;
        char err[HIRED_ERR_LEN];
        image_t src = {0}, want = {0}, got = {0};
        char p[600];
        snprintf(p, sizeof p, "resize/%s", src_name);
        int rc = image_load_file(test_fixture(p), 0, &src, err);
        CHECK_MSG(rc == 0, "%s", err);
        snprintf(p, sizeof p, "resize/%s", out_name);
        rc |= image_load_file(test_fixture(p), 0, &want, err);
        CHECK_MSG(rc == 0, "%s", err);
        if (rc == 0) {
            CHECK_EQ_INT(resize_bicubic(&src, ow, oh, &got), 0);
            long d = image_diff(&got, &want, out_name);
            CHECK_MSG(d == 0, "%s: %ld bytes differ from Pillow (%dx%d -> %dx%d)", out_name, d, src.w, src.h, ow, oh);
        }
        n_cases++;
        image_free(&src);
        image_free(&want);
        image_free(&got);
    }
    fclose(f);
    CHECK_MSG(n_cases >= 20, "only %d resize cases in the index", n_cases);
}

// ---- properties and errors ----------------------------------------------------------------------

static void test_equal_size_copy(void) {
    image_t src = {0}, dst = {0};
    CHECK_EQ_INT(image_alloc(&src, 13, 7), 0);
    fill_random(&src, 7);
    CHECK_EQ_INT(resize_bicubic(&src, 13, 7, &dst), 0);
    CHECK(dst.rgb != src.rgb);
    CHECK_EQ_INT(image_diff(&src, &dst, "copy"), 0);
    image_free(&src);
    image_free(&dst);
}

static void test_invalid(void) {
    image_t src = {0}, dst = {.w = 5, .h = 5, .rgb = NULL};
    CHECK_EQ_INT(image_alloc(&src, 4, 4), 0);
    CHECK_EQ_INT(resize_bicubic(&src, 0, 4, &dst), HIRED_EINVAL);
    CHECK(dst.w == 0 && dst.h == 0 && dst.rgb == NULL);
    CHECK_EQ_INT(resize_bicubic(&src, 4, -1, &dst), HIRED_EINVAL);
    CHECK_EQ_INT(resize_bicubic(NULL, 4, 4, &dst), HIRED_EINVAL);
    image_t empty = {0};
    CHECK_EQ_INT(resize_bicubic(&empty, 4, 4, &dst), HIRED_EINVAL);
    image_free(&src);
}

static void test_constant_stays_constant(void) {
    /* Normalised weights sum to 2^22 within rounding, so a flat image must stay flat. */
    image_t src = {0}, dst = {0};
    CHECK_EQ_INT(image_alloc(&src, 31, 17), 0);
    for (size_t i = 0; i < 31 * 17; i++) {
        src.rgb[3 * i] = 0;
        src.rgb[3 * i + 1] = 128;
        src.rgb[3 * i + 2] = 255;
    }
    const int sizes[][2] = {{7, 3}, {100, 51}, {31, 60}, {5, 17}, {1, 1}};
    for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
        CHECK_EQ_INT(resize_bicubic(&src, sizes[s][0], sizes[s][1], &dst), 0);
        int bad = 0;
        for (int i = 0; i < dst.w * dst.h; i++)
            bad += dst.rgb[3 * i] != 0 || dst.rgb[3 * i + 1] != 128 || dst.rgb[3 * i + 2] != 255;
        CHECK_MSG(bad == 0, "%d pixels changed at %dx%d", bad, sizes[s][0], sizes[s][1]);
        image_free(&dst);
    }
    image_free(&src);
}

static void test_alloc_failures(void) {
    image_t src = {0}, ref = {0};
    CHECK_EQ_INT(image_alloc(&src, 20, 10), 0);
    fill_random(&src, 3);
    CHECK_EQ_INT(resize_bicubic(&src, 9, 23, &ref), 0);
    int ok = 0;
    for (long k = 0; k < 64 && !ok; k++) {
        image_t dst = {0};
        mem_fail_after(k, false);
        int rc = resize_bicubic(&src, 9, 23, &dst);
        mem_fail_after(-1, false);
        CHECK_MSG(rc == 0 || rc == HIRED_ENOMEM, "rc %d at failure %ld", rc, k);
        if (rc == HIRED_ENOMEM) CHECK(dst.rgb == NULL && dst.w == 0);
        if (rc == 0) {
            ok = 1;
            CHECK_EQ_INT(image_diff(&dst, &ref, "after faults"), 0);
        }
        image_free(&dst);
    }
    CHECK(ok);
    image_free(&src);
    image_free(&ref);
}

static void test_comparator_fails(void) {
    image_t a = {0}, b = {0};
    CHECK_EQ_INT(image_alloc(&a, 3, 2), 0);
    CHECK_EQ_INT(image_alloc(&b, 3, 2), 0);
    b.rgb[17] = 1;
    fprintf(stderr, "(expected difference follows)\n");
    CHECK_EQ_INT(image_diff(&a, &b, "perturbed"), 1);
    image_free(&a);
    image_free(&b);
}

int main(void) {
    test_pillow_cases();
    test_equal_size_copy();
    test_invalid();
    test_constant_stays_constant();
    test_alloc_failures();
    test_comparator_fails();
    return test_summary();
}
