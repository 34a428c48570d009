/* matmul_q8.c — k_matmul with Q8 weights on the CPU (the arithmetic of q8.h): each x row is
 * quantised per 32-block into arena scratch (a group of up to block_m rows at a time), then every
 * (x row, weight row) pair is one dot product of integer block sums combined in float32, with
 * the threads taking slices of the weight rows. Three kernels, chosen by CPUID at run time:
 *
 *   VNNI     AVX-512F + AVX512_VNNI: two blocks (64 bytes) per vpdpbusd. vpdpbusd multiplies
 *            unsigned by signed bytes, so x enters as qx + 128 (uint8) and the accumulator starts
 *            at −128·Σw per lane (itself one vpdpbusd of the constant 128 with w), which leaves
 *            Σ qx·qw exactly. The lanes' integer sums become float32 and are scaled by dx·dw per
 *            lane (the scales repeated 8 times per block in the scratch) into 16 partial sums,
 *            added in a fixed order at the end.
 *   AVX2     AVX2 + F16C (vpmaddubsw): |qx| times qw with qx's sign, pairs summed to int16 (≤ 2·127²,
 *            no saturation), then to int32 and float32, one block per step; a decode's one x
 *            row meets one weight row at a time, a group of x rows four weight rows at a time.
 *   portable plain C, one integer sum per block.
 *
 * Row invariance: a (x row, weight row) pair runs the same instructions in the same order
 * whatever m, the group, the other rows sharing a weight load (up to four) or the thread count,
 * so every row of y has the bits it would have alone. The kernels differ from each other (and
 * from the double reference) only in the float32 rounding of the block terms.
 * Not here: the quantiser and layout (q8.h), the plan (kernels/matmul.c). */
#include <stdint.h>
#include <string.h>

#include "cpu_ops.h"
#include "cpu_util.h"
#include "gemm.h"
#include "half.h"
#include "simd_x86.h"
#include "q8.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define Q8_X86 1
#endif

/* x rows quantised, per row (k_q8_act_row_bytes): q [kp] int8, u [kp] = q + 128 as uint8,
 * d [nb] scales, dv [nb·8] each scale repeated for the 8 int32 lanes of its block. */
typedef struct {
    const int8_t *q;
    const uint8_t *u;
    const float *d, *dv;
} q8_xrow;

static q8_xrow xrow_at(uint8_t *base, int64_t k, int r) {
    const size_t kp = (size_t)k_q8_row_stride(k), nb = kp / K_Q8_BLOCK;
    uint8_t *p = base + (size_t)r * k_q8_act_row_bytes(k);
    q8_xrow x = {(const int8_t *)p, p + kp, (const float *)(p + 2 * kp), (const float *)(p + 2 * kp) + nb};
    return x;
}

static void quantize_xrow(const float *src, int64_t k, uint8_t *base, int r) {
    const size_t kp = (size_t)k_q8_row_stride(k), nb = kp / K_Q8_BLOCK;
    uint8_t *p = base + (size_t)r * k_q8_act_row_bytes(k);
    int8_t *q = (int8_t *)p;
    uint8_t *u = p + kp;
    float *d = (float *)(p + 2 * kp), *dv = d + nb;
    k_q8_quantize_row(src, k, q, d);
    for (size_t i = 0; i < kp; i++) u[i] = (uint8_t)(q[i] + 128);
    for (size_t b = 0; b < nb; b++)
        for (int l = 0; l < 8; l++) dv[b * 8 + l] = d[b];
}

// ---- kernels: nr ≤ 4 x rows against one weight row -------------------------------------------

#define Q8_NR 4

/* out[r] = Σ_b dx_b·dw_b·Σ qx·qw, plain C. */
static void dot_portable(const int8_t *wq, const uint16_t *wd, int nb, const q8_xrow *x, int nr, float *out) {
    for (int r = 0; r < nr; r++) {
        float acc = 0.0f;
        for (int b = 0; b < nb; b++) {
            const int8_t *qw = wq + (size_t)b * K_Q8_BLOCK, *qx = x[r].q + (size_t)b * K_Q8_BLOCK;
            int32_t s = 0;
            for (int p = 0; p < K_Q8_BLOCK; p++) s += (int32_t)qw[p] * (int32_t)qx[p];
            const float sc = x[r].d[b] * half_to_f32(wd[b]);
            acc += sc * (float)s;
        }
        out[r] = acc;
    }
}

#ifdef Q8_X86
#define Q8_AVX2 __attribute__((target("avx2,fma,f16c")))
#define Q8_VNNI __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

Q8_AVX2 static inline float hsum256(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* dx·dw of blocks [b0, b0 + bn) of x row x and the weight row whose scales are wd, into sc:
 * eight at a time one vector convert and multiply (the float32 products of the scalar ones). */
Q8_AVX2 static inline void scale_products(const q8_xrow *x, const uint16_t *wd, int b0, int bn, float *sc) {
    if (bn == 8)
        _mm256_storeu_ps(sc, _mm256_mul_ps(_mm256_loadu_ps(x->d + b0),
                                           _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(wd + b0)))));
    else
        for (int i = 0; i < bn; i++) sc[i] = x->d[b0 + i] * _cvtsh_ss(wd[b0 + i]);
}

/* One weight row against nr x rows, one FMA chain per pair, block by block. For the decode
 * (one x row) this one-row loop is the fastest shape measured: side by side in one process at a
 * decode step's shapes (7B widths, Zen 4, AVX2 code), 14% ahead of four weight rows at a time
 * with two threads and 26% with one; the scale products taken eight at a time
 * (scale_products) leave per block the load, sign, maddubs, madd, convert and FMA. */
Q8_AVX2 static void dot_avx2(const int8_t *wq, const uint16_t *wd, int nb, const q8_xrow *x, int nr, float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < nr; r++) {
        __m256 acc = _mm256_setzero_ps();
        for (int b0 = 0; b0 < nb; b0 += 8) {
            const int bn = nb - b0 < 8 ? nb - b0 : 8;
            float sc[8];
            scale_products(&x[r], wd, b0, bn, sc);
            for (int i = 0; i < bn; i++) {
                const size_t b = (size_t)(b0 + i);
                const __m256i w = _mm256_loadu_si256((const __m256i *)(wq + b * K_Q8_BLOCK));
                const __m256i q = _mm256_loadu_si256((const __m256i *)(x[r].q + b * K_Q8_BLOCK));
                const __m256i p16 = _mm256_maddubs_epi16(_mm256_sign_epi8(q, q), _mm256_sign_epi8(w, q));
                const __m256 s = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                acc = _mm256_fmadd_ps(s, _mm256_broadcast_ss(&sc[i]), acc);
            }
        }
        out[r] = hsum256(acc);
    }
}

/* Four weight rows at once (rows kp bytes and nb scales apart) for groups of several x rows
 * (prefill): each x block is loaded and its sign taken once for four weight rows. Each (x row,
 * weight row) pair runs the same instructions in the same order as dot_avx2, so the same bits.
 * out[r·4 + jj]. */
Q8_AVX2 static void dot_avx2_4(const int8_t *wq, const uint16_t *wd, int nb, size_t kp, const q8_xrow *x, int nr,
                               float *out) {
    const __m256i ones = _mm256_set1_epi16(1);
    for (int r = 0; r < nr; r++) {
        __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
        for (int b0 = 0; b0 < nb; b0 += 8) {
            const int bn = nb - b0 < 8 ? nb - b0 : 8;
            float sc[4][8];
            for (int jj = 0; jj < 4; jj++) scale_products(&x[r], wd + (size_t)jj * nb, b0, bn, sc[jj]);
            for (int i = 0; i < bn; i++) {
                const size_t b = (size_t)(b0 + i);
                const __m256i q = _mm256_loadu_si256((const __m256i *)(x[r].q + b * K_Q8_BLOCK));
                const __m256i qa = _mm256_sign_epi8(q, q);
#pragma GCC unroll 4
                for (int jj = 0; jj < 4; jj++) {
                    const __m256i w = _mm256_loadu_si256((const __m256i *)(wq + jj * kp + b * K_Q8_BLOCK));
                    const __m256i p16 = _mm256_maddubs_epi16(qa, _mm256_sign_epi8(w, q));
                    const __m256 sv = _mm256_cvtepi32_ps(_mm256_madd_epi16(p16, ones));
                    acc[jj] = _mm256_fmadd_ps(sv, _mm256_broadcast_ss(&sc[jj][i]), acc[jj]);
                }
            }
        }
        for (int jj = 0; jj < 4; jj++) out[r * 4 + jj] = hsum256(acc[jj]);
    }
}

/* Two blocks per step; nb is even (the layout pads rows to 64 values). */
Q8_VNNI static inline __attribute__((always_inline)) void dot_vnni_n(const int8_t *wq, const uint16_t *wd, int nb,
                                                                     const q8_xrow *x, int nr, float *out) {
    const __m512i c128 = _mm512_set1_epi8((char)0x80);
    const __m512i pair = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512 acc[Q8_NR];
    for (int r = 0; r < Q8_NR; r++) acc[r] = _mm512_setzero_ps();
    for (int t = 0; t < nb / 2; t++) {
        const __m512i w = _mm512_loadu_si512((const void *)(wq + (size_t)t * 64));
        const __m512i neg = _mm512_sub_epi32(_mm512_setzero_si512(),
                                             _mm512_dpbusd_epi32(_mm512_setzero_si512(), c128, w)); /* −128·Σw */
        uint32_t dw2; /* the two blocks' half scales */
        memcpy(&dw2, wd + 2 * t, sizeof dw2);
        const __m512 dw = _mm512_permutexvar_ps(pair, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi32_si128((int)dw2))));
        for (int r = 0; r < nr; r++) {
            const __m512i s = _mm512_dpbusd_epi32(neg, _mm512_loadu_si512((const void *)(x[r].u + (size_t)t * 64)), w);
            const __m512 sc = _mm512_mul_ps(_mm512_loadu_ps(x[r].dv + (size_t)t * 16), dw);
            acc[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(s), sc, acc[r]);
        }
    }
    for (int r = 0; r < nr; r++) out[r] = _mm512_reduce_add_ps(acc[r]);
}

/* One instance per row count, so each keeps its accumulators in registers. */
Q8_VNNI static void dot_vnni(const int8_t *wq, const uint16_t *wd, int nb, const q8_xrow *x, int nr, float *out) {
    switch (nr) {
    case 1: dot_vnni_n(wq, wd, nb, x, 1, out); break;
    case 2: dot_vnni_n(wq, wd, nb, x, 2, out); break;
    case 3: dot_vnni_n(wq, wd, nb, x, 3, out); break;
    default: dot_vnni_n(wq, wd, nb, x, 4, out); break;
    }
}

static bool have_avx2(void) { return k_cpu_have_f16c(); /* AVX2, FMA and F16C (the half scales) */ }

static bool have_vnni(void) {
    __builtin_cpu_init();
    return have_avx2() && k_cpu_avx512_usable() && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#else
static bool have_avx2(void) { return false; }
static bool have_vnni(void) { return false; }
#endif

k_q8_isa k_matmul_q8_best_isa(void) {
    return have_vnni() ? K_Q8_ISA_VNNI : have_avx2() ? K_Q8_ISA_AVX2 : K_Q8_ISA_PORTABLE;
}

bool k_matmul_q8_isa_available(k_q8_isa isa) {
    switch (isa) {
    case K_Q8_ISA_PORTABLE: return true;
    case K_Q8_ISA_AVX2: return have_avx2();
    case K_Q8_ISA_VNNI: return have_vnni();
    case K_Q8_ISA_COUNT: break;
    }
    return false;
}

const char *k_matmul_q8_isa_name(k_q8_isa isa) {
    switch (isa) {
    case K_Q8_ISA_PORTABLE: return "portable C";
    case K_Q8_ISA_AVX2: return "AVX2 maddubs";
    case K_Q8_ISA_VNNI: return "AVX-512 VNNI";
    case K_Q8_ISA_COUNT: break;
    }
    return "?";
}

typedef void (*q8_dot_fn)(const int8_t *wq, const uint16_t *wd, int nb, const q8_xrow *x, int nr, float *out);

static q8_dot_fn dot_for(k_q8_isa isa) {
#ifdef Q8_X86
    if (isa == K_Q8_ISA_VNNI) return dot_vnni;
    if (isa == K_Q8_ISA_AVX2) return dot_avx2;
#else
    (void)isa;
#endif
    return dot_portable;
}

// ---- the op ------------------------------------------------------------------------------------

/* Weight rows per block: a block stays in L2 while every x row of the group meets it. */
#define Q8_JB 16

/* y[i, j] from its dot product s: bias, then set or accumulate. */
static inline void put_y(const k_matmul_args *a, size_t ldy, int i, int j, float s) {
    if (a->bias) s += a->bias[j];
    float *yp = (float *)a->y + (size_t)i * ldy + j;
    *yp = a->accumulate ? *yp + s : s;
}

/* y rows [g0, g0+gn) × weight rows [j0, j1) from the quantised group xs. */
static void group_slice(const k_matmul_args *a, q8_dot_fn dot, uint8_t *xs, int g0, int gn, int j0, int j1,
                        size_t ldy) {
    const int64_t kp = k_q8_row_stride(a->k), nb = kp / K_Q8_BLOCK;
    const int8_t *wq = k_q8_quants(a->w);
    const uint16_t *wd = k_q8_scales(a->w, a->n, a->k);
    for (int jb = j0; jb < j1; jb += Q8_JB) {
        const int je = jb + Q8_JB < j1 ? jb + Q8_JB : j1;
        for (int r0 = 0; r0 < gn; r0 += Q8_NR) {
            const int nr = gn - r0 < Q8_NR ? gn - r0 : Q8_NR;
            q8_xrow x[Q8_NR];
            for (int r = 0; r < nr; r++) x[r] = xrow_at(xs, a->k, r0 + r);
            int j = jb;
#ifdef Q8_X86
            if (dot == dot_avx2 && nr > 1) /* one x row: dot_avx2's one weight row at a time */
                for (; j + 4 <= je; j += 4) {
                    float out4[Q8_NR * 4];
                    dot_avx2_4(wq + (size_t)j * kp, wd + (size_t)j * nb, (int)nb, (size_t)kp, x, nr, out4);
                    for (int r = 0; r < nr; r++)
                        for (int jj = 0; jj < 4; jj++) put_y(a, ldy, g0 + r0 + r, j + jj, out4[r * 4 + jj]);
                }
#endif
            for (; j < je; j++) {
                float out[Q8_NR];
                dot(wq + (size_t)j * kp, wd + (size_t)j * nb, (int)nb, x, nr, out);
                for (int r = 0; r < nr; r++) put_y(a, ldy, g0 + r0 + r, j, out[r]);
            }
        }
    }
}

int k_matmul_q8_cpu(k_ctx_t *ctx, const k_matmul_args *a, const k_matmul_launch *l, k_q8_isa isa) {
    const size_t ldx = a->ldx ? (size_t)a->ldx : (size_t)a->k, ldy = a->ldy ? (size_t)a->ldy : (size_t)a->n;
    const int gm = l->block_m > 0 ? l->block_m : 1, nt = l->n_threads > 0 ? l->n_threads : 1;
    const size_t mark = k_ctx_mark(ctx);
    uint8_t *xs = k_ctx_alloc(ctx, (size_t)gm * k_q8_act_row_bytes(a->k));
    if (!xs)
        return k_ctx_fail(ctx, HIRED_ENOMEM, "matmul: no scratch for %d quantised x rows of %d", gm, a->k);
    const q8_dot_fn dot = dot_for(isa);
    const float *x = a->x;
    for (int g0 = 0; g0 < a->m; g0 += gm) {
        const int gn = a->m - g0 < gm ? a->m - g0 : gm;
        /* on this thread: a group is at most k·block_m values against n·k·block_m products, and
         * the threads then meet once per group instead of twice */
        for (int r = 0; r < gn; r++) quantize_xrow(x + (size_t)(g0 + r) * ldx, a->k, xs, r);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int s = 0; s < nt; s++) {
            const int j0 = (int)((long long)a->n * s / nt), j1 = (int)((long long)a->n * (s + 1) / nt);
            group_slice(a, dot, xs, g0, gn, j0, j1, ldy);
        }
    }
    k_ctx_release(ctx, mark);
    return HIRED_OK;
}
