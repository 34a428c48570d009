/* test_compat — `--compat authors` against the HiRED authors' transformers fork
 * (tests/fixtures/compat/llava-next-tiny.json, written by tools/reference/make_authors_fixtures.py,
 * which runs their image processor and their pack_HiRED_image_features):
 *   - pixel values: FNV-1a-64 of the uint8 tiles and of the float32 pixel_values equal the
 *     fork's (per-tile byte sums are compared too, to say which tile differs);
 *   - kept sets: HiRED r = 0.2 (alpha 0.5, reference split) on the tiny model, run through
 *     enc_run with the authors' preprocessing, keeps exactly the reference's positions (r = 1.0
 *     keeps every position, as the reference says too);
 *   - packing: pack_layout in the authors' layout (newline none) gives the fork's packed order
 *     and count, token by token.
 * Also: at least one fixture image really differs between the two modes (odd padding), and the
 * hf mode is unchanged by the option. Arguments FIRST COUNT run a shard of the images (the
 * vision tower is slow under ASan); HIRED_TEST_QUICK limits the images as the other fidelity
 * tests do. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "encode.h"
#include "err.h"
#include "fixture_util.h"
#include "image.h"
#include "json.h"
#include "mem.h"
#include "pack.h"
#include "preprocess.h"
#include "test.h"

static uint64_t fnv64(const void *p, size_t n) {
    const unsigned char *b = p;
    uint64_t h = 0xCBF29CE484222325ull;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ull;
    return h;
}

static k_device_t *g_dev; /* the CPU device and the context the tower runs on */
static k_ctx_t *g_ctx;

/* A whole file (mem_free), or NULL. */
static uint8_t *read_all(const char *path, size_t *n) {
    char err[HIRED_ERR_LEN];
    uint8_t *b = NULL;
    return file_read(path, (size_t)1 << 28, &b, n, err) ? NULL : b;
}

/* pos[0..k) equals the JSON list of [part, row, col]. */
static bool same_positions(const visual_pos_t *pos, const int32_t *order, int k, const cJSON *want, const char *what,
                           const char *label) {
    int n = cJSON_GetArraySize(want), i = 0;
    bool ok = n == k;
    const cJSON *it;
    cJSON_ArrayForEach(it, want) {
        if (i >= k) break;
        const visual_pos_t *p = &pos[order ? order[i] : i];
        int a = (int)cJSON_GetArrayItem(it, 0)->valuedouble, b = (int)cJSON_GetArrayItem(it, 1)->valuedouble,
            c = (int)cJSON_GetArrayItem(it, 2)->valuedouble;
        if (p->part != a || p->row != b || p->col != c) {
            if (ok) fprintf(stderr, "%s %s: entry %d is (%d,%d,%d), the fork's (%d,%d,%d)\n", label, what, i, p->part,
                            p->row, p->col, a, b, c);
            ok = false;
        }
        i++;
    }
    CHECK_MSG(ok, "%s: %s differ (%d vs the fork's %d)", label, what, k, n);
    return ok;
}

static void check_image(const enc_model_t *m, const hf_config_t *cfg, const hf_preproc_t *pp, const cJSON *rec,
                        int *n_differ) {
    char err[HIRED_ERR_LEN], label[160], rel[200];
    const char *name = cJSON_GetObjectItemCaseSensitive(rec, "image")->valuestring;
    snprintf(label, sizeof label, "compat/%s", name);
    snprintf(rel, sizeof rel, "images/%s", name);
    size_t nb = 0;
    uint8_t *bytes = read_all(test_fixture(rel), &nb);
    CHECK_MSG(bytes, "cannot read %s", rel);
    if (!bytes) return;
    image_t img = {0};
    prep_out_t au = {0}, hf = {0};
    CHECK_MSG(image_decode(bytes, nb, 0, &img, err) == 0, "%s: %s", label, err);
    int rc = prep_for_model_compat(&img, cfg, pp, PREP_COMPAT_AUTHORS, &au, err);
    CHECK_MSG(rc == 0, "%s: %s", label, err);
    CHECK(prep_for_model_compat(&img, cfg, pp, PREP_COMPAT_HF, &hf, err) == 0);
    if (!rc) {
        const int n = au.n;
        const size_t tile = (size_t)au.size * au.size * 3;
        CHECK_EQ_INT(n, (int)cJSON_GetObjectItemCaseSensitive(rec, "n")->valuedouble);
        const cJSON *sums = cJSON_GetObjectItemCaseSensitive(rec, "tile_sums");
        for (int t = 0; t < n && t < cJSON_GetArraySize(sums); t++) {
            long long s = 0;
            for (size_t i = 0; i < tile; i++) s += au.tiles[(size_t)t * tile + i];
            CHECK_MSG(s == (long long)cJSON_GetArrayItem(sums, t)->valuedouble, "%s: tile %d differs from the fork's",
                      label, t);
        }
        char hx[32];
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)fnv64(au.tiles, (size_t)n * tile));
        CHECK_MSG(!strcmp(hx, cJSON_GetObjectItemCaseSensitive(rec, "tiles_fnv")->valuestring), "%s: uint8 tiles differ",
                  label);
        snprintf(hx, sizeof hx, "%016llx", (unsigned long long)fnv64(au.pixels, (size_t)n * tile * sizeof(float)));
        CHECK_MSG(!strcmp(hx, cJSON_GetObjectItemCaseSensitive(rec, "pixels_fnv")->valuestring),
                  "%s: float32 pixel values differ", label);
        *n_differ += hf.n == au.n && memcmp(hf.tiles, au.tiles, (size_t)n * tile) != 0;
    }
    prep_free(&au);
    prep_free(&hf);
    image_free(&img);

    /* the vision tower runs once per image (r = 0.2); at r = 1.0 the authors' code keeps every
     * token, whose positions need no vision: all of them in selection (raster) order */
    visual_t v02 = {0};
    enc_params_t p02;
    enc_params_default(&p02);
    p02.sel = (sel_opts_t){.strategy = SEL_HIRED, .budget = 0.2, .alpha = 0.5, .split = SEL_SPLIT_REFERENCE};
    p02.compat = PREP_COMPAT_AUTHORS;
    rc = enc_run(m, g_ctx, bytes, nb, &p02, &v02, NULL, NULL, err);
    CHECK_MSG(rc == 0, "%s: %s", label, err);
    CHECK(rc || v02.authors);
    const cJSON *c, *cases = rc ? NULL : cJSON_GetObjectItemCaseSensitive(rec, "cases");
    cJSON_ArrayForEach(c, cases) {
        double r = cJSON_GetObjectItemCaseSensitive(c, "budget")->valuedouble;
        char cl[200];
        snprintf(cl, sizeof cl, "%s r=%.1f", label, r);
        visual_t vis = v02;
        visual_pos_t *all = NULL;
        if (r >= 1.0) { /* every position: the base raster, then the mosaic raster */
            const int gr = v02.grid, P = gr * gr;
            all = malloc(sizeof *all * (size_t)v02.n * P);
            int k = 0;
            for (int j = 0; j < P; j++) all[k++] = (visual_pos_t){0, (int16_t)(j / gr), (int16_t)(j % gr)};
            for (int y = 0; y < v02.rows * gr; y++)
                for (int x = 0; x < v02.cols * gr; x++)
                    all[k++] = (visual_pos_t){(int16_t)(1 + y / gr * v02.cols + x / gr), (int16_t)(y % gr), (int16_t)(x % gr)};
            vis.pos = all;
            vis.k = k;
        } else if (fabs(r - 0.2) > 1e-9) {
            CHECK_MSG(0, "%s: unexpected budget", cl);
            continue;
        }
        same_positions(vis.pos, NULL, vis.k, cJSON_GetObjectItemCaseSensitive(c, "kept"), "kept sets", cl);
        pack_geom_t g = {.n = vis.n, .rows = vis.rows, .cols = vis.cols, .orig_h = vis.orig_h, .orig_w = vis.orig_w,
                         .grid = vis.grid, .authors = true};
        int32_t *slots = malloc(sizeof *slots * (size_t)pack_max_slots(&g, vis.k));
        int n_slots = 0;
        CHECK(pack_layout(&g, vis.pos, vis.k, PACK_MODE_NEXT, PACK_NEWLINE_NONE, slots, &n_slots, err) == 0);
        same_positions(vis.pos, slots, n_slots, cJSON_GetObjectItemCaseSensitive(c, "packed"), "packed order", cl);
        if (r >= 1.0) CHECK_EQ_INT(n_slots, pack_full_count(&g, PACK_MODE_NEXT, PACK_NEWLINE_NONE));
        free(slots);
        free(all);
    }
    visual_free(&v02);
    mem_free(bytes);
}

int main(int argc, char **argv) {
    char err[HIRED_ERR_LEN];
    int first = argc > 1 ? atoi(argv[1]) : 0, count = argc > 2 ? atoi(argv[2]) : 1 << 30;
    cJSON *root = NULL;
    CHECK_MSG(json_read_file(test_fixture("compat/llava-next-tiny.json"), 8u << 20, &root, err) == 0, "%s", err);
    char mdir[4096];
    snprintf(mdir, sizeof mdir, "%s", test_fixture("models/llava-next-tiny"));
    CHECK_MSG((g_dev = k_device_open("cpu", err)) && (g_ctx = k_ctx_new(g_dev, err)), "%s", err);
    enc_model_t *m = g_ctx ? enc_model_load(mdir, g_dev, err) : NULL;
    CHECK_MSG(m, "%s", err);
    hf_preproc_t pp;
    CHECK(hf_preproc_load(mdir, &pp, err) == 0);
    int n = 0, i = 0, n_differ = 0;
    const cJSON *rec, *images = root && m ? cJSON_GetObjectItemCaseSensitive(root, "images") : NULL;
    cJSON_ArrayForEach(rec, images) {
        const char *name = cJSON_GetObjectItemCaseSensitive(rec, "image")->valuestring;
        char stem[128];
        snprintf(stem, sizeof stem, "%s", name);
        char *dot = strrchr(stem, '.');
        if (dot) *dot = 0;
        if (i++ < first || i > first + count || !fixture_wanted(stem)) continue;
        check_image(m, enc_model_config(m), &pp, rec, &n_differ);
        n++;
    }
    CHECK_MSG(n >= 1, "no image checked");
    if (first == 0 && count >= 10 && !fixture_quick())
        CHECK_MSG(n_differ >= 3, "only %d images preprocess differently in the authors' mode", n_differ);
    printf("compat authors: %d images (pixels, kept sets, packed order), %d differ from the hf mode\n", n, n_differ);
    enc_model_destroy(&m);
    k_ctx_destroy(&g_ctx);
    k_device_close(&g_dev);
    cJSON_Delete(root);
    return test_summary();
}
