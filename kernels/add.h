/* add.h — elementwise sum y = a + b (residual connections, position embeddings).
 * y may alias a or b. Exact: the fast path and the reference agree bit for bit.
 * Pointers are borrowed for the call. */
#ifndef HIRED_K_ADD_H
#define HIRED_K_ADD_H

#include <stdint.h>

typedef struct {
    int64_t n;
    const float *a, *b; /* [n] */
    float *y;           /* [n]; may alias a or b */
} k_add_args;

int k_add_check(const k_add_args *a, char *err);
void k_add_ref(const k_add_args *a);
void k_add_cpu(const k_add_args *a);

#endif
