/* hired_client.c — libhired (see hired_client.h). The connection to the broker frontend is a
 * broker_link (common/broker_link.h: the I/O thread, heartbeats, the probe socket); this file is
 * its client half. API calls talk to the I/O thread through a mutex, a condition variable and
 * the link's wake-up. The thread keeps the table of unfinished jobs (each with its own copy of the
 * image) and is the only place where recovery happens:
 *   - a TOKEN whose seq is past the next one expected, or a DONE whose seq says tokens are
 *     missing: RESUME the job from the first missing seq (at most once per heartbeat per job);
 *   - an accepted job that has heard nothing for liveness x heartbeat: RESUME it (the broker
 *     re-sends what went to a connection we no longer use; a lost final message comes back
 *     this way too), then again after twice as long, and so on up to QUIET_MAX_MS;
 *   - broker silent for liveness x heartbeat: a second connection is tried (a probe socket:
 *     a fresh routing id) while the first stays open, because a link that is stalled in one
 *     direction still carries our heartbeats to the broker and keeps the session alive. The
 *     first of the two to hear from the broker is kept; when that is the probe, every accepted
 *     job is RESUMEd on it and those not yet accepted are submitted again. A probe that hears
 *     nothing is replaced after twice as long, and so on;
 *   - broker epoch changed (HEARTBEAT / ACCEPTED from a restarted broker), or the broker
 *     answers a RESUME with "unknown job": SUBMIT again (same id, same session);
 *   - SUBMIT unanswered for liveness x heartbeat: send it again (idempotent by id);
 *   - BUSY for a job that was already accepted once (a restarted broker is full): retry later.
 * Every final message (DONE, ERROR) is acknowledged with ACK, also when it arrives for a job
 * already delivered (the broker re-sends a final until it is acknowledged).
 * Per job it delivers one ACCEPTED, TOKENs in seq order without repeats, one DONE/ERROR/BUSY.
 * Not here: the `hired` CLI (cli.c). */
#include "hired_client.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "broker_link.h"
#include "clock.h"
#include "curve.h"
#include "log.h"
#include "mem.h"
#include "wire.h"

#define QUIET_MAX_MS 10000 /* longest wait between two tries of the same thing */

typedef struct cjob {
    wire_msg_t submit;      /* the SUBMIT header (owns the prompt or the messages) */
    void *image[WIRE_MAX_IMAGES]; /* [nimages] frames, for resubmission */
    size_t image_len[WIRE_MAX_IMAGES];
    int nimages;
    uint32_t next_seq;      /* next TOKEN seq to deliver */
    bool accepted;          /* ACCEPTED delivered */
    bool need_send;         /* SUBMIT (again) */
    bool need_resume;       /* RESUME from next_seq */
    bool resume_pending;    /* a RESUME was sent and nothing has come back since */
    bool cancel;            /* the caller asked to cancel: CANCEL until it ends */
    uint64_t epoch;         /* broker epoch that accepted it (0 = not yet) */
    int quiet;              /* tries since it last heard anything: the next wait doubles */
    int64_t submitted, last_sent, last_rx, last_resume, resend_at, deadline;
    struct cjob *next;
} cjob_t;

typedef struct ev_item {
    hired_event ev;
    struct ev_item *next;
} ev_item_t;

struct hired_client {
    char endpoint[256];
    char session[33];            /* 128-bit random secret, hex: this client's identity */
    int timeout_ms, heartbeat_ms, liveness, connect_timeout_ms, max_events;
    broker_link_t *link;         /* the socket(s) and the I/O thread */
    pthread_mutex_t mu;
    pthread_cond_t cv;           /* events and status replies */
    pthread_mutex_t status_mu;   /* one hired_status at a time */
    cjob_t *jobs;
    int njobs;
    ev_item_t *ev_head, *ev_tail;
    int nevents;
    bool status_want, status_sent;
    int status_rc;
    char *status_json;
    uint64_t epoch;              /* latest broker epoch seen */
    bool heard;                  /* the broker has answered at least once */
};

// ---- helpers ----------------------------------------------------------------------------------

static void wake(hired_client *c) { broker_link_wake(c->link); }

static cjob_t *find_job(hired_client *c, const char *id) {
    for (cjob_t *j = c->jobs; j; j = j->next)
        if (strcmp(j->submit.id, id) == 0) return j;
    return NULL;
}

static void free_job(cjob_t *j) {
    wire_msg_clear(&j->submit);
    for (int i = 0; i < j->nimages; i++) free(j->image[i]);
    mem_free(j);
}

static void remove_job(hired_client *c, cjob_t *j) {
    cjob_t **pp = &c->jobs;
    while (*pp && *pp != j) pp = &(*pp)->next;
    if (*pp) *pp = j->next;
    c->njobs--;
    free_job(j);
}

/* Queues an event (takes ownership of ev->text). Caller holds mu. */
static void push_event(hired_client *c, hired_event *ev) {
    ev_item_t *it = mem_calloc(1, sizeof *it);
    if (!it) {
        free(ev->text);
        return;
    }
    it->ev = *ev;
    if (c->ev_tail) c->ev_tail->next = it;
    else c->ev_head = it;
    c->ev_tail = it;
    c->nevents++;
    pthread_cond_broadcast(&c->cv);
}

static char *dup_str(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d) memcpy(d, s, n + 1);
    return d;
}

static void local_error(hired_client *c, cjob_t *j, int code, const char *msg) {
    hired_event ev;
    memset(&ev, 0, sizeof ev);
    ev.type = HIRED_EVENT_ERROR;
    snprintf(ev.job_id, sizeof ev.job_id, "%s", j->submit.id);
    ev.code = code;
    snprintf(ev.message, sizeof ev.message, "%s", msg);
    push_event(c, &ev);
    remove_job(c, j);
}

// ---- the I/O thread -----------------------------------------------------------------------------

/* Sends a client message of type t about job id (may be NULL) with seq; m's session is ours. */
static void send_simple(hired_client *c, void *sock, wire_type_t t, const char *id, uint32_t seq) {
    wire_msg_t m;
    wire_msg_init(&m, t);
    if (id) snprintf(m.id, sizeof m.id, "%s", id);
    snprintf(m.session, sizeof m.session, "%s", c->session);
    m.seq = seq;
    char err[HIRED_ERR_LEN];
    if (wire_send(sock, NULL, 0, &m, NULL, err)) log_debug("hired: %s not sent: %s", wire_type_name(t), err);
}

static void send_submit(hired_client *c, void *sock, cjob_t *j, int64_t now) {
    zmq_msg_t img[WIRE_MAX_IMAGES];
    for (int i = 0; i < j->nimages; i++)
        if (zmq_msg_init_size(&img[i], j->image_len[i]) != 0) {
            while (i--) zmq_msg_close(&img[i]);
            return;
        } else {
            memcpy(zmq_msg_data(&img[i]), j->image[i], j->image_len[i]);
        }
    char err[HIRED_ERR_LEN];
    int rc = wire_sendv(sock, NULL, 0, &j->submit, img, j->nimages, err);
    for (int i = 0; i < j->nimages; i++) zmq_msg_close(&img[i]);
    if (rc == 0) {
        j->need_send = false;
        j->resume_pending = false;
        j->last_sent = now;
    }
    (void)c;
}

/* Asks for job j again from its next seq (rate-limited to once per heartbeat). Holds mu. */
static void want_resume(hired_client *c, cjob_t *j, int64_t now) {
    if (now - j->last_resume >= c->heartbeat_ms) j->need_resume = true;
}

/* A (possibly new) broker epoch: jobs accepted under another one were lost. Holds mu. */
static void note_epoch(hired_client *c, uint64_t epoch) {
    if (!epoch || epoch == c->epoch) return;
    if (c->epoch) log_info("hired: broker restarted (epoch changed); resubmitting");
    c->epoch = epoch;
    for (cjob_t *j = c->jobs; j; j = j->next)
        if (j->epoch && j->epoch != epoch) {
            j->epoch = 0;
            j->need_send = true;
        }
}

static bool on_message(void *user, void *sock, wire_parts_t *p, int64_t now) {
    hired_client *c = user;
    char err[HIRED_ERR_LEN];
    wire_msg_t m;
    if (p->n < 1) return false;
    if (wire_decode(zmq_msg_data(&p->part[0]), zmq_msg_size(&p->part[0]), NULL, &m, err)) {
        log_warn("hired: bad message from the broker: %s", err);
        wire_msg_clear(&m);
        return false;
    }
    pthread_mutex_lock(&c->mu);
    c->heard = true;
    cjob_t *j = m.id[0] ? find_job(c, m.id) : NULL;
    if (j) j->last_rx = now, j->resume_pending = false, j->quiet = 0;
    hired_event ev;
    memset(&ev, 0, sizeof ev);
    snprintf(ev.job_id, sizeof ev.job_id, "%s", m.id);
    switch (m.type) {
    case WIRE_HEARTBEAT: note_epoch(c, m.epoch); break;
    case WIRE_ACCEPTED:
        note_epoch(c, m.epoch);
        if (!j) break;
        j->epoch = m.epoch ? m.epoch : 1;
        if (!j->accepted) {
            j->accepted = true;
            ev.type = HIRED_EVENT_ACCEPTED;
            push_event(c, &ev);
        }
        break;
    case WIRE_TOKEN:
        if (!j || m.seq < j->next_seq) break; /* a repeat after a resume (or a stray) */
        if (m.seq > j->next_seq) {            /* something before it went missing */
            want_resume(c, j, now);
            break;
        }
        j->next_seq++;
        ev.type = HIRED_EVENT_TOKEN;
        ev.seq = m.seq;
        ev.token = m.token;
        ev.text = dup_str(m.text);
        push_event(c, &ev);
        break;
    case WIRE_DONE:
        if (!j) { /* delivered before: our ACK went missing */
            send_simple(c, sock, WIRE_ACK, m.id, 0);
            break;
        }
        if (j->submit.params.stream && m.seq > j->next_seq) { /* tokens missing: not done yet */
            want_resume(c, j, now);
            break;
        }
        ev.type = HIRED_EVENT_DONE;
        ev.text = dup_str(m.text ? m.text : "");
        snprintf(ev.finish, sizeof ev.finish, "%s", m.finish);
        ev.prompt_tokens = m.usage.prompt_tokens;
        ev.image_tokens = m.usage.image_tokens;
        ev.completion_tokens = m.usage.completion_tokens;
        ev.visual_kept = m.usage.visual_kept;
        ev.visual_total = m.usage.visual_total;
        ev.result_bytes = m.usage.result_bytes;
        for (int s = 0; s < HIRED_STAGE_COUNT; s++)
            ev.timings_ms[s] = (m.timings_mask & (1u << s)) ? m.timings[s] : -1;
        push_event(c, &ev);
        remove_job(c, j);
        send_simple(c, sock, WIRE_ACK, m.id, 0);
        break;
    case WIRE_ERROR:
        if (!m.id[0]) {
            log_warn("hired: broker error: %s", m.message ? m.message : "");
            break;
        }
        if (!j) {
            send_simple(c, sock, WIRE_ACK, m.id, 0);
            break;
        }
        if (m.code == HIRED_ESTALE && !j->cancel) {
            /* the broker does not know a job it accepted (it restarted, or dropped it while
             * we were away): submit it again */
            j->epoch = 0;
            j->need_send = true;
            break;
        }
        ev.type = HIRED_EVENT_ERROR;
        ev.code = m.code;
        snprintf(ev.message, sizeof ev.message, "%s", m.message ? m.message : "");
        push_event(c, &ev);
        remove_job(c, j);
        send_simple(c, sock, WIRE_ACK, m.id, 0);
        break;
    case WIRE_BUSY:
        if (!j) break;
        if (j->accepted) { /* admitted once already: keep trying, the caller was promised an end */
            j->resend_at = now + (m.retry_ms ? (int64_t)m.retry_ms : (int64_t)c->heartbeat_ms);
            break;
        }
        ev.type = HIRED_EVENT_BUSY;
        ev.retry_ms = m.retry_ms;
        snprintf(ev.message, sizeof ev.message, "%s", m.message ? m.message : "queue full");
        push_event(c, &ev);
        remove_job(c, j);
        break;
    case WIRE_STATUS_REPLY:
        if (c->status_want && p->n >= 2) {
            size_t n = zmq_msg_size(&p->part[1]);
            char *s = malloc(n + 1);
            if (s) {
                memcpy(s, zmq_msg_data(&p->part[1]), n);
                s[n] = 0;
                free(c->status_json);
                c->status_json = s;
                c->status_want = c->status_sent = false;
                pthread_cond_broadcast(&c->cv);
            }
        }
        break;
    default: break;
    }
    pthread_mutex_unlock(&c->mu);
    wire_msg_clear(&m);
    return false;
}

/* One round of the job table: local deadlines, the connect timeout, (re)submissions, resumes,
 * cancels. Holds mu. */
static void jobs_round(hired_client *c, void *sock, int64_t now) {
    const int64_t silent = (int64_t)c->heartbeat_ms * c->liveness;
    cjob_t *jn;
    for (cjob_t *j = c->jobs; j; j = jn) {
        jn = j->next;
        if (now > j->deadline) {
            local_error(c, j, HIRED_ETIMEOUT, "deadline passed without an answer from the broker");
            continue;
        }
        if (!c->heard && c->connect_timeout_ms > 0 && now - j->submitted > c->connect_timeout_ms) {
            char msg[400];
            snprintf(msg, sizeof msg, "no answer from the broker at %s within %d ms (is it running there?)", c->endpoint,
                     c->connect_timeout_ms);
            local_error(c, j, HIRED_ETIMEOUT, msg);
            continue;
        }
        int64_t wait = broker_link_backoff(silent, j->quiet, QUIET_MAX_MS);
        if (!j->epoch && !j->need_send && now - j->last_sent > wait) j->need_send = true, j->quiet++;
        if (j->resend_at && now >= j->resend_at) j->resend_at = 0, j->need_send = true;
        if (j->need_send && !j->resend_at) {
            send_submit(c, sock, j, now);
            continue;
        }
        if (j->epoch && now - j->last_rx > wait && now - j->last_resume > wait) j->need_resume = true, j->quiet++;
        if (j->epoch && j->need_resume) {
            send_simple(c, sock, WIRE_RESUME, j->submit.id, j->next_seq);
            if (j->cancel) send_simple(c, sock, WIRE_CANCEL, j->submit.id, 0);
            j->need_resume = false;
            j->resume_pending = true;
            j->last_resume = now;
        }
    }
}

/* After a message on the probe socket: it becomes the connection; what the old one carried
 * may be lost, so every accepted job is resumed and the rest submitted again. */
static void adopt_probe(void *user) {
    hired_client *c = user;
    pthread_mutex_lock(&c->mu);
    c->status_sent = false;
    for (cjob_t *j = c->jobs; j; j = j->next) {
        j->quiet = 0;
        if (j->epoch) j->need_resume = true, j->last_resume = 0;
        else j->need_send = true;
    }
    pthread_mutex_unlock(&c->mu);
}

/* Waiting while jobs or a status request are open; paused while the caller is behind on events
 * (the broker keeps what we do not read). */
static unsigned link_state(void *user) {
    hired_client *c = user;
    pthread_mutex_lock(&c->mu);
    unsigned st = (c->njobs > 0 || c->status_want ? BROKER_LINK_WAITING : 0) |
                  (c->nevents >= c->max_events ? BROKER_LINK_PAUSED : 0);
    pthread_mutex_unlock(&c->mu);
    return st;
}

static void heartbeat(void *user, void *sock) { send_simple(user, sock, WIRE_HEARTBEAT, NULL, 0); }

/* The link's round: the job table, then a status request; again within 50 ms for local
 * deadlines and resends. */
static int client_round(void *user, void *sock, int64_t now) {
    hired_client *c = user;
    pthread_mutex_lock(&c->mu);
    jobs_round(c, sock, now);
    if (c->status_want && !c->status_sent) {
        send_simple(c, sock, WIRE_STATUS, NULL, 0);
        c->status_sent = true;
    }
    pthread_mutex_unlock(&c->mu);
    return 50;
}

/* Goodbye: the broker cancels what is left. */
static void on_close(void *user, void *sock) {
    if (sock) send_simple(user, sock, WIRE_BYE, NULL, 0);
}

static const broker_link_ops_t k_link_ops = {
    .on_adopt = adopt_probe,
    .state = link_state,
    .heartbeat = heartbeat,
    .round = client_round,
    .on_message = on_message,
    .on_close = on_close,
};

// ---- public API -------------------------------------------------------------------------------

void hired_job_init(hired_job *job) {
    memset(job, 0, sizeof *job);
    wire_msg_t m;
    wire_msg_init(&m, WIRE_SUBMIT);
    job->params.max_tokens = m.params.max_tokens;
    job->params.temperature = m.params.temperature;
    job->params.top_p = m.params.top_p;
    job->params.top_k = m.params.top_k;
    job->params.seed = m.params.seed;
    job->params.budget = m.params.budget;
    job->params.strategy = "hired";
    job->params.alpha = m.params.alpha;
    job->params.newline = "hf";
    job->params.stream = true;
}

static void random_hex(char *out, int bytes) {
    uint8_t r[32];
    if (getrandom(r, (size_t)bytes, 0) != (ssize_t)bytes) {
        uint64_t t = (uint64_t)clock_now_ms() ^ (uint64_t)(uintptr_t)out ^ ((uint64_t)getpid() << 32);
        for (int i = 0; i < bytes; i++) r[i] = (uint8_t)(t >> (8 * (i % 8))) ^ (uint8_t)rand();
    }
    for (int i = 0; i < bytes; i++) snprintf(out + 2 * i, 3, "%02x", r[i]);
}

hired_client *hired_client_open(const char *endpoint, const hired_client_opts *opts, char *err_out) {
    char err[HIRED_ERR_LEN] = "";
    hired_client *c = NULL;
    curve_cfg_t cv = {.server_key = opts ? opts->curve_server_key : NULL,
                      .client_cert = opts ? opts->curve_client_cert : NULL};
    if (!endpoint || !endpoint[0] || strlen(endpoint) >= 256) {
        hired_errf(err, HIRED_EINVAL, "broker endpoint missing or longer than 255 characters");
        goto fail;
    }
    if (curve_check(&cv, err)) goto fail;
    if (!(c = mem_calloc(1, sizeof *c))) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        goto fail;
    }
    snprintf(c->endpoint, sizeof c->endpoint, "%s", endpoint);
    random_hex(c->session, 16);
    c->timeout_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : 600000;
    c->heartbeat_ms = opts && opts->heartbeat_ms > 0 ? opts->heartbeat_ms : 1000;
    c->liveness = opts && opts->liveness > 0 ? opts->liveness : 3;
    c->connect_timeout_ms = !opts || opts->connect_timeout_ms == 0 ? 10000 : opts->connect_timeout_ms;
    c->max_events = opts && opts->max_events > 0 ? opts->max_events : 65536;
    pthread_mutex_init(&c->mu, NULL);
    pthread_mutex_init(&c->status_mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    broker_link_opts_t lo = {
        .endpoint = endpoint,
        .name = "hired",
        .heartbeat_ms = c->heartbeat_ms,
        .liveness = c->liveness,
        .heartbeat_at_start = true,
        .policy = BROKER_LINK_PROBE,
        .backoff_max_ms = QUIET_MAX_MS,
        .unbounded_send = true, /* never refuse our own RESUME / ACK / CANCEL: what we send is ours to bound */
        .check_endpoint = true,
        .curve = &cv,
        .ops = &k_link_ops,
        .user = c,
    };
    if (!(c->link = broker_link_new(&lo, err)) || broker_link_start(c->link, err)) goto fail;
    return c;
fail:
    hired_client_destroy(&c);
    if (err_out) snprintf(err_out, HIRED_ERR_LEN, "%s", err);
    else log_error("hired_client: %s", err);
    return NULL;
}

hired_client *hired_client_new(const char *endpoint, const hired_client_opts *opts) {
    return hired_client_open(endpoint, opts, NULL);
}

void hired_client_destroy(hired_client **pc) {
    if (!pc || !*pc) return;
    hired_client *c = *pc;
    broker_link_destroy(&c->link); /* stops and joins the I/O thread */
    while (c->jobs) remove_job(c, c->jobs);
    while (c->ev_head) {
        ev_item_t *it = c->ev_head;
        c->ev_head = it->next;
        free(it->ev.text);
        mem_free(it);
    }
    free(c->status_json);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    pthread_mutex_destroy(&c->status_mu);
    mem_free(c);
    *pc = NULL;
}

/* The job's conversation as m's messages. HIRED_EINVAL / HIRED_ENOMEM with err. */
static int take_messages(wire_msg_t *m, const hired_job *job, char *err) {
    if (job->n_messages < 1 || job->n_messages > WIRE_MAX_MESSAGES)
        return hired_errf(err, HIRED_EINVAL, "a conversation has 1 to %d messages (got %d)", WIRE_MAX_MESSAGES,
                          job->n_messages);
    wire_message_t *msgs = mem_calloc((size_t)job->n_messages, sizeof *msgs);
    if (!msgs) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    int rc = HIRED_OK;
    for (int i = 0; i < job->n_messages && !rc; i++) {
        const hired_message *x = &job->messages[i];
        if (wire_role_parse(x->role, &msgs[i].role))
            rc = hired_errf(err, HIRED_EINVAL, "messages[%d].role must be system, user or assistant", i);
        else if (x->n_parts < 0 || x->n_parts > WIRE_MAX_CONTENT || (x->n_parts && !x->parts))
            rc = hired_errf(err, HIRED_EINVAL, "messages[%d] has %d parts (0 to %d)", i, x->n_parts, WIRE_MAX_CONTENT);
        else if (x->n_parts && !(msgs[i].parts = mem_calloc((size_t)x->n_parts, sizeof *msgs[i].parts)))
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        msgs[i].n_parts = rc ? 0 : (uint32_t)x->n_parts;
        for (int k = 0; !rc && k < x->n_parts; k++) /* borrowed: wire_msg_set_messages copies them */
            msgs[i].parts[k].text = (char *)x->parts[k].text;
    }
    if (!rc && wire_msg_set_messages(m, msgs, (uint32_t)job->n_messages)) rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
    for (int i = 0; i < job->n_messages; i++) mem_free(msgs[i].parts);
    mem_free(msgs);
    return rc;
}

int hired_submit_err(hired_client *c, const hired_job *job, char job_id_out[HIRED_JOB_ID_LEN], char *err) {
    char ebuf[HIRED_ERR_LEN];
    if (!err) err = ebuf;
    err[0] = 0;
    if (!c || !job || !job->model) return hired_errf(err, HIRED_EINVAL, "a client and a job with a model are required");
    const bool chat = job->messages != NULL;
    if (chat && (job->prompt || job->image))
        return hired_errf(err, HIRED_EINVAL, "a job is a prompt with an image or a conversation (messages), not both");
    if (!chat && (!job->prompt || !job->image))
        return hired_errf(err, HIRED_EINVAL, "a job needs a prompt and an image, or messages");
    if (chat && (job->n_images < 0 || job->n_images > WIRE_MAX_IMAGES || (job->n_images && !job->images)))
        return hired_errf(err, HIRED_EINVAL, "a conversation carries 0 to %d images (got %d)", WIRE_MAX_IMAGES,
                          job->n_images);
    cjob_t *j = mem_calloc(1, sizeof *j);
    if (!j) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    wire_msg_t *m = &j->submit;
    wire_msg_init(m, WIRE_SUBMIT);
    snprintf(m->session, sizeof m->session, "%s", c->session);
    int rc = HIRED_OK;
    if (job->id) {
        if (strlen(job->id) > WIRE_MAX_ID) {
            rc = hired_errf(err, HIRED_EINVAL, "job id longer than %d characters", WIRE_MAX_ID);
            goto fail;
        }
        strcpy(m->id, job->id);
    } else {
        random_hex(m->id, 16);
    }
    if (strlen(job->model) > WIRE_MAX_MODEL) {
        rc = hired_errf(err, HIRED_EINVAL, "model name longer than %d characters", WIRE_MAX_MODEL);
        goto fail;
    }
    strcpy(m->model, job->model);
    const hired_params *p = &job->params;
    m->params.max_tokens = p->max_tokens;
    m->params.temperature = p->temperature;
    m->params.top_p = p->top_p;
    m->params.top_k = p->top_k;
    m->params.seed = p->seed;
    m->params.budget = p->budget;
    m->params.alpha = p->alpha;
    m->params.stream = p->stream;
    if (snprintf(m->params.strategy, sizeof m->params.strategy, "%s", p->strategy ? p->strategy : "hired") >=
            (int)sizeof m->params.strategy ||
        snprintf(m->params.newline, sizeof m->params.newline, "%s", p->newline ? p->newline : "hf") >=
            (int)sizeof m->params.newline) {
        rc = hired_errf(err, HIRED_EINVAL, "unknown strategy or newline policy");
        goto fail;
    }
    int dl = job->deadline_ms > 0 ? job->deadline_ms : c->timeout_ms;
    m->deadline_ms = (uint32_t)dl;
    if (chat ? (rc = take_messages(m, job, err)) != 0 : (rc = wire_msg_set_prompt(m, job->prompt)) != 0) {
        if (!chat) hired_errf(err, rc, "out of memory");
        goto fail;
    }
    const hired_image one = {job->image, job->image_len};
    const hired_image *imgs = chat ? job->images : &one;
    const int nimg = chat ? job->n_images : 1;
    size_t sz[WIRE_MAX_IMAGES];
    for (int i = 0; i < nimg; i++) sz[i] = imgs[i].bytes ? imgs[i].len : 0;
    rc = wire_validate(m, NULL, err);
    if (rc == 0) rc = wire_check_payloads(m, nimg, sz, NULL, err);
    if (rc) {
        log_debug("hired_submit: %s", err);
        rc = rc == HIRED_ERANGE ? HIRED_ERANGE : HIRED_EINVAL;
        goto fail;
    }
    for (int i = 0; i < nimg; i++) {
        if (!(j->image[i] = malloc(imgs[i].len))) {
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
            goto fail;
        }
        j->nimages = i + 1;
        memcpy(j->image[i], imgs[i].bytes, imgs[i].len);
        j->image_len[i] = imgs[i].len;
    }
    j->need_send = true;
    int64_t now = clock_now_ms();
    j->submitted = j->last_rx = now;
    j->deadline = now + dl + (int64_t)c->heartbeat_ms * c->liveness * 2;
    pthread_mutex_lock(&c->mu);
    if (find_job(c, m->id)) {
        pthread_mutex_unlock(&c->mu);
        rc = hired_errf(err, HIRED_EINVAL, "job id '%s' is already pending", m->id);
        goto fail;
    }
    j->next = c->jobs;
    c->jobs = j;
    c->njobs++;
    if (job_id_out) snprintf(job_id_out, HIRED_JOB_ID_LEN, "%s", m->id);
    pthread_mutex_unlock(&c->mu);
    wake(c);
    return HIRED_OK;
fail:
    free_job(j);
    return rc;
}

int hired_submit(hired_client *c, const hired_job *job, char job_id_out[HIRED_JOB_ID_LEN]) {
    return hired_submit_err(c, job, job_id_out, NULL);
}

int hired_next_event(hired_client *c, int timeout_ms, hired_event *ev) {
    memset(ev, 0, sizeof *ev);
    if (!c) return HIRED_EINVAL;
    struct timespec until;
    clock_cond_deadline(&until, timeout_ms > 0 ? timeout_ms : 0);
    pthread_mutex_lock(&c->mu);
    while (!c->ev_head && timeout_ms != 0) {
        if (timeout_ms < 0) pthread_cond_wait(&c->cv, &c->mu);
        else if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
    }
    ev_item_t *it = c->ev_head;
    if (it) {
        c->ev_head = it->next;
        if (!c->ev_head) c->ev_tail = NULL;
        if (c->nevents-- == c->max_events) wake(c); /* reading can resume */
    }
    pthread_mutex_unlock(&c->mu);
    if (!it) return HIRED_ETIMEOUT;
    *ev = it->ev;
    mem_free(it);
    return HIRED_OK;
}

void hired_event_clear(hired_event *ev) {
    if (!ev) return;
    free(ev->text);
    ev->text = NULL;
}

int hired_cancel(hired_client *c, const char *job_id) {
    if (!c || !job_id || strlen(job_id) > WIRE_MAX_ID) return HIRED_EINVAL;
    pthread_mutex_lock(&c->mu);
    cjob_t *j = find_job(c, job_id);
    if (j) {
        j->cancel = true;
        j->need_resume = true; /* the next round sends RESUME + CANCEL; repeated until it ends */
        j->last_resume = 0;
        if (!j->epoch) j->need_send = true; /* not accepted yet: the SUBMIT must arrive first */
    }
    pthread_mutex_unlock(&c->mu);
    if (!j) return HIRED_ENOTFOUND;
    wake(c);
    return HIRED_OK;
}

int hired_status(hired_client *c, char **json_out) {
    *json_out = NULL;
    if (!c) return HIRED_EINVAL;
    int timeout = c->timeout_ms < 10000 ? c->timeout_ms : 10000;
    pthread_mutex_lock(&c->mu);
    if (!c->heard && c->connect_timeout_ms > 0 && c->connect_timeout_ms < timeout) timeout = c->connect_timeout_ms;
    pthread_mutex_unlock(&c->mu);
    struct timespec until;
    clock_cond_deadline(&until, timeout);
    pthread_mutex_lock(&c->status_mu);
    pthread_mutex_lock(&c->mu);
    free(c->status_json);
    c->status_json = NULL;
    c->status_want = true;
    c->status_sent = false;
    wake(c);
    while (!c->status_json)
        if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT) break;
    *json_out = c->status_json;
    c->status_json = NULL;
    c->status_want = false;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&c->status_mu);
    return *json_out ? HIRED_OK : HIRED_ETIMEOUT;
}

int hired_pending(hired_client *c) {
    pthread_mutex_lock(&c->mu);
    int n = c->njobs;
    pthread_mutex_unlock(&c->mu);
    return n;
}
