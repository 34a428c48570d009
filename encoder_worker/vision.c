/* vision.c — the CLIP vision tower (see vision.h): weight loading from a LLaVA checkpoint or
 * random initialisation, and the batched forward pass over all partitions of one image.
 *
 * Layout: activations are row-major [n·T, D] float32 with T = 1 + patches (CLS first), so every
 * linear layer is one GEMM over all partitions; attention runs per partition. Block l maps
 * hidden_states[l] to hidden_states[l+1]; hidden_states[0] is the pre_layrnorm output. */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "act.h"
#include "add.h"
#include "attention.h"
#include "embed.h"
#include "err.h"
#include "log.h"
#include "matmul.h"
#include "mem.h"
#include "norm.h"

// ---- weights -------------------------------------------------------------------------------

typedef struct {
    const void *w; /* [rows, cols] in dtype */
    tensor_dtype_t dtype;
    int rows, cols;
} vis_mat_t;

typedef struct {
    float *ln1_w, *ln1_b, *ln2_w, *ln2_b;   /* [D] */
    vis_mat_t q, k, v, o;                   /* [D, D] */
    float *q_b, *k_b, *v_b, *o_b;           /* [D] */
    vis_mat_t fc1, fc2;                     /* [I, D], [D, I] */
    float *fc1_b, *fc2_b;                   /* [I], [D] */
} vis_layer_t;

struct vision {
    hf_vision_config_t cfg;
    int grid;            /* patches per side, image_size / patch_size */
    int n_patches;       /* grid² */
    int n_tokens;        /* n_patches + 1 */
    int feature_hidden;  /* index into hidden_states of the feature layer */
    int n_layers;        /* blocks loaded (run fully up to feature_hidden, attention-only after) */
    vis_mat_t patch_w;   /* [D, 3·p·p] */
    float *class_emb;    /* [D] */
    float *pos_emb;      /* [T, D] */
    float *pre_ln_w, *pre_ln_b;
    vis_layer_t *layers;
    void *owned_weights; /* random towers own one block of matrix storage */
};

#define VIS_PREFIX "vision_tower.vision_model."

static float *load_vec(const st_model_t *st, const char *name, int64_t n, char *err) {
    int64_t shape[1] = {n};
    return st_model_load_f32(st, name, 1, shape, err);
}

/* Borrows a [rows, cols] weight in its checkpoint dtype (shape checked by the reader). */
static int load_mat(const st_model_t *st, const char *name, int rows, int cols, vis_mat_t *m, char *err) {
    tensor_t t;
    int rc = st_model_get_shaped(st, name, 2, (const int64_t[]){rows, cols}, &t, err);
    if (rc) return rc;
    *m = (vis_mat_t){.w = t.data, .dtype = t.dtype, .rows = rows, .cols = cols};
    return HIRED_OK;
}

static void free_layer_vectors(vis_layer_t *L) {
    float **vecs[] = {&L->ln1_w, &L->ln1_b, &L->ln2_w, &L->ln2_b, &L->q_b, &L->k_b,
                      &L->v_b,   &L->o_b,   &L->fc1_b, &L->fc2_b};
    for (size_t i = 0; i < ARRAY_LEN(vecs); i++) {
        mem_free_aligned(*vecs[i]);
        *vecs[i] = NULL;
    }
}

void vision_destroy(vision_t **pv) {
    if (!pv || !*pv) return;
    vision_t *v = *pv;
    if (v->layers)
        for (int l = 0; l < v->n_layers; l++) free_layer_vectors(&v->layers[l]);
    mem_free(v->layers);
    mem_free_aligned(v->class_emb);
    mem_free_aligned(v->pos_emb);
    mem_free_aligned(v->pre_ln_w);
    mem_free_aligned(v->pre_ln_b);
    mem_free_aligned(v->owned_weights);
    mem_free(v);
    *pv = NULL;
}

static int check_config(const hf_vision_config_t *vc, int feature_layer, char *err) {
    if (vc->hidden <= 0 || vc->heads <= 0 || vc->hidden % vc->heads || vc->intermediate <= 0 || vc->layers <= 0 ||
        vc->patch_size <= 0 || vc->image_size % vc->patch_size || vc->channels != 3)
        return hired_errf(err, HIRED_EUNSUPPORTED, "vision config: unsupported geometry (hidden %d, heads %d, image %d, patch %d, channels %d)",
                          vc->hidden, vc->heads, vc->image_size, vc->patch_size, vc->channels);
    if (vc->act != HF_ACT_QUICK_GELU && vc->act != HF_ACT_GELU_ERF)
        return hired_errf(err, HIRED_EUNSUPPORTED, "vision config: unsupported hidden_act");
    int idx = feature_layer < 0 ? vc->layers + 1 + feature_layer : feature_layer;
    if (idx < 0 || idx > vc->layers)
        return hired_errf(err, HIRED_ERANGE, "vision_feature_layer %d is outside the %d-layer tower", feature_layer,
                          vc->layers);
    return HIRED_OK;
}

/* Common part of both constructors: geometry and the layer array. */
static vision_t *vision_alloc(const hf_vision_config_t *vc, int feature_layer, int max_attn_layer, char *err) {
    if (check_config(vc, feature_layer, err)) return NULL;
    if (max_attn_layer >= vc->layers) {
        hired_errf(err, HIRED_ERANGE, "attention requested at layer %d of a %d-layer tower", max_attn_layer,
                   vc->layers);
        return NULL;
    }
    vision_t *v = mem_calloc(1, sizeof *v);
    if (!v) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    v->cfg = *vc;
    v->grid = vc->image_size / vc->patch_size;
    v->n_patches = v->grid * v->grid;
    v->n_tokens = v->n_patches + 1;
    v->feature_hidden = feature_layer < 0 ? vc->layers + 1 + feature_layer : feature_layer;
    v->n_layers = v->feature_hidden;
    if (max_attn_layer + 1 > v->n_layers) v->n_layers = max_attn_layer + 1;
    v->layers = mem_calloc((size_t)(v->n_layers ? v->n_layers : 1), sizeof *v->layers);
    if (!v->layers) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        vision_destroy(&v);
    }
    return v;
}

vision_t *vision_load(const st_model_t *st, const hf_config_t *cfg, int max_attn_layer, char *err) {
    const hf_vision_config_t *vc = &cfg->vision;
    vision_t *v = vision_alloc(vc, cfg->feature_layer, max_attn_layer, err);
    if (!v) return NULL;
    const int D = vc->hidden, I = vc->intermediate, p = vc->patch_size;
    char name[256];
    /* the conv weight [D, 3, p, p] is, row-major, the matrix [D, 3·p·p] */
    tensor_t pw;
    int rc = st_model_get_shaped(st, VIS_PREFIX "embeddings.patch_embedding.weight", 4, (const int64_t[]){D, 3, p, p},
                                 &pw, err);
    if (!rc) v->patch_w = (vis_mat_t){.w = pw.data, .dtype = pw.dtype, .rows = D, .cols = 3 * p * p};
    if (!rc && !(v->class_emb = load_vec(st, VIS_PREFIX "embeddings.class_embedding", D, err))) rc = HIRED_ENOTFOUND;
    if (!rc) {
        int64_t shape[2] = {v->n_tokens, D};
        if (!(v->pos_emb = st_model_load_f32(st, VIS_PREFIX "embeddings.position_embedding.weight", 2, shape, err)))
            rc = HIRED_ENOTFOUND;
    }
    if (!rc && !(v->pre_ln_w = load_vec(st, VIS_PREFIX "pre_layrnorm.weight", D, err))) rc = HIRED_ENOTFOUND;
    if (!rc && !(v->pre_ln_b = load_vec(st, VIS_PREFIX "pre_layrnorm.bias", D, err))) rc = HIRED_ENOTFOUND;
    for (int l = 0; !rc && l < v->n_layers; l++) {
        vis_layer_t *L = &v->layers[l];
        struct {
            const char *suffix;
            float **dst;
            int n;
        } vecs[] = {
            {"layer_norm1.weight", &L->ln1_w, D}, {"layer_norm1.bias", &L->ln1_b, D},
            {"layer_norm2.weight", &L->ln2_w, D}, {"layer_norm2.bias", &L->ln2_b, D},
            {"self_attn.q_proj.bias", &L->q_b, D}, {"self_attn.k_proj.bias", &L->k_b, D},
            {"self_attn.v_proj.bias", &L->v_b, D}, {"self_attn.out_proj.bias", &L->o_b, D},
            {"mlp.fc1.bias", &L->fc1_b, I},        {"mlp.fc2.bias", &L->fc2_b, D},
        };
        struct {
            const char *suffix;
            vis_mat_t *dst;
            int rows, cols;
        } mats[] = {
            {"self_attn.q_proj.weight", &L->q, D, D}, {"self_attn.k_proj.weight", &L->k, D, D},
            {"self_attn.v_proj.weight", &L->v, D, D}, {"self_attn.out_proj.weight", &L->o, D, D},
            {"mlp.fc1.weight", &L->fc1, I, D},        {"mlp.fc2.weight", &L->fc2, D, I},
        };
        for (size_t i = 0; !rc && i < ARRAY_LEN(vecs); i++) {
            snprintf(name, sizeof name, VIS_PREFIX "encoder.layers.%d.%s", l, vecs[i].suffix);
            if (!(*vecs[i].dst = load_vec(st, name, vecs[i].n, err))) rc = HIRED_ENOTFOUND;
        }
        for (size_t i = 0; !rc && i < ARRAY_LEN(mats); i++) {
            snprintf(name, sizeof name, VIS_PREFIX "encoder.layers.%d.%s", l, mats[i].suffix);
            rc = load_mat(st, name, mats[i].rows, mats[i].cols, mats[i].dst, err);
        }
    }
    if (rc) {
        vision_destroy(&v);
        return NULL;
    }
    log_debug("vision tower: %d blocks loaded (feature layer = hidden_states[%d]), width %d, %d heads", v->n_layers,
              v->feature_hidden, D, vc->heads);
    return v;
}

// ---- random weights (benchmarks) ------------------------------------------------------------

/* splitmix64: a small, well-mixed generator for reproducible random weights. */
static uint64_t rng_next(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float rng_uniform(uint64_t *s, float scale) {
    return scale * ((float)(rng_next(s) >> 40) / (float)(1ull << 24) * 2.0f - 1.0f);
}

static float *random_vec(uint64_t *s, int64_t n, float base, float scale) {
    float *x = mem_alloc_aligned((size_t)n * sizeof(float));
    if (x)
        for (int64_t i = 0; i < n; i++) x[i] = base + rng_uniform(s, scale);
    return x;
}

vision_t *vision_new_random(const hf_vision_config_t *vc, int feature_layer, tensor_dtype_t wdt, uint64_t seed,
                            char *err) {
    vision_t *v = vision_alloc(vc, feature_layer, -1, err);
    if (!v) return NULL;
    const int D = vc->hidden, I = vc->intermediate, p = vc->patch_size;
    const size_t esz = tensor_dtype_size(wdt);
    size_t per_layer = 4 * (size_t)D * D + 2 * (size_t)D * I;
    size_t total = (size_t)D * 3 * p * p + per_layer * (size_t)v->n_layers;
    v->owned_weights = mem_alloc_aligned(total * esz);
    if (!v->owned_weights) {
        hired_errf(err, HIRED_ENOMEM, "out of memory for %zu random weights", total);
        vision_destroy(&v);
        return NULL;
    }
    /* fill the weights in float32 chunks, converted to the requested dtype */
    float chunk[4096];
    uint8_t *dst = v->owned_weights;
    for (size_t done = 0; done < total;) {
        size_t n = total - done < ARRAY_LEN(chunk) ? total - done : ARRAY_LEN(chunk);
        for (size_t i = 0; i < n; i++) chunk[i] = rng_uniform(&seed, 0.05f);
        tensor_convert_from_f32(dst + done * esz, chunk, wdt, n);
        done += n;
    }
    uint8_t *cur = v->owned_weights;
    vis_mat_t *m;
#define TAKE(mat, r, c) (m = (mat), m->w = cur, m->dtype = wdt, m->rows = (r), m->cols = (c), cur += (size_t)(r) * (c) * esz)
    TAKE(&v->patch_w, D, 3 * p * p);
    int ok = (v->class_emb = random_vec(&seed, D, 0, 0.5f)) && (v->pos_emb = random_vec(&seed, (int64_t)v->n_tokens * D, 0, 0.5f)) &&
             (v->pre_ln_w = random_vec(&seed, D, 1, 0.1f)) && (v->pre_ln_b = random_vec(&seed, D, 0, 0.1f));
    for (int l = 0; ok && l < v->n_layers; l++) {
        vis_layer_t *L = &v->layers[l];
        TAKE(&L->q, D, D);
        TAKE(&L->k, D, D);
        TAKE(&L->v, D, D);
        TAKE(&L->o, D, D);
        TAKE(&L->fc1, I, D);
        TAKE(&L->fc2, D, I);
        ok = (L->ln1_w = random_vec(&seed, D, 1, 0.1f)) && (L->ln1_b = random_vec(&seed, D, 0, 0.1f)) &&
             (L->ln2_w = random_vec(&seed, D, 1, 0.1f)) && (L->ln2_b = random_vec(&seed, D, 0, 0.1f)) &&
             (L->q_b = random_vec(&seed, D, 0, 0.1f)) && (L->k_b = random_vec(&seed, D, 0, 0.1f)) &&
             (L->v_b = random_vec(&seed, D, 0, 0.1f)) && (L->o_b = random_vec(&seed, D, 0, 0.1f)) &&
             (L->fc1_b = random_vec(&seed, I, 0, 0.1f)) && (L->fc2_b = random_vec(&seed, D, 0, 0.1f));
    }
#undef TAKE
    if (!ok) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        vision_destroy(&v);
    }
    return v;
}

int vision_feature_hidden_index(const vision_t *v) { return v->feature_hidden; }

// ---- forward --------------------------------------------------------------------------------

static void linear(const float *x, int m, const vis_mat_t *w, const float *bias, float *y, bool accumulate) {
    k_matmul_args a = {.m = m, .n = w->rows, .k = w->cols, .x = x, .w = w->w, .w_dtype = w->dtype,
                       .bias = bias, .y = y, .accumulate = accumulate};
    k_matmul_cpu(&a);
}

static void layernorm(const float *x, float *y, int m, int d, const float *g, const float *b, float eps) {
    k_layernorm_args a = {.m = m, .d = d, .x = x, .y = y, .gamma = g, .beta = b, .eps = eps};
    k_layernorm_cpu(&a);
}

void vision_out_free(vision_out_t *out) {
    if (!out) return;
    mem_free_aligned(out->features);
    mem_free_aligned(out->cls_attn);
    mem_free_aligned(out->cls_attn_heads);
    mem_free_aligned(out->pm_attn);
    mem_free_aligned(out->pm_keys);
    memset(out, 0, sizeof *out);
}

/* Index of layer l in opts->attn_layers, or -1. */
static int attn_slot(const vision_opts_t *opts, int l) {
    for (int i = 0; opts && i < opts->n_attn_layers; i++)
        if (opts->attn_layers[i] == l) return i;
    return -1;
}

static int last_layer_needed(const vision_t *v, const vision_opts_t *opts) {
    int last = v->feature_hidden - 1;
    if (opts && opts->want_pm && opts->pm_layer > last) last = opts->pm_layer;
    for (int i = 0; opts && i < opts->n_attn_layers; i++)
        if (opts->attn_layers[i] > last) last = opts->attn_layers[i];
    return last;
}

double vision_matmul_flops(const vision_t *v, int n, const vision_opts_t *opts) {
    const double D = v->cfg.hidden, I = v->cfg.intermediate, T = v->n_tokens, P = v->n_patches;
    const double k = 3.0 * v->cfg.patch_size * v->cfg.patch_size;
    double f = 2.0 * n * P * D * k; /* patch embedding */
    int last = last_layer_needed(v, opts);
    for (int l = 0; l <= last; l++) {
        bool full = l < v->feature_hidden || l < last;
        /* q,k,v,o and q·kᵀ, p·v — or, for an attention-only last layer, k and the CLS query's row */
        f += full ? 2.0 * n * T * D * D * 4 + 2.0 * n * T * T * D * 2 : 2.0 * n * (T + 1) * D * D + 2.0 * n * T * D;
        if (full) f += 2.0 * n * T * D * I * 2;        /* fc1, fc2 */
    }
    return f;
}

/* features[b] = x[b, 1:, :] (drop the CLS row). */
static void copy_features(const vision_t *v, const float *x, int n, float *features) {
    const size_t D = (size_t)v->cfg.hidden, P = (size_t)v->n_patches, T = (size_t)v->n_tokens;
    for (int b = 0; b < n; b++) memcpy(features + b * P * D, x + (b * T + 1) * D, P * D * sizeof(float));
}

/* PruMerge's attention (one head over the full width, scale 1/√D, softmax over all T keys, CLS
 * query) and the patch keys. q_full: [n·T, D] queries, or NULL when q_cls holds [n, D] CLS rows. */
static int prumerge_inputs(const vision_t *v, const float *q_full, const float *q_cls, const float *k, int n,
                           vision_out_t *out) {
    const int D = v->cfg.hidden, T = v->n_tokens, P = v->n_patches;
    const float scale = (float)(1.0 / sqrt((double)D));
    double *sc = mem_alloc((size_t)T * sizeof *sc);
    if (!sc) return HIRED_ENOMEM;
    for (int b = 0; b < n; b++) {
        const float *q = q_full ? q_full + (size_t)b * T * D : q_cls + (size_t)b * D;
        const float *kb = k + (size_t)b * T * D;
        float *dst = out->pm_attn + (size_t)b * P;
        double mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
            double dot = 0;
            for (int c = 0; c < D; c++) dot += (double)q[c] * kb[(size_t)j * D + c];
            sc[j] = (float)dot * scale;
            if (sc[j] > mx) mx = sc[j];
        }
        for (int j = 0; j < T; j++) sum += (sc[j] = exp(sc[j] - mx));
        for (int j = 1; j < T; j++) dst[j - 1] = (float)(sc[j] / sum);
        memcpy(out->pm_keys + (size_t)b * P * D, kb + D, (size_t)P * D * sizeof(float));
    }
    mem_free(sc);
    return HIRED_OK;
}

int vision_encode(vision_t *v, const float *pixels, int n, const vision_opts_t *opts, vision_out_t *out, char *err) {
    memset(out, 0, sizeof *out);
    const int D = v->cfg.hidden, I = v->cfg.intermediate, H = v->cfg.heads, T = v->n_tokens, P = v->n_patches;
    const int S = v->cfg.image_size, p = v->cfg.patch_size;
    const int hd = D / H;
    const float eps = v->cfg.eps;
    if (n <= 0 || n > 64) return hired_errf(err, HIRED_EINVAL, "vision: %d partitions (1..64 allowed)", n);
    if (opts && (opts->n_attn_layers < 0 || opts->n_attn_layers > VISION_MAX_ATTN_LAYERS))
        return hired_errf(err, HIRED_EINVAL, "vision: %d attention layers requested", opts->n_attn_layers);
    if (opts && opts->want_pm && (opts->pm_layer < 0 || opts->pm_layer >= v->n_layers))
        return hired_errf(err, HIRED_EINVAL, "vision: PruMerge inputs requested at layer %d, loaded layers are 0..%d",
                          opts->pm_layer, v->n_layers - 1);
    for (int i = 0; opts && i < opts->n_attn_layers; i++)
        if (opts->attn_layers[i] < 0 || opts->attn_layers[i] >= v->n_layers)
            return hired_errf(err, HIRED_EINVAL, "vision: attention requested at layer %d, loaded layers are 0..%d",
                              opts->attn_layers[i], v->n_layers - 1);
    const int n_attn = opts ? opts->n_attn_layers : 0;
    const int last = last_layer_needed(v, opts);
    const size_t M = (size_t)n * T;

    float *x = mem_alloc_aligned(M * D * sizeof(float));    /* residual stream [n·T, D] */
    float *h = mem_alloc_aligned(M * D * sizeof(float));    /* normed input / attention output */
    float *qkv = mem_alloc_aligned(3 * M * D * sizeof(float)); /* q, k, v, each [n·T, D] */
    float *mlp = mem_alloc_aligned(M * I * sizeof(float));  /* [n·T, I] */
    float *probs = mem_alloc_aligned((size_t)H * T * sizeof(float));
    out->features = mem_alloc_aligned((size_t)n * P * D * sizeof(float));
    if (n_attn) {
        out->cls_attn = mem_alloc_aligned((size_t)n_attn * n * P * sizeof(float));
        out->cls_attn_heads = mem_alloc_aligned((size_t)n_attn * n * H * T * sizeof(float));
    }
    int rc = HIRED_OK;
    const bool want_pm = opts && opts->want_pm;
    if (want_pm) {
        out->pm_attn = mem_alloc_aligned((size_t)n * P * sizeof(float));
        out->pm_keys = mem_alloc_aligned((size_t)n * P * D * sizeof(float));
    }
    if (!x || !h || !qkv || !mlp || !probs || !out->features || (n_attn && (!out->cls_attn || !out->cls_attn_heads)) ||
        (want_pm && (!out->pm_attn || !out->pm_keys))) {
        rc = hired_errf(err, HIRED_ENOMEM, "vision: out of memory for %d partitions", n);
        goto done;
    }
    out->n = n;
    out->n_patches = P;
    out->d = D;
    out->n_heads = H;
    out->n_attn_layers = n_attn;

    /* embeddings: patches (conv without bias) into rows 1..P, class token into row 0, + positions */
    for (int b = 0; b < n; b++) {
        float *xb = x + (size_t)b * T * D;
        k_patch_embed_args pe = {.c = 3, .h = S, .w = S, .p = p, .d = D, .img = pixels + (size_t)b * 3 * S * S,
                                 .weight = v->patch_w.w, .w_dtype = v->patch_w.dtype, .y = xb + D};
        k_patch_embed_cpu(&pe);
        memcpy(xb, v->class_emb, (size_t)D * sizeof(float));
        k_add_args add = {.n = (int64_t)T * D, .a = xb, .b = v->pos_emb, .y = xb};
        k_add_cpu(&add);
    }
    layernorm(x, x, (int)M, D, v->pre_ln_w, v->pre_ln_b, eps); /* hidden_states[0] */
    if (v->feature_hidden == 0) copy_features(v, x, n, out->features);

    for (int l = 0; l <= last; l++) {
        const vis_layer_t *L = &v->layers[l];
        /* a last layer past the feature layer is only needed for its attention */
        const bool full = l < v->feature_hidden || l < last;
        float *q = qkv, *k = qkv + M * D, *vv = qkv + 2 * M * D;
        layernorm(x, h, (int)M, D, L->ln1_w, L->ln1_b, eps);
        if (full) {
            linear(h, (int)M, &L->q, L->q_b, q, false);
        } else { /* only the CLS queries: row 0 of each partition, n rows T·D apart */
            k_matmul_args a = {.m = n, .n = D, .k = D, .x = h, .ldx = T * D, .w = L->q.w, .w_dtype = L->q.dtype,
                               .bias = L->q_b, .y = q};
            k_matmul_cpu(&a);
        }
        linear(h, (int)M, &L->k, L->k_b, k, false);
        if (full) linear(h, (int)M, &L->v, L->v_b, vv, false);
        int slot = attn_slot(opts, l);
        for (int b = 0; b < n; b++) {
            size_t off = (size_t)b * T * D;
            k_attention_args at = {.t_q = full ? T : 1, .t_k = T, .n_head = H, .n_head_kv = H, .head_dim = hd,
                                   .q = full ? q + off : q + (size_t)b * D, .k = k + off, .v = full ? vv + off : k + off, .out = h + off,
                                   .scale = 1.0f / sqrtf((float)hd), .probs_row = 0,
                                   .probs = slot >= 0 ? probs : NULL};
            k_attention_cpu(&at);
            if (slot >= 0) {
                float *heads = out->cls_attn_heads + ((size_t)slot * n + b) * H * T;
                float *sum = out->cls_attn + ((size_t)slot * n + b) * P;
                memcpy(heads, probs, (size_t)H * T * sizeof(float));
                for (int j = 0; j < P; j++) {
                    float s = 0;
                    for (int hh = 0; hh < H; hh++) s += probs[(size_t)hh * T + 1 + j];
                    sum[j] = s;
                }
            }
        }
        if (want_pm && l == opts->pm_layer && prumerge_inputs(v, full ? q : NULL, q, k, n, out)) {
            rc = hired_errf(err, HIRED_ENOMEM, "vision: out of memory");
            goto done;
        }
        if (!full) continue;
        linear(h, (int)M, &L->o, L->o_b, x, true); /* x += attn · Woᵀ + bo */
        layernorm(x, h, (int)M, D, L->ln2_w, L->ln2_b, eps);
        linear(h, (int)M, &L->fc1, L->fc1_b, mlp, false);
        k_act_args act = {.n = (int64_t)M * I, .x = mlp, .y = mlp};
        if (v->cfg.act == HF_ACT_QUICK_GELU)
            k_quick_gelu_cpu(&act);
        else
            k_gelu_erf_cpu(&act);
        linear(mlp, (int)M, &L->fc2, L->fc2_b, x, true); /* x += mlp · W2ᵀ + b2 */
        if (l + 1 == v->feature_hidden) copy_features(v, x, n, out->features); /* hidden_states[l+1] */
    }
done:
    mem_free_aligned(x);
    mem_free_aligned(h);
    mem_free_aligned(qkv);
    mem_free_aligned(mlp);
    mem_free_aligned(probs);
    if (rc) vision_out_free(out);
    return rc;
}
