/* proc.h — what a hired daemon does with its own process: stop signals, systemd readiness and
 * the systemd watchdog.
 *
 *   signals   SIGTERM and SIGINT set one flag (the only mutable global of a hired process, as
 *             docs/architecture.md §9 allows); the daemon's main loop polls
 *             proc_stop_requested() and does the actual stopping itself, so nothing but the
 *             flag happens in signal context.
 *             SIGPIPE is ignored.
 *   sd_notify READY=1 / STOPPING=1 / STATUS=... through libsystemd when the process runs under
 *             systemd (NOTIFY_SOCKET set); without it every notify call is a no-op, so the same
 *             binary runs in a terminal, a test or a Type=notify unit.
 *   watchdog  WATCHDOG_USEC (WatchdogSec= in the unit) gives the interval; proc_watchdog_tick
 *             sends WATCHDOG=1 at most every half interval. Call it from the loop whose liveness
 *             matters (the main loop), never from a helper thread that would keep pinging while
 *             the main loop hangs.
 * Not here: configuration (cfg.h), the broker connection (worker_conn.h). */
#ifndef HIRED_PROC_H
#define HIRED_PROC_H

#include <stdbool.h>
#include <stdint.h>

#include "cfg.h"

/* Installs the SIGTERM/SIGINT handler (sets the stop flag) and ignores SIGPIPE. 0 or HIRED_EIO. */
int proc_signals_install(void);
/* True once SIGTERM or SIGINT arrived (or proc_request_stop was called). */
bool proc_stop_requested(void);
/* The signal that requested the stop (0: none yet, or proc_request_stop). */
int proc_stop_signal(void);
/* Sets the stop flag from code (a fatal condition found by a helper thread). Async-signal-safe. */
void proc_request_stop(void);

/* True when NOTIFY_SOCKET is set (started by systemd with Type=notify). */
bool proc_under_systemd(void);
/* READY=1 with an optional STATUS= line (status may be NULL). */
void proc_notify_ready(const char *status);
/* STOPPING=1 with an optional STATUS= line. */
void proc_notify_stopping(const char *status);
/* STATUS=<printf text>. */
void proc_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Watchdog state of one loop. Zero-initialise, then proc_watchdog_init. */
typedef struct {
    int64_t interval_ms; /* WATCHDOG_USEC / 1000, 0 = watchdog off */
    int64_t last_ms;     /* when WATCHDOG=1 was last sent */
} proc_watchdog_t;

/* Reads WATCHDOG_USEC (and WATCHDOG_PID: ignored when it names another process). */
void proc_watchdog_init(proc_watchdog_t *wd);
/* Sends WATCHDOG=1 if half the interval passed since the last ping. now_ms: a monotonic clock. */
void proc_watchdog_tick(proc_watchdog_t *wd, int64_t now_ms);
/* How long a loop may sleep between ticks without missing one: interval / 4 (at least 10 ms),
 * or `idle_ms` when the watchdog is off or idle_ms is shorter. */
int proc_watchdog_sleep_ms(const proc_watchdog_t *wd, int idle_ms);

// ---- exit statuses ---------------------------------------------------------------------------

/* How every daemon (hired-broker, hired-encoder, hired-decoder) ends, as the systemd units know
 * it: PROC_EXIT_CONFIG is a configuration error — an unknown key or bad value, a device this
 * build cannot use, CURVE files that do not load, a model directory that is missing or does not
 * load — which a restart cannot cure (the units say RestartPreventExitStatus=2);
 * PROC_EXIT_FAILURE is a failure at run time (a backend fault, an endpoint that cannot be bound,
 * resources), which a restart may cure (Restart=on-failure). 0 is a clean stop. */
#define PROC_EXIT_FAILURE 1
#define PROC_EXIT_CONFIG 2

// ---- daemon command line ---------------------------------------------------------------------

/* Rewrites a daemon's argv for cfg_args: "--check-config" is removed and reported in *check;
 * "--NAME VALUE" and "--NAME=VALUE" for each alias pair {NAME, KEY} become "--KEY=VALUE" (so
 * `--model DIR` is `--model.dir=DIR`). Everything else is passed on unchanged. *out (argv[0]
 * first, NULL-terminated) and its new strings are owned by the caller: proc_args_free.
 * HIRED_EINVAL (an alias without a value) or HIRED_ENOMEM with err. */
int proc_args_rewrite(int argc, char **argv, const char *const (*aliases)[2], int n_aliases, int *out_argc,
                      char ***out, bool *check, char *err);
void proc_args_free(int argc, char ***argv);
/* A daemon's whole command line into values: proc_args_rewrite, then cfg_args on the result
 * (cfg.h: -c FILE, -o / --KEY=VALUE, --help). cfg_args's return: 0, 1 (--help: the keys were
 * printed, the caller adds its usage line) or HIRED_E* with err. */
int proc_cfg_args(const cfg_entry_t *t, int n, void *values, int argc, char **argv, const char *const (*aliases)[2],
                  int n_aliases, bool *check, char *err);

/* 0 when `value` looks like a ZeroMQ endpoint (transport://address); else HIRED_EINVAL with
 * err "KEY 'VALUE' is not a ZeroMQ endpoint (HINT)". ZeroMQ itself says more when it binds or
 * connects; this catches the common mistake (no transport) at --check-config. */
int proc_check_endpoint(const char *key, const char *value, const char *hint, char *err);

/* Parses a compute device: "cpu" -> -1; "cuda:N" or "N" (a systemd instance %i) -> N in
 * [0, 63]. HIRED_EINVAL with err naming the text. */
int proc_parse_device(const char *s, int *cuda_index, char *err);

#endif
