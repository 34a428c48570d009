/* act_ref.c — reference activations in double with libm's erf and exp. */
#include <math.h>

#include "cpu_ops.h"

void k_gelu_erf_ref(const k_act_args *a) {
    const float *in = a->x;
    float *out = a->y;
    for (int64_t i = 0; i < a->n; i++) {
        double x = in[i];
        out[i] = (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0))));
    }
}

void k_quick_gelu_ref(const k_act_args *a) {
    const float *in = a->x;
    float *out = a->y;
    for (int64_t i = 0; i < a->n; i++) {
        double x = in[i];
        out[i] = (float)(x / (1.0 + exp(-1.702 * x)));
    }
}

void k_silu_mul_ref(const k_silu_mul_args *a) {
    const float *gate = a->gate, *up = a->up;
    float *out = a->y;
    for (int64_t i = 0; i < a->n; i++) {
        double g = gate[i], u = up[i];
        out[i] = (float)(g / (1.0 + exp(-g)) * u);
    }
}
