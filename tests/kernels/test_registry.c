/* test_registry — the op table is complete and consistent: every op of kernels/<op>.h is listed
 * once, at the index of its id, with a check, a CPU fast path and a reference; lookup by name
 * works; the dispatcher runs an op through a context, refuses bad arguments (HIRED_EINVAL) and
 * dtypes the backend does not support (HIRED_EUNSUPPORTED) with a message naming the op, and
 * k_supports answers the same. The CUDA rule: in a CUDA build every op has a CUDA
 * implementation (kernels/cuda/cuda_ops.h), in a CPU-only build none points at one. */
#include <stdbool.h>
#include <string.h>

#include "add.h"
#include "err.h"
#include "ktest.h"
#include "registry.h"
#include "test.h"

static const char *const expected_ops[] = {"matmul",   "layernorm", "rmsnorm",     "softmax", "attention", "attn_row",
                                           "gelu_erf", "quick_gelu", "silu_mul",   "rope",    "add",       "sum_rows",
                                           "embed",    "patch_embed", "topk",      "gather",  "mask",      "cast"};

int main(void) {
    int n = k_registry_count();
    CHECK_EQ_INT(n, ARRAY_LEN(expected_ops));
    for (size_t i = 0; i < ARRAY_LEN(expected_ops); i++) {
        const k_op_entry *e = k_registry_find(expected_ops[i]);
        CHECK_MSG(e != NULL, "op %s missing from the registry", expected_ops[i]);
    }
    for (int i = 0; i < n; i++) {
        const k_op_entry *e = k_registry_at(i);
        CHECK(e != NULL);
        if (!e) continue;
        CHECK_MSG(e->name && e->check && e->impl[K_BACKEND_CPU].run && e->ref,
                  "op %d (%s) lacks a check, CPU or reference function", i, e->name ? e->name : "?");
        CHECK_MSG((int)e->id == i, "%s sits at index %d but has id %d", e->name, i, (int)e->id);
        CHECK_MSG(k_registry_find(e->name) == e, "%s is listed twice", e->name);
        const k_op_run_fn cuda = e->impl[K_BACKEND_CUDA].run;
#ifdef HIRED_HAVE_CUDA
        CHECK_MSG(cuda != NULL, "CUDA build: %s has no CUDA implementation", e->name);
#else
        CHECK_MSG(cuda == NULL, "CPU-only build: %s points at a CUDA function", e->name);
#endif
        /* every check rejects NULL args with a message naming the op */
        char err[HIRED_ERR_LEN] = "";
        CHECK_EQ_INT(e->check(NULL, err), HIRED_EINVAL);
        CHECK_MSG(err[0] != '\0', "%s: empty error message", e->name);
    }
    CHECK(k_registry_find("no_such_op") == NULL);
    CHECK(k_registry_find(NULL) == NULL);
    CHECK(k_registry_at(-1) == NULL && k_registry_at(n) == NULL);

    /* calling through the table reaches the op: "add" on known values, both paths */
    const k_op_entry *add = k_registry_find("add");
    float a[3] = {1, 2, 3}, b[3] = {10, 20, 30}, y[3] = {0}, yr[3] = {0};
    k_add_args args = {.n = 3, .a = a, .b = b, .y = y};
    CHECK_EQ_INT(add->check(&args, NULL), 0);
    CHECK_EQ_INT(add->impl[K_BACKEND_CPU].run(ktest_ctx(), &args), 0);
    args.y = yr;
    add->ref(&args);
    CHECK(y[0] == 11 && y[2] == 33 && memcmp(y, yr, sizeof y) == 0);

    /* the dispatcher: the typed entry runs the op on the context's backend */
    k_ctx_t *ctx = ktest_ctx();
    float z[3] = {0};
    args.y = z;
    CHECK_EQ_INT(k_add(ctx, &args), 0);
    CHECK(memcmp(z, y, sizeof z) == 0);
    CHECK_EQ_INT(k_run(ctx, K_OP_ADD, &args), 0);
    /* bad arguments: HIRED_EINVAL with the check's message in the context */
    args.n = 0;
    CHECK_EQ_INT(k_add(ctx, &args), HIRED_EINVAL);
    CHECK(strstr(k_ctx_err(ctx), "add") != NULL);
    /* a dtype the CPU backend does not run: refused, not computed */
    args.n = 3, args.dtype = TENSOR_DTYPE_F16;
    CHECK(!k_supports(K_BACKEND_CPU, K_OP_ADD, &args));
    CHECK(!k_supports(K_BACKEND_CUDA, K_OP_ADD, &args));
    z[0] = -1;
    CHECK_EQ_INT(k_add(ctx, &args), HIRED_EUNSUPPORTED);
    CHECK(strstr(k_ctx_err(ctx), "add") != NULL && strstr(k_ctx_err(ctx), "cpu") != NULL);
    CHECK(z[0] == -1);
    args.dtype = TENSOR_DTYPE_F32;
    CHECK(k_supports(K_BACKEND_CPU, K_OP_ADD, &args));
    CHECK_EQ_INT(k_run(ctx, K_OP_COUNT, &args), HIRED_EINVAL);
    /* weights of every checkpoint dtype run on the CPU */
    const tensor_dtype_t wdts[] = {TENSOR_DTYPE_F32, TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    for (size_t i = 0; i < ARRAY_LEN(wdts); i++) {
        k_matmul_args mm = {.m = 1, .n = 1, .k = 1, .x = a, .w = a, .w_dtype = wdts[i], .y = z};
        CHECK(k_supports(K_BACKEND_CPU, K_OP_MATMUL, &mm));
    }
    return test_summary();
}
