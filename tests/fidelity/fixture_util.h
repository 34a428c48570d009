/* fixture_util.h — helpers shared by the fidelity tests: whole-file reads, the quick subset, and
 * a visual record reduced to a kept list computed elsewhere (the reference's selections).
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

#include "err.h"
#include "file.h"
#include "mem.h"
#include "visual.h"

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

/* Whole file as a NUL-terminated string (mem_free), or NULL. */
static inline char *fixture_read_text(const char *path) {
    char err[HIRED_ERR_LEN];
    uint8_t *b = NULL;
    size_t n;
    return file_read(path, (size_t)1 << 28, &b, &n, err) ? NULL : (char *)b;
}

/* A record holding the tokens of `all` (every token kept, as encoded with strategy none) at
 * positions keep[0..k) in that order. Caller owns *out (visual_free). HIRED_EINVAL when a
 * position is not in all. */
static inline int fixture_visual_subset(const visual_t *all, const visual_pos_t *keep, int k, visual_t *out, char *err) {
    memset(out, 0, sizeof *out);
    const int g = all->grid, P = g * g, d = all->d, total = visual_total(all);
    if (all->k != total || P <= 0)
        return hired_errf(err, HIRED_EINVAL, "visual subset: the source must hold every token (%d of %d)", all->k, total);
    int32_t *where = mem_alloc((size_t)total * sizeof *where); /* source index of every (part, row, col) */
    if (!where) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; i < total; i++) where[i] = -1;
    for (int i = 0; i < all->k; i++) {
        const visual_pos_t *p = &all->pos[i];
        if (p->part >= 0 && p->part < all->n && p->row >= 0 && p->row < g && p->col >= 0 && p->col < g)
            where[p->part * P + p->row * g + p->col] = i;
    }
    *out = *all;
    out->features = mem_alloc_aligned((size_t)(k > 0 ? k : 1) * d * sizeof(float));
    out->pos = mem_alloc((size_t)(k > 0 ? k : 1) * sizeof *out->pos);
    out->k = 0;
    memset(out->per_part, 0, sizeof out->per_part);
    int rc = out->features && out->pos ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; !rc && i < k; i++) {
        const visual_pos_t *p = &keep[i];
        int src = p->part >= 0 && p->part < all->n && p->row >= 0 && p->row < g && p->col >= 0 && p->col < g
                      ? where[p->part * P + p->row * g + p->col]
                      : -1;
        if (src < 0) {
            rc = hired_errf(err, HIRED_EINVAL, "visual subset: position (%d, %d, %d) is not in the source", p->part,
                            p->row, p->col);
            break;
        }
        memcpy(out->features + (size_t)i * d, all->features + (size_t)src * d, (size_t)d * sizeof(float));
        out->pos[i] = *p;
        out->per_part[p->part]++;
        out->k++;
    }
    mem_free(where);
    if (rc) visual_free(out);
    return rc;
}

#endif
