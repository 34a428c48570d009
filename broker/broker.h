/* broker.h — hired-broker's internals, shared by its modules (not a public API).
 *
 *   broker.c   the poll loop, frontend (clients) and backend (workers) message handlers,
 *              dispatch, timers
 *   jobs.c     job table (hash by id), the two queues, token log, result cache
 *   workers.c  worker registry, credit (assignments), known models
 *   stats.c    counters, per-stage timing summaries, the STATUS JSON
 *   main.c     configuration (common/cfg), signals, readiness (common/proc), run
 *
 * Invariants: a job is in at most one queue; a job in state ENCODING/DECODING has exactly one
 * worker whose assignment list holds it; a worker never holds more than `capacity` assignments
 * (live plus cancelled-but-unanswered "zombies"). Payload frames (image, tensor) are zmq
 * messages owned by the job and sent as reference-counted copies, never byte copies.
 * Single-threaded: everything runs on the thread that calls broker_run. */
#ifndef HIRED_BROKER_H
#define HIRED_BROKER_H

#include <stdbool.h>
#include <stdint.h>

#include "curve.h"
#include "wire.h"

#define BROKER_ROUTE_MAX 255
#define BROKER_JOB_ROUTES 4

// ---- configuration --------------------------------------------------------------------------

typedef struct broker_cfg {
    char *frontend;             /* client endpoint to bind */
    char *backend;              /* worker endpoint to bind */
    char *ports_file;           /* if non-empty: write the bound endpoints here (tests) */
    int64_t heartbeat_ms;       /* heartbeat interval, both ways */
    int64_t liveness;           /* intervals of silence before a peer is dead */
    int64_t max_attempts;       /* tries per stage (encode, decode) */
    int64_t attempt_timeout_ms; /* a worker holding a job without progress this long loses it */
    int64_t deadline_ms;        /* default job deadline */
    int64_t max_deadline_ms;    /* cap on a client's deadline_ms */
    int64_t queue_max;          /* per-service queue bound (BUSY beyond) */
    int64_t result_ttl_ms;      /* finished jobs stay in the result cache this long */
    int64_t model_ttl_ms;       /* a model stays known this long after its last worker left */
    int64_t startup_grace_ms;   /* unknown models are queued, not refused, this long after start; -1 = auto */
    int64_t max_image_bytes;    /* SUBMIT image limit */
    int64_t max_prompt_bytes;   /* prompt limit */
    char *curve_server_cert;    /* this broker's secret zcert file; "" = no CURVE */
    char *curve_authorized_keys;/* directory of authorised public zcert files (clients, workers) */
} broker_cfg_t;

// ---- jobs -----------------------------------------------------------------------------------

typedef enum { JOB_QUEUED_ENC = 0, JOB_ENCODING, JOB_QUEUED_DEC, JOB_DECODING, JOB_FINISHED } job_state_t;

typedef struct worker worker_t;

typedef struct tok {
    int32_t token;
    uint32_t off, len; /* into job.text */
} tok_t;

typedef struct job {
    char id[WIRE_MAX_ID + 1];
    job_state_t state;
    struct job *hnext;          /* hash chain */
    struct job *prev, *next;    /* all-jobs list */
    struct job *qprev, *qnext;  /* queue links (when queued) */
    int queue;                  /* -1, 0 encode, 1 decode */
    wire_msg_t req;             /* the SUBMIT header (id, model, prompt, params) */
    uint64_t req_hash;          /* of model, prompt, params: a reused id must match */
    zmq_msg_t image;            /* until encoded */
    zmq_msg_t tensor;           /* encoder output, until the job ends */
    bool has_image, has_tensor;
    wire_msg_t enc;             /* the RESULT header (result fields, encoder timings) */
    size_t enc_bytes;           /* that RESULT's header + tensor frame sizes as received */
    uint8_t route[BROKER_JOB_ROUTES][BROKER_ROUTE_MAX];
    size_t route_len[BROKER_JOB_ROUTES]; /* clients to answer: every connection that submitted
                                            this id (newest last; the oldest drops out) */
    int nroutes;
    int64_t t_accept, deadline, t_queued, attempt_deadline, expires;
    double queue_ms;            /* time spent in queues so far */
    int attempts[2];            /* per stage */
    worker_t *worker;           /* holder while ENCODING/DECODING */
    tok_t *toks;                /* token log [ntok] for replay and dedup */
    uint32_t ntok, captok;
    char *text;                 /* concatenated token texts [text_len] (NUL-terminated) */
    size_t text_len, text_cap;
    wire_msg_t final;           /* DONE or ERROR sent to the client (FINISHED) */
} job_t;

typedef struct job_table {
    job_t **buckets;
    size_t nbuckets, count, active;
    job_t *all;                 /* every job, newest first */
    job_t *qhead[2], *qtail[2];
    size_t qlen[2];
} job_table_t;

int jobs_init(job_table_t *t);
void jobs_free(job_table_t *t);
job_t *jobs_find(job_table_t *t, const char *id);
/* New job with id, in the table, in no queue. NULL on ENOMEM. */
job_t *jobs_add(job_table_t *t, const char *id);
/* Unlinks and frees a job (must be in no queue and held by no worker). */
void jobs_remove(job_table_t *t, job_t *j);
void jobs_enqueue(job_table_t *t, job_t *j, int q, bool front, int64_t now);
void jobs_dequeue(job_table_t *t, job_t *j, int64_t now);
/* Appends a token to the log. HIRED_ENOMEM. */
int jobs_log_token(job_t *j, int32_t token, const char *text);
/* Releases the payloads and marks FINISHED with `final` moved in (cache until expires). */
void jobs_finish(job_table_t *t, job_t *j, wire_msg_t *final, int64_t expires, int64_t now);
uint64_t jobs_hash_request(const wire_msg_t *req);
const char *jobs_state_name(job_state_t s);

// ---- workers --------------------------------------------------------------------------------

typedef struct assignment {
    job_t *job;                 /* NULL once cancelled (a zombie waiting for its answer) */
    char id[WIRE_MAX_ID + 1];
    int64_t zombie_expires;
} assignment_t;

struct worker {
    uint8_t route[BROKER_ROUTE_MAX];
    size_t route_len;
    int service;                /* 0 encode, 1 decode */
    char model[WIRE_MAX_MODEL + 1];
    int capacity;
    assignment_t *asg;          /* [capacity] */
    int nasg;
    int64_t last_seen, registered;
    uint64_t served;
    worker_t *next;
};

typedef struct model_seen {
    int service;
    char model[WIRE_MAX_MODEL + 1];
    int64_t last_seen;          /* when a worker of it was last registered */
} model_seen_t;

typedef struct worker_reg {
    worker_t *head;
    int count;
    model_seen_t *models;
    int nmodels, capmodels;
} worker_reg_t;

worker_t *workers_find(worker_reg_t *r, const void *route, size_t len);
/* Registers (or updates) a worker. NULL on ENOMEM. */
worker_t *workers_add(worker_reg_t *r, const void *route, size_t len, int service, const char *model,
                      int capacity, int64_t now);
/* Unlinks and frees w; its assignments must have been dealt with. */
void workers_remove(worker_reg_t *r, worker_t *w, int64_t now);
void workers_free(worker_reg_t *r);
/* Least-loaded worker of service/model with free credit, or NULL. */
worker_t *workers_pick(worker_reg_t *r, int service, const char *model);
int workers_assign(worker_t *w, job_t *j);
/* Removes the assignment for id; returns whether there was one. */
bool workers_release(worker_t *w, const char *id);
/* Turns the live assignment of j into a zombie expiring at `until`. */
void workers_zombify(worker_t *w, job_t *j, int64_t until);
/* A model is known while registered and model_ttl after. */
bool workers_model_known(worker_reg_t *r, int service, const char *model, int64_t now, int64_t ttl);
void workers_touch_models(worker_reg_t *r, int64_t now);

// ---- stats ----------------------------------------------------------------------------------

#define STATS_RING 1024

typedef struct stats {
    uint64_t submitted, accepted, completed, failed, busy, timeouts, requeued, cancelled, attached,
        cache_hits, bad_messages, workers_lost;
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
    worker_reg_t reg;
    stats_t stats;
    bool dirty;                 /* dispatch needed */
} broker_t;

/* STATUS JSON (malloc'd, caller frees), or NULL on ENOMEM. */
char *stats_status_json(const broker_t *b, int64_t now);

/* Binds both sockets (writes cfg.ports_file). With cfg->curve_server_cert set, both are CURVE
 * servers and only peers whose public keys are in cfg->curve_authorized_keys are served
 * (common/curve.h). cfg's strings are borrowed until broker_close. 0 or HIRED_E* with err;
 * call broker_close either way. */
int broker_open(broker_t *b, const broker_cfg_t *cfg, char *err);
/* Serves until proc_stop_requested() (SIGTERM / SIGINT through proc_signals_install), sending
 * WATCHDOG=1 from the poll loop when systemd's watchdog is on (proc.h). 0 or HIRED_EIO. */
int broker_run(broker_t *b);
/* Closes the sockets, stops the ZAP handler, ends the context, frees the tables. */
void broker_close(broker_t *b);

#endif
