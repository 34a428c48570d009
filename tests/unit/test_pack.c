/* test_pack — packing of kept visual tokens (model/pack.h): the unpad arithmetic and
 * token counts of docs/numerics.md §4.4, the newline policies, pruned rows and columns, PruMerge /
 * LLaVA-1.5 concatenation, and refusal of positions outside the geometry. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pack.h"
#include "anyres.h"
#include "test.h"

#define GRID 24
#define P (GRID * GRID)

static const int PINPOINTS[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336}, {336, 1008}};

/* Geometry of a W×H image as the preprocessor would choose it. */
static pack_geom_t geom_of(int w, int h) {
    int bh, bw;
    anyres_best_resolution(h, w, PINPOINTS, 5, &bh, &bw);
    pack_geom_t g = {.rows = bh / 336, .cols = bw / 336, .orig_h = h, .orig_w = w, .grid = GRID};
    g.n = 1 + g.rows * g.cols;
    return g;
}

/* Every token of the image, in select.h's order: base raster, then mosaic raster. */
static visual_pos_t *all_positions(const pack_geom_t *g, int *k) {
    visual_pos_t *pos = malloc(sizeof *pos * (size_t)g->n * P);
    int n = 0;
    for (int j = 0; j < P; j++) pos[n++] = (visual_pos_t){0, (int16_t)(j / GRID), (int16_t)(j % GRID)};
    for (int y = 0; y < g->rows * GRID; y++)
        for (int x = 0; x < g->cols * GRID; x++)
            pos[n++] = (visual_pos_t){(int16_t)(1 + y / GRID * g->cols + x / GRID), (int16_t)(y % GRID), (int16_t)(x % GRID)};
    *k = n;
    return pos;
}

static void table_case(int w, int h, int rows, int cols, int hc, int wc, int tokens_hf) {
    char err[HIRED_ERR_LEN];
    pack_geom_t g = geom_of(w, h);
    CHECK_MSG(g.rows == rows && g.cols == cols, "%dx%d: grid %dx%d, expected %dx%d", w, h, g.rows, g.cols, rows, cols);
    int r0, r1, c0, c1;
    pack_unpad(&g, &r0, &r1, &c0, &c1);
    CHECK_MSG(r1 - r0 == hc && c1 - c0 == wc, "%dx%d: unpadded %dx%d, expected %dx%d", w, h, r1 - r0, c1 - c0, hc, wc);
    CHECK_EQ_INT(pack_full_count(&g, PACK_MODE_NEXT, PACK_NEWLINE_HF), tokens_hf);
    CHECK_EQ_INT(pack_full_count(&g, PACK_MODE_NEXT, PACK_NEWLINE_NONE), P + hc * wc);

    /* the layout of the full selection agrees with the count and has the HF structure */
    int k;
    visual_pos_t *pos = all_positions(&g, &k);
    int32_t *slots = malloc(sizeof *slots * (size_t)pack_max_slots(&g, k));
    int n;
    CHECK_EQ_INT(pack_layout(&g, pos, k, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), 0);
    CHECK_EQ_INT(n, tokens_hf);
    int bad = 0;
    for (int i = 0; i < P; i++) bad += slots[i] != i;
    for (int y = 0; y < hc; y++) {
        const int32_t *row = slots + P + y * (wc + 1);
        for (int x = 0; x < wc; x++) {
            int gy = r0 + y, gx = c0 + x;
            const visual_pos_t *p = &pos[row[x]];
            int py = (p->part - 1) / g.cols * GRID + p->row, px = (p->part - 1) % g.cols * GRID + p->col;
            bad += row[x] < P || py != gy || px != gx;
        }
        bad += row[wc] != PACK_SLOT_NEWLINE;
    }
    CHECK_MSG(bad == 0, "%dx%d: %d slots out of place", w, h, bad);
    CHECK_EQ_INT(pack_layout(&g, pos, k, PACK_MODE_NEXT, PACK_NEWLINE_NONE, slots, &n, err), 0);
    CHECK_EQ_INT(n, P + hc * wc);
    int newlines = 0;
    for (int i = 0; i < n; i++) newlines += slots[i] == PACK_SLOT_NEWLINE;
    CHECK_EQ_INT(newlines, 0);
    free(slots);
    free(pos);
}

static void test_table(void) {
    table_case(672, 672, 2, 2, 48, 48, 2928);
    table_case(1000, 600, 2, 2, 28, 48, 1948);
    table_case(600, 1000, 2, 2, 48, 28, 1968);
    table_case(640, 480, 2, 2, 36, 48, 2340);
    table_case(1024, 899, 2, 2, 42, 48, 2634);
    table_case(1100, 808, 2, 2, 36, 48, 2340);
    table_case(1000, 400, 1, 3, 24, 60, 2040);
    table_case(300, 300, 1, 2, 24, 24, 1176);
    /* the fixture images (tests/fixtures/images/README.md) */
    table_case(600, 296, 1, 2, 24, 48, 1752);
    table_case(240, 512, 2, 1, 48, 22, 1680);
    table_case(1000, 330, 1, 3, 24, 72, 2328);
    table_case(200, 150, 1, 2, 24, 32, 1368);
}

/* Exact integer arithmetic where float32 truncation would differ (docs/numerics.md §4.2):
 * H·cw/W an exact integer. 1000×375 on 2×2: 375·48/1000 = 18 exactly. */
static void test_unpad_exact(void) {
    pack_geom_t g = {.n = 5, .rows = 2, .cols = 2, .orig_h = 375, .orig_w = 1000, .grid = GRID};
    int r0, r1, c0, c1;
    pack_unpad(&g, &r0, &r1, &c0, &c1);
    CHECK_EQ_INT(r0, 15);
    CHECK_EQ_INT(r1, 33);
    CHECK_EQ_INT(c0, 0);
    CHECK_EQ_INT(c1, 48);
    /* equal aspect ratio takes the column branch and keeps everything */
    pack_geom_t sq = {.n = 5, .rows = 2, .cols = 2, .orig_h = 512, .orig_w = 512, .grid = GRID};
    pack_unpad(&sq, &r0, &r1, &c0, &c1);
    CHECK(r0 == 0 && r1 == 48 && c0 == 0 && c1 == 48);
}

/* A hand-made pruned selection on a 1×2 grid of a 300×300 image (mosaic 24×48, kept columns
 * 12..35): rows without kept tokens get no newline, dropped columns vanish, the newline follows
 * the row's last kept token. */
static void test_pruned(void) {
    char err[HIRED_ERR_LEN];
    pack_geom_t g = {.n = 3, .rows = 1, .cols = 2, .orig_h = 300, .orig_w = 300, .grid = GRID};
    visual_pos_t pos[] = {
        {0, 0, 5},  {0, 23, 23},            /* base: always kept, selection order */
        {1, 0, 3},                          /* mosaic (0, 3): unpadded away */
        {1, 0, 20}, {2, 0, 1},              /* mosaic row 0: cols 20, 25 */
        {1, 4, 11},                         /* mosaic row 4: col 11 (dropped) only -> no row */
        {2, 7, 12}, {2, 7, 13},             /* mosaic row 7: cols 36, 37 (dropped) */
        {2, 9, 0},                          /* mosaic row 9: col 24 */
    };
    const int k = (int)ARRAY_LEN(pos);
    int32_t slots[32];
    int n;
    CHECK_EQ_INT(pack_layout(&g, pos, k, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), 0);
    const int32_t want_hf[] = {0, 1, 3, 4, PACK_SLOT_NEWLINE, 8, PACK_SLOT_NEWLINE};
    CHECK_EQ_INT(n, (int)ARRAY_LEN(want_hf));
    CHECK(n == (int)ARRAY_LEN(want_hf) && !memcmp(slots, want_hf, sizeof want_hf));
    CHECK_EQ_INT(pack_layout(&g, pos, k, PACK_MODE_NEXT, PACK_NEWLINE_NONE, slots, &n, err), 0);
    const int32_t want_none[] = {0, 1, 3, 4, 8};
    CHECK(n == (int)ARRAY_LEN(want_none) && !memcmp(slots, want_none, sizeof want_none));

    /* source rows: newline slots read the row after the k tokens, others the token's own */
    int32_t rows[8];
    CHECK_EQ_INT(pack_layout(&g, pos, k, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), 0);
    pack_source_rows(slots, n, k, rows);
    const int32_t want_rows[] = {0, 1, 3, 4, (int32_t)k, 8, (int32_t)k};
    CHECK(n == (int)ARRAY_LEN(want_rows) && !memcmp(rows, want_rows, sizeof want_rows));

    /* a NeXT image with no sub-image tokens left: base only, no newline */
    visual_pos_t base_only[] = {{0, 1, 1}, {1, 0, 0}};
    CHECK_EQ_INT(pack_layout(&g, base_only, 2, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), 0);
    CHECK(n == 1 && slots[0] == 0);
}

static void test_concat_and_errors(void) {
    char err[HIRED_ERR_LEN];
    int32_t slots[16];
    int n;
    /* PruMerge on NeXT: summary tokens (row = col = -1) only in CONCAT mode */
    pack_geom_t g = {.n = 3, .rows = 1, .cols = 2, .orig_h = 300, .orig_w = 300, .grid = GRID};
    visual_pos_t pm[] = {{0, 3, 3}, {0, -1, -1}, {1, 0, 0}, {1, -1, -1}, {2, 5, 5}, {2, -1, -1}};
    CHECK_EQ_INT(pack_layout(&g, pm, 6, PACK_MODE_CONCAT, PACK_NEWLINE_HF, slots, &n, err), 0);
    CHECK(n == 6 && slots[0] == 0 && slots[5] == 5);
    err[0] = 0;
    CHECK_EQ_INT(pack_layout(&g, pm, 6, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), HIRED_EINVAL);
    CHECK(strstr(err, "summary") != NULL);
    /* LLaVA-1.5: one partition, 576 tokens, no newline */
    pack_geom_t g15 = {.n = 1, .rows = 1, .cols = 1, .grid = GRID};
    CHECK_EQ_INT(pack_full_count(&g15, PACK_MODE_CONCAT, PACK_NEWLINE_HF), 576);
    visual_pos_t one[] = {{0, 2, 2}, {0, 9, 9}};
    CHECK_EQ_INT(pack_layout(&g15, one, 2, PACK_MODE_CONCAT, PACK_NEWLINE_HF, slots, &n, err), 0);
    CHECK_EQ_INT(n, 2);
    /* positions outside the geometry */
    visual_pos_t bad_part[] = {{3, 0, 0}}, bad_col[] = {{1, 0, 24}};
    CHECK_EQ_INT(pack_layout(&g, bad_part, 1, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), HIRED_EINVAL);
    CHECK_EQ_INT(pack_layout(&g, bad_col, 1, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), HIRED_EINVAL);
    /* inconsistent grid */
    pack_geom_t bad = {.n = 4, .rows = 1, .cols = 2, .orig_h = 300, .orig_w = 300, .grid = GRID};
    CHECK_EQ_INT(pack_layout(&bad, one, 2, PACK_MODE_NEXT, PACK_NEWLINE_HF, slots, &n, err), HIRED_EINVAL);
    /* policy names */
    pack_newline_t nl;
    CHECK(pack_newline_parse("hf", &nl) == 0 && nl == PACK_NEWLINE_HF);
    CHECK(pack_newline_parse("none", &nl) == 0 && nl == PACK_NEWLINE_NONE);
    CHECK_EQ_INT(pack_newline_parse("HF", &nl), HIRED_EINVAL);
    CHECK(!strcmp(pack_newline_name(PACK_NEWLINE_NONE), "none"));
}

int main(void) {
    test_table();
    test_unpad_exact();
    test_pruned();
    test_concat_and_errors();
    return test_summary();
}
