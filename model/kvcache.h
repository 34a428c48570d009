/* kvcache.h — the key/value cache of one generation job, in device memory: per layer, the
 * post-RoPE keys and the values of every position so far, in the cache's dtype (float32, or
 * F16 to halve it: the attention args carry it as kv_dtype).
 *
 * Invariants: 0 ≤ len ≤ cap; rows [0, len) of every layer hold valid data; rows ≥ len are
 * scratch the next forward pass writes before it advances len. Capacity is fixed at creation
 * (sized from the actual sequence: prompt + max new tokens, capped by the context length), so
 * the memory a job uses is known before it starts and reported by kv_cache_bytes().
 * A cache is either dense (kv_cache_new: its own allocation, every layer's rows contiguous) or
 * paged (kv_cache_new_paged: blocks of the pool's block size taken from one kv_pool_t, listed in
 * a block table that attention reads; kernels/attention.h). A paged cache's memory is reserved
 * by the pool once, so a job never allocates KV memory and freed blocks go straight to the
 * next job whatever their place in the pool.
 * Not here: the attention itself (kernels/attention.h), sharing blocks between jobs. */
#ifndef HIRED_KVCACHE_H
#define HIRED_KVCACHE_H

#include <stddef.h>

#include "attention.h"
#include "backend.h"

typedef struct kv_cache kv_cache_t;

/* A cache on dev (borrowed; must outlive the cache) for n_layers layers of kv_dim =
 * n_head_kv·head_dim values per position and cap positions, in dtype. Caller owns the result
 * (kv_cache_destroy). NULL with err filled (HIRED_EINVAL on bad sizes, HIRED_ENOMEM naming the
 * bytes asked for). */
kv_cache_t *kv_cache_new(k_device_t *dev, tensor_dtype_t dtype, int n_layers, int kv_dim, int cap, char *err);
/* Frees the cache. Accepts NULL; sets *kv = NULL. */
void kv_cache_destroy(kv_cache_t **kv);

/* A pool of n_blocks blocks of `block` positions, each holding keys and values of every layer
 * (one device allocation of n_blocks · kv_cache_bytes_for(dtype, n_layers, kv_dim, block)
 * bytes). Caller owns it (kv_pool_destroy, after every cache made from it). NULL with err.
 * A pool and its caches belong to one thread. */
typedef struct kv_pool kv_pool_t;
kv_pool_t *kv_pool_new(k_device_t *dev, tensor_dtype_t dtype, int n_layers, int kv_dim, int n_blocks, int block,
                       char *err);
void kv_pool_destroy(kv_pool_t **pool);
int kv_pool_free_blocks(const kv_pool_t *pool);
/* A paged cache of cap positions: ⌈cap / block⌉ blocks off the pool's free list (given back
 * by kv_cache_destroy), its block table uploaded through ctx. NULL with err: HIRED_ENOMEM
 * naming the blocks when the pool has too few free. */
kv_cache_t *kv_cache_new_paged(kv_pool_t *pool, k_ctx_t *ctx, int cap, char *err);
bool kv_cache_paged(const kv_cache_t *kv);
/* Sets a's k, v, ldk, ldv, kv_dtype and paging fields to layer `layer` of the cache. */
void kv_cache_attention(const kv_cache_t *kv, int layer, k_attention_args *a);

/* Bytes of key and value storage (2 · n_layers · cap · kv_dim · element size; a paged cache:
 * its whole blocks). */
size_t kv_cache_bytes(const kv_cache_t *kv);
/* Bytes of key and value storage a cache of these sizes would take (what kv_cache_new asks for). */
size_t kv_cache_bytes_for(tensor_dtype_t dtype, int n_layers, int kv_dim, int cap);
int kv_cache_len(const kv_cache_t *kv);
int kv_cache_cap(const kv_cache_t *kv);
int kv_cache_dim(const kv_cache_t *kv);
int kv_cache_layers(const kv_cache_t *kv);
tensor_dtype_t kv_cache_dtype(const kv_cache_t *kv);

/* Layer `layer`'s key and value rows starting at position pos: [cap − pos, kv_dim] of the
 * cache's dtype, device memory (a paged cache: only up to the end of pos's block). Borrowed,
 * valid until kv_cache_destroy. The forward pass writes rows [len, len + t) then calls
 * kv_cache_advance. */
void *kv_cache_k(kv_cache_t *kv, int layer, int pos);
void *kv_cache_v(kv_cache_t *kv, int layer, int pos);

/* Writes t rows of keys k and values v (float32 [t, kv_dim], device memory) at positions
 * pos.. of layer `layer`, in the cache's dtype (F16/BF16 rounded to nearest even). Through
 * ctx, on its device: the cast op (kernels/cast.h) straight into the cache's rows, a copy for a
 * float32 cache. 0 or the op's HIRED_E* (k_ctx_err). */
int kv_cache_write(kv_cache_t *kv, k_ctx_t *ctx, int layer, int pos, const float *k, const float *v, int t);

/* len += t. HIRED_ERANGE when that would pass cap (len unchanged). */
int kv_cache_advance(kv_cache_t *kv, int t);
/* Forgets every position (len = 0); the storage is kept. */
void kv_cache_reset(kv_cache_t *kv);

#endif
