/* test_k_add — y = a + b is bit-exact against the reference for ragged and threaded sizes,
 * with y aliasing a or b; _check rejections. */
#include <stdlib.h>
#include <string.h>

#include "add.h"
#include "err.h"
#include "kverify.h"
#include "ktest.h"
#include "test.h"

int main(void) {
    const int64_t sizes[] = {1, 3, 33, 1025, (1 << 17) + 3};
    for (size_t s = 0; s < ARRAY_LEN(sizes); s++) {
        int64_t n = sizes[s];
        float *a = malloc(n * 4), *b = malloc(n * 4), *y = malloc(n * 4), *yr = malloc(n * 4);
        kverify_fill(a, n, 50 + s, -10, 10);
        kverify_fill(b, n, 60 + s, -10, 10);
        k_add_args args = {.n = n, .a = a, .b = b, .y = y};
        k_add_cpu(ktest_ctx(), &args);
        args.y = yr;
        k_add_ref(&args);
        CHECK_MSG(memcmp(y, yr, n * 4) == 0, "add n=%lld", (long long)n);
        float *a2 = malloc(n * 4);
        memcpy(a2, a, n * 4);
        args = (k_add_args){.n = n, .a = a2, .b = b, .y = a2}; /* in place on a */
        k_add_cpu(ktest_ctx(), &args);
        CHECK_MSG(memcmp(a2, yr, n * 4) == 0, "add in place (a) n=%lld", (long long)n);
        args = (k_add_args){.n = n, .a = a, .b = b, .y = b}; /* in place on b */
        k_add_cpu(ktest_ctx(), &args);
        CHECK_MSG(memcmp(b, yr, n * 4) == 0, "add in place (b) n=%lld", (long long)n);
        free(a), free(b), free(y), free(yr), free(a2);
    }
    float one = 1.0f, two = 2.0f, out;
    k_add_args k = {.n = 1, .a = &one, .b = &two, .y = &out};
    k_add_cpu(ktest_ctx(), &k);
    CHECK(out == 3.0f);
    char err[HIRED_ERR_LEN];
    CHECK_EQ_INT(k_add_check(&k, err), 0);
    k.n = 0;
    CHECK_EQ_INT(k_add_check(&k, err), HIRED_EINVAL);
    k.n = 1, k.b = NULL;
    CHECK_EQ_INT(k_add_check(&k, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_add_check(NULL, err), HIRED_EINVAL);
    return test_summary();
}
