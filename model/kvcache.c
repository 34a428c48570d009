/* kvcache.c — see kvcache.h. A dense cache has one device block per tensor kind: keys
 * [n_layers, cap, kv_dim], then values with the same layout, so a layer's rows are contiguous
 * for the attention GEMMs. A pool block holds, per layer, `block` key rows then `block` value
 * rows: [n_layers][2][block][kv_dim]; a paged cache lists its blocks in position order. */
#include "kvcache.h"

#include <stdint.h>

#include "cast.h"
#include "err.h"
#include "mem.h"

struct kv_pool {
    k_device_t *dev;
    tensor_dtype_t dtype;
    size_t esz;
    int n_layers, kv_dim, block, n_blocks;
    uint8_t *base;  /* [n_blocks][n_layers][2][block][kv_dim] */
    int32_t *free_; /* stack of free block ids */
    int n_free;
};

struct kv_cache {
    k_device_t *dev;
    tensor_dtype_t dtype;
    size_t esz;
    int n_layers, kv_dim, cap, len;
    uint8_t *k; /* dense: [n_layers, cap, kv_dim] */
    uint8_t *v; /* dense: [n_layers, cap, kv_dim] */
    /* paged */
    kv_pool_t *pool;
    int32_t *ids;       /* [n_ids] host: the blocks in position order */
    int32_t *dev_ids;   /* the same on the device */
    int n_ids;
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
    kv_cache_t *kv = *pkv;
    if (kv->pool) {
        for (int i = kv->n_ids - 1; i >= 0; i--) kv->pool->free_[kv->pool->n_free++] = kv->ids[i];
        mem_free(kv->ids);
        k_device_free(kv->dev, kv->dev_ids);
    } else {
        k_device_free(kv->dev, kv->k);
        k_device_free(kv->dev, kv->v);
    }
    mem_free(kv);
    *pkv = NULL;
}

kv_pool_t *kv_pool_new(k_device_t *dev, tensor_dtype_t dtype, int n_layers, int kv_dim, int n_blocks, int block,
                       char *err) {
    size_t bb = kv_cache_bytes_for(dtype, n_layers, kv_dim, block);
    if (!bb || n_blocks <= 0) {
        hired_errf(err, HIRED_EINVAL, "KV pool: bad size (%d layers, %d values per position, %d blocks of %d)",
                   n_layers, kv_dim, n_blocks, block);
        return NULL;
    }
    if ((double)bb * n_blocks > (double)((uint64_t)1 << 40)) {
        hired_errf(err, HIRED_ERANGE, "KV pool: %.3g bytes requested", (double)bb * n_blocks);
        return NULL;
    }
    kv_pool_t *p = mem_calloc(1, sizeof *p);
    if (p) {
        p->dev = dev;
        p->base = k_device_alloc(dev, bb * (size_t)n_blocks);
        p->free_ = mem_alloc((size_t)n_blocks * sizeof *p->free_);
    }
    if (!p || !p->base || !p->free_) {
        hired_errf(err, HIRED_ENOMEM, "KV pool: out of memory allocating %zu bytes (%d blocks of %d positions)",
                   bb * (size_t)n_blocks, n_blocks, block);
        kv_pool_destroy(&p);
        return NULL;
    }
    p->dtype = dtype;
    p->esz = tensor_dtype_size(dtype);
    p->n_layers = n_layers;
    p->kv_dim = kv_dim;
    p->block = block;
    p->n_blocks = n_blocks;
    for (int i = 0; i < n_blocks; i++) p->free_[i] = n_blocks - 1 - i; /* block 0 is taken first */
    p->n_free = n_blocks;
    return p;
}

void kv_pool_destroy(kv_pool_t **pp) {
    if (!pp || !*pp) return;
    k_device_free((*pp)->dev, (*pp)->base);
    mem_free((*pp)->free_);
    mem_free(*pp);
    *pp = NULL;
}

int kv_pool_free_blocks(const kv_pool_t *p) { return p->n_free; }

kv_cache_t *kv_cache_new_paged(kv_pool_t *p, k_ctx_t *ctx, int cap, char *err) {
    if (cap <= 0) {
        hired_errf(err, HIRED_EINVAL, "KV cache: bad size (%d positions)", cap);
        return NULL;
    }
    const int n = (cap + p->block - 1) / p->block;
    if (n > p->n_free) {
        hired_errf(err, HIRED_ENOMEM, "KV pool: %d blocks wanted for %d positions, %d of %d free", n, cap, p->n_free,
                   p->n_blocks);
        return NULL;
    }
    kv_cache_t *kv = mem_calloc(1, sizeof *kv);
    if (kv) {
        kv->ids = mem_alloc((size_t)n * sizeof *kv->ids);
        kv->dev_ids = k_device_alloc(p->dev, (size_t)n * sizeof *kv->dev_ids);
    }
    if (!kv || !kv->ids || !kv->dev_ids) {
        hired_errf(err, HIRED_ENOMEM, "KV cache: out of memory for a block table of %d", n);
        if (kv) mem_free(kv->ids), k_device_free(p->dev, kv->dev_ids);
        mem_free(kv);
        return NULL;
    }
    for (int i = 0; i < n; i++) kv->ids[i] = p->free_[--p->n_free];
    int rc = k_ctx_upload(ctx, kv->dev_ids, kv->ids, (size_t)n * sizeof *kv->ids);
    kv->pool = p;
    kv->n_ids = n;
    kv->dev = p->dev;
    kv->dtype = p->dtype;
    kv->esz = p->esz;
    kv->n_layers = p->n_layers;
    kv->kv_dim = p->kv_dim;
    kv->cap = cap;
    if (rc) {
        k_ctx_report(ctx, rc, err, "KV cache: block table");
        kv_cache_destroy(&kv);
    }
    return kv;
}

bool kv_cache_paged(const kv_cache_t *kv) { return kv->pool != NULL; }

/* Paged: element offsets within the pool of layer l's key rows of block 0, and between blocks. */
static size_t pool_layer_k(const kv_pool_t *p, int layer) { return (size_t)layer * 2 * p->block * p->kv_dim; }
static size_t pool_stride(const kv_pool_t *p) { return (size_t)p->n_layers * 2 * p->block * p->kv_dim; }

void kv_cache_attention(const kv_cache_t *kv, int layer, k_attention_args *a) {
    a->kv_dtype = kv->dtype;
    if (!kv->pool) {
        a->k = kv->k + (size_t)layer * kv->cap * kv->kv_dim * kv->esz;
        a->v = kv->v + (size_t)layer * kv->cap * kv->kv_dim * kv->esz;
        a->ldk = a->ldv = 0;
        a->kv_blocks = NULL;
        return;
    }
    const kv_pool_t *p = kv->pool;
    a->k = p->base + pool_layer_k(p, layer) * p->esz;
    a->v = p->base + (pool_layer_k(p, layer) + (size_t)p->block * p->kv_dim) * p->esz;
    a->ldk = a->ldv = kv->kv_dim;
    a->kv_blocks = kv->dev_ids;
    a->kv_block = p->block;
    a->kv_block_stride = pool_stride(p);
}

size_t kv_cache_bytes(const kv_cache_t *kv) {
    if (kv->pool) return (size_t)kv->n_ids * kv_cache_bytes_for(kv->dtype, kv->n_layers, kv->kv_dim, kv->pool->block);
    return kv_cache_bytes_for(kv->dtype, kv->n_layers, kv->kv_dim, kv->cap);
}
int kv_cache_len(const kv_cache_t *kv) { return kv->len; }
int kv_cache_cap(const kv_cache_t *kv) { return kv->cap; }
int kv_cache_dim(const kv_cache_t *kv) { return kv->kv_dim; }
int kv_cache_layers(const kv_cache_t *kv) { return kv->n_layers; }
tensor_dtype_t kv_cache_dtype(const kv_cache_t *kv) { return kv->dtype; }

/* Byte offset of layer `layer`'s key row pos (values: + vk) from the cache's storage base. */
static uint8_t *row_ptr(const kv_cache_t *kv, int layer, int pos, bool values) {
    if (!kv->pool)
        return (values ? kv->v : kv->k) + ((size_t)layer * kv->cap + (size_t)pos) * kv->kv_dim * kv->esz;
    const kv_pool_t *p = kv->pool;
    size_t e = (size_t)kv->ids[pos / p->block] * pool_stride(p) + pool_layer_k(p, layer) +
               ((values ? (size_t)p->block : 0) + (size_t)(pos % p->block)) * p->kv_dim;
    return p->base + e * p->esz;
}

void *kv_cache_k(kv_cache_t *kv, int layer, int pos) { return row_ptr(kv, layer, pos, false); }
void *kv_cache_v(kv_cache_t *kv, int layer, int pos) { return row_ptr(kv, layer, pos, true); }

/* Rows pos .. pos+t−1 of the keys (or values) of a layer from float32 src [t, kv_dim] (device
 * memory), in runs that stay inside one block of a paged cache, through the cast op: rounded
 * to the cache's dtype on the device (a copy for a float32 cache). */
static int put_rows(kv_cache_t *kv, k_ctx_t *ctx, int layer, int pos, int t, bool values, const float *src) {
    const int run_max = kv->pool ? kv->pool->block : t;
    int rc = HIRED_OK;
    for (int r = 0; !rc && r < t;) {
        int run = run_max - (pos + r) % run_max;
        if (run > t - r) run = t - r;
        void *dst = row_ptr(kv, layer, pos + r, values);
        const float *s = src + (size_t)r * kv->kv_dim;
        const size_t n = (size_t)run * kv->kv_dim;
        k_cast_args ca = {.n = (int64_t)n, .x = s, .y = dst, .dtype = kv->dtype};
        rc = k_cast(ctx, &ca);
        r += run;
    }
    return rc;
}

int kv_cache_write(kv_cache_t *kv, k_ctx_t *ctx, int layer, int pos, const float *k, const float *v, int t) {
    int rc = put_rows(kv, ctx, layer, pos, t, false, k);
    return rc ? rc : put_rows(kv, ctx, layer, pos, t, true, v);
}

int kv_cache_advance(kv_cache_t *kv, int t) {
    if (t < 0 || t > kv->cap - kv->len) return HIRED_ERANGE;
    kv->len += t;
    return HIRED_OK;
}

void kv_cache_reset(kv_cache_t *kv) { kv->len = 0; }
