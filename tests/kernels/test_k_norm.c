/* test_k_norm — LayerNorm and RMSNorm: known rows, fast path against the double reference
 * (|a−b| ≤ 1e-5 + 1e-5·|ref|, norm.h) on ragged widths and row counts (serial and threaded),
 * in place and out of place, with and without beta; _check rejections. */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "kverify.h"
#include "norm.h"
#include "ktest.h"
#include "test.h"

static void test_known(void) {
    float x[4] = {1, 2, 3, 4}, g[4] = {1, 1, 1, 1}, y[4];
    k_layernorm_args a = {.m = 1, .d = 4, .x = x, .y = y, .gamma = g, .eps = 0.0f};
    k_layernorm_cpu(ktest_ctx(), &a); /* mean 2.5, var 1.25 */
    CHECK_NEAR(y[0], -1.3416407864998738, 1e-6);
    CHECK_NEAR(y[1], -0.4472135954999579, 1e-6);
    CHECK_NEAR(y[3], 1.3416407864998738, 1e-6);
    float g2[4] = {1, 2, 3, 4}, b2[4] = {0.5f, 0, 0, -1};
    a.gamma = g2, a.beta = b2;
    k_layernorm_cpu(ktest_ctx(), &a);
    CHECK_NEAR(y[0], -1.3416407864998738 + 0.5, 1e-6);
    CHECK_NEAR(y[3], 4 * 1.3416407864998738 - 1, 1e-5);
    float r[2] = {3, 4}, gr[2] = {1, 2}, yr[2];
    k_rmsnorm_args b = {.m = 1, .d = 2, .x = r, .y = yr, .gamma = gr, .eps = 0.0f};
    k_rmsnorm_cpu(ktest_ctx(), &b); /* mean square 12.5 */
    CHECK_NEAR(yr[0], 3 / sqrt(12.5), 1e-6);
    CHECK_NEAR(yr[1], 2 * 4 / sqrt(12.5), 1e-6);
}

static void test_against_ref(void) {
    const int shapes[][2] = {{1, 1}, {3, 3}, {1, 33}, {577, 1024}, {5, 4096}, {64, 1025}, {2, 17}};
    for (size_t s = 0; s < ARRAY_LEN(shapes); s++)
        for (int variant = 0; variant < 4; variant++) { /* bit 0: in place, bit 1: with beta */
            int m = shapes[s][0], d = shapes[s][1];
            size_t n = (size_t)m * d;
            float *x = malloc(n * 4), *y = malloc(n * 4), *yr = malloc(n * 4), *g = malloc(d * 4), *b = malloc(d * 4);
            kverify_fill(x, n, 10 + s, -3, 5); /* non-zero mean */
            kverify_fill(g, d, 20 + s, 0.5f, 1.5f);
            kverify_fill(b, d, 30 + s, -1, 1);
            bool inplace = variant & 1;
            if (inplace) memcpy(y, x, n * 4);
            k_layernorm_args a = {.m = m, .d = d, .x = inplace ? y : x, .y = y, .gamma = g, .beta = (variant & 2) ? b : NULL,
                                  .eps = 1e-5f};
            k_layernorm_cpu(ktest_ctx(), &a);
            a.x = x, a.y = yr;
            k_layernorm_ref(&a);
            char name[96];
            snprintf(name, sizeof name, "layernorm m=%d d=%d variant=%d", m, d, variant);
            kverify_result r = kverify_close(y, yr, n, 1e-5, 1e-5);
            CHECK_MSG(kverify_report(name, &r, y, yr), "%s", name);

            if (inplace) memcpy(y, x, n * 4);
            k_rmsnorm_args c = {.m = m, .d = d, .x = inplace ? y : x, .y = y, .gamma = g, .eps = 1e-5f};
            k_rmsnorm_cpu(ktest_ctx(), &c);
            c.x = x, c.y = yr;
            k_rmsnorm_ref(&c);
            snprintf(name, sizeof name, "rmsnorm m=%d d=%d variant=%d", m, d, variant);
            r = kverify_close(y, yr, n, 1e-5, 1e-5);
            CHECK_MSG(kverify_report(name, &r, y, yr), "%s", name);
            free(x), free(y), free(yr), free(g), free(b);
        }
}

static void test_check(void) {
    float x[4] = {0}, g[4] = {1, 1, 1, 1};
    char err[HIRED_ERR_LEN];
    k_layernorm_args a = {.m = 1, .d = 4, .x = x, .y = x, .gamma = g, .eps = 1e-5f};
    CHECK_EQ_INT(k_layernorm_check(&a, err), 0);
    a.d = 0;
    CHECK_EQ_INT(k_layernorm_check(&a, err), HIRED_EINVAL);
    a.d = 4, a.gamma = NULL;
    CHECK_EQ_INT(k_layernorm_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "gamma") != NULL);
    a.gamma = g, a.eps = -1.0f;
    CHECK_EQ_INT(k_layernorm_check(&a, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_layernorm_check(NULL, err), HIRED_EINVAL);
    k_rmsnorm_args b = {.m = 1, .d = 4, .x = x, .y = x, .gamma = g, .eps = 1e-5f};
    CHECK_EQ_INT(k_rmsnorm_check(&b, err), 0);
    b.m = -2;
    CHECK_EQ_INT(k_rmsnorm_check(&b, err), HIRED_EINVAL);
    b.m = 1, b.y = NULL;
    CHECK_EQ_INT(k_rmsnorm_check(&b, err), HIRED_EINVAL);
    b.y = x, b.eps = NAN;
    CHECK_EQ_INT(k_rmsnorm_check(&b, err), HIRED_EINVAL);
}

int main(void) {
    test_known();
    test_against_ref();
    test_check();
    return test_summary();
}
