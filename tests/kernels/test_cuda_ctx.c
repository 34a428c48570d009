/* test_cuda_ctx — the CUDA backend behind the seam (backend.h), on a machine with a CUDA device:
 * cuda:N parsing, device open, weights placed in their stored dtype and read back bit for bit,
 * the clear error of a weight that does not fit (bytes needed and free), the device arena
 * (overflow, reset, reserve), transfers, one op through the dispatcher against the reference,
 * and a sticky fault (a kernel reading an invalid address) coming back as HIRED_ECUDA with the
 * failing call named. Without a device (or in a build without CUDA) it checks that cuda:N is
 * refused cleanly and exits 77 (ctest: Not Run, never counted as passed). */
#include "test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "err.h"
#include "gather.h"
#include "half.h"
#include "matmul.h"
#include "mem.h"
#include "q8.h"
#include "registry.h"

static void test_names(void) {
    char err[HIRED_ERR_LEN];
    const char *bad[] = {"cuda:", "cuda:x", "cuda:-1", "cuda:0x", "cuda0", "gpu", "cuda:99999"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = 0;
        CHECK_MSG(k_device_open(bad[i], err) == NULL, "%s opened", bad[i]);
        CHECK_MSG(strstr(err, "expected cpu or cuda:N") != NULL, "%s: %s", bad[i], err);
    }
    /* a well-formed name of a device that is not there */
    CHECK(k_device_open("cuda:1000", err) == NULL);
    CHECK_MSG(strstr(err, "cuda:1000") != NULL, "%s", err);
}

static void test_weights(k_device_t *d, k_ctx_t *c) {
    char err[HIRED_ERR_LEN];
    enum { R = 37, C = 53 };
    uint16_t h[R * C];
    for (int i = 0; i < R * C; i++) h[i] = f32_to_half((float)(i % 101) * 0.01f - 0.5f);
    k_weight_t w;
    CHECK_EQ_INT(k_weight_place(d, h, TENSOR_DTYPE_F16, R, C, false, &w, err), 0);
    CHECK(w.data != NULL && w.data != (const void *)h && w.owned == w.data && !w.host_owned);
    CHECK_EQ_INT((long long)k_weight_bytes(&w), (long long)sizeof h);
    uint16_t back[R * C];
    memset(back, 0, sizeof back);
    CHECK_EQ_INT(k_ctx_download(c, back, w.data, sizeof back), 0);
    CHECK(memcmp(back, h, sizeof h) == 0);
    k_weight_free(d, &w);
    CHECK(w.data == NULL && w.owned == NULL);

    /* a taken host block is copied and freed at once (ASan would see a leak otherwise) */
    float *blk = mem_alloc_aligned(64 * sizeof(float));
    for (int i = 0; i < 64; i++) blk[i] = (float)i;
    CHECK_EQ_INT(k_weight_place(d, blk, TENSOR_DTYPE_F32, 8, 8, true, &w, err), 0);
    float fb[64];
    CHECK_EQ_INT(k_ctx_download(c, fb, w.data, sizeof fb), 0);
    CHECK(fb[63] == 63.0f && fb[1] == 1.0f);
    k_weight_free(d, &w);

    /* a weight no GPU holds: HIRED_ENOMEM naming the bytes needed and free, nothing placed */
    static const uint16_t one = 0;
    err[0] = 0;
    int rc = k_weight_place(d, &one, TENSOR_DTYPE_BF16, (int64_t)1 << 30, (int64_t)1 << 20, false, &w, err);
    CHECK_EQ_INT(rc, HIRED_ENOMEM);
    CHECK_MSG(strstr(err, "needed") && strstr(err, "free") && strstr(err, "2251799813685248 bytes"), "%s", err);
    CHECK(w.data == NULL);
    printf("too large: %s\n", err);

    /* 8-bit weights are the CPU backend's only: refused by name, a taken block freed, nothing
     * placed (ASan would see a leak otherwise) */
    uint8_t *q8 = mem_alloc_aligned(k_q8_bytes(4, 64));
    memset(q8, 0, k_q8_bytes(4, 64));
    err[0] = 0;
    CHECK_EQ_INT(k_weight_place(d, q8, TENSOR_DTYPE_Q8, 4, 64, true, &w, err), HIRED_EUNSUPPORTED);
    CHECK_MSG(strstr(err, "8-bit weights run on the CPU backend only") != NULL, "%s", err);
    CHECK(w.data == NULL);
}

static void test_arena(k_ctx_t *c) {
    k_ctx_reset(c);
    size_t m = k_ctx_mark(c);
    void *a = k_ctx_alloc(c, 3 << 20); /* overflows the empty block */
    float x[100], y[100];
    void *b = k_ctx_alloc(c, sizeof x); /* on CUDA an overflow chunk of its own: a copy past it fails */
    CHECK(a && b && a != b);
    for (int i = 0; i < 100; i++) x[i] = (float)i * 0.5f;
    CHECK_MSG(k_ctx_upload(c, b, x, sizeof x) == 0, "upload into an overflow chunk: %s", k_ctx_err(c));
    CHECK_MSG(k_ctx_copy(c, a, b, sizeof x) == 0, "copy between overflow chunks: %s", k_ctx_err(c));
    CHECK_MSG(k_ctx_download(c, y, a, sizeof y) == 0, "download: %s", k_ctx_err(c));
    CHECK(memcmp(x, y, sizeof x) == 0);
    k_ctx_release(c, m);
    k_ctx_reset(c); /* the block grows to the high-water mark */
    CHECK(k_ctx_capacity(c) >= (3u << 20) + sizeof x);
    CHECK_EQ_INT(k_ctx_reserve(c, 8 << 20), 0);
    CHECK(k_ctx_capacity(c) >= (8u << 20));
    CHECK(k_ctx_host(c) != c && k_ctx_backend(k_ctx_host(c)) == K_BACKEND_CPU);
}

/* y[3, 70] = x[3, 64]·w[70, 64]ᵀ + bias with BF16 weights, through k_run, against the reference. */
static void test_matmul(k_device_t *d, k_ctx_t *c) {
    char err[HIRED_ERR_LEN];
    enum { M = 3, N = 70, K = 64 };
    float x[M * K], bias[N], y[M * N], want[M * N];
    uint16_t w[N * K];
    /* multiples of 1/8 in [-0.75, 0.75]: exact in BF16, so rounding the activations changes nothing */
    for (int i = 0; i < M * K; i++) x[i] = (float)((i * 7) % 13 - 6) * 0.125f;
    for (int i = 0; i < N * K; i++) w[i] = f32_to_bf16((float)((i * 5) % 17) * 0.05f - 0.4f);
    for (int i = 0; i < N; i++) bias[i] = (float)i * 0.01f;
    k_matmul_args ref = {.m = M, .n = N, .k = K, .x = x, .w = w, .w_dtype = TENSOR_DTYPE_BF16, .bias = bias, .y = want};
    k_registry_find("matmul")->ref(&ref);
    k_weight_t wd;
    CHECK_EQ_INT(k_weight_place(d, w, TENSOR_DTYPE_BF16, N, K, false, &wd, err), 0);
    size_t mark = k_ctx_mark(c);
    float *dx = k_ctx_alloc(c, sizeof x), *db = k_ctx_alloc(c, sizeof bias), *dy = k_ctx_alloc(c, sizeof y);
    CHECK(dx && db && dy);
    CHECK_EQ_INT(k_ctx_upload(c, dx, x, sizeof x), 0);
    CHECK_EQ_INT(k_ctx_upload(c, db, bias, sizeof bias), 0);
    k_matmul_args a = {.m = M, .n = N, .k = K, .x = dx, .w = wd.data, .w_dtype = TENSOR_DTYPE_BF16, .bias = db, .y = dy};
    CHECK_MSG(k_matmul(c, &a) == 0, "%s", k_ctx_err(c));
    CHECK_EQ_INT(k_ctx_download(c, y, dy, sizeof y), 0);
    /* exact inputs: only the F32 accumulation order differs from the reference */
    for (int i = 0; i < M * N; i++) CHECK_NEAR(y[i], want[i], 1e-4 * (1 + fabs(want[i])));
    k_ctx_release(c, mark);
    k_weight_free(d, &wd);
}

/* A gather from an invalid device address faults asynchronously; the next synchronising call
 * reports HIRED_ECUDA naming it (what makes a worker exit 1). Last: the context is unusable. */
static void test_sticky_fault(k_ctx_t *c) {
    size_t mark = k_ctx_mark(c);
    float *y = k_ctx_alloc(c, 1024 * sizeof(float));
    k_gather_args g = {.n = 4, .d = 256, .x = (const float *)(uintptr_t)0x1000, .y = y};
    int rc = k_gather(c, &g);
    if (!rc) rc = k_ctx_sync(c);
    CHECK_EQ_INT(rc, HIRED_ECUDA);
    CHECK_MSG(strstr(k_ctx_err(c), "cuda") || strstr(k_ctx_err(c), "launch of"), "%s", k_ctx_err(c));
    printf("sticky fault: %s\n", k_ctx_err(c));
    k_ctx_release(c, mark);
}

int main(void) {
    test_names();
    char err[HIRED_ERR_LEN] = "";
    k_device_t *d = k_device_open("cuda:0", err);
    if (!d) {
        CHECK_MSG(strstr(err, "cuda:0") != NULL, "%s", err);
        printf("cuda:0: %s: skipped\n", err);
        return test_failures ? 1 : 77;
    }
    CHECK(k_device_backend(d) == K_BACKEND_CUDA && strcmp(k_device_name(d), "cuda:0") == 0);
    k_ctx_t *c = k_ctx_new(d, err);
    CHECK_MSG(c != NULL, "%s", err);
    if (!c) return test_summary();
    test_weights(d, c);
    test_arena(c);
    test_matmul(d, c);
    test_sticky_fault(c);
    k_ctx_destroy(&c);
    k_device_close(&d);
    return test_summary();
}
