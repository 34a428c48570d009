/* worker_conn.h — the worker side of the hired protocol, for hired-encoder and hired-decoder:
 * one DEALER connection to the broker's backend, READY (service, model, capacity), JOB
 * messages handed to the caller, RESULT / TOKEN / DONE / ERROR sent back, heartbeats,
 * reconnect with a fresh READY when the broker is lost, DISCONNECT when stopping.
 *
 * Threading: a background I/O thread (common/broker_link.h, shared with libhired) owns the socket
 * and does heartbeats and reconnects by itself, so a worker busy for seconds in a forward pass stays alive for the broker. Every
 * function below may be called from any thread at any time (one internal mutex); sends are
 * queued and return at once. A decoder with capacity N typically runs N threads that each loop
 * on worker_conn_next_job, or one thread that batches jobs.
 *
 * Job contract (docs/protocol.md §4): every job taken ends with exactly one terminal send —
 * worker_conn_send_result (encode), worker_conn_send_done (decode) or worker_conn_send_error —
 * even when worker_conn_cancelled() says the broker no longer wants it (the send is then
 * dropped or just returns credit). Jobs of a previous broker session (after a reconnect) count
 * as cancelled; whatever is sent for them is dropped.
 * Fencing: a job is held as (id, attempt). Every message about it carries that attempt, so the
 * broker can refuse the answers of an attempt it has given up on; a newer attempt of an id this
 * worker still serves is held back until the older one has ended (one thread per job id).
 *
 * Stopping: worker_conn_stop() (async-signal-safe, for SIGTERM handlers) sends DISCONNECT —
 * the broker re-queues this worker's jobs elsewhere at once — after which next_job returns
 * HIRED_EIO, every held job reads as cancelled and sends are dropped. Then destroy.
 * Not here: what a job computes (pipeline/, behind encoder_worker/ and decoder_worker/). */
#ifndef HIRED_WORKER_CONN_H
#define HIRED_WORKER_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "curve.h"
#include "wire.h"

typedef struct worker_conn worker_conn_t;

typedef struct worker_conn_opts {
    const char *endpoint;         /* broker backend, e.g. "tcp://127.0.0.1:5556" */
    const char *service;          /* "encode" or "decode" */
    const char *model;            /* model name jobs must ask for */
    int capacity;                 /* jobs held at once, [1, WIRE_MAX_CAPACITY] */
    int heartbeat_ms;             /* 0 = 1000; use the broker's value */
    int liveness;                 /* 0 = 3: silent intervals before the broker counts as lost */
    const wire_limits_t *limits;  /* NULL = protocol defaults */
    const curve_cfg_t *curve;     /* NULL or client half unset = plain TCP; else the broker's
                                     public key and this worker's certificate (curve.h) */
    const char *fingerprint;      /* the checkpoint's fingerprint (hf_fingerprint), announced in
                                     READY: the broker refuses a worker whose checkpoint differs
                                     from the one already serving this model name */
} worker_conn_opts_t;

/* One job from the broker. Caller owns it (worker_job_destroy). */
typedef struct worker_job {
    wire_msg_t hdr;     /* the JOB header: id, service, model, params, attempt, deadline_ms; for
                           decode also the prompt or messages and the visual records */
    zmq_msg_t payloads[WIRE_MAX_PAYLOADS]; /* [n_payloads] encode: the image files' bytes, in
                           order; decode: one tensor [kept, dim] of its record's dtype per visual
                           record (none for a text-only job). Each one's data is 64-byte aligned
                           (copied once on arrival if ZeroMQ's receive buffer left it unaligned). */
    int n_payloads;
    int64_t received_ms; /* clock_now_ms() when it arrived */
} worker_job_t;

/* Connects (asynchronously: the broker may come up later) and starts the I/O thread.
 * Copies opts (and the CURVE file names; the key files are checked here and read again on every
 * (re)connect). NULL with err on bad options, unreadable CURVE files or resource failure. */
worker_conn_t *worker_conn_new(const worker_conn_opts_t *opts, char *err);
/* Stops (DISCONNECT if not yet stopped), joins the I/O thread, frees everything including jobs
 * not yet taken. NULL-safe; sets *pc = NULL. */
void worker_conn_destroy(worker_conn_t **pc);
/* Requests a stop; async-signal-safe. */
void worker_conn_stop(worker_conn_t *c);
bool worker_conn_stopping(worker_conn_t *c);

/* Waits up to timeout_ms (-1 = forever) for a job. 0 and *job set (caller owns it);
 * HIRED_ETIMEOUT (none yet); HIRED_EIO once stopping; HIRED_EUNSUPPORTED when the broker refused
 * this worker's READY (worker_conn_refusal says why; the connection has stopped).
 * A job is never handed out while an earlier attempt of the same id is still being served on
 * another thread: the new attempt waits until the old one has made its terminal send (the old
 * one reads as cancelled, so that is at its next check). */
int worker_conn_next_job(worker_conn_t *c, int timeout_ms, worker_job_t **job);
void worker_job_destroy(worker_job_t **pj);

/* The broker's reason for refusing READY (e.g. another checkpoint already serves this model
 * name), or "" when it did not. Copied into out[HIRED_ERR_LEN]. */
void worker_conn_refusal(worker_conn_t *c, char *out);

/* True when the broker cancelled this attempt of the job, the session it came from is over, the
 * connection is stopping, or the job is not held (already finished). Decode loops poll this per
 * token. */
bool worker_conn_cancelled(worker_conn_t *c, const worker_job_t *job);

/* Sends one TOKEN of job (seq 0, 1, ... in order; text <= WIRE_MAX_TOKEN_TEXT bytes), tagged
 * with the job's attempt. 0, HIRED_EPROTO/ERANGE (invalid, or seq out of order; err),
 * HIRED_ENOMEM. Dropped silently for cancelled jobs. */
int worker_conn_send_token(worker_conn_t *c, const worker_job_t *job, uint32_t seq, int32_t token, const char *text,
                           char *err);
/* Terminal sends for job: `m` is borrowed (copied into the queue) and must have the right type
 * (WIRE_DONE / WIRE_RESULT); its id, attempt (and for DONE its seq: the number of TOKENs sent)
 * are filled in here. send_result takes ownership of tensors[0..n) (one per visual record; left empty). */
int worker_conn_send_done(worker_conn_t *c, const worker_job_t *job, const wire_msg_t *m, char *err);
int worker_conn_send_result(worker_conn_t *c, const worker_job_t *job, const wire_msg_t *m, zmq_msg_t *tensors, int n,
                            char *err);
int worker_conn_send_error(worker_conn_t *c, const worker_job_t *job, int code, const char *message, char *err);

/* What the next HEARTBEATs tell the broker about this worker's load (`hired status`): the jobs
 * in its last decode batch, its KV blocks in use and in all (kv_total 0: nothing is sent), and
 * the jobs it holds that wait for KV blocks. While that last is not 0 the broker sends this
 * worker no new job (they wait in the broker's queue, where any decoder can take them); when it
 * changes from 0 to more or back, a HEARTBEAT goes out at once. Any thread. */
void worker_conn_set_load(worker_conn_t *c, uint32_t batch, uint32_t kv_used, uint32_t kv_total, uint32_t waiting);

/* Counters for tests and logs. */
typedef struct worker_conn_stats {
    uint64_t sessions;   /* READY sent on a fresh session (1 + reconnects + DISCONNECTs seen) */
    uint64_t jobs;       /* JOBs received */
    uint64_t cancelled;  /* CANCELs received */
    uint64_t dropped;    /* sends dropped (stale session / cancelled) */
    uint64_t deferred;   /* JOBs held back while an earlier attempt of the same id was running */
} worker_conn_stats_t;
void worker_conn_get_stats(worker_conn_t *c, worker_conn_stats_t *out);

#endif
