/* main.c — hired-broker: configuration (one cfg table; `-c FILE`, `-o key=value`,
 * `--key=value`), signals (SIGINT/SIGTERM stop the loop, common/proc), systemd readiness
 * (READY=1 once both sockets are bound, STOPPING=1 when the loop ends; the watchdog is pinged
 * from the loop itself, broker_run), run. Every key is listed by `hired-broker --help`; the
 * effective configuration is logged at start.
 *
 * Exit status: 0 after a clean stop (or --help, or a valid --check-config); 2 for a
 * configuration error — an unknown key, a value out of range, an endpoint that is not
 * "transport://address", CURVE files missing or malformed — which systemd must not restart
 * (RestartPreventExitStatus=2); 1 when a valid configuration cannot run (an endpoint cannot be
 * bound, e.g. the port is taken), which a restart may cure.
 * --check-config: those configuration checks only, then exit 0 or 2, binding nothing.
 * Not here: the broker itself (broker.c). */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "cfg.h"
#include "curve.h"
#include "log.h"
#include "proc.h"

typedef struct {
    broker_cfg_t b;
    int log_level;
} main_cfg_t;

#define O(f) offsetof(main_cfg_t, b.f)
static const cfg_entry_t k_cfg[] = {
    {"broker.frontend", CFG_STRING, O(frontend), 1, 255, "tcp://*:5555", NULL, "endpoint clients connect to"},
    {"broker.backend", CFG_STRING, O(backend), 1, 255, "tcp://*:5556", NULL, "endpoint workers connect to"},
    {"broker.ports_file", CFG_STRING, O(ports_file), 0, 4000, "", NULL,
     "write the bound endpoints to this file (for ephemeral ports); empty = no"},
    {"broker.heartbeat_ms", CFG_INT, O(heartbeat_ms), 10, 60000, "1000", NULL, "heartbeat interval"},
    {"broker.liveness", CFG_INT, O(liveness), 2, 100, "3", NULL, "silent intervals before a worker is dead"},
    {"broker.max_attempts", CFG_INT, O(max_attempts), 1, 100, "3", NULL, "tries per stage before ERROR"},
    {"broker.attempt_timeout_ms", CFG_INT, O(attempt_timeout_ms), 100, 86400000, "120000", NULL,
     "a worker holding a job without progress this long loses it"},
    {"broker.deadline_ms", CFG_INT, O(deadline_ms), 100, 86400000, "600000", NULL, "default job deadline"},
    {"broker.max_deadline_ms", CFG_INT, O(max_deadline_ms), 100, 86400000, "3600000", NULL,
     "largest deadline a client may ask for"},
    {"broker.queue_max", CFG_INT, O(queue_max), 1, 1000000, "256", NULL,
     "jobs queued per service before SUBMIT gets BUSY"},
    {"broker.result_ttl_ms", CFG_INT, O(result_ttl_ms), 1000, 86400000, "600000", NULL,
     "a finished job whose client never acknowledges it is dropped this long after it ended"},
    {"broker.model_ttl_ms", CFG_INT, O(model_ttl_ms), 0, 86400000, "60000", NULL,
     "a model stays known this long after its last worker left"},
    {"broker.startup_grace_ms", CFG_INT, O(startup_grace_ms), -1, 3600000, "-1", NULL,
     "after start, jobs for unknown models wait this long for workers; -1 = 3 x heartbeat x liveness"},
    {"broker.max_image_bytes", CFG_INT, O(max_image_bytes), 1, WIRE_MAX_IMAGE, "33554432", NULL,
     "largest SUBMIT image"},
    {"broker.max_job_image_bytes", CFG_INT, O(max_job_image_bytes), 1, WIRE_MAX_IMAGES_BYTES, "67108864", NULL,
     "all images of one SUBMIT together (a request may carry up to 16 images)"},
    {"broker.max_prompt_bytes", CFG_INT, O(max_prompt_bytes), 1, WIRE_MAX_PROMPT, "65536", NULL,
     "longest prompt"},
    {"broker.client_grace_ms", CFG_INT, O(client_grace_ms), 100, 86400000, "5000", NULL,
     "a client silent this long is gone: its unfinished jobs are cancelled, its results dropped"},
    {"broker.client_hwm", CFG_INT, O(client_hwm), 10, 1000000, "1000", NULL,
     "messages queued towards one client connection before the rest waits in the job's stream"},
    {"broker.max_stream_bytes", CFG_INT, O(max_stream_bytes), 4096, 1073741824, "1048576", NULL,
     "one job's buffered answer (tokens and text); a longer one ends with ERROR"},
    {"broker.max_queued_image_bytes", CFG_INT, O(max_queued_image_bytes), 1, 68719476736, "536870912", NULL,
     "images of all jobs not yet encoded; SUBMIT gets BUSY beyond"},
    {"broker.max_buffered_bytes", CFG_INT, O(max_buffered_bytes), 1, 68719476736, "1073741824", NULL,
     "everything held for jobs (images, encoder results, answers); SUBMIT gets BUSY beyond"},
    {"broker.max_client_bytes", CFG_INT, O(max_client_bytes), 1, 68719476736, "268435456", NULL,
     "the same for one client; its SUBMIT gets BUSY beyond"},
    {"broker.max_client_jobs", CFG_INT, O(max_client_jobs), 1, 1000000, "1024", NULL,
     "jobs one client holds at once (unacknowledged results included); SUBMIT gets BUSY beyond"},
    {"broker.max_worker_capacity", CFG_INT, O(max_worker_capacity), 1, WIRE_MAX_CAPACITY, "64", NULL,
     "a worker's announced capacity is capped to this"},
    {"broker.quarantine_after", CFG_INT, O(quarantine_after), 0, 1000, "2", NULL,
     "consecutive failed attempts (timeouts, bad replies, stalls) that quarantine a worker; 0 = never"},
    {"broker.quarantine_ms", CFG_INT, O(quarantine_ms), 0, 86400000, "30000", NULL,
     "how long a quarantined worker gets no new jobs"},
    {"broker.migrate_factor", CFG_INT, O(migrate_factor), 0, 1000, "4", NULL,
     "an idle worker takes over a job stalled this many times longer than it would need; 0 = never"},
    {"curve.server_cert", CFG_STRING, O(curve_server_cert), 0, 4000, "", NULL,
     "CURVE: this broker's secret certificate file (zcert NAME_secret); empty = no CURVE"},
    {"curve.authorized_keys", CFG_STRING, O(curve_authorized_keys), 0, 4000, "", NULL,
     "CURVE: directory of authorised client public certificates; re-read on change"},
    {"curve.worker_keys", CFG_STRING, O(curve_worker_keys), 0, 4000, "", NULL,
     "CURVE: directory of authorised worker public certificates (required with CURVE); re-read on change"},
    {"curve.admin_keys", CFG_STRING, O(curve_admin_keys), 0, 4000, "", NULL,
     "CURVE: directory of operator public certificates, whose STATUS lists every job; empty = none"},
    {"log.level", CFG_ENUM, offsetof(main_cfg_t, log_level), 0, 0, "info", "debug|info|warn|error",
     "log threshold"},
};
#undef O

/* The checks --check-config makes (and every start, before binding): endpoints that look like
 * ZeroMQ endpoints, CURVE files that load. 0 or HIRED_E* with err. */
static int check_config(const main_cfg_t *c, char *err) {
    const char *eps[2][2] = {{"broker.frontend", c->b.frontend}, {"broker.backend", c->b.backend}};
    for (int i = 0; i < 2; i++) {
        int rc = proc_check_endpoint(eps[i][0], eps[i][1], "transport://address, e.g. tcp://*:5555", err);
        if (rc) return rc;
    }
    curve_cfg_t cv = {.server_cert = c->b.curve_server_cert, .authorized_keys = c->b.curve_authorized_keys,
                      .worker_keys = c->b.curve_worker_keys, .admin_keys = c->b.curve_admin_keys};
    char cerr[HIRED_ERR_LEN];
    int rc = curve_check(&cv, cerr);
    if (rc) return hired_errf(err, rc, "curve.*: %s", cerr);
    return HIRED_OK;
}

int main(int argc, char **argv) {
    main_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[HIRED_ERR_LEN];
    int n = (int)ARRAY_LEN(k_cfg);
    bool check = false;
    int rc = proc_cfg_args(k_cfg, n, &cfg, argc, argv, NULL, 0, &check, err);
    if (rc == 1) {
        printf("\nhired-broker [-c FILE] [--check-config] [--KEY=VALUE | -o KEY=VALUE]...\n");
        cfg_free(k_cfg, n, &cfg);
        return 0;
    }
    if (!rc) rc = check_config(&cfg, err);
    if (rc) {
        fprintf(stderr, "hired-broker: %s\n", err);
        cfg_free(k_cfg, n, &cfg);
        return PROC_EXIT_CONFIG;
    }
    if (check) {
        log_set_level((log_level_t)cfg.log_level);
        cfg_log(k_cfg, n, &cfg);
        printf("hired-broker: configuration OK (clients on %s, workers on %s%s)\n", cfg.b.frontend, cfg.b.backend,
               cfg.b.curve_server_cert[0] ? ", CURVE on" : "");
        cfg_free(k_cfg, n, &cfg);
        return 0;
    }
    log_set_level((log_level_t)cfg.log_level);
    cfg_log(k_cfg, n, &cfg);

    if (proc_signals_install()) log_warn("hired-broker: cannot install signal handlers");

    broker_t b;
    rc = broker_open(&b, &cfg.b, err);
    if (rc) {
        log_error("hired-broker: %s", err);
    } else {
        proc_notify_ready(NULL);
        proc_notify_status("clients on %s, workers on %s", b.front_ep, b.back_ep);
        rc = broker_run(&b);
        proc_notify_stopping(NULL);
        log_info("hired-broker: stopping (signal %d)", proc_stop_signal());
    }
    broker_close(&b);
    cfg_free(k_cfg, n, &cfg);
    return rc ? PROC_EXIT_FAILURE : 0;
}
