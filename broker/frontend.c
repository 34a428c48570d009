/* frontend.c — the broker's client side (docs/protocol.md §5 "Delivery" and "Sessions"):
 *
 *   Sessions. Every client message that acts on a job carries the client's session secret; the
 *   job belongs to the session's owner (its CURVE key when CURVE is on, else the session
 *   itself). Jobs are found by (owner, id), so another client's CANCEL, RESUME, ACK or SUBMIT
 *   of the same id never reaches them, and gets the same answer as an unknown id would.
 *   Replies go to the connection the session last spoke from: a client that reconnects (a new
 *   routing id) keeps its jobs.
 *   Delivery. A job's stream (its TOKENs and the final DONE or ERROR) stays in the broker until
 *   the client ACKs the final message. front_pump hands the connection what it has not yet been
 *   handed; a send that finds the connection full (ZMQ_ROUTER_MANDATORY + high-water mark)
 *   stops there and is retried by the timers, and one that finds no connection waits until the
 *   session speaks again. A RESUME (after a reconnect, a gap in the seq numbers or a long
 *   silence) rewinds the stream to the seq the client asks for, unless everything from that seq
 *   on was handed to the connection the client speaks from now: ZeroMQ loses nothing on one
 *   connection, so only what went to an older connection (a reconnect gives a new routing id)
 *   is sent again. An unacknowledged final that went to an older connection is re-sent every
 *   heartbeat x liveness. A session silent for client_grace_ms is gone: its
 *   unfinished jobs are cancelled (the workers' credit comes back) and its streams dropped.
 *   Admission. BUSY when a queue, the queued image bytes, the bytes the broker holds, or the
 *   client's own bytes or job count would pass their limit; nothing is queued then.
 * Not here: the workers' side (backend.c), the loop and timers (broker.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "log.h"
#include "mem.h"

static const char *const k_service[] = {"encode", "decode"};

// ---- sending ----------------------------------------------------------------------------------

/* Sends m (and payload) to client c. false when it could not: c is then blocked (connection
 * full: retried by the timers) or unreachable (no such connection: until it speaks again). */
static bool to_client(broker_t *b, client_t *c, const wire_msg_t *m, zmq_msg_t *payload) {
    if (!c->reachable || c->blocked) return false;
    char err[HIRED_ERR_LEN];
    int rc = wire_send(b->front, c->route, c->route_len, m, payload, err);
    if (rc == HIRED_OK) return true;
    if (rc == HIRED_ENOTFOUND) {
        c->reachable = false;
        b->stats.unreachable++;
        log_debug("broker: session %.8s has no connection; waiting for it to speak", c->session);
    } else {
        c->blocked = true;
        b->stats.send_retries++;
        if (rc != HIRED_EBUSY) log_warn("broker: send %s to a client failed: %s", wire_type_name(m->type), err);
    }
    return false;
}

void front_pump(broker_t *b, job_t *j, int64_t now) {
    client_t *c = j->client;
    if (!c) return;
    if (!j->req.params.stream) j->sent = j->ntok;
    if (j->sent_gen != c->route_gen) { /* a new connection: what it gets starts here */
        j->sent_gen = c->route_gen;
        j->gen_seq = j->sent;
    }
    while (j->sent < j->ntok) {
        wire_msg_t t;
        wire_msg_init(&t, WIRE_TOKEN);
        strcpy(t.id, j->id);
        t.seq = j->sent;
        t.token = j->toks[j->sent].token;
        char *s = j->text + j->toks[j->sent].off, save = s[j->toks[j->sent].len];
        s[j->toks[j->sent].len] = 0; /* the log is one string: cut this token out for the send */
        t.text = s;
        bool ok = to_client(b, c, &t, NULL);
        s[j->toks[j->sent].len] = save;
        t.text = NULL;
        if (!ok) return;
        j->sent++;
    }
    if (j->state == JOB_FINISHED && !j->final_sent) {
        if (j->final.type == WIRE_DONE) j->final.seq = j->ntok;
        if (!to_client(b, c, &j->final, NULL)) return;
        j->final_sent = true;
        j->final_gen = c->route_gen;
        j->final_sent_at = now;
    }
}

void front_fail(broker_t *b, job_t *j, int code, const char *msg, int64_t now) {
    if (j->worker) back_withdraw(b, j, now);
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    strcpy(e.id, j->id);
    e.code = code;
    if (wire_msg_set_message(&e, msg) && (e.message = mem_alloc(1))) e.message[0] = 0; /* OOM: the code says it */
    log_info("broker: job %s (%s) failed: %s", j->wid, j->id, msg);
    jobs_finish(&b->jobs, j, &e, now);
    wire_msg_clear(&e);
    front_pump(b, j, now);
    b->dirty = true;
}

// ---- sessions ---------------------------------------------------------------------------------

/* The owner and role of the peer that sent hdr: under CURVE the ZAP handler's user id
 * ("client:KEY", "admin:KEY"), else the session secret itself. */
static void peer_owner(zmq_msg_t *hdr, const char *session, char owner[BROKER_OWNER_MAX + 1], bool *admin) {
    const char *uid = zmq_msg_gets(hdr, "User-Id");
    *admin = false;
    if (uid && uid[0]) {
        const char *colon = strchr(uid, ':');
        *admin = colon && !strncmp(uid, "admin:", 6);
        snprintf(owner, BROKER_OWNER_MAX + 1, "key:%s", colon ? colon + 1 : uid);
    } else {
        snprintf(owner, BROKER_OWNER_MAX + 1, "session:%s", session);
    }
}

/* The session of a client message (created on first use), its route and liveness updated.
 * NULL when the message has none or it belongs to another key (an ERROR was sent). */
static client_t *session_of(broker_t *b, wire_parts_t *p, const wire_msg_t *m, int64_t now) {
    const uint8_t *route = zmq_msg_data(&p->part[0]);
    size_t rlen = zmq_msg_size(&p->part[0]);
    if (!m->session[0]) {
        char msg[96];
        snprintf(msg, sizeof msg, "%s: missing field 'session'", wire_type_name(m->type));
        b->stats.bad_messages++;
        broker_send_error(b->front, route, rlen, m->id, HIRED_EPROTO, msg);
        return NULL;
    }
    char owner[BROKER_OWNER_MAX + 1];
    bool admin;
    peer_owner(&p->part[1], m->session, owner, &admin);
    client_t *c = clients_find(&b->clients, m->session);
    if (c && strcmp(c->owner, owner) != 0) {
        broker_send_error(b->front, route, rlen, m->id, HIRED_EINVAL, "this session belongs to another client key");
        return NULL;
    }
    if (!c && !(c = clients_add(&b->clients, m->session, owner, admin))) {
        broker_send_error(b->front, route, rlen, m->id, HIRED_ENOMEM, "broker out of memory");
        return NULL;
    }
    if (c->route_len != rlen || memcmp(c->route, route, rlen) != 0) {
        memcpy(c->route, route, rlen);
        c->route_len = rlen;
        c->route_gen++;
        c->blocked = false;
    }
    c->reachable = true;
    c->last_seen = now;
    return c;
}

/* Whether session c has spoken recently enough to count as attached to its jobs. */
static bool session_live(const broker_t *b, const client_t *c, int64_t now) {
    return c->reachable && now - c->last_seen <= b->cfg.heartbeat_ms * b->cfg.liveness * 2;
}

/* Makes j's stream (from seq on) and final message go out again, unless they were handed to the
 * connection c speaks from now, where they are still on their way. */
static void rewind_to(job_t *j, uint32_t seq) {
    client_t *c = j->client;
    bool same = j->sent_gen == c->route_gen;
    if (!same || seq < j->gen_seq) j->sent = seq < j->sent ? seq : j->sent;
    if (j->final_gen != c->route_gen) j->final_sent = false;
}

/* Gives j to session c of the same owner: always when j's session is c or no longer live; an
 * ERROR to c (false) while another live session of the owner is receiving it. A job that
 * changes session is sent again from the start. */
static bool claim(broker_t *b, job_t *j, client_t *c, int64_t now) {
    if (j->client == c) return true;
    if (j->client && session_live(b, j->client, now)) {
        char msg[160];
        snprintf(msg, sizeof msg, "job '%s' is being delivered to another session of this client", j->id);
        broker_send_error(b->front, c->route, c->route_len, j->id, HIRED_EBUSY, msg);
        return false;
    }
    jobs_move(j, c);
    j->sent = 0;
    j->sent_gen = c->route_gen - 1; /* nothing of it was handed to c */
    j->final_sent = false;
    return true;
}

void front_drop_client(broker_t *b, client_t *c, const char *why, int64_t now) {
    int cancelled = 0, dropped = 0;
    while (c->jobs) {
        job_t *j = c->jobs;
        if (j->state != JOB_FINISHED) {
            if (j->worker) back_withdraw(b, j, now);
            jobs_dequeue(&b->jobs, j, now);
            b->stats.abandoned++;
            cancelled++;
        } else {
            dropped++;
        }
        jobs_remove(&b->jobs, j);
    }
    if (cancelled || dropped)
        log_info("broker: session %.8s %s: %d unfinished jobs cancelled, %d undelivered results dropped", c->session,
                 why, cancelled, dropped);
    clients_remove(&b->clients, c);
    b->dirty = true;
}

// ---- messages -----------------------------------------------------------------------------------

static void send_busy(broker_t *b, client_t *c, const char *id, int service, const char *why) {
    wire_msg_t busy;
    wire_msg_init(&busy, WIRE_BUSY);
    strcpy(busy.id, id);
    strcpy(busy.service, k_service[service]);
    busy.retry_ms = (uint32_t)b->cfg.heartbeat_ms;
    busy.message = (char *)why; /* borrowed for the send */
    to_client(b, c, &busy, NULL);
    busy.message = NULL;
    b->stats.busy++;
}

/* The limit a new job of `image` bytes would pass, or NULL. */
static const char *admission_limit(const broker_t *b, const client_t *c, size_t image, int *service) {
    static char why[160];
    *service = 0;
    for (int st = 0; st < 2; st++)
        if ((int64_t)b->jobs.qlen[st] >= b->cfg.queue_max) {
            *service = st;
            snprintf(why, sizeof why, "%s queue full (broker.queue_max %lld jobs)", k_service[st],
                     (long long)b->cfg.queue_max);
            return why;
        }
    if ((int64_t)(b->jobs.bytes_images + image) > b->cfg.max_queued_image_bytes)
        snprintf(why, sizeof why, "queued images would pass broker.max_queued_image_bytes (%lld)",
                 (long long)b->cfg.max_queued_image_bytes);
    else if ((int64_t)(b->jobs.bytes_total + image) > b->cfg.max_buffered_bytes)
        snprintf(why, sizeof why, "the broker holds broker.max_buffered_bytes (%lld)", (long long)b->cfg.max_buffered_bytes);
    else if ((int64_t)(c->bytes + image) > b->cfg.max_client_bytes)
        snprintf(why, sizeof why, "this client holds broker.max_client_bytes (%lld)", (long long)b->cfg.max_client_bytes);
    else if (c->njobs >= b->cfg.max_client_jobs)
        snprintf(why, sizeof why, "this client holds broker.max_client_jobs (%lld jobs)", (long long)b->cfg.max_client_jobs);
    else
        return NULL;
    return why;
}

static void on_submit(broker_t *b, client_t *c, wire_msg_t *m, wire_parts_t *p, int64_t now) {
    b->stats.submitted++;
    const int nimages = p->n - 2; /* wire_check_payloads matched them to the request's images */
    size_t image_bytes = 0;
    for (int i = 0; i < nimages; i++) image_bytes += zmq_msg_size(&p->part[2 + i]);
    uint64_t hash = jobs_hash_request(m, &p->part[2], nimages);
    job_t *j = jobs_find(&b->jobs, c->owner, m->id);
    if (j) { /* the same job again: attach this session from seq 0 */
        if (hash != j->req_hash) {
            char msg[256];
            snprintf(msg, sizeof msg, "job id '%s' is already in use by a different request", m->id);
            broker_send_error(b->front, c->route, c->route_len, m->id, HIRED_EINVAL, msg);
            return;
        }
        if (!claim(b, j, c, now)) return;
        wire_msg_t a;
        wire_msg_init(&a, WIRE_ACCEPTED);
        strcpy(a.id, j->id);
        a.epoch = b->epoch;
        a.attached = true;
        if (!to_client(b, c, &a, NULL)) return;
        b->stats.attached++;
        rewind_to(j, 0);
        front_pump(b, j, now);
        return;
    }
    bool grace = now - b->started < b->cfg.startup_grace_ms;
    for (int st = nimages ? 0 : 1; st < 2 && !grace; st++) /* a text-only job needs no encoder */
        if (!workers_model_known(&b->reg, st, m->model, now, b->cfg.model_ttl_ms)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown model '%s' (no %s worker serves it)", m->model, k_service[st]);
            broker_send_error(b->front, c->route, c->route_len, m->id, HIRED_ENOTFOUND, msg);
            b->stats.failed++;
            return;
        }
    int service;
    const char *why = admission_limit(b, c, image_bytes, &service);
    if (why) {
        send_busy(b, c, m->id, service, why);
        return;
    }
    j = jobs_add(&b->jobs, c, m->id);
    if (!j) {
        broker_send_error(b->front, c->route, c->route_len, m->id, HIRED_ENOMEM, "broker out of memory");
        return;
    }
    j->req = *m; /* move the header in */
    memset(m, 0, sizeof *m);
    j->req_hash = hash;
    for (int i = 0; i < nimages; i++) wire_parts_take(p, 2 + i, &j->images[i]);
    j->nimages = nimages;
    b->jobs.bytes_images += image_bytes;
    jobs_account(&b->jobs, j);
    j->t_accept = now;
    int64_t dl = j->req.deadline_ms ? j->req.deadline_ms : b->cfg.deadline_ms;
    if (dl > b->cfg.max_deadline_ms) dl = b->cfg.max_deadline_ms;
    j->deadline = now + dl;
    j->state = nimages ? JOB_QUEUED_ENC : JOB_QUEUED_DEC; /* text only: straight to a decoder */
    jobs_enqueue(&b->jobs, j, nimages ? 0 : 1, false, now);
    b->stats.accepted++;
    b->dirty = true;
    wire_msg_t a;
    wire_msg_init(&a, WIRE_ACCEPTED);
    strcpy(a.id, j->id);
    a.epoch = b->epoch;
    to_client(b, c, &a, NULL); /* if it is lost the client resends the SUBMIT: an attach */
}

/* The job (owner, id) of a client message, or NULL after the same ERROR an unknown id gets. */
static job_t *owned_job(broker_t *b, client_t *c, const char *id) {
    job_t *j = jobs_find(&b->jobs, c->owner, id);
    if (!j) {
        char msg[128];
        snprintf(msg, sizeof msg, "unknown job id '%s'", id);
        broker_send_error(b->front, c->route, c->route_len, id, HIRED_ESTALE, msg);
    }
    return j;
}

static void on_resume(broker_t *b, client_t *c, const wire_msg_t *m, int64_t now) {
    job_t *j = owned_job(b, c, m->id);
    if (!j || !claim(b, j, c, now)) return;
    b->stats.resumed++;
    rewind_to(j, m->seq < j->ntok ? m->seq : j->ntok);
    front_pump(b, j, now);
}

static void on_ack(broker_t *b, client_t *c, const wire_msg_t *m) {
    job_t *j = jobs_find(&b->jobs, c->owner, m->id);
    if (!j || j->state != JOB_FINISHED) return; /* already forgotten, or not over: nothing to do */
    b->stats.delivered++;
    jobs_remove(&b->jobs, j);
}

static void on_cancel(broker_t *b, client_t *c, const wire_msg_t *m, int64_t now) {
    job_t *j = owned_job(b, c, m->id);
    if (!j || !claim(b, j, c, now)) return;
    if (j->state == JOB_FINISHED) { /* already over: say again how it ended */
        rewind_to(j, j->ntok);
        front_pump(b, j, now);
        return;
    }
    b->stats.cancelled++;
    front_fail(b, j, HIRED_EINVAL, "cancelled", now);
}

static void on_status(broker_t *b, const uint8_t *route, size_t rlen, const client_t *c, int64_t now) {
    char *json = stats_status_json(b, c, now);
    if (!json) {
        broker_send_error(b->front, route, rlen, "", HIRED_ENOMEM, "broker out of memory");
        return;
    }
    zmq_msg_t payload;
    if (zmq_msg_init_size(&payload, strlen(json)) == 0) {
        memcpy(zmq_msg_data(&payload), json, strlen(json));
        wire_msg_t r;
        wire_msg_init(&r, WIRE_STATUS_REPLY);
        char err[HIRED_ERR_LEN];
        if (wire_send(b->front, route, rlen, &r, &payload, err)) log_debug("broker: STATUS_REPLY not sent: %s", err);
        zmq_msg_close(&payload);
    }
    cJSON_free(json);
}

void front_message(broker_t *b, wire_parts_t *p, int64_t now) {
    wire_msg_t m;
    if (broker_decode(b, b->front, p, &m)) {
        wire_msg_clear(&m);
        return;
    }
    const uint8_t *route = zmq_msg_data(&p->part[0]);
    size_t rlen = zmq_msg_size(&p->part[0]);
    client_t *c = NULL;
    switch (m.type) {
    case WIRE_SUBMIT: case WIRE_RESUME: case WIRE_ACK: case WIRE_CANCEL: case WIRE_BYE:
        c = session_of(b, p, &m, now);
        if (!c) break;
        if (m.type == WIRE_SUBMIT) on_submit(b, c, &m, p, now);
        else if (m.type == WIRE_RESUME) on_resume(b, c, &m, now);
        else if (m.type == WIRE_ACK) on_ack(b, c, &m);
        else if (m.type == WIRE_CANCEL) on_cancel(b, c, &m, now);
        else front_drop_client(b, c, "said goodbye", now);
        break;
    case WIRE_STATUS:
    case WIRE_HEARTBEAT:
        if (m.session[0]) c = session_of(b, p, &m, now);
        if (m.type == WIRE_STATUS) on_status(b, route, rlen, c, now);
        else broker_send_simple(b->front, route, rlen, WIRE_HEARTBEAT, NULL, b->epoch);
        break;
    default: {
        char msg[128];
        snprintf(msg, sizeof msg, "%s is not a client message", wire_type_name(m.type));
        b->stats.bad_messages++;
        broker_send_error(b->front, route, rlen, m.id, HIRED_EPROTO, msg);
    }
    }
    wire_msg_clear(&m);
}

// ---- timers -------------------------------------------------------------------------------------

void front_timers(broker_t *b, int64_t now) {
    const int64_t resend = b->cfg.heartbeat_ms * b->cfg.liveness;
    client_t *cn;
    for (client_t *c = b->clients.all; c; c = cn) {
        cn = c->next;
        if (now - c->last_seen > b->cfg.client_grace_ms) {
            front_drop_client(b, c, "went silent", now);
            continue;
        }
        c->blocked = false; /* try the connection again */
        job_t *jn;
        for (job_t *j = c->jobs; j; j = jn) {
            jn = j->cnext;
            if (j->state == JOB_FINISHED) {
                if (now - j->finished_at > b->cfg.result_ttl_ms) { /* never acknowledged */
                    log_warn("broker: job %s of session %.8s was never acknowledged; dropped", j->id, c->session);
                    jobs_remove(&b->jobs, j);
                    continue;
                }
                if (j->final_sent && j->final_gen != c->route_gen && now - j->final_sent_at > resend)
                    j->final_sent = false; /* it went to a connection the client no longer uses */
            }
            if (j->sent < j->ntok || (j->state == JOB_FINISHED && !j->final_sent)) front_pump(b, j, now);
        }
    }
}
