/* test_sampler — model/sampler.h: greedy argmax (first index on ties, NaN never wins),
 * the counter-based RNG (reproducible per (seed, step), independent of call order and thread
 * count), top-k and top-p masks on hand-made logits, and draw frequencies at temperature 1. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "sampler.h"
#include "test.h"

static k_device_t *g_dev; /* the CPU device the samplers' host contexts run on */

/* A sampler with its own host context (a context belongs to one thread). */
typedef struct {
    k_ctx_t *ctx;
    sampler_t *s;
} smp_t;

static smp_t smp_new(int n_vocab) {
    char err[HIRED_ERR_LEN];
    smp_t m = {k_ctx_new(g_dev, err), NULL};
    if (m.ctx) m.s = sampler_new(m.ctx, n_vocab);
    return m;
}

static void smp_free(smp_t *m) {
    sampler_destroy(&m->s);
    k_ctx_destroy(&m->ctx);
}

/* The token of one step (-1 when sampling failed). */
static int draw(smp_t *m, const sampler_params_t *p, const float *logits, uint64_t step) {
    int32_t t = -1;
    return sampler_sample(m->s, p, logits, step, &t) ? -1 : t;
}

/* Greedy: the token sampling draws at temperature 0. */
static int greedy(const float *x, int n) {
    smp_t m = smp_new(n);
    sampler_params_t p = {.temperature = 0};
    int t = draw(&m, &p, x, 0);
    smp_free(&m);
    return t;
}

static void test_argmax(void) {
    const float a[] = {1, 3, 3, 2};
    CHECK_EQ_INT(greedy(a, 4), 1);
    const float b[] = {NAN, -5, NAN, -1, -1};
    CHECK_EQ_INT(greedy(b, 5), 3);
    const float c[] = {-INFINITY, -INFINITY};
    CHECK_EQ_INT(greedy(c, 2), 0);
    const float d[] = {NAN, NAN};
    CHECK_EQ_INT(greedy(d, 2), 0);
    /* greedy through sampler_sample: temperature 0 ignores top-k/top-p and the seed */
    smp_t m = smp_new(4);
    sampler_params_t p = {.temperature = 0, .top_k = 1, .top_p = 0.1f, .seed = 99};
    for (uint64_t step = 0; step < 10; step++) CHECK_EQ_INT(draw(&m, &p, a, step), 1);
    sampler_destroy(&m.s);
    CHECK(m.s == NULL);
    sampler_destroy(&m.s); /* NULL-safe */
    CHECK(sampler_new(m.ctx, 0) == NULL);
    CHECK(sampler_new(NULL, 4) == NULL);
    smp_free(&m);
}

static void test_rng(void) {
    /* a pure function of (seed, step) */
    CHECK(sampler_uniform(1, 5) == sampler_uniform(1, 5));
    CHECK(sampler_uniform(1, 5) != sampler_uniform(2, 5));
    CHECK(sampler_uniform(1, 5) != sampler_uniform(1, 6));
    CHECK(sampler_uniform(0, 0) != sampler_uniform(0, 1));
    double sum = 0, mn = 1, mx = 0;
    const int n = 100000;
    for (int i = 0; i < n; i++) {
        double u = sampler_uniform(12345, (uint64_t)i);
        sum += u;
        if (u < mn) mn = u;
        if (u > mx) mx = u;
    }
    CHECK(mn >= 0 && mx < 1);
    CHECK_NEAR(sum / n, 0.5, 0.005);
}

static void test_top_k(void) {
    const float x[] = {0, 5, 3, 5, 1};
    smp_t m = smp_new(5);
    int32_t ids[5];
    float pr[5];
    sampler_params_t p = {.temperature = 1, .top_k = 2, .top_p = 1, .seed = 1};
    int n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK_EQ_INT(n, 2);
    CHECK(ids[0] == 1 && ids[1] == 3); /* tie: lower index first */
    CHECK_NEAR(pr[0], 0.5, 1e-7);
    CHECK_NEAR(pr[1], 0.5, 1e-7);
    /* top_k 3: the third is id 2 with its softmax share */
    p.top_k = 3;
    n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 3 && ids[2] == 2);
    double e2 = exp(-2.0);
    CHECK_NEAR(pr[2], e2 / (2 + e2), 1e-6);
    /* off (0, or ≥ n): everything, in descending order */
    p.top_k = 0;
    n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 5 && ids[0] == 1 && ids[1] == 3 && ids[2] == 2 && ids[3] == 4 && ids[4] == 0);
    /* only ever draws one of the top-k */
    p.top_k = 2;
    for (uint64_t step = 0; step < 200; step++) {
        int t = draw(&m, &p, x, step);
        CHECK(t == 1 || t == 3);
    }
    smp_free(&m);
}

static void test_top_p(void) {
    /* probabilities 0.5, 0.3, 0.15, 0.05 at temperature 1 */
    const float x[] = {logf(0.15f), logf(0.5f), logf(0.05f), logf(0.3f)};
    smp_t m = smp_new(4);
    int32_t ids[4];
    float pr[4];
    sampler_params_t p = {.temperature = 1, .top_k = 0, .top_p = 0.75f, .seed = 3};
    int n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 3); /* mass above id 2 is 0.8 ≥ 0.75 */
    CHECK_NEAR(pr[0], 0.5 / 0.8, 1e-6);
    p.top_p = 0.85f;
    n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 3 && ids[2] == 0);
    p.top_p = 0.3f; /* the first token alone reaches it */
    n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 1 && ids[0] == 1 && pr[0] == 1.0f);
    /* top-k first, then top-p on the renormalised survivors: k=3 -> 0.5/0.95, 0.3/0.95, ... */
    p.top_k = 3;
    p.top_p = 0.8f; /* 0.5/0.95 = 0.526 < 0.8, +0.3/0.95 = 0.842 -> two tokens */
    n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 2 && ids[0] == 1 && ids[1] == 3);
    /* temperature sharpens: at T = 0.1 the top token has almost all the mass */
    p.top_k = 0;
    p.top_p = 0.9f;
    p.temperature = 0.1f;
    n = sampler_candidates(m.s, &p, x, ids, pr);
    CHECK(n == 1 && ids[0] == 1);
    smp_free(&m);
}

/* Frequencies of 40000 draws at temperature 1 follow the softmax. */
static void test_frequencies(void) {
    const float x[] = {logf(0.5f), logf(0.3f), logf(0.15f), logf(0.05f)};
    smp_t m = smp_new(4);
    sampler_params_t p = {.temperature = 1, .top_k = 0, .top_p = 1, .seed = 2024};
    int count[4] = {0};
    const int n = 40000;
    for (int i = 0; i < n; i++) count[draw(&m, &p, x, (uint64_t)i)]++;
    const double want[] = {0.5, 0.3, 0.15, 0.05};
    for (int i = 0; i < 4; i++) CHECK_NEAR((double)count[i] / n, want[i], 0.01);
    smp_free(&m);
}

/* A job's tokens: the same sequence whatever the thread count, and whatever order the steps
 * are drawn in (steps drawn concurrently by two threads, each with its own sampler). */
static void sample_steps(int threads, int reverse, const float *logits, int vocab, int *out, int n) {
    omp_set_num_threads(threads);
#pragma omp parallel
    {
        smp_t m = smp_new(vocab);
        sampler_params_t p = {.temperature = 0.8f, .top_k = 50, .top_p = 0.95f, .seed = 777};
#pragma omp for schedule(dynamic, 1)
        for (int i = 0; i < n; i++) {
            int step = reverse ? n - 1 - i : i;
            out[step] = draw(&m, &p, logits + (size_t)step * vocab, (uint64_t)step);
        }
        smp_free(&m);
    }
}

static void test_threads(void) {
    const int vocab = 32064, n = 24;
    float *logits = malloc(sizeof *logits * (size_t)vocab * n);
    uint64_t z = 1;
    for (size_t i = 0; i < (size_t)vocab * n; i++) {
        z = z * 6364136223846793005ull + 1442695040888963407ull;
        logits[i] = (float)((z >> 40) % 1000) / 100.0f;
    }
    int a[24], b[24], c[24];
    sample_steps(1, 0, logits, vocab, a, n);
    sample_steps(2, 0, logits, vocab, b, n);
    sample_steps(2, 1, logits, vocab, c, n);
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(!memcmp(a, c, sizeof a));
    int distinct = 0;
    for (int i = 1; i < n; i++) distinct += a[i] != a[0];
    CHECK(distinct > 0);
    free(logits);
}

int main(void) {
    char err[HIRED_ERR_LEN];
    CHECK_MSG((g_dev = k_device_open("cpu", err)) != NULL, "%s", err);
    if (!g_dev) return test_summary();
    test_argmax();
    test_rng();
    test_top_k();
    test_top_p();
    test_frequencies();
    test_threads();
    k_device_close(&g_dev);
    return test_summary();
}
