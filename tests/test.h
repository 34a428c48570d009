/* test.h — the whole test harness: CHECK-style assertions that count and exit non-zero.
 * A test program calls its cases, then `return test_summary();` (exit 1 if any failed).
 * Fixture paths come from HIRED_FIXTURES (set by ctest) via test_fixture(). */
#ifndef HIRED_TEST_H
#define HIRED_TEST_H

#include <ftw.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static int test_failures, test_checks;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        test_checks++;                                                              \
        if (!(cond)) {                                                              \
            test_failures++;                                                        \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_MSG(cond, ...)                                               \
    do {                                                                   \
        test_checks++;                                                     \
        if (!(cond)) {                                                     \
            test_failures++;                                               \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* Each argument is evaluated once (a CHECK of a call must not call it again to print it). */
#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);             \
        CHECK_MSG(check_a_ == check_b_, "%lld != %lld", check_a_, check_b_);        \
    } while (0)
#define CHECK_NEAR(a, b, tol)                                                                           \
    do {                                                                                                \
        double check_a_ = (double)(a), check_b_ = (double)(b), check_t_ = (double)(tol);                \
        CHECK_MSG(fabs(check_a_ - check_b_) <= check_t_, "%.9g vs %.9g (tol %g)", check_a_, check_b_, check_t_); \
    } while (0)

/* Path of a fixture file: $HIRED_FIXTURES/rel, in a static buffer (one at a time). */
static inline const char *test_fixture(const char *rel) {
    static char buf[4096];
    const char *root = getenv("HIRED_FIXTURES");
    snprintf(buf, sizeof buf, "%s/%s", root ? root : "tests/fixtures", rel);
    return buf;
}

/* A new directory /tmp/hired_<name>.XXXXXX, its path in buf; false (having said why) when it
 * cannot be made. test_rmtree removes it and everything in it. */
static inline bool test_tmpdir(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "/tmp/hired_%s.XXXXXX", name);
    if (mkdtemp(buf)) return true;
    perror("mkdtemp");
    return false;
}

static inline int test_rmtree_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb, (void)flag, (void)ftw;
    return remove(p);
}

static inline void test_rmtree(const char *dir) { nftw(dir, test_rmtree_cb, 16, FTW_DEPTH | FTW_PHYS); }

static inline int test_summary(void) {
    printf("%d checks, %d failed\n", test_checks, test_failures);
    return test_failures ? 1 : 0;
}

#endif
