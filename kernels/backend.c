/* backend.c — devices, contexts, weight placement, the scratch arena and transfers (see
 * backend.h) for both backends. CPU: device memory is 64-byte aligned host memory from mem.h,
 * placement borrows, transfers are memcpy. CUDA (built when HIRED_HAVE_CUDA): device memory is
 * plain cudaMalloc (cuda_ctx.h), a weight is copied once in its stored dtype, a context owns a
 * stream, a cuBLAS handle, a device arena and a CPU context for host-side algorithms, and
 * transfers are stream-ordered copies (uploads and downloads wait for completion).
 *
 * The arena is one block plus a stack of overflow chunks. Offsets are logical: an allocation
 * at offset o of n bytes lies in the block when o + n <= capacity, otherwise in a chunk of its
 * own (recorded with o). Releasing to a mark frees the chunks at or above it. The high-water
 * offset since the last reset decides how large the block becomes at the next reset, so work
 * that overflowed once runs from the block the next time. */
#include "backend.h"
#include "cpu_ops.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "gemm_x86.h"
#include "log.h"
#include "matmul.h"
#include "mem.h"
#include "q8.h"
#include "simd_x86.h"
#ifdef HIRED_HAVE_CUDA
#include "cuda_ctx.h"
#endif

struct k_device {
    k_backend_t backend;
    int index;          /* CUDA device ordinal */
    char name[24];
    size_t placed;      /* bytes of weights placed (CUDA), for the log and error messages */
};

/* An overflow chunk: a host-side record of device memory handed out. */
typedef struct ovf {
    struct ovf *next;
    size_t start; /* logical offset of the allocation */
    void *mem;
} ovf_t;

struct k_ctx {
    k_device_t *dev;
    char err[HIRED_ERR_LEN];
    uint8_t *block; /* [cap], device memory */
    size_t cap, used, high;
    ovf_t *ovf;     /* newest first */
#ifdef HIRED_HAVE_CUDA
    cuda_ctx_t *cuda;   /* stream + cuBLAS handle (CUDA backend) */
    k_device_t *host_dev;
    k_ctx_t *host;      /* CPU context for host-side algorithms (CUDA backend) */
#endif
};

#define ARENA_ALIGN 64
#define ARENA_GRAIN ((size_t)1 << 20) /* the block grows in MiB steps */

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// ---- devices ------------------------------------------------------------------------------------

const char *k_backend_name(k_backend_t b) { return b == K_BACKEND_CUDA ? "cuda" : "cpu"; }

static k_device_t *open_cuda(long idx, const char *spec, char *err) {
#ifdef HIRED_HAVE_CUDA
    char desc[256], why[HIRED_ERR_LEN];
    int rc = cuda_device_open((int)idx, desc, sizeof desc, why);
    if (rc) {
        hired_errf(err, rc, "device '%.40s': %s", spec, why);
        return NULL;
    }
    k_device_t *d = mem_calloc(1, sizeof *d);
    if (!d) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    d->backend = K_BACKEND_CUDA;
    d->index = (int)idx;
    snprintf(d->name, sizeof d->name, "cuda:%d", (int)idx);
    log_info("%s: %s", d->name, desc);
    return d;
#else
    (void)idx;
    hired_errf(err, HIRED_EUNSUPPORTED,
               "device '%.40s': this build has no CUDA backend (built without the CUDA toolkit; use cpu)", spec);
    return NULL;
#endif
}

k_device_t *k_device_open(const char *spec, char *err) {
    if (spec && *spec && strcmp(spec, "cpu") != 0) {
        char *end = NULL;
        long idx = strncmp(spec, "cuda:", 5) == 0 && spec[5] >= '0' && spec[5] <= '9' ? strtol(spec + 5, &end, 10) : -1;
        if (idx < 0 || idx > 1023 || end == spec + 5 || *end) {
            hired_errf(err, HIRED_EINVAL, "device '%.40s': expected cpu or cuda:N", spec);
            return NULL;
        }
        return open_cuda(idx, spec, err);
    }
    k_device_t *d = mem_calloc(1, sizeof *d);
    if (!d) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    d->backend = K_BACKEND_CPU;
    snprintf(d->name, sizeof d->name, "cpu");
    return d;
}

void k_device_close(k_device_t **pd) {
    if (!pd || !*pd) return;
    mem_free(*pd);
    *pd = NULL;
}

int k_device_probe(const char *spec, char *err) {
    k_device_t *dev = k_device_open(spec, err);
    if (!dev) return HIRED_EUNSUPPORTED;
    k_device_close(&dev);
    return HIRED_OK;
}

k_backend_t k_device_backend(const k_device_t *d) { return d->backend; }
const char *k_device_name(const k_device_t *d) { return d->name; }

bool k_device_bf16_products(const k_device_t *d) {
    return d->backend == K_BACKEND_CPU && k_cpu_have_bf16_gemm() && k_cpu_have_bf16_dot();
}

bool k_device_cpu_tiles(const k_device_t *d) { return d->backend == K_BACKEND_CPU && k_cpu_gemm_tiles_usable(); }

static char kernels_line[384];
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

/* The line names what runs: on a CPU where hired's AVX2 tiles are usable (AVX2, FMA, F16C, no
 * AVX-512) the linear layers of more than K_MATMUL_FUSED_MAX_M rows and the attention run in
 * them, and the library only takes what is left (the CLS-probability rows, and the fallbacks
 * when a tile's scratch cannot be allocated); elsewhere the library runs the linear layers.
 * Either way hired's own dot kernels take 1..K_MATMUL_FUSED_MAX_M rows. What tests or
 * benchmarks later switch off (k_cpu_gemm_tiles_enable) is not followed: the line tells the
 * default. */
static void kernels_describe(void) {
    bool bf16 = k_cpu_have_bf16_gemm() && k_cpu_have_bf16_dot();
    char gemm[160];
    if (k_cpu_gemm_tiles_usable())
        snprintf(gemm, sizeof gemm,
                 "hired AVX2+FMA tiles (linear layers over %d rows, attention), hired dot kernels (1-%d rows), %s "
                 "for the rest",
                 K_MATMUL_FUSED_MAX_M, K_MATMUL_FUSED_MAX_M, k_cpu_gemm_family());
    else
        snprintf(gemm, sizeof gemm, "%s, hired dot kernels (1-%d rows)", k_cpu_gemm_family(), K_MATMUL_FUSED_MAX_M);
    snprintf(kernels_line, sizeof kernels_line, "gemm: %s; matmul with F16/BF16 weights: %s", gemm,
             k_matmul_default_prec() == K_MATMUL_PREC_BF16
                 ? (bf16 ? "bf16 products (HIRED_MATMUL_PRECISION=bf16)" : "float32 (bf16 asked, the CPU has no native bf16)")
                 : (bf16 ? "float32 by default, bf16 products for bf16-held weights" : "float32"));
    size_t n = strlen(kernels_line);
    snprintf(kernels_line + n, sizeof kernels_line - n, "; Q8 weights: %s", k_matmul_q8_isa_name(k_matmul_q8_best_isa()));
}

const char *k_device_kernels(const k_device_t *d) {
    if (d->backend == K_BACKEND_CUDA) return "gemm: cuBLAS (cublasGemmEx, float32 accumulation)";
    pthread_once(&kernels_once, kernels_describe);
    return kernels_line;
}

/* Device memory of n bytes; what names it in an out-of-memory message (err may be NULL). */
static void *dev_alloc(k_device_t *d, size_t n, const char *what, char *err) {
#ifdef HIRED_HAVE_CUDA
    if (d->backend == K_BACKEND_CUDA) {
        void *p = NULL;
        int rc = cuda_alloc(d->index, n, what, &p, err);
        if (rc && err) log_error("%s", err);
        return rc ? NULL : p;
    }
#endif
    (void)d;
    void *p = mem_alloc_aligned(n);
    if (!p) hired_errf(err, HIRED_ENOMEM, "out of memory for %s (%zu bytes)", what, n);
    return p;
}

void *k_device_alloc(k_device_t *d, size_t n) {
    char err[HIRED_ERR_LEN];
    return dev_alloc(d, n, "a device buffer", err);
}

void k_device_free(k_device_t *d, void *p) {
#ifdef HIRED_HAVE_CUDA
    if (d && d->backend == K_BACKEND_CUDA) {
        cuda_free(d->index, p);
        return;
    }
#endif
    (void)d;
    mem_free_aligned(p);
}

// ---- weights ------------------------------------------------------------------------------------

int k_weight_place(k_device_t *d, const void *host, tensor_dtype_t dtype, int64_t rows, int64_t cols, bool take,
                   k_weight_t *w, char *err) {
    memset(w, 0, sizeof *w);
    if (!host || rows <= 0 || cols <= 0) {
        if (take) mem_free_aligned((void *)host);
        return hired_errf(err, HIRED_EINVAL, "weight: empty [%lld, %lld]", (long long)rows, (long long)cols);
    }
    if (dtype == TENSOR_DTYPE_Q8 && d && k_device_backend(d) != K_BACKEND_CPU) {
        if (take) mem_free_aligned((void *)host);
        return hired_errf(err, HIRED_EUNSUPPORTED, "8-bit weights run on the CPU backend only (device %s)",
                          k_device_name(d));
    }
#ifdef HIRED_HAVE_CUDA
    if (d->backend == K_BACKEND_CUDA) {
        /* one copy to the device in the stored dtype; a taken host block is freed at once */
        size_t n = (size_t)rows * (size_t)cols * tensor_dtype_size(dtype);
        char what[160];
        snprintf(what, sizeof what, "a weight [%lld, %lld] %s (%zu bytes of weights placed before it)",
                 (long long)rows, (long long)cols, tensor_dtype_name(dtype), d->placed);
        void *p = dev_alloc(d, n, what, err);
        int rc = p ? cuda_copy_sync(d->index, p, host, n, err) : HIRED_ENOMEM;
        if (take) mem_free_aligned((void *)host);
        if (rc) {
            k_device_free(d, p);
            return rc;
        }
        *w = (k_weight_t){.data = p, .dtype = dtype, .rows = rows, .cols = cols, .owned = p};
        d->placed += n;
        return HIRED_OK;
    }
#else
    (void)d; /* the CPU backend uses host memory in place */
#endif
    *w = (k_weight_t){.data = host, .dtype = dtype, .rows = rows, .cols = cols};
    if (take) {
        w->owned = (void *)host;
        w->host_owned = true;
    }
    return HIRED_OK;
}

void k_weight_free(k_device_t *d, k_weight_t *w) {
    if (!w) return;
    if (w->owned) {
        if (w->host_owned)
            mem_free_aligned(w->owned);
        else {
            k_device_free(d, w->owned);
            if (d && d->placed >= k_weight_bytes(w)) d->placed -= k_weight_bytes(w);
        }
    }
    memset(w, 0, sizeof *w);
}

size_t k_weight_bytes(const k_weight_t *w) {
    if (w->dtype == TENSOR_DTYPE_Q8) return k_q8_bytes(w->rows, w->cols);
    return (size_t)w->rows * (size_t)w->cols * tensor_dtype_size(w->dtype);
}

// ---- contexts -----------------------------------------------------------------------------------

k_ctx_t *k_ctx_new(k_device_t *d, char *err) {
    if (!d) {
        hired_errf(err, HIRED_EINVAL, "context: no device");
        return NULL;
    }
    k_ctx_t *c = mem_calloc(1, sizeof *c);
    if (!c) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    c->dev = d;
#ifdef HIRED_HAVE_CUDA
    if (d->backend == K_BACKEND_CUDA) {
        if (!(c->cuda = cuda_ctx_new(d->index, err)) || !(c->host_dev = k_device_open("cpu", err)) ||
            !(c->host = k_ctx_new(c->host_dev, err))) {
            k_ctx_destroy(&c);
            return NULL;
        }
    }
#endif
    return c;
}

void k_ctx_destroy(k_ctx_t **pc) {
    if (!pc || !*pc) return;
    k_ctx_t *c = *pc;
#ifdef HIRED_HAVE_CUDA
    if (c->cuda) {
        char err[HIRED_ERR_LEN];
        if (cuda_ctx_sync(c->cuda, err)) log_error("%s: %s", c->dev->name, err);
    }
#endif
    k_ctx_release(c, 0);
    k_device_free(c->dev, c->block);
#ifdef HIRED_HAVE_CUDA
    cuda_ctx_destroy(&c->cuda);
    k_ctx_destroy(&c->host);
    k_device_close(&c->host_dev);
#endif
    mem_free(c);
    *pc = NULL;
}

k_device_t *k_ctx_device(const k_ctx_t *c) { return c->dev; }
k_backend_t k_ctx_backend(const k_ctx_t *c) { return c->dev->backend; }
k_ctx_t *k_ctx_host(k_ctx_t *c) {
#ifdef HIRED_HAVE_CUDA
    if (c->host) return c->host;
#endif
    return c; /* the CPU backend's memory is the host's */
}

#ifdef HIRED_HAVE_CUDA
cuda_ctx_t *k_ctx_cuda(k_ctx_t *c) { return c->cuda; }
#endif

int k_ctx_bind(k_ctx_t *c) {
#ifdef HIRED_HAVE_CUDA
    if (c->cuda) {
        int rc = cuda_set_device(c->dev->index, c->err);
        if (rc) return rc;
    }
#else
    (void)c;
#endif
    return HIRED_OK;
}
const char *k_ctx_err(const k_ctx_t *c) { return c->err; }

int k_ctx_fail(k_ctx_t *c, int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return code;
}

int k_ctx_report(const k_ctx_t *c, int rc, char *err, const char *what) {
    return hired_errf(err, rc, "%s: %s", what, c->err[0] ? c->err : hired_strerror(rc));
}

// ---- arena --------------------------------------------------------------------------------------

void *k_ctx_alloc(k_ctx_t *c, size_t n) {
    n = round_up(n ? n : 1, ARENA_ALIGN);
    size_t start = c->used;
    void *p;
    if (start + n <= c->cap) {
        p = c->block + start;
    } else {
        ovf_t *o = mem_calloc(1, sizeof *o);
        char what[64];
        snprintf(what, sizeof what, "%zu bytes of scratch", n);
        if (!o || !(o->mem = dev_alloc(c->dev, n, what, c->err))) {
            mem_free(o);
            if (!o) k_ctx_fail(c, HIRED_ENOMEM, "out of memory for %zu bytes of scratch", n);
            return NULL;
        }
        o->next = c->ovf;
        o->start = start;
        c->ovf = o;
        p = o->mem;
    }
    c->used = start + n;
    if (c->used > c->high) c->high = c->used;
    return p;
}

size_t k_ctx_mark(const k_ctx_t *c) { return c->used; }

void k_ctx_release(k_ctx_t *c, size_t mark) {
    while (c->ovf && c->ovf->start >= mark) {
        ovf_t *o = c->ovf;
        c->ovf = o->next;
        k_device_free(c->dev, o->mem);
        mem_free(o);
    }
    if (mark < c->used) c->used = mark;
}

/* Replaces the (empty) block by one of at least n bytes. */
static int grow(k_ctx_t *c, size_t n) {
    size_t cap = round_up(n, ARENA_GRAIN);
    k_device_free(c->dev, c->block);
    c->block = dev_alloc(c->dev, cap, "the scratch arena", c->err);
    c->cap = c->block ? cap : 0;
    return c->block ? HIRED_OK : HIRED_ENOMEM;
}

void k_ctx_reset(k_ctx_t *c) {
    c->err[0] = 0;
    k_ctx_release(c, 0);
    if (c->high > c->cap) grow(c, c->high); /* on failure the next job overflows again */
    c->high = 0;
}

int k_ctx_reserve(k_ctx_t *c, size_t n) {
    if (c->used) return k_ctx_fail(c, HIRED_EINVAL, "arena: reserve with %zu bytes in use", c->used);
    return n > c->cap ? grow(c, n) : HIRED_OK;
}

size_t k_ctx_capacity(const k_ctx_t *c) { return c->cap; }

// ---- transfers ----------------------------------------------------------------------------------

/* CUDA: uploads and downloads wait for the stream (the host buffer is the caller's again when
 * they return, and a download's data is there); device-to-device copies are stream-ordered. */
static int transfer(k_ctx_t *c, void *dst, const void *src, size_t n, bool wait) {
#ifdef HIRED_HAVE_CUDA
    if (c->cuda) return cuda_ctx_memcpy(c->cuda, dst, src, n, wait, c->err);
#endif
    (void)c, (void)wait;
    if (n && dst != src) memmove(dst, src, n);
    return HIRED_OK;
}

int k_ctx_upload(k_ctx_t *c, void *dev, const void *host, size_t n) { return transfer(c, dev, host, n, true); }
int k_ctx_download(k_ctx_t *c, void *host, const void *dev, size_t n) { return transfer(c, host, dev, n, true); }
int k_ctx_copy(k_ctx_t *c, void *dst, const void *src, size_t n) { return transfer(c, dst, src, n, false); }

int k_ctx_sync(k_ctx_t *c) {
#ifdef HIRED_HAVE_CUDA
    if (c->cuda) return cuda_ctx_sync(c->cuda, c->err);
#else
    (void)c;
#endif
    return HIRED_OK;
}
