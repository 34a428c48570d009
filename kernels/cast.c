/* cast.c — argument checking and the dispatch entry for the float32 cast (see cast.h). */
#include "cast.h"

#include "err.h"
#include "registry.h"

int k_cast_check(const k_cast_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "cast: NULL args");
    if (a->n <= 0) return hired_errf(err, HIRED_EINVAL, "cast: n must be positive (got %lld)", (long long)a->n);
    if (!a->x || !a->y) return hired_errf(err, HIRED_EINVAL, "cast: x and y must not be NULL");
    if (a->dtype != TENSOR_DTYPE_F32 && a->dtype != TENSOR_DTYPE_F16 && a->dtype != TENSOR_DTYPE_BF16)
        return hired_errf(err, HIRED_EINVAL, "cast: dtype %d is not f32, f16 or bf16", (int)a->dtype);
    return HIRED_OK;
}

int k_cast(k_ctx_t *ctx, const k_cast_args *a) { return k_run(ctx, K_OP_CAST, a); }
