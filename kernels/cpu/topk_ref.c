/* topk_ref.c — reference top-k: k selection passes. Pass r picks the best element that comes
 * strictly after pick r−1 in the total order (value descending, NaN last, index ascending). */
#include <stdbool.h>

#include "cpu_ops.h"

/* True when element i precedes element j in the output order. */
static bool before(const float *x, int i, int j) {
    float a = x[i], b = x[j];
    bool na = a != a, nb = b != b;
    if (na || nb) return na && nb ? i < j : nb;
    if (a != b) return a > b;
    return i < j;
}

void k_topk_ref(const k_topk_args *a) {
    const float *x = a->x; /* [n] */
    for (int r = 0; r < a->k; r++) {
        int best = -1;
        for (int i = 0; i < a->n; i++) {
            if (r > 0 && !before(x, a->idx[r - 1], i)) continue;
            if (best < 0 || before(x, i, best)) best = i;
        }
        a->idx[r] = best;
    }
}
