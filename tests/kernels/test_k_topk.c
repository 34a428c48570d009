/* test_k_topk — top-k order: descending value, ties by ascending index (−0 = +0), NaN below
 * everything; k = 0 and k = n; the heap path returns exactly the reference's indices on random
 * and tie-heavy data at vocabulary size; _check rejections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "kverify.h"
#include "ktest.h"
#include "test.h"
#include "topk.h"

static void test_known(void) {
    float x[7] = {1, 3, 3, 2, NAN, 3, -0.0f};
    int32_t idx[7];
    k_topk_args a = {.n = 7, .k = 4, .x = x, .idx = idx};
    k_topk_cpu(ktest_ctx(), &a);
    CHECK(idx[0] == 1 && idx[1] == 2 && idx[2] == 5 && idx[3] == 3);
    a.k = 7;
    k_topk_cpu(ktest_ctx(), &a); /* then 1, -0, and the NaN last */
    CHECK(idx[4] == 0 && idx[5] == 6 && idx[6] == 4);
    float z[3] = {0.0f, -0.0f, 0.0f};
    a = (k_topk_args){.n = 3, .k = 3, .x = z, .idx = idx};
    k_topk_cpu(ktest_ctx(), &a);
    CHECK(idx[0] == 0 && idx[1] == 1 && idx[2] == 2);
    float nn[3] = {NAN, NAN, -INFINITY};
    k_topk_cpu(ktest_ctx(), &a);
    a.x = nn;
    k_topk_cpu(ktest_ctx(), &a);
    CHECK(idx[0] == 2 && idx[1] == 0 && idx[2] == 1);
    a.k = 0;
    idx[0] = -7;
    k_topk_cpu(ktest_ctx(), &a);
    CHECK(idx[0] == -7);
}

static void compare(const float *x, int n, int k, const char *what) {
    int32_t *i1 = malloc(sizeof(int32_t) * (k ? k : 1)), *i2 = malloc(sizeof(int32_t) * (k ? k : 1));
    k_topk_args a = {.n = n, .k = k, .x = x, .idx = i1};
    k_topk_cpu(ktest_ctx(), &a);
    a.idx = i2;
    k_topk_ref(&a);
    CHECK_MSG(memcmp(i1, i2, sizeof(int32_t) * k) == 0, "topk %s n=%d k=%d", what, n, k);
    free(i1), free(i2);
}

static void test_against_ref(void) {
    enum { N = 32064 };
    float *x = malloc(sizeof(float) * N);
    kverify_fill(x, N, 3, -10, 10);
    compare(x, N, 1, "random");
    compare(x, N, 50, "random");
    compare(x, 576, 576, "random");
    compare(x, 577, 144, "random");
    for (int i = 0; i < N; i++) x[i] = (float)((i * 7919) % 13); /* many ties */
    x[100] = NAN, x[5] = NAN;
    compare(x, N, 40, "ties");
    compare(x, 1000, 1000, "ties");
    compare(x, 3, 2, "ties");
    free(x);
}

static void test_check(void) {
    float x[3] = {0};
    int32_t idx[3];
    char err[HIRED_ERR_LEN];
    k_topk_args a = {.n = 3, .k = 3, .x = x, .idx = idx};
    CHECK_EQ_INT(k_topk_check(&a, err), 0);
    a.k = 0, a.idx = NULL;
    CHECK_EQ_INT(k_topk_check(&a, err), 0);
    a.k = 4, a.idx = idx;
    CHECK_EQ_INT(k_topk_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "k 4") != NULL);
    a.k = -1;
    CHECK_EQ_INT(k_topk_check(&a, err), HIRED_EINVAL);
    a.k = 1, a.n = 0;
    CHECK_EQ_INT(k_topk_check(&a, err), HIRED_EINVAL);
    a.n = 3, a.x = NULL;
    CHECK_EQ_INT(k_topk_check(&a, err), HIRED_EINVAL);
    a.x = x, a.idx = NULL;
    CHECK_EQ_INT(k_topk_check(&a, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_topk_check(NULL, err), HIRED_EINVAL);
}

int main(void) {
    test_known();
    test_against_ref();
    test_check();
    return test_summary();
}
