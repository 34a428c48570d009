/* test_k_matmul — k_matmul_cpu against k_matmul_ref on shapes that take every plan branch
 * (SGEMM split over rows / columns, serial and threaded; FUSED for m ≤ 8, float32 weights too; CONVERT with several
 * blocks; the fused fallback when scratch allocation fails), with ragged sizes, padded strides,
 * bias on/off, accumulate on/off and F32/F16/BF16 weights, under each GEMM library (gemm.h:
 * oneDNN, OpenBLAS), and with the AVX2 GEMM tiles (gemm_x86.h) where the CPU has them.
 * Tolerance: NMSE ≤ 1e-10 (matmul.h).
 * Plus a hand-computed product, the plan's decisions, and _check's rejections. */
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "err.h"
#include "gemm.h"
#include "gemm_x86.h"
#include "half.h"
#include "kverify.h"
#include "matmul.h"
#include "mem.h"
#include "ktest.h"
#include "simd_x86.h"
#include "test.h"

/* Weights of dtype dt holding the values of w32 (rounded to dt first, so w32 is updated to
 * the exact values the kernel will see). Caller frees. */
static void *make_weights(float *w32, size_t n, tensor_dtype_t dt) {
    if (dt == TENSOR_DTYPE_F32) {
        void *w = malloc(n * 4);
        memcpy(w, w32, n * 4);
        return w;
    }
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        h[i] = dt == TENSOR_DTYPE_F16 ? f32_to_half(w32[i]) : f32_to_bf16(w32[i]);
        w32[i] = dt == TENSOR_DTYPE_F16 ? half_to_f32(h[i]) : bf16_to_f32(h[i]);
    }
    return h;
}

typedef struct {
    int m, n, k, pad_x, pad_y;
    bool bias, acc;
    tensor_dtype_t dt;
    k_matmul_prec prec; /* 0: the process default */
} mm_case;

/* Whether the kernel runs this case with bf16 products (matmul.h): BF16 precision asked, half
 * weights, more rows than the fused kernel takes, a CPU with native bf16 GEMM. */
static bool native_bf16(void) { return k_cpu_have_bf16_gemm() && k_cpu_have_bf16_dot(); }

static bool takes_bf16(const mm_case *c, const k_matmul_launch *force) {
    if (force) return force->variant == K_MATMUL_BF16 || force->variant == K_MATMUL_BF16DOT;
    k_matmul_args a = {.w_dtype = c->dt, .prec = c->prec};
    return c->dt != TENSOR_DTYPE_F32 && (c->m > K_MATMUL_FUSED_MAX_M || c->dt == TENSOR_DTYPE_BF16) && native_bf16() &&
           k_matmul_prec_of(&a) == K_MATMUL_PREC_BF16;
}

static int seed = 100;
static int n_bf16_cases; /* cases that ran with bf16 products */

/* Runs one case through k_matmul_cpu, or through k_matmul_cpu_planned(ktest_ctx(), force) when force is
 * set; fail_alloc makes the kernel's scratch allocation fail. */
static void run_case_with(mm_case c, bool fail_alloc, const k_matmul_launch *force) {
    int ldx = c.k + c.pad_x, ldy = c.n + c.pad_y;
    size_t nx = (size_t)c.m * ldx, nw = (size_t)c.n * c.k, ny = (size_t)c.m * ldy;
    float *x = malloc(nx * 4), *w32 = malloc(nw * 4), *b = malloc((size_t)c.n * 4);
    float *y = malloc(ny * 4), *yr = malloc(ny * 4);
    kverify_fill(x, nx, seed++, -1, 1);
    kverify_fill(w32, nw, seed++, -1, 1);
    kverify_fill(b, (size_t)c.n, seed++, -1, 1);
    kverify_fill(y, ny, seed++, -1, 1); /* also the padding, which must survive */
    memcpy(yr, y, ny * 4);
    void *w = make_weights(w32, nw, c.dt);
    k_matmul_args a = {.m = c.m, .n = c.n, .k = c.k, .x = x, .ldx = c.pad_x ? ldx : 0, .w = w, .w_dtype = c.dt,
                       .bias = c.bias ? b : NULL, .y = y, .ldy = c.pad_y ? ldy : 0, .accumulate = c.acc,
                       .prec = c.prec};
    bool bf16 = !fail_alloc && takes_bf16(&c, force);
    float *y0 = bf16 ? malloc(ny * 4) : NULL;
    if (y0) memcpy(y0, y, ny * 4);
    char err[HIRED_ERR_LEN];
    CHECK_MSG(k_matmul_check(&a, err) == 0, "%s", err);
    if (fail_alloc) mem_fail_after(0, true);
    if (force)
        k_matmul_cpu_planned(ktest_ctx(), &a, force);
    else
        k_matmul_cpu(ktest_ctx(), &a);
    if (fail_alloc) mem_fail_after(-1, false);
    a.y = yr;
    k_matmul_ref(&a);
    char name[160];
    snprintf(name, sizeof name, "matmul m=%d n=%d k=%d ldx+%d ldy+%d bias=%d acc=%d %s%s%s%s", c.m, c.n, c.k, c.pad_x,
             c.pad_y, c.bias, c.acc, tensor_dtype_name(c.dt), fail_alloc ? " (no scratch)" : "",
             force ? (force->variant == K_MATMUL_BF16 ? " forced BF16" :
                      force->variant == K_MATMUL_BF16DOT ? " forced BF16DOT" :
                      force->variant == K_MATMUL_FUSED ? (force->simd ? " forced FUSED/simd" : " forced FUSED") :
                      force->simd ? " forced CONVERT/simd" : " forced CONVERT") : "",
             bf16 ? " (bf16 products)" : "");
    /* matmul.h: NMSE ≤ 1e-10 in float32, ≤ 1e-5 with bf16 products */
    kverify_result r = kverify_nmse(y, yr, ny, bf16 ? 1e-5 : 1e-10);
    CHECK_MSG(kverify_report(name, &r, y, yr), "%s", name);
    if (bf16) {
        /* the rounding really happened (x is not bf16-exact) and is the only difference: against
         * the reference on x and w rounded to bf16 the kernel agrees to float32 summation */
        CHECK_MSG(r.nmse > 1e-12, "%s: NMSE %.3g, no sign of bf16 rounding", name, r.nmse);
        uint16_t *wbf = malloc(nw * 2);
        for (size_t i = 0; i < nw; i++) wbf[i] = f32_to_bf16(w32[i]);
        for (size_t i = 0; i < nx; i++) x[i] = bf16_to_f32(f32_to_bf16(x[i]));
        k_matmul_args ar = a;
        ar.w = wbf;
        ar.w_dtype = TENSOR_DTYPE_BF16;
        ar.y = y0;
        k_matmul_ref(&ar);
        kverify_result r2 = kverify_nmse(y, y0, ny, 1e-10);
        char n2[200];
        snprintf(n2, sizeof n2, "%s vs bf16-rounded reference", name);
        CHECK_MSG(kverify_report(n2, &r2, y, y0), "%s", n2);
        free(wbf);
        n_bf16_cases++;
    }
    free(y0);
    /* padding columns untouched */
    int pad_ok = 1;
    for (int i = 0; i < c.m; i++)
        for (int j = c.n; j < ldy; j++) pad_ok &= y[(size_t)i * ldy + j] == yr[(size_t)i * ldy + j];
    CHECK_MSG(pad_ok, "%s: padding changed", name);
    free(x), free(w32), free(b), free(y), free(yr), free(w);
}

static void run_case(mm_case c, bool fail_alloc) { run_case_with(c, fail_alloc, NULL); }

/* Whether this CPU may run the AVX2+FMA+F16C kernels (the same CPUID test the kernels make). */
static bool cpu_has_simd(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C); /* clang has no "f16c" name */
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
    return false;
#endif
}

/* Every half-weight variant on ragged shapes, with and without the x86 SIMD kernels, whatever the
 * plan would pick: FUSED for a large m (groups of 8 rows), CONVERT for m = 1, odd block sizes. */
static void test_forced_variants(void) {
    /* BF16: x blocks of 16 rows and (F16) w blocks of 16/32 rows, ragged edges, bias and
     * accumulate through oneDNN's post-op; only where the CPU has native bf16 */
    if (k_cpu_have_bf16_gemm()) {
        const mm_case bshapes[] = {{19, 33, 100, 0, 3, true, false, 0, 0}, {40, 70, 64, 2, 0, false, true, 0, 0},
                                   {17, 48, 1025, 1, 1, true, true, 0, 0}, {9, 1, 7, 0, 0, true, false, 0, 0}};
        const tensor_dtype_t bdts[] = {TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
        for (size_t s = 0; s < ARRAY_LEN(bshapes); s++)
            for (size_t d = 0; d < ARRAY_LEN(bdts); d++) {
                mm_case c = bshapes[s];
                c.dt = bdts[d];
                c.prec = K_MATMUL_PREC_BF16;
                k_matmul_launch l = {.variant = K_MATMUL_BF16, .n_threads = 1 + (int)(s % 2), .block_m = 16,
                                     .block_n = 16 + 16 * (int)(s % 2), .simd = cpu_has_simd()};
                run_case_with(c, false, &l);
            }
    }
    /* BF16DOT: bf16 weights, bf16 dot products in register tiles; ragged m, n and k (tails of
     * the 32-element steps, tiles of fewer than 4 rows) */
    if (native_bf16()) {
        const mm_case dshapes[] = {{1, 67, 1025, 0, 0, true, false, 0, 0}, {3, 130, 33, 2, 1, false, true, 0, 0},
                                   {13, 9, 64, 0, 3, true, true, 0, 0},   {1, 1, 7, 0, 0, false, false, 0, 0},
                                   {6, 5, 31, 1, 0, true, false, 0, 0},   {17, 70, 300, 0, 0, false, true, 0, 0}};
        for (size_t s = 0; s < ARRAY_LEN(dshapes); s++) {
            mm_case c = dshapes[s];
            c.dt = TENSOR_DTYPE_BF16;
            c.prec = K_MATMUL_PREC_BF16;
            k_matmul_launch l = {.variant = K_MATMUL_BF16DOT, .n_threads = 1 + (int)(s % 2)};
            run_case_with(c, false, &l);
        }
    }
    const mm_case shapes[] = {{1, 67, 1025, 0, 0, true, false, 0, 0},  {3, 130, 33, 2, 1, false, true, 0, 0},
                              {8, 64, 64, 0, 0, true, true, 0, 0},     {19, 33, 100, 0, 3, true, false, 0, 0},
                              {1, 1, 7, 0, 0, false, false, 0, 0},     {2, 5, 17, 1, 0, true, false, 0, 0}};
    const k_matmul_variant variants[] = {K_MATMUL_FUSED, K_MATMUL_CONVERT};
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    bool have_simd = cpu_has_simd();
    for (size_t s = 0; s < ARRAY_LEN(shapes); s++)
        for (size_t v = 0; v < ARRAY_LEN(variants); v++)
            for (size_t d = 0; d < ARRAY_LEN(dts); d++)
                for (int f = 0; f < 2; f++) {
                    if (f && !have_simd) continue;
                    mm_case c = shapes[s];
                    c.dt = dts[d];
                    k_matmul_launch l = {.variant = variants[v], .n_threads = 1 + (int)(s % 2), .block_n = 16 + 16 * (int)(s % 3),
                                         .split_m = s % 3 == 1, .simd = f};
                    run_case_with(c, false, &l);
                }
    /* float32 weights through the SIMD dots (FUSED plans them only with the SIMD kernels): one
     * row, pairs of weight rows for 2-4 rows, single rows for 5-8, groups of 8 beyond */
    if (have_simd)
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            mm_case c = shapes[s];
            c.dt = TENSOR_DTYPE_F32;
            k_matmul_launch l = {.variant = K_MATMUL_FUSED, .n_threads = 1 + (int)(s % 2), .simd = true};
            run_case_with(c, false, &l);
        }
}

static void test_against_ref(void) {
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F32, TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    const mm_case shapes[] = {
        {1, 1, 1, 0, 0, false, false, 0, 0},     {3, 33, 64, 0, 0, true, false, 0, 0},  {1, 1025, 1025, 0, 0, true, false, 0, 0},
        {8, 300, 1025, 5, 3, false, true, 0, 0}, {9, 100, 300, 0, 0, true, true, 0, 0}, {33, 1025, 64, 7, 0, true, false, 0, 0},
        {577, 64, 33, 0, 1, false, false, 0, 0}, {64, 1025, 96, 0, 0, true, true, 0, 0}, {2, 17, 3, 1, 1, true, true, 0, 0},
        {1, 3000, 77, 3, 0, true, true, 0, 0},   {1, 3000, 77, 0, 0, false, true, 0, 0}, /* decode: sgemv for F32 */
    };
    for (size_t d = 0; d < ARRAY_LEN(dts); d++)
        for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
            mm_case c = shapes[s];
            c.dt = dts[d];
            run_case(c, false);
        }
    /* BF16 precision by the plan: bf16 products for m > 8 where the CPU has them, the exact
     * fused kernel for decode shapes, float32 always for F32 weights */
    const mm_case bshapes[] = {{1, 3000, 77, 3, 0, true, true, 0, 0},     {8, 300, 1025, 5, 3, false, true, 0, 0},
                               {33, 1025, 64, 7, 0, true, false, 0, 0},  {577, 64, 33, 0, 1, false, false, 0, 0},
                               {64, 1025, 96, 0, 0, true, true, 0, 0}};
    for (size_t d = 0; d < ARRAY_LEN(dts); d++)
        for (size_t s = 0; s < ARRAY_LEN(bshapes); s++) {
            mm_case c = bshapes[s];
            c.dt = dts[d];
            c.prec = K_MATMUL_PREC_BF16;
            run_case(c, false);
        }
    run_case((mm_case){33, 1025, 64, 0, 0, true, true, TENSOR_DTYPE_BF16, K_MATMUL_PREC_BF16}, true); /* no scratch: fused */
    /* without scratch the CONVERT plan falls back to the fused kernel (in groups of 8 rows) */
    run_case((mm_case){33, 1025, 64, 0, 0, true, true, TENSOR_DTYPE_F16, 0}, true);
    run_case((mm_case){64, 300, 96, 3, 0, false, false, TENSOR_DTYPE_BF16, 0}, true);
}

static void test_known(void) {
    /* y = x·wᵀ + b with x = [[1,2],[3,4]], w = [[1,0],[1,1],[0,2]], b = [10,20,30] */
    float x[4] = {1, 2, 3, 4}, w[6] = {1, 0, 1, 1, 0, 2}, b[3] = {10, 20, 30}, y[6];
    k_matmul_args a = {.m = 2, .n = 3, .k = 2, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_F32, .bias = b, .y = y};
    k_matmul_cpu(ktest_ctx(), &a);
    const float want[6] = {11, 23, 34, 13, 27, 38};
    for (int i = 0; i < 6; i++) CHECK_NEAR(y[i], want[i], 0);
    a.accumulate = true;
    k_matmul_cpu(ktest_ctx(), &a);
    for (int i = 0; i < 6; i++) CHECK_NEAR(y[i], 2 * want[i], 0);
    uint16_t wh[6];
    for (int i = 0; i < 6; i++) wh[i] = f32_to_half(w[i]);
    a = (k_matmul_args){.m = 2, .n = 3, .k = 2, .x = x, .w = wh, .w_dtype = TENSOR_DTYPE_F16, .bias = b, .y = y};
    k_matmul_cpu(ktest_ctx(), &a);
    for (int i = 0; i < 6; i++) CHECK_NEAR(y[i], want[i], 0);
}

static void test_plan(void) {
    k_matmul_launch l;
    k_matmul_args a = {.m = 577, .n = 4096, .k = 1024, .w_dtype = TENSOR_DTYPE_F32};
    k_matmul_plan(&a, 2, false, false, &l);
    CHECK(l.variant == K_MATMUL_SGEMM && !l.split_m && l.n_threads == 2);
    a.n = 64; /* tall: split the rows */
    k_matmul_plan(&a, 4, false, false, &l);
    CHECK(l.variant == K_MATMUL_SGEMM && l.split_m && l.n_threads == 4);
    a = (k_matmul_args){.m = 2, .n = 3, .k = 4, .w_dtype = TENSOR_DTYPE_F32};
    k_matmul_plan(&a, 8, false, false, &l);
    CHECK_EQ_INT(l.n_threads, 1); /* tiny: serial */
    a = (k_matmul_args){.m = 1, .n = 32064, .k = 4096, .w_dtype = TENSOR_DTYPE_F16};
    k_matmul_plan(&a, 2, false, false, &l);
    CHECK(l.variant == K_MATMUL_FUSED && l.n_threads == 2 && !l.simd);
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_FUSED && l.simd);
    a.w_dtype = TENSOR_DTYPE_BF16;
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_FUSED && l.simd);
    a.w_dtype = TENSOR_DTYPE_F32; /* decode shapes stream float32 weights through the SIMD dots */
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_FUSED && l.simd && l.n_threads == 2);
    k_matmul_plan(&a, 2, false, false, &l); /* without them BLAS does its own */
    CHECK(l.variant == K_MATMUL_SGEMM && !l.simd);
    a.m = K_MATMUL_FUSED_MAX_M;
    a.row_invariant = true; /* a batched step keeps the row-invariant kernel */
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_ROWS && !l.simd);
    a.row_invariant = false;
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_FUSED && l.simd);
    a.m = K_MATMUL_FUSED_MAX_M + 1; /* more rows: the library, or the AVX2 tiles where they run */
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_SGEMM && l.simd);
    CHECK(k_matmul_plan_scratch(&a, &l) == k_cpu_gemm_tiles_pack_floats() * 2 * sizeof(float));
    a.m = K_MATMUL_FUSED_MAX_M + 1;
    a.w_dtype = TENSOR_DTYPE_BF16;
    k_matmul_plan(&a, 2, false, false, &l);
    CHECK(l.variant == K_MATMUL_CONVERT && l.block_n % 16 == 0 && l.block_n >= 16 && l.block_n <= a.n);
    CHECK((size_t)l.block_n * a.k <= (1u << 22)); /* scratch budget */
    a = (k_matmul_args){.m = 2885, .n = 4096, .k = 1024, .w_dtype = TENSOR_DTYPE_F16};
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_CONVERT && l.block_n == 4096 && l.simd && !l.split_m); /* whole CLIP fc1 at once */
    a = (k_matmul_args){.m = 512, .n = 14336, .k = 4096, .w_dtype = TENSOR_DTYPE_BF16};
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK(l.variant == K_MATMUL_CONVERT && l.block_n == 1024 && l.simd && l.n_threads == 2);
    k_matmul_plan(&a, 2, false, false, &l);
    CHECK(!l.simd);
    a = (k_matmul_args){.m = 40, .n = 3, .k = 1 << 20, .w_dtype = TENSOR_DTYPE_F16};
    k_matmul_plan(&a, 2, false, false, &l);
    CHECK(l.variant == K_MATMUL_CONVERT && l.block_n == 3 && l.split_m); /* rows longer than the budget */
    a = (k_matmul_args){.m = 20, .n = 5, .k = 3, .w_dtype = TENSOR_DTYPE_F16};
    k_matmul_plan(&a, 2, false, false, &l);
    CHECK(l.variant == K_MATMUL_CONVERT && l.block_n == 5 && l.n_threads == 1);
    /* BF16 precision: oneDNN's bf16 matmul for m > 8 where the CPU has it, else as before */
    a = (k_matmul_args){.m = 2900, .n = 11008, .k = 4096, .w_dtype = TENSOR_DTYPE_F16, .prec = K_MATMUL_PREC_BF16};
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_BF16 && l.block_m == 1024 && l.block_n == 2048);
    CHECK(k_matmul_plan_scratch(&a, &l) == (size_t)(1024 + 2048) * 4096 * 2);
    a.w_dtype = TENSOR_DTYPE_BF16; /* weights used in place: no weight block */
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_BF16 && l.block_n == a.n && k_matmul_plan_scratch(&a, &l) == (size_t)1024 * 4096 * 2);
    a.m = 577;
    a.k = 1024;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_BF16 && l.block_m == 577);
    k_matmul_plan(&a, 2, true, false, &l); /* no native bf16 */
    CHECK(l.variant == K_MATMUL_CONVERT);
    a.prec = K_MATMUL_PREC_F32;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_CONVERT);
    a.prec = K_MATMUL_PREC_BF16;
    a.m = K_MATMUL_FUSED_MAX_M;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_BF16DOT && l.n_threads == 2); /* BF16 weights: bf16 dot products for decode too */
    CHECK(k_matmul_plan_scratch(&a, &l) == (size_t)K_MATMUL_FUSED_MAX_M * 1024 * 2);
    a.k = 1000; /* x rows padded to 32 */
    CHECK(k_matmul_plan_scratch(&a, &l) == (size_t)K_MATMUL_FUSED_MAX_M * 1024 * 2);
    a.k = 1024;
    a.m = 16;
    a.row_invariant = true; /* a batched decode step: the same kernel */
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_BF16DOT);
    k_matmul_plan(&a, 2, true, false, &l); /* no native bf16: the float32 row-invariant kernel */
    CHECK(l.variant == K_MATMUL_ROWS);
    a.row_invariant = false;
    a.m = K_MATMUL_FUSED_MAX_M;
    a.w_dtype = TENSOR_DTYPE_F16; /* F16 weights keep the exact fused kernel at decode shapes */
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_FUSED);
    a.w_dtype = TENSOR_DTYPE_BF16;
    a.prec = K_MATMUL_PREC_F32;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_FUSED);
    a.prec = K_MATMUL_PREC_BF16;
    a.m = 577;
    a.w_dtype = TENSOR_DTYPE_F32;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_SGEMM);
}


/* row_invariant: every row of a batched product has the bits of that row computed alone (m = 1,
 * row_invariant), under 1 and 2 threads' plans, for each weight dtype; with F16/BF16 weights on
 * a CPU with the AVX2 kernel they are also the bits of the default m = 1 (fused) plan — a batched
 * decode row equals a solo decode step. Against the reference within the usual tolerance. */
static void test_row_invariant(void) {
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F32, TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    /* k not a multiple of 16: the tails too; the AVX2 tiles' row groups of 3 and 2, a lone row
     * after a full group of 24 (m = 25), and an odd weight row (n = 71) */
    const int shapes[][2] = {{13, 70}, {25, 71}, {29, 71}}, k = 300;
    for (size_t d = 0; d < ARRAY_LEN(dts) * ARRAY_LEN(shapes); d++) {
        const int m = shapes[d / ARRAY_LEN(dts)][0], n = shapes[d / ARRAY_LEN(dts)][1];
        float *x = malloc((size_t)m * k * 4), *w32 = malloc((size_t)n * k * 4), *b = malloc((size_t)n * 4);
        float *y = malloc((size_t)m * n * 4), *y1 = malloc((size_t)n * 4), *yr = malloc((size_t)m * n * 4);
        kverify_fill(x, (size_t)m * k, seed++, -1, 1);
        kverify_fill(w32, (size_t)n * k, seed++, -1, 1);
        kverify_fill(b, (size_t)n, seed++, -1, 1);
        void *w = make_weights(w32, (size_t)n * k, dts[d % ARRAY_LEN(dts)]);
        k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = w, .w_dtype = dts[d % ARRAY_LEN(dts)], .bias = b, .y = y,
                           .row_invariant = true};
        CHECK_EQ_INT(k_matmul_cpu(ktest_ctx(), &a), 0);
        k_matmul_args r = a;
        r.y = yr;
        k_matmul_ref(&r);
        CHECK(kverify_nmse(y, yr, (size_t)m * n, 1e-10).ok);
        int same = 0, same_default = 0;
        for (int i = 0; i < m; i++) {
            k_matmul_args one = a;
            one.m = 1;
            one.x = x + (size_t)i * k;
            one.y = y1;
            k_matmul_launch l;
            k_matmul_plan(&one, i % 2 ? 2 : 1, cpu_has_simd(), false, &l);
            CHECK(l.variant == K_MATMUL_ROWS);
            CHECK_EQ_INT(k_matmul_cpu_planned(ktest_ctx(), &one, &l), 0);
            same += !memcmp(y1, y + (size_t)i * n, (size_t)n * 4);
            one.row_invariant = false;
            CHECK_EQ_INT(k_matmul_cpu(ktest_ctx(), &one), 0);
            same_default += !memcmp(y1, y + (size_t)i * n, (size_t)n * 4);
        }
        CHECK_EQ_INT(same, m);
        if (dts[d % ARRAY_LEN(dts)] != TENSOR_DTYPE_F32 && cpu_has_simd()) CHECK_EQ_INT(same_default, m);
        if (dts[d % ARRAY_LEN(dts)] == TENSOR_DTYPE_BF16 && native_bf16()) {
            /* BF16 precision: bf16 dot products, batched rows = solo rows (m = 1, either plan) */
            a.prec = K_MATMUL_PREC_BF16;
            CHECK_EQ_INT(k_matmul_cpu(ktest_ctx(), &a), 0);
            kverify_result rb = kverify_nmse(y, yr, (size_t)m * n, 1e-5);
            CHECK(rb.ok && rb.nmse > 1e-12); /* bf16 rounding happened, within matmul.h's bound */
            int same_bf16 = 0;
            for (int i = 0; i < m; i++) {
                k_matmul_args one = a;
                one.m = 1;
                one.x = x + (size_t)i * k;
                one.y = y1;
                one.row_invariant = i % 2;
                k_matmul_launch l;
                k_matmul_plan(&one, i % 3 ? 2 : 1, cpu_has_simd(), true, &l);
                CHECK(l.variant == K_MATMUL_BF16DOT);
                CHECK_EQ_INT(k_matmul_cpu_planned(ktest_ctx(), &one, &l), 0);
                same_bf16 += !memcmp(y1, y + (size_t)i * n, (size_t)n * 4);
            }
            CHECK_EQ_INT(same_bf16, m);
        }
        free(w);
        free(x), free(w32), free(b), free(y), free(y1), free(yr);
    }
}

static void test_check(void) {
    float x[4] = {0}, y[4];
    char err[HIRED_ERR_LEN];
    k_matmul_args good = {.m = 2, .n = 2, .k = 2, .x = x, .w = x, .w_dtype = TENSOR_DTYPE_F32, .y = y};
    CHECK_EQ_INT(k_matmul_check(&good, err), 0);
    CHECK_EQ_INT(k_matmul_check(NULL, err), HIRED_EINVAL);
    k_matmul_args a = good;
    a.m = 0;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "m=0") != NULL);
    a = good, a.k = -1;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    a = good, a.x = NULL;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    a = good, a.w = NULL;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    a = good, a.ldx = 1;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "ldx") != NULL);
    a = good, a.ldy = 1;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "ldy") != NULL);
    a = good, a.w_dtype = (tensor_dtype_t)7;
    CHECK_EQ_INT(k_matmul_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "dtype") != NULL);
    CHECK_EQ_INT(k_matmul_check(&a, NULL), HIRED_EINVAL); /* err may be NULL */
}

/* The GEMM family follows the CPU's features (gemm.h): oneDNN where its JIT GEMM runs (AVX2 or
 * better), OpenBLAS otherwise, unless HIRED_GEMM names one; the description names it. */
static void test_family_choice(void) {
    const char *env = getenv("HIRED_GEMM");
    k_gemm_family want = cpu_has_simd() ? K_GEMM_ONEDNN : K_GEMM_OPENBLAS;
    if (env && !strcmp(env, "openblas")) want = K_GEMM_OPENBLAS;
    if (env && !strcmp(env, "onednn")) want = K_GEMM_ONEDNN;
    CHECK_EQ_INT((int)k_cpu_gemm_family_id(), (int)want);
    const char *d = k_cpu_gemm_family();
    CHECK_MSG(strstr(d, want == K_GEMM_ONEDNN ? "oneDNN " : "OpenBLAS ") == d, "family description '%s'", d);
    CHECK(!k_cpu_gemm_force(K_GEMM_FAMILY_COUNT));
}

/* The AVX2 GEMM tiles (gemm_x86.h), which run the CONVERT plan on CPUs with AVX2 and without
 * AVX-512: ragged shapes across every blocking edge against the reference (the run_case
 * tolerance), a row's bits independent of m, of its place in the call and of the thread count,
 * and a sign that the tiles, not the library path, produced them. */
static void test_gemm_tiles(void) {
    if (!k_cpu_gemm_tiles_usable()) {
        fprintf(stderr, "no AVX2 GEMM tiles on this CPU: their tests do not run here\n");
        return;
    }
    /* k across K_GEMM_KC (256) and not a multiple of 8; n across K_GEMM_NC (256) per thread and
     * not a multiple of 16; m across K_GEMM_MC (96) and not a multiple of 6 */
    const mm_case shapes[] = {{9, 17, 5, 0, 0, true, false, 0, 0},       {13, 33, 300, 2, 1, false, true, 0, 0},
                              {100, 530, 513, 0, 3, true, true, 0, 0},   {97, 16, 256, 1, 0, false, false, 0, 0},
                              {200, 70, 1025, 0, 0, true, false, 0, 0},  {10, 1, 7, 0, 0, true, true, 0, 0}};
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16, TENSOR_DTYPE_F32};
    for (size_t s = 0; s < ARRAY_LEN(shapes); s++)
        for (size_t d = 0; d < ARRAY_LEN(dts); d++) {
            mm_case c = shapes[s];
            c.dt = dts[d];
            run_case(c, false);
        }
    /* bits: rows 37..49 of a 100-row call equal the same rows computed alone, on 1 and 2 threads,
     * and differ from the library path somewhere (its sums run in another order) */
    const int m = 100, n = 300, k = 1025, r0 = 37, mr = 13;
    float *x = malloc((size_t)m * k * 4), *w32 = malloc((size_t)n * k * 4), *b = malloc((size_t)n * 4);
    float *y = malloc((size_t)m * n * 4), *y1 = malloc((size_t)mr * n * 4), *yl = malloc((size_t)m * n * 4);
    kverify_fill(x, (size_t)m * k, 7, -1, 1);
    kverify_fill(w32, (size_t)n * k, 8, -1, 1);
    kverify_fill(b, (size_t)n, 9, -1, 1);
    void *w = make_weights(w32, (size_t)n * k, TENSOR_DTYPE_F16);
    k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_F16, .bias = b, .y = y};
    k_matmul_launch l;
    k_matmul_plan(&a, 2, true, false, &l);
    CHECK_EQ_INT((int)l.variant, (int)K_MATMUL_CONVERT);
    k_matmul_cpu_planned(ktest_ctx(), &a, &l);
    for (int threads = 1; threads <= 2; threads++) {
        k_matmul_args one = a;
        one.m = mr, one.x = x + (size_t)r0 * k, one.y = y1;
        k_matmul_launch l1 = l;
        l1.n_threads = threads;
        k_matmul_cpu_planned(ktest_ctx(), &one, &l1);
        CHECK_MSG(!memcmp(y1, y + (size_t)r0 * n, (size_t)mr * n * 4), "tiles: rows %d..%d alone on %d thread(s) differ",
                  r0, r0 + mr - 1, threads);
    }
    CHECK(k_cpu_gemm_tiles_enable(false));
    a.y = yl;
    k_matmul_cpu_planned(ktest_ctx(), &a, &l);
    CHECK(k_cpu_gemm_tiles_enable(true));
    size_t differ = 0;
    for (size_t i = 0; i < (size_t)m * n; i++) differ += y[i] != yl[i];
    fprintf(stderr, "tiles vs library path: %zu of %d elements differ in their last bits\n", differ, m * n);
    CHECK_MSG(differ > 0, "tiles and the library path gave identical bits: did the tiles run?");
    free(x), free(w32), free(b), free(y), free(y1), free(yl), free(w);
}

int main(void) {
    test_family_choice();
    test_known();
    test_plan();
    test_check();
    /* every shape and variant with the AVX2 GEMM tiles where the CPU has them (they run the
     * CONVERT plan there), then under each GEMM library without them */
    const bool tiles = k_cpu_gemm_tiles_usable();
    fprintf(stderr, "AVX2 GEMM tiles: %s\n", tiles ? "yes" : "no (not this CPU)");
    test_gemm_tiles();
    if (tiles) {
        test_forced_variants();
        test_against_ref();
        CHECK(k_cpu_gemm_tiles_enable(false));
    }
    for (int f = 0; f < K_GEMM_FAMILY_COUNT; f++) {
        CHECK(k_cpu_gemm_force((k_gemm_family)f));
        fprintf(stderr, "gemm family %s: %s\n", k_cpu_gemm_family_name((k_gemm_family)f), k_cpu_gemm_family());
        test_known();
        test_forced_variants();
        test_against_ref();
    }
    if (tiles) CHECK(k_cpu_gemm_tiles_enable(true));
    test_row_invariant();
    fprintf(stderr, "native bf16 GEMM and dot products: %s; %d cases ran with bf16 products\n", native_bf16() ? "yes" : "no",
            n_bf16_cases);
    CHECK(!native_bf16() || n_bf16_cases > 0);
    return test_summary();
}
