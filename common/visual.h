/* visual.h — the encoder→decoder record of one image: the kept visual tokens (their features and
 * where each came from) and the image geometry the decoder needs to pack them. What the encode
 * pipeline produces, what travels in RESULT and the decode JOB as typed wire fields
 * (visual_to_wire / visual_from_wire, docs/protocol.md), and what the prompt builder packs.
 *
 * Invariants of a valid record (visual_check): 1 ≤ n ≤ VISUAL_MAX_PARTS; n == 1 or
 * n == 1 + rows·cols; every position has 0 ≤ part < n and 0 ≤ row, col < grid, or, in a merged
 * record, row = col = -1 (a summary token); per_part[p] counts the positions in partition p.
 * Not here: how tokens are chosen (model: select.h), how they are packed (pack.h). */
#ifndef HIRED_VISUAL_H
#define HIRED_VISUAL_H

#include <stdbool.h>
#include <stdint.h>

#define VISUAL_MAX_PARTS 16

typedef struct {
    int16_t part, row, col; /* partition (0 = base) and patch position; row = col = -1: summary token */
} visual_pos_t;

typedef struct {
    int n;                 /* partitions: 1 (LLaVA-1.5) or 1 + rows·cols (NeXT, base first) */
    int rows, cols;        /* NeXT grid of sub-images (1, 1 for one partition) */
    int grid;              /* patches per partition side (24) */
    int orig_h, orig_w;    /* the decoded image's height and width */
    bool merged;           /* the tokens are a list of computed vectors (PruMerge: merged tokens and
                            * summary tokens), packed by concatenation */
    bool authors;          /* packed as the HiRED authors' transformers 4.42 fork does (`hired run
                            * --compat authors`; never crosses the wire) */
    int k, d;              /* kept tokens, feature width */
    visual_pos_t *pos;     /* [k]; owned */
    float *features;       /* [k, d] float32, host; owned */
    int per_part[VISUAL_MAX_PARTS];
} visual_t;

/* Checks the invariants above (and per_part, recounted here). 0 or HIRED_EINVAL with err naming
 * the first offence ("kept token 3 at (5, 0, 0) is outside 5 partitions of 24x24"). */
int visual_check(visual_t *v, char *err);
/* Tokens before selection: n · grid². */
int visual_total(const visual_t *v);
/* Frees pos and features and zeroes *v. Accepts a zeroed record. */
void visual_free(visual_t *v);

#endif
