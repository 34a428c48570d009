/* matmul.c — argument checking, the dispatch entry and the CPU plan for k_matmul (see
 * matmul.h). Plain C, shared by every backend. */
#include "matmul.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "mem.h"
#include "q8.h"
#include "registry.h"
#include "gemm_x86.h" /* the AVX2 GEMM tiles' packing, for their scratch */
#include "simd_x86.h" /* the AVX2 tiles' blocking, for their scratch */

int k_matmul_check(const k_matmul_args *a, char *err) {
    if (!a) return hired_errf(err, HIRED_EINVAL, "matmul: NULL args");
    if (a->m <= 0 || a->n <= 0 || a->k <= 0)
        return hired_errf(err, HIRED_EINVAL, "matmul: sizes must be positive (m=%d n=%d k=%d)", a->m, a->n, a->k);
    if (!a->x || !a->w || !a->y) return hired_errf(err, HIRED_EINVAL, "matmul: x, w and y must not be NULL");
    if (a->w_dtype != TENSOR_DTYPE_F32 && a->w_dtype != TENSOR_DTYPE_F16 && a->w_dtype != TENSOR_DTYPE_BF16 &&
        a->w_dtype != TENSOR_DTYPE_Q8)
        return hired_errf(err, HIRED_EINVAL, "matmul: unknown weight dtype %d", (int)a->w_dtype);
    if (a->ldx != 0 && a->ldx < a->k)
        return hired_errf(err, HIRED_EINVAL, "matmul: ldx %d is smaller than k %d", a->ldx, a->k);
    if (a->ldy != 0 && a->ldy < a->n)
        return hired_errf(err, HIRED_EINVAL, "matmul: ldy %d is smaller than n %d", a->ldy, a->n);
    if (!k_dtype_known(a->dtype)) return hired_errf(err, HIRED_EINVAL, "matmul: unknown activation dtype %d", (int)a->dtype);
    return HIRED_OK;
}

int k_matmul(k_ctx_t *ctx, const k_matmul_args *a) { return k_run(ctx, K_OP_MATMUL, a); }

static pthread_once_t prec_once = PTHREAD_ONCE_INIT;
static k_matmul_prec default_prec = K_MATMUL_PREC_F32;

static void read_default_prec(void) {
    const char *e = getenv("HIRED_MATMUL_PRECISION");
    if (e && !strcmp(e, "bf16")) default_prec = K_MATMUL_PREC_BF16;
}

k_matmul_prec k_matmul_default_prec(void) {
    pthread_once(&prec_once, read_default_prec);
    return default_prec;
}

k_matmul_prec k_matmul_prec_of(const k_matmul_args *a) {
    return a->prec == K_MATMUL_PREC_DEFAULT ? k_matmul_default_prec() : a->prec;
}

/* Below this many flops a GEMM runs on one thread (thread start-up would dominate). */
#define SERIAL_FLOPS (1 << 22)
/* Scratch for converted weight rows, in floats (16 MiB: whole CLIP matrices fit, and glibc
 * keeps blocks of this size on the heap between calls instead of mapping them afresh). */
#define CONVERT_SCRATCH_FLOATS (1 << 22)

/* BF16: bytes of bf16 x rows and of bf16 weight rows per scratch block. */
#define BF16_X_BYTES (8 << 20)
#define BF16_W_BYTES (16 << 20)

void k_matmul_plan(const k_matmul_args *a, int max_threads, bool have_simd, bool have_bf16, k_matmul_launch *l) {
    if (max_threads < 1) max_threads = 1;
    /* float32 weights: the SIMD dots at decode shapes (FUSED below), the AVX2 GEMM tiles
     * under SGEMM where the backend has them; row-invariant calls keep their own kernel */
    l->simd = have_simd && !(a->w_dtype == TENSOR_DTYPE_F32 && a->row_invariant);
    double flops = 2.0 * a->m * a->n * a->k;
    l->n_threads = flops < SERIAL_FLOPS ? 1 : max_threads;
    l->split_m = false;
    l->block_n = a->n;
    l->block_m = a->m;
    if (a->w_dtype == TENSOR_DTYPE_Q8) {
        /* like ROWS: weight rows split over threads, x quantised a group of rows at a time */
        l->variant = K_MATMUL_Q8;
        l->simd = false;
        if ((double)a->n * a->k < 65536.0) l->n_threads = 1;
        if (l->n_threads > a->n) l->n_threads = a->n;
        l->block_m = a->m < K_MATMUL_Q8_BLOCK_M ? a->m : K_MATMUL_Q8_BLOCK_M;
        return;
    }
    if (have_bf16 && a->w_dtype == TENSOR_DTYPE_BF16 && k_matmul_prec_of(a) == K_MATMUL_PREC_BF16 &&
        (a->row_invariant || a->m <= K_MATMUL_FUSED_MAX_M)) {
        /* like ROWS: weight rows split over threads, one arithmetic for every m */
        l->variant = K_MATMUL_BF16DOT;
        l->simd = false;
        if ((double)a->n * a->k < 65536.0) l->n_threads = 1;
        if (l->n_threads > a->n) l->n_threads = a->n;
        return;
    }
    if (a->row_invariant) {
        /* weight rows split over threads: a y element is one dot product whichever thread runs it */
        l->variant = K_MATMUL_ROWS;
        if ((double)a->n * a->k < 65536.0) l->n_threads = 1;
        if (l->n_threads > a->n) l->n_threads = a->n;
        return;
    }
    if (a->w_dtype == TENSOR_DTYPE_F32 && !(l->simd && a->m <= K_MATMUL_FUSED_MAX_M)) {
        l->variant = K_MATMUL_SGEMM;
        l->split_m = a->m > a->n;
        return;
    }
    if (a->m <= K_MATMUL_FUSED_MAX_M) {
        /* memory-bound: every thread streams its share of w's rows once. With float32 weights
         * (SIMD only) the library's sgemm reads them at a fraction of that rate for m = 2..8
         * (hired-bench-gemm, "llm dec m=4": 20-39 GFLOP/s for oneDNN, OpenBLAS and BLIS on an
         * AVX2 Zen 3, where streaming the 64 MB of weights once allows about 90) */
        l->variant = K_MATMUL_FUSED;
        if ((double)a->n * a->k < 65536.0) l->n_threads = 1;
        if (l->n_threads > a->n) l->n_threads = a->n;
        return;
    }
    if (have_bf16 && k_matmul_prec_of(a) == K_MATMUL_PREC_BF16) {
        /* oneDNN threads the whole product itself; scratch bounded by blocking m and (F16) n */
        l->variant = K_MATMUL_BF16;
        int bm = (int)(BF16_X_BYTES / 2 / a->k);
        bm = bm < 16 ? 16 : bm / 16 * 16;
        l->block_m = bm < a->m ? bm : a->m;
        if (a->w_dtype == TENSOR_DTYPE_F16) {
            int bn = (int)(BF16_W_BYTES / 2 / a->k);
            bn = bn < 16 ? 16 : bn / 16 * 16;
            l->block_n = bn < a->n ? bn : a->n;
        }
        return;
    }
    /* convert as many rows as fit, then one threaded sgemm per block, so x is packed by BLAS
     * once per block rather than once per small per-thread block */
    l->variant = K_MATMUL_CONVERT;
    int bn = CONVERT_SCRATCH_FLOATS / a->k;
    bn = bn / 16 * 16;
    if (bn < 16) bn = 16;
    if (bn > a->n) bn = a->n;
    l->block_n = bn;
    l->split_m = a->m > bn;
}

size_t k_matmul_plan_scratch(const k_matmul_args *a, const k_matmul_launch *l) {
    if (l->variant == K_MATMUL_Q8) return (size_t)l->block_m * k_q8_act_row_bytes(a->k);
    if (l->variant == K_MATMUL_BF16DOT) return (size_t)a->m * (size_t)((a->k + 31) / 32 * 32) * 2;
    if (l->variant == K_MATMUL_ROWS && l->simd) /* per thread the dots of K_CPU_LIKE1_J weight
                                                  * rows; x packed by k block (kernels/cpu/matmul.c
                                                  * allocates exactly these two) */
        return K_CPU_LIKE1_J * (size_t)a->m * (size_t)l->n_threads * sizeof(float) + 64 +
               (size_t)a->m * k_cpu_like1_pack_floats(a->k) * sizeof(float) + 64;
    if (l->variant == K_MATMUL_BF16)
        return (size_t)l->block_m * a->k * 2 + (a->w_dtype == TENSOR_DTYPE_F16 ? (size_t)l->block_n * a->k * 2 : 0);
    if (l->variant == K_MATMUL_SGEMM && l->simd) /* the GEMM tiles' packing, where they run */
        return k_cpu_gemm_tiles_pack_floats() * (size_t)l->n_threads * sizeof(float);
    if (l->variant == K_MATMUL_CONVERT) { /* the convert block, or the GEMM tiles' packing where they run */
        size_t convert = (size_t)l->block_n * a->k * sizeof(float),
               tiles = k_cpu_gemm_tiles_pack_floats() * (size_t)l->n_threads * sizeof(float);
        return convert > tiles ? convert : tiles;
    }
    return 0;
}

double k_matmul_rate(k_ctx_t *ctx, int m, int n, int k, tensor_dtype_t w_dtype, k_matmul_prec prec, int reps) {
    k_device_t *d = k_ctx_device(ctx);
    size_t nx = (size_t)m * k, nw = (size_t)n * k;
    float *hx = mem_alloc(nx * sizeof(float)), *hw = mem_alloc(nw * sizeof(float));
    const size_t wbytes = w_dtype == TENSOR_DTYPE_Q8 ? k_q8_bytes(n, k) : nw * tensor_dtype_size(w_dtype);
    void *hw_typed = mem_alloc(wbytes);
    float *x = k_device_alloc(d, nx * sizeof(float)), *y = k_device_alloc(d, (size_t)m * n * sizeof(float));
    void *w = k_device_alloc(d, wbytes);
    double best = 0;
    if (hx && hw && hw_typed && x && y && w) {
        uint32_t s = 12345;
        for (size_t i = 0; i < nx; i++) hx[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        for (size_t i = 0; i < nw; i++) hw[i] = (float)((s = s * 1664525u + 1013904223u) >> 8) / 16777216.0f - 0.5f;
        if (w_dtype == TENSOR_DTYPE_Q8)
            k_q8_quantize(hw, TENSOR_DTYPE_F32, n, k, hw_typed);
        else
            tensor_convert_from_f32(hw_typed, hw, w_dtype, nw);
        k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = w, .w_dtype = w_dtype, .y = y, .prec = prec};
        if (!k_ctx_upload(ctx, x, hx, nx * sizeof(float)) &&
            !k_ctx_upload(ctx, w, hw_typed, wbytes) && !k_matmul(ctx, &a)) {
            double t_best = 1e30;
            for (int r = 0; r < reps; r++) {
                double t0 = clock_ms();
                if (k_matmul(ctx, &a)) break;
                double t = (clock_ms() - t0) / 1e3;
                if (t < t_best) t_best = t;
            }
            if (t_best < 1e29) best = 2.0 * m * n * k / t_best * 1e-9;
        }
    }
    k_device_free(d, x);
    k_device_free(d, y);
    k_device_free(d, w);
    mem_free(hx);
    mem_free(hw);
    mem_free(hw_typed);
    return best;
}
