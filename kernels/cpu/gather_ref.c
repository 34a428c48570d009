/* gather_ref.c — reference row gather and index mask, element by element. */
#include <stddef.h>

#include "cpu_ops.h"

void k_gather_ref(const k_gather_args *a) {
    const float *x = a->x;
    float *y = a->y;
    size_t ldx = a->ldx ? (size_t)a->ldx : (size_t)a->d, ldy = a->ldy ? (size_t)a->ldy : (size_t)a->d;
    for (int i = 0; i < a->n; i++) {
        size_t r = a->idx ? (size_t)a->idx[i] : (size_t)i;
        for (int j = 0; j < a->d; j++) y[i * ldy + j] = x[r * ldx + j];
    }
}

void k_mask_ref(const k_mask_args *a) {
    float *y = a->y;
    for (int i = 0; i < a->n; i++) y[a->idx[i]] = a->value;
}
