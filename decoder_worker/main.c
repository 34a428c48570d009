/* main.c — hired-decoder: the "decode" worker. Loads the text half of one LLaVA model once
 * (pipeline/generate.h: tokenizer, chat template, projector, image_newline, text model; weights
 * placed on model.device and shared by every job — never the vision tower, and this binary
 * links no image decoder), connects to the broker's backend and serves decode jobs:
 *
 *   the conversation (a prompt: one question about one image; or messages of system / user /
 *   assistant turns with 0..16 image parts) + one visual record per image as typed wire fields
 *   + tensor [K, D] of the wire dtype (from hired-encoder; common/wire_visual.h) -> float32 host
 *   records -> gen_prompt_build_chat (chat template, tokenize, each image's kept tokens projected
 *   and packed at its own <image> in order, with the job's newline policy) ->
 *   gen_decode (prefill, seeded sampling) -> TOKEN seq 0, 1, ... -> DONE with usage and timings.
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
 * Concurrency: continuous batching (pipeline/gen_sched.h). decoder.capacity job threads take
 * jobs from the broker (which never sends more than `capacity` at once) and build each prompt
 * on their own device context (slot i uses ctx[i]: template, tokenizer, projector, packing);
 * then one scheduler thread owns every admitted job and decodes them together, one batch per
 * step (the weights read once per step for all of them), prefilling new prompts a chunk
 * (decoder.prefill_chunk) per step in between. Jobs are admitted by KV blocks from a pool of
 * decoder.kv_bytes: a job runs once its whole cache (prompt + max_tokens) fits, else it waits
 * for running jobs to end — and while any job waits, the decoder's heartbeat says so (load
 * `kv_waiting`, sent at once when it changes) and the broker sends it no new job; a job that
 * could not fit the empty pool gets an ERROR at once. A
 * job's tokens do not depend on what else is in the batch. A CANCEL (or a lost broker
 * session) stops generation at the next step; the job still ends with one terminal send (ERROR
 * "cancelled", dropped or returning credit).
 * Bad input (<image> placeholders that do not match the images, a prompt longer than the context,
 * a record that does not fit the model) gets an ERROR naming it; the worker keeps serving.
 * A backend fault (HIRED_ECUDA) ends the process with status 1 without answering (the broker
 * re-queues; systemd restarts). The daemon's life — configuration, --check-config, load,
 * warm-up, READY, drain, exit status — is common/svc.h's svc_main.
 * Not here: the model code (pipeline/generate.h and below), the protocol (worker_conn). */
#include <omp.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "cfg.h"
#include "clock.h"
#include "err.h"
#include "gen_sched.h"
#include "generate.h"
#include "log.h"
#include "mem.h"
#include "svc.h"
#include "template.h"
#include "wire_visual.h"
#include "worker_conn.h"

// ---- configuration ---------------------------------------------------------------------------

typedef struct {
    svc_cfg_t w; /* the keys every worker has (svc.h) */
    int64_t capacity, prefill_chunk, kv_bytes;
    int kv_dtype; /* 0 f16, 1 f32 */
    int weights;  /* llm_weights_t: 0 native, 1 q8, 2 bf16, 3 auto */
    char *template_name;
} dec_cfg_t;

#define O(f) offsetof(dec_cfg_t, f)
static const cfg_entry_t k_own_cfg[] = {
    {"decoder.capacity", CFG_INT, O(capacity), 1, SVC_MAX_THREADS, "2", NULL,
     "jobs decoded at once: the largest decode batch (each job also needs its KV blocks, decoder.kv_bytes)"},
    {"decoder.kv_bytes", CFG_INT, O(kv_bytes), 0, 1099511627776.0, "0", NULL,
     "KV cache pool in bytes shared by the running jobs (admission by blocks of 16 positions); "
     "0 = room for decoder.capacity jobs at the model's full context"},
    {"decoder.kv_dtype", CFG_ENUM, O(kv_dtype), 0, 0, "f16", "f16|f32",
     "KV cache element type: f16 halves the cache (logits move by about 1e-3 relative, docs/numerics.md); "
     "f32 gives `hired run`'s numbers"},
    {"decoder.template", CFG_STRING, O(template_name), 0, 64, "", NULL,
     "chat template around the job's prompt: a built-in one (vicuna, llava-1.5, vicuna-system, "
     "vicuna-lmms-eval, mistral, chatml, llama3) or raw (prompt used as is); empty = the checkpoint's own "
     "chat_template, else the text model's built-in default, as `hired run`"},
    {"decoder.prefill_chunk", CFG_INT, O(prefill_chunk), 0, 65536, "0", NULL,
     "prompt rows per prefill pass (bounds the activation scratch); 0 = the library's default"},
    {"decoder.weights", CFG_ENUM, O(weights), 0, 0, "auto", "native|q8|bf16|auto",
     "the text model's linear layers: native = the checkpoint's dtype in place, float32 products (the "
     "reference numbers); bf16 = rounded to bf16 at load, bf16 products with float32 sums where the CPU has "
     "AVX512-BF16 (prefill ~1.9x, batched decode ~1.5x); q8 = quantised to 8 bits at load (blocks of 32 with "
     "a scale; about half the bytes per decode step; the CPU device only); auto = bf16 on a CPU with native "
     "bf16, native elsewhere. How far each moves logits: docs/numerics.md"},
};
#undef O

// ---- worker state ----------------------------------------------------------------------------

typedef struct {
    dec_cfg_t cfg;
    k_device_t *dev;
    gen_model_t *model;
    k_ctx_t *ctx[SVC_MAX_THREADS]; /* one per job thread: the prompt */
    gen_sched_t *sched;            /* every admitted job's decode */
    svc_t svc; /* broker connection, job threads, drain (svc.h) */
    atomic_ullong served, failed;
} dec_t;

/* gen_sched_opts_t.on_step: the batch and KV blocks go to the broker with the next HEARTBEAT. */
static void publish_load(void *user, const gen_sched_stats_t *st) {
    dec_t *d = user;
    if (d->svc.conn)
        worker_conn_set_load(d->svc.conn, (uint32_t)st->batch, (uint32_t)st->kv_blocks_used,
                             (uint32_t)st->kv_blocks_total, (uint32_t)st->waiting);
}

/* svc_daemon_t.load: the device, the text half, one context per job thread, the scheduler. */
static int load(void *app, svc_t *s, char *err) {
    dec_t *d = app;
    if (!(d->dev = k_device_open(d->cfg.w.device, err))) return HIRED_EUNSUPPORTED;
    if (!(d->model = gen_model_load_as(d->cfg.w.model_dir, d->dev, (llm_weights_t)d->cfg.weights, err)))
        return HIRED_ENOTFOUND;
    for (int i = 0; i < s->capacity; i++)
        if (!(d->ctx[i] = k_ctx_new(d->dev, err))) return HIRED_ENOMEM;
    if (d->cfg.prefill_chunk > 0) llm_set_prefill_chunk(gen_model_llm(d->model), (int)d->cfg.prefill_chunk);
    const hf_config_t *hf = gen_model_config(d->model);
    const tensor_dtype_t kv_dt = d->cfg.kv_dtype ? TENSOR_DTYPE_F32 : TENSOR_DTYPE_F16;
    size_t full = kv_cache_bytes_for(kv_dt, hf->text.layers, hf->text.kv_heads * hf->text.head_dim,
                                     (hf->text.max_pos + GEN_SCHED_BLOCK - 1) / GEN_SCHED_BLOCK * GEN_SCHED_BLOCK);
    gen_sched_opts_t so = {.kv_bytes = d->cfg.kv_bytes > 0 ? (size_t)d->cfg.kv_bytes : full * (size_t)s->capacity,
                           .max_seqs = s->capacity, .kv_dtype = kv_dt, .omp_threads = omp_set_num_threads,
                           .threads = (int)d->cfg.w.threads, .on_step = publish_load, .step_user = d};
    if (!(d->sched = gen_sched_new(d->model, &so, err))) return HIRED_EINVAL;
    log_info("hired-decoder: KV pool %.1f MiB (%s): %.1f jobs at the full context of %d, batch of %d at most",
             (double)so.kv_bytes / (1 << 20), tensor_dtype_name(kv_dt), (double)so.kv_bytes / (double)full,
             hf->text.max_pos, s->capacity);
    log_info("hired-decoder: model '%s' (%s, text %d layers, width %d, context %d, template %s, weights %s) on %s, %s",
             s->model, hf->kind == HF_MODEL_LLAVA_NEXT ? "llava-next" : "llava-1.5", hf->text.layers, hf->text.hidden,
             hf->text.max_pos, d->cfg.template_name[0] ? d->cfg.template_name : gen_model_default_template(d->model),
             llm_weights_name(llm_weights(gen_model_llm(d->model))), k_device_name(d->dev), k_device_kernels(d->dev));
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

/* gen_cancel_fn: the broker cancelled the job, or its session is over. */
static bool job_cancelled(void *user) {
    stream_t *s = user;
    if (worker_conn_cancelled(s->d->svc.conn, s->job)) s->cancelled = true;
    return s->cancelled;
}

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

/* The job's records vis[0..n_visuals), in order: the checkpoint must be the one this decoder
 * serves. On failure the records made so far are freed. */
static int job_visuals(const dec_t *d, const worker_job_t *job, visual_t *vis, char *err) {
    const wire_msg_t *j = &job->hdr;
    if (j->n_visuals && strcmp(j->fingerprint, d->svc.fingerprint) != 0)
        return hired_errf(err, HIRED_EINVAL,
                          "the features come from checkpoint %s, this decoder serves %s (same model name, "
                          "different checkpoints)",
                          j->fingerprint[0] ? j->fingerprint : "(none)", d->svc.fingerprint);
    for (uint32_t i = 0; i < j->n_visuals; i++) {
        char verr[HIRED_ERR_LEN];
        int rc = (int)i < job->n_payloads ? wire_get_visual(j, i, &job->payloads[i], &vis[i], verr)
                                          : hired_errf(verr, HIRED_EPROTO, "no tensor frame");
        if (rc) {
            while (i--) visual_free(&vis[i]);
            return hired_errf(err, rc, "image %u of %u: %s", i + 1, j->n_visuals, verr);
        }
    }
    return HIRED_OK;
}

/* The job's conversation as template messages: msgs[] and parts[] borrow the header's strings.
 * A prompt is the single-question message (gen_question_message), as `hired run` makes it. */
static void job_messages(const wire_msg_t *j, const gen_params_t *p, tpl_message_t *msgs, tpl_part_t *parts,
                         int *n_msgs) {
    if (j->prompt) {
        msgs[0] = gen_question_message(j->prompt, p, parts);
        *n_msgs = 1;
        return;
    }
    int np = 0;
    for (uint32_t i = 0; i < j->n_messages; i++) {
        const wire_message_t *x = &j->messages[i];
        msgs[i] = (tpl_message_t){wire_role_name(x->role), parts + np, (int)x->n_parts};
        for (uint32_t k = 0; k < x->n_parts; k++)
            parts[np++] = x->parts[k].text ? (tpl_part_t){TPL_PART_TEXT, x->parts[k].text}
                                           : (tpl_part_t){TPL_PART_IMAGE, NULL};
    }
    *n_msgs = (int)j->n_messages;
}

/* svc_daemon_t.serve */
static void serve(void *app, int slot, worker_job_t *job) {
    dec_t *d = app;
    char err[HIRED_ERR_LEN], serr[HIRED_ERR_LEN];
    const wire_msg_t *j = &job->hdr;
    const char *id = j->id;
    visual_t vis[WIRE_MAX_IMAGES];
    memset(vis, 0, sizeof vis);
    tpl_message_t msgs[WIRE_MAX_MESSAGES];
    size_t n_parts = 2; /* a prompt's message: [image, question] */
    for (uint32_t i = 0; i < j->n_messages; i++) n_parts += j->messages[i].n_parts;
    tpl_part_t *parts = mem_calloc(n_parts, sizeof *parts); /* [n_parts]: the messages' parts */
    int n_msgs = 0;
    gen_prompt_t pr;
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

    double t0 = clock_ms();
    int rc = pack_newline_parse(j->params.newline, &p.newline)
                 ? hired_errf(err, HIRED_EINVAL, "unknown newline policy '%.20s' (hf, none)", j->params.newline)
                 : HIRED_OK;
    if (!rc && !parts) rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
    if (!rc) job_messages(j, &p, msgs, parts, &n_msgs);
    if (!rc) rc = job_visuals(d, job, vis, err);
    const int n_vis = rc ? 0 : (int)j->n_visuals;
    int vis_total = 0, vis_kept = 0; /* tokens before and after selection, all images */
    for (int i = 0; i < n_vis; i++) vis_total += visual_total(&vis[i]), vis_kept += vis[i].k;
    double ms_transfer = (double)(clock_now_ms() - job->received_ms); /* arrival -> float32 features */
    if (!rc) rc = gen_prompt_build_chat(d->model, d->ctx[slot], vis, n_vis, msgs, n_msgs, &p, &pr, &st, err);
    for (int i = 0; i < n_vis; i++) visual_free(&vis[i]);
    mem_free(parts);
    if (!rc && worker_conn_cancelled(d->svc.conn, job)) s.cancelled = true;
    if (!rc && !s.cancelled)
        rc = gen_sched_run(d->sched, &pr, &p, emit_token, job_cancelled, &s, NULL, &st, err);
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
        m.usage.visual_kept = (uint32_t)vis_kept;                      /* the broker sets it too */
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
                 st.ms_project, st.ms_prefill, st.ms_decode, clock_ms() - t0);
        atomic_fetch_add(&d->served, 1);
        return;
    }
    log_warn("decode %s refused: %s", id, err);
    if (worker_conn_send_error(d->svc.conn, job, rc, err, serr))
        log_error("hired-decoder: job %s: cannot send ERROR: %s", id, serr);
    atomic_fetch_add(&d->failed, 1);
}

// ---- the daemon ------------------------------------------------------------------------------

/* svc_daemon_t.warmup: one BOS token through the text model, so the first job does not pay the
 * page faults. */
static int warmup(void *app, char *err) {
    dec_t *d = app;
    llm_t *llm = gen_model_llm(d->model);
    const hf_text_config_t *tc = llm_config(llm);
    k_ctx_t *ctx = d->ctx[0];
    k_ctx_reset(ctx);
    kv_cache_t *kv = llm_kv_new(llm, 2, err);
    float *x = k_ctx_alloc(ctx, (size_t)tc->hidden * sizeof(float));      /* [1, hidden] */
    float *logits = k_ctx_alloc(ctx, (size_t)tc->vocab * sizeof(float)); /* [vocab] */
    int rc = kv && x && logits ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "warm-up: out of memory");
    int32_t bos = tc->bos_id >= 0 && tc->bos_id < tc->vocab ? tc->bos_id : 0;
    if (!rc) rc = llm_embed(llm, ctx, &bos, 1, x, err);
    if (!rc) rc = llm_forward(llm, ctx, kv, x, 1, LLM_LOGITS_LAST, logits, err);
    kv_cache_destroy(&kv);
    k_ctx_reset(ctx);
    return rc;
}

/* svc_daemon_t.check: decoder.template names a known template. */
static int check_template(void *values, char *err) {
    const dec_cfg_t *cfg = values;
    if (!cfg->template_name[0]) return HIRED_OK;
    char *out = NULL, terr[HIRED_ERR_LEN];
    int rc = tpl_render(cfg->template_name, "x", &out, terr) ? hired_errf(err, HIRED_EINVAL, "decoder.template: %s", terr)
                                                             : HIRED_OK;
    mem_free(out);
    return rc;
}

static void report(void *app) {
    dec_t *d = app;
    log_info("hired-decoder: served %llu jobs, refused %llu", (unsigned long long)atomic_load(&d->served),
             (unsigned long long)atomic_load(&d->failed));
}

static void unload(void *app) {
    dec_t *d = app;
    gen_sched_destroy(&d->sched);
    for (int i = 0; i < SVC_MAX_THREADS; i++) k_ctx_destroy(&d->ctx[i]);
    gen_model_destroy(&d->model);
    k_device_close(&d->dev);
}

static int capacity(const void *values) { return (int)((const dec_cfg_t *)values)->capacity; }

int main(int argc, char **argv) {
    static dec_t d;
    static const svc_daemon_t worker = {
        .prog = "hired-decoder", .service = "decode",
        .warmup_help = "run one token through the text model before announcing READY",
        .own = k_own_cfg, .n_own = (int)ARRAY_LEN(k_own_cfg), .cfg_offset = offsetof(dec_cfg_t, w),
        .check = check_template, .capacity = capacity, .load = load, .warmup = warmup, .serve = serve,
        .report = report, .unload = unload, .omp_threads = omp_set_num_threads, .probe_device = k_device_probe,
    };
    return svc_main(&worker, &d, &d.cfg, &d.svc, argc, argv);
}
