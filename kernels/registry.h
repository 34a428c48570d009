/* registry.h — the op table and the dispatcher. Every op has a name, a check (plain C, shared
 * by every backend), a reference (plain loops in double or exact arithmetic, the yardstick) and,
 * per backend, an implementation with a `supports` query (like ggml's supports_op: which
 * argument dtypes it runs) and a `workspace` query (arena bytes it takes for given arguments).
 *
 * Model code calls the typed entry of an op (k_matmul(ctx, &args), declared in kernels/<op>.h),
 * which is k_run(ctx, K_OP_MATMUL, &args): check → supports on ctx's backend → run. Whether an
 * op or dtype is available is asked with k_supports (at load time, so a model that a backend
 * cannot run is refused before serving). The cross-backend test (test_backend_ops) walks this
 * table and compares every backend that supports a case with the reference.
 * The table is static and read-only. Not here: the ops' arguments (kernels/<op>.h). */
#ifndef HIRED_K_REGISTRY_H
#define HIRED_K_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include "backend.h"

typedef enum {
    K_OP_MATMUL = 0,
    K_OP_LAYERNORM,
    K_OP_RMSNORM,
    K_OP_SOFTMAX,
    K_OP_ATTENTION,
    K_OP_ATTN_ROW,
    K_OP_GELU_ERF,
    K_OP_QUICK_GELU,
    K_OP_SILU_MUL,
    K_OP_ROPE,
    K_OP_ADD,
    K_OP_SUM_ROWS,
    K_OP_EMBED,
    K_OP_PATCH_EMBED,
    K_OP_TOPK,
    K_OP_GATHER,
    K_OP_MASK,
    K_OP_CAST,
    K_OP_COUNT
} k_op_t;

typedef int (*k_op_check_fn)(const void *args, char *err);
typedef void (*k_op_ref_fn)(const void *args);
typedef int (*k_op_run_fn)(k_ctx_t *ctx, const void *args);
typedef bool (*k_op_supports_fn)(const void *args);
typedef size_t (*k_op_workspace_fn)(const void *args);

/* One backend's implementation of an op. */
typedef struct {
    k_op_run_fn run;             /* NULL: this backend lacks the op */
    k_op_supports_fn supports;   /* NULL: every args that pass the check */
    k_op_workspace_fn workspace; /* NULL: none; else arena bytes run takes for these args */
} k_op_impl;

typedef struct {
    k_op_t id;                        /* == its index in the table */
    const char *name;                 /* "matmul", "layernorm", ... (the <op> in k_<op>) */
    k_op_check_fn check;              /* k_<op>_check */
    k_op_ref_fn ref;                  /* k_<op>_ref */
    k_op_impl impl[K_BACKEND_COUNT];  /* [K_BACKEND_CPU]: k_<op>_cpu; [K_BACKEND_CUDA]: none yet */
} k_op_entry;

/* Number of entries (K_OP_COUNT). */
int k_registry_count(void);
/* Entry i (0 ≤ i < count), or NULL. Borrowed: static storage. */
const k_op_entry *k_registry_at(int i);
/* Entry named name, or NULL. Borrowed: static storage. */
const k_op_entry *k_registry_find(const char *name);

/* Runs op on ctx's backend: the op's check (HIRED_EINVAL), then the backend's supports
 * (HIRED_EUNSUPPORTED, naming op, backend and dtype), then the implementation (0, HIRED_ENOMEM,
 * HIRED_ECUDA). The message of a failure is in k_ctx_err(ctx). */
int k_run(k_ctx_t *ctx, k_op_t op, const void *args);
/* Whether backend b runs op on these (checked) args. */
bool k_supports(k_backend_t b, k_op_t op, const void *args);
/* Arena bytes op takes on ctx's backend for these args (0 when it takes none), so a caller can
 * reserve a job's scratch before it starts (k_ctx_reserve). For attention also an upper bound
 * for the same args with fewer keys (a decode job's every step fits its longest). */
size_t k_workspace(const k_ctx_t *ctx, k_op_t op, const void *args);

/* F32, F16 or BF16. */
bool k_dtype_known(tensor_dtype_t dt);

#endif
