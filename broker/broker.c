/* broker.c — hired-broker's poll loop: the frontend ROUTER (clients, frontend.c) and backend
 * ROUTER (workers, backend.c), credit-based dispatch with the attempt fence, heartbeats to
 * workers, and the timers: dead workers, attempt timeouts, deadlines, unknown models, client
 * sessions and delivery retries (front_timers), migration of stalled work (back_migrate), and
 * giving freed heap back to the system once a backlog has drained. The behaviour is specified in
 * docs/protocol.md §5. Every message from outside is decoded and validated (wire.c) before
 * anything acts on it; a bad one is answered with ERROR and counted, never fatal.
 * Not here: the data structures (jobs.c, clients.c, workers.c), JSON (stats.c), configuration
 * (main.c). */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "broker.h"
#include "clock.h"
#include "log.h"
#include "mem.h"
#include "proc.h"

static const char *const k_service[] = {"encode", "decode"};

// ---- small senders --------------------------------------------------------------------------------

void broker_send_error(void *sock, const uint8_t *route, size_t len, const char *id, int code, const char *msg) {
    wire_msg_t e;
    wire_msg_init(&e, WIRE_ERROR);
    snprintf(e.id, sizeof e.id, "%s", id ? id : "");
    e.code = code;
    if (wire_msg_set_message(&e, msg) == 0) {
        char err[HIRED_ERR_LEN];
        if (wire_send(sock, route, len, &e, NULL, err)) log_debug("broker: ERROR not sent: %s", err);
    }
    wire_msg_clear(&e);
}

void broker_send_simple(void *sock, const uint8_t *route, size_t len, wire_type_t t, const char *id, uint64_t epoch) {
    wire_msg_t m;
    wire_msg_init(&m, t);
    snprintf(m.id, sizeof m.id, "%s", id ? id : "");
    m.epoch = epoch;
    char err[HIRED_ERR_LEN];
    if (wire_send(sock, route, len, &m, NULL, err)) log_debug("broker: %s not sent: %s", wire_type_name(t), err);
}

int broker_decode(broker_t *b, void *sock, wire_parts_t *p, wire_msg_t *m) {
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
        broker_send_error(sock, route, rlen, m->id, rc, err);
    }
    return rc;
}

// ---- dispatch ---------------------------------------------------------------------------------

static int send_job(broker_t *b, worker_t *w, job_t *j, int st, int64_t now) {
    wire_msg_t m;
    wire_msg_init(&m, WIRE_JOB);
    strcpy(m.id, j->wid);
    strcpy(m.service, k_service[st]);
    strcpy(m.model, j->req.model);
    m.params = j->req.params;
    m.attempt = j->fence;
    int64_t left = j->deadline - now;
    m.deadline_ms = left > 0 ? (uint32_t)left : 1;
    if (st == 1) { /* the conversation and the encoder's records (borrowed for the encode below) */
        m.prompt = j->req.prompt;
        m.messages = j->req.messages, m.n_messages = j->req.n_messages;
        m.visuals = j->enc.visuals, m.n_visuals = j->enc.n_visuals;
        memcpy(m.fingerprint, j->enc.fingerprint, sizeof m.fingerprint);
    }
    zmq_msg_t payloads[WIRE_MAX_IMAGES];
    int n = st == 0 ? j->nimages : j->ntensors;
    for (int i = 0; i < n; i++) {
        zmq_msg_init(&payloads[i]);
        zmq_msg_copy(&payloads[i], st == 0 ? &j->images[i] : &j->tensors[i]); /* shares the buffer */
    }
    char err[HIRED_ERR_LEN];
    int rc = wire_sendv(b->back, w->route, w->route_len, &m, payloads, n, err);
    for (int i = 0; i < n; i++) zmq_msg_close(&payloads[i]);
    m.prompt = NULL, m.messages = NULL, m.visuals = NULL; /* borrowed */
    m.n_messages = m.n_visuals = 0;
    wire_msg_clear(&m);
    if (rc && rc != HIRED_ENOTFOUND) log_warn("broker: could not send job %s: %s", j->wid, err);
    return rc;
}

static void dispatch(broker_t *b, int64_t now) {
    b->dirty = false;
    for (int st = 0; st < 2; st++) {
        job_t *next;
        for (job_t *j = b->jobs.qhead[st]; j; j = next) {
            next = j->qnext;
            worker_t *w = workers_pick(&b->reg, st, j->req.model, j, now);
            if (!w) continue;
            j->fence++;
            int rc = send_job(b, w, j, st, now);
            if (rc == HIRED_ENOTFOUND) { /* its connection is gone (it reconnects as a new one) */
                b->stats.workers_lost++;
                back_worker_lost(b, w, "gone (its connection closed)", true, now);
                next = b->jobs.qhead[st]; /* the lost worker's jobs went to the front: start over */
                continue;
            }
            if (rc) continue;
            jobs_dequeue(&b->jobs, j, now);
            workers_assign(w, j, j->fence);
            j->worker = w;
            j->attempts[st]++;
            j->state = st == 0 ? JOB_ENCODING : JOB_DECODING;
            j->t_dispatch = j->t_progress = now;
            j->attempt_seq = 0;
            j->attempt_deadline = now + b->cfg.attempt_timeout_ms;
        }
    }
}

// ---- timers -----------------------------------------------------------------------------------

/* Gives freed heap back to the system once what the broker holds has fallen well below the
 * high point since the last trim (glibc keeps small freed blocks otherwise: a drained backlog
 * would leave the process at its peak size). */
static void trim_heap(broker_t *b) {
    size_t held = b->jobs.bytes_total;
    if (held > b->trim_peak) b->trim_peak = held;
    if (b->trim_peak >= (8u << 20) && held < b->trim_peak / 4) {
        malloc_trim(0);
        b->trim_peak = held;
    }
}

static void timers(broker_t *b, int64_t now) {
    /* Heartbeats to workers, and workers that stopped talking. */
    if (now >= b->next_heartbeat) {
        b->next_heartbeat = now + b->cfg.heartbeat_ms;
        worker_t *wn;
        for (worker_t *w = b->reg.head; w; w = wn) {
            wn = w->next;
            wire_msg_t hb;
            wire_msg_init(&hb, WIRE_HEARTBEAT);
            hb.epoch = b->epoch;
            char err[HIRED_ERR_LEN];
            if (wire_send(b->back, w->route, w->route_len, &hb, NULL, err) == HIRED_ENOTFOUND) {
                b->stats.workers_lost++;
                back_worker_lost(b, w, "gone (its connection closed)", true, now);
            }
        }
    }
    int64_t dead_after = b->cfg.heartbeat_ms * b->cfg.liveness;
    worker_t *wn;
    for (worker_t *w = b->reg.head; w; w = wn) {
        wn = w->next;
        if (now - w->last_seen > dead_after) {
            b->stats.workers_lost++;
            back_worker_lost(b, w, "silent (heartbeat expired)", true, now);
            continue;
        }
        for (int i = 0; i < w->nasg; i++)
            if (!w->asg[i].job && now > w->asg[i].zombie_expires) {
                log_warn("broker: worker never answered cancelled job %s; credit returned", w->asg[i].wid);
                w->asg[i--] = w->asg[--w->nasg];
                b->dirty = true;
            }
    }
    workers_touch_models(&b->reg, now);
    bool grace = now - b->started < b->cfg.startup_grace_ms;
    job_t *jn;
    for (job_t *j = b->jobs.all; j; j = jn) {
        jn = j->next;
        if (j->state == JOB_FINISHED) continue; /* its client's timers deal with it */
        if (now > j->deadline) {
            char msg[128];
            snprintf(msg, sizeof msg, "deadline of %lld ms passed (%s)", (long long)(j->deadline - j->t_accept),
                     jobs_state_name(j->state));
            b->stats.failed++;
            b->stats.timeouts++;
            front_fail(b, j, HIRED_ETIMEOUT, msg, now);
            continue;
        }
        if ((j->state == JOB_ENCODING || j->state == JOB_DECODING) && now > j->attempt_deadline) {
            back_attempt_failed(b, j->worker, j, "no progress within the attempt timeout", true, now);
            continue;
        }
        if (!grace && j->queue >= 0 &&
            !workers_model_known(&b->reg, j->queue, j->req.model, now, b->cfg.model_ttl_ms)) {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown model '%s' (no %s worker serves it)", j->req.model,
                     k_service[j->queue]);
            b->stats.failed++;
            front_fail(b, j, HIRED_ENOTFOUND, msg, now);
        }
    }
    front_timers(b, now);
    back_migrate(b, now);
    trim_heap(b);
}

// ---- open / run / close -------------------------------------------------------------------------

/* A ROUTER with ZMQ_ROUTER_MANDATORY: a send to a full or vanished peer fails (EAGAIN,
 * EHOSTUNREACH) instead of being dropped in silence, so the broker knows what it delivered. */
static void *open_router(broker_t *b, const char *ep, char *bound, int sndhwm, curve_role_t role, char *err) {
    void *s = zmq_socket(b->ctx, ZMQ_ROUTER);
    char cerr[HIRED_ERR_LEN] = "";
    int mandatory = 1;
    if (!s || wire_sock_setup(s, &b->lim) || zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm) ||
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &mandatory, sizeof mandatory) ||
        curve_apply_server(s, &b->curve, role, cerr) || zmq_bind(s, ep) != 0) {
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
    b->lim = (wire_limits_t){0, 0, (size_t)cfg->max_image_bytes, (size_t)cfg->max_prompt_bytes,
                             (size_t)cfg->max_job_image_bytes};
    if (getrandom(&b->epoch, sizeof b->epoch, 0) != sizeof b->epoch || b->epoch == 0)
        b->epoch = (uint64_t)clock_now_ms() | 1;
    b->started = clock_now_ms();
    if (jobs_init(&b->jobs, b->epoch) || clients_init(&b->clients)) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    b->ctx = zmq_ctx_new();
    if (!b->ctx) return hired_errf(err, HIRED_EIO, "zmq_ctx_new failed");
    /* CURVE: the ZAP handler must answer in this context before any server socket binds */
    b->curve = (curve_cfg_t){.server_cert = cfg->curve_server_cert,
                             .authorized_keys = cfg->curve_authorized_keys,
                             .worker_keys = cfg->curve_worker_keys,
                             .admin_keys = cfg->curve_admin_keys};
    int rc = curve_check(&b->curve, err);
    if (rc) return rc;
    if (curve_server_enabled(&b->curve) && !(b->zap = curve_auth_start(b->ctx, &b->curve, err))) return HIRED_EIO;
    /* Clients read their streams at their own pace: what a client's connection cannot take yet
     * stays in the job's stream (bounded in bytes) until it can, so its pipe only needs
     * client_hwm messages of room. Worker pipes carry at most `capacity` jobs plus heartbeats. */
    b->front = open_router(b, cfg->frontend, b->front_ep, (int)cfg->client_hwm, CURVE_CLIENTS, err);
    if (!b->front) return HIRED_EIO;
    b->back = open_router(b, cfg->backend, b->back_ep, 1000, CURVE_WORKERS, err);
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
        int64_t now = clock_now_ms();
        proc_watchdog_tick(&wd, now); /* this loop's liveness is what systemd watches */
        if (now >= b->next_timers) {
            timers(b, now);
            b->next_timers = now + tick;
        }
        if (b->dirty) dispatch(b, now);
        zmq_pollitem_t items[2] = {{b->front, 0, ZMQ_POLLIN, 0}, {b->back, 0, ZMQ_POLLIN, 0}};
        long timeout = (long)(b->next_timers - clock_now_ms());
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
                now = clock_now_ms();
                if (idx) back_message(b, &p, now);
                else front_message(b, &p, now);
                wire_parts_close(&p);
                if (b->dirty) dispatch(b, now);
            }
        }
    }
    /* Tell workers to re-announce to whoever serves next (a restarted broker). */
    for (worker_t *w = b->reg.head; w; w = w->next)
        broker_send_simple(b->back, w->route, w->route_len, WIRE_DISCONNECT, NULL, 0);
    return HIRED_OK;
}

void broker_close(broker_t *b) {
    if (b->front) zmq_close(b->front);
    if (b->back) zmq_close(b->back);
    curve_auth_stop(&b->zap); /* its socket lives in ctx: before the context ends */
    if (b->ctx) zmq_ctx_term(b->ctx);
    b->front = b->back = b->ctx = NULL;
    jobs_free(&b->jobs);
    clients_free(&b->clients);
    workers_free(&b->reg);
}
