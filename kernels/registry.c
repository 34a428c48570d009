/* registry.c — the op table and the dispatcher (see registry.h). Each op gets small typed
 * adapters so the table can hold one pointer type per column; calling an op through a pointer of
 * another function type would be undefined behaviour, so the adapters are written out rather
 * than cast. The CPU column's `supports` states what the CPU backend runs: float32 activations
 * (and KV), with F32/F16/BF16 weights where an op has weights (its check admits those). The
 * CUDA column (built with the CUDA toolkit, kernels/cuda/cuda_ops.h) runs the same dtypes. */
#include "registry.h"

#include <string.h>

#include "cpu_ops.h"
#include "err.h"
#ifdef HIRED_HAVE_CUDA
#include "cuda_ops.h"
#endif

#define F32 TENSOR_DTYPE_F32

bool k_dtype_known(tensor_dtype_t dt) {
    return dt == TENSOR_DTYPE_F32 || dt == TENSOR_DTYPE_F16 || dt == TENSOR_DTYPE_BF16;
}

// ---- adapters: check, reference, CPU run, CPU supports (and workspace where scratch is used) ----


static int matmul_check(const void *a, char *e) { return k_matmul_check(a, e); }
static void matmul_ref(const void *a) { k_matmul_ref(a); }
static int matmul_cpu(k_ctx_t *c, const void *a) { return k_matmul_cpu(c, a); }
static bool matmul_cpu_sup(const void *p) {
    const k_matmul_args *a = p;
    return a->dtype == F32;
}
static size_t matmul_cpu_ws(const void *a) { return k_matmul_cpu_workspace(a); }

static int layernorm_check(const void *a, char *e) { return k_layernorm_check(a, e); }
static void layernorm_ref(const void *a) { k_layernorm_ref(a); }
static int layernorm_cpu(k_ctx_t *c, const void *a) { return k_layernorm_cpu(c, a); }
static bool layernorm_cpu_sup(const void *p) {
    const k_layernorm_args *a = p;
    return a->dtype == F32;
}

static int rmsnorm_check(const void *a, char *e) { return k_rmsnorm_check(a, e); }
static void rmsnorm_ref(const void *a) { k_rmsnorm_ref(a); }
static int rmsnorm_cpu(k_ctx_t *c, const void *a) { return k_rmsnorm_cpu(c, a); }
static bool rmsnorm_cpu_sup(const void *p) {
    const k_rmsnorm_args *a = p;
    return a->dtype == F32;
}

static int softmax_check(const void *a, char *e) { return k_softmax_check(a, e); }
static void softmax_ref(const void *a) { k_softmax_ref(a); }
static int softmax_cpu(k_ctx_t *c, const void *a) { return k_softmax_cpu(c, a); }
static bool softmax_cpu_sup(const void *p) {
    const k_softmax_args *a = p;
    return a->dtype == F32;
}

static int attention_check(const void *a, char *e) { return k_attention_check(a, e); }
static void attention_ref(const void *a) { k_attention_ref(a); }
static int attention_cpu(k_ctx_t *c, const void *a) { return k_attention_cpu(c, a); }
static bool attention_cpu_sup(const void *p) {
    const k_attention_args *a = p;
    return a->dtype == F32; /* keys and values F32, or F16/BF16 (widened per call) */
}
static size_t attention_cpu_ws(const void *a) { return k_attention_cpu_workspace(a); }

static int attn_row_check(const void *a, char *e) { return k_attn_row_check(a, e); }
static void attn_row_ref(const void *a) { k_attn_row_ref(a); }
static int attn_row_cpu(k_ctx_t *c, const void *a) { return k_attn_row_cpu(c, a); }
static bool attn_row_cpu_sup(const void *p) {
    const k_attn_row_args *a = p;
    return a->dtype == F32 && a->kv_dtype == F32;
}

static int gelu_erf_check(const void *a, char *e) { return k_gelu_erf_check(a, e); }
static void gelu_erf_ref(const void *a) { k_gelu_erf_ref(a); }
static int gelu_erf_cpu(k_ctx_t *c, const void *a) { return k_gelu_erf_cpu(c, a); }
static bool gelu_erf_cpu_sup(const void *p) {
    const k_act_args *a = p;
    return a->dtype == F32;
}

static int quick_gelu_check(const void *a, char *e) { return k_quick_gelu_check(a, e); }
static void quick_gelu_ref(const void *a) { k_quick_gelu_ref(a); }
static int quick_gelu_cpu(k_ctx_t *c, const void *a) { return k_quick_gelu_cpu(c, a); }
static bool quick_gelu_cpu_sup(const void *p) {
    const k_act_args *a = p;
    return a->dtype == F32;
}

static int silu_mul_check(const void *a, char *e) { return k_silu_mul_check(a, e); }
static void silu_mul_ref(const void *a) { k_silu_mul_ref(a); }
static int silu_mul_cpu(k_ctx_t *c, const void *a) { return k_silu_mul_cpu(c, a); }
static bool silu_mul_cpu_sup(const void *p) {
    const k_silu_mul_args *a = p;
    return a->dtype == F32;
}

static int rope_check(const void *a, char *e) { return k_rope_check(a, e); }
static void rope_ref(const void *a) { k_rope_ref(a); }
static int rope_cpu(k_ctx_t *c, const void *a) { return k_rope_cpu(c, a); }
static bool rope_cpu_sup(const void *p) {
    const k_rope_args *a = p;
    return a->dtype == F32;
}

static int add_check(const void *a, char *e) { return k_add_check(a, e); }
static void add_ref(const void *a) { k_add_ref(a); }
static int add_cpu(k_ctx_t *c, const void *a) { return k_add_cpu(c, a); }
static bool add_cpu_sup(const void *p) {
    const k_add_args *a = p;
    return a->dtype == F32;
}

static int cast_check(const void *a, char *e) { return k_cast_check(a, e); }
static void cast_ref(const void *a) { k_cast_ref(a); }
static int cast_cpu(k_ctx_t *c, const void *a) { return k_cast_cpu(c, a); }
static bool cast_cpu_sup(const void *p) {
    (void)p; /* every dtype the check lets through */
    return true;
}

static int sum_rows_check(const void *a, char *e) { return k_sum_rows_check(a, e); }
static void sum_rows_ref(const void *a) { k_sum_rows_ref(a); }
static int sum_rows_cpu(k_ctx_t *c, const void *a) { return k_sum_rows_cpu(c, a); }
static bool sum_rows_cpu_sup(const void *p) {
    const k_sum_rows_args *a = p;
    return a->dtype == F32;
}

static int embed_check(const void *a, char *e) { return k_embed_check(a, e); }
static void embed_ref(const void *a) { k_embed_ref(a); }
static int embed_cpu(k_ctx_t *c, const void *a) { return k_embed_cpu(c, a); }
static bool embed_cpu_sup(const void *p) {
    const k_embed_args *a = p;
    return a->dtype == F32;
}

static int patch_embed_check(const void *a, char *e) { return k_patch_embed_check(a, e); }
static void patch_embed_ref(const void *a) { k_patch_embed_ref(a); }
static int patch_embed_cpu(k_ctx_t *c, const void *a) { return k_patch_embed_cpu(c, a); }
static bool patch_embed_cpu_sup(const void *p) {
    const k_patch_embed_args *a = p;
    return a->dtype == F32;
}
static size_t patch_embed_cpu_ws(const void *a) { return k_patch_embed_cpu_workspace(a); }

static int topk_check(const void *a, char *e) { return k_topk_check(a, e); }
static void topk_ref(const void *a) { k_topk_ref(a); }
static int topk_cpu(k_ctx_t *c, const void *a) { return k_topk_cpu(c, a); }
static bool topk_cpu_sup(const void *p) {
    const k_topk_args *a = p;
    return a->dtype == F32;
}

static int gather_check(const void *a, char *e) { return k_gather_check(a, e); }
static void gather_ref(const void *a) { k_gather_ref(a); }
static int gather_cpu(k_ctx_t *c, const void *a) { return k_gather_cpu(c, a); }
static bool gather_cpu_sup(const void *p) {
    const k_gather_args *a = p;
    return a->dtype == F32;
}

static int mask_check(const void *a, char *e) { return k_mask_check(a, e); }
static void mask_ref(const void *a) { k_mask_ref(a); }
static int mask_cpu(k_ctx_t *c, const void *a) { return k_mask_cpu(c, a); }
static bool mask_cpu_sup(const void *p) {
    const k_mask_args *a = p;
    return a->dtype == F32;
}


// ---- the CUDA column: the same dtypes as the CPU (float32 activations and KV) ------------------

#ifdef HIRED_HAVE_CUDA
static int matmul_cuda(k_ctx_t *c, const void *a) { return k_matmul_cuda(c, a); }
static bool matmul_cuda_sup(const void *p) {
    const k_matmul_args *a = p;
    return a->dtype == F32 && a->w_dtype != TENSOR_DTYPE_Q8; /* 8-bit weights: the CPU backend only */
}
static size_t matmul_cuda_ws(const void *a) { return k_matmul_cuda_workspace(a); }
static int layernorm_cuda(k_ctx_t *c, const void *a) { return k_layernorm_cuda(c, a); }
static int rmsnorm_cuda(k_ctx_t *c, const void *a) { return k_rmsnorm_cuda(c, a); }
static int softmax_cuda(k_ctx_t *c, const void *a) { return k_softmax_cuda(c, a); }
static int attention_cuda(k_ctx_t *c, const void *a) { return k_attention_cuda(c, a); }
static int attn_row_cuda(k_ctx_t *c, const void *a) { return k_attn_row_cuda(c, a); }
static int gelu_erf_cuda(k_ctx_t *c, const void *a) { return k_gelu_erf_cuda(c, a); }
static int quick_gelu_cuda(k_ctx_t *c, const void *a) { return k_quick_gelu_cuda(c, a); }
static int silu_mul_cuda(k_ctx_t *c, const void *a) { return k_silu_mul_cuda(c, a); }
static int rope_cuda(k_ctx_t *c, const void *a) { return k_rope_cuda(c, a); }
static int add_cuda(k_ctx_t *c, const void *a) { return k_add_cuda(c, a); }
static int sum_rows_cuda(k_ctx_t *c, const void *a) { return k_sum_rows_cuda(c, a); }
static int embed_cuda(k_ctx_t *c, const void *a) { return k_embed_cuda(c, a); }
static int patch_embed_cuda(k_ctx_t *c, const void *a) { return k_patch_embed_cuda(c, a); }
static size_t patch_embed_cuda_ws(const void *a) { return k_patch_embed_cuda_workspace(a); }
static int topk_cuda(k_ctx_t *c, const void *a) { return k_topk_cuda(c, a); }
static int gather_cuda(k_ctx_t *c, const void *a) { return k_gather_cuda(c, a); }
static int mask_cuda(k_ctx_t *c, const void *a) { return k_mask_cuda(c, a); }
static int cast_cuda(k_ctx_t *c, const void *a) { return k_cast_cuda(c, a); }
#define CUDA_IMPL(op, ws) {op##_cuda, op##_cpu_sup, ws}
#define CUDA_MATMUL {matmul_cuda, matmul_cuda_sup, matmul_cuda_ws}
#else
#define CUDA_IMPL(op, ws) {NULL, NULL, NULL}
#define CUDA_MATMUL {NULL, NULL, NULL}
#endif

/* {id, name, check, ref, {{cpu run, supports, workspace}, {cuda run, supports, workspace}}}. The
 * CUDA column supports what the CPU does (the same `supports` adapters), except Q8 weights. */
static const k_op_entry ops[] = {
    {K_OP_MATMUL, "matmul", matmul_check, matmul_ref, {{matmul_cpu, matmul_cpu_sup, matmul_cpu_ws}, CUDA_MATMUL}},
    {K_OP_LAYERNORM, "layernorm", layernorm_check, layernorm_ref, {{layernorm_cpu, layernorm_cpu_sup, NULL}, CUDA_IMPL(layernorm, NULL)}},
    {K_OP_RMSNORM, "rmsnorm", rmsnorm_check, rmsnorm_ref, {{rmsnorm_cpu, rmsnorm_cpu_sup, NULL}, CUDA_IMPL(rmsnorm, NULL)}},
    {K_OP_SOFTMAX, "softmax", softmax_check, softmax_ref, {{softmax_cpu, softmax_cpu_sup, NULL}, CUDA_IMPL(softmax, NULL)}},
    {K_OP_ATTENTION, "attention", attention_check, attention_ref, {{attention_cpu, attention_cpu_sup, attention_cpu_ws}, CUDA_IMPL(attention, NULL)}},
    {K_OP_ATTN_ROW, "attn_row", attn_row_check, attn_row_ref, {{attn_row_cpu, attn_row_cpu_sup, NULL}, CUDA_IMPL(attn_row, NULL)}},
    {K_OP_GELU_ERF, "gelu_erf", gelu_erf_check, gelu_erf_ref, {{gelu_erf_cpu, gelu_erf_cpu_sup, NULL}, CUDA_IMPL(gelu_erf, NULL)}},
    {K_OP_QUICK_GELU, "quick_gelu", quick_gelu_check, quick_gelu_ref, {{quick_gelu_cpu, quick_gelu_cpu_sup, NULL}, CUDA_IMPL(quick_gelu, NULL)}},
    {K_OP_SILU_MUL, "silu_mul", silu_mul_check, silu_mul_ref, {{silu_mul_cpu, silu_mul_cpu_sup, NULL}, CUDA_IMPL(silu_mul, NULL)}},
    {K_OP_ROPE, "rope", rope_check, rope_ref, {{rope_cpu, rope_cpu_sup, NULL}, CUDA_IMPL(rope, NULL)}},
    {K_OP_ADD, "add", add_check, add_ref, {{add_cpu, add_cpu_sup, NULL}, CUDA_IMPL(add, NULL)}},
    {K_OP_SUM_ROWS, "sum_rows", sum_rows_check, sum_rows_ref, {{sum_rows_cpu, sum_rows_cpu_sup, NULL}, CUDA_IMPL(sum_rows, NULL)}},
    {K_OP_EMBED, "embed", embed_check, embed_ref, {{embed_cpu, embed_cpu_sup, NULL}, CUDA_IMPL(embed, NULL)}},
    {K_OP_PATCH_EMBED, "patch_embed", patch_embed_check, patch_embed_ref, {{patch_embed_cpu, patch_embed_cpu_sup, patch_embed_cpu_ws}, CUDA_IMPL(patch_embed, patch_embed_cuda_ws)}},
    {K_OP_TOPK, "topk", topk_check, topk_ref, {{topk_cpu, topk_cpu_sup, NULL}, CUDA_IMPL(topk, NULL)}},
    {K_OP_GATHER, "gather", gather_check, gather_ref, {{gather_cpu, gather_cpu_sup, NULL}, CUDA_IMPL(gather, NULL)}},
    {K_OP_MASK, "mask", mask_check, mask_ref, {{mask_cpu, mask_cpu_sup, NULL}, CUDA_IMPL(mask, NULL)}},
    {K_OP_CAST, "cast", cast_check, cast_ref, {{cast_cpu, cast_cpu_sup, NULL}, CUDA_IMPL(cast, NULL)}},
};

int k_registry_count(void) { return (int)ARRAY_LEN(ops); }

const k_op_entry *k_registry_at(int i) { return i >= 0 && i < (int)ARRAY_LEN(ops) ? &ops[i] : NULL; }

const k_op_entry *k_registry_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < ARRAY_LEN(ops); i++)
        if (strcmp(ops[i].name, name) == 0) return &ops[i];
    return NULL;
}

// ---- dispatch -----------------------------------------------------------------------------------

bool k_supports(k_backend_t b, k_op_t op, const void *args) {
    if ((unsigned)op >= ARRAY_LEN(ops) || (unsigned)b >= K_BACKEND_COUNT) return false;
    const k_op_impl *im = &ops[op].impl[b];
    return im->run && (!im->supports || im->supports(args));
}

size_t k_workspace(const k_ctx_t *ctx, k_op_t op, const void *args) {
    if ((unsigned)op >= ARRAY_LEN(ops)) return 0;
    const k_op_impl *im = &ops[op].impl[k_ctx_backend(ctx)];
    return im->workspace ? im->workspace(args) : 0;
}

int k_run(k_ctx_t *ctx, k_op_t op, const void *args) {
    if ((unsigned)op >= ARRAY_LEN(ops)) return k_ctx_fail(ctx, HIRED_EINVAL, "op %d: no such op", (int)op);
    const k_op_entry *e = &ops[op];
    char msg[HIRED_ERR_LEN];
    int rc = e->check(args, msg);
    if (rc) return k_ctx_fail(ctx, rc, "%s", msg);
    k_backend_t b = k_ctx_backend(ctx);
    if (!k_supports(b, op, args))
        return k_ctx_fail(ctx, HIRED_EUNSUPPORTED, "%s: not supported by the %s backend for these dtypes", e->name,
                          k_backend_name(b));
    if (b != K_BACKEND_CPU && (rc = k_ctx_bind(ctx))) return rc;
    return e->impl[b].run(ctx, args);
}
