/* matmul.c (cpu) — the fast linear layer: sgemm slices on OpenMP threads (k_cpu_sgemm, gemm.h:
 * the GEMM library itself single-threaded), F16/BF16 weights either converted block by block
 * into one float32 scratch (prefill and encoder shapes) or streamed through a fused
 * convert-and-dot kernel (decode shapes, memory-bound; AVX2/F16C when the CPU has it, which
 * float32 weights at decode shapes take too). On CPUs with AVX2 and no AVX-512 the larger
 * shapes run in the backend's own GEMM tiles (gemm_x86.h) instead of the library. The plan
 * (kernels/matmul.c) picks the variant; this file only executes it; the convert scratch comes
 * from the context's arena.
 * Not here: the reference loops (matmul_ref.c). */
#include <stdint.h>
#include <string.h>

#include "cpu_ops.h"
#include "cpu_util.h"
#include "gemm.h"
#include "gemm_x86.h"
#include "kmath.h"
#include "simd_x86.h"

/* Resolved strides and typed activation pointers shared by the variants. */
typedef struct {
    const k_matmul_args *a;
    const float *x; /* [m, k], stride ldx */
    float *y;       /* [m, n], stride ldy */
    size_t ldx, ldy;
} mm_ctx;

/* Columns [j0, j1) of rows [i0, i1) of y: set to bias, or add bias when accumulating.
 * Afterwards sgemm runs with beta = 1 if this ran or accumulate is set. */
static void bias_prepass(const mm_ctx *c, int i0, int i1, int j0, int j1) {
    const k_matmul_args *a = c->a;
    for (int i = i0; i < i1; i++) {
        float *y = c->y + i * c->ldy;
        if (a->accumulate)
            for (int j = j0; j < j1; j++) y[j] += a->bias[j];
        else
            memcpy(y + j0, a->bias + j0, (size_t)(j1 - j0) * sizeof(float));
    }
}

/* y[i0:i1, j0:j1] (+)= x[i0:i1] · w32[0:(j1-j0)]ᵀ with w32 float32 rows of stride k. */
static void gemm_block(const mm_ctx *c, int i0, int i1, int j0, int j1, const float *w32) {
    const k_matmul_args *a = c->a;
    if (i1 <= i0 || j1 <= j0) return;
    float beta = a->accumulate ? 1.0f : 0.0f;
    if (a->bias) {
        bias_prepass(c, i0, i1, j0, j1);
        beta = 1.0f;
    }
    k_cpu_sgemm(true, i1 - i0, j1 - j0, a->k, 1.0f, c->x + i0 * c->ldx, c->ldx, w32, (size_t)a->k, beta,
                c->y + i0 * c->ldy + j0, c->ldy);
}

/* Slice s of n_slices over [0, len), boundaries rounded to multiples of 16. */
static void slice(int len, int s, int n_slices, int *lo, int *hi) {
    long long a = (long long)len * s / n_slices, b = (long long)len * (s + 1) / n_slices;
    a = s == 0 ? 0 : (a + 8) / 16 * 16;
    b = s == n_slices - 1 ? len : (b + 8) / 16 * 16;
    if (a > len) a = len;
    if (b > len) b = len;
    *lo = (int)a;
    *hi = (int)(b < a ? a : b);
}

// ---- SGEMM: float32 weights --------------------------------------------------------------------

/* Columns [j0, j1) of y from w32 (float32 rows j0.. of stride k), split over n_threads: by rows
 * of x when split_m, else by columns. */
static void sgemm_split(const mm_ctx *c, int n_threads, bool split_m, int j0, int j1, const float *w32) {
    const k_matmul_args *a = c->a;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int s = 0; s < n_threads; s++) {
        int lo, hi;
        if (split_m) {
            slice(a->m, s, n_threads, &lo, &hi);
            gemm_block(c, lo, hi, j0, j1, w32);
        } else {
            slice(j1 - j0, s, n_threads, &lo, &hi);
            gemm_block(c, 0, a->m, j0 + lo, j0 + hi, w32 + (size_t)lo * a->k);
        }
    }
}

static void run_sgemm(const mm_ctx *c, const k_matmul_launch *l) { sgemm_split(c, l->n_threads, l->split_m, 0, c->a->n, c->a->w); }

// ---- FUSED: half weights, few rows of x --------------------------------------------------------

#define FUSED_CHUNK 512

/* y[r0:r1, j0:j1] for r1 − r0 ≤ K_MATMUL_FUSED_MAX_M: each weight row is converted in chunks
 * into a stack buffer and dotted with every x row while it is in L1. */
K_CLONES static void fused_rows(const mm_ctx *c, int r0, int r1, int j0, int j1) {
    const k_matmul_args *a = c->a;
    const uint16_t *w = a->w;
    int nr = r1 - r0;
    float buf[FUSED_CHUNK];
    for (int j = j0; j < j1; j++) {
        float acc[K_MATMUL_FUSED_MAX_M][16];
        float tail[K_MATMUL_FUSED_MAX_M];
        for (int r = 0; r < nr; r++) {
            tail[r] = 0.0f;
            for (int l = 0; l < 16; l++) acc[r][l] = 0.0f;
        }
        const uint16_t *wr = w + (size_t)j * a->k;
        for (int p0 = 0; p0 < a->k; p0 += FUSED_CHUNK) {
            int len = a->k - p0 < FUSED_CHUNK ? a->k - p0 : FUSED_CHUNK;
            if (a->w_dtype == TENSOR_DTYPE_F16)
                for (int p = 0; p < len; p++) buf[p] = k_half_to_f32(wr[p0 + p]);
            else
                for (int p = 0; p < len; p++) buf[p] = k_bf16_to_f32(wr[p0 + p]);
            int len16 = len / 16 * 16;
            for (int r = 0; r < nr; r++) {
                const float *xr = c->x + (r0 + r) * c->ldx + p0;
                for (int p = 0; p < len16; p += 16)
                    for (int l = 0; l < 16; l++) acc[r][l] += buf[p + l] * xr[p + l];
                for (int p = len16; p < len; p++) tail[r] += buf[p] * xr[p];
            }
        }
        for (int r = 0; r < nr; r++) {
            float s = tail[r];
            for (int l = 0; l < 16; l++) s += acc[r][l];
            if (a->bias) s += a->bias[j];
            float *y = c->y + (r0 + r) * c->ldy + j;
            *y = a->accumulate ? *y + s : s;
        }
    }
}

/* The same with the AVX2/F16C dot kernels (float32 weights too), 64 weight rows at a time
 * through a stack buffer. */
static void fused_rows_simd(const mm_ctx *c, int r0, int r1, int j0, int j1) {
    const k_matmul_args *a = c->a;
    enum { JB = 64 };
    float dot[K_MATMUL_FUSED_MAX_M * JB];
    int nr = r1 - r0;
    for (int jb = j0; jb < j1; jb += JB) {
        int je = jb + JB < j1 ? jb + JB : j1;
        if (a->w_dtype == TENSOR_DTYPE_F32)
            k_cpu_f32_dot_rows_x86(a->w, a->k, jb, je, c->x + r0 * c->ldx, c->ldx, nr, dot, JB);
        else
            k_cpu_half_dot_rows_x86(a->w, a->w_dtype == TENSOR_DTYPE_BF16, a->k, jb, je, c->x + r0 * c->ldx, c->ldx,
                                    nr, dot, JB);
        for (int r = 0; r < nr; r++) {
            float *y = c->y + (r0 + r) * c->ldy;
            for (int j = jb; j < je; j++) {
                float s = dot[r * JB + (j - jb)];
                if (a->bias) s += a->bias[j];
                y[j] = a->accumulate ? y[j] + s : s;
            }
        }
    }
}

static void run_fused(const mm_ctx *c, const k_matmul_launch *l) {
    const k_matmul_args *a = c->a;
    int n_threads = l->n_threads;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int s = 0; s < n_threads; s++) {
        int j0 = (int)((long long)a->n * s / n_threads), j1 = (int)((long long)a->n * (s + 1) / n_threads);
        for (int r0 = 0; r0 < a->m; r0 += K_MATMUL_FUSED_MAX_M) {
            int r1 = r0 + K_MATMUL_FUSED_MAX_M < a->m ? r0 + K_MATMUL_FUSED_MAX_M : a->m;
            if (l->simd)
                fused_rows_simd(c, r0, r1, j0, j1);
            else
                fused_rows(c, r0, r1, j0, j1);
        }
    }
}

// ---- ROWS: row-invariant, any m ----------------------------------------------------------------

/* Weight rows per block: a block of a 4096- to 11008-wide matrix stays in L2 while every x row
 * is dotted with it, so w still streams from memory once per call. */
#define ROWS_JB 16

/* y[i, j] from its dot product s: bias, then set or accumulate (what the fused path does). */
static inline void rows_store(const mm_ctx *c, int i, int j, float s) {
    const k_matmul_args *a = c->a;
    if (a->bias) s += a->bias[j];
    float *y = c->y + (size_t)i * c->ldy + j;
    *y = a->accumulate ? *y + s : s;
}

/* One float32 dot product in a fixed order (16 partial sums, then the tail): the same bits for
 * a given x row whatever else is computed. */
K_CLONES static void rows_f32(const mm_ctx *c, int j0, int j1) {
    const k_matmul_args *a = c->a;
    const float *w = a->w;
    const int k16 = a->k / 16 * 16;
    for (int jb = j0; jb < j1; jb += ROWS_JB) {
        int je = jb + ROWS_JB < j1 ? jb + ROWS_JB : j1;
        for (int i = 0; i < a->m; i++) {
            const float *xr = c->x + (size_t)i * c->ldx;
            for (int j = jb; j < je; j++) {
                const float *wr = w + (size_t)j * a->k;
                float acc[16] = {0};
                for (int p = 0; p < k16; p += 16)
                    for (int l = 0; l < 16; l++) acc[l] += wr[p + l] * xr[p + l];
                float s = 0.0f;
                for (int p = k16; p < a->k; p++) s += wr[p] * xr[p];
                for (int l = 0; l < 16; l++) s += acc[l];
                rows_store(c, i, j, s);
            }
        }
    }
}

/* F16/BF16 with AVX2 only: K_CPU_LIKE1_J weight rows at a time dotted with every x row by
 * register tiles in the accumulation order of the m = 1 fused path
 * (k_cpu_dot_rows_like1_tiles_x86), so a row's bits equal an m = 1 fused matmul. dot:
 * [m, K_CPU_LIKE1_J] scratch. */
static void rows_half_simd(const mm_ctx *c, int j0, int j1, float *dot, const float *xp) {
    const k_matmul_args *a = c->a;
    const uint16_t *w = a->w;
    const bool bf16 = a->w_dtype == TENSOR_DTYPE_BF16;
    for (int j = j0; j < j1; j += K_CPU_LIKE1_J) {
        const int nj = j + K_CPU_LIKE1_J <= j1 ? K_CPU_LIKE1_J : j1 - j;
        k_cpu_dot_rows_like1_tiles_x86(w + (size_t)j * a->k, bf16, a->k, nj, xp, c->x, c->ldx, a->m, dot,
                                       K_CPU_LIKE1_J);
        for (int i = 0; i < a->m; i++)
            for (int jj = 0; jj < nj; jj++) rows_store(c, i, j + jj, dot[(size_t)i * K_CPU_LIKE1_J + jj]);
    }
}

/* F16/BF16 on a CPU with AVX-512: register tiles of 4 weight rows × 4 x rows straight from the
 * half weights (k_cpu_half_dot_tile_like1_x86), the bits of the m = 1 fused path. The 4 weight
 * rows of a tile stay in cache while every group of x rows passes over them, so w streams from
 * memory once per call and each weight load feeds up to four rows. */
static void rows_half_tiles(const mm_ctx *c, int j0, int j1) {
    const k_matmul_args *a = c->a;
    const uint16_t *w = a->w;
    const bool bf16 = a->w_dtype == TENSOR_DTYPE_BF16;
    float dot[16];
    for (int j = j0; j < j1; j += 4) {
        const int nw = j + 4 <= j1 ? 4 : j1 - j;
        for (int i = 0; i < a->m; i += 4) {
            const int nx = i + 4 <= a->m ? 4 : a->m - i;
            k_cpu_half_dot_tile_like1_x86(w + (size_t)j * a->k, bf16, a->k, nw, c->x + (size_t)i * c->ldx, c->ldx, nx, dot, 4);
            for (int r = 0; r < nx; r++)
                for (int jj = 0; jj < nw; jj++) rows_store(c, i + r, j + jj, dot[r * 4 + jj]);
        }
    }
}

/* The same without scratch: each x row alone through the one-row fused kernel. */
static void rows_half_simd_noscratch(const mm_ctx *c, int j0, int j1) {
    const k_matmul_args *a = c->a;
    float dot[ROWS_JB];
    for (int jb = j0; jb < j1; jb += ROWS_JB) {
        int je = jb + ROWS_JB < j1 ? jb + ROWS_JB : j1;
        for (int i = 0; i < a->m; i++) {
            k_cpu_half_dot_rows_x86(a->w, a->w_dtype == TENSOR_DTYPE_BF16, a->k, jb, je, c->x + (size_t)i * c->ldx,
                                    c->ldx, 1, dot, ROWS_JB);
            for (int j = jb; j < je; j++) rows_store(c, i, j, dot[j - jb]);
        }
    }
}

static void run_rows(k_ctx_t *ctx, const mm_ctx *c, const k_matmul_launch *l) {
    const k_matmul_args *a = c->a;
    int n_threads = l->n_threads;
    size_t mark = k_ctx_mark(ctx);
    const bool tiles = l->simd && k_cpu_have_avx512vl();
    size_t per = K_CPU_LIKE1_J * (size_t)a->m; /* floats per thread: the dots of K_CPU_LIKE1_J weight rows */
    /* AVX2 tiles for two or more rows; one row runs the one-row kernel itself */
    float *scratch = l->simd && !tiles && a->m > 1 && a->w_dtype != TENSOR_DTYPE_F32
                         ? k_ctx_alloc(ctx, per * n_threads * sizeof(float))
                         : NULL;
    /* x packed by k blocks for the AVX2 tiles, shared by the threads */
    float *xp = scratch ? k_ctx_alloc(ctx, (size_t)a->m * k_cpu_like1_pack_floats(a->k) * sizeof(float)) : NULL;
    if (xp) k_cpu_like1_pack_x(xp, c->x, c->ldx, a->m, a->k);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int s = 0; s < n_threads; s++) {
        int j0 = (int)((long long)a->n * s / n_threads), j1 = (int)((long long)a->n * (s + 1) / n_threads);
        if (a->w_dtype == TENSOR_DTYPE_F32)
            rows_f32(c, j0, j1);
        else if (l->simd && tiles)
            rows_half_tiles(c, j0, j1);
        else if (l->simd && scratch && xp)
            rows_half_simd(c, j0, j1, scratch + per * s, xp);
        else if (l->simd)
            rows_half_simd_noscratch(c, j0, j1);
        else /* the portable fused loop keeps one set of partial sums per x row: row-invariant */
            for (int r0 = 0; r0 < a->m; r0 += K_MATMUL_FUSED_MAX_M)
                fused_rows(c, r0, r0 + K_MATMUL_FUSED_MAX_M < a->m ? r0 + K_MATMUL_FUSED_MAX_M : a->m, j0, j1);
    }
    k_ctx_release(ctx, mark);
}

// ---- TILES: the AVX2 register-tile GEMM (gemm_x86.h) --------------------------------------------

/* The CONVERT variant's work on a CPU where k_cpu_gemm_tiles_usable (float32 weights stay on
 * the library's sgemm, which the tiles only equal: hired-bench-kernels tiles, gemm_x86.h):
 * threads take slices of w's rows (multiples of 16), each with a packing buffer of its own.
 * Returns false (having done nothing) when the scratch cannot be allocated. */
static bool run_tiles(k_ctx_t *ctx, const mm_ctx *c, const k_matmul_launch *l) {
    const k_matmul_args *a = c->a;
    const size_t per = k_cpu_gemm_tiles_pack_floats();
    int n_threads = l->n_threads;
    if (n_threads > (a->n + 15) / 16) n_threads = (a->n + 15) / 16;
    size_t mark = k_ctx_mark(ctx);
    float *pack = k_ctx_alloc(ctx, per * (size_t)n_threads * sizeof(float));
    if (!pack) return false;
    const k_gemm_wtype wt = a->w_dtype == TENSOR_DTYPE_F16    ? K_GEMM_W_F16
                            : a->w_dtype == TENSOR_DTYPE_BF16 ? K_GEMM_W_BF16
                                                              : K_GEMM_W_F32;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int s = 0; s < n_threads; s++) {
        int lo, hi;
        slice(a->n, s, n_threads, &lo, &hi);
        if (hi > lo)
            k_cpu_gemm_tiles_x86(a->m, lo, hi, a->k, c->x, c->ldx, a->w, wt, a->bias, a->accumulate, c->y, c->ldy,
                                 pack + per * (size_t)s);
    }
    k_ctx_release(ctx, mark);
    return true;
}

// ---- CONVERT: half weights, many rows of x -----------------------------------------------------

/* Returns false (having done nothing) when the scratch cannot be allocated. */
static bool run_convert(k_ctx_t *ctx, const mm_ctx *c, const k_matmul_launch *l) {
    const k_matmul_args *a = c->a;
    size_t mark = k_ctx_mark(ctx);
    float *w32 = k_ctx_alloc(ctx, k_matmul_plan_scratch(a, l)); /* [block_n, k] */
    if (!w32) return false;
    for (int j0 = 0; j0 < a->n; j0 += l->block_n) {
        int j1 = j0 + l->block_n < a->n ? j0 + l->block_n : a->n;
        /* convert the block's rows in parallel chunks of 16 rows */
        int n_chunks = (j1 - j0 + 15) / 16;
#pragma omp parallel for num_threads(l->n_threads) schedule(dynamic, 4) if (l->n_threads > 1)
        for (int ch = 0; ch < n_chunks; ch++) {
            int r0 = j0 + ch * 16, r1 = r0 + 16 < j1 ? r0 + 16 : j1;
            const uint16_t *src = (const uint16_t *)a->w + (size_t)r0 * a->k;
            float *dst = w32 + (size_t)(r0 - j0) * a->k;
            size_t cnt = (size_t)(r1 - r0) * a->k;
            if (l->simd && a->w_dtype == TENSOR_DTYPE_F16)
                k_cpu_f16_to_f32_f16c(dst, src, cnt);
            else
                k_cpu_to_f32_portable(dst, src, a->w_dtype, cnt);
        }
        sgemm_split(c, l->n_threads, l->split_m, j0, j1, w32);
    }
    k_ctx_release(ctx, mark);
    return true;
}

// ---- BF16: bf16 × bf16 products, float32 sums --------------------------------------------------

/* dst[i] = x rounded to bf16 (to nearest even; NaN stays NaN) for n floats. */
K_CLONES static void f32_to_bf16_n(uint16_t *restrict dst, const float *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        k_fbits v;
        v.f = src[i];
        uint32_t u = (uint32_t)v.i;
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
    }
}

/* F16 → bf16 (through float32; exact up to the bf16 rounding). */
K_CLONES static void f16_to_bf16_n(uint16_t *restrict dst, const uint16_t *restrict src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        k_fbits v;
        v.f = k_half_to_f32(src[i]);
        uint32_t u = (uint32_t)v.i;
        uint32_t r = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
        dst[i] = (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? (u >> 16) | 0x40u : r);
    }
}

/* Rows [r0, r1) of a row-major matrix with stride ld, converted in parallel chunks of 16 rows
 * into dst (stride k). */
static void rows_to_bf16(uint16_t *dst, const void *src, bool src_f16, size_t ld, int r0, int r1, int k, int n_threads) {
    int n_chunks = (r1 - r0 + 15) / 16;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && n_chunks > 1)
    for (int ch = 0; ch < n_chunks; ch++) {
        int a = r0 + ch * 16, b = a + 16 < r1 ? a + 16 : r1;
        for (int r = a; r < b; r++) {
            uint16_t *d = dst + (size_t)(r - r0) * k;
            if (src_f16)
                f16_to_bf16_n(d, (const uint16_t *)src + (size_t)r * ld, (size_t)k);
            else
                f32_to_bf16_n(d, (const float *)src + (size_t)r * ld, (size_t)k);
        }
    }
}

/* y[i0:i1, j0:j1] through the exact fused kernel, columns over the threads: the BF16 path's
 * fallback should oneDNN refuse a block (it does not for the shapes and dtypes planned here). */
static void fused_region(const mm_ctx *c, const k_matmul_launch *l, int i0, int i1, int j0, int j1) {
    int nt = l->n_threads;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        int lo = j0 + (int)((long long)(j1 - j0) * t / nt), hi = j0 + (int)((long long)(j1 - j0) * (t + 1) / nt);
        for (int r0 = i0; r0 < i1; r0 += K_MATMUL_FUSED_MAX_M) {
            int r1 = r0 + K_MATMUL_FUSED_MAX_M < i1 ? r0 + K_MATMUL_FUSED_MAX_M : i1;
            if (l->simd)
                fused_rows_simd(c, r0, r1, lo, hi);
            else
                fused_rows(c, r0, r1, lo, hi);
        }
    }
}

/* Returns false (having done nothing) when the scratch cannot be allocated. */
static bool run_bf16(k_ctx_t *ctx, const mm_ctx *c, const k_matmul_launch *l) {
    const k_matmul_args *a = c->a;
    bool f16 = a->w_dtype == TENSOR_DTYPE_F16;
    size_t mark = k_ctx_mark(ctx);
    uint16_t *xb = k_ctx_alloc(ctx, k_matmul_plan_scratch(a, l));
    if (!xb) return false;
    uint16_t *wb = f16 ? xb + (size_t)l->block_m * a->k : NULL;
    for (int j0 = 0; j0 < a->n; j0 += l->block_n) {
        int j1 = j0 + l->block_n < a->n ? j0 + l->block_n : a->n;
        const uint16_t *w = (const uint16_t *)a->w + (size_t)j0 * a->k;
        if (f16) {
            rows_to_bf16(wb, a->w, true, (size_t)a->k, j0, j1, a->k, l->n_threads);
            w = wb;
        }
        for (int i0 = 0; i0 < a->m; i0 += l->block_m) {
            int i1 = i0 + l->block_m < a->m ? i0 + l->block_m : a->m;
            rows_to_bf16(xb, c->x, false, c->ldx, i0, i1, a->k, l->n_threads);
            if (!k_cpu_gemm_bf16_nt(i1 - i0, j1 - j0, a->k, xb, (size_t)a->k, w, (size_t)a->k, a->bias ? a->bias + j0 : NULL,
                                    a->accumulate, c->y + i0 * c->ldy + j0, c->ldy)) {
                fused_region(c, l, i0, a->m, j0, j1); /* the rest of this column block */
                fused_region(c, l, 0, a->m, j1, a->n); /* and the column blocks after it */
                k_ctx_release(ctx, mark);
                return true;
            }
        }
    }
    k_ctx_release(ctx, mark);
    return true;
}

// ---- BF16DOT: bf16 weights, bf16 dot products, any m ------------------------------------------

/* Every x row rounded to bf16 once (zero-padded to 32), then register tiles of 4 weight rows ×
 * 4 x rows (k_cpu_bf16_dot_tile_x86), weight rows split over threads as ROWS does. Returns false
 * (having done nothing) when the scratch cannot be allocated. */
static bool run_bf16dot(k_ctx_t *ctx, const mm_ctx *c, const k_matmul_launch *l) {
    const k_matmul_args *a = c->a;
    const size_t kp = (size_t)(a->k + 31) / 32 * 32;
    size_t mark = k_ctx_mark(ctx);
    uint16_t *xb = k_ctx_alloc(ctx, k_matmul_plan_scratch(a, l)); /* [m, kp] */
    if (!xb) return false;
    for (int i = 0; i < a->m; i++) {
        f32_to_bf16_n(xb + (size_t)i * kp, c->x + (size_t)i * c->ldx, (size_t)a->k);
        memset(xb + (size_t)i * kp + a->k, 0, (kp - (size_t)a->k) * 2);
    }
    const uint16_t *w = a->w;
    int n_threads = l->n_threads;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
    for (int s = 0; s < n_threads; s++) {
        int j0 = (int)((long long)a->n * s / n_threads), j1 = (int)((long long)a->n * (s + 1) / n_threads);
        float dot[16];
        for (int j = j0; j < j1; j += 4) {
            const int nw = j + 4 <= j1 ? 4 : j1 - j;
            for (int i = 0; i < a->m; i += 4) {
                const int nx = i + 4 <= a->m ? 4 : a->m - i;
                k_cpu_bf16_dot_tile_x86(w + (size_t)j * a->k, a->k, nw, xb + (size_t)i * kp, kp, nx, dot, 4);
                for (int r = 0; r < nx; r++)
                    for (int jj = 0; jj < nw; jj++) rows_store(c, i + r, j + jj, dot[r * 4 + jj]);
            }
        }
    }
    k_ctx_release(ctx, mark);
    return true;
}

int k_matmul_cpu_planned(k_ctx_t *ctx, const k_matmul_args *a, const k_matmul_launch *l) {
    k_cpu_blas_init();
    mm_ctx c = {a, a->x, a->y, a->ldx ? (size_t)a->ldx : (size_t)a->k, a->ldy ? (size_t)a->ldy : (size_t)a->n};
    switch (l->variant) {
    case K_MATMUL_SGEMM: /* the AVX2 tiles beat the library's sgemm by 1-13% where they run (gemm_x86.h) */
        if (l->simd && k_cpu_gemm_tiles_usable() && run_tiles(ctx, &c, l)) break;
        run_sgemm(&c, l);
        break;
    case K_MATMUL_FUSED: run_fused(&c, l); break;
    case K_MATMUL_ROWS: run_rows(ctx, &c, l); break;
    case K_MATMUL_CONVERT:
        if (l->simd && k_cpu_gemm_tiles_usable() && run_tiles(ctx, &c, l)) break;
        if (!run_convert(ctx, &c, l)) run_fused(&c, l);
        break;
    case K_MATMUL_BF16:
        if (!run_bf16(ctx, &c, l)) run_fused(&c, l);
        break;
    case K_MATMUL_BF16DOT:
        if (!run_bf16dot(ctx, &c, l)) run_fused(&c, l);
        break;
    case K_MATMUL_Q8: return k_matmul_q8_cpu(ctx, a, l, k_matmul_q8_best_isa()); /* matmul_q8.c */
    }
    return HIRED_OK;
}

static void plan(const k_matmul_args *a, k_matmul_launch *l) {
    k_matmul_plan(a, k_cpu_max_threads(), k_cpu_have_f16c(), k_cpu_have_bf16_gemm() && k_cpu_have_bf16_dot(), l);
}

int k_matmul_cpu(k_ctx_t *ctx, const k_matmul_args *a) {
    k_matmul_launch l;
    plan(a, &l);
    return k_matmul_cpu_planned(ctx, a, &l);
}

size_t k_matmul_cpu_workspace(const k_matmul_args *a) {
    k_matmul_launch l;
    plan(a, &l);
    return k_matmul_plan_scratch(a, &l);
}
