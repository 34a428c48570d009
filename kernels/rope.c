/* rope.c — argument checking and the dispatch entry for the rotary embedding (see rope.h). */
#include "rope.h"

#include "err.h"
#include "registry.h"

int k_rope_check(const k_rope_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "rope: NULL args");
    if (a->t <= 0 || a->n_head <= 0 || a->head_dim <= 0)
        return hired_errf(err, HIRED_EINVAL, "rope: sizes must be positive (t=%d n_head=%d head_dim=%d)", a->t, a->n_head, a->head_dim);
    if (a->head_dim % 2) return hired_errf(err, HIRED_EINVAL, "rope: head_dim %d is odd", a->head_dim);
    if (!a->x) return hired_errf(err, HIRED_EINVAL, "rope: x must not be NULL");
    long long row = (long long)a->n_head * a->head_dim;
    if (row > 0x7fffffffLL) return hired_errf(err, HIRED_EINVAL, "rope: row of %lld floats is too long", row);
    if (a->ld != 0 && a->ld < row) return hired_errf(err, HIRED_EINVAL, "rope: ld %d is smaller than the row %lld", a->ld, row);
    if (a->pos0 < 0) return hired_errf(err, HIRED_EINVAL, "rope: pos0 %d is negative", a->pos0);
    if ((long long)a->pos0 + a->t > 0x7fffffffLL) return hired_errf(err, HIRED_EINVAL, "rope: positions overflow int");
    if (!(a->theta > 0.0)) return hired_errf(err, HIRED_EINVAL, "rope: theta must be positive (got %g)", a->theta);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "rope: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_rope(k_ctx_t *ctx, const k_rope_args *a) { return k_run(ctx, K_OP_ROPE, a); }
