/* pack.c — see pack.h. Pure arithmetic on positions (no data movement).
 * The authors' (4.42) layout sorts the kept sub-image tokens into its transposed map's raster
 * order; everything else walks the selection order, which is already the mosaic raster order. */
#include "pack.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "mem.h"

int pack_newline_parse(const char *s, pack_newline_t *out) {
    if (s && !strcmp(s, "hf")) *out = PACK_NEWLINE_HF;
    else if (s && !strcmp(s, "none")) *out = PACK_NEWLINE_NONE;
    else return HIRED_EINVAL;
    return HIRED_OK;
}

const char *pack_newline_name(pack_newline_t nl) { return nl == PACK_NEWLINE_NONE ? "none" : "hf"; }

/* The authors' unpad_image on their ch x cw map: torch float32 on the int64 image_sizes. */
static void unpad_authors(const pack_geom_t *g, int *r0, int *r1, int *c0, int *c1) {
    const int ch = g->cols * g->grid, cw = g->rows * g->grid; /* the transposed map */
    const float H = (float)g->orig_h, W = (float)g->orig_w;
    *r0 = 0, *r1 = ch, *c0 = 0, *c1 = cw;
    if (g->orig_h <= 0 || g->orig_w <= 0) return;
    volatile float ar = W / H, car = (float)((double)cw / (double)ch); /* no excess precision */
    if (ar > car) {
        volatile float s = (float)cw / W, x = H * s;
        int nh = (int)x, p = (ch - nh) / 2;
        *r0 = p, *r1 = ch - p;
    } else {
        volatile float s = (float)ch / H, x = W * s;
        int nw = (int)x, p = (cw - nw) / 2;
        *c0 = p, *c1 = cw - p;
    }
}

void pack_unpad(const pack_geom_t *g, int *r0, int *r1, int *c0, int *c1) {
    if (g->authors) {
        unpad_authors(g, r0, r1, c0, c1);
        return;
    }
    const long long ch = (long long)g->rows * g->grid, cw = (long long)g->cols * g->grid;
    const long long H = g->orig_h, W = g->orig_w;
    *r0 = 0, *r1 = (int)ch, *c0 = 0, *c1 = (int)cw;
    if (H <= 0 || W <= 0) return;
    if (W * ch > cw * H) { /* wider than the canvas: padding was added top and bottom */
        long long nh = H * cw / W, p = (ch - nh) / 2;
        *r0 = (int)p, *r1 = (int)(ch - p);
    } else {
        long long nw = W * ch / H, p = (cw - nw) / 2;
        *c0 = (int)p, *c1 = (int)(cw - p);
    }
}

int pack_full_count(const pack_geom_t *g, pack_mode_t mode, pack_newline_t nl) {
    const int P = g->grid * g->grid;
    if (mode == PACK_MODE_CONCAT) return g->n * P;
    if (g->n <= 1) return P + (nl == PACK_NEWLINE_HF ? 1 : 0);
    int r0, r1, c0, c1;
    pack_unpad(g, &r0, &r1, &c0, &c1);
    return P + (r1 - r0) * (c1 - c0 + (nl == PACK_NEWLINE_HF ? 1 : 0));
}

/* One newline per row change can never exceed one per kept token, plus the last one; the
 * authors' layout may add one per map row besides. */
int pack_max_slots(const pack_geom_t *g, int k) {
    int rows = g->rows > g->cols ? g->rows : g->cols;
    return 2 * (k > 0 ? k : 0) + 1 + (g->authors && rows > 0 && g->grid > 0 ? rows * g->grid : 0);
}

typedef struct {
    int y, x, i; /* map row, map column, token index */
} at_t;

static int cmp_at(const void *a, const void *b) {
    const at_t *p = a, *q = b;
    if (p->y != q->y) return p->y < q->y ? -1 : 1;
    if (p->x != q->x) return p->x < q->x ? -1 : 1;
    return (p->i > q->i) - (p->i < q->i);
}

/* Sub-image tokens in the authors' map order, after the base tokens already in slots[0..n). */
static int layout_authors(const pack_geom_t *g, const visual_pos_t *pos, int k, pack_newline_t nl, int32_t *slots, int n,
                          int *n_slots, char *err) {
    int r0, r1, c0, c1;
    pack_unpad(g, &r0, &r1, &c0, &c1);
    at_t *a = mem_alloc(sizeof *a * (size_t)(k > 0 ? k : 1));
    if (!a) return hired_errf(err, HIRED_ENOMEM, "pack: out of memory");
    int m = 0;
    for (int i = 0; i < k; i++) {
        if (pos[i].part == 0) continue;
        int t = pos[i].part - 1; /* tile t sits at (t div rows, t mod rows) of the cols x rows view */
        int y = t / g->rows * g->grid + pos[i].row, x = t % g->rows * g->grid + pos[i].col;
        if (y >= r0 && y < r1 && x >= c0 && x < c1) a[m++] = (at_t){y, x, i};
    }
    qsort(a, (size_t)m, sizeof *a, cmp_at);
    for (int y = r0, j = 0; y < r1; y++) {
        for (; j < m && a[j].y == y; j++) slots[n++] = a[j].i;
        if (nl == PACK_NEWLINE_HF) slots[n++] = PACK_SLOT_NEWLINE;
    }
    mem_free(a);
    *n_slots = n;
    return HIRED_OK;
}

static int check_geom(const pack_geom_t *g, pack_mode_t mode, char *err) {
    if (g->grid < 1 || g->n < 1 || g->n > VISUAL_MAX_PARTS)
        return hired_errf(err, HIRED_EINVAL, "pack: bad geometry (%d partitions, grid %d)", g->n, g->grid);
    if (mode == PACK_MODE_NEXT && g->n > 1 &&
        (g->rows < 1 || g->cols < 1 || g->rows * g->cols != g->n - 1 || g->orig_h < 1 || g->orig_w < 1))
        return hired_errf(err, HIRED_EINVAL, "pack: %d partitions do not match a %dx%d grid of a %dx%d image", g->n,
                          g->rows, g->cols, g->orig_w, g->orig_h);
    return HIRED_OK;
}

int pack_layout(const pack_geom_t *g, const visual_pos_t *pos, int k, pack_mode_t mode, pack_newline_t nl,
                int32_t *slots, int *n_slots, char *err) {
    *n_slots = 0;
    int rc = check_geom(g, mode, err);
    if (rc) return rc;
    if (k < 0) return hired_errf(err, HIRED_EINVAL, "pack: negative token count");
    int n = 0;
    if (mode == PACK_MODE_CONCAT) {
        for (int i = 0; i < k; i++) slots[n++] = i;
        *n_slots = n;
        return HIRED_OK;
    }
    for (int i = 0; i < k; i++) {
        const visual_pos_t *p = &pos[i];
        if (p->part < 0 || p->part >= g->n || p->row < 0 || p->row >= g->grid || p->col < 0 || p->col >= g->grid)
            return hired_errf(err, HIRED_EINVAL,
                              "pack: token %d at (partition %d, row %d, col %d) is outside %d partitions of %dx%d%s", i,
                              p->part, p->row, p->col, g->n, g->grid, g->grid,
                              p->row < 0 ? " (summary tokens need plain concatenation)" : "");
    }
    /* The base partition, whole, in selection order. */
    for (int i = 0; i < k; i++)
        if (pos[i].part == 0) slots[n++] = i;
    if (g->n == 1) {
        if (nl == PACK_NEWLINE_HF) slots[n++] = PACK_SLOT_NEWLINE;
        *n_slots = n;
        return HIRED_OK;
    }
    if (g->authors) return layout_authors(g, pos, k, nl, slots, n, n_slots, err);
    /* Sub-images: drop what unpadding removes; newline when the mosaic row changes and at the end. */
    int r0, r1, c0, c1;
    pack_unpad(g, &r0, &r1, &c0, &c1);
    int prev_row = -1;
    for (int i = 0; i < k; i++) {
        const visual_pos_t *p = &pos[i];
        if (p->part == 0) continue;
        int gy = (p->part - 1) / g->cols * g->grid + p->row;
        int gx = (p->part - 1) % g->cols * g->grid + p->col;
        if (gy < r0 || gy >= r1 || gx < c0 || gx >= c1) continue;
        if (nl == PACK_NEWLINE_HF && prev_row >= 0 && gy != prev_row) slots[n++] = PACK_SLOT_NEWLINE;
        slots[n++] = i;
        prev_row = gy;
    }
    if (nl == PACK_NEWLINE_HF && prev_row >= 0) slots[n++] = PACK_SLOT_NEWLINE;
    *n_slots = n;
    return HIRED_OK;
}

void pack_source_rows(const int32_t *slots, int n_slots, int32_t newline_row, int32_t *rows) {
    for (int i = 0; i < n_slots; i++) rows[i] = slots[i] == PACK_SLOT_NEWLINE ? newline_row : slots[i];
}
