/* attention.h — multi-head attention softmax(scale·q·kᵀ [+ causal mask])·v with GQA, and the
 * probabilities of one query row (k_attn_row), which a fused attention kernel never forms.
 *
 * Layout: one row per token, heads side by side in a row (head h occupies columns
 * h·head_dim .. (h+1)·head_dim−1), exactly what the q/k/v projections produce. q head h reads
 * kv head h / (n_head / n_head_kv). Causal: query i sits at absolute position q_pos0 + i and
 * sees keys 0 .. min(q_pos0 + i, t_k − 1); without causal every query sees all t_k keys.
 * q and out are of dtype, k and v of kv_dtype (F32 and F32 on the CPU).
 * Tolerance against the reference: |a−b| ≤ 1e-5 + 1e-4·|ref| for unit-scale inputs (the row
 * probabilities the same). out must not overlap q, k or v. Pointers are device memory borrowed
 * for the call.
 * Not here: RoPE (rope.h), the KV cache (model), the CPU paths (kernels/cpu/cpu_ops.h). */
#ifndef HIRED_K_ATTENTION_H
#define HIRED_K_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend.h"

typedef struct {
    int t_q, t_k;                    /* query and key counts */
    int n_head, n_head_kv, head_dim; /* GQA: q head h uses kv head h / (n_head/n_head_kv) */
    const void *q;                   /* [t_q, n_head*head_dim], row stride ldq (0 = dense) */
    const void *k, *v;               /* [t_k, n_head_kv*head_dim], row strides ldk, ldv (0 = dense) */
    int ldq, ldk, ldv, ldo;
    void *out;                       /* [t_q, n_head*head_dim], row stride ldo (0 = dense) */
    float scale;                     /* multiplies q·k */
    bool causal;                     /* query i (at absolute position q_pos0+i) sees keys 0..q_pos0+i */
    int q_pos0;
    tensor_dtype_t dtype;            /* q and out */
    tensor_dtype_t kv_dtype;         /* k and v */
    /* Paged keys and values (a KV cache in blocks out of one pool; NULL: dense rows). Key j is
     * row j % kv_block of block kv_blocks[j / kv_block], which starts kv_blocks[..] ·
     * kv_block_stride elements (of kv_dtype) after k; rows within a block are ldk apart. v
     * likewise from v with ldv. kv_blocks: device memory, ⌈t_k / kv_block⌉ entries ≥ 0. */
    const int32_t *kv_blocks;
    int kv_block;
    size_t kv_block_stride;
} k_attention_args;

/* Element offset of key (or value) row j from k (v) with row stride ld: dense or paged. */
static inline size_t k_attention_row(const k_attention_args *a, int j, size_t ld) {
    if (!a->kv_blocks) return (size_t)j * ld;
    return (size_t)a->kv_blocks[j / a->kv_block] * a->kv_block_stride + (size_t)(j % a->kv_block) * ld;
}

int k_attention_check(const k_attention_args *a, char *err);
int k_attention(k_ctx_t *ctx, const k_attention_args *a);

/* One query row's attention probabilities, per head and over every key (no mask):
 *   probs[h, j] = softmax_j(scale · q[h·head_dim ..] · k[j, (h / (n_head/n_head_kv))·head_dim ..])
 * What HiRED reads at two layers (the CLS query) and PruMerge at one (a single full-width head). */
typedef struct {
    int t_k, n_head, n_head_kv, head_dim;
    const void *q;           /* [n_head*head_dim]: the query row */
    const void *k;           /* [t_k, n_head_kv*head_dim], row stride ldk (0 = dense) */
    int ldk;
    float scale;
    void *probs;             /* [n_head, t_k], row stride ldp (0 = t_k) */
    int ldp;
    tensor_dtype_t dtype;    /* q and probs */
    tensor_dtype_t kv_dtype; /* k */
} k_attn_row_args;

int k_attn_row_check(const k_attn_row_args *a, char *err);
int k_attn_row(k_ctx_t *ctx, const k_attn_row_args *a);

// ---- plan --------------------------------------------------------------------------------------

typedef enum {
    K_ATTENTION_BLOCKED = 0, /* work item = (q head, block of block_q queries) */
    K_ATTENTION_DECODE,      /* t_q == 1: work item = item_heads kv heads with their groups of
                              * q heads (an even share per thread) */
    K_ATTENTION_STREAM,      /* online softmax per (query, head), no scratch: taken by the CPU
                              * path when its scratch allocation fails, never planned */
} k_attention_variant;

typedef struct {
    k_attention_variant variant;
    int n_threads;         /* OpenMP threads worth using */
    int block_q;           /* BLOCKED: queries per work item (1 in DECODE) */
    int item_rows;         /* score rows per work item: block_q, or the q heads of its kv heads */
    int item_heads;        /* DECODE: kv heads per work item (the last may have fewer); 1 else */
    int n_items;           /* work items */
    size_t pack_floats;    /* BLOCKED: room for one head's visible keys and values packed for
                            * the CPU's register tiles (kernels/cpu/attention_x86.h): twice the
                            * keys rounded up to 16 times head_dim; 0 when that passes
                            * K_ATTENTION_PACK_FLOATS (those calls take the GEMM path) */
    size_t score_ld;       /* a score row's room in the scratch: t_k rounded up to 16 (whole
                            * panels of 16 keys) */
    size_t scratch_floats; /* per-thread scratch, a multiple of 16: pack_floats, then
                            * item_rows score rows of score_ld, then item_rows row factors */
} k_attention_launch;

/* Per-thread budget for the score block, in floats (2 MiB: stays in L2/L3). */
#define K_ATTENTION_SCRATCH_FLOATS (512 * 1024)
/* Most floats of packed keys and values per thread (8 MiB: 8,192 keys of 128). */
#define K_ATTENTION_PACK_FLOATS (2 * 1024 * 1024)
/* Work items per thread the blocking aims for, so that threads finish together. */
#define K_ATTENTION_ITEMS_PER_THREAD 4

/* Fills *l for a checked a and at most max_threads threads (≥ 1). */
void k_attention_plan(const k_attention_args *a, int max_threads, k_attention_launch *l);

#endif
