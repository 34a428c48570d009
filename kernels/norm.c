/* norm.c — argument checking and dispatch entries for LayerNorm and RMSNorm (see norm.h). */
#include "norm.h"

#include "err.h"
#include "registry.h"

int k_layernorm_check(const k_layernorm_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "layernorm: NULL args");
    if (a->m <= 0 || a->d <= 0) return hired_errf(err, HIRED_EINVAL, "layernorm: sizes must be positive (m=%d d=%d)", a->m, a->d);
    if (!a->x || !a->y || !a->gamma) return hired_errf(err, HIRED_EINVAL, "layernorm: x, y and gamma must not be NULL");
    if (!(a->eps >= 0.0f)) return hired_errf(err, HIRED_EINVAL, "layernorm: eps must be >= 0 (got %g)", (double)a->eps);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "layernorm: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_rmsnorm_check(const k_rmsnorm_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "rmsnorm: NULL args");
    if (a->m <= 0 || a->d <= 0) return hired_errf(err, HIRED_EINVAL, "rmsnorm: sizes must be positive (m=%d d=%d)", a->m, a->d);
    if (!a->x || !a->y || !a->gamma) return hired_errf(err, HIRED_EINVAL, "rmsnorm: x, y and gamma must not be NULL");
    if (!(a->eps >= 0.0f)) return hired_errf(err, HIRED_EINVAL, "rmsnorm: eps must be >= 0 (got %g)", (double)a->eps);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "rmsnorm: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_layernorm(k_ctx_t *ctx, const k_layernorm_args *a) { return k_run(ctx, K_OP_LAYERNORM, a); }
int k_rmsnorm(k_ctx_t *ctx, const k_rmsnorm_args *a) { return k_run(ctx, K_OP_RMSNORM, a); }
