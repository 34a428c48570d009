/* test_k_act — activations: known values (gelu_erf(1) = 0.8413447460685429, quick_gelu,
 * silu·up), the kmath.h building blocks (k_expf within 3 ulp over its range and its edges,
 * k_erfcf), fast paths against the double reference (|a−b| ≤ 1e-7 + 2e-6·|ref|, act.h) on
 * ragged and threaded sizes including extreme inputs, in place; _check rejections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "act.h"
#include "err.h"
#include "half.h"
#include "kmath.h"
#include "kverify.h"
#include "ktest.h"
#include "test.h"

static void test_known(void) {
    float x[3] = {1.0f, -1.0f, 3.0f}, y[3];
    k_act_args a = {.n = 3, .x = x, .y = y};
    k_gelu_erf_cpu(ktest_ctx(), &a);
    CHECK_NEAR(y[0], 0.8413447460685429, 2e-7);
    CHECK_NEAR(y[1], -0.15865525393145707, 2e-7);
    CHECK_NEAR(y[2], 2.99595030590511, 4e-7);
    k_quick_gelu_cpu(ktest_ctx(), &a);
    CHECK_NEAR(y[0], 0.8457957659328212, 2e-7);
    CHECK_NEAR(y[1], -0.1542042340671787, 2e-7);
    float g[2] = {1.0f, -1.5f}, u[2] = {2.0f, 1.0f}, z[2];
    k_silu_mul_args s = {.n = 2, .gate = g, .up = u, .y = z};
    k_silu_mul_cpu(ktest_ctx(), &s);
    CHECK_NEAR(z[0], 1.4621171572600098, 2e-7);
    CHECK_NEAR(z[1], -0.27363828570953447, 2e-7);
    float zero = 0.0f, out;
    a = (k_act_args){.n = 1, .x = &zero, .y = &out};
    k_gelu_erf_cpu(ktest_ctx(), &a);
    CHECK(out == 0.0f);
}

static void test_kmath(void) {
    double worst = 0.0;
    for (double x = -87.3; x <= 88.7; x += 0.0137) {
        double want = exp((double)(float)x);
        double rel = fabs(k_expf((float)x) - want) / want;
        if (rel > worst) worst = rel;
    }
    CHECK_MSG(worst <= 3 * 0x1p-24, "k_expf worst relative error %.3g", worst);
    CHECK(k_expf(0.0f) == 1.0f);
    CHECK(k_expf(-INFINITY) == 0.0f);
    CHECK(k_expf(-100.0f) == 0.0f);
    CHECK(isinf(k_expf(89.0f)) && k_expf(89.0f) > 0);
    CHECK(isinf(k_expf(INFINITY)));
    CHECK(isnan(k_expf(NAN)));
    CHECK(isfinite(k_expf(88.7f)));
    double werfc = 0.0;
    for (double z = -4.0; z <= 9.0; z += 0.01) {
        double rel = fabs(k_erfcf((float)z) - erfc((double)(float)z)) / erfc((double)(float)z);
        if (rel > werfc) werfc = rel;
    }
    CHECK_MSG(werfc <= 1e-6, "k_erfcf worst relative error %.3g", werfc);
    CHECK_NEAR(k_sigmoidf(0.0f), 0.5, 0);
    /* the branch-free conversions agree with half.h on every bit pattern (NaN: any NaN) */
    int bad = 0;
    for (uint32_t i = 0; i < 65536; i++) {
        float a = k_half_to_f32((uint16_t)i), b = half_to_f32((uint16_t)i);
        float c = k_bf16_to_f32((uint16_t)i), d = bf16_to_f32((uint16_t)i);
        bad += !((isnan(a) && isnan(b)) || memcmp(&a, &b, 4) == 0);
        bad += !((isnan(c) && isnan(d)) || memcmp(&c, &d, 4) == 0);
    }
    CHECK_EQ_INT(bad, 0);
    CHECK(k_sigmoidf(-200.0f) == 0.0f && k_sigmoidf(200.0f) == 1.0f);
}

static void test_against_ref(void) {
    const int64_t sizes[] = {1, 3, 33, 1025, (1 << 16) + 7};
    for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
        int64_t n = sizes[s];
        float *x = malloc(n * 4), *u = malloc(n * 4), *y = malloc(n * 4), *yr = malloc(n * 4);
        kverify_fill(x, n, 70 + s, -12, 12);
        kverify_fill(u, n, 80 + s, -3, 3);
        const float extreme[] = {0.0f, -0.0f, 1e-30f, -1e-30f, 100.0f, -100.0f, 1e4f, -1e4f, 30.0f, -30.0f};
        for (size_t e = 0; e < ARRAY_LEN(extreme) && (int64_t)e < n; e++) x[e * (n / ARRAY_LEN(extreme) + 1) % n] = extreme[e];
        for (int op = 0; op < 3; op++) {
            const char *names[] = {"gelu_erf", "quick_gelu", "silu_mul"};
            for (int inplace = 0; inplace < 2; inplace++) {
                if (inplace) memcpy(y, op == 2 ? u : x, n * 4);
                if (op < 2) {
                    k_act_args a = {.n = n, .x = inplace ? y : x, .y = y};
                    op == 0 ? k_gelu_erf_cpu(ktest_ctx(), &a) : k_quick_gelu_cpu(ktest_ctx(), &a);
                    a = (k_act_args){.n = n, .x = x, .y = yr};
                    op == 0 ? k_gelu_erf_ref(&a) : k_quick_gelu_ref(&a);
                } else {
                    k_silu_mul_args a = {.n = n, .gate = x, .up = inplace ? y : u, .y = y};
                    k_silu_mul_cpu(ktest_ctx(), &a);
                    a = (k_silu_mul_args){.n = n, .gate = x, .up = u, .y = yr};
                    k_silu_mul_ref(&a);
                }
                char name[80];
                snprintf(name, sizeof name, "%s n=%lld inplace=%d", names[op], (long long)n, inplace);
                kverify_result r = kverify_close(y, yr, n, 1e-7, 2e-6);
                CHECK_MSG(kverify_report(name, &r, y, yr), "%s", name);
            }
        }
        free(x), free(u), free(y), free(yr);
    }
}

static void test_check(void) {
    float x[2];
    char err[HIRED_ERR_LEN];
    k_act_args a = {.n = 2, .x = x, .y = x};
    CHECK_EQ_INT(k_gelu_erf_check(&a, err), 0);
    CHECK_EQ_INT(k_quick_gelu_check(&a, err), 0);
    a.n = -1;
    CHECK_EQ_INT(k_gelu_erf_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "gelu_erf") != NULL);
    a.n = 2, a.y = NULL;
    CHECK_EQ_INT(k_quick_gelu_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "quick_gelu") != NULL);
    k_silu_mul_args s = {.n = 2, .gate = x, .up = x, .y = x};
    CHECK_EQ_INT(k_silu_mul_check(&s, err), 0);
    s.up = NULL;
    CHECK_EQ_INT(k_silu_mul_check(&s, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_silu_mul_check(NULL, err), HIRED_EINVAL);
}

int main(void) {
    test_known();
    test_kmath();
    test_against_ref();
    test_check();
    return test_summary();
}
