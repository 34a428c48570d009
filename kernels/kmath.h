/* kmath.h — scalar math shared by every backend (K_HD = host and device in CUDA builds).
 *
 * These functions are branch-free selects over plain float arithmetic so that a loop calling
 * them vectorises (compile such loops with -fno-trapping-math so the selects if-convert).
 * Accuracy (checked in test_k_act): k_expf within 3 ulp of exp over its whole range, with
 * exp(x) = 0 for x < -87.34 (true value < 1.2e-38), +inf for x > 88.72 and NaN in, NaN out; k_erfcf relative error
 * < 5e-7 for −4 ≤ z ≤ 9. Not here: the loops themselves (kernels/cpu/), the reference paths, which
 * use libm in double precision. k_erfcf underflows to 0 for z > 9.3 (true value < 1e-38). */
#ifndef HIRED_KMATH_H
#define HIRED_KMATH_H

#include <math.h>
#include <stdint.h>

#ifdef __CUDACC__
#define K_HD __host__ __device__
#else
#define K_HD
#endif

typedef union {
    float f;
    int32_t i;
    uint32_t u;
} k_fbits;

/* IEEE half → float without branches (so loops over it vectorise): shift exponent+mantissa
 * into place and rescale by 2^112, which also normalises subnormals exactly; inf/NaN patched
 * in by a select. Same values as half.h's half_to_f32. */
static inline K_HD float k_half_to_f32(uint16_t h) {
    uint32_t em = h & 0x7fffu;
    k_fbits v;
    v.u = em << 13;
    v.f = v.f * 0x1p112f;
    v.u = em >= 0x7c00u ? (0x7f800000u | ((em & 0x3ffu) << 13)) : v.u;
    v.u |= (uint32_t)(h & 0x8000u) << 16;
    return v.f;
}

/* bfloat16 → float: the upper half of the float's bits. */
static inline K_HD float k_bf16_to_f32(uint16_t h) {
    k_fbits v;
    v.u = (uint32_t)h << 16;
    return v.f;
}

/* e^x. Cody-Waite reduction x = n·ln2 + r (|r| ≤ ln2/2), degree-7 Taylor polynomial for e^r,
 * then scaling by 2^n built in the exponent bits. */
static inline K_HD float k_expf(float x) {
    const float hi = 88.72283935546875f, lo = -87.33654022216797f;
    float xc = x > hi ? hi : x;
    xc = xc < lo ? lo : xc;
    xc = x != x ? 0.0f : xc;
    /* round-to-nearest of x·log2(e) by the 1.5·2^23 trick (no libm call, vectorises) */
    float fn = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = xc - fn * 0.693359375f;   /* ln2 high part, exact product */
    r = r - fn * -2.12194440e-4f;       /* ln2 low part */
    float p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    /* 2^n as two factors 2^n1·2^n2 (n in [-126, 128]) so each stays a normal float */
    int32_t n = (int32_t)fn;
    int32_t n1 = n >> 1, n2 = n - n1;
    k_fbits s1, s2;
    s1.i = (n1 + 127) << 23;
    s2.i = (n2 + 127) << 23;
    float y = p * s1.f * s2.f;
    y = x < lo ? 0.0f : y;
    y = x > hi ? (float)INFINITY : y;
    y = x != x ? x : y;
    return y;
}

/* erfc(z) = 1 − erf(z) in float, relative error ≈ 1e-7 for z ≥ 0 (Chebyshev-fitted
 * exponent, Press et al. "Numerical Recipes" §6.2 form); for z < 0, 2 − erfc(−z). */
static inline K_HD float k_erfcf(float z) {
    float az = z < 0.0f ? -z : z;
    float t = 1.0f / (1.0f + 0.5f * az);
    float p = 0.17087277f;
    p = p * t - 0.82215223f;
    p = p * t + 1.48851587f;
    p = p * t - 1.13520398f;
    p = p * t + 0.27886807f;
    p = p * t - 0.18628806f;
    p = p * t + 0.09678418f;
    p = p * t + 0.37409196f;
    p = p * t + 1.00002368f;
    p = p * t - 1.26551223f;
    /* z² rounds by up to z²·2^-24 in float, which exp turns into a relative error of that
     * size; carry the rounding error lo = z² − fl(z²) (Dekker split) and apply e^−lo ≈ 1 − lo. */
    float zz = az * az;
    k_fbits hb;
    hb.f = az;
    hb.u &= 0xfffff000u; /* az = zh + zl with zh of 12 significant bits: zh² is exact */
    float zh = hb.f, zl = az - zh;
    float lo = ((zh * zh - zz) + 2.0f * zh * zl) + zl * zl;
    /* likewise the rounding error of the exponent p − fl(z²) (Knuth's two-sum) */
    float arg = p - zz;
    float bv = arg - p;
    float arg_err = (p - (arg - bv)) + (-zz - bv);
    float e = t * k_expf(arg) * (1.0f + arg_err - lo);
    return z < 0.0f ? 2.0f - e : e;
}

/* GELU with the exact erf: 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2). */
static inline K_HD float k_gelu_erff(float x) { return 0.5f * x * k_erfcf(x * -0.70710678118654752f); }

/* 1 / (1 + e^−x); exactly 0 far left, 1 far right. */
static inline K_HD float k_sigmoidf(float x) { return 1.0f / (1.0f + k_expf(-x)); }

#endif
