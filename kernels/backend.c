/* backend.c — devices, contexts, weight placement, the scratch arena and transfers (see
 * backend.h). Only the CPU backend exists: device memory is 64-byte aligned host memory from
 * mem.h, placement borrows, transfers are memcpy. A CUDA device name is recognised and refused.
 *
 * The arena is one block plus a stack of overflow chunks. Offsets are logical: an allocation
 * at offset o of n bytes lies in the block when o + n <= capacity, otherwise in a chunk of its
 * own (recorded with o). Releasing to a mark frees the chunks at or above it. The high-water
 * offset since the last reset decides how large the block becomes at the next reset, so work
 * that overflowed once runs from the block the next time. */
#include "backend.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "matmul.h"
#include "mem.h"

struct k_device {
    k_backend_t backend;
    char name[24];
};

/* An overflow chunk: this header, then the memory handed out (64-byte aligned). */
typedef struct ovf {
    struct ovf *next;
    size_t start; /* logical offset of the allocation */
} ovf_t;
#define OVF_HEAD 64

struct k_ctx {
    k_device_t *dev;
    char err[HIRED_ERR_LEN];
    uint8_t *block; /* [cap] */
    size_t cap, used, high;
    ovf_t *ovf;     /* newest first */
};

#define ARENA_ALIGN 64
#define ARENA_GRAIN ((size_t)1 << 20) /* the block grows in MiB steps */

static size_t round_up(size_t n, size_t a) { return (n + a - 1) / a * a; }

// ---- devices ------------------------------------------------------------------------------------

const char *k_backend_name(k_backend_t b) { return b == K_BACKEND_CUDA ? "cuda" : "cpu"; }

k_device_t *k_device_open(const char *spec, char *err) {
    if (spec && *spec && strcmp(spec, "cpu") != 0) {
        char *end = NULL;
        long idx = strncmp(spec, "cuda:", 5) == 0 ? strtol(spec + 5, &end, 10) : -1;
        if (idx < 0 || end == spec + 5 || *end)
            hired_errf(err, HIRED_EINVAL, "device '%.40s': expected cpu or cuda:N", spec);
        else
            hired_errf(err, HIRED_EUNSUPPORTED, "device '%.40s': the CUDA backend is not implemented yet (use cpu)",
                       spec);
        return NULL;
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

k_backend_t k_device_backend(const k_device_t *d) { return d->backend; }
const char *k_device_name(const k_device_t *d) { return d->name; }

static char kernels_line[192];
static pthread_once_t kernels_once = PTHREAD_ONCE_INIT;

static void kernels_describe(void) {
    bool bf16 = k_cpu_have_bf16_gemm();
    snprintf(kernels_line, sizeof kernels_line, "gemm: %s; matmul with F16/BF16 weights: %s", k_cpu_gemm_family(),
             k_matmul_default_prec() == K_MATMUL_PREC_BF16 ? (bf16 ? "bf16 products (HIRED_MATMUL_PRECISION=bf16)"
                                                                  : "float32 (bf16 asked, the CPU has no native bf16)")
                                                           : (bf16 ? "float32 (bf16 available)" : "float32"));
}

const char *k_device_kernels(const k_device_t *d) {
    (void)d; /* the CPU backend is the only one that opens today */
    pthread_once(&kernels_once, kernels_describe);
    return kernels_line;
}

void *k_device_alloc(k_device_t *d, size_t n) {
    (void)d;
    return mem_alloc_aligned(n);
}

void k_device_free(k_device_t *d, void *p) {
    (void)d;
    mem_free_aligned(p);
}

// ---- weights ------------------------------------------------------------------------------------

int k_weight_place(k_device_t *d, const void *host, tensor_dtype_t dtype, int64_t rows, int64_t cols, bool take,
                   k_weight_t *w, char *err) {
    (void)d; /* the CPU backend uses host memory in place */
    memset(w, 0, sizeof *w);
    if (!host || rows <= 0 || cols <= 0) {
        if (take) mem_free_aligned((void *)host);
        return hired_errf(err, HIRED_EINVAL, "weight: empty [%lld, %lld]", (long long)rows, (long long)cols);
    }
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
        else
            k_device_free(d, w->owned);
    }
    memset(w, 0, sizeof *w);
}

size_t k_weight_bytes(const k_weight_t *w) { return (size_t)w->rows * (size_t)w->cols * tensor_dtype_size(w->dtype); }

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
    return c;
}

void k_ctx_destroy(k_ctx_t **pc) {
    if (!pc || !*pc) return;
    k_ctx_t *c = *pc;
    k_ctx_release(c, 0);
    mem_free_aligned(c->block);
    mem_free(c);
    *pc = NULL;
}

k_device_t *k_ctx_device(const k_ctx_t *c) { return c->dev; }
k_backend_t k_ctx_backend(const k_ctx_t *c) { return c->dev->backend; }
k_ctx_t *k_ctx_host(k_ctx_t *c) { return c; /* only the CPU backend exists: its memory is the host's */ }
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
        uint8_t *chunk = mem_alloc_aligned(OVF_HEAD + n);
        if (!chunk) {
            k_ctx_fail(c, HIRED_ENOMEM, "out of memory for %zu bytes of scratch", n);
            return NULL;
        }
        ovf_t *o = (ovf_t *)chunk;
        o->next = c->ovf;
        o->start = start;
        c->ovf = o;
        p = chunk + OVF_HEAD;
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
        mem_free_aligned(o);
    }
    if (mark < c->used) c->used = mark;
}

/* Replaces the (empty) block by one of at least n bytes. */
static int grow(k_ctx_t *c, size_t n) {
    size_t cap = round_up(n, ARENA_GRAIN);
    mem_free_aligned(c->block);
    c->block = mem_alloc_aligned(cap);
    c->cap = c->block ? cap : 0;
    return c->block ? HIRED_OK : k_ctx_fail(c, HIRED_ENOMEM, "out of memory for a %zu-byte scratch arena", cap);
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

int k_ctx_upload(k_ctx_t *c, void *dev, const void *host, size_t n) {
    (void)c;
    if (n && dev != host) memmove(dev, host, n);
    return HIRED_OK;
}

int k_ctx_download(k_ctx_t *c, void *host, const void *dev, size_t n) {
    (void)c;
    if (n && dev != host) memmove(host, dev, n);
    return HIRED_OK;
}

int k_ctx_copy(k_ctx_t *c, void *dst, const void *src, size_t n) {
    (void)c;
    if (n && dst != src) memmove(dst, src, n);
    return HIRED_OK;
}
