/* llm.c — see llm.h. Weights (checkpoint views or random) placed on the device, and the forward
 * pass as ops through the caller's context.
 *
 * Forward over a chunk of t rows at positions p0 .. p0+t−1 (p0 = cache length), per layer:
 *   xn = rmsnorm(x); q = xn·Wqᵀ [t, H·hd]; k, v = xn·Wk/vᵀ straight into cache rows p0.. ;
 *   rope(q), rope(k rows) at p0; a = attention(q, cache[0, p0+t), causal from p0);
 *   x += a·Woᵀ; xn = rmsnorm(x); g = silu(xn·Wgᵀ) ⊙ (xn·Wuᵀ); x += g·Wdᵀ.
 * Then the final norm and lm_head on the rows whose logits are wanted. The chunk's activations
 * come from the context's arena (llm_arena_bytes mirrors them). */
#include "llm.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "act.h"
#include "attention.h"
#include "embed.h"
#include "err.h"
#include "log.h"
#include "matmul.h"
#include "mem.h"
#include "norm.h"
#include "registry.h"
#include "rope.h"
#include "weights.h"

typedef struct {
    k_weight_t in_norm, post_norm; /* [hidden] float32 */
    k_weight_t q, k, v, o;         /* [H·hd, D], [Hkv·hd, D], [Hkv·hd, D], [D, H·hd] */
    k_weight_t gate, up, down;     /* [I, D], [I, D], [D, I] */
} llm_layer_t;

struct llm {
    hf_text_config_t cfg;
    k_device_t *dev;      /* borrowed */
    int q_dim, kv_dim;    /* H·hd, Hkv·hd */
    int chunk;            /* prefill rows per pass */
    k_weight_t embed;     /* [vocab, D] */
    k_weight_t head;      /* [vocab, D]; a copy of embed's fields when tied (head_tied) */
    bool head_tied;
    k_weight_t final_norm; /* [D] float32 */
    llm_weights_t wkind;  /* how the linear layers are held */
    llm_layer_t *layers;  /* [layers] */
};

#define LLM_PREFIX "language_model."

// ---- construction ------------------------------------------------------------------------------

static int check_config(const hf_text_config_t *tc, char *err) {
    if (tc->hidden <= 0 || tc->layers <= 0 || tc->heads <= 0 || tc->kv_heads <= 0 || tc->heads % tc->kv_heads ||
        tc->head_dim <= 0 || tc->head_dim % 2 || tc->intermediate <= 0 || tc->vocab <= 0 || tc->max_pos <= 0)
        return hired_errf(err, HIRED_EUNSUPPORTED,
                          "text model: unsupported geometry (hidden %d, layers %d, heads %d/%d, head_dim %d, "
                          "intermediate %d, vocab %d)",
                          tc->hidden, tc->layers, tc->heads, tc->kv_heads, tc->head_dim, tc->intermediate, tc->vocab);
    if (!(tc->rope_theta > 0) || !(tc->rms_eps > 0))
        return hired_errf(err, HIRED_EUNSUPPORTED, "text model: rope_theta %g and rms_norm_eps %g must be positive",
                          tc->rope_theta, (double)tc->rms_eps);
    return HIRED_OK;
}

static llm_t *llm_alloc(const hf_text_config_t *tc, k_device_t *dev, char *err) {
    if (check_config(tc, err)) return NULL;
    llm_t *m = mem_calloc(1, sizeof *m);
    if (m) m->layers = mem_calloc((size_t)tc->layers, sizeof *m->layers);
    if (!m || !m->layers) {
        hired_errf(err, HIRED_ENOMEM, "text model: out of memory");
        if (m) mem_free(m);
        return NULL;
    }
    m->cfg = *tc;
    m->dev = dev;
    m->q_dim = tc->heads * tc->head_dim;
    m->kv_dim = tc->kv_heads * tc->head_dim;
    m->chunk = 1024;
    return m;
}

/* The layer's weights in one list (for freeing and for the bandwidth figure). */
static void layer_weights(llm_layer_t *L, k_weight_t *out[9]) {
    k_weight_t *all[9] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down, &L->in_norm, &L->post_norm};
    memcpy(out, all, sizeof all);
}

void llm_destroy(llm_t **pm) {
    if (!pm || !*pm) return;
    llm_t *m = *pm;
    for (int l = 0; m->layers && l < m->cfg.layers; l++) {
        k_weight_t *ws[9];
        layer_weights(&m->layers[l], ws);
        for (int i = 0; i < 9; i++) k_weight_free(m->dev, ws[i]);
    }
    mem_free(m->layers);
    if (!m->head_tied) k_weight_free(m->dev, &m->head);
    k_weight_free(m->dev, &m->embed);
    k_weight_free(m->dev, &m->final_norm);
    mem_free(m);
    *pm = NULL;
}

/* Whether the device runs the model's GEMMs and lookup with its weights (asked once, at load). */
static int check_device(const llm_t *m, char *err) {
    const void *any = m;
    k_matmul_args mm = {.m = 1, .n = 1, .k = 1, .x = any, .w = any, .w_dtype = m->layers[0].q.dtype, .y = (void *)any};
    k_embed_args em = {.n = 1, .d = 1, .ids = any, .table = any, .table_dtype = m->embed.dtype, .vocab = 1,
                       .y = (void *)any};
    k_backend_t b = k_device_backend(m->dev);
    if (!k_supports(b, K_OP_MATMUL, &mm) || !k_supports(b, K_OP_EMBED, &em))
        return hired_errf(err, HIRED_EUNSUPPORTED, "text model: the %s device does not run %s weights",
                          k_device_name(m->dev), tensor_dtype_name(m->embed.dtype));
    return HIRED_OK;
}

static const char *const weights_names[] = {"native", "q8", "bf16", "auto"};

const char *llm_weights_name(llm_weights_t w) {
    return (unsigned)w < ARRAY_LEN(weights_names) ? weights_names[w] : "native";
}

int llm_weights_parse(const char *s, llm_weights_t *w) {
    for (size_t i = 0; s && i < ARRAY_LEN(weights_names); i++)
        if (!strcmp(s, weights_names[i])) {
            *w = (llm_weights_t)i;
            return HIRED_OK;
        }
    return HIRED_EINVAL;
}

/* AUTO resolved for a checkpoint whose layers are of dtype dt on dev. */
static llm_weights_t resolve_weights(llm_weights_t wk, tensor_dtype_t dt, const k_device_t *dev) {
    if (wk != LLM_WEIGHTS_AUTO) return wk;
    return (dt == TENSOR_DTYPE_F16 || dt == TENSOR_DTYPE_BF16) && k_device_bf16_products(dev) ? LLM_WEIGHTS_BF16
                                                                                              : LLM_WEIGHTS_NATIVE;
}

llm_weights_t llm_weights(const llm_t *m) { return m->wkind; }

llm_t *llm_load(const st_model_t *st, const hf_text_config_t *tc, k_device_t *dev, char *err) {
    return llm_load_as(st, tc, dev, LLM_WEIGHTS_NATIVE, err);
}

llm_t *llm_load_as(const st_model_t *st, const hf_text_config_t *tc, k_device_t *dev, llm_weights_t wk, char *err) {
    llm_t *m = llm_alloc(tc, dev, err);
    if (!m) return NULL;
    const int64_t D = tc->hidden, I = tc->intermediate, V = tc->vocab;
    char name[256];
    int rc = weights_matrix(st, dev, LLM_PREFIX "model.embed_tokens.weight", 2, (const int64_t[]){V, D}, &m->embed, err);
    /* the linear layers: in place, quantised to 8 bits now, or rounded to bf16 now */
    m->wkind = wk = resolve_weights(wk, m->embed.dtype, dev);
    int (*linear_w)(const st_model_t *, k_device_t *, const char *, int, const int64_t *, k_weight_t *, char *) =
        wk == LLM_WEIGHTS_Q8 ? weights_matrix_q8 : wk == LLM_WEIGHTS_BF16 ? weights_matrix_bf16 : weights_matrix;
    if (!rc) {
        if (st_model_has(st, LLM_PREFIX "lm_head.weight") || !tc->tie_embeddings) {
            rc = linear_w(st, dev, LLM_PREFIX "lm_head.weight", 2, (const int64_t[]){V, D}, &m->head, err);
        } else if (wk == LLM_WEIGHTS_Q8 || (wk == LLM_WEIGHTS_BF16 && m->embed.dtype != TENSOR_DTYPE_BF16)) {
            /* a tied head of its own: the table quantised or rounded */
            rc = linear_w(st, dev, LLM_PREFIX "model.embed_tokens.weight", 2, (const int64_t[]){V, D}, &m->head, err);
        } else {
            m->head = m->embed;
            m->head_tied = true;
        }
    }
    if (!rc) rc = weights_f32(st, dev, LLM_PREFIX "model.norm.weight", 1, &D, &m->final_norm, err);
    for (int l = 0; !rc && l < tc->layers; l++) {
        llm_layer_t *L = &m->layers[l];
        struct {
            const char *suffix;
            k_weight_t *dst;
            int64_t rows, cols; /* cols 0: a float32 vector of rows */
        } ts[] = {
            {"self_attn.q_proj.weight", &L->q, m->q_dim, D},  {"self_attn.k_proj.weight", &L->k, m->kv_dim, D},
            {"self_attn.v_proj.weight", &L->v, m->kv_dim, D}, {"self_attn.o_proj.weight", &L->o, D, m->q_dim},
            {"mlp.gate_proj.weight", &L->gate, I, D},         {"mlp.up_proj.weight", &L->up, I, D},
            {"mlp.down_proj.weight", &L->down, D, I},         {"input_layernorm.weight", &L->in_norm, D, 0},
            {"post_attention_layernorm.weight", &L->post_norm, D, 0},
        };
        for (size_t i = 0; !rc && i < ARRAY_LEN(ts); i++) {
            snprintf(name, sizeof name, LLM_PREFIX "model.layers.%d.%s", l, ts[i].suffix);
            const int64_t shape[2] = {ts[i].rows, ts[i].cols};
            rc = ts[i].cols ? linear_w(st, dev, name, 2, shape, ts[i].dst, err)
                            : weights_f32(st, dev, name, 1, shape, ts[i].dst, err);
        }
    }
    if (!rc) rc = check_device(m, err);
    if (rc) {
        llm_destroy(&m);
        return NULL;
    }
    log_debug("text model: %d layers, hidden %d, heads %d/%d (head_dim %d), mlp %d, vocab %d, %s weights (%s) on %s",
              tc->layers, (int)D, tc->heads, tc->kv_heads, tc->head_dim, (int)I, (int)V,
              tensor_dtype_name(m->embed.dtype), llm_weights_name(wk), k_device_name(dev));
    return m;
}

llm_t *llm_new_random(const hf_text_config_t *tc, k_device_t *dev, llm_weights_t wk, uint64_t seed, char *err) {
    llm_t *m = llm_alloc(tc, dev, err);
    if (!m) return NULL;
    const int64_t D = tc->hidden, I = tc->intermediate, V = tc->vocab;
    const float sd = 1.0f / sqrtf((float)D), si = 1.0f / sqrtf((float)I), so = 1.0f / sqrtf((float)m->q_dim);
    uint64_t s = seed;
    m->wkind = resolve_weights(wk, TENSOR_DTYPE_F16, dev);
    const tensor_dtype_t wdt = m->wkind == LLM_WEIGHTS_Q8     ? TENSOR_DTYPE_Q8
                               : m->wkind == LLM_WEIGHTS_BF16 ? TENSOR_DTYPE_BF16
                                                              : TENSOR_DTYPE_F16;
    const tensor_dtype_t edt = TENSOR_DTYPE_F16; /* the table is looked up, not multiplied */
    int rc = weights_random(dev, edt, V, D, s += 0x1234567ull, 0, 1.0f, &m->embed, err);
    if (!rc) rc = weights_random(dev, wdt, V, D, s += 0x1234567ull, 0, sd, &m->head, err);
    if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, D, 1, s += 7, 1, 0.1f, &m->final_norm, err);
    for (int l = 0; !rc && l < tc->layers; l++) {
        llm_layer_t *L = &m->layers[l];
        struct {
            k_weight_t *dst;
            int64_t rows, cols;
            float scale;
        } ts[] = {
            {&L->q, m->q_dim, D, sd},  {&L->k, m->kv_dim, D, sd}, {&L->v, m->kv_dim, D, sd}, {&L->o, D, m->q_dim, so},
            {&L->gate, I, D, sd},      {&L->up, I, D, sd},        {&L->down, D, I, si},
        };
        for (size_t i = 0; !rc && i < ARRAY_LEN(ts); i++)
            rc = weights_random(dev, wdt, ts[i].rows, ts[i].cols, s += 0x1234567ull, 0, ts[i].scale, ts[i].dst, err);
        if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, D, 1, s += 7, 1, 0.1f, &L->in_norm, err);
        if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, D, 1, s += 7, 1, 0.1f, &L->post_norm, err);
    }
    if (!rc) rc = check_device(m, err);
    if (rc) llm_destroy(&m);
    return m;
}

const hf_text_config_t *llm_config(const llm_t *m) { return &m->cfg; }

void llm_set_prefill_chunk(llm_t *m, int rows) { m->chunk = rows < 1 ? 1 : rows; }
int llm_prefill_chunk(const llm_t *m) { return m->chunk; }
k_device_t *llm_device(const llm_t *m) { return m->dev; }

kv_cache_t *llm_kv_new(const llm_t *m, int cap, char *err) {
    return kv_cache_new(m->dev, TENSOR_DTYPE_F32, m->cfg.layers, m->kv_dim, cap, err);
}

int llm_embed(const llm_t *m, k_ctx_t *ctx, const int32_t *ids, int n, float *out, char *err) {
    if (n <= 0) return HIRED_OK;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->cfg.vocab)
            return hired_errf(err, HIRED_EINVAL, "embed: ids[%d] = %d outside [0, %d)", i, (int)ids[i], m->cfg.vocab);
    size_t mark = k_ctx_mark(ctx);
    int32_t *dev_ids = k_ctx_alloc(ctx, (size_t)n * sizeof *dev_ids); /* [n] */
    k_embed_args a = {.n = n, .d = m->cfg.hidden, .ids = dev_ids, .table = m->embed.data, .table_dtype = m->embed.dtype,
                      .vocab = m->cfg.vocab, .y = out};
    int rc = dev_ids ? k_ctx_upload(ctx, dev_ids, ids, (size_t)n * sizeof *ids) : HIRED_ENOMEM;
    if (!rc) rc = k_embed(ctx, &a);
    k_ctx_release(ctx, mark);
    return rc ? k_ctx_report(ctx, rc, err, "text model") : HIRED_OK;
}

// ---- forward -----------------------------------------------------------------------------------

/* y (+)= x·wᵀ for t rows; bf16-held weights with bf16 products (llm.h LLM_WEIGHTS_BF16). */
static int linear_mode(const llm_t *m, k_ctx_t *ctx, const float *x, int t, const k_weight_t *w, void *y,
                       bool accumulate, bool inv) {
    k_matmul_args a = {.m = t, .n = (int)w->rows, .k = (int)w->cols, .x = x, .w = w->data, .w_dtype = w->dtype,
                       .y = y, .accumulate = accumulate, .row_invariant = inv,
                       .prec = m->wkind == LLM_WEIGHTS_BF16 ? K_MATMUL_PREC_BF16 : K_MATMUL_PREC_DEFAULT};
    return k_matmul(ctx, &a);
}

static int linear(const llm_t *m, k_ctx_t *ctx, const float *x, int t, const k_weight_t *w, void *y, bool accumulate) {
    return linear_mode(m, ctx, x, t, w, y, accumulate, false);
}

static int rmsnorm(k_ctx_t *ctx, const float *x, float *y, int t, int d, const k_weight_t *g, float eps) {
    k_rmsnorm_args a = {.m = t, .d = d, .x = x, .y = y, .gamma = weights_f32_data(g), .eps = eps};
    return k_rmsnorm(ctx, &a);
}

typedef struct {
    float *x;   /* [chunk, D] residual stream */
    float *xn;  /* [chunk, D] normed input */
    float *q;   /* [chunk, H·hd] queries */
    float *att; /* [chunk, H·hd] attention output */
    float *g;   /* [chunk, I] gate, then silu(gate)·up */
    float *u;   /* [chunk, I] up */
} llm_scratch_t;

/* Bytes of each scratch buffer for rows rows, in the order they are taken. */
static void scratch_sizes(const llm_t *m, int rows, size_t sz[6]) {
    const size_t D = (size_t)m->cfg.hidden, I = (size_t)m->cfg.intermediate, r = (size_t)rows, f = sizeof(float);
    const size_t s[6] = {r * D * f, r * D * f, r * (size_t)m->q_dim * f, r * (size_t)m->q_dim * f, r * I * f, r * I * f};
    memcpy(sz, s, sizeof s);
}

static int scratch_alloc(const llm_t *m, k_ctx_t *ctx, int rows, llm_scratch_t *s) {
    size_t sz[6];
    scratch_sizes(m, rows, sz);
    float **dst[6] = {&s->x, &s->xn, &s->q, &s->att, &s->g, &s->u};
    for (int i = 0; i < 6; i++)
        if (!(*dst[i] = k_ctx_alloc(ctx, sz[i]))) return HIRED_ENOMEM;
    return HIRED_OK;
}

/* Moves rows keep[i] − base (i < n_keep) of a [*, width] float matrix to rows 0..n_keep (keep
 * ascending, so keep[i] − base ≥ i and no row overwrites one still to be moved). */
static int compact_rows(k_ctx_t *ctx, float *a, int width, const int32_t *keep, int n_keep, int base) {
    int rc = HIRED_OK;
    for (int i = 0; !rc && i < n_keep; i++)
        if (keep[i] - base != i)
            rc = k_ctx_copy(ctx, a + (size_t)i * width, a + (size_t)(keep[i] - base) * width,
                            (size_t)width * sizeof(float));
    return rc;
}

/* One chunk of t rows (already copied into s->x) at positions p0.., every layer. A float32
 * dense cache gets its new keys and values straight from the projections (RoPE applied in
 * place); another dtype or a paged cache gets them through kb, vb ([t, kv_dim] float32 scratch:
 * RoPE in float32, then one rounding as they are stored). keep[i] − base (i < n_keep,
 * ascending) are the chunk rows whose final hidden state is wanted; the others only feed the
 * cache. So the last layer computes every row's keys and values for the cache, and then only
 * the kept rows' queries, attention, output projection and MLP (the kept rows are moved to the
 * front of s->xn and s->x) — for a prompt prefilled for its last logits, one row instead of t.
 * llama.cpp skips that layer's MLP the same way, though not its queries and attention; at 32
 * layers the whole last-layer cut is about 3% of a prefill, at 2 layers over a third. */
static int forward_chunk(const llm_t *m, k_ctx_t *ctx, kv_cache_t *kv, int t, int p0, llm_scratch_t *s, float *kb,
                         float *vb, const int32_t *keep, int n_keep, int base) {
    const hf_text_config_t *c = &m->cfg;
    const int D = c->hidden, I = c->intermediate;
    const float scale = (float)(1.0 / sqrt((double)c->head_dim));
    int rc = HIRED_OK;
    for (int l = 0; !rc && l < c->layers; l++) {
        const llm_layer_t *L = &m->layers[l];
        const bool direct = kv_cache_dtype(kv) == TENSOR_DTYPE_F32 && !kv_cache_paged(kv);
        void *krows = direct ? kv_cache_k(kv, l, p0) : kb, *vrows = direct ? kv_cache_v(kv, l, p0) : vb; /* [t, kvd] */

        /* the last layer, when some rows are not wanted: every row's keys and values still go to
         * the cache, but queries, attention and all that follows only for the kept rows */
        const bool cut = l == c->layers - 1 && n_keep < t;
        rc = rmsnorm(ctx, s->x, s->xn, t, D, &L->in_norm, c->rms_eps);
        if (!rc) rc = linear(m, ctx, s->xn, t, &L->k, krows, false);
        if (!rc) rc = linear(m, ctx, s->xn, t, &L->v, vrows, false);
        if (!rc && cut) rc = compact_rows(ctx, s->xn, D, keep, n_keep, base);
        const int tq = cut ? n_keep : t;
        if (!rc && tq) rc = linear(m, ctx, s->xn, tq, &L->q, s->q, false);
        k_rope_args rk = {.t = t, .n_head = c->kv_heads, .head_dim = c->head_dim, .x = krows, .pos0 = p0,
                          .theta = c->rope_theta, .dtype = TENSOR_DTYPE_F32};
        if (!rc) rc = k_rope(ctx, &rk);
        if (!rc && !direct) rc = kv_cache_write(kv, ctx, l, p0, kb, vb, t);
        /* queries in runs of consecutive rows (all t rows are one run unless cut): row r of the
         * chunk sits at position p0 + r and sees keys 0 .. p0 + r */
        for (int i = 0; !rc && i < tq;) {
            int run = cut ? 1 : t, r = cut ? keep[i] - base : 0;
            while (cut && i + run < tq && keep[i + run] == keep[i] + run) run++;
            float *q = s->q + (size_t)i * m->q_dim;
            k_rope_args rq = {.t = run, .n_head = c->heads, .head_dim = c->head_dim, .x = q, .pos0 = p0 + r,
                              .theta = c->rope_theta};
            k_attention_args at = {.t_q = run, .t_k = p0 + r + run, .n_head = c->heads, .n_head_kv = c->kv_heads,
                                   .head_dim = c->head_dim, .q = q, .out = s->att + (size_t)i * m->q_dim,
                                   .scale = scale, .causal = true, .q_pos0 = p0 + r};
            kv_cache_attention(kv, l, &at);
            rc = k_rope(ctx, &rq);
            if (!rc) rc = k_attention(ctx, &at);
            i += run;
        }
        if (!rc && cut) {
            rc = compact_rows(ctx, s->x, D, keep, n_keep, base);
            t = n_keep;
            if (!t) break;
        }
        if (!rc) rc = linear(m, ctx, s->att, t, &L->o, s->x, true); /* x += attn · Woᵀ */

        if (!rc) rc = rmsnorm(ctx, s->x, s->xn, t, D, &L->post_norm, c->rms_eps);
        if (!rc) rc = linear(m, ctx, s->xn, t, &L->gate, s->g, false);
        if (!rc) rc = linear(m, ctx, s->xn, t, &L->up, s->u, false);
        k_silu_mul_args sm = {.n = (int64_t)t * I, .gate = s->g, .up = s->u, .y = s->g};
        if (!rc) rc = k_silu_mul(ctx, &sm);
        if (!rc) rc = linear(m, ctx, s->g, t, &L->down, s->x, true); /* x += mlp · Wdᵀ */
    }
    return rc;
}

/* Final norm and lm_head on rows [r0, r0+n) of the chunk into logits [n, vocab]. */
static int head_rows(const llm_t *m, k_ctx_t *ctx, llm_scratch_t *s, int r0, int n, float *logits) {
    const int D = m->cfg.hidden;
    int rc = rmsnorm(ctx, s->x + (size_t)r0 * D, s->xn, n, D, &m->final_norm, m->cfg.rms_eps);
    return rc ? rc : linear(m, ctx, s->xn, n, &m->head, logits, false);
}

static int check_forward(const llm_t *m, kv_cache_t *kv, const float *x, int t, const int32_t *rows, int n_rows,
                         const float *logits, char *err) {
    if (t <= 0) return hired_errf(err, HIRED_EINVAL, "text model: forward of %d rows", t);
    if (!x || n_rows < 0 || (n_rows > 0 && (!rows || !logits)))
        return hired_errf(err, HIRED_EINVAL, "text model: NULL input, row list or logits buffer");
    for (int i = 0; i < n_rows; i++)
        if (rows[i] < 0 || rows[i] >= t || (i && rows[i] <= rows[i - 1]))
            return hired_errf(err, HIRED_EINVAL, "text model: logit rows must ascend within [0, %d)", t);
    if (kv_cache_layers(kv) != m->cfg.layers || kv_cache_dim(kv) != m->kv_dim)
        return hired_errf(err, HIRED_EINVAL, "text model: KV cache of %d layers x %d does not fit %d layers x %d",
                          kv_cache_layers(kv), kv_cache_dim(kv), m->cfg.layers, m->kv_dim);
    const int p_start = kv_cache_len(kv);
    if (t > kv_cache_cap(kv) - p_start)
        return hired_errf(err, HIRED_ERANGE, "text model: %d positions do not fit the KV cache (%d used of %d)", t,
                          p_start, kv_cache_cap(kv));
    return HIRED_OK;
}

int llm_forward_rows(const llm_t *m, k_ctx_t *ctx, kv_cache_t *kv, const float *x, int t, const int32_t *rows,
                     int n_rows, float *logits, char *err) {
    int rc = check_forward(m, kv, x, t, rows, n_rows, logits, err);
    if (rc) return rc;
    const int D = m->cfg.hidden, V = m->cfg.vocab, p_start = kv_cache_len(kv);
    const int chunk = t < m->chunk ? t : m->chunk;
    const size_t mark = k_ctx_mark(ctx);
    llm_scratch_t s = {0};
    float *kb = NULL, *vb = NULL; /* a cache of another dtype than float32: new keys and values */
    const size_t kvb = (size_t)chunk * m->kv_dim * sizeof(float);
    if (scratch_alloc(m, ctx, chunk, &s) ||
        ((kv_cache_dtype(kv) != TENSOR_DTYPE_F32 || kv_cache_paged(kv)) && (!(kb = k_ctx_alloc(ctx, kvb)) || !(vb = k_ctx_alloc(ctx, kvb))))) {
        k_ctx_release(ctx, mark);
        return hired_errf(err, HIRED_ENOMEM, "text model: out of memory for a %d-row chunk", chunk);
    }
    int next = 0; /* first entry of rows not yet computed */
    for (int r0 = 0; !rc && r0 < t; r0 += chunk) {
        const int n = t - r0 < chunk ? t - r0 : chunk;
        /* the wanted rows inside this chunk: rows[next .. next+n_keep) */
        int n_keep = 0;
        while (next + n_keep < n_rows && rows[next + n_keep] < r0 + n) n_keep++;
        const int32_t *keep = rows ? rows + next : NULL;
        rc = k_ctx_copy(ctx, s.x, x + (size_t)r0 * D, (size_t)n * D * sizeof(float));
        if (!rc) rc = forward_chunk(m, ctx, kv, n, p_start + r0, &s, kb, vb, keep, n_keep, r0);
        /* the chunk's wanted rows are now rows 0..n_keep of s.x; runs of consecutive ones go
         * through the head together */
        for (int i = 0; !rc && i < n_keep;) {
            int run = 1;
            while (i + run < n_keep && keep[i + run] == keep[i] + run) run++;
            rc = head_rows(m, ctx, &s, i, run, logits + (size_t)(next + i) * V);
            i += run;
        }
        next += n_keep;
        if (!rc) kv_cache_advance(kv, n); /* positions p_start+r0 .. +n−1 are now valid in the cache */
    }
    k_ctx_release(ctx, mark);
    if (rc) {
        /* the cache length stays where it was: positions of a failed pass are not valid */
        kv_cache_reset(kv);
        kv_cache_advance(kv, p_start);
        return k_ctx_report(ctx, rc, err, "text model");
    }
    return HIRED_OK;
}

int llm_forward(const llm_t *m, k_ctx_t *ctx, kv_cache_t *kv, const float *x, int t, llm_logits_t mode, float *logits,
                char *err) {
    if (mode == LLM_LOGITS_NONE) return llm_forward_rows(m, ctx, kv, x, t, NULL, 0, NULL, err);
    if (mode == LLM_LOGITS_LAST) {
        int32_t last = t - 1;
        return llm_forward_rows(m, ctx, kv, x, t, &last, 1, logits, err);
    }
    if (t <= 0) return hired_errf(err, HIRED_EINVAL, "text model: forward of %d rows", t);
    int32_t *rows = mem_alloc((size_t)t * sizeof *rows);
    if (!rows) return hired_errf(err, HIRED_ENOMEM, "text model: out of memory");
    for (int i = 0; i < t; i++) rows[i] = i;
    int rc = llm_forward_rows(m, ctx, kv, x, t, rows, t, logits, err);
    mem_free(rows);
    return rc;
}

// ---- batched decode -----------------------------------------------------------------------------

/* One layer of a decode batch: row i is sequence i's next position kv_cache_len(kvs[i]). The
 * projections and the MLP run over all rows at once (weights read once), row-invariantly; RoPE,
 * the cache write and attention run per row against that row's own cache. */
static int forward_batch_layer(const llm_t *m, k_ctx_t *ctx, kv_cache_t *const *kvs, int n, int l, llm_scratch_t *s,
                               float *kb, float *vb) {
    const hf_text_config_t *c = &m->cfg;
    const int D = c->hidden, I = c->intermediate;
    const float scale = (float)(1.0 / sqrt((double)c->head_dim));
    const llm_layer_t *L = &m->layers[l];
    int rc = rmsnorm(ctx, s->x, s->xn, n, D, &L->in_norm, c->rms_eps);
    if (!rc) rc = linear_mode(m, ctx, s->xn, n, &L->q, s->q, false, true);
    if (!rc) rc = linear_mode(m, ctx, s->xn, n, &L->k, kb, false, true);
    if (!rc) rc = linear_mode(m, ctx, s->xn, n, &L->v, vb, false, true);
    for (int i = 0; !rc && i < n; i++) {
        kv_cache_t *kv = kvs[i];
        const int p = kv_cache_len(kv);
        float *q = s->q + (size_t)i * m->q_dim, *krow = kb + (size_t)i * m->kv_dim, *vrow = vb + (size_t)i * m->kv_dim;
        k_rope_args rq = {.t = 1, .n_head = c->heads, .head_dim = c->head_dim, .x = q, .pos0 = p, .theta = c->rope_theta};
        k_rope_args rk = {.t = 1, .n_head = c->kv_heads, .head_dim = c->head_dim, .x = krow, .pos0 = p,
                          .theta = c->rope_theta, .dtype = TENSOR_DTYPE_F32};
        k_attention_args at = {.t_q = 1, .t_k = p + 1, .n_head = c->heads, .n_head_kv = c->kv_heads,
                               .head_dim = c->head_dim, .q = q, .out = s->att + (size_t)i * m->q_dim, .scale = scale,
                               .causal = true, .q_pos0 = p};
        kv_cache_attention(kv, l, &at);
        rc = k_rope(ctx, &rq);
        if (!rc) rc = k_rope(ctx, &rk); /* in float32, then stored (the same bits as RoPE in a float32 cache) */
        if (!rc) rc = kv_cache_write(kv, ctx, l, p, krow, vrow, 1);
        if (!rc) rc = k_attention(ctx, &at);
    }
    if (!rc) rc = linear_mode(m, ctx, s->att, n, &L->o, s->x, true, true);
    if (!rc) rc = rmsnorm(ctx, s->x, s->xn, n, D, &L->post_norm, c->rms_eps);
    if (!rc) rc = linear_mode(m, ctx, s->xn, n, &L->gate, s->g, false, true);
    if (!rc) rc = linear_mode(m, ctx, s->xn, n, &L->up, s->u, false, true);
    k_silu_mul_args sm = {.n = (int64_t)n * I, .gate = s->g, .up = s->u, .y = s->g};
    if (!rc) rc = k_silu_mul(ctx, &sm);
    if (!rc) rc = linear_mode(m, ctx, s->g, n, &L->down, s->x, true, true);
    return rc;
}

int llm_forward_batch(const llm_t *m, k_ctx_t *ctx, kv_cache_t *const *kvs, const float *x, int n, float *logits,
                      char *err) {
    if (n <= 0 || !kvs || !x || !logits)
        return hired_errf(err, HIRED_EINVAL, "text model: batch of %d rows without caches, input or logits", n);
    for (int i = 0; i < n; i++) {
        if (!kvs[i] || kv_cache_layers(kvs[i]) != m->cfg.layers || kv_cache_dim(kvs[i]) != m->kv_dim)
            return hired_errf(err, HIRED_EINVAL, "text model: batch row %d: KV cache does not fit the model", i);
        if (kv_cache_len(kvs[i]) >= kv_cache_cap(kvs[i]))
            return hired_errf(err, HIRED_ERANGE, "text model: batch row %d: the KV cache is full (%d positions)", i,
                              kv_cache_cap(kvs[i]));
        for (int j = 0; j < i; j++)
            if (kvs[j] == kvs[i])
                return hired_errf(err, HIRED_EINVAL, "text model: batch rows %d and %d share a KV cache", j, i);
    }
    const int D = m->cfg.hidden;
    const size_t mark = k_ctx_mark(ctx);
    llm_scratch_t s = {0};
    float *kb = NULL, *vb = NULL;
    int rc = scratch_alloc(m, ctx, n, &s);
    if (!rc && (!(kb = k_ctx_alloc(ctx, (size_t)n * m->kv_dim * sizeof(float))) ||
                !(vb = k_ctx_alloc(ctx, (size_t)n * m->kv_dim * sizeof(float)))))
        rc = HIRED_ENOMEM;
    if (rc) {
        k_ctx_release(ctx, mark);
        return hired_errf(err, HIRED_ENOMEM, "text model: out of memory for a batch of %d rows", n);
    }
    rc = k_ctx_copy(ctx, s.x, x, (size_t)n * D * sizeof(float));
    for (int l = 0; !rc && l < m->cfg.layers; l++) rc = forward_batch_layer(m, ctx, kvs, n, l, &s, kb, vb);
    if (!rc) rc = rmsnorm(ctx, s.x, s.xn, n, D, &m->final_norm, m->cfg.rms_eps);
    if (!rc) rc = linear_mode(m, ctx, s.xn, n, &m->head, logits, false, true);
    k_ctx_release(ctx, mark);
    if (rc) return k_ctx_report(ctx, rc, err, "text model"); /* no cache advanced: the rows are not valid */
    for (int i = 0; i < n; i++) kv_cache_advance(kvs[i], 1);
    return HIRED_OK;
}

/* Arena bytes of an allocation of n (the arena hands out multiples of 64). */
static size_t arena_round(size_t n) { return (n ? n + 63 : 64) / 64 * 64; }

size_t llm_arena_bytes(const llm_t *m, const k_ctx_t *ctx, int t, int kv_cap) {
    const hf_text_config_t *c = &m->cfg;
    const int rows = t < m->chunk ? t : m->chunk;
    size_t sz[6], total = 2 * arena_round((size_t)rows * m->kv_dim * sizeof(float)); /* kb, vb (non-F32 caches) */
    scratch_sizes(m, rows, sz);
    for (int i = 0; i < 6; i++) total += arena_round(sz[i]);
    const void *any = m; /* the sizes, not the pointers, decide the workspace */
    const llm_layer_t *L = &m->layers[0];
    const k_weight_t *ws[] = {&L->q, &L->k, &L->o, &L->gate, &L->down, &m->head};
    size_t most = arena_round((size_t)rows * sizeof(int32_t)); /* llm_embed's ids */
    for (size_t i = 0; i < ARRAY_LEN(ws); i++) {
        k_matmul_args mm = {.m = rows, .n = (int)ws[i]->rows, .k = (int)ws[i]->cols, .x = any, .w = any,
                            .w_dtype = ws[i]->dtype, .y = (void *)any};
        size_t b = arena_round(k_workspace(ctx, K_OP_MATMUL, &mm));
        if (b > most) most = b;
    }
    k_attention_args at = {.t_q = rows, .t_k = kv_cap, .n_head = c->heads, .n_head_kv = c->kv_heads,
                           .head_dim = c->head_dim, .q = any, .k = any, .v = any, .out = (void *)any, .scale = 1.0f,
                           .causal = true};
    size_t b = arena_round(k_workspace(ctx, K_OP_ATTENTION, &at));
    return total + (b > most ? b : most);
}

size_t llm_batch_arena_bytes(const llm_t *m, const k_ctx_t *ctx, int n, int kv_cap) {
    const hf_text_config_t *c = &m->cfg;
    size_t sz[6], total = 2 * arena_round((size_t)n * m->kv_dim * sizeof(float));
    scratch_sizes(m, n, sz);
    for (int i = 0; i < 6; i++) total += arena_round(sz[i]);
    const void *any = m;
    k_attention_args at = {.t_q = 1, .t_k = kv_cap, .n_head = c->heads, .n_head_kv = c->kv_heads,
                           .head_dim = c->head_dim, .q = any, .k = any, .v = any, .out = (void *)any, .scale = 1.0f,
                           .causal = true};
    return total + arena_round(k_workspace(ctx, K_OP_ATTENTION, &at));
}

// ---- cost model (benchmarks) --------------------------------------------------------------------

double llm_matmul_flops(const llm_t *m, int t, int past, int n_logit_rows) {
    const hf_text_config_t *c = &m->cfg;
    const double D = c->hidden, I = c->intermediate, Q = m->q_dim, KV = m->kv_dim;
    /* keys and values: every row of every layer */
    const double kv = 2.0 * t * 2 * D * KV;
    /* queries, q·kᵀ, p·v (query i sees past + i + 1 keys), the output projection and the MLP:
     * every row but in the last layer, which runs them only for the rows whose logits are wanted
     * (forward_chunk; counted here as the last n_logit_rows rows, as a prompt's are) */
    const double keys = (double)t * past + (double)t * (t + 1) / 2.0;
    const double r = n_logit_rows < t ? n_logit_rows : t;
    const double keys_last = r * (past + t) - r * (r - 1) / 2.0;
    const double per_row = 2.0 * (D * Q + Q * D + 3 * D * I), att = 2.0 * 2.0 * c->head_dim * c->heads;
    return kv * c->layers + (per_row * t + att * keys) * (c->layers - 1) + per_row * r + att * keys_last +
           2.0 * n_logit_rows * D * c->vocab;
}

size_t llm_weight_bytes_per_step(const llm_t *m) {
    const hf_text_config_t *c = &m->cfg;
    const size_t D = (size_t)c->hidden, I = (size_t)c->intermediate;
    size_t b = 0;
    for (int l = 0; l < c->layers; l++) {
        k_weight_t *ws[9];
        layer_weights((llm_layer_t *)&m->layers[l], ws);
        for (size_t i = 0; i < 9; i++) b += k_weight_bytes(ws[i]); /* the seven matrices and two norms */
    }
    (void)I;
    b += k_weight_bytes(&m->head);
    b += D * tensor_dtype_size(m->embed.dtype) + D * sizeof(float);
    return b;
}
