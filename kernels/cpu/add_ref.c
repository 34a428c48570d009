/* add_ref.c — reference elementwise sum. */
#include "add.h"

void k_add_ref(const k_add_args *a) {
    for (int64_t i = 0; i < a->n; i++) a->y[i] = a->a[i] + a->b[i];
}
