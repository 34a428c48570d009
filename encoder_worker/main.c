/* main.c — hired-encoder: the "encode" worker. Loads the vision side of one LLaVA model once
 * (config.json, preprocessor_config.json, the CLIP tower up to the layers the strategies need),
 * connects to the broker's backend (common/worker_conn.h) and serves encode jobs:
 *
 *   image bytes -> decode (image.h) -> anyres / CLIP preprocessing (preprocess.h) -> vision
 *   tower with the CLS-attention layers the strategy needs (vision.h) -> token selection
 *   (select.h) -> ONE RESULT: kept features [K, D] in the wire dtype (f16 by default), the K
 *   (partition, row, col) positions, grid, image size, and `meta` (JSON, below) for the decoder.
 *
 * The pipeline is the same sequence of calls as gen_encode (decoder_worker/generate.c), with the
 * same attention layers (allocation layer 0, selection layer = the feature block, PruMerge's
 * last layer), so a job served here selects exactly the tokens `hired run` selects.
 *
 * meta (UTF-8 JSON, at most WIRE_MAX_META bytes; the decoder's contract, version 1):
 *   {"v":1, "strategy":"hired", "n":5, "rows":2, "cols":2, "grid":24, "orig_w":640,
 *    "orig_h":427, "total":2880, "split":"reference", "budget":0.2, "alpha":0.5,
 *    "budget_total":576, "budget_base":288, "budget_sub":288, "per_part":[288, 72, ...]}
 *   n = partitions (base first), grid = patches per partition side, total = n·grid² tokens
 *   before selection. Positions travel as uint16; the PruMerge summary token's row = col = -1
 *   is sent as 0xFFFF.
 * Per-stage timings in RESULT: `preprocess` (image decode + preprocessing; the protocol has no
 * separate decode stage), `vit`, `select` (all 0 for a cache hit).
 * Result cache (encoder.cache_entries, off by default): a repeated (image bytes, selection)
 * request is answered from the last RESULTs kept in memory (LRU), without decoding or the tower.
 *
 * Bad input (corrupt or truncated image, too many pixels, unsupported format, an unknown
 * strategy or out-of-range budget/alpha, a budget that keeps no token) gets an ERROR reply
 * naming the problem and the worker keeps serving. A backend fault (HIRED_ECUDA) ends the
 * process with status 1 without answering, so the broker re-queues the job (counting an
 * attempt) and systemd restarts the worker. Configuration errors exit 2 (PROC_EXIT_CONFIG, not
 * restarted by the unit), and so does a model directory that is missing or does not load.
 *
 * Threads: encoder.capacity job threads share the read-only model (vision_encode does not
 * modify the tower); the main thread watches signals and pings the systemd watchdog. The keys,
 * command line, connection, job threads and READY/drain life cycle every worker shares are in
 * common/svc.h; this file has the encoder's own keys and the job itself.
 * SIGTERM: STOPPING=1, no new jobs, jobs in progress get up to worker.drain_ms to finish, then
 * DISCONNECT hands whatever is left back to the broker; exit 0.
 * Not here: the pipeline stages themselves (image/preprocess/vision/select), the protocol
 * (worker_conn), the decoder's half (decoder_worker/main.c). */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cfg.h"
#include "err.h"
#include "half.h"
#include "hfconfig.h"
#include "image.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "preprocess.h"
#include "proc.h"
#include "select.h"
#include "st.h"
#include "svc.h"
#include "vision.h"
#include "worker_conn.h"


// ---- configuration ---------------------------------------------------------------------------

typedef struct {
    svc_cfg_t w;    /* the keys every worker has (svc.h) */
    int64_t capacity, max_pixels;
    int wire_dtype; /* index into "f16|bf16|f32" = wire_dtype_t */
    int split;      /* index into "reference|paper" = sel_split_t */
    double spatial;
    int64_t cache_entries;
} enc_cfg_t;

#define O(f) offsetof(enc_cfg_t, f)
static const cfg_entry_t k_own_cfg[] = {
    {"encoder.capacity", CFG_INT, O(capacity), 1, SVC_MAX_THREADS, "1", NULL,
     "jobs encoded at once (one thread each, sharing the weights)"},
    {"encoder.max_pixels", CFG_INT, O(max_pixels), 1, 1000000000, "50000000", NULL,
     "largest image (width x height) accepted; checked from the header before decoding"},
    {"encoder.wire_dtype", CFG_ENUM, O(wire_dtype), 0, 0, "f16", "f16|bf16|f32",
     "element type of the features sent to the decoder"},
    {"encoder.split", CFG_ENUM, O(split), 0, 0, "reference", "reference|paper",
     "HiRED sub-image budget split (jobs cannot choose it: the protocol has no such param)"},
    {"encoder.spatial", CFG_DOUBLE, O(spatial), 0, 1, "0", NULL,
     "strided tokens added to hired selections, as a rate of each partition (0 = off)"},
    {"encoder.cache_entries", CFG_INT, O(cache_entries), 0, 4096, "0", NULL,
     "results kept for repeated (image, selection) requests, least recently used out; 0 = off"},
};
#undef O
#define N_OWN ((int)ARRAY_LEN(k_own_cfg))
#define N_CFG (SVC_CFG_N + N_OWN)

// ---- the loaded model and the worker state ---------------------------------------------------

typedef struct {
    enc_cfg_t cfg;
    char name[WIRE_MAX_MODEL + 1];
    hf_config_t hf;
    hf_preproc_t pp;
    st_model_t *st;
    vision_t *vision;
    int alloc_layer, select_layer; /* HiRED: CLS attention at layer 0 and at the feature block */
    int pm_layer;                  /* PruMerge: the last layer, or -1 when the checkpoint lacks it */
    svc_t svc;                     /* broker connection, job threads, drain (svc.h) */
    struct enc_cache *cache;       /* [cfg.cache_entries], under cache_mu */
    pthread_mutex_t cache_mu;
    uint64_t cache_tick;
    atomic_ullong cache_hits;
    atomic_ullong served, failed;
} enc_t;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int model_load(enc_t *e, char *err) {
    int rc = hf_config_load(e->cfg.w.model_dir, &e->hf, err);
    if (!rc) rc = hf_preproc_load(e->cfg.w.model_dir, &e->pp, err);
    if (!rc) rc = st_model_open_rc(e->cfg.w.model_dir, &e->st, err);
    if (rc) return rc;
    /* every layer, so PruMerge's last-layer attention is available; else up to the feature layer */
    e->pm_layer = e->hf.vision.layers - 1;
    if (!(e->vision = vision_load(e->st, &e->hf, e->pm_layer, err))) {
        e->pm_layer = -1;
        if (!(e->vision = vision_load(e->st, &e->hf, -1, err))) return HIRED_ENOTFOUND;
    }
    e->alloc_layer = 0;
    e->select_layer = vision_feature_hidden_index(e->vision) - 1;
    return HIRED_OK;
}

static void model_free(enc_t *e) {
    vision_destroy(&e->vision);
    st_model_close(&e->st);
}

// ---- one job ---------------------------------------------------------------------------------

/* What a job produced besides the selection: geometry for meta and RESULT. */
typedef struct {
    prep_out_t prep;
    vision_out_t vout;
    sel_out_t sel;
    sel_opts_t opts;
    double ms_prep, ms_vit, ms_select;
} enc_work_t;

static void work_free(enc_work_t *w) {
    sel_out_free(&w->sel);
    vision_out_free(&w->vout);
    prep_free(&w->prep);
}

/* Selection options from the job's params (already checked by the protocol, checked again here
 * so the message names what this worker refuses). */
static int job_opts(const enc_t *e, const wire_params_t *p, sel_opts_t *o, char *err) {
    memset(o, 0, sizeof *o);
    if (sel_strategy_parse(p->strategy, &o->strategy))
        return hired_errf(err, HIRED_EINVAL, "unknown strategy '%.40s' (none, hired, spatial, prumerge, prumerge+)",
                          p->strategy);
    if (!(p->budget > 0 && p->budget <= 1))
        return hired_errf(err, HIRED_ERANGE, "budget %g must be in (0, 1]", p->budget);
    if (!(p->alpha >= 0 && p->alpha <= 1))
        return hired_errf(err, HIRED_ERANGE, "alpha %g must be in [0, 1]", p->alpha);
    o->budget = p->budget;
    o->alpha = p->alpha;
    o->split = (sel_split_t)e->cfg.split;
    o->spatial = o->strategy == SEL_HIRED ? e->cfg.spatial : 0;
    if ((o->strategy == SEL_PRUMERGE || o->strategy == SEL_PRUMERGE_PLUS) && e->pm_layer < 0)
        return hired_errf(err, HIRED_EUNSUPPORTED, "strategy %s needs the last vision layer, which the checkpoint lacks",
                          sel_strategy_name(o->strategy));
    return HIRED_OK;
}

/* decode -> preprocess -> vision -> select. Errors carry the stage in the message. */
static int encode(const enc_t *e, const uint8_t *bytes, size_t n, const sel_opts_t *opts, enc_work_t *w,
                  char *err) {
    char sub[HIRED_ERR_LEN];
    image_t img = {0};
    double t0 = now_ms();
    int rc = image_decode(bytes, n, (size_t)e->cfg.max_pixels, &img, sub);
    if (rc) return hired_errf(err, rc, "image: %s", sub);
    rc = prep_for_model(&img, &e->hf, &e->pp, &w->prep, sub); /* as gen_encode */
    image_free(&img);
    double t1 = now_ms();
    w->ms_prep = t1 - t0;
    if (rc) return hired_errf(err, rc, "preprocess: %s", sub);

    vision_opts_t vo = {0};
    if (opts->strategy == SEL_HIRED) {
        vo.n_attn_layers = 2;
        vo.attn_layers[0] = e->alloc_layer;
        vo.attn_layers[1] = e->select_layer;
    } else if (opts->strategy == SEL_PRUMERGE || opts->strategy == SEL_PRUMERGE_PLUS) {
        vo.want_pm = true;
        vo.pm_layer = e->pm_layer;
    }
    /* the tower is only read: vision_encode keeps all per-call state in its output and scratch */
    rc = vision_encode((vision_t *)e->vision, w->prep.pixels, w->prep.n, &vo, &w->vout, sub);
    double t2 = now_ms();
    w->ms_vit = t2 - t1;
    if (rc) return hired_errf(err, rc, "vision: %s", sub);

    const int P = w->vout.n_patches, g = e->hf.vision.image_size / e->hf.vision.patch_size;
    sel_input_t in = {.n = w->prep.n, .rows = w->prep.rows, .cols = w->prep.cols, .orig_h = w->prep.orig_h,
                      .orig_w = w->prep.orig_w, .image_size = e->hf.vision.image_size, .grid = g,
                      .d = w->vout.d, .features = w->vout.features, .pm_attn = w->vout.pm_attn,
                      .pm_keys = w->vout.pm_keys};
    if (vo.n_attn_layers == 2) {
        in.alloc_attn = w->vout.cls_attn;
        in.select_attn = w->vout.cls_attn + (size_t)w->prep.n * P;
    }
    rc = sel_check(opts, &in, sub);
    if (!rc) rc = sel_run(opts, &in, &w->sel, sub);
    w->ms_select = now_ms() - t2;
    if (rc) return hired_errf(err, rc, "select: %s", sub);
    if (w->sel.k < 1)
        return hired_errf(err, HIRED_ERANGE, "budget %g keeps no visual token of %d", opts->budget, w->prep.n * P);
    if (w->sel.k > WIRE_MAX_KEPT || w->sel.d > WIRE_MAX_DIM)
        return hired_errf(err, HIRED_ERANGE, "%d kept tokens of width %d exceed the protocol's limits", w->sel.k,
                          w->sel.d);
    return HIRED_OK;
}

/* meta JSON (see the file comment) into r. */
static int put_meta(const enc_t *e, const enc_work_t *w, wire_msg_t *r, char *err) {
    json_init();
    cJSON *o = cJSON_CreateObject();
    int per[SEL_MAX_PARTS];
    for (int i = 0; i < w->sel.n && i < SEL_MAX_PARTS; i++) per[i] = w->sel.per_part[i];
    const int g = e->hf.vision.image_size / e->hf.vision.patch_size;
    if (!o || !cJSON_AddNumberToObject(o, "v", 1) ||
        !cJSON_AddStringToObject(o, "strategy", sel_strategy_name(w->opts.strategy)) ||
        !cJSON_AddNumberToObject(o, "n", w->prep.n) || !cJSON_AddNumberToObject(o, "rows", w->prep.rows) ||
        !cJSON_AddNumberToObject(o, "cols", w->prep.cols) || !cJSON_AddNumberToObject(o, "grid", g) ||
        !cJSON_AddNumberToObject(o, "orig_w", w->prep.orig_w) || !cJSON_AddNumberToObject(o, "orig_h", w->prep.orig_h) ||
        !cJSON_AddNumberToObject(o, "total", w->prep.n * g * g) ||
        !cJSON_AddStringToObject(o, "split", w->opts.split == SEL_SPLIT_PAPER ? "paper" : "reference") ||
        !cJSON_AddNumberToObject(o, "budget", w->opts.budget) || !cJSON_AddNumberToObject(o, "alpha", w->opts.alpha) ||
        !cJSON_AddNumberToObject(o, "budget_total", w->sel.budget_total) ||
        !cJSON_AddNumberToObject(o, "budget_base", w->sel.budget_base) ||
        !cJSON_AddNumberToObject(o, "budget_sub", w->sel.budget_sub) ||
        !cJSON_AddItemToObject(o, "per_part", cJSON_CreateIntArray(per, w->sel.n < SEL_MAX_PARTS ? w->sel.n : SEL_MAX_PARTS))) {
        cJSON_Delete(o);
        return hired_errf(err, HIRED_ENOMEM, "out of memory for meta");
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!s) return hired_errf(err, HIRED_ENOMEM, "out of memory for meta");
    size_t len = strlen(s);
    int rc = len > WIRE_MAX_META ? hired_errf(err, HIRED_ERANGE, "meta is %zu bytes", len)
                                 : wire_msg_set_meta(r, s, len);
    cJSON_free(s);
    if (rc && rc != HIRED_ERANGE) rc = hired_errf(err, HIRED_ENOMEM, "out of memory for meta");
    return rc;
}

/* RESULT header and tensor frame from a finished selection. Features that are not finite in the
 * wire dtype (a NaN from the tower, or beyond the f16 range) are refused here with an error
 * naming the job: a decoder would otherwise turn them into an empty or wrong answer. */
static int make_result(const enc_t *e, const char *id, const enc_work_t *w, wire_msg_t *r, zmq_msg_t *t,
                       char *err) {
    const sel_out_t *s = &w->sel;
    wire_msg_init(r, WIRE_RESULT);
    snprintf(r->id, sizeof r->id, "%s", id);
    snprintf(r->fingerprint, sizeof r->fingerprint, "%s", e->svc.fingerprint);
    r->kept = (uint32_t)s->k;
    r->dim = (uint32_t)s->d;
    r->dtype = (wire_dtype_t)e->cfg.wire_dtype;
    r->grid[0] = (uint32_t)w->prep.rows;
    r->grid[1] = (uint32_t)w->prep.cols;
    r->image_size[0] = (uint32_t)w->prep.orig_w;
    r->image_size[1] = (uint32_t)w->prep.orig_h;
    r->timings[WIRE_STAGE_PREPROCESS] = w->ms_prep;
    r->timings[WIRE_STAGE_VIT] = w->ms_vit;
    r->timings[WIRE_STAGE_SELECT] = w->ms_select;
    r->timings_mask = (1u << WIRE_STAGE_PREPROCESS) | (1u << WIRE_STAGE_VIT) | (1u << WIRE_STAGE_SELECT);

    uint16_t *pos = mem_alloc((size_t)s->k * 3 * sizeof *pos); /* [k][3] */
    if (!pos) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; i < s->k; i++) {
        pos[3 * i] = (uint16_t)s->pos[i].part;
        pos[3 * i + 1] = (uint16_t)s->pos[i].row; /* -1 (summary token) -> 0xFFFF */
        pos[3 * i + 2] = (uint16_t)s->pos[i].col;
    }
    int rc = wire_msg_set_positions(r, pos, (uint32_t)s->k);
    mem_free(pos);
    if (rc) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    if ((rc = put_meta(e, w, r, err))) return rc;

    size_t n = (size_t)s->k * s->d, es = wire_dtype_size(r->dtype);
    if (zmq_msg_init_size(t, n * es)) return hired_errf(err, HIRED_ENOMEM, "out of memory for %zu bytes", n * es);
    void *dst = zmq_msg_data(t); /* [k, d] of r->dtype */
    if (r->dtype == WIRE_DTYPE_F32) {
        memcpy(dst, s->features, n * sizeof(float));
    } else {
        uint16_t *h = dst; /* ZeroMQ buffers may be unaligned for floats, never for uint16 writes via memcpy */
        for (size_t i = 0; i < n; i++) {
            uint16_t v = r->dtype == WIRE_DTYPE_F16 ? f32_to_half(s->features[i]) : f32_to_bf16(s->features[i]);
            memcpy(h + i, &v, sizeof v);
        }
    }
    size_t bad = wire_count_nonfinite(dst, n, r->dtype);
    if (bad)
        return hired_errf(err, HIRED_ERANGE, "%zu of %zu selected feature values are not finite in %s (NaN or Inf "
                          "from the vision tower)", bad, n, wire_dtype_name(r->dtype));
    return HIRED_OK;
}

/* A backend fault leaves the device in an unknown state: end the process without answering, so
 * the broker re-queues the job on another worker (counting an attempt) and systemd restarts us. */
static void fatal_backend(const char *id, const char *msg) {
    log_error("hired-encoder: backend failure in job %s: %s; exiting", id, msg);
    _exit(1);
}

// ---- result cache ----------------------------------------------------------------------------

/* Many questions about one image are common: with encoder.cache_entries > 0 a finished RESULT
 * (header without id and timings, tensor frame shared by reference) is kept under a key of the
 * image bytes and the selection options, and a repeated request is answered without decoding or
 * running the tower. The image is identified by its length and two independent 64-bit hashes
 * (FNV-1a and a multiply-xorshift mix), not by its bytes. */
typedef struct enc_cache {
    bool used;
    uint64_t h1, h2, tick;
    size_t len;
    sel_opts_t opts;
    wire_msg_t r;  /* RESULT fields; id and timings unset */
    zmq_msg_t t;   /* tensor [kept, dim] */
} enc_cache_t;

static void image_hash(const uint8_t *b, size_t n, uint64_t *h1, uint64_t *h2) {
    uint64_t a = 0xcbf29ce484222325ull, c = 0x9e3779b97f4a7c15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        a = (a ^ b[i]) * 0x100000001b3ull;
        c = (c ^ b[i]) * 0xff51afd7ed558ccdull;
        c ^= c >> 29;
    }
    *h1 = a;
    *h2 = c;
}

static bool same_opts(const sel_opts_t *a, const sel_opts_t *b) {
    return a->strategy == b->strategy && a->budget == b->budget && a->alpha == b->alpha && a->split == b->split &&
           a->spatial == b->spatial;
}

/* On a hit fills r (a copy with this job's id) and t (a shared copy of the tensor): true. */
static bool cache_get(enc_t *e, uint64_t h1, uint64_t h2, size_t len, const sel_opts_t *o, const char *id,
                      wire_msg_t *r, zmq_msg_t *t) {
    bool hit = false;
    pthread_mutex_lock(&e->cache_mu);
    for (int i = 0; i < e->cfg.cache_entries && !hit; i++) {
        enc_cache_t *c = &e->cache[i];
        if (!c->used || c->h1 != h1 || c->h2 != h2 || c->len != len || !same_opts(&c->opts, o)) continue;
        wire_msg_init(r, WIRE_RESULT);
        if (wire_msg_copy(r, &c->r) == 0 && zmq_msg_copy(t, &c->t) == 0) {
            snprintf(r->id, sizeof r->id, "%s", id);
            c->tick = ++e->cache_tick;
            hit = true;
        } else {
            wire_msg_clear(r);
        }
    }
    pthread_mutex_unlock(&e->cache_mu);
    return hit;
}

/* Keeps a copy of r (without id and timings) and a shared reference to t, evicting the least
 * recently used entry. Failures only mean no caching. */
static void cache_put(enc_t *e, uint64_t h1, uint64_t h2, size_t len, const sel_opts_t *o, const wire_msg_t *r,
                      zmq_msg_t *t) {
    pthread_mutex_lock(&e->cache_mu);
    enc_cache_t *v = NULL;
    for (int i = 0; i < e->cfg.cache_entries; i++) {
        enc_cache_t *c = &e->cache[i];
        if (!c->used) {
            v = c;
            break;
        }
        if (!v || c->tick < v->tick) v = c;
    }
    if (v->used) {
        wire_msg_clear(&v->r);
        zmq_msg_close(&v->t);
        v->used = false;
    }
    wire_msg_init(&v->r, WIRE_RESULT);
    zmq_msg_init(&v->t);
    if (wire_msg_copy(&v->r, r) == 0 && zmq_msg_copy(&v->t, t) == 0) {
        v->r.id[0] = 0;
        v->r.timings_mask = 0;
        v->h1 = h1, v->h2 = h2, v->len = len, v->opts = *o;
        v->tick = ++e->cache_tick;
        v->used = true;
    } else {
        wire_msg_clear(&v->r);
        zmq_msg_close(&v->t);
    }
    pthread_mutex_unlock(&e->cache_mu);
}

static void cache_free(enc_t *e) {
    for (int i = 0; e->cache && i < e->cfg.cache_entries; i++)
        if (e->cache[i].used) {
            wire_msg_clear(&e->cache[i].r);
            zmq_msg_close(&e->cache[i].t);
        }
    mem_free(e->cache);
    e->cache = NULL;
}

static void serve_job(enc_t *e, worker_job_t *job) {
    char err[HIRED_ERR_LEN], serr[HIRED_ERR_LEN];
    const char *id = job->hdr.id;
    enc_work_t w;
    memset(&w, 0, sizeof w);
    double t0 = now_ms();
    const uint8_t *bytes = zmq_msg_data(&job->payload);
    const size_t nb = zmq_msg_size(&job->payload);
    uint64_t h1 = 0, h2 = 0;
    int rc = job_opts(e, &job->hdr.params, &w.opts, err);
    if (!rc && worker_conn_cancelled(e->svc.conn, job)) rc = hired_errf(err, HIRED_EINVAL, "cancelled");
    if (!rc && e->cache) {
        image_hash(bytes, nb, &h1, &h2);
        wire_msg_t r;
        zmq_msg_t t;
        zmq_msg_init(&t);
        if (cache_get(e, h1, h2, nb, &w.opts, id, &r, &t)) {
            memset(r.timings, 0, sizeof r.timings); /* nothing was computed */
            r.timings_mask = (1u << WIRE_STAGE_PREPROCESS) | (1u << WIRE_STAGE_VIT) | (1u << WIRE_STAGE_SELECT);
            rc = worker_conn_send_result(e->svc.conn, job, &r, &t, serr);
            if (rc) log_error("hired-encoder: job %s: cannot send RESULT: %s", id, serr);
            else log_info("encode %s: cache hit, %u tokens", id, r.kept);
            zmq_msg_close(&t);
            wire_msg_clear(&r);
            atomic_fetch_add(&e->cache_hits, 1);
            atomic_fetch_add(&e->served, 1);
            return;
        }
        zmq_msg_close(&t);
    }
    if (!rc) rc = encode(e, bytes, nb, &w.opts, &w, err);
    if (rc == HIRED_ECUDA) fatal_backend(id, err);
    if (!rc) {
        wire_msg_t r;
        zmq_msg_t t;
        zmq_msg_init(&t);
        rc = make_result(e, id, &w, &r, &t, err);
        if (!rc && e->cache) cache_put(e, h1, h2, nb, &w.opts, &r, &t);
        if (!rc) {
            rc = worker_conn_send_result(e->svc.conn, job, &r, &t, serr);
            if (rc) log_error("hired-encoder: job %s: cannot send RESULT: %s", id, serr);
            else
                log_info("encode %s: %s r=%g kept %d/%d tokens; ms: preprocess %.1f, vit %.1f, select %.1f, total %.1f",
                         id, sel_strategy_name(w.opts.strategy), w.opts.budget, w.sel.k,
                         w.prep.n * (e->hf.vision.image_size / e->hf.vision.patch_size) *
                             (e->hf.vision.image_size / e->hf.vision.patch_size),
                         w.ms_prep, w.ms_vit, w.ms_select, now_ms() - t0);
        }
        zmq_msg_close(&t);
        wire_msg_clear(&r);
    }
    if (rc) {
        /* every job ends with exactly one terminal send, RESULT or ERROR */
        log_warn("encode %s refused: %s", id, err);
        if (worker_conn_send_error(e->svc.conn, job, rc, err, serr))
            log_error("hired-encoder: job %s: cannot send ERROR: %s", id, serr);
        atomic_fetch_add(&e->failed, 1);
    } else {
        atomic_fetch_add(&e->served, 1);
    }
    work_free(&w);
}

/* One synthetic mid-grey image through preprocessing and the tower, so the first real job does
 * not pay for page faults on the weights. */
static int warmup(enc_t *e, char *err) {
    image_t img = {0};
    int rc = image_alloc(&img, 336, 336);
    if (rc) return hired_errf(err, rc, "warm-up: out of memory");
    memset(img.rgb, 128, (size_t)336 * 336 * 3);
    enc_work_t w;
    memset(&w, 0, sizeof w);
    w.opts = (sel_opts_t){.strategy = SEL_HIRED, .budget = 0.2, .alpha = 0.5};
    rc = prep_for_model(&img, &e->hf, &e->pp, &w.prep, err);
    image_free(&img);
    vision_opts_t vo = {.n_attn_layers = 2, .attn_layers = {e->alloc_layer, e->select_layer}};
    if (!rc) rc = vision_encode(e->vision, w.prep.pixels, w.prep.n, &vo, &w.vout, err);
    work_free(&w);
    return rc;
}

// ---- main ------------------------------------------------------------------------------------

/* svc_app_t.serve */
static void serve(void *app, worker_job_t *job) { serve_job(app, job); }

int main(int argc, char **argv) {
    static enc_t e; /* large; zero-initialised */
    cfg_entry_t k_cfg[N_CFG]; /* the common keys (svc.h), then this worker's */
    svc_cfg_entries(offsetof(enc_cfg_t, w), "run one synthetic image through the tower before announcing READY", k_cfg);
    memcpy(k_cfg + SVC_CFG_N, k_own_cfg, sizeof k_own_cfg);
    bool check = false;
    int crc = svc_configure("hired-encoder", k_cfg, N_CFG, &e.cfg, &e.cfg.w, argc, argv, &check, NULL);
    if (crc) {
        cfg_free(k_cfg, N_CFG, &e.cfg);
        return crc == 1 ? 0 : 2;
    }
    char err[HIRED_ERR_LEN];
    if (svc_model_name(&e.cfg.w, e.name, err)) {
        fprintf(stderr, "hired-encoder: %s\n", err);
        cfg_free(k_cfg, N_CFG, &e.cfg);
        return 2;
    }
    log_set_level((log_level_t)e.cfg.w.log_level);
    cfg_log(k_cfg, N_CFG, &e.cfg);
    if (check) {
        int mrc = svc_check_model(&e.cfg.w, err);
        if (mrc) fprintf(stderr, "hired-encoder: %s\n", err);
        else printf("hired-encoder: configuration OK (model '%s')\n", e.name);
        cfg_free(k_cfg, N_CFG, &e.cfg);
        return mrc ? PROC_EXIT_CONFIG : 0;
    }
    if (proc_signals_install()) log_warn("hired-encoder: cannot install signal handlers");
    proc_notify_status("loading %s", e.cfg.w.model_dir);

    double t0 = now_ms();
    int rc = model_load(&e, err);
    bool model_bad = rc != HIRED_OK; /* a configuration error: systemd must not restart */
    if (!rc && e.cfg.w.warmup) rc = warmup(&e, err);
    if (rc) {
        log_error("hired-encoder: %s%s", model_bad ? "cannot load the model: " : "", err);
        model_free(&e);
        cfg_free(k_cfg, N_CFG, &e.cfg);
        return model_bad ? PROC_EXIT_CONFIG : PROC_EXIT_FAILURE;
    }
    log_info("hired-encoder: model '%s' (%s, vision %d layers, width %d) loaded in %.0f ms", e.name,
             e.hf.kind == HF_MODEL_LLAVA_NEXT ? "llava-next" : "llava-1.5", e.hf.vision.layers, e.hf.vision.hidden,
             now_ms() - t0);

    pthread_mutex_init(&e.cache_mu, NULL);
    if (e.cfg.cache_entries > 0 && !(e.cache = mem_calloc((size_t)e.cfg.cache_entries, sizeof *e.cache))) {
        log_error("hired-encoder: out of memory for %lld cache entries", (long long)e.cfg.cache_entries);
        model_free(&e);
        cfg_free(k_cfg, N_CFG, &e.cfg);
        return 1;
    }
    svc_app_t app = {.prog = "hired-encoder", .service = "encode", .model = e.name, .capacity = (int)e.cfg.capacity,
                     .serve = serve, .app = &e};
    if (svc_start(&e.svc, &e.cfg.w, &app, omp_set_num_threads, err)) {
        log_error("hired-encoder: %s", err);
        cache_free(&e);
        model_free(&e);
        cfg_free(k_cfg, N_CFG, &e.cfg);
        return 1;
    }
    rc = svc_run(&e.svc); /* READY=1 ... SIGTERM, drain, hand back */
    log_info("hired-encoder: served %llu jobs (%llu from the cache), refused %llu",
             (unsigned long long)atomic_load(&e.served), (unsigned long long)atomic_load(&e.cache_hits),
             (unsigned long long)atomic_load(&e.failed));
    cache_free(&e);
    model_free(&e);
    cfg_free(k_cfg, N_CFG, &e.cfg);
    return rc ? PROC_EXIT_CONFIG : 0; /* refused by the broker (another checkpoint under this name) */
}
