/* main.c — hired-encoder: the "encode" worker. Loads the vision half of one LLaVA model once
 * (pipeline/encode.h: config.json, preprocessor_config.json, the CLIP tower up to the layers the
 * strategies need, placed on model.device), connects to the broker's backend and serves encode
 * jobs:
 *
 *   image bytes -> enc_run (decode, anyres / CLIP preprocessing, vision tower, token selection:
 *   the same call `hired run` makes, so a job served here selects exactly the tokens `hired run`
 *   selects) -> ONE RESULT for the job's images (1..16, each encoded on its own, in order): per image a
 *   visual record as typed wire fields (common/wire_visual.h) and a tensor frame: kept features
 *   [K, D] in the wire dtype (f16 by default), the K (partition, row, col) positions, the
 *   partitions, patch grid, sub-image grid and image size. Timings are summed over the images.
 *
 * Per-stage timings in RESULT: `preprocess` (image decode + preprocessing; the protocol has no
 * separate decode stage), `vit`, `select` (all 0 for a cache hit).
 * Result cache (encoder.cache_entries, off by default): a repeated (image bytes, selection)
 * request is answered from the last RESULTs kept in memory (LRU), without decoding or the tower.
 *
 * Bad input (corrupt or truncated image, too many pixels, unsupported format, an unknown
 * strategy or out-of-range budget/alpha, a budget that keeps no token) gets an ERROR reply
 * naming the problem and the worker keeps serving. A backend fault (HIRED_ECUDA) ends the
 * process with status 1 without answering, so the broker re-queues the job (counting an
 * attempt) and systemd restarts the worker.
 *
 * Threads: encoder.capacity job threads share the read-only model, each with its own device
 * context (slot i uses ctx[i]). The daemon's life — configuration, --check-config, load,
 * warm-up, READY, drain, exit status — is common/svc.h's svc_main; this file has the encoder's
 * own keys and the job itself.
 * Not here: the pipeline stages (pipeline/encode.h), the protocol (worker_conn), the decoder's
 * half (decoder_worker/main.c). */
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cfg.h"
#include "clock.h"
#include "encode.h"
#include "err.h"
#include "log.h"
#include "mem.h"
#include "svc.h"
#include "wire_visual.h"
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

// ---- the loaded model and the worker state ---------------------------------------------------

typedef struct {
    enc_cfg_t cfg;
    k_device_t *dev;
    enc_model_t *model;
    k_ctx_t *ctx[SVC_MAX_THREADS]; /* one per job thread */
    svc_t svc;                     /* broker connection, job threads, drain (svc.h) */
    struct enc_cache *cache;       /* [cfg.cache_entries], under cache_mu */
    pthread_mutex_t cache_mu;
    uint64_t cache_tick;
    atomic_ullong cache_hits;
    atomic_ullong served, failed;
} enc_t;

/* The result cache's entries (encoder.cache_entries; none when 0). HIRED_ENOMEM. */
static int cache_new(enc_t *e);

/* svc_daemon_t.load: the device, the vision half, one context per job thread, the cache. */
static int load(void *app, svc_t *s, char *err) {
    enc_t *e = app;
    pthread_mutex_init(&e->cache_mu, NULL);
    if (!(e->dev = k_device_open(e->cfg.w.device, err))) return HIRED_EUNSUPPORTED;
    if (!(e->model = enc_model_load(e->cfg.w.model_dir, e->dev, err))) return HIRED_ENOTFOUND;
    for (int i = 0; i < s->capacity; i++)
        if (!(e->ctx[i] = k_ctx_new(e->dev, err))) return HIRED_ENOMEM;
    if (cache_new(e)) return hired_errf(err, HIRED_ENOMEM, "out of memory for %lld cache entries", (long long)e->cfg.cache_entries);
    const hf_config_t *hf = enc_model_config(e->model);
    log_info("hired-encoder: model '%s' (%s, vision %d layers, width %d) on %s, %s", s->model,
             hf->kind == HF_MODEL_LLAVA_NEXT ? "llava-next" : "llava-1.5", hf->vision.layers, hf->vision.hidden,
             k_device_name(e->dev), k_device_kernels(e->dev));
    return HIRED_OK;
}

// ---- one job ---------------------------------------------------------------------------------

/* Encode parameters from the job's params (already checked by the protocol, checked again here
 * so the message names what this worker refuses). */
static int job_params(const enc_t *e, const wire_params_t *p, enc_params_t *o, char *err) {
    enc_params_default(o);
    if (sel_strategy_parse(p->strategy, &o->sel.strategy))
        return hired_errf(err, HIRED_EINVAL, "unknown strategy '%.40s' (none, hired, spatial, prumerge, prumerge+)",
                          p->strategy);
    if (!(p->budget > 0 && p->budget <= 1))
        return hired_errf(err, HIRED_ERANGE, "budget %g must be in (0, 1]", p->budget);
    if (!(p->alpha >= 0 && p->alpha <= 1))
        return hired_errf(err, HIRED_ERANGE, "alpha %g must be in [0, 1]", p->alpha);
    o->sel.budget = p->budget;
    o->sel.alpha = p->alpha;
    o->sel.split = (sel_split_t)e->cfg.split;
    o->sel.spatial = o->sel.strategy == SEL_HIRED ? e->cfg.spatial : 0;
    o->max_pixels = (size_t)e->cfg.max_pixels;
    if ((o->sel.strategy == SEL_PRUMERGE || o->sel.strategy == SEL_PRUMERGE_PLUS) && !enc_model_has_prumerge(e->model))
        return hired_errf(err, HIRED_EUNSUPPORTED, "strategy %s needs the last vision layer, which the checkpoint lacks",
                          sel_strategy_name(o->sel.strategy));
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
    wire_visual_t v; /* the image's record */
    zmq_msg_t t;     /* its tensor [kept, dim] */
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

/* On a hit fills v (a copy of the record) and t (a shared copy of the tensor): true. */
static bool cache_get(enc_t *e, uint64_t h1, uint64_t h2, size_t len, const sel_opts_t *o, wire_visual_t *v,
                      zmq_msg_t *t) {
    bool hit = false;
    pthread_mutex_lock(&e->cache_mu);
    for (int i = 0; i < e->cfg.cache_entries && !hit; i++) {
        enc_cache_t *c = &e->cache[i];
        if (!c->used || c->h1 != h1 || c->h2 != h2 || c->len != len || !same_opts(&c->opts, o)) continue;
        if (wire_visual_copy(v, &c->v) == 0 && zmq_msg_copy(t, &c->t) == 0) {
            c->tick = ++e->cache_tick;
            hit = true;
        } else {
            wire_visual_clear(v);
        }
    }
    pthread_mutex_unlock(&e->cache_mu);
    return hit;
}

/* Keeps a copy of record r and a shared reference to t, evicting the least recently used entry.
 * Failures only mean no caching. */
static void cache_put(enc_t *e, uint64_t h1, uint64_t h2, size_t len, const sel_opts_t *o, const wire_visual_t *r,
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
        wire_visual_clear(&v->v);
        zmq_msg_close(&v->t);
        v->used = false;
    }
    zmq_msg_init(&v->t);
    if (wire_visual_copy(&v->v, r) == 0 && zmq_msg_copy(&v->t, t) == 0) {
        v->h1 = h1, v->h2 = h2, v->len = len, v->opts = *o;
        v->tick = ++e->cache_tick;
        v->used = true;
    } else {
        wire_visual_clear(&v->v);
        zmq_msg_close(&v->t);
    }
    pthread_mutex_unlock(&e->cache_mu);
}

static int cache_new(enc_t *e) {
    if (e->cfg.cache_entries > 0 && !(e->cache = mem_calloc((size_t)e->cfg.cache_entries, sizeof *e->cache)))
        return HIRED_ENOMEM;
    return HIRED_OK;
}

static void cache_free(enc_t *e) {
    for (int i = 0; e->cache && i < e->cfg.cache_entries; i++)
        if (e->cache[i].used) {
            wire_visual_clear(&e->cache[i].v);
            zmq_msg_close(&e->cache[i].t);
        }
    mem_free(e->cache);
    e->cache = NULL;
}

/* Image i of the job into record r->visuals[i] and tensor *t: from the cache, or decoded,
 * preprocessed, run through the tower and selected (enc_run, as `hired run`). Timings add up in
 * r. *hit says whether the cache answered. */
static int encode_image(enc_t *e, int slot, const worker_job_t *job, int i, const enc_params_t *p, wire_msg_t *r,
                        zmq_msg_t *t, bool *hit, char *err) {
    const uint8_t *bytes = zmq_msg_data((zmq_msg_t *)&job->payloads[i]);
    const size_t nb = zmq_msg_size((zmq_msg_t *)&job->payloads[i]);
    uint64_t h1 = 0, h2 = 0;
    *hit = false;
    if (e->cache) {
        image_hash(bytes, nb, &h1, &h2);
        if (cache_get(e, h1, h2, nb, &p->sel, &r->visuals[i], t)) {
            *hit = true;
            atomic_fetch_add(&e->cache_hits, 1);
            return HIRED_OK;
        }
    }
    visual_t vis = {0};
    enc_stats_t st = {0};
    int rc = enc_run(e->model, e->ctx[slot], bytes, nb, p, &vis, &st, NULL, err);
    if (rc == HIRED_ECUDA) fatal_backend(job->hdr.id, err);
    if (!rc) rc = wire_put_visual(&vis, (wire_dtype_t)e->cfg.wire_dtype, &r->visuals[i], t, err);
    visual_free(&vis);
    if (rc) return rc;
    r->timings[WIRE_STAGE_PREPROCESS] += st.ms_decode_image + st.ms_preprocess;
    r->timings[WIRE_STAGE_VIT] += st.ms_vision;
    r->timings[WIRE_STAGE_SELECT] += st.ms_select;
    if (e->cache) cache_put(e, h1, h2, nb, &p->sel, &r->visuals[i], t);
    return HIRED_OK;
}

/* svc_daemon_t.serve: every image of the job in order, one RESULT of one record per image. */
static void serve(void *app, int slot, worker_job_t *job) {
    enc_t *e = app;
    char err[HIRED_ERR_LEN], serr[HIRED_ERR_LEN];
    const char *id = job->hdr.id;
    const int n = job->n_payloads;
    double t0 = clock_ms();
    enc_params_t p;
    wire_msg_t r;
    wire_msg_init(&r, WIRE_RESULT);
    zmq_msg_t t[WIRE_MAX_PAYLOADS];
    for (int i = 0; i < n; i++) zmq_msg_init(&t[i]);
    int rc = job_params(e, &job->hdr.params, &p, err), hits = 0;
    uint32_t kept = 0;
    const int ctx_len = enc_model_config(e->model)->text.max_pos;
    if (!rc && wire_msg_new_visuals(&r, (uint32_t)n)) rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
    if (!rc) {
        snprintf(r.id, sizeof r.id, "%s", id);
        snprintf(r.fingerprint, sizeof r.fingerprint, "%s", e->svc.fingerprint);
        r.timings_mask = (1u << WIRE_STAGE_PREPROCESS) | (1u << WIRE_STAGE_VIT) | (1u << WIRE_STAGE_SELECT);
    }
    for (int i = 0; i < n && !rc; i++) {
        if (worker_conn_cancelled(e->svc.conn, job)) {
            rc = hired_errf(err, HIRED_EINVAL, "cancelled");
            break;
        }
        bool hit;
        char ierr[HIRED_ERR_LEN];
        rc = encode_image(e, slot, job, i, &p, &r, &t[i], &hit, ierr);
        if (rc && n > 1) hired_errf(err, rc, "image %d of %d: %s", i + 1, n, ierr);
        else if (rc) snprintf(err, HIRED_ERR_LEN, "%s", ierr);
        hits += hit;
        if (!rc) kept += r.visuals[i].kept;
        /* The language model needs at least one position per kept token: once the images so far
         * need more than its context holds, the rest are not encoded (the decoder would refuse
         * the job anyway, after the whole encode). */
        if (!rc && ctx_len > 0 && kept > (uint32_t)ctx_len)
            rc = hired_errf(err, HIRED_ERANGE,
                            "the images need more positions than the model's context holds: %u visual tokens kept "
                            "for the first %d of %d images, the model's context is %d (use fewer images or a "
                            "smaller budget)",
                            kept, i + 1, n, ctx_len);
    }
    if (!rc) {
        rc = worker_conn_send_result(e->svc.conn, job, &r, t, n, serr); /* takes the tensors */
        if (rc) log_error("hired-encoder: job %s: cannot send RESULT: %s", id, serr);
        else
            log_info("encode %s: %d image%s (%d from the cache), %s r=%g kept %u tokens; ms: preprocess %.1f, vit "
                     "%.1f, select %.1f, total %.1f",
                     id, n, n == 1 ? "" : "s", hits, sel_strategy_name(p.sel.strategy), p.sel.budget, kept,
                     r.timings[WIRE_STAGE_PREPROCESS], r.timings[WIRE_STAGE_VIT], r.timings[WIRE_STAGE_SELECT],
                     clock_ms() - t0);
    }
    for (int i = 0; i < n; i++) zmq_msg_close(&t[i]);
    wire_msg_clear(&r);
    if (rc) {
        /* every job ends with exactly one terminal send, RESULT or ERROR */
        log_warn("encode %s refused: %s", id, err);
        if (worker_conn_send_error(e->svc.conn, job, rc, err, serr))
            log_error("hired-encoder: job %s: cannot send ERROR: %s", id, serr);
        atomic_fetch_add(&e->failed, 1);
    } else {
        atomic_fetch_add(&e->served, 1);
    }
}

// ---- the daemon ------------------------------------------------------------------------------

/* svc_daemon_t.warmup: one synthetic image through the tower on the first context. */
static int warmup(void *app, char *err) {
    enc_t *e = app;
    return enc_warmup(e->model, e->ctx[0], err);
}

static void report(void *app) {
    enc_t *e = app;
    log_info("hired-encoder: served %llu jobs (%llu from the cache), refused %llu",
             (unsigned long long)atomic_load(&e->served), (unsigned long long)atomic_load(&e->cache_hits),
             (unsigned long long)atomic_load(&e->failed));
}

static void unload(void *app) {
    enc_t *e = app;
    cache_free(e);
    for (int i = 0; i < SVC_MAX_THREADS; i++) k_ctx_destroy(&e->ctx[i]);
    enc_model_destroy(&e->model);
    k_device_close(&e->dev);
}

static int capacity(const void *values) { return (int)((const enc_cfg_t *)values)->capacity; }

int main(int argc, char **argv) {
    static enc_t e; /* large; zero-initialised */
    static const svc_daemon_t d = {
        .prog = "hired-encoder", .service = "encode",
        .warmup_help = "run one synthetic image through the tower before announcing READY",
        .own = k_own_cfg, .n_own = (int)ARRAY_LEN(k_own_cfg), .cfg_offset = offsetof(enc_cfg_t, w),
        .capacity = capacity, .load = load, .warmup = warmup, .serve = serve, .report = report, .unload = unload,
        .omp_threads = omp_set_num_threads, .probe_device = k_device_probe,
    };
    return svc_main(&d, &e, &e.cfg, &e.svc, argc, argv);
}
