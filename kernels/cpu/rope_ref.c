/* rope_ref.c — reference rotary embedding: the formula of rope.h, element by element, with the
 * float32 roundings torch makes (inv_freq, angle, cos/sin all float32). */
#include <math.h>
#include <stddef.h>

#include "cpu_ops.h"

void k_rope_ref(const k_rope_args *a) {
    int half = a->head_dim / 2;
    size_t ld = a->ld ? (size_t)a->ld : (size_t)a->n_head * a->head_dim;
    for (int i = 0; i < a->t; i++) {
        float pos = (float)(a->pos0 + i);
        for (int h = 0; h < a->n_head; h++) {
            float *x = (float *)a->x + i * ld + (size_t)h * a->head_dim;
            for (int j = 0; j < half; j++) {
                float inv_freq = 1.0f / powf((float)a->theta, (float)(2 * j) / (float)a->head_dim);
                float ang = pos * inv_freq;
                float c = cosf(ang), s = sinf(ang);
                float x0 = x[j], x1 = x[j + half];
                x[j] = x0 * c - x1 * s;
                x[j + half] = x1 * c + x0 * s;
            }
        }
    }
}
