/* test_registry — the op table is complete and consistent: every op of kernels/<op>.h is listed
 * once, with a check, a CPU fast path and a CPU reference; lookup by name works; calling
 * through the table reaches the right op. The CUDA rule — in a CUDA build every op has a CUDA
 * implementation — is expressed against an explicit list of ops whose CUDA kernel is still to
 * be written: an op on that list must not have one (so the list cannot go stale) and, in CUDA
 * builds, an op not on it must have one. Today no CUDA op exists, so the list holds them all. */
#include <stdbool.h>
#include <string.h>

#include "add.h"
#include "err.h"
#include "registry.h"
#include "test.h"

static const char *const expected_ops[] = {"matmul",   "layernorm",  "rmsnorm",  "softmax", "attention",
                                           "gelu_erf", "quick_gelu", "silu_mul", "rope",    "add",
                                           "embed",    "patch_embed", "topk"};

/* Ops without a CUDA implementation yet. Remove an op from here in the commit adding its kernel. */
static const char *const cuda_pending[] = {"matmul",   "layernorm",  "rmsnorm",  "softmax", "attention",
                                           "gelu_erf", "quick_gelu", "silu_mul", "rope",    "add",
                                           "embed",    "patch_embed", "topk"};

static bool in_list(const char *name, const char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(list[i], name) == 0) return true;
    return false;
}

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
        CHECK_MSG(e->name && e->check && e->cpu && e->ref, "op %d (%s) lacks a check, CPU or reference function", i,
                  e->name ? e->name : "?");
        CHECK_MSG(k_registry_find(e->name) == e, "%s is listed twice", e->name);
        bool pending = in_list(e->name, cuda_pending, ARRAY_LEN(cuda_pending));
        if (pending) CHECK_MSG(e->cuda == NULL, "%s has a CUDA kernel: remove it from cuda_pending", e->name);
#ifdef HIRED_HAVE_CUDA
        if (!pending) CHECK_MSG(e->cuda != NULL, "CUDA build: %s has no CUDA implementation", e->name);
#else
        CHECK_MSG(e->cuda == NULL, "CPU-only build: %s points at a CUDA function", e->name);
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
    add->cpu(&args);
    args.y = yr;
    add->ref(&args);
    CHECK(y[0] == 11 && y[2] == 33 && memcmp(y, yr, sizeof y) == 0);
    return test_summary();
}
