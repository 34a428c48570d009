/* gather.c — argument checking and dispatch entries for gather and mask (see gather.h). */
#include "gather.h"

#include "err.h"
#include "registry.h"

int k_gather_check(const k_gather_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "gather: NULL args");
    if (a->n <= 0 || a->d <= 0) return hired_errf(err, HIRED_EINVAL, "gather: sizes must be positive (n=%d d=%d)", a->n, a->d);
    if (!a->x || !a->y) return hired_errf(err, HIRED_EINVAL, "gather: x and y must not be NULL");
    if (a->ldx != 0 && a->ldx < a->d) return hired_errf(err, HIRED_EINVAL, "gather: ldx %d is smaller than d %d", a->ldx, a->d);
    if (a->ldy != 0 && a->ldy < a->d) return hired_errf(err, HIRED_EINVAL, "gather: ldy %d is smaller than d %d", a->ldy, a->d);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "gather: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_mask_check(const k_mask_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "mask: NULL args");
    if (a->n < 0 || a->len <= 0) return hired_errf(err, HIRED_EINVAL, "mask: bad sizes (n=%d len=%d)", a->n, a->len);
    if ((a->n && !a->idx) || !a->y) return hired_errf(err, HIRED_EINVAL, "mask: idx and y must not be NULL");
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "mask: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_gather(k_ctx_t *ctx, const k_gather_args *a) { return k_run(ctx, K_OP_GATHER, a); }
int k_mask(k_ctx_t *ctx, const k_mask_args *a) { return k_run(ctx, K_OP_MASK, a); }
