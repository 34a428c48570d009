/* proc.c — see proc.h. Signals set a flag; sd_notify and the watchdog go through libsystemd
 * (sd_notify, sd_watchdog_enabled), which are no-ops without NOTIFY_SOCKET / WATCHDOG_USEC. */
#include "proc.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "cfg.h"
#include "err.h"
#include "log.h"
#include "mem.h"

/* The one mutable global: which stop signal arrived (-1: stop requested from code). */
static volatile sig_atomic_t g_stop_sig;

static void on_stop_signal(int sig) { g_stop_sig = sig; }

int proc_signals_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGTERM, &sa, NULL) || sigaction(SIGINT, &sa, NULL)) return HIRED_EIO;
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &ign, NULL)) return HIRED_EIO;
    return HIRED_OK;
}

bool proc_stop_requested(void) { return g_stop_sig != 0; }
int proc_stop_signal(void) { return g_stop_sig > 0 ? g_stop_sig : 0; }
void proc_request_stop(void) {
    if (!g_stop_sig) g_stop_sig = -1;
}

// ---- sd_notify -------------------------------------------------------------------------------

bool proc_under_systemd(void) {
    const char *s = getenv("NOTIFY_SOCKET");
    return s && *s;
}

/* state is one or more newline-separated assignments; failures are logged, never fatal (a
 * daemon must keep serving if the notify socket went away). */
static void notify(const char *state) {
    if (!proc_under_systemd()) return;
    int rc = sd_notify(0, state);
    if (rc < 0) log_warn("sd_notify(%s) failed: %s", state, strerror(-rc));
}

static void notify_with_status(const char *what, const char *status) {
    char buf[600];
    if (status && *status) snprintf(buf, sizeof buf, "%s\nSTATUS=%s", what, status);
    else snprintf(buf, sizeof buf, "%s", what);
    notify(buf);
}

void proc_notify_ready(const char *status) { notify_with_status("READY=1", status); }
void proc_notify_stopping(const char *status) { notify_with_status("STOPPING=1", status); }

void proc_notify_status(const char *fmt, ...) {
    if (!proc_under_systemd()) return;
    char buf[520] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + 7, sizeof buf - 7, fmt, ap);
    va_end(ap);
    notify(buf);
}

// ---- watchdog --------------------------------------------------------------------------------

void proc_watchdog_init(proc_watchdog_t *wd) {
    memset(wd, 0, sizeof *wd);
    uint64_t usec = 0;
    /* > 0 only when WATCHDOG_USEC is set and WATCHDOG_PID (if set) is this process */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
        wd->interval_ms = (int64_t)(usec / 1000);
        if (wd->interval_ms < 1) wd->interval_ms = 1;
        log_info("systemd watchdog: every %lld ms", (long long)wd->interval_ms);
    }
}

void proc_watchdog_tick(proc_watchdog_t *wd, int64_t now_ms) {
    if (wd->interval_ms <= 0) return;
    if (wd->last_ms && now_ms - wd->last_ms < wd->interval_ms / 2) return;
    wd->last_ms = now_ms;
    int rc = sd_notify(0, "WATCHDOG=1");
    if (rc < 0) log_warn("sd_notify(WATCHDOG=1) failed: %s", strerror(-rc));
}

int proc_watchdog_sleep_ms(const proc_watchdog_t *wd, int idle_ms) {
    if (wd->interval_ms <= 0) return idle_ms;
    int64_t q = wd->interval_ms / 4;
    if (q < 10) q = 10;
    return q < idle_ms ? (int)q : idle_ms;
}

// ---- daemon command line ---------------------------------------------------------------------

void proc_args_free(int argc, char ***pargv) {
    if (!pargv || !*pargv) return;
    for (int i = 1; i < argc; i++) mem_free((*pargv)[i]);
    mem_free(*pargv);
    *pargv = NULL;
}

int proc_args_rewrite(int argc, char **argv, const char *const (*aliases)[2], int n_aliases, int *out_argc,
                      char ***out, bool *check, char *err) {
    *check = false;
    *out = NULL;
    *out_argc = 0;
    char **v = mem_calloc((size_t)argc + 1, sizeof *v);
    if (!v) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    int n = 0;
    v[n++] = argv[0];
    int rc = HIRED_OK;
    for (int i = 1; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--check-config")) {
            *check = true;
            continue;
        }
        const char *key = NULL, *val = NULL;
        for (int k = 0; k < n_aliases && !key; k++) {
            size_t l = strlen(aliases[k][0]);
            if (strncmp(a, "--", 2) || strncmp(a + 2, aliases[k][0], l)) continue;
            if (a[2 + l] == '=') key = aliases[k][1], val = a + 3 + l;
            else if (!a[2 + l]) {
                if (i + 1 >= argc) {
                    rc = hired_errf(err, HIRED_EINVAL, "command line: %s needs a value", a);
                    break;
                }
                key = aliases[k][1], val = argv[++i];
            }
        }
        if (rc) break;
        if (!key) {
            v[n] = mem_strdup(a);
        } else {
            size_t len = strlen(key) + strlen(val) + 4;
            if ((v[n] = mem_alloc(len))) snprintf(v[n], len, "--%s=%s", key, val);
        }
        if (!v[n]) rc = hired_errf(err, HIRED_ENOMEM, "out of memory");
        else n++;
    }
    if (rc) {
        proc_args_free(n, &v);
        return rc;
    }
    *out = v;
    *out_argc = n;
    return HIRED_OK;
}

int proc_parse_device(const char *s, int *cuda_index, char *err) {
    if (!s) return hired_errf(err, HIRED_EINVAL, "no device given");
    if (!strcmp(s, "cpu")) {
        *cuda_index = -1;
        return HIRED_OK;
    }
    const char *num = !strncmp(s, "cuda:", 5) ? s + 5 : s;
    char *end = (char *)num;
    long v = *num >= '0' && *num <= '9' ? strtol(num, &end, 10) : -1;
    if (v < 0 || v > 63 || *end)
        return hired_errf(err, HIRED_EINVAL, "device '%.100s' is not cpu, cuda:N or N (N in [0, 63])", s);
    *cuda_index = (int)v;
    return HIRED_OK;
}

int proc_cfg_args(const cfg_entry_t *t, int n, void *values, int argc, char **argv, const char *const (*aliases)[2],
                  int n_aliases, bool *check, char *err) {
    int ac = 0;
    char **av = NULL;
    int rc = proc_args_rewrite(argc, argv, aliases, n_aliases, &ac, &av, check, err);
    if (!rc) rc = cfg_args(t, n, values, ac, av, err);
    proc_args_free(ac, &av);
    return rc;
}

int proc_check_endpoint(const char *key, const char *value, const char *hint, char *err) {
    const char *sep = strstr(value, "://");
    if (!sep || sep == value || !sep[3])
        return hired_errf(err, HIRED_EINVAL, "%s '%s' is not a ZeroMQ endpoint (%s)", key, value, hint);
    return HIRED_OK;
}
