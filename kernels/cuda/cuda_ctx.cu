/* cuda_ctx.cu — device selection, device memory, streams and cuBLAS handles (see cuda_ctx.h).
 * The functions here are called outside any op (device open, weight placement, context
 * creation), so they report into a caller's err buffer instead of a k_ctx_t. */
#include <stdio.h>
#include <stdlib.h>

#include "cuda_impl.h"

extern "C" {
#include "log.h"
}

/* A failed call's error is also cleared from the runtime's last-error slot (where it is not
 * sticky), so that the next kernel launch's check does not report it as its own. */
#define ERR_TRY(err, call)                                                                               \
    do {                                                                                                 \
        cudaError_t e_ = (call);                                                                         \
        if (e_ != cudaSuccess) {                                                                         \
            (void)cudaGetLastError();                                                                    \
            return hired_errf((err), cu_code(e_), "%s: %s (%s:%d)", #call, cudaGetErrorString(e_), __FILE__, \
                              __LINE__);                                                                 \
        }                                                                                                \
    } while (0)

static const double GIB = 1024.0 * 1024.0 * 1024.0;

extern "C" int cuda_device_count(char *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        if (err) hired_errf(err, HIRED_ECUDA, "cudaGetDeviceCount: %s", cudaGetErrorString(e));
        cudaGetLastError(); /* not sticky: clear it */
        return 0;
    }
    return n;
}

extern "C" int cuda_set_device(int device, char *err) {
    ERR_TRY(err, cudaSetDevice(device));
    return HIRED_OK;
}

extern "C" int cuda_device_open(int device, char *desc, size_t desc_len, char *err) {
    char why[HIRED_ERR_LEN] = "";
    int n = cuda_device_count(why);
    if (device < 0 || device >= n)
        return hired_errf(err, HIRED_EUNSUPPORTED, "no such CUDA device (%d present%s%s)", n,
                          why[0] ? ": " : "", why);
    ERR_TRY(err, cudaSetDevice(device));
    cudaDeviceProp p;
    ERR_TRY(err, cudaGetDeviceProperties(&p, device));
    if (p.major * 10 + p.minor < 75)
        return hired_errf(err, HIRED_EUNSUPPORTED,
                          "cuda:%d: %s is sm_%d%d; this build supports sm_75 and newer (CUDA 13 dropped older GPUs)",
                          device, p.name, p.major, p.minor);
    size_t fr = 0, tot = 0;
    ERR_TRY(err, cudaMemGetInfo(&fr, &tot));
    int drv = 0, rt = 0;
    cudaDriverGetVersion(&drv);
    cudaRuntimeGetVersion(&rt);
    snprintf(desc, desc_len, "%s, sm_%d%d, %d SMs, %.1f GiB (%.1f GiB free), driver %d.%d, runtime %d.%d", p.name,
             p.major, p.minor, p.multiProcessorCount, (double)tot / GIB, (double)fr / GIB, drv / 1000,
             drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
    return HIRED_OK;
}

extern "C" int cuda_mem_info(int device, size_t *free_bytes, size_t *total_bytes, char *err) {
    ERR_TRY(err, cudaSetDevice(device));
    ERR_TRY(err, cudaMemGetInfo(free_bytes, total_bytes));
    return HIRED_OK;
}

extern "C" int cuda_alloc(int device, size_t n, const char *what, void **p, char *err) {
    *p = NULL;
    ERR_TRY(err, cudaSetDevice(device));
    cudaError_t e = cudaMalloc(p, n ? n : 1);
    if (e == cudaSuccess) return HIRED_OK;
    *p = NULL;
    if (e != cudaErrorMemoryAllocation)
        return hired_errf(err, HIRED_ECUDA, "cudaMalloc(%zu) for %s: %s", n, what, cudaGetErrorString(e));
    cudaGetLastError(); /* out of memory is not sticky: clear it */
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    return hired_errf(err, HIRED_ENOMEM,
                      "cuda:%d: out of device memory for %s: %zu bytes (%.2f GiB) needed, %zu bytes (%.2f GiB) free "
                      "of %.2f GiB",
                      device, what, n, (double)n / GIB, fr, (double)fr / GIB, (double)tot / GIB);
}

extern "C" void cuda_free(int device, void *p) {
    if (!p) return;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaFree(p);
    if (e != cudaSuccess) log_error("cuda:%d: cudaFree: %s", device, cudaGetErrorString(e));
}

extern "C" int cuda_copy_sync(int device, void *dst, const void *src, size_t n, char *err) {
    ERR_TRY(err, cudaSetDevice(device));
    if (n) ERR_TRY(err, cudaMemcpy(dst, src, n, cudaMemcpyDefault));
    return HIRED_OK;
}

extern "C" cuda_ctx_t *cuda_ctx_new(int device, char *err) {
    cuda_ctx_t *c = (cuda_ctx_t *)calloc(1, sizeof *c);
    if (!c) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    c->device = device;
    cudaError_t e = cudaSetDevice(device);
    if (e == cudaSuccess) e = cudaStreamCreateWithFlags(&c->stream, cudaStreamNonBlocking);
    if (e != cudaSuccess) {
        hired_errf(err, HIRED_ECUDA, "cuda:%d: cudaStreamCreateWithFlags: %s", device, cudaGetErrorString(e));
        free(c);
        return NULL;
    }
    cublasStatus_t s = cublasCreate(&c->blas);
    if (s == CUBLAS_STATUS_SUCCESS) {
        s = cublasSetStream(c->blas, c->stream);
        if (s != CUBLAS_STATUS_SUCCESS) cublasDestroy(c->blas);
    }
    if (s != CUBLAS_STATUS_SUCCESS) {
        hired_errf(err, HIRED_ECUDA, "cuda:%d: cublasCreate/cublasSetStream: %s", device, cublasGetStatusString(s));
        cudaStreamDestroy(c->stream);
        free(c);
        return NULL;
    }
    return c;
}

extern "C" void cuda_ctx_destroy(cuda_ctx_t **pc) {
    if (!pc || !*pc) return;
    cuda_ctx_t *c = *pc;
    cudaSetDevice(c->device);
    cudaStreamSynchronize(c->stream);
    cublasDestroy(c->blas);
    cudaStreamDestroy(c->stream);
    free(c);
    *pc = NULL;
}

extern "C" int cuda_ctx_device(const cuda_ctx_t *c) { return c->device; }

extern "C" int cuda_ctx_memcpy(cuda_ctx_t *c, void *dst, const void *src, size_t n, bool wait, char *err) {
    ERR_TRY(err, cudaSetDevice(c->device));
    if (n) ERR_TRY(err, cudaMemcpyAsync(dst, src, n, cudaMemcpyDefault, c->stream));
    if (wait) ERR_TRY(err, cudaStreamSynchronize(c->stream));
    return HIRED_OK;
}

extern "C" int cuda_ctx_sync(cuda_ctx_t *c, char *err) {
    ERR_TRY(err, cudaSetDevice(c->device));
    ERR_TRY(err, cudaStreamSynchronize(c->stream));
    return HIRED_OK;
}
