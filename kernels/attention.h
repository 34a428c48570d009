/* attention.h — multi-head attention softmax(scale·q·kᵀ [+ causal mask])·v with GQA.
 *
 * Layout: one row per token, heads side by side in a row (head h occupies columns
 * h·head_dim .. (h+1)·head_dim−1), exactly what the q/k/v projections produce. q head h reads
 * kv head h / (n_head / n_head_kv). Causal: query i sits at absolute position q_pos0 + i and
 * sees keys 0 .. min(q_pos0 + i, t_k − 1); without causal every query sees all t_k keys.
 * Tolerance against the reference: |a−b| ≤ 1e-5 + 1e-4·|ref| for unit-scale inputs (probs the
 * same). out must not overlap q, k, v or probs. Pointers are borrowed for the call.
 * Not here: RoPE (rope.h), the KV cache (decoder_worker). */
#ifndef HIRED_K_ATTENTION_H
#define HIRED_K_ATTENTION_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    int t_q, t_k;                    /* query and key counts */
    int n_head, n_head_kv, head_dim; /* GQA: q head h uses kv head h / (n_head/n_head_kv) */
    const float *q;                  /* [t_q, n_head*head_dim], row stride ldq (0 = dense) */
    const float *k, *v;              /* [t_k, n_head_kv*head_dim], row strides ldk, ldv (0 = dense) */
    int ldq, ldk, ldv, ldo;
    float *out;                      /* [t_q, n_head*head_dim], row stride ldo (0 = dense) */
    float scale;                     /* multiplies q·k */
    bool causal;                     /* query i (at absolute position q_pos0+i) sees keys 0..q_pos0+i */
    int q_pos0;
    int probs_row;                   /* when probs != NULL: which query row's probabilities to return */
    float *probs;                    /* [n_head, t_k] softmax probabilities of query row probs_row, per head; or NULL */
} k_attention_args;

int k_attention_check(const k_attention_args *a, char *err);
/* Three passes per (query, head) in double: max, sum of exponentials, weighted sum of v. */
void k_attention_ref(const k_attention_args *a);
/* Fast path: per (head, block of queries) sgemm scores into scratch, softmax rows, sgemm with v;
 * work items spread over OpenMP threads with single-threaded BLAS (the CPU backend sets OpenBLAS
 * to one thread for the whole process on first use). Decode (t_q = 1) groups the q heads of one
 * kv head into one GEMM. Never fails: without scratch memory it streams keys with an online
 * softmax. */
void k_attention_cpu(const k_attention_args *a);

// ---- plan --------------------------------------------------------------------------------------

typedef enum {
    K_ATTENTION_BLOCKED = 0, /* work item = (q head, block of block_q queries) */
    K_ATTENTION_DECODE,      /* t_q == 1: work item = kv head with its group of q heads */
    K_ATTENTION_STREAM,      /* online softmax per (query, head), no scratch: taken by
                              * k_attention_cpu when its scratch allocation fails, never planned */
} k_attention_variant;

typedef struct {
    k_attention_variant variant;
    int n_threads;         /* OpenMP threads worth using */
    int block_q;           /* BLOCKED: queries per work item (1 in DECODE) */
    int item_rows;         /* score rows per work item: block_q, or the q heads of one kv head */
    int n_items;           /* work items */
    size_t scratch_floats; /* per-thread scratch: item_rows·t_k scores + item_rows row factors */
} k_attention_launch;

/* Per-thread budget for the score block, in floats (2 MiB: stays in L2/L3). */
#define K_ATTENTION_SCRATCH_FLOATS (512 * 1024)

/* Fills *l for a checked a and at most max_threads threads (≥ 1). */
void k_attention_plan(const k_attention_args *a, int max_threads, k_attention_launch *l);

#endif
