/* test_k_softmax — row softmax: known values, −inf entries give exactly 0, huge values do not
 * overflow, an all −inf row gives NaN (as torch), fast path against the double reference
 * (|a−b| ≤ 1e-7 + 1e-5·|ref|, softmax.h) on ragged shapes; _check rejections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "kverify.h"
#include "softmax.h"
#include "ktest.h"
#include "test.h"

static void test_known(void) {
    float x[9] = {1, 2, 3, 1000, 1001, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
    k_softmax_args a = {.m = 1, .n = 3, .x = x};
    k_softmax_cpu(ktest_ctx(), &a);
    CHECK_NEAR(x[0], 0.09003057317038046, 1e-7);
    CHECK_NEAR(x[1], 0.24472847105479764, 1e-7);
    CHECK_NEAR(x[2], 0.6652409557748219, 1e-7);
    a = (k_softmax_args){.m = 1, .n = 3, .x = x + 3};
    k_softmax_cpu(ktest_ctx(), &a);
    CHECK_NEAR(x[3], 0.2689414213699951, 1e-7);
    CHECK_NEAR(x[4], 0.7310585786300049, 1e-7);
    CHECK(x[5] == 0.0f); /* exactly zero, not a denormal */
    a = (k_softmax_args){.m = 1, .n = 3, .x = x + 6};
    k_softmax_cpu(ktest_ctx(), &a);
    CHECK(isnan(x[6]) && isnan(x[8]));
}

static void test_against_ref(void) {
    const int shapes[][2] = {{1, 1}, {3, 3}, {1, 33}, {577, 577}, {16, 1025}, {64, 64}, {2, 32064}};
    for (size_t s = 0; s < ARRAY_LEN(shapes); s++) {
        int m = shapes[s][0], n = shapes[s][1];
        size_t len = (size_t)m * n;
        float *x = malloc(len * 4), *xr = malloc(len * 4);
        kverify_fill(x, len, 40 + s, -30, 30);
        if (len > 10) x[len / 2] = -INFINITY, x[3] = -INFINITY;
        memcpy(xr, x, len * 4);
        k_softmax_args a = {.m = m, .n = n, .x = x};
        k_softmax_cpu(ktest_ctx(), &a);
        a.x = xr;
        k_softmax_ref(&a);
        char name[64];
        snprintf(name, sizeof name, "softmax m=%d n=%d", m, n);
        kverify_result r = kverify_close(x, xr, len, 1e-7, 1e-5);
        CHECK_MSG(kverify_report(name, &r, x, xr), "%s", name);
        free(x), free(xr);
    }
}

static void test_check(void) {
    float x[2];
    char err[HIRED_ERR_LEN];
    k_softmax_args a = {.m = 1, .n = 2, .x = x};
    CHECK_EQ_INT(k_softmax_check(&a, err), 0);
    a.n = 0;
    CHECK_EQ_INT(k_softmax_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "n=0") != NULL);
    a.n = 2, a.x = NULL;
    CHECK_EQ_INT(k_softmax_check(&a, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_softmax_check(NULL, err), HIRED_EINVAL);
}

int main(void) {
    test_known();
    test_against_ref();
    test_check();
    return test_summary();
}
