/* broker.h — hired-broker's internals, shared by its modules (not a public API).
 *
 *   broker.c   the poll loop, sockets, dispatch, timers, open/close
 *   frontend.c client messages (SUBMIT, RESUME, ACK, CANCEL, BYE, STATUS, HEARTBEAT) and the
 *              delivery pump that streams each job to its client
 *   backend.c  worker messages (READY, RESULT, TOKEN, DONE, ERROR, DISCONNECT) with the attempt
 *              fence, worker trust (quarantine, migration of stalled work)
 *   jobs.c     job table (by client owner + client id, and by internal id), the two queues,
 *              token log, byte accounting
 *   clients.c  client sessions: owner, route, liveness, the jobs each one holds
 *   workers.c  worker registry, credit (assignments), known models and their fingerprints
 *   stats.c    counters, per-stage timing summaries, the STATUS JSON
 *   main.c     configuration (common/cfg), signals, readiness (common/proc), run
 *
 * Invariants: a job is in at most one queue; a job in state ENCODING/DECODING has exactly one
 * worker whose assignment list holds it under its current attempt; a worker never holds more
 * than its credit (live plus cancelled-but-unanswered "zombie" assignments); every job belongs
 * to exactly one client session (its delivery target) and to that session's owner; job->bytes
 * is what the job counts in its client's and the broker's byte totals. Payload frames (image,
 * tensor) are zmq messages owned by the job and sent as reference-counted copies, never byte
 * copies. Single-threaded: everything runs on the thread that calls broker_run.
 * The hash tables here are written by hand (FNV-1a buckets): czmq's zhashx and glib's
 * GHashTable abort the process when an allocation fails, and the broker answers an allocation
 * failure with an ERROR and keeps serving (tested through mem.c's fault hook). */
#ifndef HIRED_BROKER_H
#define HIRED_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "curve.h"
#include "wire.h"

#define BROKER_ROUTE_MAX 255
#define BROKER_OWNER_MAX 80    /* "key:" + 40 Z85 characters, or "session:" + 64 hex digits */
#define BROKER_AVOID 4         /* workers a job remembers as having failed it */

// ---- configuration --------------------------------------------------------------------------

typedef struct broker_cfg {
    char *frontend;             /* client endpoint to bind */
    char *backend;              /* worker endpoint to bind */
    char *ports_file;           /* if non-empty: write the bound endpoints here (tests) */
    int64_t heartbeat_ms;       /* heartbeat interval, both ways */
    int64_t liveness;           /* intervals of silence before a worker is dead */
    int64_t max_attempts;       /* tries per stage (encode, decode) */
    int64_t attempt_timeout_ms; /* a worker holding a job without progress this long loses it */
    int64_t deadline_ms;        /* default job deadline */
    int64_t max_deadline_ms;    /* cap on a client's deadline_ms */
    int64_t queue_max;          /* per-service queue bound (BUSY beyond) */
    int64_t result_ttl_ms;      /* a finished job whose client never acknowledges it is dropped this long after
                                   its end, even while the client lives (a backstop) */
    int64_t model_ttl_ms;       /* a model stays known this long after its last worker left */
    int64_t startup_grace_ms;   /* unknown models are queued, not refused, this long after start; -1 = auto */
    int64_t max_image_bytes;    /* SUBMIT limit of one image */
    int64_t max_job_image_bytes;/* SUBMIT limit of all images of one job together */
    int64_t max_prompt_bytes;   /* prompt limit */
    int64_t client_grace_ms;    /* a client silent this long is gone: its jobs are cancelled */
    int64_t client_hwm;         /* messages queued towards one client connection before sends wait */
    int64_t max_stream_bytes;   /* one job's buffered stream (token log + text) */
    int64_t max_queued_image_bytes; /* images of every job not yet encoded (BUSY beyond) */
    int64_t max_buffered_bytes; /* everything held for jobs: images, encoder results, streams (BUSY beyond) */
    int64_t max_client_bytes;   /* the same, per client (BUSY beyond) */
    int64_t max_client_jobs;    /* jobs one client holds at once, finished-unacknowledged ones included */
    int64_t max_worker_capacity;/* a worker's announced capacity is capped to this */
    int64_t quarantine_after;   /* consecutive failed attempts that quarantine a worker */
    int64_t quarantine_ms;      /* how long a quarantined worker gets no new jobs */
    int64_t migrate_factor;     /* an idle worker takes over a job stalled this many times longer than it
                                   would need (0 = never) */
    char *curve_server_cert;    /* this broker's secret zcert file; "" = no CURVE */
    char *curve_authorized_keys;/* directory of authorised client public certificates */
    char *curve_worker_keys;    /* directory of authorised worker public certificates */
    char *curve_admin_keys;     /* directory of operator certificates: STATUS lists every job (optional) */
} broker_cfg_t;

// ---- jobs -----------------------------------------------------------------------------------

typedef enum { JOB_QUEUED_ENC = 0, JOB_ENCODING, JOB_QUEUED_DEC, JOB_DECODING, JOB_FINISHED } job_state_t;

typedef struct worker worker_t;
typedef struct client client_t;

typedef struct tok {
    int32_t token;
    uint32_t off, len; /* into job.text */
} tok_t;

typedef struct job {
    char id[WIRE_MAX_ID + 1];   /* the client's id (unique per owner) */
    char wid[WIRE_MAX_ID + 1];  /* the broker's internal id, the only one workers see */
    job_state_t state;
    struct job *hnext, *whnext; /* hash chains: by (owner, id), by wid */
    struct job *prev, *next;    /* all-jobs list */
    struct job *qprev, *qnext;  /* queue links (when queued) */
    struct job *cprev, *cnext;  /* its client's job list */
    int queue;                  /* -1, 0 encode, 1 decode */
    client_t *client;           /* the session it is delivered to (its owner's) */
    wire_msg_t req;             /* the SUBMIT header (id, model, prompt or messages, params) */
    uint64_t req_hash;          /* of model, text, params and image bytes: a reused id must match */
    zmq_msg_t images[WIRE_MAX_IMAGES];  /* the SUBMIT's image frames [nimages], until encoded */
    zmq_msg_t tensors[WIRE_MAX_IMAGES]; /* the encoder's tensor frames [ntensors], until the job ends */
    int nimages, ntensors;      /* a job of no images (text only) goes straight to the decode queue */
    wire_msg_t enc;             /* the RESULT header (visual records, encoder timings, fingerprint) */
    size_t enc_bytes;           /* that RESULT's header + tensor frame sizes as received */
    int64_t t_accept, deadline, t_queued, attempt_deadline, t_dispatch, t_progress, finished_at;
    double queue_ms;            /* time spent in queues so far */
    int attempts[2];            /* per stage, counted against max_attempts */
    uint32_t fence;             /* dispatch number: the `attempt` of the last JOB sent */
    worker_t *worker;           /* holder while ENCODING/DECODING */
    uint64_t avoid[BROKER_AVOID]; /* serial numbers of workers that failed this job */
    int navoid;
    tok_t *toks;                /* token log [ntok] for delivery, replay and dedup */
    uint32_t ntok, captok;
    uint32_t attempt_seq;       /* TOKENs received from the current attempt (replays included) */
    char *text;                 /* concatenated token texts [text_len] (NUL-terminated) */
    size_t text_len, text_cap;
    wire_msg_t final;           /* DONE or ERROR for the client (FINISHED) */
    uint32_t sent;              /* TOKENs handed to the client's connection (next seq to send) */
    uint32_t sent_gen;          /* the client's route_gen when they were handed over */
    uint32_t gen_seq;           /* the first seq handed to the connection of sent_gen */
    bool final_sent;            /* the final message too */
    uint32_t final_gen;         /* ... on the connection of this route_gen */
    int64_t final_sent_at;
    size_t bytes;               /* what the job counts in its client's and the broker's totals */
} job_t;

typedef struct job_table {
    job_t **buckets, **wbuckets;
    size_t nbuckets, count, active;
    job_t *all;                 /* every job, newest first */
    job_t *qhead[2], *qtail[2];
    size_t qlen[2];
    uint64_t next_wid;
    size_t bytes_images;        /* image frames of jobs not yet encoded */
    size_t bytes_total;         /* sum of job.bytes */
} job_table_t;

int jobs_init(job_table_t *t, uint64_t epoch);
void jobs_free(job_table_t *t);
/* The job of owner with client id `id`, or NULL. */
job_t *jobs_find(job_table_t *t, const char *owner, const char *id);
/* The job with internal id wid (workers' messages), or NULL. */
job_t *jobs_find_wid(job_table_t *t, const char *wid);
/* New job (owner, id) with a fresh internal id, in the table, in no queue, in c's list (c may
 * be NULL in unit tests). NULL on ENOMEM. */
job_t *jobs_add(job_table_t *t, client_t *c, const char *id);
/* Unlinks and frees a job (must be in no queue and held by no worker); its bytes leave the
 * totals. */
void jobs_remove(job_table_t *t, job_t *j);
void jobs_enqueue(job_table_t *t, job_t *j, int q, bool front, int64_t now);
void jobs_dequeue(job_table_t *t, job_t *j, int64_t now);
/* Appends a token to the log. HIRED_ENOMEM. */
int jobs_log_token(job_t *j, int32_t token, const char *text);
/* Releases the payloads and marks FINISHED with `final` moved in. */
void jobs_finish(job_table_t *t, job_t *j, wire_msg_t *final, int64_t now);
/* Recomputes j->bytes from what it holds and moves the difference into the totals (its
 * client's and the table's). Call after any change to its payloads or stream. */
void jobs_account(job_table_t *t, job_t *j);
/* The bytes of j's stream (token log and text). */
size_t jobs_stream_bytes(const job_t *j);
/* Moves j to client c (another session of the same owner). */
void jobs_move(job_t *j, client_t *c);
/* Hash of model, text (prompt or messages), params and the image frames images[0..n). */
uint64_t jobs_hash_request(const wire_msg_t *req, zmq_msg_t *images, int n);
/* Bytes of j's image frames. */
size_t jobs_image_bytes(const job_t *j);
/* Closes j's image frames (encoded or finished); their bytes leave the queued-image total. */
void jobs_drop_images(job_table_t *t, job_t *j);
const char *jobs_state_name(job_state_t s);

// ---- clients --------------------------------------------------------------------------------

struct client {
    char session[WIRE_MAX_SESSION + 1];
    char owner[BROKER_OWNER_MAX + 1]; /* "key:<z85>" under CURVE (every session of a key is one
                                         owner), else "session:<secret>" */
    bool admin;                 /* an operator key (curve.admin_keys): STATUS lists every job */
    uint8_t route[BROKER_ROUTE_MAX];
    size_t route_len;           /* the connection it last spoke from */
    uint32_t route_gen;         /* changes with the route: what was handed to an older connection
                                   may be lost, what the current one holds is on its way */
    bool reachable;             /* false once a send found no such connection, until it speaks */
    bool blocked;               /* a send found the connection full: retried by the timers */
    int64_t last_seen;
    job_t *jobs;                /* its jobs (job.cnext), newest first */
    int njobs;
    size_t bytes;               /* sum of its jobs' bytes */
    struct client *hnext, *prev, *next;
};

typedef struct client_table {
    client_t **buckets;
    size_t nbuckets, count;
    client_t *all;
} client_table_t;

int clients_init(client_table_t *t);
void clients_free(client_table_t *t);
client_t *clients_find(client_table_t *t, const char *session);
/* New session (the caller checked it does not exist). NULL on ENOMEM. */
client_t *clients_add(client_table_t *t, const char *session, const char *owner, bool admin);
/* Unlinks and frees c; its job list must be empty. */
void clients_remove(client_table_t *t, client_t *c);

// ---- workers --------------------------------------------------------------------------------

typedef struct assignment {
    job_t *job;                 /* NULL once cancelled (a zombie waiting for its answer) */
    char wid[WIRE_MAX_ID + 1];
    uint32_t attempt;
    int64_t zombie_expires;
} assignment_t;

struct worker {
    uint8_t route[BROKER_ROUTE_MAX];
    size_t route_len;
    uint64_t serial;            /* unique per registration (jobs remember whom to avoid) */
    int service;                /* 0 encode, 1 decode */
    char model[WIRE_MAX_MODEL + 1];
    int capacity;               /* announced, capped by broker.max_worker_capacity */
    int credit;                 /* jobs it may hold now: starts at 2, +1 per success up to
                                   capacity, halved by a failure (slow start) */
    assignment_t *asg;          /* [capacity] */
    int nasg;
    int64_t last_seen, registered;
    uint64_t served, failed;
    int strikes;                /* consecutive failed attempts */
    int64_t quarantined_until;
    double ms_first, ms_token, ms_job; /* moving averages: dispatch -> first token, between
                                          tokens, dispatch -> RESULT/DONE (0 = not yet seen) */
    uint32_t load[4];           /* its last HEARTBEAT's load: decode batch, KV blocks used / all,
                                   jobs waiting in it for KV blocks (not 0: it takes no new job) */
    worker_t *next;
};

typedef struct model_seen {
    char model[WIRE_MAX_MODEL + 1];
    char fingerprint[WIRE_MAX_FINGERPRINT + 1]; /* of the checkpoint serving this name */
    int64_t last_seen[2];       /* when a worker of it was last registered, per service */
    bool seen[2];               /* whether one ever was */
} model_seen_t;

typedef struct worker_reg {
    worker_t *head;
    int count;
    uint64_t next_serial;
    model_seen_t *models;
    int nmodels, capmodels;
} worker_reg_t;

worker_t *workers_find(worker_reg_t *r, const void *route, size_t len);
/* Registers (or updates) a worker. capacity is already capped. NULL on ENOMEM. */
worker_t *workers_add(worker_reg_t *r, const void *route, size_t len, int service, const char *model,
                      int capacity, int64_t now);
/* Unlinks and frees w; its assignments must have been dealt with. */
void workers_remove(worker_reg_t *r, worker_t *w, int64_t now);
void workers_free(worker_reg_t *r);
/* Whether w may take a new job now (credit left, not quarantined). */
bool workers_has_credit(const worker_t *w, int64_t now);
/* The worker of service/model that should take job j now: least loaded among those with credit,
 * skipping quarantined workers and the ones j avoids while any other worker of the pool could
 * take it (now or later). NULL when none should. */
worker_t *workers_pick(worker_reg_t *r, int service, const char *model, const job_t *j, int64_t now);
int workers_assign(worker_t *w, job_t *j, uint32_t attempt);
/* Removes the assignment (wid, attempt); returns whether there was one. */
bool workers_release(worker_t *w, const char *wid, uint32_t attempt);
/* Turns the live assignment of j into a zombie expiring at `until`. */
void workers_zombify(worker_t *w, job_t *j, int64_t until);
/* A successful attempt: strikes reset, credit grows (slow start). */
void workers_success(worker_t *w);
/* A failed attempt (timeout, malformed reply, stalled, inconsistent): credit halves; after
 * `after` consecutive ones the worker is quarantined until now + ms. Returns true when this
 * strike quarantined it. */
bool workers_strike(worker_t *w, int after, int64_t ms, int64_t now);
/* A model is known while registered and model_ttl after. */
bool workers_model_known(worker_reg_t *r, int service, const char *model, int64_t now, int64_t ttl);
void workers_touch_models(worker_reg_t *r, int64_t now);
/* The fingerprint serving model (or NULL when no worker of it is known within ttl). */
const char *workers_model_fingerprint(worker_reg_t *r, const char *model, int64_t now, int64_t ttl);
/* Records model's fingerprint (a READY accepted). HIRED_ENOMEM. */
int workers_set_fingerprint(worker_reg_t *r, const char *model, const char *fp, int64_t now);

// ---- stats ----------------------------------------------------------------------------------

#define STATS_RING 1024

typedef struct stats {
    uint64_t submitted, accepted, completed, failed, busy, timeouts, requeued, cancelled, attached,
        resumed, delivered, abandoned, bad_messages, workers_lost, workers_refused, quarantined, migrated,
        fenced, send_retries, unreachable;
    uint64_t count[WIRE_STAGE_COUNT];
    double sum[WIRE_STAGE_COUNT];
    double ring[WIRE_STAGE_COUNT][STATS_RING];
} stats_t;

void stats_add_timings(stats_t *s, const wire_msg_t *done);
/* count / mean / p50 / p95 of one stage (p over the ring). */
void stats_summary(const stats_t *s, int stage, uint64_t *count, double *mean, double *p50, double *p95);

// ---- the broker -----------------------------------------------------------------------------

typedef struct broker {
    broker_cfg_t cfg;
    wire_limits_t lim;
    void *ctx, *front, *back;
    curve_cfg_t curve;          /* server half, borrowed from cfg (all empty: no CURVE) */
    curve_auth_t *zap;          /* ZAP handler of ctx when CURVE is on */
    char front_ep[256], back_ep[256];
    uint64_t epoch;
    int64_t started, next_heartbeat, next_timers;
    job_table_t jobs;
    client_table_t clients;
    worker_reg_t reg;
    stats_t stats;
    bool dirty;                 /* dispatch needed */
    size_t trim_peak;           /* bytes held at the last heap trim's high point */
} broker_t;

/* STATUS JSON for client c (NULL: anonymous) (malloc'd, caller frees), or NULL on ENOMEM:
 * pools, queues, counters and timings for everybody; the jobs of c's owner (every job for an
 * admin). */
char *stats_status_json(const broker_t *b, const client_t *c, int64_t now);

/* Binds both sockets (writes cfg.ports_file). With cfg->curve_server_cert set, both are CURVE
 * servers: the frontend accepts the keys in curve_authorized_keys (and curve_admin_keys), the
 * backend those in curve_worker_keys (common/curve.h). cfg's strings are borrowed until
 * broker_close. 0 or HIRED_E* with err; call broker_close either way. */
int broker_open(broker_t *b, const broker_cfg_t *cfg, char *err);
/* Serves until proc_stop_requested() (SIGTERM / SIGINT through proc_signals_install), sending
 * WATCHDOG=1 from the poll loop when systemd's watchdog is on (proc.h). 0 or HIRED_EIO. */
int broker_run(broker_t *b);
/* Closes the sockets, stops the ZAP handler, ends the context, frees the tables. */
void broker_close(broker_t *b);

// ---- between the modules ----------------------------------------------------------------------

/* frontend.c */
void front_message(broker_t *b, wire_parts_t *p, int64_t now);
/* Sends what j's client has not yet been handed (TOKENs from j->sent, then the final message),
 * as far as its connection takes them. */
void front_pump(broker_t *b, job_t *j, int64_t now);
/* Ends a job with ERROR (delivered to its client like any final message). */
void front_fail(broker_t *b, job_t *j, int code, const char *msg, int64_t now);
/* Retries blocked clients, re-sends unacknowledged finals, ends silent sessions. */
void front_timers(broker_t *b, int64_t now);
/* Cancels or drops every job of c and removes the session (it said BYE or went silent). */
void front_drop_client(broker_t *b, client_t *c, const char *why, int64_t now);

/* backend.c */
void back_message(broker_t *b, wire_parts_t *p, int64_t now);
/* j's worker lost its attempt (j->worker is cleared here): queue j again at the front, or end it
 * with ERROR "attempts exhausted". count: the attempt counts against max_attempts. */
void back_requeue(broker_t *b, job_t *j, const char *why, bool count, int64_t now);
/* Takes j away from its worker (CANCEL to it, its credit stays taken until it answers). */
void back_withdraw(broker_t *b, job_t *j, int64_t now);
/* The attempt of w at j failed for reason `why` (timeout, stall, inconsistent reply): CANCEL it,
 * the job avoids w, w takes a strike (quarantine), the job is retried elsewhere (count: the
 * attempt counts against max_attempts). */
void back_attempt_failed(broker_t *b, worker_t *w, job_t *j, const char *why, bool count, int64_t now);
/* Worker w is gone: every live job it held goes back to a queue. */
void back_worker_lost(broker_t *b, worker_t *w, const char *why, bool count, int64_t now);
/* Idle fast workers take over stalled jobs (broker.migrate_factor). */
void back_migrate(broker_t *b, int64_t now);

/* broker.c: small senders shared by the modules */
void broker_send_simple(void *sock, const uint8_t *route, size_t len, wire_type_t t, const char *id, uint64_t epoch);
void broker_send_error(void *sock, const uint8_t *route, size_t len, const char *id, int code, const char *msg);
/* Decodes parts [route][header][payload...] from either socket into m (initialised either way).
 * 0, or an ERROR already sent to the peer. */
int broker_decode(broker_t *b, void *sock, wire_parts_t *p, wire_msg_t *m);

#endif
