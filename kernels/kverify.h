/* kverify.h — comparing a kernel's output with its reference, and deterministic test data.
 * Used by the kernel tests (CPU fast path vs reference today, CUDA vs CPU later) and the
 * benchmark. The comparators never allocate; results are plain structs owned by the caller.
 *
 * Two criteria, as documented per op in kernels/<op>.h:
 *   elementwise  |got − ref| ≤ atol + rtol·|ref| for every element (NaN only matches NaN,
 *                ±inf only the same inf);
 *   NMSE         Σ(got − ref)² / Σ ref² ≤ max_nmse (GEMMs and reductions). */
#ifndef HIRED_KVERIFY_H
#define HIRED_KVERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    bool ok;
    size_t n_bad;     /* elements outside the tolerance (elementwise) */
    size_t worst;     /* index of the largest |got − ref| − (atol + rtol·|ref|) */
    double max_abs;   /* largest |got − ref| */
    double nmse;      /* Σ(got − ref)² / Σ ref² (0 when ref is all zero and got equals it) */
} kverify_result;

/* Elementwise comparison of n values. */
kverify_result kverify_close(const float *got, const float *ref, size_t n, double atol, double rtol);
/* NMSE comparison of n values; also fails on any NaN/inf mismatch. */
kverify_result kverify_nmse(const float *got, const float *ref, size_t n, double max_nmse);
/* Prints one line describing r (name, worst element) to stderr when !r.ok; returns r.ok. */
bool kverify_report(const char *name, const kverify_result *r, const float *got, const float *ref);

/* Fills x[0..n) with uniform values in [lo, hi) from a 64-bit xorshift seeded by seed
 * (the same seed always gives the same data on every platform). */
void kverify_fill(float *x, size_t n, uint64_t seed, float lo, float hi);

#endif
