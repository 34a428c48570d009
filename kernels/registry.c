/* registry.c — the op table (see registry.h). Each op gets small typed adapters so the table can
 * hold one pointer type; calling an op through a pointer of another function type would be
 * undefined behaviour, so the adapters are written out rather than cast. */
#include "registry.h"

#include <string.h>

#include "act.h"
#include "add.h"
#include "attention.h"
#include "embed.h"
#include "err.h"
#include "matmul.h"
#include "norm.h"
#include "rope.h"
#include "softmax.h"
#include "topk.h"

static int matmul_check(const void *a, char *e) { return k_matmul_check(a, e); }
static void matmul_cpu(const void *a) { k_matmul_cpu(a); }
static void matmul_ref(const void *a) { k_matmul_ref(a); }

static int layernorm_check(const void *a, char *e) { return k_layernorm_check(a, e); }
static void layernorm_cpu(const void *a) { k_layernorm_cpu(a); }
static void layernorm_ref(const void *a) { k_layernorm_ref(a); }

static int rmsnorm_check(const void *a, char *e) { return k_rmsnorm_check(a, e); }
static void rmsnorm_cpu(const void *a) { k_rmsnorm_cpu(a); }
static void rmsnorm_ref(const void *a) { k_rmsnorm_ref(a); }

static int softmax_check(const void *a, char *e) { return k_softmax_check(a, e); }
static void softmax_cpu(const void *a) { k_softmax_cpu(a); }
static void softmax_ref(const void *a) { k_softmax_ref(a); }

static int attention_check(const void *a, char *e) { return k_attention_check(a, e); }
static void attention_cpu(const void *a) { k_attention_cpu(a); }
static void attention_ref(const void *a) { k_attention_ref(a); }

static int gelu_erf_check(const void *a, char *e) { return k_gelu_erf_check(a, e); }
static void gelu_erf_cpu(const void *a) { k_gelu_erf_cpu(a); }
static void gelu_erf_ref(const void *a) { k_gelu_erf_ref(a); }

static int quick_gelu_check(const void *a, char *e) { return k_quick_gelu_check(a, e); }
static void quick_gelu_cpu(const void *a) { k_quick_gelu_cpu(a); }
static void quick_gelu_ref(const void *a) { k_quick_gelu_ref(a); }

static int silu_mul_check(const void *a, char *e) { return k_silu_mul_check(a, e); }
static void silu_mul_cpu(const void *a) { k_silu_mul_cpu(a); }
static void silu_mul_ref(const void *a) { k_silu_mul_ref(a); }

static int rope_check(const void *a, char *e) { return k_rope_check(a, e); }
static void rope_cpu(const void *a) { k_rope_cpu(a); }
static void rope_ref(const void *a) { k_rope_ref(a); }

static int add_check(const void *a, char *e) { return k_add_check(a, e); }
static void add_cpu(const void *a) { k_add_cpu(a); }
static void add_ref(const void *a) { k_add_ref(a); }

static int embed_check(const void *a, char *e) { return k_embed_check(a, e); }
static void embed_cpu(const void *a) { k_embed_cpu(a); }
static void embed_ref(const void *a) { k_embed_ref(a); }

static int patch_embed_check(const void *a, char *e) { return k_patch_embed_check(a, e); }
static void patch_embed_cpu(const void *a) { k_patch_embed_cpu(a); }
static void patch_embed_ref(const void *a) { k_patch_embed_ref(a); }

static int topk_check(const void *a, char *e) { return k_topk_check(a, e); }
static void topk_cpu(const void *a) { k_topk_cpu(a); }
static void topk_ref(const void *a) { k_topk_ref(a); }

/* {name, check, cpu, ref, cuda}. A CUDA op, once written, replaces the NULL in its row. */
static const k_op_entry ops[] = {
    {"matmul", matmul_check, matmul_cpu, matmul_ref, NULL},
    {"layernorm", layernorm_check, layernorm_cpu, layernorm_ref, NULL},
    {"rmsnorm", rmsnorm_check, rmsnorm_cpu, rmsnorm_ref, NULL},
    {"softmax", softmax_check, softmax_cpu, softmax_ref, NULL},
    {"attention", attention_check, attention_cpu, attention_ref, NULL},
    {"gelu_erf", gelu_erf_check, gelu_erf_cpu, gelu_erf_ref, NULL},
    {"quick_gelu", quick_gelu_check, quick_gelu_cpu, quick_gelu_ref, NULL},
    {"silu_mul", silu_mul_check, silu_mul_cpu, silu_mul_ref, NULL},
    {"rope", rope_check, rope_cpu, rope_ref, NULL},
    {"add", add_check, add_cpu, add_ref, NULL},
    {"embed", embed_check, embed_cpu, embed_ref, NULL},
    {"patch_embed", patch_embed_check, patch_embed_cpu, patch_embed_ref, NULL},
    {"topk", topk_check, topk_cpu, topk_ref, NULL},
};

int k_registry_count(void) { return (int)ARRAY_LEN(ops); }

const k_op_entry *k_registry_at(int i) { return i >= 0 && i < (int)ARRAY_LEN(ops) ? &ops[i] : NULL; }

const k_op_entry *k_registry_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < ARRAY_LEN(ops); i++)
        if (strcmp(ops[i].name, name) == 0) return &ops[i];
    return NULL;
}
