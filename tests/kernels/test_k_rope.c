/* test_k_rope — HF half-split RoPE: a small case against the formula written out by hand,
 * position 0 is the identity, rotation preserves each pair's norm, and the fast path matches
 * the reference (|a−b| ≤ 1e-6 + 1e-5·|ref|, rope.h) for head_dim 2/64/128, theta 1e4/1e6,
 * positions up to 32k, padded rows; _check rejections. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "kverify.h"
#include "rope.h"
#include "ktest.h"
#include "test.h"

static void test_formula(void) {
    /* head_dim 4, theta 1e4: inv_freq = (1, 1/100); position 1 → angles (1, 0.01) */
    float x[8] = {1, 2, 3, 4, 1, 2, 3, 4};
    k_rope_args a = {.t = 2, .n_head = 1, .head_dim = 4, .x = x, .pos0 = 0, .theta = 10000.0};
    k_rope_cpu(ktest_ctx(), &a);
    CHECK(x[0] == 1 && x[1] == 2 && x[2] == 3 && x[3] == 4); /* row 0: position 0 */
    CHECK_NEAR(x[4], 1 * cos(1.0) - 3 * sin(1.0), 1e-6);
    CHECK_NEAR(x[6], 3 * cos(1.0) + 1 * sin(1.0), 1e-6);
    CHECK_NEAR(x[5], 2 * cos(0.01) - 4 * sin(0.01), 1e-6);
    CHECK_NEAR(x[7], 4 * cos(0.01) + 2 * sin(0.01), 1e-6);
    /* the pairing is (i, i + head_dim/2), not (2i, 2i+1): dims 0 and 2 rotate together */
    float y[4] = {1, 0, 0, 0};
    a = (k_rope_args){.t = 1, .n_head = 1, .head_dim = 4, .x = y, .pos0 = 1, .theta = 10000.0};
    k_rope_ref(&a);
    CHECK(y[1] == 0.0f && y[3] == 0.0f);
    CHECK_NEAR(y[2], sin(1.0), 1e-7);
}

static void test_against_ref(void) {
    const struct {
        int t, n_head, head_dim, pad, pos0;
        double theta;
    } cases[] = {
        {1, 1, 2, 0, 0, 10000.0},    {3, 32, 128, 0, 7, 10000.0},  {33, 8, 128, 5, 4000, 1e6},
        {1, 32, 128, 0, 32000, 1e6}, {64, 16, 64, 3, 100, 10000.0}, {577, 4, 64, 0, 0, 10000.0},
    };
    for (size_t c = 0; c < ARRAY_LEN(cases); c++) {
        int row = cases[c].n_head * cases[c].head_dim, ld = row + cases[c].pad;
        size_t n = (size_t)cases[c].t * ld;
        float *x = malloc(n * 4), *xr = malloc(n * 4), *x0 = malloc(n * 4);
        kverify_fill(x, n, 90 + c, -2, 2);
        memcpy(xr, x, n * 4);
        memcpy(x0, x, n * 4);
        k_rope_args a = {.t = cases[c].t, .n_head = cases[c].n_head, .head_dim = cases[c].head_dim, .x = x,
                         .ld = cases[c].pad ? ld : 0, .pos0 = cases[c].pos0, .theta = cases[c].theta};
        char err[HIRED_ERR_LEN];
        CHECK_MSG(k_rope_check(&a, err) == 0, "%s", err);
        k_rope_cpu(ktest_ctx(), &a);
        a.x = xr;
        k_rope_ref(&a);
        char name[96];
        snprintf(name, sizeof name, "rope t=%d heads=%d d=%d pos0=%d theta=%g", cases[c].t, cases[c].n_head,
                 cases[c].head_dim, cases[c].pos0, cases[c].theta);
        kverify_result r = kverify_close(x, xr, n, 1e-6, 1e-5);
        CHECK_MSG(kverify_report(name, &r, x, xr), "%s", name);
        /* norm of every rotated pair preserved; padding untouched */
        int half = cases[c].head_dim / 2, ok = 1;
        for (int i = 0; i < cases[c].t; i++) {
            for (int h = 0; h < cases[c].n_head; h++)
                for (int j = 0; j < half; j++) {
                    size_t p = (size_t)i * ld + (size_t)h * cases[c].head_dim + j;
                    double before = hypot(x0[p], x0[p + half]), after = hypot(x[p], x[p + half]);
                    ok &= fabs(before - after) <= 1e-5 * (1 + before);
                }
            for (int j = row; j < ld; j++) ok &= x[(size_t)i * ld + j] == x0[(size_t)i * ld + j];
        }
        CHECK_MSG(ok, "%s: pair norms or padding", name);
        free(x), free(xr), free(x0);
    }
}

static void test_check(void) {
    float x[8];
    char err[HIRED_ERR_LEN];
    k_rope_args a = {.t = 1, .n_head = 2, .head_dim = 4, .x = x, .theta = 1e4};
    CHECK_EQ_INT(k_rope_check(&a, err), 0);
    a.head_dim = 3;
    CHECK_EQ_INT(k_rope_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "odd") != NULL);
    a.head_dim = 4, a.theta = 0.0;
    CHECK_EQ_INT(k_rope_check(&a, err), HIRED_EINVAL);
    a.theta = 1e4, a.pos0 = -1;
    CHECK_EQ_INT(k_rope_check(&a, err), HIRED_EINVAL);
    a.pos0 = 0, a.ld = 7;
    CHECK_EQ_INT(k_rope_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "ld") != NULL);
    a.ld = 0, a.x = NULL;
    CHECK_EQ_INT(k_rope_check(&a, err), HIRED_EINVAL);
    a.x = x, a.t = 0;
    CHECK_EQ_INT(k_rope_check(&a, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_rope_check(NULL, err), HIRED_EINVAL);
}

int main(void) {
    test_formula();
    test_against_ref();
    test_check();
    return test_summary();
}
