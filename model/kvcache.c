/* kvcache.c — see kvcache.h. One device block per tensor kind: keys [n_layers, cap, kv_dim],
 * then values with the same layout, so a layer's rows are contiguous for the attention GEMMs. */
#include "kvcache.h"

#include <stdint.h>

#include "err.h"
#include "half.h"
#include "mem.h"

struct kv_cache {
    k_device_t *dev;
    tensor_dtype_t dtype;
    size_t esz;
    int n_layers, kv_dim, cap, len;
    uint8_t *k; /* [n_layers, cap, kv_dim] */
    uint8_t *v; /* [n_layers, cap, kv_dim] */
};

size_t kv_cache_bytes_for(tensor_dtype_t dtype, int n_layers, int kv_dim, int cap) {
    if (n_layers <= 0 || kv_dim <= 0 || cap <= 0) return 0;
    return 2 * (size_t)n_layers * (size_t)cap * (size_t)kv_dim * tensor_dtype_size(dtype);
}

kv_cache_t *kv_cache_new(k_device_t *dev, tensor_dtype_t dtype, int n_layers, int kv_dim, int cap, char *err) {
    if (n_layers <= 0 || kv_dim <= 0 || cap <= 0) {
        hired_errf(err, HIRED_EINVAL, "KV cache: bad size (%d layers, %d values per position, %d positions)",
                   n_layers, kv_dim, cap);
        return NULL;
    }
    /* 2^40 bytes is far beyond any host; it also keeps the size_t products below from wrapping. */
    double total = 2.0 * n_layers * (double)cap * kv_dim * (double)tensor_dtype_size(dtype);
    if (total > (double)((uint64_t)1 << 40)) {
        hired_errf(err, HIRED_ERANGE, "KV cache: %.3g bytes requested", total);
        return NULL;
    }
    kv_cache_t *kv = mem_calloc(1, sizeof *kv);
    size_t half = kv_cache_bytes_for(dtype, n_layers, kv_dim, cap) / 2;
    if (kv) {
        kv->dev = dev;
        kv->k = k_device_alloc(dev, half);
        kv->v = k_device_alloc(dev, half);
    }
    if (!kv || !kv->k || !kv->v) {
        hired_errf(err, HIRED_ENOMEM, "KV cache: out of memory allocating %zu bytes (%d positions)", 2 * half, cap);
        kv_cache_destroy(&kv);
        return NULL;
    }
    kv->dtype = dtype;
    kv->esz = tensor_dtype_size(dtype);
    kv->n_layers = n_layers;
    kv->kv_dim = kv_dim;
    kv->cap = cap;
    return kv;
}

void kv_cache_destroy(kv_cache_t **pkv) {
    if (!pkv || !*pkv) return;
    k_device_free((*pkv)->dev, (*pkv)->k);
    k_device_free((*pkv)->dev, (*pkv)->v);
    mem_free(*pkv);
    *pkv = NULL;
}

size_t kv_cache_bytes(const kv_cache_t *kv) { return kv_cache_bytes_for(kv->dtype, kv->n_layers, kv->kv_dim, kv->cap); }
int kv_cache_len(const kv_cache_t *kv) { return kv->len; }
int kv_cache_cap(const kv_cache_t *kv) { return kv->cap; }
int kv_cache_dim(const kv_cache_t *kv) { return kv->kv_dim; }
int kv_cache_layers(const kv_cache_t *kv) { return kv->n_layers; }
tensor_dtype_t kv_cache_dtype(const kv_cache_t *kv) { return kv->dtype; }

static size_t row_offset(const kv_cache_t *kv, int layer, int pos) {
    return ((size_t)layer * kv->cap + (size_t)pos) * kv->kv_dim * kv->esz;
}

void *kv_cache_k(kv_cache_t *kv, int layer, int pos) { return kv->k + row_offset(kv, layer, pos); }
void *kv_cache_v(kv_cache_t *kv, int layer, int pos) { return kv->v + row_offset(kv, layer, pos); }

int kv_cache_write(kv_cache_t *kv, k_ctx_t *ctx, int layer, int pos, const float *k, const float *v, int t) {
    const size_t n = (size_t)t * kv->kv_dim;
    void *dst[2] = {kv_cache_k(kv, layer, pos), kv_cache_v(kv, layer, pos)};
    const float *src[2] = {k, v};
    if (kv->dtype == TENSOR_DTYPE_F32) {
        int rc = k_ctx_copy(ctx, dst[0], k, n * sizeof(float));
        return rc ? rc : k_ctx_copy(ctx, dst[1], v, n * sizeof(float));
    }
    k_ctx_t *host = k_ctx_host(ctx);
    const size_t mark = k_ctx_mark(host);
    float *f = k_ctx_alloc(host, n * sizeof(float));
    uint16_t *h = k_ctx_alloc(host, n * sizeof(uint16_t));
    int rc = f && h ? HIRED_OK : HIRED_ENOMEM;
    for (int w = 0; !rc && w < 2; w++) {
        rc = k_ctx_download(ctx, f, src[w], n * sizeof(float));
        for (size_t i = 0; !rc && i < n; i++) h[i] = kv->dtype == TENSOR_DTYPE_F16 ? f32_to_half(f[i]) : f32_to_bf16(f[i]);
        if (!rc) rc = k_ctx_upload(ctx, dst[w], h, n * sizeof(uint16_t));
    }
    k_ctx_release(host, mark);
    return rc;
}

int kv_cache_advance(kv_cache_t *kv, int t) {
    if (t < 0 || t > kv->cap - kv->len) return HIRED_ERANGE;
    kv->len += t;
    return HIRED_OK;
}

void kv_cache_reset(kv_cache_t *kv) { kv->len = 0; }
