/* embed.h — turning inputs into rows: token embedding lookup and the ViT patch embedding.
 *
 * Token lookup converts table rows to float32 exactly (the fast path and reference agree bit
 * for bit). Patch embedding is the torch Conv2d with kernel = stride = p and no bias; patches
 * that do not fit (h or w not a multiple of p) are dropped, as torch does. Its tolerance is the
 * GEMM's (NMSE ≤ 1e-10). Pointers are borrowed for the call.
 * Not here: class/position embeddings (add.h), the projector (matmul.h). */
#ifndef HIRED_K_EMBED_H
#define HIRED_K_EMBED_H

#include <stdint.h>

#include "tensor.h"

typedef struct {
    int n, d;
    const int32_t *ids;         /* [n], each in [0, vocab) */
    const void *table;          /* [vocab, d], dtype table_dtype */
    tensor_dtype_t table_dtype; /* F32, F16 or BF16 */
    int vocab;
    float *y;                   /* [n, d] */
} k_embed_args;

/* Also rejects ids outside [0, vocab), naming the first one. */
int k_embed_check(const k_embed_args *a, char *err);
void k_embed_ref(const k_embed_args *a);
void k_embed_cpu(const k_embed_args *a);

typedef struct {
    int c, h, w, p, d;
    const float *img;        /* [c, h, w] CHW */
    const void *weight;      /* [d, c, p, p] (torch Conv2d, no bias), dtype w_dtype */
    tensor_dtype_t w_dtype;  /* F32, F16 or BF16 */
    float *y;                /* [(h/p)*(w/p), d], patch (pr,pc) at row pr*(w/p)+pc */
} k_patch_embed_args;

/* Also rejects p > h or p > w (no patch at all). */
int k_patch_embed_check(const k_patch_embed_args *a, char *err);
void k_patch_embed_ref(const k_patch_embed_args *a);
/* Fast path: im2col into scratch, then k_matmul_cpu; without scratch, the reference loops. */
void k_patch_embed_cpu(const k_patch_embed_args *a);

#endif
