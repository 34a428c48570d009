/* embed.c (cpu) — fast token lookup (row conversion on OpenMP threads) and patch embedding
 * (im2col into arena scratch, then the fast matmul, which brings its own threads). */
#include <string.h>

#include "cpu_ops.h"
#include "cpu_util.h"

int k_embed_cpu(k_ctx_t *ctx, const k_embed_args *a) {
    (void)ctx;
    float *y = a->y; /* [n, d] */
    size_t esz = tensor_dtype_size(a->table_dtype);
    int nt = k_cpu_threads_for((int64_t)a->n * a->d, 1 << 16, k_cpu_max_threads());
    int rc = 16; /* rows per dynamically scheduled chunk */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int i = 0; i < a->n; i++)
        k_cpu_to_f32(y + (size_t)i * a->d, (const char *)a->table + (size_t)a->ids[i] * a->d * esz, a->table_dtype,
                     (size_t)a->d);
    return HIRED_OK;
}

/* The GEMM of the patch embedding over im2col rows cols [patches, c·p·p]. */
static k_matmul_args patch_gemm(const k_patch_embed_args *a, const float *cols) {
    int n_patch = (a->h / a->p) * (a->w / a->p);
    return (k_matmul_args){.m = n_patch, .n = a->d, .k = a->c * a->p * a->p, .x = cols, .w = a->weight,
                           .w_dtype = a->w_dtype, .y = a->y};
}

static size_t cols_bytes(const k_patch_embed_args *a) {
    return (size_t)(a->h / a->p) * (a->w / a->p) * a->c * a->p * a->p * sizeof(float);
}

size_t k_patch_embed_cpu_workspace(const k_patch_embed_args *a) {
    k_matmul_args mm = patch_gemm(a, NULL);
    return cols_bytes(a) + k_matmul_cpu_workspace(&mm);
}

int k_patch_embed_cpu(k_ctx_t *ctx, const k_patch_embed_args *a) {
    const float *img = a->img; /* [c, h, w] */
    int gh = a->h / a->p, gw = a->w / a->p, p = a->p;
    int kk = a->c * p * p; /* one patch flattened in the weight's (c, i, j) order */
    int n_patch = gh * gw;
    size_t mark = k_ctx_mark(ctx);
    float *cols = k_ctx_alloc(ctx, cols_bytes(a)); /* [n_patch, kk] */
    if (!cols) {
        k_patch_embed_ref(a);
        return HIRED_OK;
    }
    int nt = k_cpu_threads_for((int64_t)n_patch * kk, 1 << 16, k_cpu_max_threads());
    int rc = 16; /* rows per dynamically scheduled chunk */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int r = 0; r < n_patch; r++) {
        int pr = r / gw, pc = r % gw;
        float *dst = cols + (size_t)r * kk;
        for (int c = 0; c < a->c; c++)
            for (int i = 0; i < p; i++)
                memcpy(dst + ((size_t)c * p + i) * p, img + ((size_t)c * a->h + (size_t)pr * p + i) * a->w + (size_t)pc * p,
                       (size_t)p * sizeof(float));
    }
    k_matmul_args mm = patch_gemm(a, cols);
    int ret = k_matmul_cpu(ctx, &mm);
    k_ctx_release(ctx, mark);
    return ret;
}
