/* vision.c — the CLIP vision tower (see vision.h): weights from a LLaVA checkpoint or random,
 * placed on a device, and the batched forward pass over all partitions of one image, every step
 * an op through the caller's context.
 *
 * Layout: activations are row-major [n·T, D] with T = 1 + patches (CLS first), so every linear
 * layer is one GEMM over all partitions; attention runs per partition. Block l maps
 * hidden_states[l] to hidden_states[l+1]; hidden_states[0] is the pre_layrnorm output.
 * Arena use per encode (vision_arena_bytes mirrors it): the outputs first (they outlive the
 * call), then the pixels and the activations, released before returning. */
#include "vision.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "act.h"
#include "add.h"
#include "attention.h"
#include "embed.h"
#include "err.h"
#include "gather.h"
#include "log.h"
#include "matmul.h"
#include "mem.h"
#include "norm.h"
#include "registry.h"
#include "weights.h"

// ---- weights -------------------------------------------------------------------------------

typedef struct {
    k_weight_t ln1_w, ln1_b, ln2_w, ln2_b; /* [D] float32 */
    k_weight_t q, k, v, o;                 /* [D, D] */
    k_weight_t q_b, k_b, v_b, o_b;         /* [D] float32 */
    k_weight_t fc1, fc2;                   /* [I, D], [D, I] */
    k_weight_t fc1_b, fc2_b;               /* [I], [D] float32 */
} vis_layer_t;

struct vision {
    hf_vision_config_t cfg;
    k_device_t *dev;     /* borrowed */
    int grid;            /* patches per side, image_size / patch_size */
    int n_patches;       /* grid² */
    int n_tokens;        /* n_patches + 1 */
    int feature_hidden;  /* index into hidden_states of the feature layer */
    int n_layers;        /* blocks loaded (run fully up to feature_hidden, attention-only after) */
    k_weight_t patch_w;  /* [D, 3·p·p] */
    k_weight_t class_emb; /* [D] float32 */
    k_weight_t pos_emb;  /* [T, D] float32 */
    k_weight_t pre_ln_w, pre_ln_b; /* [D] float32 */
    vis_layer_t *layers;
};

#define VIS_PREFIX "vision_tower.vision_model."

/* The layer's weights in one list (for freeing and for the device check). */
static void layer_weights(vis_layer_t *L, k_weight_t *out[16]) {
    k_weight_t *all[16] = {&L->ln1_w, &L->ln1_b, &L->ln2_w, &L->ln2_b, &L->q,   &L->k,     &L->v,    &L->o,
                           &L->q_b,   &L->k_b,   &L->v_b,   &L->o_b,   &L->fc1, &L->fc2,   &L->fc1_b, &L->fc2_b};
    memcpy(out, all, sizeof all);
}

void vision_destroy(vision_t **pv) {
    if (!pv || !*pv) return;
    vision_t *v = *pv;
    for (int l = 0; v->layers && l < v->n_layers; l++) {
        k_weight_t *ws[16];
        layer_weights(&v->layers[l], ws);
        for (int i = 0; i < 16; i++) k_weight_free(v->dev, ws[i]);
    }
    mem_free(v->layers);
    k_weight_t *top[] = {&v->patch_w, &v->class_emb, &v->pos_emb, &v->pre_ln_w, &v->pre_ln_b};
    for (size_t i = 0; i < ARRAY_LEN(top); i++) k_weight_free(v->dev, top[i]);
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
static vision_t *vision_alloc(const hf_vision_config_t *vc, int feature_layer, int max_attn_layer, k_device_t *dev,
                              char *err) {
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
    v->dev = dev;
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

/* Whether the device runs the tower's GEMMs with these weights (asked once, at load). */
static int check_device(const vision_t *v, char *err) {
    const k_weight_t *w = &v->patch_w;
    k_matmul_args probe = {.m = 1, .n = 1, .k = 1, .x = w, .w = w, .w_dtype = w->dtype, .y = (void *)w};
    if (!k_supports(k_device_backend(v->dev), K_OP_MATMUL, &probe))
        return hired_errf(err, HIRED_EUNSUPPORTED, "vision tower: the %s device does not run %s weights",
                          k_device_name(v->dev), tensor_dtype_name(w->dtype));
    return HIRED_OK;
}

vision_t *vision_load(const st_model_t *st, const hf_config_t *cfg, k_device_t *dev, int max_attn_layer, char *err) {
    const hf_vision_config_t *vc = &cfg->vision;
    vision_t *v = vision_alloc(vc, cfg->feature_layer, max_attn_layer, dev, err);
    if (!v) return NULL;
    const int64_t D = vc->hidden, I = vc->intermediate, p = vc->patch_size;
    char name[256];
    /* the conv weight [D, 3, p, p] is, row-major, the matrix [D, 3·p·p] */
    int rc = weights_matrix(st, dev, VIS_PREFIX "embeddings.patch_embedding.weight", 4, (const int64_t[]){D, 3, p, p},
                            &v->patch_w, err);
    if (!rc) rc = weights_f32(st, dev, VIS_PREFIX "embeddings.class_embedding", 1, &D, &v->class_emb, err);
    if (!rc)
        rc = weights_f32(st, dev, VIS_PREFIX "embeddings.position_embedding.weight", 2,
                         (const int64_t[]){v->n_tokens, D}, &v->pos_emb, err);
    if (!rc) rc = weights_f32(st, dev, VIS_PREFIX "pre_layrnorm.weight", 1, &D, &v->pre_ln_w, err);
    if (!rc) rc = weights_f32(st, dev, VIS_PREFIX "pre_layrnorm.bias", 1, &D, &v->pre_ln_b, err);
    for (int l = 0; !rc && l < v->n_layers; l++) {
        vis_layer_t *L = &v->layers[l];
        struct {
            const char *suffix;
            k_weight_t *dst;
            int64_t rows, cols; /* cols 0: a float32 vector of rows */
        } ts[] = {
            {"layer_norm1.weight", &L->ln1_w, D, 0},     {"layer_norm1.bias", &L->ln1_b, D, 0},
            {"layer_norm2.weight", &L->ln2_w, D, 0},     {"layer_norm2.bias", &L->ln2_b, D, 0},
            {"self_attn.q_proj.bias", &L->q_b, D, 0},    {"self_attn.k_proj.bias", &L->k_b, D, 0},
            {"self_attn.v_proj.bias", &L->v_b, D, 0},    {"self_attn.out_proj.bias", &L->o_b, D, 0},
            {"mlp.fc1.bias", &L->fc1_b, I, 0},           {"mlp.fc2.bias", &L->fc2_b, D, 0},
            {"self_attn.q_proj.weight", &L->q, D, D},    {"self_attn.k_proj.weight", &L->k, D, D},
            {"self_attn.v_proj.weight", &L->v, D, D},    {"self_attn.out_proj.weight", &L->o, D, D},
            {"mlp.fc1.weight", &L->fc1, I, D},           {"mlp.fc2.weight", &L->fc2, D, I},
        };
        for (size_t i = 0; !rc && i < ARRAY_LEN(ts); i++) {
            snprintf(name, sizeof name, VIS_PREFIX "encoder.layers.%d.%s", l, ts[i].suffix);
            const int64_t shape[2] = {ts[i].rows, ts[i].cols};
            rc = ts[i].cols ? weights_matrix(st, dev, name, 2, shape, ts[i].dst, err)
                            : weights_f32(st, dev, name, 1, shape, ts[i].dst, err);
        }
    }
    if (!rc) rc = check_device(v, err);
    if (rc) {
        vision_destroy(&v);
        return NULL;
    }
    log_debug("vision tower: %d blocks loaded (feature layer = hidden_states[%d]), width %d, %d heads, on %s", v->n_layers,
              v->feature_hidden, (int)D, vc->heads, k_device_name(dev));
    return v;
}

vision_t *vision_new_random(const hf_vision_config_t *vc, int feature_layer, k_device_t *dev, tensor_dtype_t wdt,
                            uint64_t seed, char *err) {
    vision_t *v = vision_alloc(vc, feature_layer, -1, dev, err);
    if (!v) return NULL;
    const int64_t D = vc->hidden, I = vc->intermediate, p = vc->patch_size;
    uint64_t s = seed;
    int rc = weights_random(dev, wdt, D, 3 * p * p, s += 11, 0, 0.05f, &v->patch_w, err);
    if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, D, 1, s += 11, 0, 0.5f, &v->class_emb, err);
    if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, v->n_tokens, D, s += 11, 0, 0.5f, &v->pos_emb, err);
    if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, D, 1, s += 11, 1, 0.1f, &v->pre_ln_w, err);
    if (!rc) rc = weights_random(dev, TENSOR_DTYPE_F32, D, 1, s += 11, 0, 0.1f, &v->pre_ln_b, err);
    for (int l = 0; !rc && l < v->n_layers; l++) {
        vis_layer_t *L = &v->layers[l];
        struct {
            k_weight_t *dst;
            int64_t rows, cols;
            float base, scale;
        } ts[] = {
            {&L->q, D, D, 0, 0.05f},      {&L->k, D, D, 0, 0.05f},      {&L->v, D, D, 0, 0.05f},
            {&L->o, D, D, 0, 0.05f},      {&L->fc1, I, D, 0, 0.05f},    {&L->fc2, D, I, 0, 0.05f},
            {&L->ln1_w, D, 0, 1, 0.1f},   {&L->ln1_b, D, 0, 0, 0.1f},   {&L->ln2_w, D, 0, 1, 0.1f},
            {&L->ln2_b, D, 0, 0, 0.1f},   {&L->q_b, D, 0, 0, 0.1f},     {&L->k_b, D, 0, 0, 0.1f},
            {&L->v_b, D, 0, 0, 0.1f},     {&L->o_b, D, 0, 0, 0.1f},     {&L->fc1_b, I, 0, 0, 0.1f},
            {&L->fc2_b, D, 0, 0, 0.1f},
        };
        for (size_t i = 0; !rc && i < ARRAY_LEN(ts); i++)
            rc = weights_random(dev, ts[i].cols ? wdt : TENSOR_DTYPE_F32, ts[i].rows, ts[i].cols ? ts[i].cols : 1,
                                s += 11, ts[i].base, ts[i].scale, ts[i].dst, err);
    }
    if (!rc) rc = check_device(v, err);
    if (rc) vision_destroy(&v);
    return v;
}

int vision_feature_hidden_index(const vision_t *v) { return v->feature_hidden; }

// ---- what an encode takes --------------------------------------------------------------------

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

/* The buffers of one encode, in the order they are taken from the arena. */
typedef struct {
    size_t features, cls_attn, cls_heads, pm_attn, pm_keys;  /* outputs (kept) */
    size_t pixels, x, h, qkv, mlp, pm_row;                    /* released at the end */
} vis_sizes_t;

static size_t fbytes(size_t n) { return n * sizeof(float); }

static vis_sizes_t sizes_of(const vision_t *v, int n, const vision_opts_t *opts) {
    const size_t D = (size_t)v->cfg.hidden, I = (size_t)v->cfg.intermediate, H = (size_t)v->cfg.heads;
    const size_t T = (size_t)v->n_tokens, P = (size_t)v->n_patches, S = (size_t)v->cfg.image_size, M = (size_t)n * T;
    const size_t n_attn = opts ? (size_t)opts->n_attn_layers : 0;
    const bool pm = opts && opts->want_pm;
    return (vis_sizes_t){.features = fbytes(n * P * D), .cls_attn = fbytes(n_attn * n * P),
                         .cls_heads = fbytes(n_attn * n * H * T), .pm_attn = pm ? fbytes(n * P) : 0,
                         .pm_keys = pm ? fbytes(n * P * D) : 0, .pixels = fbytes((size_t)n * 3 * S * S),
                         .x = fbytes(M * D), .h = fbytes(M * D), .qkv = fbytes(3 * M * D), .mlp = fbytes(M * I),
                         .pm_row = pm ? fbytes(T) : 0};
}

/* The largest workspace any op of the encode takes on ctx (they run one at a time). */
static size_t max_workspace(const vision_t *v, const k_ctx_t *ctx, int n) {
    const int D = v->cfg.hidden, I = v->cfg.intermediate, T = v->n_tokens, M = n * T, hd = D / v->cfg.heads;
    const k_weight_t *w = &v->patch_w;
    const void *any = w; /* the sizes, not the pointers, decide the workspace */
    k_patch_embed_args pe = {.c = 3, .h = v->cfg.image_size, .w = v->cfg.image_size, .p = v->cfg.patch_size, .d = D,
                             .img = any, .weight = any, .w_dtype = w->dtype, .y = (void *)any};
    k_matmul_args mm[] = {
        {.m = M, .n = D, .k = D, .x = any, .w = any, .w_dtype = w->dtype, .y = (void *)any},
        {.m = M, .n = I, .k = D, .x = any, .w = any, .w_dtype = w->dtype, .y = (void *)any},
        {.m = M, .n = D, .k = I, .x = any, .w = any, .w_dtype = w->dtype, .y = (void *)any},
        {.m = n, .n = D, .k = D, .x = any, .w = any, .w_dtype = w->dtype, .y = (void *)any},
    };
    k_attention_args at = {.t_q = T, .t_k = T, .n_head = v->cfg.heads, .n_head_kv = v->cfg.heads, .head_dim = hd,
                           .q = any, .k = any, .v = any, .out = (void *)any, .scale = 1.0f};
    size_t ws = k_workspace(ctx, K_OP_PATCH_EMBED, &pe);
    for (size_t i = 0; i < ARRAY_LEN(mm); i++) {
        size_t b = k_workspace(ctx, K_OP_MATMUL, &mm[i]);
        if (b > ws) ws = b;
    }
    size_t b = k_workspace(ctx, K_OP_ATTENTION, &at);
    return b > ws ? b : ws;
}

/* Arena bytes of an allocation of n (the arena hands out multiples of 64). */
static size_t arena_round(size_t n) { return (n ? n + 63 : 64) / 64 * 64; }

size_t vision_arena_bytes(const vision_t *v, const k_ctx_t *ctx, int n, const vision_opts_t *opts) {
    vis_sizes_t s = sizes_of(v, n, opts);
    const size_t parts[] = {s.features, s.cls_attn, s.cls_heads, s.pm_attn, s.pm_keys, s.pixels,
                            s.x,        s.h,        s.qkv,       s.mlp,     s.pm_row};
    size_t total = 0;
    for (size_t i = 0; i < ARRAY_LEN(parts); i++) total += arena_round(parts[i]);
    return total + arena_round(max_workspace(v, ctx, n));
}

// ---- forward --------------------------------------------------------------------------------

static int linear(k_ctx_t *ctx, const float *x, int m, int ldx, const k_weight_t *w, const k_weight_t *bias, float *y,
                  bool accumulate) {
    k_matmul_args a = {.m = m, .n = (int)w->rows, .k = (int)w->cols, .x = x, .ldx = ldx, .w = w->data,
                       .w_dtype = w->dtype, .bias = weights_f32_data(bias), .y = y, .accumulate = accumulate};
    return k_matmul(ctx, &a);
}

static int layernorm(k_ctx_t *ctx, const float *x, float *y, int m, int d, const k_weight_t *g, const k_weight_t *b,
                     float eps) {
    k_layernorm_args a = {.m = m, .d = d, .x = x, .y = y, .gamma = weights_f32_data(g), .beta = weights_f32_data(b),
                          .eps = eps};
    return k_layernorm(ctx, &a);
}

/* dst[b] = src rows off .. off+rows−1 of partition b (partitions `stride` floats apart), for n
 * partitions: the feature map without its CLS row, or a layer's keys. */
static int copy_parts(k_ctx_t *ctx, const float *src, size_t off, int stride, int n, int row_floats, float *dst) {
    k_gather_args g = {.n = n, .d = row_floats, .x = src + off, .ldx = stride, .y = dst};
    return k_gather(ctx, &g);
}

/* The embeddings of every partition into x [n·T, D]: patches (conv without bias) into rows
 * 1..P, the class token into row 0, then + position embeddings. */
static int embed(const vision_t *v, k_ctx_t *ctx, const float *px, int n, float *x) {
    const int D = v->cfg.hidden, T = v->n_tokens, S = v->cfg.image_size;
    int rc = HIRED_OK;
    for (int b = 0; !rc && b < n; b++) {
        float *xb = x + (size_t)b * T * D;
        k_patch_embed_args pe = {.c = 3, .h = S, .w = S, .p = v->cfg.patch_size, .d = D,
                                 .img = px + (size_t)b * 3 * S * S, .weight = v->patch_w.data,
                                 .w_dtype = v->patch_w.dtype, .y = xb + D};
        k_gather_args cls = {.n = 1, .d = D, .x = v->class_emb.data, .y = xb};
        k_add_args add = {.n = (int64_t)T * D, .a = xb, .b = v->pos_emb.data, .y = xb};
        rc = k_patch_embed(ctx, &pe);
        if (!rc) rc = k_gather(ctx, &cls);
        if (!rc) rc = k_add(ctx, &add);
    }
    return rc;
}

/* The CLS query's probabilities of partition b at output slot `slot`: per head into
 * cls_attn_heads, summed over heads (patch columns) into cls_attn. q: the CLS query row. */
static int cls_rows(const vision_t *v, k_ctx_t *ctx, const float *q, const float *k, int n, int b, int slot,
                    vision_out_t *out) {
    const int H = v->cfg.heads, T = v->n_tokens, P = v->n_patches, hd = v->cfg.hidden / H;
    float *heads = out->cls_attn_heads + ((size_t)slot * n + b) * H * T; /* [H, T] */
    k_attn_row_args ar = {.t_k = T, .n_head = H, .n_head_kv = H, .head_dim = hd, .q = q, .k = k,
                          .scale = 1.0f / sqrtf((float)hd), .probs = heads};
    k_sum_rows_args sr = {.m = H, .n = P, .x = heads + 1, .ldx = T, .y = out->cls_attn + ((size_t)slot * n + b) * P};
    int rc = k_attn_row(ctx, &ar);
    return rc ? rc : k_sum_rows(ctx, &sr);
}

/* PruMerge's attention of partition b (one head over the full width, scale 1/√D, softmax over
 * all T keys, CLS query), patch columns into pm_attn. row: arena scratch [T]. */
static int pm_row(const vision_t *v, k_ctx_t *ctx, const float *q, const float *k, int b, float *row, vision_out_t *out) {
    const int D = v->cfg.hidden, T = v->n_tokens, P = v->n_patches;
    k_attn_row_args ar = {.t_k = T, .n_head = 1, .n_head_kv = 1, .head_dim = D, .q = q, .k = k,
                          .scale = (float)(1.0 / sqrt((double)D)), .probs = row};
    k_gather_args g = {.n = 1, .d = P, .x = row + 1, .y = out->pm_attn + (size_t)b * P};
    int rc = k_attn_row(ctx, &ar);
    return rc ? rc : k_gather(ctx, &g);
}

static int check_opts(const vision_t *v, int n, const vision_opts_t *opts, char *err) {
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
    return HIRED_OK;
}

/* The blocks 0..last on x [n·T, D] with scratch h, qkv, mlp and pm (PruMerge row). */
static int blocks(const vision_t *v, k_ctx_t *ctx, int n, const vision_opts_t *opts, float *x, float *h, float *qkv,
                  float *mlp, float *pm, vision_out_t *out) {
    const int D = v->cfg.hidden, I = v->cfg.intermediate, H = v->cfg.heads, T = v->n_tokens, P = v->n_patches;
    const int hd = D / H, last = last_layer_needed(v, opts), M = n * T;
    const float eps = v->cfg.eps;
    int rc = HIRED_OK;
    for (int l = 0; !rc && l <= last; l++) {
        const vis_layer_t *L = &v->layers[l];
        /* a last layer past the feature layer is only needed for its attention */
        const bool full = l < v->feature_hidden || l < last;
        float *q = qkv, *k = qkv + (size_t)M * D, *vv = qkv + 2 * (size_t)M * D;
        /* q rows: every token, or only the CLS queries (row 0 of each partition, T·D apart) */
        const size_t q_step = full ? (size_t)T * D : (size_t)D;
        rc = layernorm(ctx, x, h, M, D, &L->ln1_w, &L->ln1_b, eps);
        if (!rc) rc = linear(ctx, h, full ? M : n, full ? 0 : T * D, &L->q, &L->q_b, q, false);
        if (!rc) rc = linear(ctx, h, M, 0, &L->k, &L->k_b, k, false);
        if (!rc && full) rc = linear(ctx, h, M, 0, &L->v, &L->v_b, vv, false);
        const int slot = attn_slot(opts, l);
        const bool pm_here = opts && opts->want_pm && l == opts->pm_layer;
        for (int b = 0; !rc && b < n; b++) {
            const size_t off = (size_t)b * T * D;
            if (full) {
                k_attention_args at = {.t_q = T, .t_k = T, .n_head = H, .n_head_kv = H, .head_dim = hd, .q = q + off,
                                       .k = k + off, .v = vv + off, .out = h + off, .scale = 1.0f / sqrtf((float)hd)};
                rc = k_attention(ctx, &at);
            }
            if (!rc && slot >= 0) rc = cls_rows(v, ctx, q + b * q_step, k + off, n, b, slot, out);
            if (!rc && pm_here) rc = pm_row(v, ctx, q + b * q_step, k + off, b, pm, out);
        }
        if (!rc && pm_here) rc = copy_parts(ctx, k, (size_t)D, T * D, n, P * D, out->pm_keys);
        if (rc || !full) continue;
        rc = linear(ctx, h, M, 0, &L->o, &L->o_b, x, true); /* x += attn · Woᵀ + bo */
        if (!rc) rc = layernorm(ctx, x, h, M, D, &L->ln2_w, &L->ln2_b, eps);
        if (!rc) rc = linear(ctx, h, M, 0, &L->fc1, &L->fc1_b, mlp, false);
        k_act_args act = {.n = (int64_t)M * I, .x = mlp, .y = mlp};
        if (!rc) rc = v->cfg.act == HF_ACT_QUICK_GELU ? k_quick_gelu(ctx, &act) : k_gelu_erf(ctx, &act);
        if (!rc) rc = linear(ctx, mlp, M, 0, &L->fc2, &L->fc2_b, x, true); /* x += mlp · W2ᵀ + b2 */
        if (!rc && l + 1 == v->feature_hidden) /* hidden_states[l+1] */
            rc = copy_parts(ctx, x, (size_t)D, T * D, n, P * D, out->features);
    }
    return rc;
}

int vision_encode(const vision_t *v, k_ctx_t *ctx, const float *pixels, int n, const vision_opts_t *opts,
                  vision_out_t *out, char *err) {
    memset(out, 0, sizeof *out);
    int rc = check_opts(v, n, opts, err);
    if (rc) return rc;
    const int D = v->cfg.hidden, T = v->n_tokens, P = v->n_patches, M = n * T;
    const vis_sizes_t s = sizes_of(v, n, opts);
    /* outputs first: they stay in the arena after the call */
    out->features = k_ctx_alloc(ctx, s.features);
    out->cls_attn = s.cls_attn ? k_ctx_alloc(ctx, s.cls_attn) : NULL;
    out->cls_attn_heads = s.cls_heads ? k_ctx_alloc(ctx, s.cls_heads) : NULL;
    out->pm_attn = s.pm_attn ? k_ctx_alloc(ctx, s.pm_attn) : NULL;
    out->pm_keys = s.pm_keys ? k_ctx_alloc(ctx, s.pm_keys) : NULL;
    const size_t mark = k_ctx_mark(ctx);
    float *px = k_ctx_alloc(ctx, s.pixels);  /* [n, 3, S, S] */
    float *x = k_ctx_alloc(ctx, s.x);        /* residual stream [n·T, D] */
    float *h = k_ctx_alloc(ctx, s.h);        /* normed input / attention output [n·T, D] */
    float *qkv = k_ctx_alloc(ctx, s.qkv);    /* q, k, v, each [n·T, D] */
    float *mlp = k_ctx_alloc(ctx, s.mlp);    /* [n·T, I] */
    float *pm = s.pm_row ? k_ctx_alloc(ctx, s.pm_row) : NULL; /* [T] */
    if (!out->features || (s.cls_attn && (!out->cls_attn || !out->cls_attn_heads)) ||
        (s.pm_attn && (!out->pm_attn || !out->pm_keys || !pm)) || !px || !x || !h || !qkv || !mlp) {
        k_ctx_release(ctx, mark);
        return hired_errf(err, HIRED_ENOMEM, "vision: out of memory for %d partitions", n);
    }
    out->n = n;
    out->n_patches = P;
    out->d = D;
    out->n_heads = v->cfg.heads;
    out->n_attn_layers = opts ? opts->n_attn_layers : 0;

    rc = k_ctx_upload(ctx, px, pixels, s.pixels);
    if (!rc) rc = embed(v, ctx, px, n, x);
    if (!rc) rc = layernorm(ctx, x, x, M, D, &v->pre_ln_w, &v->pre_ln_b, v->cfg.eps); /* hidden_states[0] */
    if (!rc && v->feature_hidden == 0) rc = copy_parts(ctx, x, (size_t)D, T * D, n, P * D, out->features);
    if (!rc) rc = blocks(v, ctx, n, opts, x, h, qkv, mlp, pm, out);
    k_ctx_release(ctx, mark);
    return rc ? k_ctx_report(ctx, rc, err, "vision") : HIRED_OK;
}
