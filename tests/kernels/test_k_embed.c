/* test_k_embed — token lookup is bit-exact against the reference for F32/F16/BF16 tables (the
 * ids' range is the caller's to check: the text model does, test_llm); patch embedding matches the convolution written out
 * (NMSE ≤ 1e-10, embed.h) for CLIP-like and ragged images (h, w not multiples of p), F16
 * weights, and without scratch (reference fallback); a one-patch case by hand. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "err.h"
#include "half.h"
#include "kverify.h"
#include "mem.h"
#include "ktest.h"
#include "test.h"

static void *convert(const float *src, size_t n, tensor_dtype_t dt) {
    if (dt == TENSOR_DTYPE_F32) {
        void *p = malloc(n * 4);
        memcpy(p, src, n * 4);
        return p;
    }
    uint16_t *h = malloc(n * 2);
    for (size_t i = 0; i < n; i++) h[i] = dt == TENSOR_DTYPE_F16 ? f32_to_half(src[i]) : f32_to_bf16(src[i]);
    return h;
}

static void test_embed(void) {
    enum { VOCAB = 1000, D = 67, N = 300 };
    float *t32 = malloc(sizeof(float) * VOCAB * D), *y = malloc(sizeof(float) * N * D), *yr = malloc(sizeof(float) * N * D);
    kverify_fill(t32, VOCAB * D, 5, -1, 1);
    t32[7 * D + 3] = 1e-6f; /* an F16 subnormal */
    int32_t ids[N];
    for (int i = 0; i < N; i++) ids[i] = (i * 37 + 11) % VOCAB;
    ids[0] = 7, ids[1] = VOCAB - 1, ids[2] = 0;
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F32, TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    for (size_t d = 0; d < ARRAY_LEN(dts); d++) {
        void *table = convert(t32, (size_t)VOCAB * D, dts[d]);
        k_embed_args a = {.n = N, .d = D, .ids = ids, .table = table, .table_dtype = dts[d], .vocab = VOCAB, .y = y};
        char err[HIRED_ERR_LEN];
        CHECK_MSG(k_embed_check(&a, err) == 0, "%s", err);
        k_embed_cpu(ktest_ctx(), &a);
        a.y = yr;
        k_embed_ref(&a);
        CHECK_MSG(memcmp(y, yr, sizeof(float) * N * D) == 0, "embed %s", tensor_dtype_name(dts[d]));
        if (dts[d] == TENSOR_DTYPE_F32) CHECK(y[0 * D + 3] == 1e-6f && y[1 * D] == t32[(VOCAB - 1) * D]);
        free(table);
    }
    char err[HIRED_ERR_LEN];
    k_embed_args a = {.n = N, .d = D, .ids = ids, .table = t32, .table_dtype = TENSOR_DTYPE_F32, .vocab = VOCAB, .y = y};
    CHECK_EQ_INT(k_embed_check(&a, err), 0);
    a.vocab = 0;
    CHECK_EQ_INT(k_embed_check(&a, err), HIRED_EINVAL);
    a.vocab = VOCAB, a.table_dtype = (tensor_dtype_t)9;
    CHECK_EQ_INT(k_embed_check(&a, err), HIRED_EINVAL);
    a.table_dtype = TENSOR_DTYPE_F32, a.ids = NULL;
    CHECK_EQ_INT(k_embed_check(&a, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_embed_check(NULL, err), HIRED_EINVAL);
    free(t32), free(y), free(yr);
}

/* Every one of the 65536 half and bfloat16 bit patterns converts to the value half.h gives
 * (NaN to some NaN: F16C quiets signalling NaNs), through the vectorised row path. */
static void test_all_halves(void) {
    enum { D = 65536 };
    uint16_t *table = malloc(sizeof(uint16_t) * D);
    float *y = malloc(sizeof(float) * D);
    for (int i = 0; i < D; i++) table[i] = (uint16_t)i;
    int32_t id = 0;
    const tensor_dtype_t dts[] = {TENSOR_DTYPE_F16, TENSOR_DTYPE_BF16};
    for (size_t d = 0; d < 2; d++) {
        k_embed_args a = {.n = 1, .d = D, .ids = &id, .table = table, .table_dtype = dts[d], .vocab = 1, .y = y};
        k_embed_cpu(ktest_ctx(), &a);
        int bad = 0;
        for (int i = 0; i < D; i++) {
            float want = dts[d] == TENSOR_DTYPE_F16 ? half_to_f32((uint16_t)i) : bf16_to_f32((uint16_t)i);
            bool same = (isnan(want) && isnan(y[i])) || memcmp(&want, &y[i], 4) == 0;
            if (!same && bad++ < 3) fprintf(stderr, "%s 0x%04x: got %a want %a\n", tensor_dtype_name(dts[d]), i, y[i], want);
        }
        CHECK_MSG(bad == 0, "%s: %d bit patterns converted wrongly", tensor_dtype_name(dts[d]), bad);
    }
    free(table), free(y);
}

static void run_patch(int c, int h, int w, int p, int d, tensor_dtype_t dt, bool fail_alloc) {
    size_t ni = (size_t)c * h * w, nw = (size_t)d * c * p * p, ny = (size_t)(h / p) * (w / p) * d;
    float *img = malloc(ni * 4), *w32 = malloc(nw * 4), *y = malloc(ny * 4), *yr = malloc(ny * 4);
    kverify_fill(img, ni, 11, -2, 2);
    kverify_fill(w32, nw, 12, -0.1f, 0.1f);
    void *wt = convert(w32, nw, dt);
    k_patch_embed_args a = {.c = c, .h = h, .w = w, .p = p, .d = d, .img = img, .weight = wt, .w_dtype = dt, .y = y};
    char err[HIRED_ERR_LEN];
    CHECK_MSG(k_patch_embed_check(&a, err) == 0, "%s", err);
    if (fail_alloc) mem_fail_after(0, true);
    k_patch_embed_cpu(ktest_ctx(), &a);
    if (fail_alloc) mem_fail_after(-1, false);
    a.y = yr;
    k_patch_embed_ref(&a);
    char name[96];
    snprintf(name, sizeof name, "patch_embed c=%d %dx%d p=%d d=%d %s%s", c, h, w, p, d, tensor_dtype_name(dt),
             fail_alloc ? " (no scratch)" : "");
    kverify_result r = kverify_nmse(y, yr, ny, 1e-10);
    CHECK_MSG(kverify_report(name, &r, y, yr), "%s", name);
    free(img), free(w32), free(y), free(yr), free(wt);
}

static void test_patch(void) {
    /* one 2×2 patch by hand: Σ w·x = 1·1 + 2·2 + 3·3 + 4·4 = 30 */
    float img[4] = {1, 2, 3, 4}, w[4] = {1, 2, 3, 4}, y[1];
    k_patch_embed_args a = {.c = 1, .h = 2, .w = 2, .p = 2, .d = 1, .img = img, .weight = w, .w_dtype = TENSOR_DTYPE_F32, .y = y};
    k_patch_embed_cpu(ktest_ctx(), &a);
    CHECK_NEAR(y[0], 30.0, 0);
    run_patch(3, 112, 84, 14, 64, TENSOR_DTYPE_F32, false); /* 8×6 grid */
    run_patch(3, 30, 45, 14, 33, TENSOR_DTYPE_F16, false);  /* ragged: 2×3 grid, remainder dropped */
    run_patch(3, 56, 56, 14, 1024, TENSOR_DTYPE_BF16, false);
    run_patch(3, 30, 45, 14, 33, TENSOR_DTYPE_F32, true);
    char err[HIRED_ERR_LEN];
    a.p = 3;
    CHECK_EQ_INT(k_patch_embed_check(&a, err), HIRED_EINVAL);
    CHECK(strstr(err, "patch") != NULL);
    a.p = 0;
    CHECK_EQ_INT(k_patch_embed_check(&a, err), HIRED_EINVAL);
    a.p = 2, a.weight = NULL;
    CHECK_EQ_INT(k_patch_embed_check(&a, err), HIRED_EINVAL);
    CHECK_EQ_INT(k_patch_embed_check(NULL, err), HIRED_EINVAL);
}

int main(void) {
    test_all_halves();
    test_embed();
    test_patch();
    return test_summary();
}
