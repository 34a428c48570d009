/* embed.h — turning inputs into rows: token embedding lookup and the ViT patch embedding.
 *
 * Token lookup converts table rows to float32 exactly (the fast path and reference agree bit
 * for bit). Every id must lie in [0, vocab): the caller checks its ids before they reach the
 * device (ids are device memory, which a check cannot read on every backend). Patch embedding
 * is the torch Conv2d with kernel = stride = p and no bias; patches that do not fit (h or w not
 * a multiple of p) are dropped, as torch does. Its tolerance is the GEMM's (NMSE ≤ 1e-10).
 * Pointers are device memory borrowed for the call.
 * Not here: class/position embeddings (add.h, gather.h), the projector (matmul.h). */
#ifndef HIRED_K_EMBED_H
#define HIRED_K_EMBED_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    int n, d;
    const int32_t *ids;         /* [n], each in [0, vocab) */
    const void *table;          /* [vocab, d], dtype table_dtype */
    tensor_dtype_t table_dtype; /* F32, F16 or BF16 */
    int vocab;
    void *y;                    /* [n, d] of dtype */
    tensor_dtype_t dtype;
} k_embed_args;

int k_embed_check(const k_embed_args *a, char *err);
int k_embed(k_ctx_t *ctx, const k_embed_args *a);

typedef struct {
    int c, h, w, p, d;
    const void *img;         /* [c, h, w] CHW of dtype */
    const void *weight;      /* [d, c, p, p] (torch Conv2d, no bias), dtype w_dtype */
    tensor_dtype_t w_dtype;  /* F32, F16 or BF16 */
    void *y;                 /* [(h/p)*(w/p), d] of dtype, patch (pr,pc) at row pr*(w/p)+pc */
    tensor_dtype_t dtype;    /* img and y */
} k_patch_embed_args;

/* Also rejects p > h or p > w (no patch at all). */
int k_patch_embed_check(const k_patch_embed_args *a, char *err);
int k_patch_embed(k_ctx_t *ctx, const k_patch_embed_args *a);

#endif
