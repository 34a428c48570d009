/* test_k_compare — the comparators of kernels/kverify.h can fail: identical data passes, a
 * single perturbed element beyond tolerance fails (SQLite's "prove the checker works"), NaN/inf
 * mismatches fail, NMSE catches small but widespread error, and the fill is deterministic.
 * Also proves the matmul tolerance rejects a fast-path output with one element nudged. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kverify.h"
#include "matmul.h"
#include "ktest.h"
#include "test.h"

static void test_close(void) {
    enum { N = 1000 };
    float ref[N], got[N];
    kverify_fill(ref, N, 1, -2.0f, 2.0f);
    memcpy(got, ref, sizeof ref);
    kverify_result r = kverify_close(got, ref, N, 1e-6, 1e-5);
    CHECK(r.ok && r.n_bad == 0 && r.max_abs == 0.0);

    got[417] += 1e-3f; /* far outside 1e-6 + 1e-5·|ref| */
    r = kverify_close(got, ref, N, 1e-6, 1e-5);
    CHECK(!r.ok);
    CHECK_EQ_INT(r.n_bad, 1);
    CHECK_EQ_INT(r.worst, 417);
    CHECK(!kverify_report("expected failure (perturbed element)", &r, got, ref));

    memcpy(got, ref, sizeof ref);
    got[5] = ref[5] * (1.0f + 5e-6f); /* inside the relative tolerance */
    r = kverify_close(got, ref, N, 0.0, 1e-5);
    CHECK(r.ok);

    /* non-finite values must match in kind */
    memcpy(got, ref, sizeof ref);
    got[3] = NAN;
    CHECK(!kverify_close(got, ref, N, 1.0, 1.0).ok);
    float a = NAN, b = NAN, pinf = INFINITY, ninf = -INFINITY;
    CHECK(kverify_close(&a, &b, 1, 0, 0).ok);
    CHECK(!kverify_close(&pinf, &ninf, 1, 1e30, 1e30).ok);
    CHECK(kverify_close(&pinf, &pinf, 1, 0, 0).ok);
}

static void test_nmse(void) {
    enum { N = 4096 };
    float ref[N], got[N];
    kverify_fill(ref, N, 2, -1.0f, 1.0f);
    for (int i = 0; i < N; i++) got[i] = ref[i] * (1.0f + 1e-4f); /* NMSE = 1e-8 */
    kverify_result r = kverify_nmse(got, ref, N, 1e-7);
    CHECK(r.ok);
    CHECK(r.nmse > 0.5e-8 && r.nmse < 2e-8);
    r = kverify_nmse(got, ref, N, 1e-9);
    CHECK(!r.ok);
    got[7] = INFINITY;
    CHECK(!kverify_nmse(got, ref, N, 1.0).ok);
}

static void test_fill(void) {
    float a[64], b[64], c[64];
    kverify_fill(a, 64, 42, -3.0f, 5.0f);
    kverify_fill(b, 64, 42, -3.0f, 5.0f);
    kverify_fill(c, 64, 43, -3.0f, 5.0f);
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK(memcmp(a, c, sizeof a) != 0);
    int in_range = 1;
    for (int i = 0; i < 64; i++) in_range &= a[i] >= -3.0f && a[i] < 5.0f;
    CHECK(in_range);
}

/* The documented matmul tolerance (NMSE 1e-10) must reject a real fast-path output in which a
 * single element is off by 0.1%. */
static void test_matmul_tolerance_bites(void) {
    enum { M = 16, N = 64, K = 256 };
    float *x = malloc(sizeof(float) * M * K), *w = malloc(sizeof(float) * N * K);
    float *y = malloc(sizeof(float) * M * N), *yr = malloc(sizeof(float) * M * N);
    kverify_fill(x, M * K, 3, -1, 1);
    kverify_fill(w, N * K, 4, -1, 1);
    k_matmul_args a = {.m = M, .n = N, .k = K, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_F32, .y = y};
    k_matmul_cpu(ktest_ctx(), &a);
    a.y = yr;
    k_matmul_ref(&a);
    CHECK(kverify_nmse(y, yr, M * N, 1e-10).ok);
    int worst = 0;
    for (int i = 0; i < M * N; i++)
        if (fabsf(yr[i]) > fabsf(yr[worst])) worst = i;
    y[worst] *= 1.001f;
    CHECK(!kverify_nmse(y, yr, M * N, 1e-10).ok);
    free(x), free(w), free(y), free(yr);
}

int main(void) {
    test_close();
    test_nmse();
    test_fill();
    test_matmul_tolerance_bites();
    return test_summary();
}
