/* topk.c (cpu) — fast top-k: a bounded heap of candidate indices kept in the output array
 * (root = the worst kept candidate), then an in-place heapsort into best-first order.
 * O(n log k), no allocation. Same total order as the reference (topk.h). */
#include <stdbool.h>

#include "cpu_ops.h"

/* True when element i precedes element j in the output order (value desc, NaN last, index asc). */
static bool before(const float *x, int32_t i, int32_t j) {
    float a = x[i], b = x[j];
    bool na = a != a, nb = b != b;
    if (na || nb) return na && nb ? i < j : nb;
    if (a != b) return a > b;
    return i < j;
}

/* Restore the heap below node r of h[0..len): every parent comes after its children
 * in output order, so h[0] is the worst kept candidate. */
static void sift_down(const float *x, int32_t *h, int len, int r) {
    for (;;) {
        int c = 2 * r + 1;
        if (c >= len) return;
        if (c + 1 < len && before(x, h[c], h[c + 1])) c++; /* the later (worse) child */
        if (!before(x, h[r], h[c])) return;
        int32_t t = h[r];
        h[r] = h[c];
        h[c] = t;
        r = c;
    }
}

int k_topk_cpu(k_ctx_t *ctx, const k_topk_args *a) {
    (void)ctx;
    const float *x = a->x; /* [n] */
    int k = a->k;
    if (k == 0) return HIRED_OK;
    int32_t *h = a->idx;
    for (int i = 0; i < k; i++) h[i] = i;
    for (int r = k / 2 - 1; r >= 0; r--) sift_down(x, h, k, r);
    for (int i = k; i < a->n; i++) {
        if (before(x, i, h[0])) {
            h[0] = i;
            sift_down(x, h, k, 0);
        }
    }
    /* heapsort: move the worst to the end repeatedly, leaving best-first order */
    for (int len = k; len > 1; len--) {
        int32_t t = h[0];
        h[0] = h[len - 1];
        h[len - 1] = t;
        sift_down(x, h, len - 1, 0);
    }
    return HIRED_OK;
}
