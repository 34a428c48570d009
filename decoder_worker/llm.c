/* llm.c — see llm.h. Weight loading (checkpoint views or random), and the forward pass.
 *
 * Forward over a chunk of t rows at positions p0 .. p0+t−1 (p0 = cache length), per layer:
 *   xn = rmsnorm(x); q = xn·Wqᵀ [t, H·hd]; k, v = xn·Wk/vᵀ straight into cache rows p0.. ;
 *   rope(q), rope(k rows) at p0; a = attention(q, cache[0, p0+t), causal from p0);
 *   x += a·Woᵀ; xn = rmsnorm(x); g = silu(xn·Wgᵀ) ⊙ (xn·Wuᵀ); x += g·Wdᵀ.
 * Then the final norm and lm_head on the rows whose logits are wanted. */
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
#include "rope.h"

typedef struct {
    const void *w; /* [rows, cols] row-major, dtype */
    tensor_dtype_t dtype;
    int rows, cols;
} llm_mat_t;

typedef struct {
    float *in_norm, *post_norm;  /* [hidden] float32, owned */
    llm_mat_t q, k, v, o;        /* [H·hd, D], [Hkv·hd, D], [Hkv·hd, D], [D, H·hd] */
    llm_mat_t gate, up, down;    /* [I, D], [I, D], [D, I] */
} llm_layer_t;

struct llm {
    hf_text_config_t cfg;
    int q_dim, kv_dim;   /* H·hd, Hkv·hd */
    int chunk;           /* prefill rows per pass */
    llm_mat_t embed;     /* [vocab, D] */
    llm_mat_t head;      /* [vocab, D] */
    float *final_norm;   /* [D], owned */
    llm_layer_t *layers; /* [layers] */
    void *owned_weights; /* random models own one block of matrix storage */
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

static llm_t *llm_alloc(const hf_text_config_t *tc, char *err) {
    if (check_config(tc, err)) return NULL;
    llm_t *m = mem_calloc(1, sizeof *m);
    if (m) m->layers = mem_calloc((size_t)tc->layers, sizeof *m->layers);
    if (!m || !m->layers) {
        hired_errf(err, HIRED_ENOMEM, "text model: out of memory");
        if (m) mem_free(m);
        return NULL;
    }
    m->cfg = *tc;
    m->q_dim = tc->heads * tc->head_dim;
    m->kv_dim = tc->kv_heads * tc->head_dim;
    m->chunk = 1024;
    return m;
}

void llm_destroy(llm_t **pm) {
    if (!pm || !*pm) return;
    llm_t *m = *pm;
    if (m->layers)
        for (int l = 0; l < m->cfg.layers; l++) {
            mem_free_aligned(m->layers[l].in_norm);
            mem_free_aligned(m->layers[l].post_norm);
        }
    mem_free(m->layers);
    mem_free_aligned(m->final_norm);
    mem_free_aligned(m->owned_weights);
    mem_free(m);
    *pm = NULL;
}

/* Borrows a [rows, cols] matrix in its checkpoint dtype (shape checked by the reader). */
static int load_mat(const st_model_t *st, const char *name, int rows, int cols, llm_mat_t *mt, char *err) {
    tensor_t t;
    int rc = st_model_get_shaped(st, name, 2, (const int64_t[]){rows, cols}, &t, err);
    if (rc) return rc;
    *mt = (llm_mat_t){.w = t.data, .dtype = t.dtype, .rows = rows, .cols = cols};
    return HIRED_OK;
}

static float *load_vec(const st_model_t *st, const char *name, int n, char *err) {
    int64_t shape[1] = {n};
    return st_model_load_f32(st, name, 1, shape, err);
}

llm_t *llm_load(const st_model_t *st, const hf_text_config_t *tc, char *err) {
    llm_t *m = llm_alloc(tc, err);
    if (!m) return NULL;
    const int D = tc->hidden, I = tc->intermediate, V = tc->vocab;
    char name[256];
    int rc = load_mat(st, LLM_PREFIX "model.embed_tokens.weight", V, D, &m->embed, err);
    if (!rc) {
        if (st_model_has(st, LLM_PREFIX "lm_head.weight") || !tc->tie_embeddings)
            rc = load_mat(st, LLM_PREFIX "lm_head.weight", V, D, &m->head, err);
        else
            m->head = m->embed;
    }
    if (!rc && !(m->final_norm = load_vec(st, LLM_PREFIX "model.norm.weight", D, err))) rc = HIRED_ENOTFOUND;
    for (int l = 0; !rc && l < tc->layers; l++) {
        llm_layer_t *L = &m->layers[l];
        struct {
            const char *suffix;
            llm_mat_t *dst;
            int rows, cols;
        } mats[] = {
            {"self_attn.q_proj.weight", &L->q, m->q_dim, D},  {"self_attn.k_proj.weight", &L->k, m->kv_dim, D},
            {"self_attn.v_proj.weight", &L->v, m->kv_dim, D}, {"self_attn.o_proj.weight", &L->o, D, m->q_dim},
            {"mlp.gate_proj.weight", &L->gate, I, D},         {"mlp.up_proj.weight", &L->up, I, D},
            {"mlp.down_proj.weight", &L->down, D, I},
        };
        for (size_t i = 0; !rc && i < ARRAY_LEN(mats); i++) {
            snprintf(name, sizeof name, LLM_PREFIX "model.layers.%d.%s", l, mats[i].suffix);
            rc = load_mat(st, name, mats[i].rows, mats[i].cols, mats[i].dst, err);
        }
        snprintf(name, sizeof name, LLM_PREFIX "model.layers.%d.input_layernorm.weight", l);
        if (!rc && !(L->in_norm = load_vec(st, name, D, err))) rc = HIRED_ENOTFOUND;
        snprintf(name, sizeof name, LLM_PREFIX "model.layers.%d.post_attention_layernorm.weight", l);
        if (!rc && !(L->post_norm = load_vec(st, name, D, err))) rc = HIRED_ENOTFOUND;
    }
    if (rc) {
        llm_destroy(&m);
        return NULL;
    }
    log_debug("text model: %d layers, hidden %d, heads %d/%d (head_dim %d), mlp %d, vocab %d, %s weights", tc->layers,
              D, tc->heads, tc->kv_heads, tc->head_dim, I, V, tensor_dtype_name(m->embed.dtype));
    return m;
}

// ---- random weights (benchmarks) ---------------------------------------------------------------

/* A value in [−scale, scale) that depends only on (seed, i): the fill is parallel and
 * reproducible (splitmix64 finaliser on a counter). */
static float rnd_at(uint64_t seed, uint64_t i, float scale) {
    uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return scale * ((float)(z >> 40) / (float)(1ull << 24) * 2.0f - 1.0f);
}

static void fill_random(void *dst, tensor_dtype_t dt, size_t n, uint64_t seed, float scale) {
    const size_t block = 4096, esz = tensor_dtype_size(dt);
    const long long nb = (long long)((n + block - 1) / block);
#pragma omp parallel for schedule(static)
    for (long long b = 0; b < nb; b++) {
        float buf[4096];
        size_t i0 = (size_t)b * block, cnt = n - i0 < block ? n - i0 : block;
        for (size_t i = 0; i < cnt; i++) buf[i] = rnd_at(seed, i0 + i, scale);
        tensor_convert_from_f32((uint8_t *)dst + i0 * esz, buf, dt, cnt);
    }
}

static float *random_norm(int n, uint64_t seed) {
    float *x = mem_alloc_aligned((size_t)n * sizeof(float));
    if (x)
        for (int i = 0; i < n; i++) x[i] = 1.0f + rnd_at(seed, (uint64_t)i, 0.1f);
    return x;
}

llm_t *llm_new_random(const hf_text_config_t *tc, tensor_dtype_t wdt, uint64_t seed, char *err) {
    llm_t *m = llm_alloc(tc, err);
    if (!m) return NULL;
    const size_t D = (size_t)tc->hidden, I = (size_t)tc->intermediate, V = (size_t)tc->vocab;
    const size_t esz = tensor_dtype_size(wdt);
    size_t per_layer = D * (size_t)m->q_dim * 2 + D * (size_t)m->kv_dim * 2 + 3 * D * I;
    size_t total = 2 * V * D + per_layer * (size_t)tc->layers;
    m->owned_weights = mem_alloc_aligned(total * esz);
    if (!m->owned_weights) {
        hired_errf(err, HIRED_ENOMEM, "text model: out of memory for %zu random weights", total);
        llm_destroy(&m);
        return NULL;
    }
    uint8_t *cur = m->owned_weights;
    uint64_t s = seed;
    int ok = 1;
#define TAKE(mat, r, c, scale)                                                        \
    do {                                                                              \
        *(mat) = (llm_mat_t){.w = cur, .dtype = wdt, .rows = (int)(r), .cols = (int)(c)}; \
        fill_random(cur, wdt, (size_t)(r) * (c), s += 0x1234567ull, (scale));         \
        cur += (size_t)(r) * (c) * esz;                                                \
    } while (0)
    TAKE(&m->embed, V, D, 1.0f);
    TAKE(&m->head, V, D, 1.0f / sqrtf((float)D));
    for (int l = 0; l < tc->layers; l++) {
        llm_layer_t *L = &m->layers[l];
        float sd = 1.0f / sqrtf((float)D), si = 1.0f / sqrtf((float)I);
        TAKE(&L->q, m->q_dim, D, sd);
        TAKE(&L->k, m->kv_dim, D, sd);
        TAKE(&L->v, m->kv_dim, D, sd);
        TAKE(&L->o, D, m->q_dim, 1.0f / sqrtf((float)m->q_dim));
        TAKE(&L->gate, I, D, sd);
        TAKE(&L->up, I, D, sd);
        TAKE(&L->down, D, I, si);
        ok = ok && (L->in_norm = random_norm((int)D, s += 7)) && (L->post_norm = random_norm((int)D, s += 7));
    }
#undef TAKE
    ok = ok && (m->final_norm = random_norm((int)D, s + 7));
    if (!ok) {
        hired_errf(err, HIRED_ENOMEM, "text model: out of memory");
        llm_destroy(&m);
    }
    return m;
}

const hf_text_config_t *llm_config(const llm_t *m) { return &m->cfg; }

void llm_set_prefill_chunk(llm_t *m, int rows) { m->chunk = rows < 1 ? 1 : rows; }

kv_cache_t *llm_kv_new(const llm_t *m, int cap, char *err) {
    return kv_cache_new(m->cfg.layers, m->kv_dim, cap, err);
}

int llm_embed(const llm_t *m, const int32_t *ids, int n, float *out, char *err) {
    if (n <= 0) return HIRED_OK;
    k_embed_args a = {.n = n, .d = m->cfg.hidden, .ids = ids, .table = m->embed.w, .table_dtype = m->embed.dtype,
                      .vocab = m->cfg.vocab, .y = out};
    int rc = k_embed_check(&a, err);
    if (rc) return rc;
    k_embed_cpu(&a);
    return HIRED_OK;
}

// ---- forward -----------------------------------------------------------------------------------

static void linear(const float *x, int t, const llm_mat_t *w, float *y, int ldy, bool accumulate) {
    k_matmul_args a = {.m = t, .n = w->rows, .k = w->cols, .x = x, .w = w->w, .w_dtype = w->dtype,
                       .y = y, .ldy = ldy, .accumulate = accumulate};
    k_matmul_cpu(&a);
}

static void rmsnorm(const float *x, float *y, int t, int d, const float *g, float eps) {
    k_rmsnorm_args a = {.m = t, .d = d, .x = x, .y = y, .gamma = g, .eps = eps};
    k_rmsnorm_cpu(&a);
}

typedef struct {
    float *x;   /* [chunk, D] residual stream */
    float *xn;  /* [chunk, D] normed input */
    float *q;   /* [chunk, H·hd] queries, then reused for the attention output's input */
    float *att; /* [chunk, H·hd] attention output */
    float *g;   /* [chunk, I] gate, then silu(gate)·up */
    float *u;   /* [chunk, I] up */
} llm_scratch_t;

static void scratch_free(llm_scratch_t *s) {
    mem_free_aligned(s->x);
    mem_free_aligned(s->xn);
    mem_free_aligned(s->q);
    mem_free_aligned(s->att);
    mem_free_aligned(s->g);
    mem_free_aligned(s->u);
    memset(s, 0, sizeof *s);
}

static int scratch_alloc(const llm_t *m, int rows, llm_scratch_t *s) {
    const size_t D = (size_t)m->cfg.hidden, I = (size_t)m->cfg.intermediate, r = (size_t)rows;
    s->x = mem_alloc_aligned(r * D * sizeof(float));
    s->xn = mem_alloc_aligned(r * D * sizeof(float));
    s->q = mem_alloc_aligned(r * (size_t)m->q_dim * sizeof(float));
    s->att = mem_alloc_aligned(r * (size_t)m->q_dim * sizeof(float));
    s->g = mem_alloc_aligned(r * I * sizeof(float));
    s->u = mem_alloc_aligned(r * I * sizeof(float));
    if (s->x && s->xn && s->q && s->att && s->g && s->u) return HIRED_OK;
    scratch_free(s);
    return HIRED_ENOMEM;
}

/* One chunk of t rows (already copied into s->x) at positions p0.., every layer. */
static void forward_chunk(const llm_t *m, kv_cache_t *kv, int t, int p0, llm_scratch_t *s) {
    const hf_text_config_t *c = &m->cfg;
    const int D = c->hidden, I = c->intermediate, kvd = m->kv_dim;
    const float scale = (float)(1.0 / sqrt((double)c->head_dim));
    for (int l = 0; l < c->layers; l++) {
        const llm_layer_t *L = &m->layers[l];
        float *kc = kv_cache_k(kv, l), *vc = kv_cache_v(kv, l); /* [cap, kvd] */
        float *krows = kc + (size_t)p0 * kvd, *vrows = vc + (size_t)p0 * kvd;

        rmsnorm(s->x, s->xn, t, D, L->in_norm, c->rms_eps);
        linear(s->xn, t, &L->q, s->q, 0, false);
        linear(s->xn, t, &L->k, krows, 0, false);
        linear(s->xn, t, &L->v, vrows, 0, false);
        k_rope_args rq = {.t = t, .n_head = c->heads, .head_dim = c->head_dim, .x = s->q, .pos0 = p0,
                          .theta = c->rope_theta};
        k_rope_cpu(&rq);
        k_rope_args rk = {.t = t, .n_head = c->kv_heads, .head_dim = c->head_dim, .x = krows, .pos0 = p0,
                          .theta = c->rope_theta};
        k_rope_cpu(&rk);
        k_attention_args at = {.t_q = t, .t_k = p0 + t, .n_head = c->heads, .n_head_kv = c->kv_heads,
                               .head_dim = c->head_dim, .q = s->q, .k = kc, .v = vc, .out = s->att,
                               .scale = scale, .causal = true, .q_pos0 = p0};
        k_attention_cpu(&at);
        linear(s->att, t, &L->o, s->x, 0, true); /* x += attn · Woᵀ */

        rmsnorm(s->x, s->xn, t, D, L->post_norm, c->rms_eps);
        linear(s->xn, t, &L->gate, s->g, 0, false);
        linear(s->xn, t, &L->up, s->u, 0, false);
        k_silu_mul_args sm = {.n = (int64_t)t * I, .gate = s->g, .up = s->u, .y = s->g};
        k_silu_mul_cpu(&sm);
        linear(s->g, t, &L->down, s->x, 0, true); /* x += mlp · Wdᵀ */
    }
}

/* Final norm and lm_head on rows [r0, r0+n) of the chunk into logits [n, vocab]. */
static void head_rows(const llm_t *m, llm_scratch_t *s, int r0, int n, float *logits) {
    const int D = m->cfg.hidden;
    rmsnorm(s->x + (size_t)r0 * D, s->xn, n, D, m->final_norm, m->cfg.rms_eps);
    linear(s->xn, n, &m->head, logits, 0, false);
}

int llm_forward_rows(const llm_t *m, kv_cache_t *kv, const float *x, int t, const int32_t *rows, int n_rows,
                     float *logits, char *err) {
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
    const int D = m->cfg.hidden, V = m->cfg.vocab;
    const int chunk = t < m->chunk ? t : m->chunk;
    llm_scratch_t s = {0};
    if (scratch_alloc(m, chunk, &s))
        return hired_errf(err, HIRED_ENOMEM, "text model: out of memory for a %d-row chunk", chunk);
    int next = 0; /* first entry of rows not yet computed */
    for (int r0 = 0; r0 < t; r0 += chunk) {
        const int n = t - r0 < chunk ? t - r0 : chunk;
        memcpy(s.x, x + (size_t)r0 * D, (size_t)n * D * sizeof(float));
        forward_chunk(m, kv, n, p_start + r0, &s);
        /* runs of consecutive wanted rows inside this chunk go through the head together */
        while (next < n_rows && rows[next] < r0 + n) {
            int run = 1;
            while (next + run < n_rows && rows[next + run] < r0 + n && rows[next + run] == rows[next] + run) run++;
            head_rows(m, &s, rows[next] - r0, run, logits + (size_t)next * V);
            next += run;
        }
        kv_cache_advance(kv, n); /* positions p_start+r0 .. +n−1 are now valid in the cache */
    }
    scratch_free(&s);
    return HIRED_OK;
}

int llm_forward(const llm_t *m, kv_cache_t *kv, const float *x, int t, llm_logits_t mode, float *logits, char *err) {
    if (mode == LLM_LOGITS_NONE) return llm_forward_rows(m, kv, x, t, NULL, 0, NULL, err);
    if (mode == LLM_LOGITS_LAST) {
        int32_t last = t - 1;
        return llm_forward_rows(m, kv, x, t, &last, 1, logits, err);
    }
    if (t <= 0) return hired_errf(err, HIRED_EINVAL, "text model: forward of %d rows", t);
    int32_t *rows = mem_alloc((size_t)t * sizeof *rows);
    if (!rows) return hired_errf(err, HIRED_ENOMEM, "text model: out of memory");
    for (int i = 0; i < t; i++) rows[i] = i;
    int rc = llm_forward_rows(m, kv, x, t, rows, t, logits, err);
    mem_free(rows);
    return rc;
}

// ---- cost model (benchmarks) --------------------------------------------------------------------

double llm_matmul_flops(const llm_t *m, int t, int past, int n_logit_rows) {
    const hf_text_config_t *c = &m->cfg;
    const double D = c->hidden, I = c->intermediate, Q = m->q_dim, KV = m->kv_dim;
    double per_layer = 2.0 * t * (D * Q + 2 * D * KV + Q * D + 3 * D * I);
    /* q·kᵀ and p·v: query i sees past + i + 1 keys */
    double keys = (double)t * past + (double)t * (t + 1) / 2.0;
    per_layer += 2.0 * 2.0 * keys * c->head_dim * c->heads;
    return per_layer * c->layers + 2.0 * n_logit_rows * D * c->vocab;
}

size_t llm_weight_bytes_per_step(const llm_t *m) {
    const hf_text_config_t *c = &m->cfg;
    const size_t D = (size_t)c->hidden, I = (size_t)c->intermediate;
    size_t b = 0;
    for (int l = 0; l < c->layers; l++) {
        const llm_layer_t *L = &m->layers[l];
        const llm_mat_t *mats[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
        for (size_t i = 0; i < ARRAY_LEN(mats); i++)
            b += (size_t)mats[i]->rows * mats[i]->cols * tensor_dtype_size(mats[i]->dtype);
        b += 2 * D * sizeof(float);
    }
    (void)I;
    b += (size_t)m->head.rows * m->head.cols * tensor_dtype_size(m->head.dtype);
    b += D * tensor_dtype_size(m->embed.dtype) + D * sizeof(float);
    return b;
}
