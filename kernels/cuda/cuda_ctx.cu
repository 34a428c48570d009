/* cuda_ctx.cu — device selection, stream and cuBLAS handle for the CUDA backend, and the one
 * GEMM entry point built on them. CUDA_CHECK logs file:line and returns HIRED_ECUDA. */
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <stdio.h>
#include <stdlib.h>

extern "C" {
#include "cuda_ctx.h"
#include "err.h"
#include "log.h"
}

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
};

#define CUDA_CHECK(x)                                                                      \
    do {                                                                                   \
        cudaError_t e_ = (x);                                                              \
        if (e_ != cudaSuccess) {                                                           \
            log_error("%s:%d: %s: %s", __FILE__, __LINE__, #x, cudaGetErrorString(e_));    \
            return HIRED_ECUDA;                                                            \
        }                                                                                  \
    } while (0)

extern "C" int cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
    return n;
}

extern "C" cuda_ctx_t *cuda_ctx_new(int device, char *err) {
    int n = cuda_device_count();
    if (device < 0 || device >= n) {
        hired_errf(err, HIRED_ECUDA, "cuda:%d: no such device (%d present)", device, n);
        return NULL;
    }
    cuda_ctx_t *ctx = (cuda_ctx_t *)calloc(1, sizeof *ctx);
    if (!ctx) return NULL;
    ctx->device = device;
    if (cudaSetDevice(device) != cudaSuccess || cudaStreamCreate(&ctx->stream) != cudaSuccess) {
        hired_errf(err, HIRED_ECUDA, "cuda:%d: cannot create a stream", device);
        free(ctx);
        return NULL;
    }
    if (cublasCreate(&ctx->blas) != CUBLAS_STATUS_SUCCESS ||
        cublasSetStream(ctx->blas, ctx->stream) != CUBLAS_STATUS_SUCCESS) {
        hired_errf(err, HIRED_ECUDA, "cuda:%d: cannot create a cuBLAS handle", device);
        cudaStreamDestroy(ctx->stream);
        free(ctx);
        return NULL;
    }
    return ctx;
}

extern "C" void cuda_ctx_destroy(cuda_ctx_t **ctx) {
    if (!ctx || !*ctx) return;
    cublasDestroy((*ctx)->blas);
    cudaStreamDestroy((*ctx)->stream);
    free(*ctx);
    *ctx = NULL;
}

extern "C" int cuda_sgemm_nt(cuda_ctx_t *ctx, int m, int n, int k, const float *a, const float *b, float *c) {
    /* Row-major C = A·B^T is column-major C^T = B·A^T: cuBLAS sees (n x m) = op(B)(n x k)·A(k x m). */
    const float one = 1.0f, zero = 0.0f;
    cublasStatus_t s = cublasSgemm(ctx->blas, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &one, b, k, a, k, &zero, c, n);
    if (s != CUBLAS_STATUS_SUCCESS) {
        log_error("cublasSgemm(%d,%d,%d) failed: %d", m, n, k, (int)s);
        return HIRED_ECUDA;
    }
    CUDA_CHECK(cudaStreamSynchronize(ctx->stream));
    return HIRED_OK;
}
