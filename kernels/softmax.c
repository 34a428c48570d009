/* softmax.c — argument checking for the row softmax (see softmax.h). */
#include "softmax.h"

#include "err.h"

int k_softmax_check(const k_softmax_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "softmax: NULL args");
    if (a->m <= 0 || a->n <= 0) return hired_errf(err, HIRED_EINVAL, "softmax: sizes must be positive (m=%d n=%d)", a->m, a->n);
    if (!a->x) return hired_errf(err, HIRED_EINVAL, "softmax: x must not be NULL");
    return HIRED_OK;
}
