/* llm.h — the LLaMA / Mistral text model of a LLaVA checkpoint on a device
 * (docs/numerics.md §6): token embedding, pre-norm blocks (RMSNorm in HF order, q/k/v projections,
 * half-split RoPE with the config's theta, causal GQA attention over the KV cache, o_proj,
 * residual; RMSNorm, SwiGLU MLP, residual), final RMSNorm, untied lm_head.
 *
 * Weights are placed on the device once (k_weight_t) in their checkpoint dtype (F16/BF16/F32; on
 * the CPU views into the mmapped checkpoint: a 7B model is never converted to float32); RMSNorm
 * weights are converted to float32 at load. Activations and the KV cache are float32 in device
 * memory; every op runs through the caller's context and its activations come from the
 * context's arena, so a warm context runs a decode step without allocating. Prefill runs in
 * chunks of rows (bounded scratch); every row's result is the same as an unchunked pass up to
 * summation order.
 * Not here: the KV cache storage (kvcache.h), sampling (sampler.h), the prompt (generate.h). */
#ifndef HIRED_LLM_H
#define HIRED_LLM_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "hfconfig.h"
#include "kvcache.h"
#include "st.h"
#include "tensor.h"

typedef struct llm llm_t;

/* How the linear layers' weights are held (llm_load_as). */
typedef enum {
    LLM_WEIGHTS_NATIVE = 0, /* the checkpoint's dtype, used in place */
    LLM_WEIGHTS_Q8,         /* q/k/v/o, gate/up/down and lm_head quantised to 8 bits at load
                             * (kernels/q8.h; the CPU backend only); the embedding table and the
                             * norms stay as they are */
    LLM_WEIGHTS_BF16,       /* the same layers held in bf16 (F16/F32 rounded to nearest even at
                             * load, BF16 used in place) and multiplied with bf16 products, float32
                             * sums (kernels/matmul.h BF16 precision) for every row count: prefill
                             * through oneDNN's bf16 GEMM, decode and batched decode through
                             * AVX512-BF16 register tiles. On a device without native bf16 the
                             * products are float32 on the bf16 values */
    LLM_WEIGHTS_AUTO,       /* chosen at load: BF16 where the device has native bf16 products
                             * (k_device_bf16_products) and the checkpoint's layers are F16/BF16,
                             * NATIVE otherwise. llm_weights() reports the choice */
} llm_weights_t;

/* "native", "q8", "bf16", "auto". */
const char *llm_weights_name(llm_weights_t w);
/* Parses one of those names into *w: 0, or HIRED_EINVAL. */
int llm_weights_parse(const char *s, llm_weights_t *w);

typedef enum {
    LLM_LOGITS_NONE = 0, /* no logits (prefill of a prefix) */
    LLM_LOGITS_LAST,     /* logits of the last row only: [vocab] */
    LLM_LOGITS_ALL,      /* logits of every row: [t, vocab] */
} llm_logits_t;

/* Loads language_model.* of the model in st with the geometry of tc (checked against every
 * tensor's shape) onto dev. Borrows st and dev: they must outlive the model. Caller owns the
 * result (llm_destroy). NULL with err (naming file and tensor) on a missing tensor, a wrong shape,
 * an unsupported config (tied embeddings without lm_head are accepted by reading embed_tokens
 * as the head) or weights the device cannot run. */
llm_t *llm_load(const st_model_t *st, const hf_text_config_t *tc, k_device_t *dev, char *err);
/* llm_load with the linear layers held as wk says. LLM_WEIGHTS_Q8 on a device other than the
 * CPU: NULL with HIRED_EUNSUPPORTED's message ("8-bit weights run on the CPU backend only"). */
llm_t *llm_load_as(const st_model_t *st, const hf_text_config_t *tc, k_device_t *dev, llm_weights_t wk, char *err);
/* The way the model's linear layers are held (never LLM_WEIGHTS_AUTO: what it resolved to). */
llm_weights_t llm_weights(const llm_t *m);
/* A model with tc's geometry and random weights (benchmarks), on dev, as an F16 checkpoint held as
 * wk says: NATIVE F16; Q8 the linear layers in Q8; BF16 (or AUTO resolving to it) the linear
 * layers in BF16 with bf16 products. The embedding table is F16 in every case. */
llm_t *llm_new_random(const hf_text_config_t *tc, k_device_t *dev, llm_weights_t wk, uint64_t seed, char *err);
/* Frees. Accepts NULL; sets *m = NULL. */
void llm_destroy(llm_t **m);

/* The geometry the model runs with. Borrowed, valid until llm_destroy. */
const hf_text_config_t *llm_config(const llm_t *m);

/* Rows of prefill processed at once (default 1024; ≥ 1): larger chunks convert F16 weights
 * fewer times, smaller ones need less scratch (chunk · (2·intermediate + 4·hidden) floats). */
void llm_set_prefill_chunk(llm_t *m, int rows);
int llm_prefill_chunk(const llm_t *m);
/* The device the model's weights are on. */
k_device_t *llm_device(const llm_t *m);

/* A KV cache for cap positions of this model, on its device. Caller owns it (kv_cache_destroy). */
kv_cache_t *llm_kv_new(const llm_t *m, int cap, char *err);

/* out[n, hidden] (device memory) = embed_tokens[ids], ids on the host (checked here, then
 * uploaded through ctx's arena). HIRED_EINVAL (id outside the vocabulary) with err. */
int llm_embed(const llm_t *m, k_ctx_t *ctx, const int32_t *ids, int n, float *out, char *err);

/* Runs t rows of input embeddings x[t, hidden] (device memory) at positions kv_len ..
 * kv_len+t−1 through ctx, appends their keys and values to kv, and writes logits per mode into
 * logits (device memory, [vocab] or [t, vocab]; may be NULL for LLM_LOGITS_NONE). x is borrowed
 * and not modified. Scratch comes from ctx's arena and is released before returning. The last
 * layer's output projection and MLP run only for the rows whose logits are wanted (the keys and
 * values of every row are complete before them), so LAST and NONE skip most of that layer.
 * HIRED_ERANGE (the cache is too small: message with the numbers), HIRED_ENOMEM, HIRED_EINVAL,
 * or an op's failure (HIRED_ECUDA), with err. On error the cache length is unchanged. */
int llm_forward(const llm_t *m, k_ctx_t *ctx, kv_cache_t *kv, const float *x, int t, llm_logits_t mode,
                float *logits, char *err);
/* The same with logits for the n_rows rows listed in rows (host; strictly ascending, each in
 * [0, t)) into logits [n_rows, vocab]; n_rows = 0 computes none. rows is borrowed. */
int llm_forward_rows(const llm_t *m, k_ctx_t *ctx, kv_cache_t *kv, const float *x, int t, const int32_t *rows,
                     int n_rows, float *logits, char *err);
/* A decode batch: one row per sequence, x[n, hidden] (device) row i being the next input of the
 * sequence whose cache is kvs[i] (its position kv_cache_len(kvs[i]); n distinct caches, each
 * with room for one more position). Appends each row's key and value to its own cache, advances
 * each by one and writes logits [n, vocab] (device). The weights are read once for all rows;
 * every matmul is row_invariant (matmul.h), RoPE and attention run per row on its own cache, so
 * row i's logits do not depend on the other rows — and with F16/BF16 weights on a CPU with the
 * AVX2 kernels they are the bits llm_forward gives for that row alone. On error no cache
 * advances. */
int llm_forward_batch(const llm_t *m, k_ctx_t *ctx, kv_cache_t *const *kvs, const float *x, int n, float *logits,
                      char *err);
/* Arena bytes llm_forward_batch takes for n rows with caches of at most kv_cap positions. */
size_t llm_batch_arena_bytes(const llm_t *m, const k_ctx_t *ctx, int n, int kv_cap);
/* Arena bytes a forward of up to t rows takes on ctx with a cache of kv_cap positions (the
 * attention's workspace grows with the keys): what a job reserves (k_ctx_reserve) so that its
 * prefill and decode steps allocate nothing. */
size_t llm_arena_bytes(const llm_t *m, const k_ctx_t *ctx, int t, int kv_cap);

/* Matmul FLOPs (2·m·n·k summed, attention's two products with the causal half) of a forward
 * of t rows after past cached positions, with n_logit_rows rows through lm_head (and, as the
 * forward runs it, through the last layer's queries, attention, output projection and MLP: the
 * other rows only feed the cache there; counted as the last n_logit_rows rows). */
double llm_matmul_flops(const llm_t *m, int t, int past, int n_logit_rows);
/* Bytes of weights one decode step streams: every layer matrix, the lm_head, one embedding row
 * and the norms (the KV cache not included). */
size_t llm_weight_bytes_per_step(const llm_t *m);

#endif
