/* softmax_ref.c — reference row softmax in double: max, sum of exponentials, divide. */
#include <math.h>
#include <stddef.h>

#include "cpu_ops.h"

void k_softmax_ref(const k_softmax_args *a) {
    for (int i = 0; i < a->m; i++) {
        float *x = (float *)a->x + (size_t)i * a->n;
        double mx = -INFINITY;
        for (int j = 0; j < a->n; j++)
            if (x[j] > mx) mx = x[j];
        double s = 0.0;
        for (int j = 0; j < a->n; j++) s += exp(x[j] - mx);
        for (int j = 0; j < a->n; j++) x[j] = (float)(exp(x[j] - mx) / s);
    }
}
