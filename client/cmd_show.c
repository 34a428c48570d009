/* cmd_show.c — `hired show-selection`: the picture of what a token-selection strategy kept.
 *
 *   hired show-selection --model DIR --image FILE [--strategy S --budget R --alpha A
 *                        --split reference|paper --spatial S] [--out FILE.png]
 *
 * Runs the encoder path (decode, preprocess, vision, selection) and writes a PNG: every
 * partition (base, then each sub-image in grid order) side by side as the vision tower saw it
 * (after resize and padding), patches that were dropped dimmed, kept patches outlined by a
 * 1-pixel pure-red ring inside their 14x14 cell, and a caption with the counts per partition.
 * Dropped pixels are scaled to at most 45% brightness, so a ring of pure red (255,0,0) marks a
 * kept patch and nothing else. PruMerge's summary tokens have no position and are only counted
 * in the caption. Prints "kept K of N" (K = every kept token, summary tokens included). */
#include <stb/stb_easy_font.h>
#include <stb/stb_image_write.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "err.h"
#include "encode.h"
#include "image.h"
#include "mem.h"
#include "preprocess.h"

#define MARGIN 8
#define TITLE_H 28
#define CAPTION_H 26
#define DIM_NUM 45 /* dropped patches at 45% brightness */

typedef struct {
    int w, h;
    uint8_t *px; /* [h, w, 3] */
} canvas_t;

static void fill_rect(canvas_t *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3]) {
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > c->w) x1 = c->w;
    if (y1 > c->h) y1 = c->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) memcpy(c->px + ((size_t)y * c->w + x) * 3, rgb, 3);
}

/* Text through stb_easy_font's quads (axis-aligned rectangles), scaled by 2. */
static void draw_text(canvas_t *c, int x, int y, const char *text, const uint8_t rgb[3]) {
    static char buf[60000];
    int quads = stb_easy_font_print(0, 0, (char *)text, NULL, buf, sizeof buf);
    for (int q = 0; q < quads; q++) {
        const float *v = (const float *)(buf + (size_t)q * 4 * 16); /* 4 vertices of x,y,z,color */
        float x0 = v[0], y0 = v[1], x1 = v[0], y1 = v[1];
        for (int k = 1; k < 4; k++) {
            const float *p = (const float *)(buf + ((size_t)q * 4 + k) * 16);
            x0 = p[0] < x0 ? p[0] : x0;
            x1 = p[0] > x1 ? p[0] : x1;
            y0 = p[1] < y0 ? p[1] : y0;
            y1 = p[1] > y1 ? p[1] : y1;
        }
        fill_rect(c, x + (int)(2 * x0), y + (int)(2 * y0), x + (int)(2 * x1), y + (int)(2 * y1), rgb);
    }
}

/* One partition at (ox, oy): dimmed tile, kept cells restored and ringed in red. */
static void draw_partition(canvas_t *c, int ox, int oy, const uint8_t *tile, int size, int grid, const uint8_t *kept) {
    const int cell = size / grid;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            int j = (y / cell) * grid + x / cell;
            const uint8_t *s = tile + ((size_t)y * size + x) * 3;
            uint8_t *d = c->px + ((size_t)(oy + y) * c->w + ox + x) * 3;
            for (int ch = 0; ch < 3; ch++) d[ch] = kept[j] ? s[ch] : (uint8_t)(s[ch] * DIM_NUM / 100);
        }
    static const uint8_t red[3] = {255, 0, 0};
    for (int j = 0; j < grid * grid; j++) {
        if (!kept[j]) continue;
        int x0 = ox + (j % grid) * cell, y0 = oy + (j / grid) * cell;
        fill_rect(c, x0, y0, x0 + cell, y0 + 1, red);
        fill_rect(c, x0, y0 + cell - 1, x0 + cell, y0 + cell, red);
        fill_rect(c, x0, y0, x0 + 1, y0 + cell, red);
        fill_rect(c, x0 + cell - 1, y0, x0 + cell, y0 + cell, red);
    }
}

typedef struct {
    char *model, *image, *out, *device;
    cli_sel_t sel;
} show_opts_t;

#define SHOW_OWN 4
#define O(f) offsetof(show_opts_t, f)
static const cfg_entry_t k_show_own[SHOW_OWN] = {
    CLI_OPT_MODEL_DIR(O(model)),
    CLI_OPT_IMAGE(O(image)),
    {"out", CFG_STRING, O(out), 1, 4096, "selection.png", NULL, "where to write the picture"},
    CLI_OPT_DEVICE(O(device)),
};
#undef O

/* show-selection's body: encode and select, then draw the partitions with the kept tokens. */
static int show_body(const cli_cmd_t *cmd, void *values, const char **pos, int n_pos) {
    (void)cmd, (void)pos, (void)n_pos;
    const show_opts_t *o = values;
    const char *model = o->model, *image = o->image, *out_path = o->out;
    enc_params_t gp;
    enc_params_default(&gp);
    gp.sel = cli_sel_opts(&o->sel);
    char err[HIRED_ERR_LEN];
    int rc = 1;
    cli_enc_t e;
    image_t img = {0};
    prep_out_t prep = {0};
    visual_t vis = {0};
    uint8_t *kept = NULL;
    canvas_t c = {0};

    if (cli_enc_open(&e, model, image, o->device, err) || enc_run(e.m, e.d.ctx, e.bytes, e.n, &gp, &vis, NULL, NULL, err) ||
        image_decode(e.bytes, e.n, 0, &img, err) || cli_preprocess(enc_model_config(e.m), model, &img, &prep, err)) {
        fprintf(stderr, "hired show-selection: %s\n", err);
        goto done;
    }
    const int grid = vis.grid, P = grid * grid, n = vis.n, size = prep.size, total = visual_total(&vis);
    kept = mem_calloc((size_t)n * P, 1);
    if (!kept) goto done;
    int summary = 0, per_part[SEL_MAX_PARTS] = {0};
    for (int i = 0; i < vis.k; i++) {
        const visual_pos_t *p = &vis.pos[i];
        per_part[p->part]++;
        if (p->row < 0)
            summary++;
        else
            kept[(size_t)p->part * P + p->row * grid + p->col] = 1;
    }
    c.w = n * size + (n + 1) * MARGIN;
    c.h = TITLE_H + size + CAPTION_H + MARGIN;
    c.px = mem_alloc((size_t)c.w * c.h * 3);
    if (!c.px) goto done;
    static const uint8_t bg[3] = {255, 255, 255}, ink[3] = {20, 20, 20};
    fill_rect(&c, 0, 0, c.w, c.h, bg);
    char text[256];
    if (gp.sel.strategy == SEL_HIRED)
        snprintf(text, sizeof text, "hired r=%.2f alpha=%.2f %s split: kept %d of %d (%.1f%%)", gp.sel.budget,
                 gp.sel.alpha, gp.sel.split == SEL_SPLIT_PAPER ? "paper" : "reference", vis.k, total,
                 100.0 * vis.k / total);
    else
        snprintf(text, sizeof text, "%s: kept %d of %d (%.1f%%)%s", sel_strategy_name(gp.sel.strategy), vis.k, total,
                 100.0 * vis.k / total, summary ? ", incl. summary tokens" : "");
    draw_text(&c, MARGIN, 6, text, ink);
    for (int p = 0; p < n; p++) {
        int ox = MARGIN + p * (size + MARGIN);
        draw_partition(&c, ox, TITLE_H, prep.tiles + (size_t)p * size * size * 3, size, grid, kept + (size_t)p * P);
        if (p == 0)
            snprintf(text, sizeof text, "base: %d", per_part[0]);
        else if (n > 1)
            snprintf(text, sizeof text, "sub %d,%d: %d", (p - 1) / vis.cols, (p - 1) % vis.cols, per_part[p]);
        draw_text(&c, ox, TITLE_H + size + 6, text, ink);
    }
    if (!stbi_write_png(out_path, c.w, c.h, 3, c.px, c.w * 3)) {
        fprintf(stderr, "hired show-selection: cannot write %s\n", out_path);
        goto done;
    }
    printf("kept %d of %d visual tokens (%d drawn, %d summary); wrote %s (%dx%d)\n", vis.k, total, vis.k - summary,
           summary, out_path, c.w, c.h);
    rc = 0;
done:
    mem_free(c.px);
    mem_free(kept);
    visual_free(&vis);
    prep_free(&prep);
    image_free(&img);
    cli_enc_close(&e);
    return rc;
}

int cmd_show_selection(int argc, char **argv) {
    static const cli_cmd_t cmd = {
        .prog = "hired show-selection",
        .usage =
            "usage: hired show-selection --model DIR --image FILE [--strategy S --budget R --alpha A\n"
            "                            --split reference|paper --spatial S] [--out FILE.png]\n"
            "  runs the encoder path and the token selection in this process and writes a PNG: every\n"
            "  partition as the vision tower saw it, dropped patches dimmed, kept ones outlined in red,\n"
            "  with the counts per partition\n",
        .t = k_show_own,
        .n = SHOW_OWN,
        .group = cli_sel_entries,
        .group_n = CLI_SEL_N,
        .group_base = offsetof(show_opts_t, sel),
        .required = {"model", "image"},
        .body = show_body,
    };
    show_opts_t o = {0};
    return cli_command(&cmd, &o, argc, argv);
}
