/* main.c — hired-gateway: an OpenAI-compatible HTTP front for a hired broker. A client of the
 * broker like any other (one libhired client for the whole process, CURVE when configured);
 * the broker knows nothing about HTTP. This file: the configuration (one cfg table; `-c FILE`,
 * `--KEY=VALUE`, `--check-config`), the API keys file, signals, systemd readiness and watchdog,
 * start and orderly stop. gw.h has the threads, http.c the endpoints.
 *
 * Life cycle: configuration checked (exit 2 on any error: PROC_EXIT_CONFIG) -> the libhired
 * client and helper threads -> the HTTP port bound (exit 1 when it cannot be: a run-time
 * failure, which systemd may retry) -> READY=1 -> WATCHDOG=1 while the gateway's threads turn
 * -> SIGTERM/SIGINT: STOPPING=1, no new connections, answers in progress get gateway.drain_ms,
 * then what is left is cut off and its jobs cancelled, the client says BYE; exit 0.
 * Not here: HTTP and request logic (http.c), the broker side (backend.c). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cfg.h"
#include "curve.h"
#include "err.h"
#include "fetch.h"
#include "gw.h"
#include "log.h"
#include "proc.h"

#define O(f) offsetof(gw_cfg_t, f)
static const cfg_entry_t k_cfg[] = {
    {"http.listen", CFG_STRING, O(listen), 0, 255, "127.0.0.1", NULL,
     "address to serve HTTP on; \"\" = every interface (put it behind TLS and API keys then)"},
    {"http.port", CFG_INT, O(port), 0, 65535, "8000", NULL, "TCP port; 0 = any free port (see http.ports_file)"},
    {"http.ports_file", CFG_STRING, O(ports_file), 0, 4000, "", NULL,
     "write the bound address to this file (\"http=http://HOST:PORT\"); empty = no"},
    {"http.max_body_bytes", CFG_INT, O(max_body_bytes), 1024, 1073741824, "33554432", NULL,
     "largest request body; larger ones get 413 before they are read"},
    {"http.max_connections", CFG_INT, O(max_connections), 1, 100000, "1024", NULL, "open HTTP connections at most"},
    {"http.idle_timeout_s", CFG_INT, O(idle_timeout_s), 0, 86400, "120", NULL,
     "close a connection idle this long (waiting for the broker does not count); 0 = never"},
    {"http.api_keys_file", CFG_STRING, O(api_keys_file), 0, 4000, "", NULL,
     "file of accepted API keys, one per line (# comments); /v1/* then needs 'Authorization: Bearer KEY'; "
     "empty = no keys"},
    {"broker.endpoint", CFG_STRING, O(endpoint), 1, 255, "tcp://127.0.0.1:5555", NULL,
     "the broker's frontend (client) endpoint"},
    {"broker.heartbeat_ms", CFG_INT, O(heartbeat_ms), 10, 60000, "1000", NULL,
     "heartbeat interval; must equal the broker's broker.heartbeat_ms"},
    {"broker.liveness", CFG_INT, O(liveness), 2, 100, "3", NULL, "silent heartbeats before reconnecting"},
    {"broker.connect_timeout_ms", CFG_INT, O(connect_timeout_ms), 100, 3600000, "10000", NULL,
     "jobs fail (503) when the broker has never answered this long after they were submitted"},
    {"broker.status_timeout_ms", CFG_INT, O(status_timeout_ms), 100, 10000, "2000", NULL,
     "how long a STATUS may take before the broker counts as unreachable (/health 503)"},
    {"broker.status_interval_ms", CFG_INT, O(status_interval_ms), 50, 600000, "1000", NULL,
     "STATUS is asked this often (and at once for /health, /metrics, /v1/models)"},
    {"curve.server_key", CFG_STRING, O(curve_server_key), 0, 4000, "", NULL,
     "CURVE: the broker's public certificate file (zcert); empty = no CURVE"},
    {"curve.cert", CFG_STRING, O(curve_cert), 0, 4000, "", NULL,
     "CURVE: this gateway's secret certificate file (zcert NAME_secret, authorised as a client by the broker)"},
    {"gateway.models", CFG_STRLIST, O(models), 0, 1000, "", NULL,
     "model names served through this gateway (and checked by /health); empty = every model the broker has"},
    {"gateway.default_max_tokens", CFG_INT, O(default_max_tokens), 1, 16384, "256", NULL,
     "max_tokens of a request that gives none"},
    {"gateway.deadline_ms", CFG_INT, O(deadline_ms), 100, 86400000, "600000", NULL,
     "job deadline (504 after it) of a request that gives no deadline_ms"},
    {"gateway.max_deadline_ms", CFG_INT, O(max_deadline_ms), 100, 86400000, "3600000", NULL,
     "largest deadline_ms a request may ask for"},
    {"gateway.drain_ms", CFG_INT, O(drain_ms), 0, 3600000, "10000", NULL,
     "on SIGTERM, answers in progress get this long before they are cut off"},
    {"images.max_bytes", CFG_INT, O(max_image_bytes), 1, 33554432, "33554432", NULL,
     "largest image (decoded data: URI or fetched), at most the protocol's 32 MiB"},
    {"images.fetch", CFG_BOOL, O(fetch), 0, 0, "false", NULL,
     "fetch http(s) image URLs (off: only data: URIs; file: URLs never)"},
    {"images.fetch_timeout_ms", CFG_INT, O(fetch_timeout_ms), 100, 600000, "10000", NULL,
     "time limit of one image fetch, redirects included"},
    {"images.fetch_threads", CFG_INT, O(fetch_threads), 1, GW_MAX_FETCH_THREADS, "4", NULL, "fetches at once"},
    {"log.level", CFG_ENUM, O(log_level), 0, 0, "info", "debug|info|warn|error", "log threshold"},
};
#undef O

static const char *const k_aliases[][2] = {{"broker", "broker.endpoint"}, {"port", "http.port"}, {"listen", "http.listen"}};

/* Reads the API keys file: one key per line, blank lines and lines starting with '#' skipped,
 * surrounding blanks trimmed. At least one key. 0 or HIRED_E* with err. */
static int load_keys(const char *path, char ***keys, int *n, char *err) {
    *keys = NULL;
    *n = 0;
    FILE *f = fopen(path, "r");
    if (!f) return hired_errf(err, HIRED_ENOTFOUND, "http.api_keys_file '%s': %s", path, strerror(errno));
    char line[4096];
    int rc = HIRED_OK;
    while (!rc && fgets(line, sizeof line, f)) {
        char *s = line, *e = line + strlen(line);
        while (*s == ' ' || *s == '\t') s++;
        while (e > s && (e[-1] == '\n' || e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t')) *--e = 0;
        if (!*s || *s == '#') continue;
        char **k = realloc(*keys, (size_t)(*n + 1) * sizeof *k);
        if (!k || !(k[*n] = strdup(s))) {
            if (k) *keys = k;
            rc = hired_errf(err, HIRED_ENOMEM, "out of memory reading %s", path);
            break;
        }
        *keys = k;
        (*n)++;
    }
    fclose(f);
    if (!rc && *n == 0) rc = hired_errf(err, HIRED_EINVAL, "http.api_keys_file '%s' holds no key", path);
    return rc;
}

static void free_keys(char ***keys, int *n) {
    for (int i = 0; i < *n; i++) free((*keys)[i]);
    free(*keys);
    *keys = NULL;
    *n = 0;
}

/* What --check-config checks (and every start): the broker endpoint, CURVE files, the listen
 * address, the keys file. */
static int check_config(const gw_cfg_t *c, char *err) {
    int rc = proc_check_endpoint("broker.endpoint", c->endpoint, "e.g. tcp://broker:5555", err);
    if (rc) return rc;
    if ((c->curve_server_key[0] != 0) != (c->curve_cert[0] != 0))
        return hired_errf(err, HIRED_EINVAL, "curve.server_key and curve.cert must be set together");
    curve_cfg_t cv = {.server_key = c->curve_server_key, .client_cert = c->curve_cert};
    char sub[HIRED_ERR_LEN];
    if ((rc = curve_check(&cv, sub))) return hired_errf(err, rc, "curve.*: %s", sub);
    struct sockaddr_storage ss;
    socklen_t sl;
    if ((rc = gw_http_resolve(c->listen, (int)c->port, &ss, &sl, err))) return rc;
    if (c->api_keys_file[0]) {
        char **keys;
        int n;
        rc = load_keys(c->api_keys_file, &keys, &n, err);
        free_keys(&keys, &n);
        if (rc) return rc;
    }
    return HIRED_OK;
}

static int write_ports(const gw_t *g, const char *path) {
    const char *h = g->cfg->listen;
    if (!h[0] || !strcmp(h, "0.0.0.0")) h = "127.0.0.1";
    if (!strcmp(h, "::")) h = "::1";
    FILE *f = fopen(path, "w");
    if (!f) return -1;
    fprintf(f, strchr(h, ':') ? "http=http://[%s]:%d\n" : "http=http://%s:%d\n", h, g->port);
    return fclose(f) ? -1 : 0;
}

/* The main loop: WATCHDOG=1 while the events thread turns (it goes round at least every 100 ms)
 * and the shared lock can be taken, i.e. while the gateway can still route events. */
static void serve(gw_t *g) {
    proc_watchdog_t wd;
    proc_watchdog_init(&wd);
    while (!proc_stop_requested()) {
        int64_t now = gw_now_ms();
        pthread_mutex_lock(&g->mu);
        pthread_mutex_unlock(&g->mu);
        if (now - atomic_load(&g->events_tick_ms) < 5000) proc_watchdog_tick(&wd, now);
        usleep((useconds_t)proc_watchdog_sleep_ms(&wd, 100) * 1000);
    }
    proc_notify_stopping("draining");
    log_info("hired-gateway: stopping (signal %d), %d requests in progress", proc_stop_signal(), gw_http_active(g));
    gw_http_quiesce(g);
    for (int64_t end = gw_now_ms() + g->cfg->drain_ms; gw_http_active(g) > 0 && gw_now_ms() < end;) {
        proc_watchdog_tick(&wd, gw_now_ms());
        usleep(10000);
    }
    if (gw_http_active(g) > 0) log_warn("hired-gateway: cutting off %d requests", gw_http_active(g));
}

int main(int argc, char **argv) {
    gw_cfg_t cfg;
    memset(&cfg, 0, sizeof cfg);
    char err[HIRED_ERR_LEN];
    int n = (int)ARRAY_LEN(k_cfg);
    bool check = false;
    int rc = proc_cfg_args(k_cfg, n, &cfg, argc, argv, k_aliases, (int)ARRAY_LEN(k_aliases), &check, err);
    if (rc == 1) {
        printf("\nhired-gateway [-c FILE] [--broker EP] [--port N] [--check-config] [--KEY=VALUE | -o KEY=VALUE]...\n");
        cfg_free(k_cfg, n, &cfg);
        return 0;
    }
    if (!rc) rc = check_config(&cfg, err);
    if (rc) {
        fprintf(stderr, "hired-gateway: %s\n", err);
        cfg_free(k_cfg, n, &cfg);
        return PROC_EXIT_CONFIG;
    }
    log_set_level((log_level_t)cfg.log_level);
    cfg_log(k_cfg, n, &cfg);
    if (check) {
        printf("hired-gateway: configuration OK (HTTP on %s:%lld, broker %s%s)\n", cfg.listen[0] ? cfg.listen : "*",
               (long long)cfg.port, cfg.endpoint, cfg.curve_cert[0] ? ", CURVE on" : "");
        cfg_free(k_cfg, n, &cfg);
        return 0;
    }
    if (proc_signals_install()) log_warn("hired-gateway: cannot install signal handlers");
    if (gw_fetch_global_init()) {
        log_error("hired-gateway: cannot initialise libcurl");
        cfg_free(k_cfg, n, &cfg);
        return PROC_EXIT_FAILURE;
    }

    gw_t g;
    memset(&g, 0, sizeof g);
    g.cfg = &cfg;
    g.listen_fd = -1;
    g.started_unix = (int64_t)time(NULL);
    atomic_store(&g.events_tick_ms, gw_now_ms());
    pthread_mutex_init(&g.mu, NULL);
    pthread_cond_init(&g.status_cv, NULL);
    pthread_cond_init(&g.fetch_cv, NULL);
    gw_metrics_init(&g.metrics);
    int exit_code = 0;
    rc = cfg.api_keys_file[0] ? load_keys(cfg.api_keys_file, &g.keys, &g.n_keys, err) : 0;
    if (rc) {
        log_error("hired-gateway: %s", err);
        exit_code = PROC_EXIT_CONFIG;
    } else if ((rc = gw_backend_start(&g, err))) {
        log_error("hired-gateway: %s", err);
        exit_code = rc == HIRED_EINVAL ? PROC_EXIT_CONFIG : PROC_EXIT_FAILURE;
    } else if ((rc = gw_http_start(&g, err))) {
        log_error("hired-gateway: %s", err);
        exit_code = rc == HIRED_EINVAL ? PROC_EXIT_CONFIG : PROC_EXIT_FAILURE;
    } else {
        if (cfg.ports_file[0] && write_ports(&g, cfg.ports_file))
            log_warn("hired-gateway: cannot write %s: %s", cfg.ports_file, strerror(errno));
        log_info("hired-gateway: serving http://%s:%d/v1 for the broker at %s%s", cfg.listen[0] ? cfg.listen : "*", g.port,
                 cfg.endpoint, cfg.curve_cert[0] ? " (CURVE)" : "");
        proc_notify_ready(NULL);
        proc_notify_status("HTTP on port %d, broker %s", g.port, cfg.endpoint);
        serve(&g);
    }
    int64_t t_stop = gw_now_ms();
    gw_http_stop(&g);
    int64_t t_http = gw_now_ms();
    gw_backend_stop(&g);
    if (exit_code == 0)
        log_info("hired-gateway: stopped (HTTP closed in %lld ms, broker client in %lld ms)",
                 (long long)(t_http - t_stop), (long long)(gw_now_ms() - t_http));
    free_keys(&g.keys, &g.n_keys);
    pthread_cond_destroy(&g.fetch_cv);
    pthread_cond_destroy(&g.status_cv);
    pthread_mutex_destroy(&g.mu);
    gw_fetch_global_cleanup();
    cfg_free(k_cfg, n, &cfg);
    return exit_code;
}
