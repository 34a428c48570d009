/* test_cuda_ctx — the CUDA backend links (cudart + cuBLAS) and, on a machine with a GPU,
 * multiplies correctly. Without a device it exits 77 so ctest reports "Not Run". */
#include "test.h"

#include <cuda_runtime_api.h>

#include "cuda_ctx.h"
#include "err.h"

int main(void) {
    if (cuda_device_count() == 0) {
        printf("no CUDA device: skipped\n");
        char err[HIRED_ERR_LEN] = "";
        /* the no-device path must still fail cleanly, not crash */
        if (cuda_ctx_new(0, err) != NULL) return 1;
        return 77;
    }
    char err[HIRED_ERR_LEN];
    cuda_ctx_t *ctx = cuda_ctx_new(0, err);
    CHECK_MSG(ctx != NULL, "%s", err);
    if (!ctx) return test_summary();
    enum { M = 3, N = 5, K = 7 };
    float a[M * K], b[N * K], c[M * N], want[M * N];
    for (int i = 0; i < M * K; i++) a[i] = (float)(i % 5) - 2.0f;
    for (int i = 0; i < N * K; i++) b[i] = (float)(i % 3) * 0.5f;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = 0;
            for (int k = 0; k < K; k++) s += a[i * K + k] * b[j * K + k];
            want[i * N + j] = s;
        }
    float *da, *db, *dc;
    cudaMalloc((void **)&da, sizeof a);
    cudaMalloc((void **)&db, sizeof b);
    cudaMalloc((void **)&dc, sizeof c);
    cudaMemcpy(da, a, sizeof a, cudaMemcpyHostToDevice);
    cudaMemcpy(db, b, sizeof b, cudaMemcpyHostToDevice);
    CHECK_EQ_INT(cuda_sgemm_nt(ctx, M, N, K, da, db, dc), 0);
    cudaMemcpy(c, dc, sizeof c, cudaMemcpyDeviceToHost);
    for (int i = 0; i < M * N; i++) CHECK_NEAR(c[i], want[i], 1e-4);
    cudaFree(da);
    cudaFree(db);
    cudaFree(dc);
    cuda_ctx_destroy(&ctx);
    return test_summary();
}
