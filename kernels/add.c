/* add.c — argument checking and dispatch entries for the sums (see add.h). */
#include "add.h"

#include "err.h"
#include "registry.h"

int k_add_check(const k_add_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "add: NULL args");
    if (a->n <= 0) return hired_errf(err, HIRED_EINVAL, "add: n must be positive (got %lld)", (long long)a->n);
    if (!a->a || !a->b || !a->y) return hired_errf(err, HIRED_EINVAL, "add: a, b and y must not be NULL");
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "add: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_sum_rows_check(const k_sum_rows_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "sum_rows: NULL args");
    if (a->m <= 0 || a->n <= 0) return hired_errf(err, HIRED_EINVAL, "sum_rows: sizes must be positive (m=%d n=%d)", a->m, a->n);
    if (!a->x || !a->y) return hired_errf(err, HIRED_EINVAL, "sum_rows: x and y must not be NULL");
    if (a->ldx != 0 && a->ldx < a->n) return hired_errf(err, HIRED_EINVAL, "sum_rows: ldx %d is smaller than n %d", a->ldx, a->n);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "sum_rows: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_add(k_ctx_t *ctx, const k_add_args *a) { return k_run(ctx, K_OP_ADD, a); }
int k_sum_rows(k_ctx_t *ctx, const k_sum_rows_args *a) { return k_run(ctx, K_OP_SUM_ROWS, a); }
