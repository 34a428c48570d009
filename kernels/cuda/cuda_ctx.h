/* cuda_ctx.h — the CUDA runtime under the backend seam, as plain C: device selection, device
 * memory, and the per-context stream and cuBLAS handle. backend.c builds k_device_t / k_ctx_t of
 * the CUDA backend on these; the CUDA ops (cuda_ops.h) reach a context's stream and handle
 * through k_ctx_cuda. Model code never includes this header nor any CUDA header.
 *
 * Errors: every function that can fail returns 0 or a negative HIRED_E* and writes a message
 * naming the CUDA or cuBLAS call that failed and its error string into err
 * (HIRED_ERR_LEN bytes). Out of device memory is HIRED_ENOMEM (the message names the bytes
 * asked for and the bytes the driver reports free); every other failure is HIRED_ECUDA, which
 * the worker daemons treat as fatal (a CUDA error may be sticky: the context is unusable).
 * Only built when the CUDA toolkit is found (HIRED_HAVE_CUDA). */
#ifndef HIRED_CUDA_CTX_H
#define HIRED_CUDA_CTX_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cuda_ctx cuda_ctx_t;
struct k_ctx;

/* Number of usable CUDA devices: 0 when there is no driver or no device (why in err, which
 * may be NULL). */
int cuda_device_count(char *err);
/* Makes device the calling thread's current device (cudaSetDevice) and writes a one-line
 * description (name, compute capability, memory, SMs) into desc[desc_len]. Refuses a device
 * below sm_75 (HIRED_EUNSUPPORTED), which this build has no code for. */
int cuda_device_open(int device, char *desc, size_t desc_len, char *err);
/* cudaSetDevice for the calling thread (cheap when it is already current). */
int cuda_set_device(int device, char *err);
/* n bytes of device memory on device (plain cudaMalloc). HIRED_ENOMEM names n and the free
 * and total bytes. what names the allocation in the message ("weight [4096, 4096] F16"). */
int cuda_alloc(int device, size_t n, const char *what, void **p, char *err);
/* cudaFree; NULL-safe. Errors are logged (a free cannot be reported to anyone). */
void cuda_free(int device, void *p);
/* Free and total device memory (cudaMemGetInfo). */
int cuda_mem_info(int device, size_t *free_bytes, size_t *total_bytes, char *err);
/* Synchronous copy between any two addresses (cudaMemcpy, kind from the unified address
 * space): for weight placement, outside any context. */
int cuda_copy_sync(int device, void *dst, const void *src, size_t n, char *err);

/* A stream and a cuBLAS handle bound to it, on device. Caller owns it (cuda_ctx_destroy). */
cuda_ctx_t *cuda_ctx_new(int device, char *err);
/* NULL-safe; sets *c = NULL. */
void cuda_ctx_destroy(cuda_ctx_t **c);
int cuda_ctx_device(const cuda_ctx_t *c);
/* Copy of n bytes on c's stream (cudaMemcpyAsync, any direction); with wait the stream is
 * synchronised before returning (the host side may then be reused). */
int cuda_ctx_memcpy(cuda_ctx_t *c, void *dst, const void *src, size_t n, bool wait, char *err);
/* cudaStreamSynchronize: also reports an earlier asynchronous (sticky) fault. */
int cuda_ctx_sync(cuda_ctx_t *c, char *err);

/* The CUDA context of a k_ctx_t of the CUDA backend (backend.c); NULL on another backend. */
cuda_ctx_t *k_ctx_cuda(struct k_ctx *c);

#ifdef __cplusplus
}
#endif

#endif
