/* backend.c — the broker's worker side (docs/protocol.md §5 "Fencing" and "Worker trust"):
 *
 *   Fencing. Every JOB carries `attempt`, the job's dispatch number; a worker's RESULT, TOKEN,
 *   DONE or ERROR is acted on only when it comes from the worker holding the job under that
 *   attempt. Anything else (a worker that was declared dead and came back, an attempt that was
 *   given up) only returns its credit. TOKENs of an attempt must arrive in seq order; a DONE is
 *   accepted only when its seq says every TOKEN before it arrived, and a retried decode must
 *   repeat the tokens already delivered (else the job fails: it never ends with a spliced text).
 *   Worker trust. Announced capacity is capped (broker.max_worker_capacity) and earned: a new
 *   worker may hold 2 jobs, one more per finished job, half as many after a failure. A worker
 *   whose attempts fail (timeouts, malformed or inconsistent replies, stalls) quarantine_after
 *   times in a row gets no new jobs for quarantine_ms, and a job avoids the workers that failed
 *   it while its pool has others. An idle worker takes over a job that has made no progress for
 *   migrate_factor times what that idle worker needs (its own moving averages: an encode, the
 *   gap between two tokens) plus max(2 heartbeats, 1 s), so one slow or dripping worker cannot
 *   hold jobs while others sit idle. Workers of one model name must load the
 *   same checkpoint: a READY whose fingerprint differs from the name's is refused by name.
 * Not here: clients (frontend.c), the loop, dispatch and timers (broker.c). */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "log.h"
#include "mem.h"

static const char *const k_service[] = {"encode", "decode"};

static int service_index(const char *s) { return strcmp(s, "decode") == 0 ? 1 : 0; }

/* Exponential moving average (first sample taken as is). */
static void ewma(double *avg, double x) { *avg = *avg > 0 ? 0.8 * *avg + 0.2 * x : (x > 0 ? x : 0.001); }

// ---- losing a job -------------------------------------------------------------------------------

void back_withdraw(broker_t *b, job_t *j, int64_t now) {
    worker_t *w = j->worker;
    if (!w) return;
    broker_send_simple(b->back, w->route, w->route_len, WIRE_CANCEL, j->wid, 0);
    workers_zombify(w, j, now + b->cfg.attempt_timeout_ms);
    j->worker = NULL;
}

static void avoid(job_t *j, const worker_t *w) {
    if (!w) return;
    if (j->navoid == BROKER_AVOID) memmove(j->avoid, j->avoid + 1, sizeof j->avoid[0] * (BROKER_AVOID - 1)), j->navoid--;
    j->avoid[j->navoid++] = w->serial;
}

/* j's worker w failed this attempt: the job avoids it; w takes a strike. */
static void strike(broker_t *b, worker_t *w, job_t *j, const char *why, int64_t now) {
    if (j) avoid(j, w);
    if (workers_strike(w, (int)b->cfg.quarantine_after, b->cfg.quarantine_ms, now)) {
        b->stats.quarantined++;
        log_warn("broker: %s worker for %s quarantined for %lld ms after %lld failed attempts (last: %s)",
                 k_service[w->service], w->model, (long long)b->cfg.quarantine_ms, (long long)b->cfg.quarantine_after,
                 why);
    }
}

void back_requeue(broker_t *b, job_t *j, const char *why, bool count, int64_t now) {
    int st = j->state == JOB_ENCODING || j->state == JOB_QUEUED_ENC ? 0 : 1;
    j->worker = NULL;
    if (!count && j->attempts[st] > 0) j->attempts[st]--;
    if (j->attempts[st] >= b->cfg.max_attempts) {
        char msg[WIRE_MAX_MESSAGE];
        snprintf(msg, sizeof msg, "%s failed %d times (attempts exhausted); last: %s", k_service[st],
                 j->attempts[st], why);
        b->stats.failed++;
        front_fail(b, j, HIRED_EIO, msg, now);
        return;
    }
    log_info("broker: re-queueing job %s for %s: %s", j->wid, k_service[st], why);
    j->state = st == 0 ? JOB_QUEUED_ENC : JOB_QUEUED_DEC;
    jobs_enqueue(&b->jobs, j, st, true, now);
    b->stats.requeued++;
    b->dirty = true;
}

/* A worker's attempt at j failed by its own fault (a bad or inconsistent reply): the worker gets a
 * strike and j is queued again, the attempt counted (back_requeue also clears j->worker). */
static void fail_attempt(broker_t *b, worker_t *w, job_t *j, const char *why, int64_t now) {
    strike(b, w, j, why, now);
    back_requeue(b, j, why, true, now);
}

void back_attempt_failed(broker_t *b, worker_t *w, job_t *j, const char *why, bool count, int64_t now) {
    back_withdraw(b, j, now);
    strike(b, w, j, why, now);
    back_requeue(b, j, why, count, now);
}

void back_worker_lost(broker_t *b, worker_t *w, const char *why, bool count, int64_t now) {
    log_info("broker: %s worker for %s %s (%d jobs held)", k_service[w->service], w->model, why, w->nasg);
    for (int i = 0; i < w->nasg; i++) {
        job_t *j = w->asg[i].job;
        if (!j) continue;
        if (count) avoid(j, w);
        back_requeue(b, j, why, count, now);
    }
    workers_remove(&b->reg, w, now);
    b->dirty = true;
}

// ---- worker messages ----------------------------------------------------------------------------

/* The job a worker's message is about when w holds it under that attempt in `state`; else NULL
 * (a stale or foreign message, counted as fenced when the job exists). */
static job_t *held_job(broker_t *b, worker_t *w, const wire_msg_t *m, job_state_t state) {
    job_t *j = jobs_find_wid(&b->jobs, m->id);
    if (!j) return NULL;
    if (j->worker != w || j->state != state || m->attempt != j->fence) {
        b->stats.fenced++;
        log_debug("broker: %s for job %s attempt %u ignored (current attempt %u)", wire_type_name(m->type), m->id,
                  m->attempt, j->fence);
        return NULL;
    }
    return j;
}

static void on_result(broker_t *b, worker_t *w, wire_msg_t *m, wire_parts_t *p, int64_t now) {
    workers_release(w, m->id, m->attempt);
    b->dirty = true;
    job_t *j = held_job(b, w, m, JOB_ENCODING);
    if (!j) return;
    const char *fp = workers_model_fingerprint(&b->reg, j->req.model, now, b->cfg.model_ttl_ms);
    if (fp && strcmp(fp, m->fingerprint) != 0) {
        fail_attempt(b, w, j, "the encoder's RESULT came from another checkpoint", now);
        return;
    }
    if (m->n_visuals != (uint32_t)j->nimages) { /* one record per image, in order */
        char why[128];
        snprintf(why, sizeof why, "the encoder's RESULT has %u visual records for %d images", m->n_visuals, j->nimages);
        fail_attempt(b, w, j, why, now);
        return;
    }
    workers_success(w);
    ewma(&w->ms_job, (double)(now - j->t_dispatch));
    wire_msg_clear(&j->enc);
    j->enc = *m;
    memset(m, 0, sizeof *m);
    j->enc_bytes = zmq_msg_size(&p->part[1]); /* header + tensors */
    for (int i = 0; i + 2 < p->n; i++) {
        j->enc_bytes += zmq_msg_size(&p->part[2 + i]);
        wire_parts_take(p, 2 + i, &j->tensors[i]);
    }
    j->ntensors = p->n - 2;
    jobs_drop_images(&b->jobs, j); /* encoded: the images are no longer needed */
    jobs_account(&b->jobs, j);
    j->worker = NULL;
    j->state = JOB_QUEUED_DEC;
    jobs_enqueue(&b->jobs, j, 1, false, now);
}

static void on_token(broker_t *b, worker_t *w, wire_msg_t *m, int64_t now) {
    job_t *j = held_job(b, w, m, JOB_DECODING);
    if (!j) return;
    if (m->seq != j->attempt_seq) {
        char why[96];
        snprintf(why, sizeof why, "TOKEN seq %u where %u was due", m->seq, j->attempt_seq);
        back_attempt_failed(b, w, j, why, true, now);
        return;
    }
    /* speed of this worker: dispatch -> first token, then between tokens */
    if (j->attempt_seq == 0) ewma(&w->ms_first, (double)(now - j->t_dispatch));
    else ewma(&w->ms_token, (double)(now - j->t_progress));
    j->attempt_seq++;
    j->t_progress = now;
    j->attempt_deadline = now + b->cfg.attempt_timeout_ms; /* progress */
    if (m->seq < j->ntok) { /* a retried decode repeating what was already delivered */
        if (m->token != j->toks[m->seq].token) {
            char msg[160];
            snprintf(msg, sizeof msg, "decode attempt %u diverged from the %u tokens already delivered (at seq %u)",
                     j->fence, j->ntok, m->seq);
            b->stats.failed++;
            front_fail(b, j, HIRED_EIO, msg, now);
        }
        return;
    }
    if (jobs_log_token(j, m->token, m->text)) {
        b->stats.failed++;
        front_fail(b, j, HIRED_ENOMEM, "broker out of memory", now);
        return;
    }
    jobs_account(&b->jobs, j);
    if ((int64_t)jobs_stream_bytes(j) > b->cfg.max_stream_bytes) {
        char msg[128];
        snprintf(msg, sizeof msg, "the answer passed broker.max_stream_bytes (%lld bytes)",
                 (long long)b->cfg.max_stream_bytes);
        b->stats.failed++;
        front_fail(b, j, HIRED_ERANGE, msg, now);
        return;
    }
    front_pump(b, j, now);
}

static void on_done(broker_t *b, worker_t *w, wire_msg_t *m, int64_t now) {
    workers_release(w, m->id, m->attempt);
    b->dirty = true;
    job_t *j = held_job(b, w, m, JOB_DECODING);
    if (!j) return;
    if (m->seq != j->attempt_seq) { /* TOKENs went missing between the worker and us */
        char why[96];
        snprintf(why, sizeof why, "DONE after %u TOKENs, %u arrived", m->seq, j->attempt_seq);
        fail_attempt(b, w, j, why, now);
        return;
    }
    if (j->attempt_seq < j->ntok) { /* a retry that ended before reaching what was delivered */
        char msg[160];
        snprintf(msg, sizeof msg, "decode attempt %u ended after %u tokens, %u were already delivered", j->fence,
                 j->attempt_seq, j->ntok);
        j->worker = NULL;
        b->stats.failed++;
        front_fail(b, j, HIRED_EIO, msg, now);
        return;
    }
    workers_success(w);
    ewma(&w->ms_job, (double)(now - j->t_dispatch));
    /* The client's DONE: decoder fields, encoder timings, broker queue/total, the full text. */
    for (int s = 0; s < WIRE_STAGE_COUNT; s++)
        if ((j->enc.timings_mask & (1u << s)) && !(m->timings_mask & (1u << s))) {
            m->timings[s] = j->enc.timings[s];
            m->timings_mask |= 1u << s;
        }
    m->timings[WIRE_STAGE_QUEUE] = j->queue_ms;
    m->timings[WIRE_STAGE_TOTAL] = (double)(now - j->t_accept);
    m->timings_mask |= (1u << WIRE_STAGE_QUEUE) | (1u << WIRE_STAGE_TOTAL);
    /* What the encoder put on the wire, as this broker received it (the decoder only sees the
     * JOB the broker re-encoded); K from that RESULT. visual_total comes from the decoder. */
    m->usage.visual_kept = 0;
    for (uint32_t i = 0; i < j->enc.n_visuals; i++) m->usage.visual_kept += j->enc.visuals[i].kept;
    m->usage.result_bytes = j->enc_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)j->enc_bytes;
    size_t n = j->text_len < WIRE_MAX_TEXT ? j->text_len : WIRE_MAX_TEXT;
    mem_free(m->text);
    m->text = mem_alloc(n + 1);
    if (m->text) {
        if (n) memcpy(m->text, j->text, n);
        m->text[n] = 0;
    }
    snprintf(m->id, sizeof m->id, "%s", j->id); /* the client's id, not the internal one */
    m->attempt = 0;
    stats_add_timings(&b->stats, m);
    b->stats.completed++;
    j->worker = NULL;
    jobs_finish(&b->jobs, j, m, now);
    front_pump(b, j, now);
}

static void on_worker_error(broker_t *b, worker_t *w, wire_msg_t *m, int64_t now) {
    if (!m->id[0]) {
        log_warn("broker: worker error: %s", m->message ? m->message : "");
        return;
    }
    workers_release(w, m->id, m->attempt);
    b->dirty = true;
    job_t *j = jobs_find_wid(&b->jobs, m->id);
    job_state_t st = j && j->state == JOB_DECODING ? JOB_DECODING : JOB_ENCODING;
    if (!j || !(j = held_job(b, w, m, st))) return;
    char msg[WIRE_MAX_MESSAGE + 16];
    snprintf(msg, sizeof msg, "%s: %s", st == JOB_ENCODING ? "encoder" : "decoder", m->message ? m->message : "");
    j->worker = NULL;
    b->stats.failed++;
    front_fail(b, j, m->code, msg, now);
}

static void on_ready(broker_t *b, const uint8_t *route, size_t rlen, const wire_msg_t *m, int64_t now) {
    const char *fp = workers_model_fingerprint(&b->reg, m->model, now, b->cfg.model_ttl_ms);
    worker_t *old = workers_find(&b->reg, route, rlen);
    if (fp && strcmp(fp, m->fingerprint) != 0) {
        char msg[WIRE_MAX_MESSAGE];
        snprintf(msg, sizeof msg,
                 "READY refused: model '%s' is served by checkpoint %s and this worker loaded %s (another "
                 "checkpoint under the same name; give it another model.name)",
                 m->model, fp, m->fingerprint);
        log_warn("broker: %s worker %s", m->service, msg);
        b->stats.workers_refused++;
        if (old) back_worker_lost(b, old, "announced another checkpoint", false, now);
        broker_send_error(b->back, route, rlen, "", HIRED_EUNSUPPORTED, msg);
        return;
    }
    int cap = (int)m->capacity;
    if (cap > b->cfg.max_worker_capacity) {
        log_info("broker: %s worker for %s announced capacity %d; capped to broker.max_worker_capacity %lld",
                 m->service, m->model, cap, (long long)b->cfg.max_worker_capacity);
        cap = (int)b->cfg.max_worker_capacity;
    }
    worker_t *w = workers_add(&b->reg, route, rlen, service_index(m->service), m->model, cap, now);
    if (!w || (!fp && workers_set_fingerprint(&b->reg, m->model, m->fingerprint, now))) {
        broker_send_error(b->back, route, rlen, "", HIRED_ENOMEM, "broker out of memory");
        return;
    }
    log_info("broker: %s worker for %s ready, capacity %d, checkpoint %s (%d workers)", m->service, m->model, cap,
             m->fingerprint, b->reg.count);
    b->dirty = true;
}

void back_message(broker_t *b, wire_parts_t *p, int64_t now) {
    wire_msg_t m;
    const uint8_t *route = p->n ? zmq_msg_data(&p->part[0]) : NULL;
    size_t rlen = p->n ? zmq_msg_size(&p->part[0]) : 0;
    worker_t *w = p->n ? workers_find(&b->reg, route, rlen) : NULL;
    if (w) w->last_seen = now;
    int rc = broker_decode(b, b->back, p, &m);
    if (rc) {
        /* A garbled answer about a job this worker holds costs that attempt. */
        job_t *j = (w && m.id[0]) ? jobs_find_wid(&b->jobs, m.id) : NULL;
        if (j && j->worker == w && (m.type == WIRE_RESULT || m.type == WIRE_DONE)) {
            workers_release(w, j->wid, j->fence);
            fail_attempt(b, w, j, "malformed reply from the worker", now);
        }
        wire_msg_clear(&m);
        return;
    }
    if (!w && m.type != WIRE_READY) {
        if (m.type != WIRE_DISCONNECT) broker_send_simple(b->back, route, rlen, WIRE_DISCONNECT, NULL, 0);
        wire_msg_clear(&m);
        return;
    }
    bool fenced = m.type == WIRE_RESULT || m.type == WIRE_TOKEN || m.type == WIRE_DONE || (m.type == WIRE_ERROR && m.id[0]);
    if (fenced && !(m.present & WIRE_F_ATTEMPT)) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s from a worker must carry 'attempt'", wire_type_name(m.type));
        b->stats.bad_messages++;
        broker_send_error(b->back, route, rlen, m.id, HIRED_EPROTO, msg);
        wire_msg_clear(&m);
        return;
    }
    switch (m.type) {
    case WIRE_READY: on_ready(b, route, rlen, &m, now); break;
    case WIRE_HEARTBEAT:
        if (m.present & WIRE_F_LOAD) memcpy(w->load, m.load, sizeof w->load);
        break;
    case WIRE_DISCONNECT: back_worker_lost(b, w, "disconnected", false, now); break;
    case WIRE_RESULT:
        if (w->service != 0) goto wrong;
        on_result(b, w, &m, p, now);
        break;
    case WIRE_TOKEN:
        if (w->service != 1) goto wrong;
        on_token(b, w, &m, now);
        break;
    case WIRE_DONE:
        if (w->service != 1) goto wrong;
        on_done(b, w, &m, now);
        break;
    case WIRE_ERROR: on_worker_error(b, w, &m, now); break;
    default:
    wrong: {
        char msg[128];
        snprintf(msg, sizeof msg, "%s is not a message for a %s worker to send", wire_type_name(m.type),
                 k_service[w->service]);
        b->stats.bad_messages++;
        broker_send_error(b->back, route, rlen, m.id, HIRED_EPROTO, msg);
    }
    }
    wire_msg_clear(&m);
}

// ---- migration ------------------------------------------------------------------------------------

/* How long w would need for j's next step (ms), from its moving averages; 0 = unknown or not
 * comparable. A decode's first token is not compared: prefill time grows with the prompt (and
 * the number of kept visual tokens), so only the gaps between tokens are; a job that never
 * produces a first token is the attempt timeout's to deal with. */
static double expected_ms(const worker_t *w, const job_t *j) {
    if (w->service == 0) return w->ms_job;
    return j->attempt_seq == 0 ? 0 : w->ms_token;
}

void back_migrate(broker_t *b, int64_t now) {
    if (b->cfg.migrate_factor <= 0) return;
    /* scheduling noise on a busy machine is not a stall */
    const double slack = 2.0 * (double)b->cfg.heartbeat_ms > 1000 ? 2.0 * (double)b->cfg.heartbeat_ms : 1000;
    for (worker_t *f = b->reg.head; f; f = f->next) {
        if (!workers_has_credit(f, now) || f->served == 0 || b->jobs.qlen[f->service]) continue;
        /* the most stalled job of f's pool on another worker */
        job_t *victim = NULL;
        double worst = 0;
        for (worker_t *s = b->reg.head; s; s = s->next) {
            if (s == f || s->service != f->service || strcmp(s->model, f->model) != 0) continue;
            for (int i = 0; i < s->nasg; i++) {
                job_t *j = s->asg[i].job;
                double need = j ? expected_ms(f, j) : 0;
                if (!j || need <= 0) continue;
                double stalled = (double)(now - (j->attempt_seq ? j->t_progress : j->t_dispatch));
                if (stalled > (double)b->cfg.migrate_factor * need + slack && stalled - need > worst) {
                    worst = stalled - need;
                    victim = j;
                }
            }
        }
        if (!victim) continue;
        worker_t *s = victim->worker;
        char why[160];
        snprintf(why, sizeof why, "no progress for %.0f ms on a worker where an idle one needs about %.0f ms", worst,
                 expected_ms(f, victim));
        b->stats.migrated++;
        back_attempt_failed(b, s, victim, why, false, now);
    }
}
