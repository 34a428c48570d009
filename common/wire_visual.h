/* wire_visual.h — the encoder→decoder record of one image (visual.h) in its wire form: one
 * wire_visual_t of the `visuals` of RESULT and of a decode JOB (kept, dim, dtype, grid,
 * image_size, parts, patch_grid, positions; docs/protocol.md) and its tensor frame [kept, dim]
 * in the wire dtype.
 * Positions travel as uint16; a summary token's row = col = -1 travels as 0xFFFF and comes back
 * as -1 only in a merged record (strategy prumerge or prumerge+).
 * Not here: the header codec (wire.h), what the decoder does with the record (generate.h). */
#ifndef HIRED_WIRE_VISUAL_H
#define HIRED_WIRE_VISUAL_H

#include "visual.h"
#include "wire.h"

/* Fills record w from v and initialises *tensor with v's features converted to dtype. Features that are not finite in dtype (a NaN from the tower, or beyond the f16 range)
 * are refused: HIRED_ERANGE naming how many, since a decoder would otherwise turn them into an
 * empty or wrong answer. HIRED_ERANGE also when v exceeds the protocol's limits, HIRED_ENOMEM.
 * On failure *tensor is left closed. */
int wire_put_visual(const visual_t *v, wire_dtype_t dtype, wire_visual_t *w, zmq_msg_t *tensor, char *err);

/* Record i of a decode JOB: header m (its params.strategy says whether the tokens are merged)
 * and that record's tensor frame (borrowed). Features are converted to float32 on the host; a
 * non-finite one is refused. The record is checked (visual_check). HIRED_EPROTO (missing
 * fields, a tensor of the wrong size), HIRED_EINVAL (a position outside the geometry),
 * HIRED_ERANGE (non-finite values), HIRED_ENOMEM. Caller owns *v (visual_free). */
int wire_get_visual(const wire_msg_t *m, uint32_t i, const zmq_msg_t *tensor, visual_t *v, char *err);

#endif
