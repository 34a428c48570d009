/* test_k_matmul_q8 — 8-bit weights (kernels/q8.h): the quantiser on hand-computed blocks, and
 * each CPU kernel this machine runs (AVX-512 VNNI, AVX2, portable C) against k_matmul_ref on
 * ragged shapes (k not a multiple of 32 or 64, padded strides, bias, accumulate, 1 and 2
 * threads, groups of x rows smaller than m). Tolerance: NMSE ≤ 1e-10 against the reference
 * (matmul.h: the same quantisation and exact integer block sums; only the float32 combination of
 * at most k/32 block terms differs), and the quantised activations of the kernel equal the
 * reference's (a mismatch would show as an error far above that bound).
 * Row invariance: every row of a batched product has the bits of that row computed alone, under
 * each kernel, thread count and group size, and through the default plan with and without
 * row_invariant (the Q8 plan is row-invariant whether asked or not). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "half.h"
#include "kverify.h"
#include "ktest.h"
#include "matmul.h"
#include "q8.h"
#include "registry.h"
#include "test.h"

static uint64_t seed = 900;

/* A Q8 weight [n, k] from fresh random values in [−1, 1). Caller frees. */
static void *make_q8(int n, int k) {
    float *w32 = malloc((size_t)n * k * 4);
    kverify_fill(w32, (size_t)n * k, seed++, -1, 1);
    void *w = malloc(k_q8_bytes(n, k));
    CHECK_EQ_INT(k_q8_quantize(w32, TENSOR_DTYPE_F32, n, k, w), 0);
    free(w32);
    return w;
}

/* Hand-computed blocks: scale max|w|/127, round to nearest (ties to even), padding zero. */
static void test_quantiser(void) {
    float x[40] = {0};
    x[0] = 127.0f, x[1] = -63.5f, x[2] = 0.5f, x[3] = 1.5f, x[4] = 2.5f, x[5] = -127.0f; /* d = 1 */
    x[33] = 254.0f, x[34] = 63.0f, x[35] = -127.0f;                                     /* d = 2 */
    int8_t q[64];
    float d[2];
    memset(q, 0x55, sizeof q);
    k_q8_quantize_row(x, 40, q, d);
    CHECK(d[0] == 1.0f && d[1] == 2.0f);
    CHECK_EQ_INT(q[0], 127);
    CHECK_EQ_INT(q[1], -64); /* −63.5: ties to even */
    CHECK_EQ_INT(q[2], 0);   /* 0.5 → 0 */
    CHECK_EQ_INT(q[3], 2);   /* 1.5 → 2 */
    CHECK_EQ_INT(q[4], 2);   /* 2.5 → 2 */
    CHECK_EQ_INT(q[5], -127);
    CHECK_EQ_INT(q[6], 0);
    CHECK_EQ_INT(q[33], 127);
    CHECK_EQ_INT(q[34], 32);  /* 31.5 → 32 */
    CHECK_EQ_INT(q[35], -64); /* −63.5 → −64 */
    int nonzero_pad = 0;
    for (int p = 40; p < 64; p++) nonzero_pad += q[p] != 0;
    CHECK_EQ_INT(nonzero_pad, 0);
    /* an all-zero block: scale 0, values 0 */
    float z[32] = {0};
    k_q8_quantize_row(z, 32, q, d);
    CHECK(d[0] == 0.0f && q[0] == 0 && q[31] == 0);

    /* a whole weight from F16: the layout's sizes (half scales), every scale the half nearest
     * max|w|/127 of its block, and every value within d/2 of the original plus what rounding the
     * scale to a half moves it (|q|·|d − max|w|/127| ≤ 127·2⁻¹¹·d) */
    const int n = 5, k = 100;
    float *w32 = malloc((size_t)n * k * 4), *back = malloc((size_t)k * 4);
    kverify_fill(w32, (size_t)n * k, seed++, -3, 3);
    uint16_t *h = malloc((size_t)n * k * 2);
    tensor_convert_from_f32(h, w32, TENSOR_DTYPE_F16, (size_t)n * k);
    tensor_convert_to_f32(w32, h, TENSOR_DTYPE_F16, (size_t)n * k);
    CHECK_EQ_INT((int)k_q8_row_stride(k), 128);
    CHECK_EQ_INT((int)k_q8_bytes(n, k), n * 128 + n * 4 * 2);
    void *w = malloc(k_q8_bytes(n, k));
    CHECK_EQ_INT(k_q8_quantize(h, TENSOR_DTYPE_F16, n, k, w), 0);
    const uint16_t *sc = k_q8_scales(w, n, k);
    int worst_ok = 1, scales_ok = 1;
    for (int j = 0; j < n; j++) {
        k_q8_dequantize_row(w, n, k, j, back);
        for (int b = 0; b < 4; b++) {
            float amax = 0;
            for (int p = b * 32; p < k && p < b * 32 + 32; p++) amax = fmaxf(amax, fabsf(w32[j * k + p]));
            scales_ok &= sc[j * 4 + b] == (b * 32 < k ? f32_to_half(amax / 127.0f) : 0);
        }
        for (int p = 0; p < k; p++) {
            float dj = half_to_f32(sc[j * 4 + p / 32]);
            if (fabsf(back[p] - w32[j * k + p]) > dj * (0.5f + 127.0f / 2048.0f) * (1 + 1e-6f)) worst_ok = 0;
        }
        for (int p = k; p < 128; p++) worst_ok &= k_q8_quants(w)[j * 128 + p] == 0; /* padding */
    }
    CHECK(worst_ok);
    CHECK(scales_ok);
    free(w32), free(back), free(h), free(w);
    /* k = 20: the second block of each row is all padding, scale 0 */
    float v[2 * 20];
    kverify_fill(v, 40, seed++, -1, 1);
    void *w2 = malloc(k_q8_bytes(2, 20));
    CHECK_EQ_INT(k_q8_quantize(v, TENSOR_DTYPE_F32, 2, 20, w2), 0);
    CHECK(k_q8_scales(w2, 2, 20)[1] == 0 && k_q8_scales(w2, 2, 20)[3] == 0);
    CHECK(k_q8_scales(w2, 2, 20)[0] > 0 && k_q8_scales(w2, 2, 20)[2] > 0);
    free(w2);
}

typedef struct {
    int m, n, k, pad_x, pad_y;
    bool bias, acc;
} q8_case;

/* One case under kernel isa with n_threads and a group of block_m x rows, against the reference. */
static void run_case(q8_case c, k_q8_isa isa, int n_threads, int block_m) {
    const int ldx = c.k + c.pad_x, ldy = c.n + c.pad_y;
    float *x = malloc((size_t)c.m * ldx * 4), *b = malloc((size_t)c.n * 4);
    float *y = malloc((size_t)c.m * ldy * 4), *yr = malloc((size_t)c.m * ldy * 4);
    kverify_fill(x, (size_t)c.m * ldx, seed++, -2, 2);
    kverify_fill(b, (size_t)c.n, seed++, -1, 1);
    kverify_fill(y, (size_t)c.m * ldy, seed++, -1, 1);
    memcpy(yr, y, (size_t)c.m * ldy * 4);
    void *w = make_q8(c.n, c.k);
    k_matmul_args a = {.m = c.m, .n = c.n, .k = c.k, .x = x, .ldx = ldx, .w = w, .w_dtype = TENSOR_DTYPE_Q8,
                       .bias = c.bias ? b : NULL, .y = y, .ldy = ldy, .accumulate = c.acc};
    CHECK_EQ_INT(k_matmul_check(&a, NULL), 0);
    k_matmul_launch l;
    k_matmul_plan(&a, n_threads, true, true, &l);
    CHECK(l.variant == K_MATMUL_Q8);
    l.n_threads = n_threads < c.n ? n_threads : c.n;
    l.block_m = block_m;
    CHECK_EQ_INT(k_matmul_q8_cpu(ktest_ctx(), &a, &l, isa), 0);
    k_matmul_args r = a;
    r.y = yr;
    k_matmul_ref(&r);
    /* padding columns of y untouched */
    int pad_same = 1;
    for (int i = 0; i < c.m; i++)
        for (int j = c.n; j < ldy; j++) pad_same &= y[(size_t)i * ldy + j] == yr[(size_t)i * ldy + j];
    CHECK(pad_same);
    float *g = malloc((size_t)c.m * c.n * 4), *e = malloc((size_t)c.m * c.n * 4);
    for (int i = 0; i < c.m; i++) {
        memcpy(g + (size_t)i * c.n, y + (size_t)i * ldy, (size_t)c.n * 4);
        memcpy(e + (size_t)i * c.n, yr + (size_t)i * ldy, (size_t)c.n * 4);
    }
    kverify_result res = kverify_nmse(g, e, (size_t)c.m * c.n, 1e-10);
    CHECK_MSG(res.ok, "%s m=%d n=%d k=%d threads=%d block_m=%d: nmse %.3g", k_matmul_q8_isa_name(isa), c.m, c.n, c.k,
              n_threads, block_m, res.nmse);
    free(x), free(b), free(y), free(yr), free(w), free(g), free(e);
}

static void test_against_ref(k_q8_isa isa) {
    const q8_case cases[] = {
        {1, 7, 32, 0, 0, false, false},     {1, 70, 300, 3, 2, true, false},  {3, 33, 64, 0, 0, true, true},
        {5, 64, 100, 1, 0, false, true},    {8, 40, 257, 0, 5, true, false},  {13, 50, 1000, 2, 1, true, true},
        {70, 17, 96, 0, 0, false, false},   {2, 300, 4096, 0, 0, false, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        run_case(cases[i], isa, 1, K_MATMUL_Q8_BLOCK_M);
        run_case(cases[i], isa, 2, cases[i].m > 3 ? 3 : 1);
    }
}

/* Every row of a batched product equals that row alone, bit for bit. */
static void test_row_invariant(k_q8_isa isa) {
    const int m = 13, n = 70, k = 300;
    float *x = malloc((size_t)m * k * 4), *b = malloc((size_t)n * 4);
    float *y = malloc((size_t)m * n * 4), *y1 = malloc((size_t)n * 4);
    kverify_fill(x, (size_t)m * k, seed++, -1, 1);
    kverify_fill(b, (size_t)n, seed++, -1, 1);
    void *w = make_q8(n, k);
    k_matmul_args a = {.m = m, .n = n, .k = k, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_Q8, .bias = b, .y = y,
                       .row_invariant = true};
    k_matmul_launch l;
    k_matmul_plan(&a, 2, true, true, &l);
    l.n_threads = 2;
    l.block_m = 5; /* groups of 5, 5, 3 rows; 4 rows share each weight load */
    CHECK_EQ_INT(k_matmul_q8_cpu(ktest_ctx(), &a, &l, isa), 0);
    int same = 0;
    for (int i = 0; i < m; i++) {
        k_matmul_args one = a;
        one.m = 1;
        one.x = x + (size_t)i * k;
        one.y = y1;
        k_matmul_launch l1;
        k_matmul_plan(&one, 1, true, true, &l1);
        l1.n_threads = i % 2 ? 1 : 3;
        CHECK_EQ_INT(k_matmul_q8_cpu(ktest_ctx(), &one, &l1, isa), 0);
        same += !memcmp(y1, y + (size_t)i * n, (size_t)n * 4);
    }
    CHECK_MSG(same == m, "%s: %d of %d rows equal alone", k_matmul_q8_isa_name(isa), same, m);
    if (isa == k_matmul_q8_best_isa()) {
        /* the dispatcher's own plan, asked for row invariance or not, gives the same bits */
        int same_default = 0;
        for (int i = 0; i < m; i++) {
            k_matmul_args one = a;
            one.m = 1, one.x = x + (size_t)i * k, one.y = y1, one.row_invariant = (i % 2) != 0;
            CHECK_EQ_INT(k_matmul(ktest_ctx(), &one), 0);
            same_default += !memcmp(y1, y + (size_t)i * n, (size_t)n * 4);
        }
        CHECK_EQ_INT(same_default, m);
    }
    free(x), free(b), free(y), free(y1), free(w);
}

/* The plan: Q8 always takes its own variant, threads over w's rows, groups of at most 64 rows. */
static void test_plan(void) {
    float any = 0;
    k_matmul_args a = {.m = 1, .n = 4096, .k = 4096, .x = &any, .w = &any, .w_dtype = TENSOR_DTYPE_Q8, .y = &any};
    k_matmul_launch l;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_Q8);
    CHECK_EQ_INT(l.n_threads, 2);
    CHECK_EQ_INT(l.block_m, 1);
    CHECK_EQ_INT((int)k_matmul_plan_scratch(&a, &l), (int)k_q8_act_row_bytes(4096));
    a.m = 1000;
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK(l.variant == K_MATMUL_Q8);
    CHECK_EQ_INT(l.block_m, K_MATMUL_Q8_BLOCK_M);
    a.n = 8, a.k = 64, a.m = 1; /* tiny: one thread */
    k_matmul_plan(&a, 2, true, true, &l);
    CHECK_EQ_INT(l.n_threads, 1);
    /* the CPU backend runs Q8 weights; the CUDA backend refuses them */
    CHECK(k_supports(K_BACKEND_CPU, K_OP_MATMUL, &a));
    CHECK(!k_supports(K_BACKEND_CUDA, K_OP_MATMUL, &a));
    CHECK(k_workspace(ktest_ctx(), K_OP_MATMUL, &a) >= k_q8_act_row_bytes(64));
    /* a weight of the layout's bytes */
    k_weight_t w = {.dtype = TENSOR_DTYPE_Q8, .rows = 3, .cols = 100};
    CHECK_EQ_INT((int)k_weight_bytes(&w), (int)k_q8_bytes(3, 100));
}

int main(void) {
    test_quantiser();
    test_plan();
    int ran = 0;
    for (int i = 0; i < K_Q8_ISA_COUNT; i++) {
        k_q8_isa isa = (k_q8_isa)i;
        if (!k_matmul_q8_isa_available(isa)) {
            fprintf(stderr, "q8 kernel %s: not on this CPU\n", k_matmul_q8_isa_name(isa));
            continue;
        }
        fprintf(stderr, "q8 kernel %s\n", k_matmul_q8_isa_name(isa));
        test_against_ref(isa);
        test_row_invariant(isa);
        ran++;
    }
    CHECK(ran >= 1);
    fprintf(stderr, "q8 kernel in use: %s\n", k_matmul_q8_isa_name(k_matmul_q8_best_isa()));
    return test_summary();
}
