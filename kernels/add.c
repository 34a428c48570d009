/* add.c — argument checking for the elementwise sum (see add.h). */
#include "add.h"

#include "err.h"

int k_add_check(const k_add_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "add: NULL args");
    if (a->n <= 0) return hired_errf(err, HIRED_EINVAL, "add: n must be positive (got %lld)", (long long)a->n);
    if (!a->a || !a->b || !a->y) return hired_errf(err, HIRED_EINVAL, "add: a, b and y must not be NULL");
    return HIRED_OK;
}
