/* pack.h — where each kept visual token goes in the language model's input (docs/numerics.md §4).
 *
 * LLaVA-NeXT (PACK_MODE_NEXT): the base partition's kept tokens first, in selection order; then
 * the sub-images' kept tokens in selection order (mosaic raster order: row by row across the
 * stitched (rows·grid)×(cols·grid) map), minus those in rows/columns that unpadding removes.
 * Unpadding follows transformers >= 4.47 in exact integer arithmetic on the >= 4.44 grid:
 *   ch = rows·grid, cw = cols·grid, image H×W;
 *   if W·ch > cw·H: nh = (H·cw) div W, p = (ch − nh) div 2, keep mosaic rows p .. ch−p−1;
 *   else:           nw = (W·ch) div H, p = (cw − nw) div 2, keep mosaic cols p .. cw−p−1.
 * Newline policy:
 *   PACK_NEWLINE_HF    image_newline after the last kept token of every mosaic row that has at
 *                      least one kept token (at full budget: exactly stock HF, 576 + Hc·(Wc+1));
 *                      a NeXT image with no sub-images gets one newline after the base.
 *   PACK_NEWLINE_NONE  no newlines (the HiRED authors' code).
 * PACK_MODE_CONCAT (LLaVA-1.5, PruMerge selections): every token in selection order, no unpad,
 * no newline.
 * geom.authors (`--compat authors`) packs as the HiRED authors' transformers 4.42 fork does
 * (docs/numerics.md §4.2, §4.3): the rows·cols tiles, listed row-major, are viewed as a cols x rows
 * grid (tile k at grid row k div rows, column k mod rows; the ≤ 4.43 orientation bug, visible
 * only for non-square grids), unpadding compares and scales in float32 on that transposed map
 * (ch = cols·grid, cw = rows·grid): W/H > cw/ch in float32, s = f32(cw)/f32(W), nh = (int)(H·s),
 * p = (ch − nh) div 2 (columns alike), and the kept sub-image tokens follow that map's raster
 * order. PACK_NEWLINE_HF then adds image_newline after every row of the unpadded map, kept
 * tokens or not (what their code does when given a newline; their own runs pass none).
 * The layout is a list of slots, each the index of a kept token or PACK_SLOT_NEWLINE; the prompt
 * builder turns it into the source rows of one device gather (pack_source_rows).
 * Not here: the projector (projector.h), moving the vectors (kernels/gather.h), the merge into
 * the prompt (generate.h). */
#ifndef HIRED_PACK_H
#define HIRED_PACK_H

#include <stdbool.h>
#include <stdint.h>

#include "visual.h"

typedef enum { PACK_NEWLINE_HF = 0, PACK_NEWLINE_NONE } pack_newline_t;
typedef enum { PACK_MODE_NEXT = 0, PACK_MODE_CONCAT } pack_mode_t;

#define PACK_SLOT_NEWLINE (-1)

typedef struct {
    int n;              /* partitions: 1 + rows·cols (NeXT) or 1 */
    int rows, cols;     /* NeXT grid of sub-images */
    int orig_h, orig_w; /* image_sizes: the decoded image's height and width */
    int grid;           /* patches per partition side (24) */
    bool authors;       /* the HiRED authors' 4.42 layout (see above) */
} pack_geom_t;

/* Parses "hf" / "none". 0 or HIRED_EINVAL. */
int pack_newline_parse(const char *s, pack_newline_t *out);
const char *pack_newline_name(pack_newline_t nl);

/* The mosaic rows [*r0, *r1) and columns [*c0, *c1) that survive unpadding. */
void pack_unpad(const pack_geom_t *g, int *r0, int *r1, int *c0, int *c1);
/* Packed token count of an image whose every token is kept (NeXT: 576 + Hc·(Wc + newline);
 * CONCAT: n·576). */
int pack_full_count(const pack_geom_t *g, pack_mode_t mode, pack_newline_t nl);

/* Upper bound on the slots pack_layout writes for k kept tokens. */
int pack_max_slots(const pack_geom_t *g, int k);
/* Lays out k kept tokens at positions pos[0..k-1] (partition, row and column inside the
 * partition). slots must hold pack_max_slots(g, k) entries; *n_slots receives the count.
 * HIRED_EINVAL (bad geometry, a position outside it, a summary token in NEXT mode) with err. */
int pack_layout(const pack_geom_t *g, const visual_pos_t *pos, int k, pack_mode_t mode, pack_newline_t nl,
                int32_t *slots, int *n_slots, char *err);
/* rows[i] = slots[i], or newline_row for PACK_SLOT_NEWLINE: the source row of each packed vector
 * when the newline vector sits at row newline_row after the projected tokens. */
void pack_source_rows(const int32_t *slots, int n_slots, int32_t newline_row, int32_t *rows);

#endif
