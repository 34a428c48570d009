/* attention_x86.c — the AVX2+FMA attention tiles (see attention_x86.h). Each tile keeps 6 rows
 * × 16 columns of float32 sums in 12 ymm registers; per step it loads two vectors of the
 * streamed operand and broadcasts one value per row, so the FMAs (two per cycle) and not the
 * loads bound it. Tiles of fewer rows are the same code with a smaller constant row count.
 * Built with baseline flags; every function carries its target attribute. On other
 * architectures k_cpu_att_tiles_usable() is false and the entry points are never called. */
#include "attention_x86.h"

#include <math.h>
#include <string.h>

#include "kmath.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#include <pthread.h>

#include "avx2_util.h"
#include "gemm.h"
#include "simd_x86.h"

static pthread_once_t tiles_once = PTHREAD_ONCE_INIT;
static bool tiles_cpu, decode_cpu, tiles_on = true;

static void detect(void) {
    __builtin_cpu_init();
    decode_cpu = k_cpu_have_f16c(); /* simd_x86.h: AVX2, FMA and F16C */
    tiles_cpu = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !k_cpu_avx512_usable();
}

bool k_cpu_att_tiles_usable(void) {
    pthread_once(&tiles_once, detect);
    return tiles_cpu && tiles_on;
}

bool k_cpu_att_decode_usable(void) {
    pthread_once(&tiles_once, detect);
    return decode_cpu && tiles_on;
}

bool k_cpu_att_tiles_enable(bool on) {
    pthread_once(&tiles_once, detect);
    if (on && !tiles_cpu && !decode_cpu) return false;
    tiles_on = on;
    return true;
}

#define K_TARGET __attribute__((target("avx2,fma,f16c")))
#define K_INLINE K_TARGET static inline __attribute__((always_inline))

/* 8 cache elements from element offset off, as float32. */
K_INLINE __m256 kv8(const void *base, bool half, size_t off) {
    if (half) return k_avx2_load8_half((const uint16_t *)base + off, false);
    return _mm256_loadu_ps((const float *)base + off);
}

static inline size_t src_row(const k_att_src *s, int j) {
    return (s->a ? k_attention_row(s->a, j, s->ld) : (size_t)j * s->ld) + s->col;
}

static inline float src_elem(const k_att_src *s, size_t off) {
    return s->half ? k_half_to_f32(((const uint16_t *)s->base)[off]) : ((const float *)s->base)[off];
}

K_TARGET void k_cpu_att_pack_keys(float *kt, const k_att_src *src, int n, int d) {
    int np = (n + K_ATT_PANEL - 1) / K_ATT_PANEL;
    for (int p = 0; p < np; p++) {
        float *panel = kt + (size_t)p * d * K_ATT_PANEL;
        int c1 = n - p * K_ATT_PANEL < K_ATT_PANEL ? n - p * K_ATT_PANEL : K_ATT_PANEL;
        if (c1 < K_ATT_PANEL || d % 8) { /* the last, partial panel: element by element */
            memset(panel, 0, (size_t)d * K_ATT_PANEL * sizeof(float));
            for (int c = 0; c < c1; c++) {
                const size_t row = src_row(src, p * K_ATT_PANEL + c);
                for (int e = 0; e < d; e++) panel[(size_t)e * K_ATT_PANEL + c] = src_elem(src, row + (size_t)e);
            }
            continue;
        }
        for (int c0 = 0; c0 < K_ATT_PANEL; c0 += 8) {
            size_t rows[8];
            for (int i = 0; i < 8; i++) rows[i] = src_row(src, p * K_ATT_PANEL + c0 + i);
            for (int e0 = 0; e0 < d; e0 += 8) {
                __m256 r[8];
                for (int i = 0; i < 8; i++) r[i] = kv8(src->base, src->half, rows[i] + (size_t)e0);
                k_avx2_transpose8(r);
                for (int i = 0; i < 8; i++) _mm256_storeu_ps(panel + (size_t)(e0 + i) * K_ATT_PANEL + c0, r[i]);
            }
        }
    }
}

K_TARGET void k_cpu_att_pack_values(float *vp, const k_att_src *src, int n, int d) {
    int e0 = 0;
    for (; e0 + 16 <= d; e0 += 16) {
        float *chunk = vp + (size_t)e0 * n;
        for (int j = 0; j < n; j++) {
            const size_t row = src_row(src, j) + (size_t)e0;
            _mm256_storeu_ps(chunk + (size_t)j * 16, kv8(src->base, src->half, row));
            _mm256_storeu_ps(chunk + (size_t)j * 16 + 8, kv8(src->base, src->half, row + 8));
        }
    }
    if (e0 < d) { /* 8 wide (d is a multiple of 8) */
        float *chunk = vp + (size_t)e0 * n;
        for (int j = 0; j < n; j++)
            _mm256_storeu_ps(chunk + (size_t)j * 8, kv8(src->base, src->half, src_row(src, j) + (size_t)e0));
    }
}

/* e^t for t ≤ 0 (or NaN), as k_expf computes it: x·log2(e) rounded to n by the 1.5·2^23 trick,
 * r = x − n·ln2 in two parts, the degree-7 Taylor polynomial of e^r, times 2^n. n ≥ −126 after
 * the clamp, so 2^n is one normal float (k_expf splits it in two for large n); below the
 * clamp the result is 0, as k_expf's. */
K_INLINE __m256 exp_nonpositive(__m256 t) {
    const __m256 lo = _mm256_set1_ps(-87.33654022216797f), shifter = _mm256_set1_ps(12582912.0f);
    __m256 tc = _mm256_max_ps(lo, t); /* NaN stays NaN (max_ps returns its second operand) */
    __m256 fn = _mm256_sub_ps(_mm256_fmadd_ps(tc, _mm256_set1_ps(1.44269504088896341f), shifter), shifter);
    __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(0.693359375f), tc);
    r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i n = _mm256_cvtps_epi32(fn);
    __m256 scale = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n, _mm256_set1_epi32(127)), 23));
    __m256 y = _mm256_mul_ps(p, scale);
    return _mm256_andnot_ps(_mm256_cmp_ps(t, lo, _CMP_LT_OQ), y); /* 0 below the clamp */
}

K_TARGET float k_cpu_att_exp_row(float *x, int n, int n_zero) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    int j = 0;
    for (; j + 8 <= n; j += 8) mx = _mm256_max_ps(_mm256_loadu_ps(x + j), mx);
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(mx), _mm256_extractf128_ps(mx, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    float m = _mm_cvtss_f32(m4);
    for (; j < n; j++) m = x[j] > m || x[j] != x[j] ? x[j] : m;
    __m256 vm = _mm256_set1_ps(m), sum0 = _mm256_setzero_ps(), sum1 = _mm256_setzero_ps();
    for (j = 0; j + 16 <= n; j += 16) {
        __m256 e0 = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + j), vm));
        __m256 e1 = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(x + j + 8), vm));
        _mm256_storeu_ps(x + j, e0);
        _mm256_storeu_ps(x + j + 8, e1);
        sum0 = _mm256_add_ps(sum0, e0);
        sum1 = _mm256_add_ps(sum1, e1);
    }
    if (j < n) { /* the tail: lanes past n computed from a masked load and discarded */
        int rest = n - j;
        for (int h = 0; h < 2 && rest > 0; h++, j += 8, rest -= 8) {
            __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(rest < 8 ? rest : 8), lane);
            __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_maskload_ps(x + j, mask), vm));
            e = _mm256_and_ps(e, _mm256_castsi256_ps(mask));
            _mm256_maskstore_ps(x + j, mask, e);
            sum0 = _mm256_add_ps(sum0, e);
        }
        j = n;
    }
    for (; j < n_zero; j++) x[j] = 0.0f;
    __m256 s8 = _mm256_add_ps(sum0, sum1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* One 6-or-fewer-row tile of scores against one panel of 16 keys. */
K_INLINE void scores_tile(int mr, float *s, size_t lds, const float *q, size_t ldq, const float *panel, int d,
                          __m256 scale) {
    __m256 acc[K_ATT_TILE_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < K_ATT_TILE_ROWS; r++)
        if (r < mr) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    k_avx2_tile6x16(mr, acc, q, ldq, panel, d);
#pragma GCC unroll 6
    for (int r = 0; r < K_ATT_TILE_ROWS; r++) {
        if (r >= mr) continue;
        _mm256_storeu_ps(s + (size_t)r * lds, _mm256_mul_ps(acc[r][0], scale));
        _mm256_storeu_ps(s + (size_t)r * lds + 8, _mm256_mul_ps(acc[r][1], scale));
    }
}

K_INLINE void scores_rows(int mr, float *s, size_t lds, const float *q, size_t ldq, const float *kt, int n_panels, int d,
                          float scale) {
    __m256 sc = _mm256_set1_ps(scale);
    for (int p = 0; p < n_panels; p++)
        scores_tile(mr, s + (size_t)p * K_ATT_PANEL, lds, q, ldq, kt + (size_t)p * d * K_ATT_PANEL, d, sc);
}

K_TARGET void k_cpu_att_scores(float *s, size_t lds, const float *q, size_t ldq, int mr, const float *kt, int n_panels,
                               int d, float scale) {
    switch (mr) {
    case 6: scores_rows(6, s, lds, q, ldq, kt, n_panels, d, scale); break;
    case 5: scores_rows(5, s, lds, q, ldq, kt, n_panels, d, scale); break;
    case 4: scores_rows(4, s, lds, q, ldq, kt, n_panels, d, scale); break;
    case 3: scores_rows(3, s, lds, q, ldq, kt, n_panels, d, scale); break;
    case 2: scores_rows(2, s, lds, q, ldq, kt, n_panels, d, scale); break;
    default: scores_rows(1, s, lds, q, ldq, kt, n_panels, d, scale); break;
    }
}

/* Output columns of one chunk (nv = 2 vectors of 8, or 1) of a tile: Σ over the n keys in
 * order, from the chunk's packed rows vc (nv·8 floats apart). */
K_INLINE void values_tile(int mr, int nv, float *o, size_t ldo, const float *s, size_t lds, const float *vc, int n,
                          const float *inv) {
    __m256 acc[K_ATT_TILE_ROWS][2];
#pragma GCC unroll 6
    for (int r = 0; r < K_ATT_TILE_ROWS; r++)
        if (r < mr) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int j = 0; j < n; j++) {
        const float *vr = vc + (size_t)j * 8 * nv;
        __m256 b0 = _mm256_loadu_ps(vr), b1 = nv == 2 ? _mm256_loadu_ps(vr + 8) : b0;
#pragma GCC unroll 6
        for (int r = 0; r < K_ATT_TILE_ROWS; r++) {
            if (r >= mr) continue;
            __m256 a = _mm256_broadcast_ss(s + (size_t)r * lds + j);
            acc[r][0] = _mm256_fmadd_ps(a, b0, acc[r][0]);
            if (nv == 2) acc[r][1] = _mm256_fmadd_ps(a, b1, acc[r][1]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < K_ATT_TILE_ROWS; r++) {
        if (r >= mr) continue;
        __m256 f = _mm256_set1_ps(inv[r]);
        _mm256_storeu_ps(o + (size_t)r * ldo, _mm256_mul_ps(acc[r][0], f));
        if (nv == 2) _mm256_storeu_ps(o + (size_t)r * ldo + 8, _mm256_mul_ps(acc[r][1], f));
    }
}

K_INLINE void values_rows(int mr, float *o, size_t ldo, const float *s, size_t lds, const float *vp, int n, int m,
                          int d, const float *inv) {
    int e = 0;
    for (; e + 16 <= d; e += 16) values_tile(mr, 2, o + e, ldo, s, lds, vp + (size_t)e * n, m, inv);
    if (e < d) values_tile(mr, 1, o + e, ldo, s, lds, vp + (size_t)e * n, m, inv);
}

K_TARGET void k_cpu_att_values(float *o, size_t ldo, const float *s, size_t lds, int mr, const float *vp, int n, int m,
                               int d, const float *inv) {
    switch (mr) {
    case 6: values_rows(6, o, ldo, s, lds, vp, n, m, d, inv); break;
    case 5: values_rows(5, o, ldo, s, lds, vp, n, m, d, inv); break;
    case 4: values_rows(4, o, ldo, s, lds, vp, n, m, d, inv); break;
    case 3: values_rows(3, o, ldo, s, lds, vp, n, m, d, inv); break;
    case 2: values_rows(2, o, ldo, s, lds, vp, n, m, d, inv); break;
    default: values_rows(1, o, ldo, s, lds, vp, n, m, d, inv); break;
    }
}

// ---- decode: one query row per head, the cache read where it lies --------------------------------

/* One query head against one key: the two 8-lane chains of partial sums over d in order (16
 * elements a step, then a last 8), added; k_avx2_hsum of it is the score before the scale. */
K_INLINE __m256 decode_score_lanes(const float *qh, const void *k, bool half, size_t off, int d) {
    __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
    int e = 0;
    for (; e + 16 <= d; e += 16) {
        acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + e), kv8(k, half, off + e), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + e + 8), kv8(k, half, off + e + 8), acc1);
    }
    if (e < d) acc0 = _mm256_fmadd_ps(_mm256_loadu_ps(qh + e), kv8(k, half, off + e), acc0);
    return _mm256_add_ps(acc0, acc1);
}

/* k_avx2_hsum of each of v[0..8), lane i of the result: the same additions in the same order
 * (halves, then lanes two apart, then neighbours), eight heads at a time by transposing
 * shuffles instead of eight serial reductions. */
K_INLINE __m256 hsum8(const __m256 *v) {
    __m256 x[4]; /* x[i]: lanes 0-3 the halves' sums of v[i], lanes 4-7 those of v[i + 4] */
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++)
        x[i] = _mm256_add_ps(_mm256_permute2f128_ps(v[i], v[i + 4], 0x20), _mm256_permute2f128_ps(v[i], v[i + 4], 0x31));
    /* lanes two apart: [b0, b1] of v[i] and v[i + 1] in each 128-bit half */
    const __m256 r = _mm256_add_ps(_mm256_shuffle_ps(x[0], x[1], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(x[0], x[1], _MM_SHUFFLE(3, 2, 3, 2)));
    const __m256 t = _mm256_add_ps(_mm256_shuffle_ps(x[2], x[3], _MM_SHUFFLE(1, 0, 1, 0)),
                                   _mm256_shuffle_ps(x[2], x[3], _MM_SHUFFLE(3, 2, 3, 2)));
    /* neighbours: b0 + b1 */
    return _mm256_add_ps(_mm256_shuffle_ps(r, t, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(r, t, _MM_SHUFFLE(3, 1, 3, 1)));
}

K_TARGET void k_cpu_att_decode_scores(const k_attention_args *a, int j0, int j1, int n, size_t ldk, const float *q,
                                      float *s) {
    const int d = a->head_dim, g = a->n_head / a->n_head_kv, h8 = a->n_head / 8 * 8;
    const bool half = a->kv_dtype == TENSOR_DTYPE_F16;
    const __m256 scale = _mm256_set1_ps(a->scale);
    for (int j = j0; j < j1; j++) {
        const size_t off = k_attention_row(a, j, ldk);
        int r = 0;
        for (; r < h8; r += 8) {
            __m256 v[8];
            float out[8];
#pragma GCC unroll 8
            for (int i = 0; i < 8; i++)
                v[i] = decode_score_lanes(q + (size_t)(r + i) * d, a->k, half, off + (size_t)((r + i) / g) * d, d);
            _mm256_storeu_ps(out, _mm256_mul_ps(scale, hsum8(v)));
            for (int i = 0; i < 8; i++) s[(size_t)(r + i) * n + j] = out[i];
        }
        for (; r < a->n_head; r++)
            s[(size_t)r * n + j] =
                a->scale * k_avx2_hsum(decode_score_lanes(q + (size_t)r * d, a->k, half, off + (size_t)(r / g) * d, d));
    }
}

/* Keys [j0, j1) of one q head r into its part, elements [e0, e0 + 8·nv): nv accumulators in
 * registers, one FMA chain per element over the keys in order, started from part (a store and
 * a load change no bits). */
K_INLINE void decode_values_run(const k_attention_args *a, int j0, int j1, size_t ldv, const float *p,
                                float *prow, size_t col, const int nv, bool half) {
    __m256 acc[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) acc[i] = i < nv ? _mm256_loadu_ps(prow + 8 * i) : _mm256_setzero_ps();
    for (int j = j0; j < j1; j++) {
        const __m256 pj = _mm256_broadcast_ss(p + j);
        const size_t off = k_attention_row(a, j, ldv) + col;
#pragma GCC unroll 8
        for (int i = 0; i < 8; i++)
            if (i < nv) acc[i] = _mm256_fmadd_ps(pj, kv8(a->v, half, off + (size_t)(8 * i)), acc[i]);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++)
        if (i < nv) _mm256_storeu_ps(prow + 8 * i, acc[i]);
}

/* Keys a group at a time: the group's value rows (DECODE_KG · n_head_kv · d elements, 64 KB at
 * 7B widths) stay in L2 while every head takes its slice, and each head's partial sums stay in
 * registers over the group's keys instead of a load and a store per key. Key by key through
 * part (the earlier shape) ran the F16 attention of a 2,900-key decode step at about 24 GB/s of
 * cache read on a Zen 4. */
#define DECODE_KG 8

K_TARGET void k_cpu_att_decode_values(const k_attention_args *a, int j0, int j1, int n, size_t ldv, const float *p,
                                      float *part) {
    const int d = a->head_dim, g = a->n_head / a->n_head_kv;
    const bool half = a->kv_dtype == TENSOR_DTYPE_F16;
    memset(part, 0, (size_t)a->n_head * d * sizeof(float));
    for (int jg = j0; jg < j1; jg += DECODE_KG) {
        const int je = jg + DECODE_KG < j1 ? jg + DECODE_KG : j1;
        for (int r = 0; r < a->n_head; r++) {
            const float *pr = p + (size_t)r * n;
            float *prow = part + (size_t)r * d;
            const size_t col = (size_t)(r / g) * d;
            for (int e = 0; e < d; e += 64) { /* 64 elements (8 accumulators) a run; d % 8 == 0 */
                const int nv = d - e < 64 ? (d - e) / 8 : 8;
                if (nv == 8) /* a constant count: the accumulators stay in registers */
                    decode_values_run(a, jg, je, ldv, pr, prow + e, col + (size_t)e, 8, half);
                else
                    decode_values_run(a, jg, je, ldv, pr, prow + e, col + (size_t)e, nv, half);
            }
        }
    }
}

#else /* not x86-64 */

bool k_cpu_att_tiles_usable(void) { return false; }
bool k_cpu_att_decode_usable(void) { return false; }
void k_cpu_att_decode_scores(const k_attention_args *a, int j0, int j1, int n, size_t ldk, const float *q, float *s) {
    (void)a, (void)j0, (void)j1, (void)n, (void)ldk, (void)q, (void)s; /* never planned here */
}
void k_cpu_att_decode_values(const k_attention_args *a, int j0, int j1, int n, size_t ldv, const float *p,
                             float *part) {
    (void)a, (void)j0, (void)j1, (void)n, (void)ldv, (void)p, (void)part;
}
bool k_cpu_att_tiles_enable(bool on) { return !on; }
float k_cpu_att_exp_row(float *x, int n, int n_zero) {
    (void)x, (void)n, (void)n_zero;
    return 0.0f;
}
void k_cpu_att_pack_keys(float *kt, const k_att_src *src, int n, int d) {
    (void)kt, (void)src, (void)n, (void)d; /* never planned here */
}
void k_cpu_att_scores(float *s, size_t lds, const float *q, size_t ldq, int mr, const float *kt, int n_panels, int d,
                      float scale) {
    (void)s, (void)lds, (void)q, (void)ldq, (void)mr, (void)kt, (void)n_panels, (void)d, (void)scale;
}
void k_cpu_att_pack_values(float *vp, const k_att_src *src, int n, int d) {
    (void)vp, (void)src, (void)n, (void)d;
}
void k_cpu_att_values(float *o, size_t ldo, const float *s, size_t lds, int mr, const float *vp, int n, int m, int d,
                      const float *inv) {
    (void)o, (void)ldo, (void)s, (void)lds, (void)mr, (void)vp, (void)n, (void)m, (void)d, (void)inv;
}

#endif
