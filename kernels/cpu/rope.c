/* rope.c (cpu) — fast rotary embedding: inv_freq computed once per call, cos/sin once per row
 * (not per head), the rotation a vectorised loop over each head's halves; rows over OpenMP
 * threads. Same float32 roundings as the reference except where contraction fuses the
 * rotation's multiply-adds. */
#include <math.h>

#include "cpu_ops.h"
#include "cpu_util.h"

#define ROW_GRAIN_FLOATS (1 << 14)
/* head_dim/2 up to this uses stack tables; larger heads fall back to the reference. */
#define MAX_HALF 512

K_CLONES static void rotate_row(float *x, int n_head, int head_dim, const float *c, const float *s) {
    int half = head_dim / 2;
    for (int h = 0; h < n_head; h++) {
        float *lo = x + (size_t)h * head_dim, *hi = lo + half;
        for (int j = 0; j < half; j++) {
            float x0 = lo[j], x1 = hi[j];
            lo[j] = x0 * c[j] - x1 * s[j];
            hi[j] = x1 * c[j] + x0 * s[j];
        }
    }
}

int k_rope_cpu(k_ctx_t *ctx, const k_rope_args *a) {
    (void)ctx;
    int half = a->head_dim / 2;
    if (half > MAX_HALF) {
        k_rope_ref(a);
        return HIRED_OK;
    }
    float *x = a->x; /* [t, n_head*head_dim], stride ld */
    size_t ld = a->ld ? (size_t)a->ld : (size_t)a->n_head * a->head_dim;
    float inv_freq[MAX_HALF];
    for (int j = 0; j < half; j++) inv_freq[j] = 1.0f / powf((float)a->theta, (float)(2 * j) / (float)a->head_dim);
    int nt = k_cpu_threads_for((int64_t)a->t * a->n_head * a->head_dim, ROW_GRAIN_FLOATS, k_cpu_max_threads());
    int rc = 1; /* one row (all heads) per dynamically scheduled chunk */
#pragma omp parallel for num_threads(nt) schedule(dynamic, rc) if (nt > 1)
    for (int i = 0; i < a->t; i++) {
        float c[MAX_HALF], s[MAX_HALF];
        float pos = (float)(a->pos0 + i);
        for (int j = 0; j < half; j++) {
            float ang = pos * inv_freq[j];
            c[j] = cosf(ang);
            s[j] = sinf(ang);
        }
        rotate_row(x + i * ld, a->n_head, a->head_dim, c, s);
    }
    return HIRED_OK;
}
