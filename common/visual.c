/* visual.c — the encoder→decoder record (see visual.h). */
#include "visual.h"

#include <string.h>

#include "err.h"
#include "mem.h"

int visual_check(visual_t *v, char *err) {
    if (v->n < 1 || v->n > VISUAL_MAX_PARTS || v->grid < 1 || v->rows < 1 || v->cols < 1)
        return hired_errf(err, HIRED_EINVAL, "%d partitions of a %dx%d patch grid (grid %dx%d) is not an image layout",
                          v->n, v->grid, v->grid, v->rows, v->cols);
    if (v->n != 1 && v->n != 1 + v->rows * v->cols)
        return hired_errf(err, HIRED_EINVAL, "%d partitions do not fit a %dx%d grid plus the base image", v->n, v->rows,
                          v->cols);
    memset(v->per_part, 0, sizeof v->per_part);
    for (int i = 0; i < v->k; i++) {
        const visual_pos_t *p = &v->pos[i];
        bool summary = v->merged && p->row == -1 && p->col == -1;
        if (p->part < 0 || p->part >= v->n ||
            (!summary && (p->row < 0 || p->row >= v->grid || p->col < 0 || p->col >= v->grid)))
            return hired_errf(err, HIRED_EINVAL, "kept token %d at (%d, %d, %d) is outside %d partitions of %dx%d", i,
                              p->part, p->row, p->col, v->n, v->grid, v->grid);
        v->per_part[p->part]++;
    }
    return HIRED_OK;
}

int visual_total(const visual_t *v) { return v->n * v->grid * v->grid; }

void visual_free(visual_t *v) {
    if (!v) return;
    mem_free(v->pos);
    mem_free_aligned(v->features);
    memset(v, 0, sizeof *v);
}
