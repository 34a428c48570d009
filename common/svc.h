/* svc.h — the worker daemons' one main: what hired-encoder and hired-decoder do the same way
 * around their jobs. The keys every worker has (broker.*, model.dir/name/device, worker.*,
 * curve.*, log.level), the daemon command line (aliases, --check-config, --help), the model
 * name, the broker connection with its CURVE options, the job threads, and the life cycle
 * systemd sees:
 *
 *   svc_main: configure (exit 2 on an error) -> --check-config? -> load the model (exit 2 when
 *   it does not load) -> warm up (exit 1 on failure) -> connect and start the job threads ->
 *     READY=1, STATUS=serving ..., WATCHDOG=1 from the main thread until SIGTERM/SIGINT;
 *     then STOPPING=1, no new jobs, running ones get worker.drain_ms, DISCONNECT hands the
 *     rest back to the broker, threads joined, connection closed -> exit 0 (2 when the broker
 *     refused this worker's checkpoint).
 *
 * A worker's own configuration struct embeds a svc_cfg_t; its cfg table is the common entries
 * (svc_cfg_entries, at the embedded struct's offset) followed by its own (svc_daemon_t.own).
 * Not here: what a job computes (encoder_worker/main.c, decoder_worker/main.c), signals and
 * sd_notify themselves (proc.h), the protocol (worker_conn.h). */
#ifndef HIRED_SVC_H
#define HIRED_SVC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "worker_conn.h"

#define SVC_MAX_THREADS 64 /* job threads (= capacity) at most */

// ---- configuration ---------------------------------------------------------------------------

/* The keys every worker has. Strings are owned by the embedding struct (cfg_free). */
typedef struct svc_cfg {
    char *endpoint;                      /* broker.endpoint */
    int64_t heartbeat_ms, liveness;      /* broker.heartbeat_ms, broker.liveness */
    char *model_dir, *model_name, *device; /* model.dir, model.name, model.device */
    int64_t drain_ms, threads;           /* worker.drain_ms, worker.threads */
    bool warmup;                         /* worker.warmup */
    char *curve_server_key, *curve_cert; /* curve.server_key, curve.cert */
    int log_level;                       /* log.level */
} svc_cfg_t;

#define SVC_CFG_N 12 /* entries svc_cfg_entries writes */

/* Writes the SVC_CFG_N common entries to out, with offsets `base` + the field's offset in
 * svc_cfg_t (base = offsetof(own struct, embedded svc_cfg_t)). warmup_help: what worker.warmup
 * runs (one line). */
void svc_cfg_entries(size_t base, const char *warmup_help, cfg_entry_t out[SVC_CFG_N]);

/* What --check-config checks of the model without loading weights: model.dir is a directory
 * whose config.json describes a LLaVA / LLaVA-NeXT model this build runs (hf_config_load).
 * 0 or HIRED_E* with err naming the directory. */
int svc_check_model(const svc_cfg_t *c, char *err);

/* The model name: model.name, else the last component of model.dir, checked against the
 * protocol's charset [A-Za-z0-9._:/+-], 1-WIRE_MAX_MODEL characters. 0 or HIRED_EINVAL. */
int svc_model_name(const svc_cfg_t *c, char out[WIRE_MAX_MODEL + 1], char *err);

// ---- the daemon ------------------------------------------------------------------------------

/* A job thread's argument: its daemon and slot, 0 .. capacity−1. */
typedef struct svc_thread {
    struct svc *s;
    int slot;
} svc_thread_t;

/* The running daemon, as a worker's callbacks see it. */
typedef struct svc {
    const svc_cfg_t *cfg;                       /* the common keys' values */
    const struct svc_daemon *d;
    void *app;
    char model[WIRE_MAX_MODEL + 1];             /* the name jobs ask for */
    int capacity;                               /* job threads */
    worker_conn_t *conn;   /* owned; valid while jobs are served */
    atomic_int busy;       /* jobs being served right now */
    atomic_bool draining;  /* stop taking jobs */
    atomic_bool refused;   /* the broker refused READY */
    char fingerprint[WIRE_MAX_FINGERPRINT + 1]; /* of the checkpoint, announced in READY */
    pthread_t th[SVC_MAX_THREADS];
    svc_thread_t targ[SVC_MAX_THREADS];
    int nth;
} svc_t;

/* What differs between the worker daemons. Callbacks get the daemon's app pointer. */
typedef struct svc_daemon {
    const char *prog;        /* "hired-encoder": log and message prefix */
    const char *service;     /* "encode" | "decode" */
    const char *warmup_help; /* what worker.warmup runs (one line of --help) */
    const cfg_entry_t *own;  /* the daemon's own keys (offsets into its values struct) */
    int n_own;
    size_t cfg_offset;       /* offsetof(values struct, the embedded svc_cfg_t) */
    /* Further checks of the configured values (after the common ones), or NULL. */
    int (*check)(void *values, char *err);
    /* Job threads the configuration asks for, [1, SVC_MAX_THREADS]. */
    int (*capacity)(const void *values);
    /* Loads the model for s->capacity job threads (logging what it loaded). A failure is a
     * configuration error: exit 2. */
    int (*load)(void *app, svc_t *s, char *err);
    /* One synthetic job's worth of work before READY (worker.warmup); a failure exits 1. */
    int (*warmup)(void *app, char *err);
    /* One job on job thread `slot` (may run concurrently on every slot). Must end the job with
     * exactly one terminal send (worker_conn.h); the caller destroys job after. */
    void (*serve)(void *app, int slot, worker_job_t *job);
    /* After serving: log the counters. May be NULL. */
    void (*report)(void *app);
    /* Frees what load made (also after a failed load). */
    void (*unload)(void *app);
    /* omp_set_num_threads (OpenMP's thread count is per calling thread), or NULL. */
    void (*omp_threads)(int n);
    /* --check-config: whether model.device (normalised to "cpu" or "cuda:N") can be opened in
     * this build on this machine (0, or a HIRED_E* with err: exit 2). NULL: not checked. */
    int (*probe_device)(const char *device, char *err);
} svc_daemon_t;

/* The whole life of a worker daemon (see the file comment): values is the daemon's
 * configuration struct (zeroed; it embeds the svc_cfg_t at d->cfg_offset), s the svc_t the
 * callbacks use (zeroed). Returns the exit status: 0, 1 (a run-time failure, restarted) or 2
 * (configuration: not restarted, PROC_EXIT_CONFIG). */
int svc_main(const svc_daemon_t *d, void *app, void *values, svc_t *s, int argc, char **argv);

#endif
