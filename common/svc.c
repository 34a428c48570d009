/* svc.c — see svc.h. The job threads poll worker_conn_next_job with a short timeout so they
 * notice `draining`; the main thread sleeps between watchdog ticks (proc_watchdog_sleep_ms). */
#include "svc.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "curve.h"
#include "err.h"
#include "fingerprint.h"
#include "hfconfig.h"
#include "log.h"
#include "mem.h"
#include "proc.h"

// ---- configuration ---------------------------------------------------------------------------

void svc_cfg_entries(size_t base, const char *warmup_help, cfg_entry_t out[SVC_CFG_N]) {
#define O(f) (base + offsetof(svc_cfg_t, f))
    const cfg_entry_t e[SVC_CFG_N] = {
        {"broker.endpoint", CFG_STRING, O(endpoint), 1, 255, "tcp://127.0.0.1:5556", NULL,
         "the broker's backend (worker) endpoint to connect to"},
        {"broker.heartbeat_ms", CFG_INT, O(heartbeat_ms), 10, 60000, "1000", NULL,
         "heartbeat interval; must equal the broker's broker.heartbeat_ms"},
        {"broker.liveness", CFG_INT, O(liveness), 2, 100, "3", NULL,
         "silent heartbeat intervals before the broker counts as lost (then reconnect)"},
        {"model.dir", CFG_STRING, O(model_dir), 0, 4000, "", NULL,
         "Hugging Face llava-hf model directory (required; also --model DIR)"},
        {"model.name", CFG_STRING, O(model_name), 0, WIRE_MAX_MODEL, "", NULL,
         "model name jobs ask for; empty = the directory's base name"},
        {"model.device", CFG_STRING, O(device), 1, 16, "cpu", NULL,
         "cpu, cuda:N or N (= cuda:N; a build with the CUDA toolkit, GPUs sm_75 and newer)"},
        {"worker.drain_ms", CFG_INT, O(drain_ms), 0, 3600000, "10000", NULL,
         "on SIGTERM, jobs in progress get this long to finish before they are handed back"},
        {"worker.threads", CFG_INT, O(threads), 0, 1024, "0", NULL,
         "OpenMP threads per job; 0 = OMP_NUM_THREADS or all cores"},
        {"worker.warmup", CFG_BOOL, O(warmup), 0, 0, "true", NULL, warmup_help},
        {"curve.server_key", CFG_STRING, O(curve_server_key), 0, 4000, "", NULL,
         "CURVE: the broker's public certificate file (zcert); empty = no CURVE"},
        {"curve.cert", CFG_STRING, O(curve_cert), 0, 4000, "", NULL,
         "CURVE: this worker's secret certificate file (zcert, must be authorised by the broker)"},
        {"log.level", CFG_ENUM, O(log_level), 0, 0, "info", "debug|info|warn|error", "log threshold"},
    };
#undef O
    memcpy(out, e, sizeof e);
}

static const char *const k_aliases[][2] = {
    {"model", "model.dir"}, {"device", "model.device"}, {"broker", "broker.endpoint"}, {"name", "model.name"}};

int svc_check_model(const svc_cfg_t *c, char *err) {
    struct stat st;
    if (stat(c->model_dir, &st) != 0)
        return hired_errf(err, HIRED_ENOTFOUND, "model.dir '%s': %s", c->model_dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return hired_errf(err, HIRED_ENOTFOUND, "model.dir '%s' is not a directory", c->model_dir);
    hf_config_t hf;
    char sub[HIRED_ERR_LEN];
    int rc = hf_config_load(c->model_dir, &hf, sub);
    if (rc) return hired_errf(err, rc, "model.dir '%s' does not hold a model this build runs: %s", c->model_dir, sub);
    return HIRED_OK;
}

int svc_model_name(const svc_cfg_t *c, char out[WIRE_MAX_MODEL + 1], char *err) {
    const char *s = c->model_name && c->model_name[0] ? c->model_name : NULL;
    char tmp[4096];
    if (!s) {
        snprintf(tmp, sizeof tmp, "%s", c->model_dir);
        size_t l = strlen(tmp);
        while (l > 1 && tmp[l - 1] == '/') tmp[--l] = 0;
        const char *slash = strrchr(tmp, '/');
        s = slash ? slash + 1 : tmp;
    }
    size_t l = strlen(s);
    bool ok = l >= 1 && l <= WIRE_MAX_MODEL;
    for (size_t i = 0; ok && i < l; i++)
        ok = (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
             strchr("._:/+-", s[i]);
    if (!ok)
        return hired_errf(err, HIRED_EINVAL,
                          "model name '%.200s' must be 1-%d characters of [A-Za-z0-9._:/+-] (set model.name)", s,
                          WIRE_MAX_MODEL);
    memcpy(out, s, l + 1);
    return HIRED_OK;
}

// ---- the daemon ------------------------------------------------------------------------------

/* The daemon command line: `--model DIR`, `--device D`, `--broker EP`, `--name N` aliases,
 * --check-config (*check), -c FILE, -o / --KEY=VALUE; then the common checks (model.dir set,
 * model.device well formed, rewritten "N" -> "cuda:N", both or neither curve file, and the
 * curve files load) and `extra` (may be NULL) on the filled values. Whether the device opens is
 * the model load's business (and --check-config's, through svc_daemon_t.probe_device). Errors
 * are printed as "prog: message". 0 ok, 1 help printed, 2 error. */
static int configure(const char *prog, const cfg_entry_t *t, int n, void *values, svc_cfg_t *c, int argc,
                  char **argv, bool *check, int (*extra)(void *values, char *err)) {
    char err[HIRED_ERR_LEN];
    int rc = proc_cfg_args(t, n, values, argc, argv, k_aliases, (int)ARRAY_LEN(k_aliases), check, err);
    if (rc == 1) {
        printf("\n%s [-c FILE] [--model DIR] [--device cpu|cuda:N] [--check-config] [--KEY=VALUE | -o "
               "KEY=VALUE]...\n",
               prog);
        return 1;
    }
    if (!rc && !c->model_dir[0]) rc = hired_errf(err, HIRED_EINVAL, "model.dir is required (--model DIR)");
    int dev = -1;
    if (!rc) rc = proc_parse_device(c->device, &dev, err);
    if (!rc && dev >= 0) { /* "N" and "cuda:N" both name cuda:N: one spelling for the backend */
        char name[16];
        snprintf(name, sizeof name, "cuda:%d", dev);
        char *nd = mem_strdup(name);
        if (!nd) rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        else {
            mem_free(c->device);
            c->device = nd;
        }
    }
    if (!rc && extra) rc = extra(values, err);
    if (!rc && (c->curve_server_key[0] != 0) != (c->curve_cert[0] != 0))
        rc = hired_errf(err, HIRED_EINVAL, "curve.server_key and curve.cert must be set together");
    if (!rc) {
        curve_cfg_t cv = {.server_key = c->curve_server_key, .client_cert = c->curve_cert};
        char cerr[HIRED_ERR_LEN];
        if ((rc = curve_check(&cv, cerr))) hired_errf(err, rc, "curve.*: %s", cerr);
    }
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return 2;
    }
    return 0;
}

// ---- serving ---------------------------------------------------------------------------------

/* One job thread: takes jobs until the daemon drains. */
static void *job_thread(void *arg) {
    const svc_thread_t *t = arg;
    svc_t *s = t->s;
    if (s->cfg->threads > 0 && s->d->omp_threads) s->d->omp_threads((int)s->cfg->threads); /* per thread */
    while (!atomic_load(&s->draining)) {
        worker_job_t *job = NULL;
        int rc = worker_conn_next_job(s->conn, 200, &job);
        if (rc == HIRED_EUNSUPPORTED) {
            atomic_store(&s->refused, true);
            break;
        }
        if (rc == HIRED_EIO) break;
        if (rc) continue;
        atomic_fetch_add(&s->busy, 1);
        s->d->serve(s->app, t->slot, job);
        worker_job_destroy(&job);
        atomic_fetch_sub(&s->busy, 1);
    }
    return NULL;
}

/* Computes the checkpoint fingerprint of model.dir (fingerprint.h), connects to the broker
 * (worker_conn with the heartbeat, liveness, CURVE files and that fingerprint) and starts
 * s->capacity job threads. 0, or HIRED_E* with err (nothing left running). */
static int start(svc_t *s, char *err) {
    const svc_cfg_t *cfg = s->cfg;
    int rc = hf_fingerprint(cfg->model_dir, s->fingerprint, err);
    if (rc) return rc;
    curve_cfg_t cv = {.server_key = cfg->curve_server_key, .client_cert = cfg->curve_cert};
    worker_conn_opts_t o = {.endpoint = cfg->endpoint, .service = s->d->service, .model = s->model,
                            .capacity = s->capacity, .heartbeat_ms = (int)cfg->heartbeat_ms,
                            .liveness = (int)cfg->liveness, .curve = &cv, .fingerprint = s->fingerprint};
    s->conn = worker_conn_new(&o, err);
    if (!s->conn) return HIRED_EIO;
    for (; s->nth < s->capacity; s->nth++) {
        s->targ[s->nth] = (svc_thread_t){s, s->nth};
        if (pthread_create(&s->th[s->nth], NULL, job_thread, &s->targ[s->nth])) break;
    }
    if (s->nth == 0) {
        worker_conn_destroy(&s->conn);
        return hired_errf(err, HIRED_EIO, "cannot start job threads");
    }
    return HIRED_OK;
}

/* READY=1 and serve until a stop signal, then drain and hand back; returns when every job
 * thread has ended and the connection is closed: 0, or HIRED_EUNSUPPORTED when the broker
 * refused this worker (its checkpoint differs from the one serving the model name; logged). */
static int run(svc_t *s) {
    const char *prog = s->d->prog;
    proc_notify_ready(NULL);
    proc_notify_status("serving model %s on %s (capacity %d)", s->model, s->cfg->endpoint, s->nth);
    log_info("%s: serving '%s' (checkpoint %s) on %s with %d job threads", prog, s->model, s->fingerprint,
             s->cfg->endpoint, s->nth);

    proc_watchdog_t wd;
    proc_watchdog_init(&wd);
    while (!proc_stop_requested() && !atomic_load(&s->refused)) {
        proc_watchdog_tick(&wd, clock_now_ms());
        usleep((useconds_t)proc_watchdog_sleep_ms(&wd, 100) * 1000);
    }

    /* SIGTERM: no new jobs; let running ones finish (bounded), then hand back the rest */
    proc_notify_stopping("draining");
    log_info("%s: stopping (signal %d), %d jobs in progress", prog, proc_stop_signal(), atomic_load(&s->busy));
    atomic_store(&s->draining, true);
    for (int64_t t_end = clock_now_ms() + s->cfg->drain_ms; atomic_load(&s->busy) > 0 && clock_now_ms() < t_end;) {
        proc_watchdog_tick(&wd, clock_now_ms());
        usleep(10000);
    }
    if (atomic_load(&s->busy) > 0) log_warn("%s: handing %d unfinished jobs back", prog, atomic_load(&s->busy));
    worker_conn_stop(s->conn); /* DISCONNECT: the broker re-queues what we still hold */
    for (int i = 0; i < s->nth; i++) pthread_join(s->th[i], NULL);
    char why[HIRED_ERR_LEN];
    worker_conn_refusal(s->conn, why);
    worker_conn_destroy(&s->conn);
    if (why[0]) {
        log_error("%s: the broker refused this worker: %s", prog, why);
        return HIRED_EUNSUPPORTED;
    }
    return HIRED_OK;
}

/* Loads the model, warms up and serves: the exit status. */
static int serve_model(const svc_daemon_t *d, svc_t *s) {
    char err[HIRED_ERR_LEN];
    if (proc_signals_install()) log_warn("%s: cannot install signal handlers", d->prog);
    proc_notify_status("loading %s", s->cfg->model_dir);
    double t0 = clock_ms();
    int rc = d->load(s->app, s, err);
    bool model_bad = rc != HIRED_OK; /* a configuration error: systemd must not restart */
    if (!rc && s->cfg->warmup) rc = d->warmup(s->app, err);
    if (rc) {
        log_error("%s: %s%s", d->prog, model_bad ? "cannot load the model: " : "", err);
        d->unload(s->app);
        return model_bad ? PROC_EXIT_CONFIG : PROC_EXIT_FAILURE;
    }
    log_info("%s: model '%s' ready in %.0f ms%s", d->prog, s->model, clock_ms() - t0,
             s->cfg->warmup ? " (warmed up)" : "");
    if (start(s, err)) {
        log_error("%s: %s", d->prog, err);
        d->unload(s->app);
        return PROC_EXIT_FAILURE;
    }
    rc = run(s); /* READY=1 ... SIGTERM, drain, hand back */
    if (d->report) d->report(s->app);
    d->unload(s->app);
    return rc ? PROC_EXIT_CONFIG : 0; /* refused by the broker (another checkpoint under this name) */
}

int svc_main(const svc_daemon_t *d, void *app, void *values, svc_t *s, int argc, char **argv) {
    const int n = SVC_CFG_N + d->n_own;
    cfg_entry_t *t = mem_alloc((size_t)n * sizeof *t); /* the common keys, then the daemon's */
    if (!t) {
        fprintf(stderr, "%s: out of memory\n", d->prog);
        return PROC_EXIT_FAILURE;
    }
    svc_cfg_entries(d->cfg_offset, d->warmup_help, t);
    memcpy(t + SVC_CFG_N, d->own, (size_t)d->n_own * sizeof *t);
    memset(s, 0, sizeof *s);
    svc_cfg_t *cfg = (svc_cfg_t *)((char *)values + d->cfg_offset);
    s->cfg = cfg;
    s->d = d;
    s->app = app;
    bool check = false;
    char err[HIRED_ERR_LEN];
    int rc = configure(d->prog, t, n, values, cfg, argc, argv, &check, d->check);
    if (!rc && svc_model_name(s->cfg, s->model, err)) {
        fprintf(stderr, "%s: %s\n", d->prog, err);
        rc = 2;
    }
    if (!rc) {
        s->capacity = d->capacity(values);
        log_set_level((log_level_t)s->cfg->log_level);
        cfg_log(t, n, values);
        if (check) {
            int mrc = d->probe_device ? d->probe_device(s->cfg->device, err) : 0;
            if (!mrc) mrc = svc_check_model(s->cfg, err);
            if (mrc) fprintf(stderr, "%s: %s\n", d->prog, err);
            else printf("%s: configuration OK (model '%s')\n", d->prog, s->model);
            rc = mrc ? PROC_EXIT_CONFIG : 0;
        } else {
            rc = serve_model(d, s);
        }
    } else {
        rc = rc == 1 ? 0 : PROC_EXIT_CONFIG; /* --help, or a configuration error */
    }
    cfg_free(t, n, values);
    mem_free(t);
    return rc;
}
