/* main.c — hired-decoder: the "decode" worker. Loads one LLaVA model once (gen_model_load:
 * tokenizer, projector, image_newline, text model; weights mmapped read-only and shared by every
 * job), connects to the broker's backend (common/worker_conn.h) and serves decode jobs:
 *
 *   features [K, D] of the wire dtype + positions + meta (from hired-encoder, see
 *   encoder_worker/main.c for the meta contract) -> float32 visual (gen_visual_t) ->
 *   gen_prompt_build (chat template, tokenize, the single <image>, projector, packing with the
 *   job's newline policy) -> gen_decode (prefill, seeded sampling) -> TOKEN seq 0, 1, ... ->
 *   DONE with usage and timings.
 *
 * Per-stage timings in DONE: `transfer` (job arrival at this worker -> features ready in
 * float32: local queueing plus the dtype conversion; network time before arrival is in the
 * broker's `queue`/`total`), `project`, `prefill`, `decode`.
 * TOKEN messages carry each piece of newly final text with the token that completed it (a token
 * whose bytes do not yet form text sends nothing; a piece over WIRE_MAX_TOKEN_TEXT bytes is split).
 * NUL bytes cannot travel in protocol strings: a NUL in the text becomes U+FFFD.
 * Sampling is seeded per job (params.seed) and counter-based (sampler.h), so a retried decode
 * emits the same tokens from seq 0 and the broker drops the repeats.
 *
 * Concurrency: decoder.capacity job threads, each running one job at a time with its own KV
 * cache and scratch (gen_decode allocates them per job), all sharing the read-only weights;
 * the broker never sends more than `capacity` jobs at once. The main thread watches signals and
 * pings the systemd watchdog. A CANCEL (or a lost broker session) stops generation at the next
 * token; the job still ends with one terminal send (ERROR "cancelled", dropped or returning
 * credit).
 * Bad input (a prompt without <image> or with several, a prompt longer than the context, meta
 * or positions that do not fit the model) gets an ERROR naming it; the worker keeps serving.
 * A backend fault (HIRED_ECUDA) ends the process with status 1 without answering (the broker
 * re-queues; systemd restarts). SIGTERM: STOPPING=1, no new jobs, running ones get
 * worker.drain_ms, then DISCONNECT hands the rest back; exit 0. Configuration errors exit 2
 * (PROC_EXIT_CONFIG, not restarted by the unit), and so does a model that is missing or does not
 * load; a failed warm-up exits 1.
 * Not here: the model code (decoder_worker/generate.h and below), the protocol (worker_conn),
 * what every worker does the same way (keys, command line, job threads, READY, watchdog,
 * drain: common/svc.h). */
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
#include "generate.h"
#include "half.h"
#include "json.h"
#include "log.h"
#include "mem.h"
#include "proc.h"
#include "svc.h"
#include "template.h"
#include "worker_conn.h"


// ---- configuration ---------------------------------------------------------------------------

typedef struct {
    svc_cfg_t w; /* the keys every worker has (svc.h) */
    int64_t capacity, prefill_chunk;
    char *template_name;
} dec_cfg_t;

#define O(f) offsetof(dec_cfg_t, f)
static const cfg_entry_t k_own_cfg[] = {
    {"decoder.capacity", CFG_INT, O(capacity), 1, SVC_MAX_THREADS, "2", NULL,
     "jobs decoded at once (one thread and one KV cache each, sharing the weights)"},
    {"decoder.template", CFG_STRING, O(template_name), 0, 64, "", NULL,
     "chat template around the job's prompt: a built-in one (vicuna, llava-1.5, vicuna-system, "
     "vicuna-lmms-eval, mistral, chatml, llama3) or raw (prompt used as is); empty = the checkpoint's own "
     "chat_template, else the text model's built-in default, as `hired run`"},
    {"decoder.prefill_chunk", CFG_INT, O(prefill_chunk), 0, 65536, "0", NULL,
     "prompt rows per prefill pass (bounds the activation scratch); 0 = the library's default"},
};
#undef O
#define N_OWN ((int)ARRAY_LEN(k_own_cfg))
#define N_CFG (SVC_CFG_N + N_OWN)

// ---- worker state ----------------------------------------------------------------------------

typedef struct {
    dec_cfg_t cfg;
    char name[WIRE_MAX_MODEL + 1];
    gen_model_t *model;
    const hf_config_t *hf; /* borrowed from model */
    svc_t svc; /* broker connection, job threads, drain (svc.h) */
    atomic_ullong served, failed;
} dec_t;

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

// ---- the encoder's result -> gen_visual_t ----------------------------------------------------

/* Reads the meta JSON into vis (geometry, strategy) and checks it against the model. */
static int parse_meta(const dec_t *d, const wire_msg_t *j, gen_visual_t *vis, char *err) {
    if (!j->meta || !j->meta_len) return hired_errf(err, HIRED_EPROTO, "decode job without encoder meta");
    cJSON *root = NULL;
    int rc = json_parse("meta", (const char *)j->meta, j->meta_len, &root, err);
    if (rc) return rc;
    json_where_t w = {.file = "meta", .prefix = "", .err = err};
    int64_t v = 0, n = 0, rows = 0, cols = 0, grid = 0, ow = 0, oh = 0, total = 0, bt = 0;
    const char *strategy = NULL;
    if (!cJSON_IsObject(root)) rc = hired_errf(err, HIRED_EFORMAT, "meta: not a JSON object");
    if (!rc) rc = json_opt_int(&w, root, "v", 0, 1000, 0, &v);
    if (!rc && v != 1) rc = hired_errf(err, HIRED_EPROTO, "meta version %lld not supported (this decoder reads 1)", (long long)v);
    if (!rc) rc = json_opt_string(&w, root, "strategy", "", &strategy);
    if (!rc) rc = json_opt_int(&w, root, "n", 1, SEL_MAX_PARTS, 0, &n);
    if (!rc) rc = json_opt_int(&w, root, "rows", 1, SEL_MAX_PARTS, 1, &rows);
    if (!rc) rc = json_opt_int(&w, root, "cols", 1, SEL_MAX_PARTS, 1, &cols);
    if (!rc) rc = json_opt_int(&w, root, "grid", 1, 1024, 0, &grid);
    if (!rc) rc = json_opt_int(&w, root, "orig_w", 1, 1000000, 0, &ow);
    if (!rc) rc = json_opt_int(&w, root, "orig_h", 1, 1000000, 0, &oh);
    if (!rc) rc = json_opt_int(&w, root, "total", 0, 1 << 24, 0, &total);
    if (!rc) rc = json_opt_int(&w, root, "budget_total", -1, 1 << 24, 0, &bt);
    sel_strategy_t st = SEL_NONE;
    if (!rc && sel_strategy_parse(strategy, &st))
        rc = hired_errf(err, HIRED_EINVAL, "meta: unknown strategy '%.40s'", strategy);
    if (!rc && (!n || !grid || !ow || !oh)) rc = hired_errf(err, HIRED_EPROTO, "meta: n, grid, orig_w and orig_h are required");
    cJSON_Delete(root);
    if (rc) return rc;
    const int g = d->hf->vision.image_size / d->hf->vision.patch_size;
    if (grid != g)
        return hired_errf(err, HIRED_EINVAL, "features come from a %lldx%lld patch grid, this model's is %dx%d",
                          (long long)grid, (long long)grid, g, g);
    bool next = d->hf->kind == HF_MODEL_LLAVA_NEXT;
    if (next ? (n != 1 && n != 1 + rows * cols) : n != 1)
        return hired_errf(err, HIRED_EINVAL, "%lld partitions (grid %lldx%lld) do not fit a %s model", (long long)n,
                          (long long)rows, (long long)cols, next ? "llava-next" : "llava-1.5");
    if (j->grid[0] && (j->grid[0] != rows || j->grid[1] != cols))
        return hired_errf(err, HIRED_EINVAL, "grid %ux%u disagrees with meta's %lldx%lld", j->grid[0], j->grid[1],
                          (long long)rows, (long long)cols);
    if (j->image_size[0] && (j->image_size[0] != ow || j->image_size[1] != oh))
        return hired_errf(err, HIRED_EINVAL, "image_size %ux%u disagrees with meta's %lldx%lld", j->image_size[0],
                          j->image_size[1], (long long)ow, (long long)oh);
    vis->strategy = st;
    vis->n = (int)n;
    vis->rows = (int)rows;
    vis->cols = (int)cols;
    vis->orig_w = (int)ow;
    vis->orig_h = (int)oh;
    vis->grid = g;
    vis->total = total ? (int)total : (int)n * g * g;
    vis->sel.budget_total = (int)bt;
    return HIRED_OK;
}

/* Builds the float32 visual of a decode job: meta, positions and the tensor frame. */
static int job_visual(const dec_t *d, const worker_job_t *job, gen_visual_t *vis, char *err) {
    const wire_msg_t *j = &job->hdr;
    memset(vis, 0, sizeof *vis);
    if (strcmp(j->fingerprint, d->svc.fingerprint) != 0)
        return hired_errf(err, HIRED_EINVAL,
                          "the features come from checkpoint %s, this decoder serves %s (same model name, "
                          "different checkpoints)",
                          j->fingerprint[0] ? j->fingerprint : "(none)", d->svc.fingerprint);
    int rc = parse_meta(d, j, vis, err);
    if (rc) return rc;
    const int K = (int)j->kept, D = (int)j->dim;
    const size_t es = wire_dtype_size(j->dtype);
    if (K < 1 || D < 1 || !j->positions || zmq_msg_size((zmq_msg_t *)&job->payload) != (size_t)K * D * es)
        return hired_errf(err, HIRED_EPROTO, "tensor frame is %zu bytes, [%d, %d] %s needs %zu",
                          zmq_msg_size((zmq_msg_t *)&job->payload), K, D, wire_dtype_name(j->dtype), (size_t)K * D * es);
    sel_out_t *s = &vis->sel;
    s->features = mem_alloc_aligned((size_t)K * D * sizeof(float)); /* [K, D] */
    s->pos = mem_alloc((size_t)K * sizeof *s->pos);
    if (!s->features || !s->pos) {
        gen_visual_free(vis);
        return hired_errf(err, HIRED_ENOMEM, "out of memory for %d x %d features", K, D);
    }
    s->k = K;
    s->d = D;
    s->n = vis->n;
    const int g = vis->grid;
    const bool pm = vis->strategy == SEL_PRUMERGE || vis->strategy == SEL_PRUMERGE_PLUS;
    for (int i = 0; i < K; i++) {
        int part = j->positions[3 * i], row = j->positions[3 * i + 1], col = j->positions[3 * i + 2];
        if (row == 0xFFFF && col == 0xFFFF && pm) row = col = -1; /* PruMerge summary token */
        if (part >= vis->n || row >= g || col >= g || (row < 0) != (col < 0)) {
            gen_visual_free(vis);
            return hired_errf(err, HIRED_EINVAL, "kept token %d at (%d, %d, %d) is outside %d partitions of %dx%d", i,
                              part, row, col, vis->n, g, g);
        }
        s->pos[i] = (sel_pos_t){.part = (int16_t)part, .row = (int16_t)row, .col = (int16_t)col};
        s->per_part[part]++;
    }
    const void *src = zmq_msg_data((zmq_msg_t *)&job->payload); /* [K, D] of j->dtype, 64-byte aligned */
    size_t n = (size_t)K * D, bad = wire_count_nonfinite(src, n, j->dtype);
    if (bad) {
        gen_visual_free(vis);
        return hired_errf(err, HIRED_ERANGE, "%zu of %zu encoder feature values are not finite (NaN or Inf)", bad, n);
    }
    if (j->dtype == WIRE_DTYPE_F32) {
        memcpy(s->features, src, n * sizeof(float));
    } else {
        const uint16_t *h = src;
        for (size_t i = 0; i < n; i++) s->features[i] = j->dtype == WIRE_DTYPE_F16 ? half_to_f32(h[i]) : bf16_to_f32(h[i]);
    }
    return HIRED_OK;
}

// ---- one job ---------------------------------------------------------------------------------

typedef struct {
    dec_t *d;
    const worker_job_t *job;
    uint32_t seq;
    bool cancelled;
    int send_rc;
} stream_t;

/* gen_emit_fn: one TOKEN per piece (split at the protocol's limit), NUL -> U+FFFD. */
static int emit_token(void *user, const char *text, size_t len, int32_t token) {
    stream_t *s = user;
    if (worker_conn_cancelled(s->d->svc.conn, s->job)) {
        s->cancelled = true;
        return 1;
    }
    char buf[WIRE_MAX_TOKEN_TEXT + 1];
    size_t i = 0;
    while (i < len) {
        size_t n = 0;
        for (; i < len && n + 3 <= WIRE_MAX_TOKEN_TEXT; i++) {
            if (text[i]) {
                buf[n++] = text[i];
            } else {
                memcpy(buf + n, "\xEF\xBF\xBD", 3);
                n += 3;
            }
        }
        buf[n] = 0;
        char err[HIRED_ERR_LEN];
        int rc = worker_conn_send_token(s->d->svc.conn, s->job, s->seq++, token, buf, err);
        if (rc) {
            log_error("decode %s: cannot send TOKEN: %s", s->job->hdr.id, err);
            s->send_rc = rc;
            return 1;
        }
    }
    return 0;
}

static const char *finish_name(gen_finish_t f) {
    switch (f) {
    case GEN_FINISH_LENGTH: return "length";
    case GEN_FINISH_CALLBACK: return "cancelled";
    default: return "stop"; /* EOS or a stop string */
    }
}

static void fatal_backend(const char *id, const char *msg) {
    log_error("hired-decoder: backend failure in job %s: %s; exiting", id, msg);
    _exit(1);
}

static void serve_job(dec_t *d, worker_job_t *job) {
    char err[HIRED_ERR_LEN], serr[HIRED_ERR_LEN];
    const wire_msg_t *j = &job->hdr;
    const char *id = j->id;
    gen_visual_t vis;
    gen_prompt_t pr;
    memset(&vis, 0, sizeof vis);
    memset(&pr, 0, sizeof pr);
    gen_stats_t st;
    memset(&st, 0, sizeof st);
    gen_params_t p;
    gen_params_default(&p);
    p.template_name = d->cfg.template_name[0] ? d->cfg.template_name : NULL;
    p.max_tokens = j->params.max_tokens;
    p.sampling = (sampler_params_t){.temperature = (float)j->params.temperature, .top_k = j->params.top_k,
                                    .top_p = (float)j->params.top_p, .seed = j->params.seed};
    stream_t s = {.d = d, .job = job};

    double t0 = now_ms();
    int rc = pack_newline_parse(j->params.newline, &p.newline)
                 ? hired_errf(err, HIRED_EINVAL, "unknown newline policy '%.20s' (hf, none)", j->params.newline)
                 : HIRED_OK;
    if (!rc) rc = job_visual(d, job, &vis, err);
    const int vis_total = vis.total; /* from the encoder's meta: tokens before selection */
    double ms_transfer = (double)(wire_now_ms() - job->received_ms); /* arrival -> float32 features */
    if (!rc) rc = gen_prompt_build(d->model, &vis, j->prompt ? j->prompt : "", &p, &pr, &st, err);
    gen_visual_free(&vis);
    if (!rc && worker_conn_cancelled(d->svc.conn, job)) s.cancelled = true;
    if (!rc && !s.cancelled) rc = gen_decode(d->model, &pr, &p, emit_token, &s, NULL, NULL, 0, NULL, &st, err);
    gen_prompt_free(&pr);
    if (rc == HIRED_ECUDA) fatal_backend(id, err);
    if (!rc && s.send_rc) rc = hired_errf(err, s.send_rc, "cannot stream tokens");
    if (!rc && (s.cancelled || worker_conn_cancelled(d->svc.conn, job))) rc = hired_errf(err, HIRED_EINVAL, "cancelled");
    if (!rc) {
        wire_msg_t m;
        wire_msg_init(&m, WIRE_DONE);
        snprintf(m.id, sizeof m.id, "%s", id);
        snprintf(m.finish, sizeof m.finish, "%s", finish_name(st.finish));
        m.usage.prompt_tokens = (uint32_t)st.prompt_tokens;
        m.usage.image_tokens = (uint32_t)st.image_tokens;
        m.usage.completion_tokens = (uint32_t)st.generated;
        m.usage.visual_kept = j->kept;                                 /* the broker sets it too */
        m.usage.visual_total = vis_total > 0 ? (uint32_t)vis_total : 0; /* result_bytes: the broker */
        m.timings[WIRE_STAGE_TRANSFER] = ms_transfer;
        m.timings[WIRE_STAGE_PROJECT] = st.ms_project;
        m.timings[WIRE_STAGE_PREFILL] = st.ms_prefill;
        m.timings[WIRE_STAGE_DECODE] = st.ms_decode;
        m.timings_mask = (1u << WIRE_STAGE_TRANSFER) | (1u << WIRE_STAGE_PROJECT) | (1u << WIRE_STAGE_PREFILL) |
                         (1u << WIRE_STAGE_DECODE);
        if (worker_conn_send_done(d->svc.conn, job, &m, serr)) log_error("hired-decoder: job %s: cannot send DONE: %s", id, serr);
        wire_msg_clear(&m);
        log_info("decode %s: %d image + %d prompt tokens, %d generated (%s), %u pieces; ms: transfer %.1f, project "
                 "%.1f, prefill %.1f, decode %.1f, total %.1f",
                 id, st.image_tokens, st.prompt_tokens, st.generated, finish_name(st.finish), s.seq, ms_transfer,
                 st.ms_project, st.ms_prefill, st.ms_decode, now_ms() - t0);
        atomic_fetch_add(&d->served, 1);
        return;
    }
    log_warn("decode %s refused: %s", id, err);
    if (worker_conn_send_error(d->svc.conn, job, rc, err, serr))
        log_error("hired-decoder: job %s: cannot send ERROR: %s", id, serr);
    atomic_fetch_add(&d->failed, 1);
}

/* One BOS token through the text model, so the first job does not pay the page faults. */
static int warmup(dec_t *d, char *err) {
    llm_t *llm = gen_model_llm(d->model);
    const hf_text_config_t *tc = llm_config(llm);
    kv_cache_t *kv = llm_kv_new(llm, 2, err);
    float *x = mem_alloc_aligned((size_t)tc->hidden * sizeof(float));      /* [1, hidden] */
    float *logits = mem_alloc_aligned((size_t)tc->vocab * sizeof(float)); /* [vocab] */
    int rc = kv && x && logits ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "warm-up: out of memory");
    int32_t bos = tc->bos_id >= 0 && tc->bos_id < tc->vocab ? tc->bos_id : 0;
    if (!rc) rc = llm_embed(llm, &bos, 1, x, err);
    if (!rc) rc = llm_forward(llm, kv, x, 1, LLM_LOGITS_LAST, logits, err);
    kv_cache_destroy(&kv);
    mem_free_aligned(x);
    mem_free_aligned(logits);
    return rc;
}

// ---- main ------------------------------------------------------------------------------------

/* svc_configure's extra check: decoder.template names a known template. */
static int check_template(void *values, char *err) {
    const dec_cfg_t *cfg = values;
    if (!cfg->template_name[0]) return HIRED_OK;
    char *out = NULL, terr[HIRED_ERR_LEN];
    int rc = tpl_render(cfg->template_name, "x", &out, terr) ? hired_errf(err, HIRED_EINVAL, "decoder.template: %s", terr)
                                                             : HIRED_OK;
    mem_free(out);
    return rc;
}

/* svc_app_t.serve */
static void serve(void *app, worker_job_t *job) { serve_job(app, job); }

int main(int argc, char **argv) {
    static dec_t d;
    cfg_entry_t k_cfg[N_CFG]; /* the common keys (svc.h), then this worker's */
    svc_cfg_entries(offsetof(dec_cfg_t, w), "run one token through the text model before announcing READY", k_cfg);
    memcpy(k_cfg + SVC_CFG_N, k_own_cfg, sizeof k_own_cfg);
    bool check = false;
    int crc = svc_configure("hired-decoder", k_cfg, N_CFG, &d.cfg, &d.cfg.w, argc, argv, &check, check_template);
    if (crc) {
        cfg_free(k_cfg, N_CFG, &d.cfg);
        return crc == 1 ? 0 : 2;
    }
    char err[HIRED_ERR_LEN];
    if (svc_model_name(&d.cfg.w, d.name, err)) {
        fprintf(stderr, "hired-decoder: %s\n", err);
        cfg_free(k_cfg, N_CFG, &d.cfg);
        return 2;
    }
    log_set_level((log_level_t)d.cfg.w.log_level);
    cfg_log(k_cfg, N_CFG, &d.cfg);
    if (check) {
        int mrc = svc_check_model(&d.cfg.w, err);
        if (mrc) fprintf(stderr, "hired-decoder: %s\n", err);
        else printf("hired-decoder: configuration OK (model '%s')\n", d.name);
        cfg_free(k_cfg, N_CFG, &d.cfg);
        return mrc ? PROC_EXIT_CONFIG : 0;
    }
    if (proc_signals_install()) log_warn("hired-decoder: cannot install signal handlers");
    proc_notify_status("loading %s", d.cfg.w.model_dir);

    double t0 = now_ms();
    d.model = gen_model_load(d.cfg.w.model_dir, err);
    int rc = d.model ? HIRED_OK : HIRED_ENOTFOUND;
    bool model_bad = rc != HIRED_OK; /* a configuration error: systemd must not restart */
    if (!rc) {
        d.hf = gen_model_config(d.model);
        if (d.cfg.prefill_chunk > 0) llm_set_prefill_chunk(gen_model_llm(d.model), (int)d.cfg.prefill_chunk);
        if (d.cfg.w.warmup) rc = warmup(&d, err);
    }
    if (rc) {
        log_error("hired-decoder: %s%s", model_bad ? "cannot load the model: " : "", err);
        gen_model_destroy(&d.model);
        cfg_free(k_cfg, N_CFG, &d.cfg);
        return model_bad ? PROC_EXIT_CONFIG : PROC_EXIT_FAILURE;
    }
    log_info("hired-decoder: model '%s' (%s, text %d layers, width %d, context %d, template %s) loaded in %.0f ms",
             d.name, d.hf->kind == HF_MODEL_LLAVA_NEXT ? "llava-next" : "llava-1.5", d.hf->text.layers,
             d.hf->text.hidden, d.hf->text.max_pos,
             d.cfg.template_name[0] ? d.cfg.template_name : gen_model_default_template(d.model), now_ms() - t0);

    svc_app_t app = {.prog = "hired-decoder", .service = "decode", .model = d.name, .capacity = (int)d.cfg.capacity,
                     .serve = serve, .app = &d};
    if (svc_start(&d.svc, &d.cfg.w, &app, omp_set_num_threads, err)) {
        log_error("hired-decoder: %s", err);
        gen_model_destroy(&d.model);
        cfg_free(k_cfg, N_CFG, &d.cfg);
        return 1;
    }
    rc = svc_run(&d.svc); /* READY=1 ... SIGTERM, drain, hand back */
    log_info("hired-decoder: served %llu jobs, refused %llu", (unsigned long long)atomic_load(&d.served),
             (unsigned long long)atomic_load(&d.failed));
    gen_model_destroy(&d.model);
    cfg_free(k_cfg, N_CFG, &d.cfg);
    return rc ? PROC_EXIT_CONFIG : 0; /* refused by the broker (another checkpoint under this name) */
}
