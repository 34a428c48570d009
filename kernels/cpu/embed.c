/* embed.c (cpu) — fast token lookup (row conversion on OpenMP threads) and patch embedding
 * (im2col into scratch, then the fast matmul, which brings its own threads). */
#include <string.h>

#include "cpu_util.h"
#include "embed.h"
#include "matmul.h"
#include "mem.h"

void k_embed_cpu(const k_embed_args *a) {
    size_t esz = tensor_dtype_size(a->table_dtype);
    int nt = k_cpu_threads_for((int64_t)a->n * a->d, 1 << 16, k_cpu_max_threads());
    int rc = 16; /* rows per dynamically scheduled chunk */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int i = 0; i < a->n; i++)
        k_cpu_to_f32(a->y + (size_t)i * a->d, (const char *)a->table + (size_t)a->ids[i] * a->d * esz, a->table_dtype,
                     (size_t)a->d);
}

void k_patch_embed_cpu(const k_patch_embed_args *a) {
    int gh = a->h / a->p, gw = a->w / a->p, p = a->p;
    int kk = a->c * p * p; /* one patch flattened in the weight's (c, i, j) order */
    int n_patch = gh * gw;
    float *cols = mem_alloc_aligned((size_t)n_patch * kk * sizeof(float));
    if (!cols) {
        k_patch_embed_ref(a);
        return;
    }
    int nt = k_cpu_threads_for((int64_t)n_patch * kk, 1 << 16, k_cpu_max_threads());
    int rc = 16; /* rows per dynamically scheduled chunk */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int r = 0; r < n_patch; r++) {
        int pr = r / gw, pc = r % gw;
        float *dst = cols + (size_t)r * kk;
        for (int c = 0; c < a->c; c++)
            for (int i = 0; i < p; i++)
                memcpy(dst + ((size_t)c * p + i) * p, a->img + ((size_t)c * a->h + (size_t)pr * p + i) * a->w + (size_t)pc * p,
                       (size_t)p * sizeof(float));
    }
    k_matmul_args mm = {.m = n_patch, .n = a->d, .k = kk, .x = cols, .w = a->weight, .w_dtype = a->w_dtype, .y = a->y};
    k_matmul_cpu(&mm);
    mem_free_aligned(cols);
}
