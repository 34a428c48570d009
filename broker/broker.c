/* broker.c — hired-broker's poll loop: frontend ROUTER (clients), backend ROUTER (workers),
 * credit-based dispatch, heartbeats both ways, the in-flight rules (attempts, attempt timeouts,
 * deadlines, re-queue on worker loss), admission (BUSY), unknown models, idempotent SUBMIT and
 * the result cache. The behaviour is specified in docs/protocol.md §5.
 * Every message from outside is decoded and validated (wire.c) before anything acts on it; a bad
 * one is answered with ERROR and counted, never fatal.
 * Not here: the data structures (jobs.c, workers.c), JSON (stats.c), configuration (main.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "log.h"
#include "mem.h"
#include "proc.h"

static const char *const k_service[] = {"encode", "decode"};

static int service_index(const char *s) { return strcmp(s, "decode") == 0 ? 1 : 0; }

// ---- sending ----------------------------------------------------------------------------------

static void to_client(broker_t *b, const uint8_t *route, size_t len, const wire_msg_t *m, zmq_msg_t *payload) {
    char err[HIRED_ERR_LEN];
    int rc = wire_send(b->front, route, len, m, payload, err);
    if (rc) log_warn("broker: dropping %s to a client: %s", wire_type_name(m->type), err);
}

/* Sends m to every client connection attached to job j. */
static void to_job_clients(broker_t *b, const job_t *j, const wire_msg_t *m) {
    for (int i = 0; i < j->nroutes; i++) to_client(b, j->route[i], j->route_len[i], m, NULL);
}

/* Attaches a client connection to j (once; the oldest of BROKER_JOB_ROUTES drops out). */
static void job_add_route(job_t *j, const uint8_t *route, size_t len) {
    for (int i = 0; i < j->nroutes; i++)
        if (j->route_len[i] == len && memcmp(j->route[i], route, len) == 0) return;
    if (j->nroutes == BROKER_JOB_ROUTES) {
        memmove(j->route[0], j->route[1], sizeof j->route[0] * (BROKER_JOB_ROUTES - 1));
        memmove(&j->route_len[0], &j->route_len[1], sizeof j->route_len[0] * (BROKER_JOB_ROUTES - 1));
        j->nroutes--;
    }
    memcpy(j->route[j->nroutes], route, len);
    j->route_len[j->nroutes++] = len;
}

/* ERROR to a peer on `sock` about job id (may be ""). */
static void send_error(broker_t *b, void *sock, const uint8_t *route, size_t len, const char *id, int code,
                       const char *msg) {
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    snprintf(e.id, sizeof e.id, "%s", id ? id : "");
    e.code = code;
    if (wire_msg_set_message(&e, msg) == 0) {
        char err[HIRED_ERR_LEN];
        if (wire_send(sock, route, len, &e, NULL, err)) log_warn("broker: dropping ERROR: %s", err);
    }
    wire_msg_clear(&e);
    (void)b;
}

static void send_simple(void *sock, const uint8_t *route, size_t len, wire_type_t t, const char *id,
                        uint64_t epoch) {
    wire_msg_t m;
    wire_msg_init(&m, t);
    snprintf(m.id, sizeof m.id, "%s", id ? id : "");
    m.epoch = epoch;
    char err[HIRED_ERR_LEN];
    if (wire_send(sock, route, len, &m, NULL, err)) log_debug("broker: dropping %s: %s", wire_type_name(t), err);
}

// ---- job lifecycle ----------------------------------------------------------------------------

/* Ends a job with ERROR (sent to its client) and keeps the ERROR in the cache. */
static void job_fail(broker_t *b, job_t *j, int code, const char *msg, int64_t now) {
    if (j->worker) {
        send_simple(b->back, j->worker->route, j->worker->route_len, WIRE_CANCEL, j->id, 0);
        workers_zombify(j->worker, j, now + b->cfg.attempt_timeout_ms);
        j->worker = NULL;
    }
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    strcpy(e.id, j->id);
    e.code = code;
    wire_msg_set_message(&e, msg);
    if (!e.message) e.message = NULL;
    to_job_clients(b, j, &e);
    b->stats.failed++;
    if (code == HIRED_ETIMEOUT) b->stats.timeouts++;
    log_info("broker: job %s failed: %s", j->id, msg);
    jobs_finish(&b->jobs, j, &e, now + b->cfg.result_ttl_ms, now);
    b->dirty = true;
}

/* The holder of j lost it (died, went silent, timed out, left): retry or give up. */
static void job_requeue(broker_t *b, job_t *j, const char *why, bool count_attempt, int64_t now) {
    int st = j->state == JOB_ENCODING ? 0 : 1;
    j->worker = NULL;
    if (!count_attempt && j->attempts[st] > 0) j->attempts[st]--;
    if (j->attempts[st] >= b->cfg.max_attempts) {
        char msg[WIRE_MAX_MESSAGE];
        snprintf(msg, sizeof msg, "%s failed %d times (attempts exhausted); last: %s", k_service[st],
                 j->attempts[st], why);
        job_fail(b, j, HIRED_EIO, msg, now);
        return;
    }
    log_info("broker: re-queueing job %s for %s: %s", j->id, k_service[st], why);
    j->state = st == 0 ? JOB_QUEUED_ENC : JOB_QUEUED_DEC;
    jobs_enqueue(&b->jobs, j, st, true, now);
    b->stats.requeued++;
    b->dirty = true;
}

/* Worker w is gone: every live job it held goes back to a queue. */
static void worker_lost(broker_t *b, worker_t *w, const char *why, bool count_attempt, int64_t now) {
    log_info("broker: %s worker for %s %s (%d jobs held)", k_service[w->service], w->model, why, w->nasg);
    for (int i = 0; i < w->nasg; i++)
        if (w->asg[i].job) job_requeue(b, w->asg[i].job, why, count_attempt, now);
    workers_remove(&b->reg, w, now);
    b->dirty = true;
}

/* Replays to one client connection what an attached / cached job has produced so far: every
 * TOKEN (if streaming) and the final message when finished. */
static void replay(broker_t *b, job_t *j, const uint8_t *route, size_t rlen) {
    if (j->req.params.stream) {
        for (uint32_t i = 0; i < j->ntok; i++) {
            wire_msg_t t;
            wire_msg_init(&t, WIRE_TOKEN);
            strcpy(t.id, j->id);
            t.seq = i;
            t.token = j->toks[i].token;
            t.text = j->text + j->toks[i].off;
            char save = t.text[j->toks[i].len];
            t.text[j->toks[i].len] = 0;
            to_client(b, route, rlen, &t, NULL);
            t.text[j->toks[i].len] = save;
            t.text = NULL;
            wire_msg_clear(&t);
        }
    }
    if (j->state == JOB_FINISHED) to_client(b, route, rlen, &j->final, NULL);
}

// ---- frontend: clients --------------------------------------------------------------------------

static void on_submit(broker_t *b, const uint8_t *route, size_t rlen, wire_msg_t *m, wire_parts_t *p, int64_t now) {
    b->stats.submitted++;
    job_t *j = jobs_find(&b->jobs, m->id);
    if (j) {
        if (jobs_hash_request(m) != j->req_hash) {
            char msg[256];
            snprintf(msg, sizeof msg, "job id '%s' is already in use by a different request", m->id);
            send_error(b, b->front, route, rlen, m->id, HIRED_EINVAL, msg);
            return;
        }
        if (j->state != JOB_FINISHED) job_add_route(j, route, rlen);
        wire_msg_t a;
        wire_msg_init(&a, WIRE_ACCEPTED);
        strcpy(a.id, j->id);
        a.epoch = b->epoch;
        a.attached = true;
        to_client(b, route, rlen, &a, NULL);
        if (j->state == JOB_FINISHED) b->stats.cache_hits++;
        else b->stats.attached++;
        replay(b, j, route, rlen);
        return;
    }
    bool grace = now - b->started < b->cfg.startup_grace_ms;
    for (int st = 0; st < 2 && !grace; st++)
        if (!workers_model_known(&b->reg, st, m->model, now, b->cfg.model_ttl_ms)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown model '%s' (no %s worker serves it)", m->model, k_service[st]);
            send_error(b, b->front, route, rlen, m->id, HIRED_ENOTFOUND, msg);
            b->stats.failed++;
            return;
        }
    for (int st = 0; st < 2; st++)
        if ((int64_t)b->jobs.qlen[st] >= b->cfg.queue_max) {
            wire_msg_t busy;
            wire_msg_init(&busy, WIRE_BUSY);
            strcpy(busy.id, m->id);
            strcpy(busy.service, k_service[st]);
            busy.retry_ms = (uint32_t)b->cfg.heartbeat_ms;
            to_client(b, route, rlen, &busy, NULL);
            b->stats.busy++;
            return;
        }
    j = jobs_add(&b->jobs, m->id);
    if (!j) {
        send_error(b, b->front, route, rlen, m->id, HIRED_ENOMEM, "broker out of memory");
        return;
    }
    j->req = *m; /* move the header in */
    memset(m, 0, sizeof *m);
    j->req_hash = jobs_hash_request(&j->req);
    wire_parts_take(p, 2, &j->image);
    j->has_image = true;
    job_add_route(j, route, rlen);
    j->t_accept = now;
    int64_t dl = j->req.deadline_ms ? j->req.deadline_ms : b->cfg.deadline_ms;
    if (dl > b->cfg.max_deadline_ms) dl = b->cfg.max_deadline_ms;
    j->deadline = now + dl;
    j->state = JOB_QUEUED_ENC;
    jobs_enqueue(&b->jobs, j, 0, false, now);
    b->stats.accepted++;
    b->dirty = true;
    send_simple(b->front, route, rlen, WIRE_ACCEPTED, j->id, b->epoch);
}

static void on_cancel(broker_t *b, const uint8_t *route, size_t rlen, const wire_msg_t *m, int64_t now) {
    job_t *j = jobs_find(&b->jobs, m->id);
    if (!j) {
        send_error(b, b->front, route, rlen, m->id, HIRED_ENOTFOUND, "unknown job id");
        return;
    }
    if (j->state == JOB_FINISHED) {
        to_client(b, route, rlen, &j->final, NULL); /* already over: say how it ended */
        return;
    }
    job_add_route(j, route, rlen);
    b->stats.cancelled++;
    b->stats.failed--; /* job_fail counts it; a cancel is not a failure */
    job_fail(b, j, HIRED_EINVAL, "cancelled", now);
}

static void on_status(broker_t *b, const uint8_t *route, size_t rlen, int64_t now) {
    char *json = stats_status_json(b, now);
    if (!json) {
        send_error(b, b->front, route, rlen, "", HIRED_ENOMEM, "broker out of memory");
        return;
    }
    zmq_msg_t payload;
    if (zmq_msg_init_size(&payload, strlen(json)) == 0) {
        memcpy(zmq_msg_data(&payload), json, strlen(json));
        wire_msg_t r;
        wire_msg_init(&r, WIRE_STATUS_REPLY);
        to_client(b, route, rlen, &r, &payload);
        zmq_msg_close(&payload);
    }
    cJSON_free(json);
}

/* Decodes parts [route][header][payload...] from either socket. 0, or an error already sent. */
static int decode_parts(broker_t *b, void *sock, wire_parts_t *p, wire_msg_t *m) {
    char err[HIRED_ERR_LEN];
    wire_msg_init(m, WIRE_NONE);
    if (p->n < 2) {
        b->stats.bad_messages++;
        return HIRED_EPROTO; /* just a routing id: nothing to answer */
    }
    const uint8_t *route = zmq_msg_data(&p->part[0]);
    size_t rlen = zmq_msg_size(&p->part[0]);
    int rc;
    if (p->truncated) {
        rc = hired_errf(err, HIRED_EPROTO, "message has more than %d frames", WIRE_MAX_PARTS - 1);
    } else {
        rc = wire_decode(zmq_msg_data(&p->part[1]), zmq_msg_size(&p->part[1]), &b->lim, m, err);
        if (rc == 0) {
            size_t sizes[WIRE_MAX_PAYLOADS];
            int n = p->n - 2;
            for (int i = 0; i < n; i++) sizes[i] = zmq_msg_size(&p->part[2 + i]);
            rc = wire_check_payloads(m, n, sizes, &b->lim, err);
        }
    }
    if (rc) {
        b->stats.bad_messages++;
        log_info("broker: refused a message: %s", err);
        send_error(b, sock, route, rlen, m->id, rc, err);
    }
    return rc;
}

static void on_frontend(broker_t *b, wire_parts_t *p, int64_t now) {
    wire_msg_t m;
    if (decode_parts(b, b->front, p, &m) == 0) {
        const uint8_t *route = zmq_msg_data(&p->part[0]);
        size_t rlen = zmq_msg_size(&p->part[0]);
        switch (m.type) {
        case WIRE_SUBMIT: on_submit(b, route, rlen, &m, p, now); break;
        case WIRE_CANCEL: on_cancel(b, route, rlen, &m, now); break;
        case WIRE_STATUS: on_status(b, route, rlen, now); break;
        case WIRE_HEARTBEAT: send_simple(b->front, route, rlen, WIRE_HEARTBEAT, NULL, b->epoch); break;
        default: {
            char msg[128];
            snprintf(msg, sizeof msg, "%s is not a client message", wire_type_name(m.type));
            b->stats.bad_messages++;
            send_error(b, b->front, route, rlen, m.id, HIRED_EPROTO, msg);
        }
        }
    }
    wire_msg_clear(&m);
}

// ---- backend: workers ---------------------------------------------------------------------------

/* The job a worker's message is about, if that worker holds it live; else NULL (stale). */
static job_t *held_job(broker_t *b, worker_t *w, const char *id, job_state_t state) {
    job_t *j = jobs_find(&b->jobs, id);
    return (j && j->worker == w && j->state == state) ? j : NULL;
}

static void on_result(broker_t *b, worker_t *w, wire_msg_t *m, wire_parts_t *p, int64_t now) {
    job_t *j = held_job(b, w, m->id, JOB_ENCODING);
    workers_release(w, m->id);
    b->dirty = true;
    if (!j) return;
    wire_msg_clear(&j->enc);
    j->enc = *m;
    memset(m, 0, sizeof *m);
    j->enc_bytes = zmq_msg_size(&p->part[1]) + zmq_msg_size(&p->part[2]); /* header + tensor */
    wire_parts_take(p, 2, &j->tensor);
    j->has_tensor = true;
    zmq_msg_close(&j->image); /* encoded: the image is no longer needed */
    zmq_msg_init(&j->image);
    j->has_image = false;
    j->worker = NULL;
    j->state = JOB_QUEUED_DEC;
    jobs_enqueue(&b->jobs, j, 1, false, now);
}

static void on_token(broker_t *b, worker_t *w, wire_msg_t *m, int64_t now) {
    job_t *j = held_job(b, w, m->id, JOB_DECODING);
    if (!j) return;
    j->attempt_deadline = now + b->cfg.attempt_timeout_ms; /* progress */
    if (m->seq < j->ntok) return; /* a retried decode repeating what was already relayed */
    if (m->seq > j->ntok) {
        log_warn("broker: job %s: token seq %u after %u, dropped", j->id, m->seq, j->ntok);
        b->stats.bad_messages++;
        return;
    }
    if (jobs_log_token(j, m->token, m->text)) {
        job_fail(b, j, HIRED_ENOMEM, "broker out of memory", now);
        return;
    }
    if (j->req.params.stream) to_job_clients(b, j, m);
}

static void on_done(broker_t *b, worker_t *w, wire_msg_t *m, int64_t now) {
    job_t *j = held_job(b, w, m->id, JOB_DECODING);
    workers_release(w, m->id);
    b->dirty = true;
    if (!j) return;
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
    m->usage.visual_kept = j->enc.kept;
    m->usage.result_bytes = j->enc_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)j->enc_bytes;
    size_t n = j->text_len < WIRE_MAX_TEXT ? j->text_len : WIRE_MAX_TEXT;
    mem_free(m->text);
    m->text = mem_alloc(n + 1);
    if (m->text) {
        if (n) memcpy(m->text, j->text, n);
        m->text[n] = 0;
    }
    to_job_clients(b, j, m);
    stats_add_timings(&b->stats, m);
    b->stats.completed++;
    j->worker = NULL;
    jobs_finish(&b->jobs, j, m, now + b->cfg.result_ttl_ms, now);
}

static void on_worker_error(broker_t *b, worker_t *w, wire_msg_t *m, int64_t now) {
    if (!m->id[0]) {
        log_warn("broker: worker error: %s", m->message ? m->message : "");
        return;
    }
    job_t *j = jobs_find(&b->jobs, m->id);
    bool live = j && j->worker == w && (j->state == JOB_ENCODING || j->state == JOB_DECODING);
    workers_release(w, m->id);
    b->dirty = true;
    if (!live) return;
    char msg[WIRE_MAX_MESSAGE + 16];
    snprintf(msg, sizeof msg, "%s: %s", j->state == JOB_ENCODING ? "encoder" : "decoder", m->message ? m->message : "");
    j->worker = NULL;
    job_fail(b, j, m->code, msg, now);
}

static void on_ready(broker_t *b, const uint8_t *route, size_t rlen, const wire_msg_t *m, int64_t now) {
    worker_t *w = workers_add(&b->reg, route, rlen, service_index(m->service), m->model, (int)m->capacity, now);
    if (!w) {
        send_error(b, b->back, route, rlen, "", HIRED_ENOMEM, "broker out of memory");
        return;
    }
    log_info("broker: %s worker for %s ready, capacity %u (%d workers)", m->service, m->model, m->capacity,
             b->reg.count);
    b->dirty = true;
}

static void on_backend(broker_t *b, wire_parts_t *p, int64_t now) {
    wire_msg_t m;
    const uint8_t *route = p->n ? zmq_msg_data(&p->part[0]) : NULL;
    size_t rlen = p->n ? zmq_msg_size(&p->part[0]) : 0;
    worker_t *w = p->n ? workers_find(&b->reg, route, rlen) : NULL;
    if (w) w->last_seen = now;
    int rc = decode_parts(b, b->back, p, &m);
    if (rc) {
        /* A garbled answer about a job this worker holds costs that job an attempt. */
        job_t *j = (w && m.id[0]) ? jobs_find(&b->jobs, m.id) : NULL;
        if (j && j->worker == w && (m.type == WIRE_RESULT || m.type == WIRE_DONE)) {
            workers_release(w, j->id);
            job_requeue(b, j, "malformed reply from worker", true, now);
        }
        wire_msg_clear(&m);
        return;
    }
    if (!w && m.type != WIRE_READY) {
        if (m.type != WIRE_DISCONNECT) send_simple(b->back, route, rlen, WIRE_DISCONNECT, NULL, 0);
        wire_msg_clear(&m);
        return;
    }
    switch (m.type) {
    case WIRE_READY: on_ready(b, route, rlen, &m, now); break;
    case WIRE_HEARTBEAT: break;
    case WIRE_DISCONNECT: worker_lost(b, w, "disconnected", false, now); break;
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
        send_error(b, b->back, route, rlen, m.id, HIRED_EPROTO, msg);
    }
    }
    wire_msg_clear(&m);
}

// ---- dispatch ---------------------------------------------------------------------------------

static int send_job(broker_t *b, worker_t *w, job_t *j, int st, int64_t now) {
    wire_msg_t m;
    wire_msg_init(&m, WIRE_JOB);
    strcpy(m.id, j->id);
    strcpy(m.service, k_service[st]);
    strcpy(m.model, j->req.model);
    m.prompt = j->req.prompt; /* borrowed for the encode below */
    m.params = j->req.params;
    m.attempt = (uint32_t)j->attempts[st] + 1;
    int64_t left = j->deadline - now;
    m.deadline_ms = left > 0 ? (uint32_t)left : 1;
    if (st == 1) {
        m.kept = j->enc.kept, m.dim = j->enc.dim, m.dtype = j->enc.dtype;
        memcpy(m.grid, j->enc.grid, sizeof m.grid);
        memcpy(m.image_size, j->enc.image_size, sizeof m.image_size);
        m.positions = j->enc.positions;
        m.meta = j->enc.meta, m.meta_len = j->enc.meta_len;
    }
    zmq_msg_t payload;
    zmq_msg_init(&payload);
    zmq_msg_copy(&payload, st == 0 ? &j->image : &j->tensor); /* shares the buffer */
    char err[HIRED_ERR_LEN];
    int rc = wire_send(b->back, w->route, w->route_len, &m, &payload, err);
    zmq_msg_close(&payload);
    m.prompt = NULL, m.positions = NULL, m.meta = NULL; /* borrowed */
    wire_msg_clear(&m);
    if (rc) log_warn("broker: could not send job %s: %s", j->id, err);
    return rc;
}

static void dispatch(broker_t *b, int64_t now) {
    b->dirty = false;
    for (int st = 0; st < 2; st++) {
        job_t *next;
        for (job_t *j = b->jobs.qhead[st]; j; j = next) {
            next = j->qnext;
            worker_t *w = workers_pick(&b->reg, st, j->req.model);
            if (!w || send_job(b, w, j, st, now)) continue;
            jobs_dequeue(&b->jobs, j, now);
            workers_assign(w, j);
            j->worker = w;
            j->attempts[st]++;
            j->state = st == 0 ? JOB_ENCODING : JOB_DECODING;
            j->attempt_deadline = now + b->cfg.attempt_timeout_ms;
        }
    }
}

// ---- timers -----------------------------------------------------------------------------------

static void timers(broker_t *b, int64_t now) {
    /* Heartbeats to workers, and workers that stopped talking. */
    if (now >= b->next_heartbeat) {
        b->next_heartbeat = now + b->cfg.heartbeat_ms;
        for (worker_t *w = b->reg.head; w; w = w->next)
            send_simple(b->back, w->route, w->route_len, WIRE_HEARTBEAT, NULL, b->epoch);
    }
    int64_t dead_after = b->cfg.heartbeat_ms * b->cfg.liveness;
    worker_t *wn;
    for (worker_t *w = b->reg.head; w; w = wn) {
        wn = w->next;
        if (now - w->last_seen > dead_after) {
            b->stats.workers_lost++;
            worker_lost(b, w, "silent (heartbeat expired)", true, now);
            continue;
        }
        for (int i = 0; i < w->nasg; i++)
            if (!w->asg[i].job && now > w->asg[i].zombie_expires) {
                log_warn("broker: worker never answered cancelled job %s; credit returned", w->asg[i].id);
                w->asg[i--] = w->asg[--w->nasg];
                b->dirty = true;
            }
    }
    workers_touch_models(&b->reg, now);
    bool grace = now - b->started < b->cfg.startup_grace_ms;
    job_t *jn;
    for (job_t *j = b->jobs.all; j; j = jn) {
        jn = j->next;
        if (j->state == JOB_FINISHED) {
            if (now > j->expires) jobs_remove(&b->jobs, j);
            continue;
        }
        if (now > j->deadline) {
            char msg[128];
            snprintf(msg, sizeof msg, "deadline of %lld ms passed (%s)", (long long)(j->deadline - j->t_accept),
                     jobs_state_name(j->state));
            job_fail(b, j, HIRED_ETIMEOUT, msg, now);
            continue;
        }
        if ((j->state == JOB_ENCODING || j->state == JOB_DECODING) && now > j->attempt_deadline) {
            worker_t *w = j->worker;
            send_simple(b->back, w->route, w->route_len, WIRE_CANCEL, j->id, 0);
            workers_zombify(w, j, now + b->cfg.attempt_timeout_ms);
            job_requeue(b, j, "no progress within the attempt timeout", true, now);
            continue;
        }
        if (!grace && j->queue >= 0 &&
            !workers_model_known(&b->reg, j->queue, j->req.model, now, b->cfg.model_ttl_ms)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown model '%s' (no %s worker serves it)", j->req.model,
                     k_service[j->queue]);
            job_fail(b, j, HIRED_ENOTFOUND, msg, now);
        }
    }
}

// ---- open / run / close -------------------------------------------------------------------------

static void *open_router(broker_t *b, const char *ep, char *bound, int sndhwm, char *err) {
    void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
    char cerr[HIRED_ERR_LEN] = "";
    if (!s || wire_sock_setup(s, &b->lim) || zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) ||
        curve_apply_server(s, &b->curve, cerr) || zmq_bind(s, ep) != 0) {
        if (cerr[0]) hired_errf(err, HIRED_EIO, "cannot bind %s: %s", ep, cerr);
        else hired_errf(err, HIRED_EIO, "cannot bind %s: %s", ep, zmq_strerror(errno));
        if (s) zmq_close(s);
        return NULL;
    }
    size_t n = 255;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &n) != 0) snprintf(bound, 256, "%s", ep);
    return s;
}

int broker_open(broker_t *b, const broker_cfg_t *cfg, char *err) {
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    if (b->cfg.startup_grace_ms < 0) b->cfg.startup_grace_ms = 3 * b->cfg.heartbeat_ms * b->cfg.liveness;
    b->lim = (wire_limits_t){0, 0, (size_t)cfg->max_image_bytes, (size_t)cfg->max_prompt_bytes};
    if (getrandom(&b->epoch, sizeof b->epoch, 0) != sizeof b->epoch || b->epoch == 0)
        b->epoch = (uint64_t)wire_now_ms() | 1;
    b->started = wire_now_ms();
    if (jobs_init(&b->jobs)) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    b->ctx = zmq_ctx_new();
    if (!b->ctx) return hired_errf(err, HIRED_EIO, "zmq_ctx_new failed");
    /* CURVE: the ZAP handler must answer in this context before any server socket binds */
    b->curve = (curve_cfg_t){.server_cert = cfg->curve_server_cert, .authorized_keys = cfg->curve_authorized_keys};
    int rc = curve_check(&b->curve, err);
    if (rc) return rc;
    if (curve_server_enabled(&b->curve) && !(b->zap = curve_auth_start(b->ctx, &b->curve, err))) return HIRED_EIO;
    /* A ROUTER drops what a peer's pipe cannot take. Clients read token streams at their own
     * pace, so their pipes get room for whole streams; worker pipes carry at most `capacity`
     * jobs plus heartbeats. */
    b->front = open_router(b, cfg->frontend, b->front_ep, 100000, err);
    if (!b->front) return HIRED_EIO;
    b->back = open_router(b, cfg->backend, b->back_ep, 1000, err);
    if (!b->back) return HIRED_EIO;
    if (cfg->ports_file && cfg->ports_file[0]) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", cfg->ports_file);
        FILE *f = fopen(tmp, "w");
        if (!f) return hired_errf(err, HIRED_EIO, "cannot write %s", tmp);
        fprintf(f, "frontend=%s\nbackend=%s\n", b->front_ep, b->back_ep);
        fclose(f);
        if (rename(tmp, cfg->ports_file) != 0) return hired_errf(err, HIRED_EIO, "cannot write %s", cfg->ports_file);
    }
    log_info("broker: clients on %s, workers on %s, epoch %llu%s", b->front_ep, b->back_ep,
             (unsigned long long)b->epoch, b->zap ? ", CURVE on" : "");
    return HIRED_OK;
}

int broker_run(broker_t *b) {
    const int64_t tick = 20; /* timer granularity, ms; far below any watchdog interval */
    proc_watchdog_t wd;
    proc_watchdog_init(&wd);
    while (!proc_stop_requested()) {
        int64_t now = wire_now_ms();
        proc_watchdog_tick(&wd, now); /* this loop's liveness is what systemd watches */
        if (now >= b->next_timers) {
            timers(b, now);
            b->next_timers = now + tick;
        }
        if (b->dirty) dispatch(b, now);
        zmq_pollitem_t items[2] = {{b->front, 0, ZMQ_POLLIN, 0}, {b->back, 0, ZMQ_POLLIN, 0}};
        long timeout = (long)(b->next_timers - wire_now_ms());
        if (timeout < 0) timeout = 0;
        int rc = zmq_poll(items, 2, timeout);
        if (rc < 0) {
            if (errno == EINTR) continue;
            log_error("broker: zmq_poll: %s", zmq_strerror(errno));
            return HIRED_EIO;
        }
        /* Workers first (results free credit), then clients; bounded batches keep timers fair. */
        for (int k = 0; k < 2; k++) {
            int idx = 1 - k;
            if (!(items[idx].revents & ZMQ_POLLIN)) continue;
            for (int i = 0; i < 256; i++) {
                wire_parts_t p;
                if (wire_recv(idx ? b->back : b->front, &p, ZMQ_DONTWAIT)) break;
                now = wire_now_ms();
                if (idx) on_backend(b, &p, now);
                else on_frontend(b, &p, now);
                wire_parts_close(&p);
                if (b->dirty) dispatch(b, now);
            }
        }
    }
    /* Tell workers to re-announce to whoever serves next (a restarted broker). */
    for (worker_t *w = b->reg.head; w; w = w->next)
        send_simple(b->back, w->route, w->route_len, WIRE_DISCONNECT, NULL, 0);
    return HIRED_OK;
}

void broker_close(broker_t *b) {
    if (b->front) zmq_close(b->front);
    if (b->back) zmq_close(b->back);
    curve_auth_stop(&b->zap); /* its socket lives in ctx: before the context ends */
    if (b->ctx) zmq_ctx_term(b->ctx);
    b->front = b->back = b->ctx = NULL;
    jobs_free(&b->jobs);
    workers_free(&b->reg);
}
