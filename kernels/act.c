/* act.c — argument checking and dispatch entries for the activations (see act.h). */
#include "act.h"

#include "err.h"
#include "registry.h"

static int check_act(const k_act_args *a, const char *op, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "%s: NULL args", op);
    if (a->n <= 0) return hired_errf(err, HIRED_EINVAL, "%s: n must be positive (got %lld)", op, (long long)a->n);
    if (!a->x || !a->y) return hired_errf(err, HIRED_EINVAL, "%s: x and y must not be NULL", op);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "%s: unknown dtype %d", op, (int)a->dtype);
    return HIRED_OK;
}

int k_gelu_erf_check(const k_act_args *a, char *err) { return check_act(a, "gelu_erf", err); }
int k_quick_gelu_check(const k_act_args *a, char *err) { return check_act(a, "quick_gelu", err); }

int k_silu_mul_check(const k_silu_mul_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "silu_mul: NULL args");
    if (a->n <= 0) return hired_errf(err, HIRED_EINVAL, "silu_mul: n must be positive (got %lld)", (long long)a->n);
    if (!a->gate || !a->up || !a->y) return hired_errf(err, HIRED_EINVAL, "silu_mul: gate, up and y must not be NULL");
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "silu_mul: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_gelu_erf(k_ctx_t *ctx, const k_act_args *a) { return k_run(ctx, K_OP_GELU_ERF, a); }
int k_quick_gelu(k_ctx_t *ctx, const k_act_args *a) { return k_run(ctx, K_OP_QUICK_GELU, a); }
int k_silu_mul(k_ctx_t *ctx, const k_silu_mul_args *a) { return k_run(ctx, K_OP_SILU_MUL, a); }
