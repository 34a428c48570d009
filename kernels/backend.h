/* backend.h — the seam between model code and the kernels: a device per process, a context per
 * job thread, and the explicit transfer points between host and device memory.
 *
 *   k_device_t  one per process and device ("cpu", "cuda:N"). Owns what
 *               is placed on the device for the process's lifetime: weights (k_weight_t), KV
 *               caches and prompt buffers (k_device_alloc). Shared read-only by every job thread.
 *   k_ctx_t     one per job thread (CUDA: its stream and cuBLAS handle). Every op is called
 *               through a context (registry.h: k_matmul(ctx, &args) ...); it owns a scratch arena
 *               (job activations and kernel workspaces) and the message of the last failure.
 *
 * Memory kinds: "device memory" is what ops read and write — placed weights, k_device_alloc
 * blocks and the context's arena. On the CPU backend device memory is host memory, but model
 * code never relies on that: it moves data between its own host buffers and device memory only
 * through k_ctx_upload / k_ctx_download (which copy, or do nothing when source and destination
 * are the same address), so the CUDA backend adds code without changing callers.
 *
 * Errors: ops and transfers return 0 or a negative HIRED_E*; a backend fault is HIRED_ECUDA (the
 * worker daemons exit on it so the broker re-queues). The message is in k_ctx_err(ctx).
 * Threads: a device may be shared; a context belongs to one thread at a time.
 * Not here: the ops (kernels/<op>.h), the dispatch table (registry.h). */
#ifndef HIRED_K_BACKEND_H
#define HIRED_K_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "tensor.h"

typedef enum { K_BACKEND_CPU = 0, K_BACKEND_CUDA, K_BACKEND_COUNT } k_backend_t;

typedef struct k_device k_device_t;
typedef struct k_ctx k_ctx_t;

// ---- devices ------------------------------------------------------------------------------------

/* Opens the device named by spec: "cpu" (NULL or "" too), or "cuda:N" (cudaSetDevice on the
 * calling thread; the device's name, compute capability and memory are logged). Caller owns the
 * result (k_device_close). NULL with err: HIRED_EINVAL for a malformed name,
 * HIRED_EUNSUPPORTED for a CUDA device this process cannot use (a build without the CUDA
 * toolkit, no such device, a GPU older than sm_75), HIRED_ECUDA when the driver fails. */
k_device_t *k_device_open(const char *spec, char *err);
/* Frees the device. Everything placed on it must have been freed first. NULL-safe; sets *d = NULL. */
void k_device_close(k_device_t **d);
/* Opens spec's device and closes it again (--check-config's device check, svc_daemon_t.
 * probe_device): 0, or HIRED_EUNSUPPORTED with k_device_open's message in err. */
int k_device_probe(const char *spec, char *err);
k_backend_t k_device_backend(const k_device_t *d);
/* "cpu", "cuda:0". Static or device-owned storage, valid until k_device_close. */
const char *k_device_name(const k_device_t *d);
/* "cpu", "cuda". */
const char *k_backend_name(k_backend_t b);
/* The kernel family d's GEMMs run, one line for start-up logs and benchmark output, e.g.
 * "gemm: oneDNN 2.6.3 (avx512_core_bf16)" (CPU: chosen from the CPU's features, see
 * kernels/cpu/gemm.h; also the Q8 matmul's kernel, kernels/q8.h). Static storage. */
const char *k_device_kernels(const k_device_t *d);

/* n bytes of device memory, 64-byte aligned, uninitialised. Caller owns it (k_device_free).
 * NULL when out of memory. */
void *k_device_alloc(k_device_t *d, size_t n);
/* NULL-safe. */
void k_device_free(k_device_t *d, void *p);

// ---- weights ------------------------------------------------------------------------------------

/* A weight placed on a device: a [rows, cols] row-major matrix (a vector is [n, 1]) in dtype.
 * data is device memory. Placement is done once at load: the CPU backend borrows the host data
 * it is given (the read-only mmap of the checkpoint: no copy) unless asked to take it; another
 * backend copies it once to the device (CUDA: plain cudaMalloc in the stored dtype; when it
 * does not fit, HIRED_ENOMEM names the bytes needed, the bytes free and what was placed before). */
typedef struct {
    const void *data;     /* [rows, cols] in dtype, device memory */
    tensor_dtype_t dtype;
    int64_t rows, cols;
    void *owned;          /* device memory to free with the weight, or NULL (borrowed) */
    bool host_owned;      /* owned is a host block taken over by a backend that shares memory */
} k_weight_t;

/* Places host data [rows, cols] of dtype on d into *w. take: the caller hands over host, a
 * block from mem_alloc_aligned, which the weight then frees (on the CPU it is used in place;
 * elsewhere it is copied and freed at once); otherwise host is borrowed (the CPU backend keeps
 * pointing at it, so it must outlive the weight) or copied. 0 or HIRED_ENOMEM with err; on
 * failure a taken block is freed and *w is zeroed. Q8 weights (q8.h: host is the whole block
 * of k_q8_bytes) are placed on the CPU backend only: elsewhere HIRED_EUNSUPPORTED ("8-bit weights
 * run on the CPU backend only"). */
int k_weight_place(k_device_t *d, const void *host, tensor_dtype_t dtype, int64_t rows, int64_t cols, bool take,
                   k_weight_t *w, char *err);
/* Frees what the weight owns and zeroes it. NULL-safe, safe on a zeroed weight. */
void k_weight_free(k_device_t *d, k_weight_t *w);
/* Bytes of the weight's data (Q8: quants and scales). */
size_t k_weight_bytes(const k_weight_t *w);

// ---- contexts -----------------------------------------------------------------------------------

/* A context on d for one job thread. Borrows d (it must outlive the context). Caller owns the
 * result (k_ctx_destroy). NULL with err. */
k_ctx_t *k_ctx_new(k_device_t *d, char *err);
/* NULL-safe; sets *c = NULL. */
void k_ctx_destroy(k_ctx_t **c);
k_device_t *k_ctx_device(const k_ctx_t *c);
k_backend_t k_ctx_backend(const k_ctx_t *c);
/* A context of the CPU backend whose memory is the host's, for the host-side algorithms that run
 * on downloaded data (token selection, sampling): c itself on the CPU backend; on another
 * backend a CPU context c owns. Borrowed, valid until k_ctx_destroy(c). */
k_ctx_t *k_ctx_host(k_ctx_t *c);

/* The message of the last failed op or transfer on c ("" when none failed). Borrowed, valid
 * until the next call on c. */
const char *k_ctx_err(const k_ctx_t *c);
/* Records a failure on c (printf-style) and returns code: for backends and the dispatcher. */
#if defined(__GNUC__) || defined(__clang__)
int k_ctx_fail(k_ctx_t *c, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
#else
int k_ctx_fail(k_ctx_t *c, int code, const char *fmt, ...);
#endif

/* Writes "what: <c's failure message>" into err (may be NULL) and returns rc: how model code
 * turns a failed op into its own error. */
int k_ctx_report(const k_ctx_t *c, int rc, char *err, const char *what);

// ---- the scratch arena: job activations and kernel workspaces ---------------------------------

/* n bytes of device memory from c's arena, 64-byte aligned, valid until the arena is released
 * below it (k_ctx_release) or reset. NULL (with k_ctx_err set) when out of memory. Allocations
 * nest like a stack: k_ctx_mark before, k_ctx_release after. */
void *k_ctx_alloc(k_ctx_t *c, size_t n);
/* The arena's current top, for k_ctx_release. */
size_t k_ctx_mark(const k_ctx_t *c);
/* Frees everything allocated since mark. */
void k_ctx_release(k_ctx_t *c, size_t mark);
/* Frees everything and forgets the last failure (the start of a job). When the arena has had to borrow overflow memory since
 * the last reset, its one block grows here to the high-water mark, so the same work after a
 * reset runs without allocating. */
void k_ctx_reset(k_ctx_t *c);
/* Makes sure the arena holds at least n bytes in one block (allocating now if it must), so
 * that a job known to need n bytes does not allocate while it runs. Only at the bottom of the
 * arena (nothing allocated). 0 or HIRED_ENOMEM. */
int k_ctx_reserve(k_ctx_t *c, size_t n);
/* Bytes of the arena's block (what it can hand out without allocating). */
size_t k_ctx_capacity(const k_ctx_t *c);

// ---- transfers ----------------------------------------------------------------------------------

/* Explicit transfer points. dev is device memory, host is the caller's host memory; n bytes.
 * They copy (a no-op when both are the same address on a backend that shares memory) and
 * complete before returning. 0, or HIRED_ECUDA with k_ctx_err. */
int k_ctx_upload(k_ctx_t *c, void *dev, const void *host, size_t n);
int k_ctx_download(k_ctx_t *c, void *host, const void *dev, size_t n);
/* Device-to-device copy of n bytes, ordered with c's ops (it need not be complete on return). */
int k_ctx_copy(k_ctx_t *c, void *dst, const void *src, size_t n);
/* Waits until every op issued on c has finished; reports an asynchronous backend fault
 * (HIRED_ECUDA naming the call). A no-op on the CPU backend. */
int k_ctx_sync(k_ctx_t *c);
/* Makes c's device current for the calling thread (CUDA: cudaSetDevice); the dispatcher calls it
 * before every op, so a context may move between threads. 0 or HIRED_ECUDA. */
int k_ctx_bind(k_ctx_t *c);

#endif
