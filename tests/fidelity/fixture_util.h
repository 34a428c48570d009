/* fixture_util.h — helpers shared by the fidelity tests: whole-file reads and the quick subset.
 *
 * HIRED_TEST_QUICK=1 (set by scripts/test.sh for the ASan+UBSan run, where the sanitizers, not
 * the numbers, are under test) limits the per-image fidelity loops to three images that
 * between them take the 2x2, 1x3 and 2x1 grids and a PNG and a JPEG path. The normal build
 * always checks every image. */
#ifndef HIRED_FIXTURE_UTIL_H
#define HIRED_FIXTURE_UTIL_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline bool fixture_quick(void) {
    const char *q = getenv("HIRED_TEST_QUICK");
    return q && *q && strcmp(q, "0");
}

/* Whether the image with this file stem (no extension) is checked in this run. */
static inline bool fixture_wanted(const char *stem) {
    static const char *const quick[] = {"astronaut", "hubble_wide", "camera_gray"};
    if (!fixture_quick()) return true;
    for (size_t i = 0; i < sizeof quick / sizeof quick[0]; i++)
        if (!strcmp(stem, quick[i])) return true;
    return false;
}

/* Images expected per model: all 10, or the quick three. */
static inline int fixture_expected_images(void) { return fixture_quick() ? 3 : 10; }

/* Whole file as a NUL-terminated string (free()), or NULL. */
static inline char *fixture_read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *s = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (s = malloc((size_t)n + 1))) {
        if (fread(s, 1, (size_t)n, f) != (size_t)n) n = 0;
        s[n] = 0;
    }
    fclose(f);
    return s;
}

#endif
