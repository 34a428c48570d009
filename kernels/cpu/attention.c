/* attention.c (cpu) — fast multi-head attention and one query row's probabilities. Each
 * attention work item computes a block of scores
 * S = scale·Q·Kᵀ with one sgemm into per-thread scratch, applies the causal limit and turns each
 * row into exp(s − max) (zero past the visible keys), then O = E·V with a second sgemm straight
 * into out, and finally divides each head_dim-wide output row by its row's Σexp (cheaper than
 * normalising the t_k-wide score rows). Work items are spread over OpenMP threads; the GEMMs go
 * through k_cpu_sgemm (gemm.h), single-threaded inside them. On CPUs with AVX2 but no AVX-512
 * the blocked items run the same three steps through hand-written register tiles instead
 * (attention_x86.h: 1.6x the GEMM path there, which packs both operands on every small call;
 * hired-bench-kernels attention prints both). The plan (kernels/attention.c)
 * chooses the blocking; the score blocks come from the context's arena; the STREAM fallback
 * (used only when that scratch cannot be allocated) needs no memory at all. attn_row: per head
 * one matrix-vector product (k_cpu_sgemm, m = 1) of its keys with the query, then the shared exp
 * row, straight into probs. A decode step (one query row) on a CPU with AVX2, FMA and F16C
 * reads keys and values where they lie in the cache, float32 or F16, dense or paged
 * (k_cpu_att_decode_scores and _values), instead of widening or gathering the whole cache into float32 rows first
 * as the other paths do.
 * Not here: the reference (attention_ref.c), RoPE, the KV cache. */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "attention_x86.h"
#include "cpu_ops.h"
#include "cpu_util.h"
#include "gemm.h"
#include "simd_x86.h"

typedef struct {
    const k_attention_args *a;
    const float *q, *k, *v; /* typed views of a->q, a->k, a->v */
    float *out;
    size_t ldq, ldk, ldv, ldo;
    int group; /* q heads per kv head */
} at_ctx;

/* Keys visible to query row i (absolute position q_pos0 + i). */
static int visible(const k_attention_args *a, int i) {
    if (!a->causal) return a->t_k;
    long long v = (long long)a->q_pos0 + i + 1;
    return v < a->t_k ? (int)v : a->t_k;
}

/* A decode step's blocks of keys for the values (attention_x86.h) and the floats of their parts,
 * at the most keys the call sees (t_k: the workspace bound holds for fewer). */
static int decode_blocks(int n) { return (n + K_DECODE_KB - 1) / K_DECODE_KB; }
static size_t decode_part_floats(const k_attention_args *a) {
    return (size_t)decode_blocks(a->t_k) * a->n_head * a->head_dim;
}

/* rows[r] (stride ld, d values) *= inv[r] for r < n: the softmax normalisation, applied to the
 * output rows (head_dim wide) instead of the score rows (t_k wide). */
static void scale_rows(float *rows, size_t ld, int d, const float *inv, int n) {
    for (int r = 0; r < n; r++)
        for (int e = 0; e < d; e++) rows[r * ld + e] *= inv[r];
}

// ---- BLOCKED: (q head, block of queries) -------------------------------------------------------

/* s: scratch of block_q·t_k scores followed by block_q row factors. */
static void blocked_item(const at_ctx *c, int h, int i0, int i1, float *s, float *inv) {
    const k_attention_args *a = c->a;
    int hk = h / c->group, d = a->head_dim, mq = i1 - i0;
    int width = visible(a, i1 - 1); /* keys any row of the block can see */
    const float *q = c->q + i0 * c->ldq + (size_t)h * d;
    const float *k = c->k + (size_t)hk * d;
    const float *v = c->v + (size_t)hk * d;
    k_cpu_sgemm(true, mq, width, d, a->scale, q, c->ldq, k, c->ldk, 0.0f, s, (size_t)width);
    for (int r = 0; r < mq; r++) {
        float *row = s + (size_t)r * width;
        inv[r] = 1.0f / k_cpu_exp_row(row, visible(a, i0 + r), width);
    }
    float *o = c->out + i0 * c->ldo + (size_t)h * d;
    k_cpu_sgemm(false, mq, d, width, 1.0f, s, (size_t)width, v, c->ldv, 0.0f, o, c->ldo);
    scale_rows(o, c->ldo, d, inv, mq);
}

/* A block of queries of every q head of kv head hk through the AVX2 register tiles
 * (attention_x86.h): the block's visible keys and values packed once for the group, straight
 * from the cache (float32 or F16, dense or paged), then per
 * head and tile of 6 query rows the scores (rows lds apart) of the keys the tile's last row
 * sees, their exponentials, and the output rows, while the tile's score rows are still in L1.
 * Keys past a row's limit get exp = 0 and add exact zeros, so a row's bits do not depend on
 * its tile. */
static void tiles_item(const at_ctx *c, int hk, int i0, int i1, float *kt, float *s, size_t lds) {
    const k_attention_args *a = c->a;
    int d = a->head_dim;
    int n = visible(a, i1 - 1);
    float *vp = kt + k_cpu_att_packed_floats(n, d);
    /* packed from the cache as it lies: F16 widened and pages followed while packing */
    const bool half = a->kv_dtype == TENSOR_DTYPE_F16;
    const k_att_src ks = {a, a->k, c->ldk, (size_t)hk * d, half}, vs = {a, a->v, c->ldv, (size_t)hk * d, half};
    k_cpu_att_pack_keys(kt, &ks, n, d);
    k_cpu_att_pack_values(vp, &vs, n, d);
    for (int h = hk * c->group; h < (hk + 1) * c->group; h++)
        for (int r0 = i0; r0 < i1; r0 += K_ATT_TILE_ROWS) {
            int mr = i1 - r0 < K_ATT_TILE_ROWS ? i1 - r0 : K_ATT_TILE_ROWS;
            int width = visible(a, r0 + mr - 1);
            float inv[K_ATT_TILE_ROWS];
            const float *q = c->q + r0 * c->ldq + (size_t)h * d;
            k_cpu_att_scores(s, lds, q, c->ldq, mr, kt, (width + 15) / 16, d, a->scale);
            for (int r = 0; r < mr; r++) inv[r] = 1.0f / k_cpu_att_exp_row(s + (size_t)r * lds, visible(a, r0 + r), width);
            k_cpu_att_values(c->out + r0 * c->ldo + (size_t)h * d, c->ldo, s, lds, mr, vp, n, width, d, inv);
        }
}

// ---- DECODE: one query, the q heads of kv head hk as one [group, head_dim] matrix --------------

static void decode_head(const at_ctx *c, int hk, float *s, float *inv) {
    const k_attention_args *a = c->a;
    int d = a->head_dim, g = c->group, width = visible(a, 0);
    const float *q = c->q + (size_t)hk * g * d;
    const float *k = c->k + (size_t)hk * d;
    const float *v = c->v + (size_t)hk * d;
    /* with one q head per kv head (MHA) these are matrix-vector products (m = 1), which both GEMM
     * families run as such (gemm.h), streaming K and V once */
    k_cpu_sgemm(true, g, width, d, a->scale, q, (size_t)d, k, c->ldk, 0.0f, s, (size_t)width);
    for (int r = 0; r < g; r++) {
        float *row = s + (size_t)r * width;
        inv[r] = 1.0f / k_cpu_exp_row(row, width, width);
    }
    float *o = c->out + (size_t)hk * g * d;
    k_cpu_sgemm(false, g, d, width, 1.0f, s, (size_t)width, v, c->ldv, 0.0f, o, (size_t)d);
    scale_rows(o, (size_t)d, d, inv, g);
}

// ---- STREAM: online softmax, no scratch (fallback when allocation fails) -----------------------

static void stream_row(const at_ctx *c, int i, int h) {
    const k_attention_args *a = c->a;
    int hk = h / c->group, d = a->head_dim, n_vis = visible(a, i);
    const float *q = c->q + i * c->ldq + (size_t)h * d;
    const float *kb = c->k + (size_t)hk * d, *vb = c->v + (size_t)hk * d;
    float *o = c->out + i * c->ldo + (size_t)h * d;
    float mx = -INFINITY, sum = 0.0f;
    for (int e = 0; e < d; e++) o[e] = 0.0f;
    for (int j = 0; j < n_vis; j++) {
        float sc = a->scale * k_cpu_dot(q, kb + j * c->ldk, d);
        if (sc > mx) { /* rescale what was accumulated under the old maximum */
            float f = expf(mx - sc);
            sum *= f;
            for (int e = 0; e < d; e++) o[e] *= f;
            mx = sc;
        }
        float p = expf(sc - mx);
        sum += p;
        const float *vr = vb + j * c->ldv;
        for (int e = 0; e < d; e++) o[e] += p * vr[e];
    }
    float inv = 1.0f / sum;
    for (int e = 0; e < d; e++) o[e] *= inv;
}

static void run_stream(const at_ctx *c, int n_threads) {
    const k_attention_args *a = c->a;
    int n_items = a->t_q * a->n_head;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 4) if (n_threads > 1)
    for (int it = 0; it < n_items; it++) stream_row(c, it / a->n_head, it % a->n_head);
}

/* Whether the planned call reads a half or paged cache where it lies (the decode kernel, or the
 * tiles, which pack from it), once its scratch is there: then nothing is widened into float32
 * rows. */
static bool kv_in_place(const k_attention_args *a, const k_attention_launch *l) {
    const bool kv_ok = a->kv_dtype == TENSOR_DTYPE_F32 || a->kv_dtype == TENSOR_DTYPE_F16;
    if (!kv_ok || a->head_dim % 8) return false;
    if (l->variant == K_ATTENTION_DECODE) return k_cpu_att_decode_usable();
    return l->variant == K_ATTENTION_BLOCKED && l->pack_floats && k_cpu_att_tiles_usable();
}

/* Also an upper bound for the same arguments with fewer keys, so that a decode job can reserve
 * once for its longest step. DECODE's scratch grows with t_k. BLOCKED at any t_k' ≤ t_k: the
 * packed keys are at most those of t_k or, when t_k is past the packing limit, of the most keys
 * that still pack; the score block is block_q·t_k' ≤ max(budget, t_k') (block_q is the budget
 * over t_k', capped, or 1) with rows padded by up to 15 keys, plus at most t_q row factors. */
size_t k_attention_cpu_workspace(const k_attention_args *a) {
    const int max_threads = k_cpu_max_threads();
    k_attention_launch l;
    k_attention_plan(a, max_threads, &l);
    size_t most = l.scratch_floats;
    if (l.variant == K_ATTENTION_BLOCKED) {
        size_t d = (size_t)a->head_dim, pack = l.pack_floats;
        size_t limit = 2 * (K_ATTENTION_PACK_FLOATS / (2 * d) / 16 * 16) * d; /* the most keys that pack */
        if (!pack && limit) pack = limit;
        size_t scores = (size_t)a->t_k > K_ATTENTION_SCRATCH_FLOATS ? (size_t)a->t_k : K_ATTENTION_SCRATCH_FLOATS;
        most = pack + scores + 16 * (size_t)a->t_q + 16; /* rows padded to 16 keys, row factors */
    }
    /* the widened copies only where the call does not read the cache in place. At fewer keys
     * the plan packs whenever it packs at t_k, so the bound holds */
    size_t widen = (a->kv_dtype != TENSOR_DTYPE_F32 || a->kv_blocks) && !kv_in_place(a, &l)
                       ? 2 * ((size_t)a->t_k * a->n_head_kv * a->head_dim * sizeof(float) + 64)
                       : 0;
    /* with a decode step's value parts (an arena allocation of its own, rounded up) */
    const size_t parts = l.variant == K_ATTENTION_DECODE ? decode_part_floats(a) * sizeof(float) + 64 : 0;
    return most * (size_t)max_threads * sizeof(float) + widen + parts;
}

/* Keys or values [t_k, kvrow] (row stride ld; dense or paged, k_attention_row) as dense
 * float32 rows: half dtypes widened (exact), float32 copied. */
static void widen_rows(float *dst, const void *src, size_t ld, const k_attention_args *a, size_t kvrow, int n_threads) {
    const tensor_dtype_t dt = a->kv_dtype;
    bool simd = dt == TENSOR_DTYPE_F16 && k_cpu_have_f16c();
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1 && a->t_k >= 64)
    for (int i = 0; i < a->t_k; i++) {
        size_t off = k_attention_row(a, i, ld);
        if (dt == TENSOR_DTYPE_F32)
            memcpy(dst + (size_t)i * kvrow, (const float *)src + off, kvrow * sizeof(float));
        else if (simd)
            k_cpu_f16_to_f32_f16c(dst + (size_t)i * kvrow, (const uint16_t *)src + off, kvrow);
        else
            k_cpu_to_f32_portable(dst + (size_t)i * kvrow, (const uint16_t *)src + off, dt, kvrow);
    }
}

int k_attention_cpu(k_ctx_t *ctx, const k_attention_args *a) {
    k_cpu_blas_init();
    size_t qrow = (size_t)a->n_head * a->head_dim, kvrow = (size_t)a->n_head_kv * a->head_dim;
    at_ctx c = {a, a->q, a->k, a->v, a->out,
                a->ldq ? (size_t)a->ldq : qrow,
                a->ldk ? (size_t)a->ldk : kvrow,
                a->ldv ? (size_t)a->ldv : kvrow,
                a->ldo ? (size_t)a->ldo : qrow,
                a->n_head / a->n_head_kv};
    k_attention_launch l;
    k_attention_plan(a, k_cpu_max_threads(), &l);
    size_t mark = k_ctx_mark(ctx);
    /* a decode step on an AVX2 CPU reads the cache where it lies, whatever its dtype or paging;
     * the tiles need packed keys and head_dim in whole vectors of 8; their items are (kv head,
     * block), so a group of q heads shares one packing, which reads the cache as it lies */
    const bool in_place = kv_in_place(a, &l);
    const bool direct = in_place && l.variant == K_ATTENTION_DECODE;
    float *scratch = k_ctx_alloc(ctx, l.scratch_floats * l.n_threads * sizeof(float)); /* per thread */
    /* a decode step's value parts, one [n_head, d] per block of keys */
    float *part = direct && scratch ? k_ctx_alloc(ctx, decode_part_floats(a) * sizeof(float)) : NULL;
    if (direct && !part) scratch = NULL; /* then the paths below, which need less or no memory */
    const bool tiles = in_place && l.variant == K_ATTENTION_BLOCKED && scratch;
    if ((a->kv_dtype != TENSOR_DTYPE_F32 || a->kv_blocks) && !(scratch && direct) && !tiles) {
        /* a half or paged KV cache for the GEMM or STREAM path: widened or gathered into dense
         * rows once per call, then the float32 path (the same bits as dense float32 keys and
         * values holding the same numbers) */
        float *k32 = k_ctx_alloc(ctx, (size_t)a->t_k * kvrow * sizeof(float));
        float *v32 = k_ctx_alloc(ctx, (size_t)a->t_k * kvrow * sizeof(float));
        if (!k32 || !v32) {
            k_ctx_release(ctx, mark);
            return k_ctx_fail(ctx, HIRED_ENOMEM, "attention: no memory to widen %d half keys", a->t_k);
        }
        widen_rows(k32, a->k, c.ldk, a, kvrow, l.n_threads);
        widen_rows(v32, a->v, c.ldv, a, kvrow, l.n_threads);
        c.k = k32, c.v = v32, c.ldk = c.ldv = kvrow;
    }
    if (!scratch) {
        run_stream(&c, l.n_threads);
        k_ctx_release(ctx, mark);
        return HIRED_OK;
    }
    if (direct) {
        /* a decode step: the scores with threads over ranges of keys; the exponentials and
         * their sums row by row; the values' parts over fixed blocks of keys
         * (attention_x86.h), then added in block order and scaled. All n_head score rows and
         * their factors fit the scratch: the threads' slices hold n_items · item_rows ≥ n_head
         * rows of score_ld ≥ n floats and as many factors */
        const int n = visible(a, 0), nt = l.n_threads, d = a->head_dim, nb = decode_blocks(n);
        const size_t hd = (size_t)a->n_head * d;
        float *s = scratch, *inv = scratch + (size_t)a->n_head * n;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
#pragma omp for schedule(static)
            for (int t = 0; t < nt; t++)
                k_cpu_att_decode_scores(a, (int)((long long)n * t / nt), (int)((long long)n * (t + 1) / nt), n, c.ldk,
                                        c.q, s);
#pragma omp for schedule(static)
            for (int r = 0; r < a->n_head; r++) inv[r] = 1.0f / k_cpu_att_exp_row(s + (size_t)r * n, n, n);
#pragma omp for schedule(dynamic, 1)
            for (int b = 0; b < nb; b++)
                k_cpu_att_decode_values(a, b * K_DECODE_KB, b + 1 < nb ? (b + 1) * K_DECODE_KB : n, n, c.ldv, s,
                                        part + (size_t)b * hd);
#pragma omp for schedule(static)
            for (int r = 0; r < a->n_head; r++) {
                float *o = c.out + (size_t)r * d;
                const float *p0 = part + (size_t)r * d;
                for (int e = 0; e < d; e++) o[e] = p0[e];
                for (int b = 1; b < nb; b++)
                    for (int e = 0; e < d; e++) o[e] += p0[(size_t)b * hd + e];
                for (int e = 0; e < d; e++) o[e] *= inv[r];
            }
        }
        k_ctx_release(ctx, mark);
        return HIRED_OK;
    }
    int n_items = tiles ? l.n_items / c.group : l.n_items;
#pragma omp parallel num_threads(l.n_threads) if (l.n_threads > 1)
    {
        float *kt = scratch + l.scratch_floats * omp_get_thread_num();
        float *s = kt + l.pack_floats;
        float *inv = s + (size_t)l.item_rows * l.score_ld;
#pragma omp for schedule(dynamic, 1)
        for (int it = 0; it < n_items; it++) {
            if (l.variant == K_ATTENTION_DECODE) {
                const int hk0 = it * l.item_heads;
                const int hk1 = hk0 + l.item_heads < a->n_head_kv ? hk0 + l.item_heads : a->n_head_kv;
                for (int hk = hk0; hk < hk1; hk++) decode_head(&c, hk, s, inv);
            } else if (tiles) {
                int hk = it % a->n_head_kv, b = it / a->n_head_kv;
                int i0 = b * l.block_q, i1 = i0 + l.block_q < a->t_q ? i0 + l.block_q : a->t_q;
                tiles_item(&c, hk, i0, i1, kt, s, l.score_ld);
            } else {
                /* heads vary fastest so neighbouring items share the q/k/v rows in cache */
                int h = it % a->n_head, b = it / a->n_head;
                int i0 = b * l.block_q, i1 = i0 + l.block_q < a->t_q ? i0 + l.block_q : a->t_q;
                blocked_item(&c, h, i0, i1, s, inv);
            }
        }
    }
    k_ctx_release(ctx, mark);
    return HIRED_OK;
}

// ---- one query row's probabilities -------------------------------------------------------------

int k_attn_row_cpu(k_ctx_t *ctx, const k_attn_row_args *a) {
    (void)ctx;
    k_cpu_blas_init();
    const float *q = a->q, *k = a->k; /* [n_head*head_dim], [t_k, n_head_kv*head_dim] */
    float *probs = a->probs;          /* [n_head, t_k], stride ldp */
    const int d = a->head_dim, group = a->n_head / a->n_head_kv;
    const size_t ldk = a->ldk ? (size_t)a->ldk : (size_t)a->n_head_kv * d, ldp = a->ldp ? (size_t)a->ldp : (size_t)a->t_k;
    for (int h = 0; h < a->n_head; h++) {
        float *row = probs + h * ldp;
        k_cpu_sgemm(true, 1, a->t_k, d, a->scale, q + (size_t)h * d, (size_t)d, k + (size_t)(h / group) * d, ldk, 0.0f,
                    row, (size_t)a->t_k);
        float inv = 1.0f / k_cpu_exp_row(row, a->t_k, a->t_k);
        for (int j = 0; j < a->t_k; j++) row[j] *= inv;
    }
    return HIRED_OK;
}
