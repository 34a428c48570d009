/* softmax.c — argument checking and the dispatch entry for the row softmax (see softmax.h). */
#include "softmax.h"

#include "err.h"
#include "registry.h"

int k_softmax_check(const k_softmax_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "softmax: NULL args");
    if (a->m <= 0 || a->n <= 0) return hired_errf(err, HIRED_EINVAL, "softmax: sizes must be positive (m=%d n=%d)", a->m, a->n);
    if (!a->x) return hired_errf(err, HIRED_EINVAL, "softmax: x must not be NULL");
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "softmax: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_softmax(k_ctx_t *ctx, const k_softmax_args *a) { return k_run(ctx, K_OP_SOFTMAX, a); }
