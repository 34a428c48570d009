/* norm.c — argument checking for LayerNorm and RMSNorm (see norm.h). */
#include "norm.h"

#include "err.h"

int k_layernorm_check(const k_layernorm_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "layernorm: NULL args");
    if (a->m <= 0 || a->d <= 0) return hired_errf(err, HIRED_EINVAL, "layernorm: sizes must be positive (m=%d d=%d)", a->m, a->d);
    if (!a->x || !a->y || !a->gamma) return hired_errf(err, HIRED_EINVAL, "layernorm: x, y and gamma must not be NULL");
    if (!(a->eps >= 0.0f)) return hired_errf(err, HIRED_EINVAL, "layernorm: eps must be >= 0 (got %g)", (double)a->eps);
    return HIRED_OK;
}

int k_rmsnorm_check(const k_rmsnorm_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "rmsnorm: NULL args");
    if (a->m <= 0 || a->d <= 0) return hired_errf(err, HIRED_EINVAL, "rmsnorm: sizes must be positive (m=%d d=%d)", a->m, a->d);
    if (!a->x || !a->y || !a->gamma) return hired_errf(err, HIRED_EINVAL, "rmsnorm: x, y and gamma must not be NULL");
    if (!(a->eps >= 0.0f)) return hired_errf(err, HIRED_EINVAL, "rmsnorm: eps must be >= 0 (got %g)", (double)a->eps);
    return HIRED_OK;
}
