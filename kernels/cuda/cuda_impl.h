/* cuda_impl.h — what the CUDA translation units share and C code never sees: the layout of
 * cuda_ctx_t and the checking macros. Every CUDA runtime and cuBLAS call of the backend goes
 * through CU_TRY / BLAS_TRY (or LAUNCH_TRY after a kernel launch), which record the call's text,
 * its error string and file:line on the k_ctx_t and return the error code up through the op's
 * int return (registry.h), so a worker ends on a sticky fault with the call named in its log. */
#ifndef HIRED_CUDA_IMPL_H
#define HIRED_CUDA_IMPL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

extern "C" {
#include "backend.h"
#include "cuda_ctx.h"
#include "err.h"
}

struct cuda_ctx {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
};

/* cudaErrorMemoryAllocation is not sticky: a job may fail for want of memory and the worker
 * carry on; every other error ends the worker (HIRED_ECUDA). */
static inline int cu_code(cudaError_t e) { return e == cudaErrorMemoryAllocation ? HIRED_ENOMEM : HIRED_ECUDA; }

/* As ERR_TRY (cuda_ctx.cu): a failed call's error is cleared from the last-error slot. */
#define CU_TRY(kc, call)                                                                                  \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess) {                                                                          \
            (void)cudaGetLastError();                                                                     \
            return k_ctx_fail((kc), cu_code(e_), "%s: %s (%s:%d)", #call, cudaGetErrorString(e_), __FILE__, \
                              __LINE__);                                                                  \
        }                                                                                                 \
    } while (0)

#define BLAS_TRY(kc, call)                                                                                \
    do {                                                                                                  \
        cublasStatus_t s_ = (call);                                                                       \
        if (s_ != CUBLAS_STATUS_SUCCESS)                                                                  \
            return k_ctx_fail((kc), s_ == CUBLAS_STATUS_ALLOC_FAILED ? HIRED_ENOMEM : HIRED_ECUDA,          \
                              "%s: %s (%s:%d)", #call, cublasGetStatusString(s_), __FILE__, __LINE__);    \
    } while (0)

/* After a kernel launch: a bad configuration, or an earlier sticky fault, names the kernel. */
#define LAUNCH_TRY(kc, kernel_name)                                                                       \
    do {                                                                                                  \
        cudaError_t e_ = cudaGetLastError();                                                              \
        if (e_ != cudaSuccess)                                                                            \
            return k_ctx_fail((kc), cu_code(e_), "launch of %s: %s (%s:%d)", kernel_name,                  \
                              cudaGetErrorString(e_), __FILE__, __LINE__);                                \
    } while (0)

#endif
