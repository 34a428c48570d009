/* act_ref.c — reference activations in double with libm's erf and exp. */
#include <math.h>

#include "act.h"

void k_gelu_erf_ref(const k_act_args *a) {
    for (int64_t i = 0; i < a->n; i++) {
        double x = a->x[i];
        a->y[i] = (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    }
}

void k_quick_gelu_ref(const k_act_args *a) {
    for (int64_t i = 0; i < a->n; i++) {
        double x = a->x[i];
        a->y[i] = (float)(x / (1.0 + exp(-1.702 * x)));
    }
}

void k_silu_mul_ref(const k_silu_mul_args *a) {
    for (int64_t i = 0; i < a->n; i++) {
        double g = a->gate[i], u = a->up[i];
        a->y[i] = (float)(g / (1.0 + exp(-g)) * u);
    }
}
