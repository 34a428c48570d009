/* topk.h — indices of the k largest of n floats (HiRED token selection, top-k sampling).
 *
 * Order: descending value; equal values (including −0 = +0) by ascending index; NaN sorts
 * below everything (NaNs among themselves by index). The fast path and reference return the
 * same indices. Pointers are borrowed for the call. */
#ifndef HIRED_K_TOPK_H
#define HIRED_K_TOPK_H

#include <stdint.h>

typedef struct {
    int n, k;        /* 0 ≤ k ≤ n */
    const float *x;  /* [n] */
    int32_t *idx;    /* [k] out, best first */
} k_topk_args;

int k_topk_check(const k_topk_args *a, char *err);
/* k selection passes over x: O(n·k). */
void k_topk_ref(const k_topk_args *a);
/* Bounded heap kept in idx itself (no allocation): O(n log k). */
void k_topk_cpu(const k_topk_args *a);

#endif
