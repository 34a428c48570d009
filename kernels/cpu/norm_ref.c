/* norm_ref.c — reference LayerNorm and RMSNorm: per row, statistics in double, two passes. */
#include <math.h>
#include <stddef.h>

#include "cpu_ops.h"

void k_layernorm_ref(const k_layernorm_args *a) {
    for (int i = 0; i < a->m; i++) {
        const float *x = (const float *)a->x + (size_t)i * a->d;
        float *y = (float *)a->y + (size_t)i * a->d;
        double mean = 0.0, var = 0.0;
        for (int j = 0; j < a->d; j++) mean += x[j];
        mean /= a->d;
        for (int j = 0; j < a->d; j++) var += (x[j] - mean) * (x[j] - mean);
        var /= a->d;
        double rstd = 1.0 / sqrt(var + a->eps);
        for (int j = 0; j < a->d; j++) {
            double v = (x[j] - mean) * rstd * a->gamma[j];
            if (a->beta) v += a->beta[j];
            y[j] = (float)v;
        }
    }
}

void k_rmsnorm_ref(const k_rmsnorm_args *a) {
    for (int i = 0; i < a->m; i++) {
        const float *x = (const float *)a->x + (size_t)i * a->d;
        float *y = (float *)a->y + (size_t)i * a->d;
        double ss = 0.0;
        for (int j = 0; j < a->d; j++) ss += (double)x[j] * x[j];
        double rstd = 1.0 / sqrt(ss / a->d + a->eps);
        for (int j = 0; j < a->d; j++) y[j] = (float)(x[j] * rstd * a->gamma[j]);
    }
}
