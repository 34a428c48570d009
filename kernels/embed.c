/* embed.c — argument checking and dispatch entries for token and patch embedding (see embed.h). */
#include "embed.h"

#include "err.h"
#include "registry.h"

static bool dtype_ok(tensor_dtype_t dt) { return k_dtype_known(dt); }

int k_embed_check(const k_embed_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "embed: NULL args");
    if (a->n <= 0 || a->d <= 0 || a->vocab <= 0)
        return hired_errf(err, HIRED_EINVAL, "embed: sizes must be positive (n=%d d=%d vocab=%d)", a->n, a->d, a->vocab);
    if (!a->ids || !a->table || !a->y) return hired_errf(err, HIRED_EINVAL, "embed: ids, table and y must not be NULL");
    if (!dtype_ok(a->table_dtype)) return hired_errf(err, HIRED_EINVAL, "embed: unknown table dtype %d", (int)a->table_dtype);
    if (!dtype_ok(a->dtype)) return hired_errf(err, HIRED_EINVAL, "embed: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_patch_embed_check(const k_patch_embed_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "patch_embed: NULL args");
    if (a->c <= 0 || a->h <= 0 || a->w <= 0 || a->p <= 0 || a->d <= 0)
        return hired_errf(err, HIRED_EINVAL, "patch_embed: sizes must be positive (c=%d h=%d w=%d p=%d d=%d)", a->c, a->h, a->w,
                          a->p, a->d);
    if (a->p > a->h || a->p > a->w)
        return hired_errf(err, HIRED_EINVAL, "patch_embed: patch %d larger than the %dx%d image", a->p, a->h, a->w);
    if ((long long)a->c * a->p * a->p > 0x7fffffffLL)
        return hired_errf(err, HIRED_EINVAL, "patch_embed: c*p*p overflows int");
    if (!a->img || !a->weight || !a->y) return hired_errf(err, HIRED_EINVAL, "patch_embed: img, weight and y must not be NULL");
    if (!dtype_ok(a->w_dtype)) return hired_errf(err, HIRED_EINVAL, "patch_embed: unknown weight dtype %d", (int)a->w_dtype);
    if (!dtype_ok(a->dtype)) return hired_errf(err, HIRED_EINVAL, "patch_embed: unknown dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_embed(k_ctx_t *ctx, const k_embed_args *a) { return k_run(ctx, K_OP_EMBED, a); }
int k_patch_embed(k_ctx_t *ctx, const k_patch_embed_args *a) { return k_run(ctx, K_OP_PATCH_EMBED, a); }
