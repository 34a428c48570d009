/* embed_ref.c — reference token lookup and patch embedding (the convolution written out). */
#include "cpu_ops.h"
#include "half.h"

static float value_at(const void *base, tensor_dtype_t dt, size_t i) {
    switch (dt) {
    case TENSOR_DTYPE_F16: return half_to_f32(((const uint16_t *)base)[i]);
    case TENSOR_DTYPE_BF16: return bf16_to_f32(((const uint16_t *)base)[i]);
    default: return ((const float *)base)[i];
    }
}

void k_embed_ref(const k_embed_args *a) {
    float *y = a->y; /* [n, d] */
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < a->d; j++)
            y[(size_t)i * a->d + j] = value_at(a->table, a->table_dtype, (size_t)a->ids[i] * a->d + j);
}

void k_patch_embed_ref(const k_patch_embed_args *a) {
    const float *img = a->img; /* [c, h, w] */
    float *y = a->y;           /* [patches, d] */
    int gh = a->h / a->p, gw = a->w / a->p;
    for (int pr = 0; pr < gh; pr++)
        for (int pc = 0; pc < gw; pc++)
            for (int o = 0; o < a->d; o++) {
                double s = 0.0;
                for (int c = 0; c < a->c; c++)
                    for (int i = 0; i < a->p; i++)
                        for (int j = 0; j < a->p; j++) {
                            size_t wi = (((size_t)o * a->c + c) * a->p + i) * a->p + j;
                            size_t xi = ((size_t)c * a->h + (size_t)pr * a->p + i) * a->w + (size_t)pc * a->p + j;
                            s += (double)value_at(a->weight, a->w_dtype, wi) * img[xi];
                        }
                y[((size_t)pr * gw + pc) * a->d + o] = (float)s;
            }
}
