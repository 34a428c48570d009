/* svc.h — what hired-encoder and hired-decoder do the same way around their jobs: the keys
 * every worker has (broker.*, model.dir/name/device, worker.*, curve.*, log.level), the daemon
 * command line (aliases, --check-config, --help), the model name, the broker connection with
 * its CURVE options, the job threads, and the life cycle systemd sees:
 *
 *   svc_configure -> (load the model) -> svc_start -> svc_run:
 *     READY=1, STATUS=serving ..., WATCHDOG=1 from the main thread until SIGTERM/SIGINT;
 *     then STOPPING=1, no new jobs, running ones get worker.drain_ms, DISCONNECT hands the
 *     rest back to the broker, threads joined, connection closed.
 *
 * A worker's own configuration struct embeds a svc_cfg_t; its cfg table is the common entries
 * (svc_cfg_entries, at the embedded struct's offset) followed by its own.
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

/* The daemon command line: `--model DIR`, `--device D`, `--broker EP`, `--name N` aliases,
 * --check-config (*check), -c FILE, -o / --KEY=VALUE; then the common checks (model.dir set,
 * device cpu — the CUDA backend does not exist yet —, both or neither curve file, and the
 * curve files load) and `extra` (may be NULL) on the filled values. Errors are printed as
 * "prog: message". 0 ok, 1 help printed, 2 error. */
int svc_configure(const char *prog, const cfg_entry_t *t, int n, void *values, const svc_cfg_t *c, int argc,
                  char **argv, bool *check, int (*extra)(void *values, char *err));

/* What --check-config checks of the model without loading weights: model.dir is a directory
 * whose config.json describes a LLaVA / LLaVA-NeXT model this build runs (hf_config_load).
 * 0 or HIRED_E* with err naming the directory. */
int svc_check_model(const svc_cfg_t *c, char *err);

/* The model name: model.name, else the last component of model.dir, checked against the
 * protocol's charset [A-Za-z0-9._:/+-], 1-WIRE_MAX_MODEL characters. 0 or HIRED_EINVAL. */
int svc_model_name(const svc_cfg_t *c, char out[WIRE_MAX_MODEL + 1], char *err);

// ---- serving ---------------------------------------------------------------------------------

/* What one worker daemon serves. Borrowed until svc_run returns. */
typedef struct svc_app {
    const char *prog;    /* "hired-encoder": log prefix */
    const char *service; /* "encode" | "decode" */
    const char *model;   /* the name jobs ask for */
    int capacity;        /* job threads, [1, SVC_MAX_THREADS] */
    /* One job (called on a job thread; may run concurrently on `capacity` threads). Must end
     * the job with exactly one terminal send (worker_conn.h). The caller destroys job after. */
    void (*serve)(void *app, worker_job_t *job);
    void *app;
} svc_app_t;

typedef struct svc {
    const svc_cfg_t *cfg;
    const svc_app_t *a;
    worker_conn_t *conn;   /* owned; valid from svc_start until svc_run returns */
    atomic_int busy;       /* jobs being served right now */
    atomic_bool draining;  /* stop taking jobs */
    atomic_bool refused;   /* the broker refused READY */
    char fingerprint[WIRE_MAX_FINGERPRINT + 1]; /* of the checkpoint, announced in READY */
    void (*omp_threads)(int n); /* omp_set_num_threads (per thread), or NULL */
    pthread_t th[SVC_MAX_THREADS];
    int nth;
} svc_t;

/* Computes the checkpoint fingerprint of cfg->model_dir (fingerprint.h), connects to the broker
 * (worker_conn with cfg's heartbeat, liveness, CURVE files and that fingerprint) and starts
 * a->capacity job threads; each first calls omp_threads(worker.threads) when that is > 0
 * (omp_set_num_threads: OpenMP's thread count is per calling thread; may be NULL).
 * 0, or HIRED_E* with err (nothing left running). */
int svc_start(svc_t *s, const svc_cfg_t *cfg, const svc_app_t *a, void (*omp_threads)(int n), char *err);

/* READY=1 and serve until a stop signal, then drain and hand back (see the file comment);
 * returns when every job thread has ended and the connection is closed: 0, or
 * HIRED_EUNSUPPORTED when the broker refused this worker (its checkpoint differs from the one
 * serving the model name; logged), which the daemon reports as a configuration error. */
int svc_run(svc_t *s);

#endif
