/* cuda_ctx.h — the CUDA backend's context: device, stream and cuBLAS handle, passed explicitly
 * to every CUDA op (no globals). Plain C header; model code never includes CUDA headers.
 * Only built when the CUDA toolkit is found (HIRED_HAVE_CUDA). */
#ifndef HIRED_CUDA_CTX_H
#define HIRED_CUDA_CTX_H

typedef struct cuda_ctx cuda_ctx_t;

/* Number of usable CUDA devices (0 when there is no driver or no device). */
int cuda_device_count(void);
/* Context on device `device`. Caller owns the result (cuda_ctx_destroy); NULL with err filled
 * when the device is absent or initialisation fails. */
cuda_ctx_t *cuda_ctx_new(int device, char *err);
/* Frees stream and cuBLAS handle. Accepts NULL; sets *ctx = NULL. */
void cuda_ctx_destroy(cuda_ctx_t **ctx);
/* C[m,n] = A[m,k] · B[n,k]^T on device buffers, float32, through cuBLAS. 0 or HIRED_ECUDA. */
int cuda_sgemm_nt(cuda_ctx_t *ctx, int m, int n, int k, const float *a, const float *b, float *c);

#endif
