/* half.h — IEEE binary16 and bfloat16 conversions (scalar, exact, round-to-nearest-even).
 * Plain C, usable from every backend. Not here: vectorised bulk conversion (tensor.c). */
#ifndef HIRED_HALF_H
#define HIRED_HALF_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

static inline float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: normalise */
            int e = -1;
            do {
                e++;
                man <<= 1;
            } while (!(man & 0x400u));
            bits = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t f32_to_half(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t absx = x & 0x7fffffffu;
    if (absx >= 0x7f800000u) /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));
    if (absx >= 0x477ff000u) /* rounds to >= 65520: overflow to inf */
        return (uint16_t)(sign | 0x7c00u);
    if (absx < 0x38800000u) { /* result is subnormal or zero */
        if (absx < 0x33000000u) return (uint16_t)sign;
        uint32_t e = absx >> 23;
        uint32_t m = (absx & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24 */
        uint32_t r = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((absx >> 13) - ((127 - 15) << 10));
    uint32_t rem = absx & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

/* f32_to_half on the float's bits, without branches (selects and shifts only), so that loops
 * over it vectorise and CUDA device code can share it: bit for bit the same result for every
 * input (test_k_cast compares the two). HIRED_HD marks it for both host and device under nvcc. */
#ifdef __CUDACC__
#define HIRED_HD __host__ __device__
#else
#define HIRED_HD
#endif
HIRED_HD static inline uint16_t f32_bits_to_half(uint32_t x) {
    const uint32_t sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
    /* a normal half: rebias the exponent (127 -> 15), drop 13 mantissa bits to nearest even (a
     * carry out of the mantissa steps the exponent, as it should) */
    const uint32_t normal = (a - (112u << 23) + 0xfffu + ((a >> 13) & 1u)) >> 13;
    /* a subnormal half (a < 2^-14): the 24-bit significand shifted right by 126 - e (14 ... 24
     * where it matters; clamped to 0 ... 31 so that no lane shifts out of range), to nearest even */
    const uint32_t e = a >> 23, sh0 = e > 126u ? 0u : 126u - e, sh = sh0 > 31u ? 31u : sh0;
    const uint32_t m = (a & 0x7fffffu) | 0x800000u, r = m >> sh, rem = m & ((1u << sh) - 1u), halfway = (1u << sh) >> 1;
    const uint32_t sub = r + ((rem > halfway) | ((rem == halfway) & r & 1u));
    const uint32_t v = a < 0x33000000u   ? 0u               /* under half the smallest subnormal: 0 */
                       : a < 0x38800000u ? sub
                       : a < 0x477ff000u ? normal
                       : a <= 0x7f800000u ? 0x7c00u          /* rounds past 65504, or inf: inf */
                                          : 0x7e00u;         /* nan: the quiet nan */
    return (uint16_t)(sign | v);
}

/* f32_to_bf16 on the float's bits, without branches, likewise. */
HIRED_HD static inline uint16_t f32_bits_to_bf16(uint32_t x) {
    const uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
    return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? (x >> 16) | 0x40u : rounded);
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet nan */
    uint32_t lsb = (x >> 16) & 1u;
    x += 0x7fffu + lsb;
    return (uint16_t)(x >> 16);
}

#endif
