/* topk.c — argument checking and the dispatch entry for top-k (see topk.h). */
#include "topk.h"

#include "err.h"
#include "registry.h"

int k_topk_check(const k_topk_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "topk: NULL args");
    if (a->n <= 0) return hired_errf(err, HIRED_EINVAL, "topk: n must be positive (got %d)", a->n);
    if (a->k < 0 || a->k > a->n) return hired_errf(err, HIRED_EINVAL, "topk: k %d outside [0, n=%d]", a->k, a->n);
    if (!a->x) return hired_errf(err, HIRED_EINVAL, "topk: x must not be NULL");
    if (a->k > 0 && !a->idx) return hired_errf(err, HIRED_EINVAL, "topk: idx must not be NULL");
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "topk: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_topk(k_ctx_t *ctx, const k_topk_args *a) { return k_run(ctx, K_OP_TOPK, a); }
