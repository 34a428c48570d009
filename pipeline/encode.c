/* encode.c — the vision half of the pipeline (see encode.h): model loading and the one encode
 * path. Transfers are explicit: pixels go up inside vision_encode; what the host-side selection
 * reads comes down here; the kept rows are gathered on the device and come down once. */
#include "encode.h"

#include <string.h>

#include "clock.h"
#include "err.h"
#include "gather.h"
#include "image.h"
#include "log.h"
#include "mem.h"
#include "st.h"
#include "vision.h"

struct enc_model {
    hf_config_t cfg;
    hf_preproc_t pp;
    st_model_t *st;
    k_device_t *dev;               /* borrowed */
    vision_t *vision;
    int alloc_layer, select_layer; /* HiRED: CLS attention layers (0 and the feature block) */
    int pm_layer;                  /* PruMerge: the last encoder layer, or -1 when not loaded */
};

void enc_params_default(enc_params_t *p) {
    memset(p, 0, sizeof *p);
    p->sel = (sel_opts_t){.strategy = SEL_HIRED, .budget = 0.2, .alpha = 0.5, .split = SEL_SPLIT_REFERENCE};
    p->compat = PREP_COMPAT_HF;
}

enc_model_t *enc_model_load(const char *dir, k_device_t *dev, char *err) {
    enc_model_t *m = mem_calloc(1, sizeof *m);
    if (!m) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    m->dev = dev;
    int rc = hf_config_load(dir, &m->cfg, err);
    if (!rc) rc = hf_preproc_load(dir, &m->pp, err);
    if (!rc) rc = st_model_open_rc(dir, &m->st, err);
    if (!rc) {
        /* every layer, so PruMerge's last-layer attention is available; else up to the feature layer */
        m->pm_layer = m->cfg.vision.layers - 1;
        if (!(m->vision = vision_load(m->st, &m->cfg, dev, m->pm_layer, err))) {
            m->pm_layer = -1;
            if (!(m->vision = vision_load(m->st, &m->cfg, dev, -1, err))) rc = HIRED_ENOTFOUND;
        }
    }
    if (rc) {
        enc_model_destroy(&m);
        return NULL;
    }
    m->alloc_layer = 0;
    m->select_layer = vision_feature_hidden_index(m->vision) - 1;
    return m;
}

void enc_model_destroy(enc_model_t **pm) {
    if (!pm || !*pm) return;
    vision_destroy(&(*pm)->vision);
    st_model_close(&(*pm)->st);
    mem_free(*pm);
    *pm = NULL;
}

const hf_config_t *enc_model_config(const enc_model_t *m) { return &m->cfg; }
bool enc_model_has_prumerge(const enc_model_t *m) { return m->pm_layer >= 0; }

void enc_attn_free(enc_attn_t *a) {
    if (!a) return;
    mem_free(a->alloc);
    memset(a, 0, sizeof *a);
}

// ---- the encode --------------------------------------------------------------------------------

/* Host copies of what the selection reads (every buffer owned). */
typedef struct {
    float *attn;     /* [2, n, P]: HiRED's allocation and selection rows */
    float *pm_attn;  /* [n, P] */
    float *features; /* [n, P, D] (PruMerge) */
    float *pm_keys;  /* [n, P, D] (PruMerge) */
} enc_host_t;

static void host_free(enc_host_t *h) {
    mem_free(h->attn);
    mem_free(h->pm_attn);
    mem_free_aligned(h->features);
    mem_free_aligned(h->pm_keys);
    memset(h, 0, sizeof *h);
}

/* n floats of device memory src into a new host buffer *dst (aligned when `aligned`). */
static int download(k_ctx_t *ctx, const float *src, size_t n, bool aligned, float **dst) {
    *dst = aligned ? mem_alloc_aligned(n * sizeof(float)) : mem_alloc(n * sizeof(float));
    if (!*dst) return HIRED_ENOMEM;
    return k_ctx_download(ctx, *dst, src, n * sizeof(float));
}

/* The vision options the strategy needs. */
static int vision_opts(const enc_model_t *m, sel_strategy_t s, vision_opts_t *vo, char *err) {
    memset(vo, 0, sizeof *vo);
    if (s == SEL_HIRED) {
        vo->n_attn_layers = 2;
        vo->attn_layers[0] = m->alloc_layer;
        vo->attn_layers[1] = m->select_layer;
    } else if (s == SEL_PRUMERGE || s == SEL_PRUMERGE_PLUS) {
        if (m->pm_layer < 0)
            return hired_errf(err, HIRED_EUNSUPPORTED, "strategy %s needs the last vision layer, which the checkpoint lacks",
                              sel_strategy_name(s));
        vo->want_pm = true;
        vo->pm_layer = m->pm_layer;
    }
    return HIRED_OK;
}

/* The kept rows src[0..k) of the device feature map [n·P, D] into a new host block [k, D]. */
static int gather_kept(k_ctx_t *ctx, const float *features, const int32_t *src, int k, int d, float **out) {
    const size_t mark = k_ctx_mark(ctx);
    int32_t *idx = k_ctx_alloc(ctx, (size_t)k * sizeof *idx);      /* [k] */
    float *kept = k_ctx_alloc(ctx, (size_t)k * d * sizeof(float)); /* [k, D] */
    k_gather_args g = {.n = k, .d = d, .x = features, .idx = idx, .y = kept};
    int rc = idx && kept ? k_ctx_upload(ctx, idx, src, (size_t)k * sizeof *idx) : HIRED_ENOMEM;
    if (!rc) rc = k_gather(ctx, &g);
    if (!rc) rc = download(ctx, kept, (size_t)k * d, true, out);
    k_ctx_release(ctx, mark);
    return rc;
}

/* Tower, selection and gather on preprocessed partitions. */
static int encode_prepped(const enc_model_t *m, k_ctx_t *ctx, const prep_out_t *prep, const enc_params_t *p,
                          visual_t *out, enc_stats_t *st, enc_attn_t *attn, char *err) {
    char sub[HIRED_ERR_LEN];
    vision_opts_t vo;
    int rc = vision_opts(m, p->sel.strategy, &vo, err);
    if (rc) return rc;
    const int g = m->cfg.vision.image_size / m->cfg.vision.patch_size, P = g * g, n = prep->n;
    const int D = m->cfg.vision.hidden;
    double t0 = clock_ms();
    k_ctx_reset(ctx);
    /* the tower, then the kept rows and their indices above its outputs */
    size_t need = vision_arena_bytes(m->vision, ctx, n, &vo) + (size_t)n * P * (D + 1) * sizeof(float) + 256;
    if (k_ctx_reserve(ctx, need)) return hired_errf(err, HIRED_ENOMEM, "vision: out of memory for the scratch arena");
    vision_out_t vout;
    enc_host_t h = {0};
    rc = vision_encode(m->vision, ctx, prep->pixels, n, &vo, &vout, sub);
    int drc = HIRED_OK; /* the downloads the host-side selection reads */
    if (!rc && vo.n_attn_layers) drc = download(ctx, vout.cls_attn, (size_t)2 * n * P, false, &h.attn);
    if (!rc && !drc && vo.want_pm) {
        drc = download(ctx, vout.pm_attn, (size_t)n * P, false, &h.pm_attn);
        if (!drc) drc = download(ctx, vout.features, (size_t)n * P * D, true, &h.features);
        if (!drc) drc = download(ctx, vout.pm_keys, (size_t)n * P * D, true, &h.pm_keys);
    }
    if (drc) rc = k_ctx_report(ctx, drc, sub, "downloading the tower's outputs");
    double t1 = clock_ms();
    st->ms_vision = t1 - t0;
    if (rc) {
        host_free(&h);
        return hired_errf(err, rc, "vision: %s", sub);
    }

    sel_input_t in = {.n = n, .rows = prep->rows, .cols = prep->cols, .orig_h = prep->orig_h, .orig_w = prep->orig_w,
                      .image_size = m->cfg.vision.image_size, .grid = g, .d = D, .features = h.features,
                      .pm_attn = h.pm_attn, .pm_keys = h.pm_keys};
    if (h.attn) {
        in.alloc_attn = h.attn;
        in.select_attn = h.attn + (size_t)n * P;
    }
    sel_out_t sel;
    rc = sel_run(k_ctx_host(ctx), &p->sel, &in, &sel, sub);
    if (rc) rc = hired_errf(err, rc, "select: %s", sub);
    else if (sel.k < 1) rc = hired_errf(err, HIRED_ERANGE, "budget %g keeps no visual token of %d", p->sel.budget, n * P);
    if (!rc && !sel.features && (rc = gather_kept(ctx, vout.features, sel.src, sel.k, D, &sel.features)))
        k_ctx_report(ctx, rc, err, "select: gathering the kept tokens");
    st->ms_select = clock_ms() - t1;
    if (!rc) {
        *out = (visual_t){.n = n, .rows = prep->rows, .cols = prep->cols, .grid = g, .orig_h = prep->orig_h,
                          .orig_w = prep->orig_w, .merged = p->sel.strategy == SEL_PRUMERGE ||
                                                             p->sel.strategy == SEL_PRUMERGE_PLUS,
                          .authors = p->compat == PREP_COMPAT_AUTHORS, .k = sel.k, .d = D, .pos = sel.pos,
                          .features = sel.features};
        memcpy(out->per_part, sel.per_part, sizeof out->per_part);
        sel.pos = NULL, sel.features = NULL; /* now the visual's */
        st->visual_total = n * P;
        st->visual_kept = sel.k;
        st->budget_total = sel.budget_total;
        st->budget_base = sel.budget_base;
        st->budget_sub = sel.budget_sub;
        if (attn && h.attn) {
            *attn = (enc_attn_t){.n = n, .patches = P, .layers = {m->alloc_layer, m->select_layer}, .alloc = h.attn,
                                 .select = h.attn + (size_t)n * P};
            h.attn = NULL;
        }
    }
    sel_out_free(&sel);
    host_free(&h);
    return rc;
}

int enc_run(const enc_model_t *m, k_ctx_t *ctx, const uint8_t *bytes, size_t n, const enc_params_t *p, visual_t *out,
            enc_stats_t *st, enc_attn_t *attn, char *err) {
    memset(out, 0, sizeof *out);
    if (attn) memset(attn, 0, sizeof *attn);
    enc_stats_t dummy;
    if (!st) st = &dummy;
    memset(st, 0, sizeof *st);
    char sub[HIRED_ERR_LEN];
    image_t img = {0};
    prep_out_t prep = {0};
    double t0 = clock_ms();
    int rc = image_decode(bytes, n, p->max_pixels, &img, sub);
    double t1 = clock_ms();
    st->ms_decode_image = t1 - t0;
    if (rc) return hired_errf(err, rc, "image: %s", sub);
    rc = prep_for_model_compat(&img, &m->cfg, &m->pp, p->compat, &prep, sub);
    image_free(&img);
    st->ms_preprocess = clock_ms() - t1;
    if (rc) return hired_errf(err, rc, "preprocess: %s", sub);
    rc = encode_prepped(m, ctx, &prep, p, out, st, attn, err);
    prep_free(&prep);
    return rc;
}

int enc_warmup(const enc_model_t *m, k_ctx_t *ctx, char *err) {
    image_t img = {0};
    int rc = image_alloc(&img, 336, 336);
    if (rc) return hired_errf(err, rc, "warm-up: out of memory");
    memset(img.rgb, 128, (size_t)336 * 336 * 3);
    enc_params_t p;
    enc_params_default(&p);
    prep_out_t prep = {0};
    visual_t vis = {0};
    enc_stats_t st;
    rc = prep_for_model(&img, &m->cfg, &m->pp, &prep, err);
    image_free(&img);
    if (!rc) rc = encode_prepped(m, ctx, &prep, &p, &vis, &st, NULL, err);
    visual_free(&vis);
    prep_free(&prep);
    return rc;
}
