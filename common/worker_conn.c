/* worker_conn.c — see worker_conn.h. The connection is a broker_link (common/broker_link.h: the
 * I/O thread, heartbeats, a fresh socket when the broker falls silent); this file is its worker
 * half. Application threads talk to the I/O thread through two mutex-protected queues (jobs in,
 * messages out) and the link's wake-up. Sessions: every READY starts a new session number; a reconnect (broker
 * silent for liveness x heartbeat) or a DISCONNECT from the broker starts the next one, and
 * everything tagged with an older session (held jobs, queued sends, jobs not yet taken) is
 * cancelled or dropped, because the broker that knew them is gone or has re-queued them.
 * CURVE (when configured) is applied to every socket before it connects, so a reconnect
 * authenticates again with the same key pair.
 * Held jobs are (id, attempt) pairs: every send carries the attempt of the JOB it answers, and a
 * JOB whose id is still being served under an older attempt waits in the queue (next_job skips
 * it) until that attempt's terminal send, so no two threads ever serve one job id.
 * Not here: job computation, signal installation (the caller's main), the keys (curve.c). */
#include "worker_conn.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "broker_link.h"
#include "clock.h"
#include "log.h"
#include "mem.h"

typedef struct out_item {
    zmq_msg_t hdr, payloads[WIRE_MAX_PAYLOADS];
    int n_payloads;
    uint64_t session;        /* 0 = any session */
    struct out_item *next;
} out_item_t;

typedef struct in_item {
    worker_job_t *job;
    uint64_t session;
    struct in_item *next;
} in_item_t;

typedef struct held {
    char id[WIRE_MAX_ID + 1];
    uint32_t attempt;
    uint64_t session;
    uint32_t ntok;           /* TOKENs queued so far (the DONE's seq) */
    bool cancelled;
    bool taken;              /* handed out by next_job, not yet ended */
} held_t;

struct worker_conn {
    char service[WIRE_MAX_SERVICE + 1], model[WIRE_MAX_MODEL + 1];
    char fingerprint[WIRE_MAX_FINGERPRINT + 1];
    char refusal[HIRED_ERR_LEN];     /* the broker's ERROR to READY, under mu ("" = none) */
    int capacity;
    wire_limits_t lim;
    broker_link_t *link;             /* the socket and the I/O thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    out_item_t *out_head, *out_tail; /* to the broker */
    in_item_t *in_head, *in_tail;    /* jobs not yet taken */
    held_t *held;                    /* jobs taken or queued, not yet ended */
    int nheld, capheld;
    uint64_t session;                /* current session, under mu */
    worker_conn_stats_t stats;
    uint32_t load[4];                /* the HEARTBEAT's load, under mu (all 0: not sent) */
    bool load_now;                   /* under mu: send a HEARTBEAT at the next round (the
                                        waiting count went from 0 to more or back) */
};

// ---- small helpers ------------------------------------------------------------------------------

static void wake(worker_conn_t *c) { broker_link_wake(c->link); }

static int held_find(worker_conn_t *c, const char *id, uint32_t attempt) {
    for (int i = 0; i < c->nheld; i++)
        if (c->held[i].attempt == attempt && strcmp(c->held[i].id, id) == 0) return i;
    return -1;
}

/* Whether another attempt of id is being served right now (taken, not yet ended). */
static bool held_busy_other(worker_conn_t *c, const char *id, uint32_t attempt) {
    for (int i = 0; i < c->nheld; i++)
        if (c->held[i].taken && c->held[i].attempt != attempt && strcmp(c->held[i].id, id) == 0) return true;
    return false;
}

static void held_remove(worker_conn_t *c, int i) {
    c->held[i] = c->held[--c->nheld];
    pthread_cond_broadcast(&c->cv); /* a deferred attempt of the same id may be free now */
}

static int held_add(worker_conn_t *c, const char *id, uint32_t attempt, uint64_t session) {
    /* Older attempts of this id: the broker has given up on them. */
    for (int i = 0; i < c->nheld; i++)
        if (strcmp(c->held[i].id, id) == 0) c->held[i].cancelled = true;
    int i = held_find(c, id, attempt);
    if (i >= 0) { /* the same attempt again (cannot happen with a correct broker): refresh it */
        c->held[i].session = session;
        c->held[i].cancelled = false;
        return HIRED_OK;
    }
    if (c->nheld == c->capheld) {
        int cap = c->capheld ? c->capheld * 2 : 8;
        held_t *p = mem_realloc(c->held, (size_t)cap * sizeof *p);
        if (!p) return HIRED_ENOMEM;
        c->held = p;
        c->capheld = cap;
    }
    held_t *h = &c->held[c->nheld++];
    memset(h, 0, sizeof *h);
    snprintf(h->id, sizeof h->id, "%s", id);
    h->attempt = attempt;
    h->session = session;
    return HIRED_OK;
}

/* Drops queued (not yet taken) jobs for which filter(item) is true. Those of the current
 * session still owe the broker an answer (it returns their credit): their (id, attempt) go to
 * owed[*nowed] (room for `cap`; beyond it the broker's zombie timeout returns the credit).
 * Caller holds mu. */
typedef struct {
    char id[WIRE_MAX_ID + 1];
    uint32_t attempt;
} owed_t;

static void in_drop(worker_conn_t *c, bool (*filter)(worker_conn_t *c, const in_item_t *it, const void *arg),
                    const void *arg, owed_t *owed, int cap, int *nowed) {
    in_item_t **pp = &c->in_head;
    c->in_tail = NULL;
    while (*pp) {
        in_item_t *it = *pp;
        if (filter(c, it, arg)) {
            *pp = it->next;
            int h = held_find(c, it->job->hdr.id, it->job->hdr.attempt);
            if (h >= 0) held_remove(c, h);
            if (owed && it->session == c->session && *nowed < cap) {
                snprintf(owed[*nowed].id, sizeof owed[0].id, "%s", it->job->hdr.id);
                owed[(*nowed)++].attempt = it->job->hdr.attempt;
            }
            worker_job_destroy(&it->job);
            mem_free(it);
        } else {
            c->in_tail = it;
            pp = &it->next;
        }
    }
}

static bool same_id(worker_conn_t *c, const in_item_t *it, const void *id) {
    (void)c;
    return strcmp(it->job->hdr.id, id) == 0;
}

static bool any_item(worker_conn_t *c, const in_item_t *it, const void *arg) {
    (void)c, (void)it, (void)arg;
    return true;
}

void worker_job_destroy(worker_job_t **pj) {
    if (!pj || !*pj) return;
    wire_msg_clear(&(*pj)->hdr);
    for (int i = 0; i < (*pj)->n_payloads; i++) zmq_msg_close(&(*pj)->payloads[i]);
    mem_free(*pj);
    *pj = NULL;
}

static void free_aligned(void *data, void *hint) {
    (void)hint;
    mem_free_aligned(data);
}

/* Received frames point into ZeroMQ's buffers at any byte offset; tensors need aligned rows.
 * Copies the payload into a 64-byte aligned buffer unless it already is aligned. */
static int align_payload(zmq_msg_t *msg) {
    size_t n = zmq_msg_size(msg);
    if (((uintptr_t)zmq_msg_data(msg) & 63) == 0 || n == 0) return HIRED_OK;
    void *buf = mem_alloc_aligned(n);
    if (!buf) return HIRED_ENOMEM;
    memcpy(buf, zmq_msg_data(msg), n);
    zmq_msg_close(msg);
    if (zmq_msg_init_data(msg, buf, n, free_aligned, NULL) != 0) {
        mem_free_aligned(buf);
        zmq_msg_init(msg);
        return HIRED_ENOMEM;
    }
    return HIRED_OK;
}

static void out_free(out_item_t *o) {
    zmq_msg_close(&o->hdr);
    for (int i = 0; i < o->n_payloads; i++) zmq_msg_close(&o->payloads[i]);
    mem_free(o);
}

/* Closes payloads[0..n) and leaves each an empty message. */
static void drop_payloads(zmq_msg_t *payloads, int n) {
    for (int i = 0; i < n; i++) zmq_msg_close(&payloads[i]), zmq_msg_init(&payloads[i]);
}

/* Queues an encoded message. Caller holds no lock. Takes ownership of payloads[0..n). */
static int enqueue(worker_conn_t *c, const wire_msg_t *m, zmq_msg_t *payloads, int n, uint64_t session, char *err) {
    if (n < 0 || n > WIRE_MAX_PAYLOADS) {
        drop_payloads(payloads, n < 0 ? 0 : n);
        return hired_errf(err, HIRED_EINVAL, "%d payload frames (at most %d)", n, WIRE_MAX_PAYLOADS);
    }
    out_item_t *o = mem_calloc(1, sizeof *o);
    if (!o) {
        drop_payloads(payloads, n);
        return hired_errf(err, HIRED_ENOMEM, "out of memory");
    }
    int rc = wire_encode(m, &o->hdr, err);
    if (rc) {
        mem_free(o);
        drop_payloads(payloads, n);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        zmq_msg_init(&o->payloads[i]);
        zmq_msg_move(&o->payloads[i], &payloads[i]);
    }
    o->n_payloads = n;
    o->session = session;
    pthread_mutex_lock(&c->mu);
    if (c->out_tail) c->out_tail->next = o;
    else c->out_head = o;
    c->out_tail = o;
    pthread_mutex_unlock(&c->mu);
    wake(c);
    return HIRED_OK;
}

// ---- the I/O thread -----------------------------------------------------------------------------

/* Starts a new session: everything older is cancelled or dropped. Then READY. */
static void on_open(void *user, void *sock) {
    worker_conn_t *c = user;
    pthread_mutex_lock(&c->mu);
    c->session++;
    c->stats.sessions++;
    for (int i = 0; i < c->nheld; i++) c->held[i].cancelled = true;
    in_drop(c, any_item, NULL, NULL, 0, NULL); /* never taken: the old broker session owned them */
    pthread_mutex_unlock(&c->mu);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_READY);
    snprintf(m.service, sizeof m.service, "%s", c->service);
    snprintf(m.model, sizeof m.model, "%s", c->model);
    snprintf(m.fingerprint, sizeof m.fingerprint, "%s", c->fingerprint);
    m.capacity = (uint32_t)c->capacity;
    char err[HIRED_ERR_LEN];
    if (wire_send(sock, NULL, 0, &m, NULL, err)) log_warn("worker_conn: READY not sent: %s", err);
}

static void send_simple(void *sock, wire_type_t t) {
    wire_msg_t m;
    wire_msg_init(&m, t);
    char err[HIRED_ERR_LEN];
    if (wire_send(sock, NULL, 0, &m, NULL, err)) log_debug("worker_conn: %s not sent: %s", wire_type_name(t), err);
}

static void heartbeat(void *user, void *sock) {
    worker_conn_t *c = user;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_HEARTBEAT);
    pthread_mutex_lock(&c->mu);
    memcpy(m.load, c->load, sizeof m.load);
    pthread_mutex_unlock(&c->mu);
    char err[HIRED_ERR_LEN];
    if (wire_send(sock, NULL, 0, &m, NULL, err)) log_debug("worker_conn: HEARTBEAT not sent: %s", err);
}

void worker_conn_set_load(worker_conn_t *c, uint32_t batch, uint32_t kv_used, uint32_t kv_total, uint32_t waiting) {
    const uint32_t cap = (1u << 30) - 1;
    pthread_mutex_lock(&c->mu);
    bool change = (c->load[3] > 0) != (waiting > 0);
    c->load[0] = batch < cap ? batch : cap;
    c->load[1] = kv_used < cap ? kv_used : cap;
    c->load[2] = kv_total < cap ? kv_total : cap;
    c->load[3] = waiting < cap ? waiting : cap;
    c->load_now |= change && c->load[2] != 0;
    pthread_mutex_unlock(&c->mu);
    if (change) wake(c); /* the broker should know at once that this decoder is full, or not */
}

/* Sends queued messages of the current session; stops at a full pipe. */
static void flush_out(worker_conn_t *c, void *sock) {
    for (;;) {
        pthread_mutex_lock(&c->mu);
        out_item_t *o = c->out_head;
        if (o && o->session && o->session != c->session) { /* stale: drop */
            c->out_head = o->next;
            if (!c->out_head) c->out_tail = NULL;
            c->stats.dropped++;
            pthread_mutex_unlock(&c->mu);
            out_free(o);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        if (!o) return;
        int more = o->n_payloads ? ZMQ_SNDMORE : 0;
        if (zmq_msg_send(&o->hdr, sock, more | ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN) return; /* retry on the next round */
            log_warn("worker_conn: send failed: %s", zmq_strerror(errno));
        } else {
            /* the header went out: the frames after it are part of the same message (atomic) */
            for (int i = 0; i < o->n_payloads; i++)
                if (zmq_msg_send(&o->payloads[i], sock, i + 1 < o->n_payloads ? ZMQ_SNDMORE : 0) < 0) {
                    log_warn("worker_conn: payload send failed: %s", zmq_strerror(errno));
                    break;
                }
        }
        pthread_mutex_lock(&c->mu);
        c->out_head = o->next;
        if (!c->out_head) c->out_tail = NULL;
        pthread_mutex_unlock(&c->mu);
        out_free(o);
    }
}

/* The link's round: what is queued goes out; a full pipe is retried soon. */
static int round_out(void *user, void *sock, int64_t now) {
    worker_conn_t *c = user;
    (void)now;
    flush_out(c, sock);
    pthread_mutex_lock(&c->mu);
    bool pending = c->out_head != NULL, load_now = c->load_now;
    c->load_now = false;
    pthread_mutex_unlock(&c->mu);
    if (load_now) heartbeat(c, sock);
    return pending ? 5 : -1;
}

/* Handles one message; returns true when the broker asked for a fresh session (DISCONNECT). */
static bool on_message(void *user, void *sock, wire_parts_t *p, int64_t now) {
    worker_conn_t *c = user;
    (void)sock;
    char err[HIRED_ERR_LEN];
    wire_msg_t m;
    bool reset = false;
    owed_t owed[16]; /* queued attempts dropped here: each still gets its terminal ERROR */
    int nowed = 0;
    if (p->n < 1) return false;
    int rc = wire_decode(zmq_msg_data(&p->part[0]), zmq_msg_size(&p->part[0]), &c->lim, &m, err);
    if (rc == 0) {
        size_t sizes[WIRE_MAX_PAYLOADS];
        int n = p->n - 1;
        for (int i = 0; i < n && i < WIRE_MAX_PAYLOADS; i++) sizes[i] = zmq_msg_size(&p->part[1 + i]);
        rc = p->truncated ? HIRED_EPROTO : wire_check_payloads(&m, n, sizes, &c->lim, err);
    }
    if (rc) {
        log_warn("worker_conn: bad message from the broker: %s", err);
        wire_msg_clear(&m);
        return false;
    }
    switch (m.type) {
    case WIRE_JOB: {
        worker_job_t *job = mem_calloc(1, sizeof *job);
        in_item_t *it = mem_calloc(1, sizeof *it);
        if (!job || !it) {
            mem_free(job);
            mem_free(it);
            log_error("worker_conn: out of memory for job %s", m.id);
            break;
        }
        job->hdr = m;
        wire_msg_init(&m, WIRE_NONE);
        int np = p->n - 1, bad = 0;
        for (int i = 0; i < np; i++) {
            wire_parts_take(p, 1 + i, &job->payloads[i]);
            job->n_payloads = i + 1;
            bad |= align_payload(&job->payloads[i]);
        }
        if (bad) {
            log_error("worker_conn: out of memory for job %s", job->hdr.id);
            worker_job_destroy(&job);
            mem_free(it);
            break;
        }
        job->received_ms = now;
        pthread_mutex_lock(&c->mu);
        c->stats.jobs++;
        it->job = job;
        it->session = c->session;
        in_drop(c, same_id, job->hdr.id, owed, (int)ARRAY_LEN(owed), &nowed); /* an older attempt never taken */
        if (held_add(c, job->hdr.id, job->hdr.attempt, c->session)) {
            pthread_mutex_unlock(&c->mu);
            worker_job_destroy(&job);
            mem_free(it);
            break;
        }
        if (c->in_tail) c->in_tail->next = it;
        else c->in_head = it;
        c->in_tail = it;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    }
    case WIRE_CANCEL: /* every attempt of the id: the broker cancels the one it knows */
        pthread_mutex_lock(&c->mu);
        c->stats.cancelled++;
        for (int i = 0; i < c->nheld; i++)
            if (strcmp(c->held[i].id, m.id) == 0) c->held[i].cancelled = true;
        in_drop(c, same_id, m.id, owed, (int)ARRAY_LEN(owed), &nowed);
        pthread_mutex_unlock(&c->mu);
        break;
    case WIRE_DISCONNECT: reset = true; break;
    case WIRE_ERROR:
        log_warn("worker_conn: broker says: %s", m.message ? m.message : "");
        if (m.code == HIRED_EUNSUPPORTED && !m.id[0]) { /* READY refused: a configuration error */
            pthread_mutex_lock(&c->mu);
            snprintf(c->refusal, sizeof c->refusal, "%s", m.message ? m.message : "READY refused");
            pthread_cond_broadcast(&c->cv);
            pthread_mutex_unlock(&c->mu);
            broker_link_stop(c->link);
        }
        break;
    default: break; /* HEARTBEAT: liveness only */
    }
    wire_msg_clear(&m);
    if (nowed) {
        pthread_mutex_lock(&c->mu);
        uint64_t session = c->session;
        pthread_mutex_unlock(&c->mu);
        for (int i = 0; i < nowed; i++) {
            wire_msg_t e;
            wire_msg_init(&e, WIRE_ERROR);
            memcpy(e.id, owed[i].id, sizeof e.id); /* both WIRE_MAX_ID + 1 */
            e.attempt = owed[i].attempt;
            e.code = HIRED_EINVAL;
            e.message = (char *)"cancelled before it started"; /* borrowed for the encode */
            if (enqueue(c, &e, NULL, 0, session, err)) log_warn("worker_conn: %s", err);
            e.message = NULL;
        }
    }
    return reset;
}

/* The link is stopping: terminal messages already queued still return credit; DISCONNECT has
 * the broker re-queue the rest at once. Every held job reads as cancelled from now on. */
static void on_close(void *user, void *sock) {
    worker_conn_t *c = user;
    if (sock) {
        flush_out(c, sock);
        send_simple(sock, WIRE_DISCONNECT);
    }
    pthread_mutex_lock(&c->mu);
    for (int i = 0; i < c->nheld; i++) c->held[i].cancelled = true;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

static const broker_link_ops_t k_link_ops = {
    .on_open = on_open,
    .heartbeat = heartbeat,
    .round = round_out,
    .on_message = on_message,
    .on_close = on_close,
};

// ---- public API -------------------------------------------------------------------------------

worker_conn_t *worker_conn_new(const worker_conn_opts_t *o, char *err) {
    if (!o || !o->endpoint || !o->service || !o->model) {
        hired_errf(err, HIRED_EINVAL, "worker_conn: endpoint, service and model are required");
        return NULL;
    }
    if (strcmp(o->service, "encode") && strcmp(o->service, "decode")) {
        hired_errf(err, HIRED_EINVAL, "worker_conn: service must be 'encode' or 'decode' (got '%s')", o->service);
        return NULL;
    }
    if (!o->fingerprint || !o->fingerprint[0] || strlen(o->fingerprint) > WIRE_MAX_FINGERPRINT) {
        hired_errf(err, HIRED_EINVAL, "worker_conn: the checkpoint fingerprint is required (1-%d hex digits)",
                   WIRE_MAX_FINGERPRINT);
        return NULL;
    }
    if (o->capacity < 1 || o->capacity > WIRE_MAX_CAPACITY || strlen(o->model) > WIRE_MAX_MODEL ||
        strlen(o->endpoint) >= 256 || !o->model[0]) {
        hired_errf(err, HIRED_EINVAL, "worker_conn: capacity must be in [1, %d] and model 1-%d characters",
                   WIRE_MAX_CAPACITY, WIRE_MAX_MODEL);
        return NULL;
    }
    if (o->curve && (o->curve->server_key || o->curve->client_cert)) {
        curve_cfg_t cv = {.server_key = o->curve->server_key, .client_cert = o->curve->client_cert};
        char cerr[HIRED_ERR_LEN];
        if (curve_check(&cv, cerr)) {
            hired_errf(err, HIRED_EINVAL, "worker_conn: %s", cerr);
            return NULL;
        }
    }
    worker_conn_t *c = mem_calloc(1, sizeof *c);
    if (!c) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(c->service, sizeof c->service, "%s", o->service);
    snprintf(c->model, sizeof c->model, "%s", o->model);
    snprintf(c->fingerprint, sizeof c->fingerprint, "%s", o->fingerprint ? o->fingerprint : "");
    c->capacity = o->capacity;
    c->lim = wire_limits_resolve(o->limits);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    const int hb = o->heartbeat_ms > 0 ? o->heartbeat_ms : 1000;
    broker_link_opts_t lo = {
        .endpoint = o->endpoint,
        .name = "worker_conn",
        .heartbeat_ms = hb,
        .liveness = o->liveness > 0 ? o->liveness : 3,
        .policy = BROKER_LINK_REPLACE,
        .backoff_max_ms = 5000,
        .limits = &c->lim,
        .curve = o->curve,
        .ops = &k_link_ops,
        .user = c,
    };
    if (!(c->link = broker_link_new(&lo, err)) || broker_link_start(c->link, err)) {
        worker_conn_destroy(&c);
        return NULL;
    }
    return c;
}

void worker_conn_stop(worker_conn_t *c) {
    if (c && c->link) broker_link_stop(c->link);
}

bool worker_conn_stopping(worker_conn_t *c) { return c && c->link && broker_link_stopping(c->link); }

void worker_conn_destroy(worker_conn_t **pc) {
    if (!pc || !*pc) return;
    worker_conn_t *c = *pc;
    broker_link_destroy(&c->link); /* stops and joins the I/O thread */
    while (c->out_head) {
        out_item_t *o = c->out_head;
        c->out_head = o->next;
        out_free(o);
    }
    while (c->in_head) {
        in_item_t *it = c->in_head;
        c->in_head = it->next;
        worker_job_destroy(&it->job);
        mem_free(it);
    }
    mem_free(c->held);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    mem_free(c);
    *pc = NULL;
}

int worker_conn_next_job(worker_conn_t *c, int timeout_ms, worker_job_t **job) {
    *job = NULL;
    struct timespec until;
    clock_cond_deadline(&until, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->mu);
    for (;;) {
        if (c->refusal[0]) {
            pthread_mutex_unlock(&c->mu);
            return HIRED_EUNSUPPORTED;
        }
        if (worker_conn_stopping(c)) {
            pthread_mutex_unlock(&c->mu);
            return HIRED_EIO;
        }
        /* The first queued job whose id no other thread is serving under an older attempt. */
        in_item_t **pp = &c->in_head, *prev = NULL;
        while (*pp && held_busy_other(c, (*pp)->job->hdr.id, (*pp)->job->hdr.attempt)) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp) {
            in_item_t *it = *pp;
            *pp = it->next;
            if (c->in_tail == it) c->in_tail = prev;
            *job = it->job;
            mem_free(it);
            int h = held_find(c, (*job)->hdr.id, (*job)->hdr.attempt);
            if (h >= 0) c->held[h].taken = true;
            pthread_mutex_unlock(&c->mu);
            return HIRED_OK;
        }
        if (c->in_head) c->stats.deferred++;
        if (timeout_ms == 0) break;
        if (timeout_ms < 0) pthread_cond_wait(&c->cv, &c->mu);
        else if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
    }
    pthread_mutex_unlock(&c->mu);
    return HIRED_ETIMEOUT;
}

void worker_conn_refusal(worker_conn_t *c, char *out) {
    pthread_mutex_lock(&c->mu);
    snprintf(out, HIRED_ERR_LEN, "%s", c->refusal);
    pthread_mutex_unlock(&c->mu);
}

bool worker_conn_cancelled(worker_conn_t *c, const worker_job_t *job) {
    if (worker_conn_stopping(c)) return true;
    pthread_mutex_lock(&c->mu);
    int h = held_find(c, job->hdr.id, job->hdr.attempt);
    bool r = h < 0 || c->held[h].cancelled || c->held[h].session != c->session;
    pthread_mutex_unlock(&c->mu);
    return r;
}

/* The session a send for job belongs to, or 0 to drop it; *ntok (may be NULL) receives the
 * TOKENs queued so far (after counting this one when `token`). terminal: forget the job. */
static uint64_t send_session(worker_conn_t *c, const worker_job_t *job, bool terminal, bool drop_if_cancelled,
                             bool token, uint32_t *ntok) {
    if (worker_conn_stopping(c)) return 0;
    pthread_mutex_lock(&c->mu);
    uint64_t s = 0;
    int h = held_find(c, job->hdr.id, job->hdr.attempt);
    if (h >= 0 && c->held[h].session == c->session && !(drop_if_cancelled && c->held[h].cancelled))
        s = c->session;
    if (h >= 0 && s && token) c->held[h].ntok++;
    if (h >= 0 && ntok) *ntok = c->held[h].ntok;
    if (h >= 0 && terminal) held_remove(c, h);
    if (!s) c->stats.dropped++;
    pthread_mutex_unlock(&c->mu);
    return s;
}

int worker_conn_send_token(worker_conn_t *c, const worker_job_t *job, uint32_t seq, int32_t token, const char *text,
                           char *err) {
    uint32_t n = 0;
    uint64_t s = send_session(c, job, false, true, true, &n);
    if (!s) return HIRED_OK;
    if (seq + 1 != n)
        return hired_errf(err, HIRED_EPROTO, "job %s: TOKEN seq %u out of order (expected %u)", job->hdr.id, seq,
                          n - 1);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_TOKEN);
    snprintf(m.id, sizeof m.id, "%s", job->hdr.id);
    m.attempt = job->hdr.attempt;
    m.seq = seq;
    m.token = token;
    m.text = (char *)text; /* borrowed for the encode */
    int rc = enqueue(c, &m, NULL, 0, s, err);
    m.text = NULL;
    return rc;
}

/* Enqueues a copy of the borrowed terminal message m with the job's id and attempt (and for
 * DONE the TOKEN count) filled in. Takes ownership of *payload when given. */
static int send_terminal(worker_conn_t *c, const worker_job_t *job, const wire_msg_t *m, zmq_msg_t *payloads,
                         int np, char *err) {
    uint32_t n = 0;
    uint64_t s = send_session(c, job, true, false, false, &n);
    if (!s) {
        drop_payloads(payloads, np);
        return HIRED_OK;
    }
    wire_msg_t t = *m; /* shallow: the pointers stay borrowed from m */
    snprintf(t.id, sizeof t.id, "%s", job->hdr.id);
    t.attempt = job->hdr.attempt;
    if (t.type == WIRE_DONE) t.seq = n;
    return enqueue(c, &t, payloads, np, s, err);
}

int worker_conn_send_done(worker_conn_t *c, const worker_job_t *job, const wire_msg_t *m, char *err) {
    if (m->type != WIRE_DONE) return hired_errf(err, HIRED_EINVAL, "worker_conn_send_done: not a DONE");
    return send_terminal(c, job, m, NULL, 0, err);
}

int worker_conn_send_result(worker_conn_t *c, const worker_job_t *job, const wire_msg_t *m, zmq_msg_t *tensors, int n,
                            char *err) {
    if (m->type != WIRE_RESULT) {
        drop_payloads(tensors, n);
        return hired_errf(err, HIRED_EINVAL, "worker_conn_send_result: not a RESULT");
    }
    return send_terminal(c, job, m, tensors, n, err);
}

int worker_conn_send_error(worker_conn_t *c, const worker_job_t *job, int code, const char *message, char *err) {
    wire_msg_t m;
    wire_msg_init(&m, WIRE_ERROR);
    m.code = code;
    m.message = (char *)message; /* borrowed for the encode */
    return send_terminal(c, job, &m, NULL, 0, err);
}

void worker_conn_get_stats(worker_conn_t *c, worker_conn_stats_t *out) {
    pthread_mutex_lock(&c->mu);
    *out = c->stats;
    pthread_mutex_unlock(&c->mu);
}
