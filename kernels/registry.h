/* registry.h — the op table: every op's name with its check, CPU fast path, CPU reference and
 * (in CUDA builds, once written) CUDA implementation, all taking the op's own args struct as
 * `const void *`. Used by tests (every op has both CPU paths; CUDA ones in CUDA builds) and by
 * backends that dispatch by name. The table is static and read-only.
 * Not here: the ops themselves (kernels/<op>.h). */
#ifndef HIRED_K_REGISTRY_H
#define HIRED_K_REGISTRY_H

struct cuda_ctx;

typedef int (*k_op_check_fn)(const void *args, char *err);
typedef void (*k_op_fn)(const void *args);
typedef int (*k_op_cuda_fn)(const void *args, struct cuda_ctx *ctx);

typedef struct {
    const char *name;    /* "matmul", "layernorm", ... (the <op> in k_<op>_*) */
    k_op_check_fn check; /* k_<op>_check */
    k_op_fn cpu;         /* k_<op>_cpu */
    k_op_fn ref;         /* k_<op>_ref */
    k_op_cuda_fn cuda;   /* k_<op>_cuda, or NULL where none exists */
} k_op_entry;

/* Number of entries. */
int k_registry_count(void);
/* Entry i (0 ≤ i < count), or NULL. Borrowed: static storage. */
const k_op_entry *k_registry_at(int i);
/* Entry named name, or NULL. Borrowed: static storage. */
const k_op_entry *k_registry_find(const char *name);

#endif
