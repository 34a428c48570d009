/* broker_link.h — one DEALER connection to the broker, kept alive by a background I/O thread:
 * what libhired's client (client/hired_client.c) and the workers' connection
 * (common/worker_conn.c) share. The link owns the ZeroMQ context, the socket(s), the self-pipe
 * that wakes the thread, heartbeats and the reconnect when the broker falls silent; its user
 * owns the protocol (what to send, what a message means) through the callbacks below, which all
 * run on the I/O thread.
 *
 * Silence: the broker counts as lost after liveness x heartbeat without a message while the
 * link is waiting (BROKER_LINK_WAITING, not paused). Then, by policy:
 *   BROKER_LINK_REPLACE  the socket is closed and a fresh one (a fresh routing id) opened;
 *                        on_open announces it (the worker's READY);
 *   BROKER_LINK_PROBE    a second socket is tried while the first stays open (a link stalled in
 *                        one direction may still carry our heartbeats); the first of the two
 *                        to hear from the broker is kept, and on_adopt runs when that is the
 *                        probe (libhired's client).
 * Either way the next try waits twice as long, up to backoff_max_ms (never less than silence).
 * on_message may also ask for a fresh socket (the worker on DISCONNECT).
 *
 * Not here: the messages themselves (wire.h), sessions, jobs, delivery (the users). */
#ifndef HIRED_BROKER_LINK_H
#define HIRED_BROKER_LINK_H

#include <stdbool.h>
#include <stdint.h>

#include "curve.h"
#include "wire.h"

typedef struct broker_link broker_link_t;

/* Where the link stands, as flags (broker_link_ops_t.state). */
enum {
    BROKER_LINK_WAITING = 1, /* something is owed by the broker: heartbeats on the connection, and
                                silence counts (unless paused) */
    BROKER_LINK_PAUSED = 2,  /* the sockets are not read (the user is behind); silence does not count */
};

typedef enum { BROKER_LINK_REPLACE, BROKER_LINK_PROBE } broker_link_policy_t;

/* The user's half; every callback runs on the I/O thread, user is broker_link_opts_t.user. */
typedef struct {
    /* sock is the connection now (the first one, a replacement): announce it. May be NULL. */
    void (*on_open)(void *user, void *sock);
    /* The probe heard from the broker and is the connection now. May be NULL. */
    void (*on_adopt)(void *user);
    /* Where the link stands: BROKER_LINK_* flags (NULL: always BROKER_LINK_WAITING). */
    unsigned (*state)(void *user);
    /* One heartbeat on sock (the connection, or a probe). */
    void (*heartbeat)(void *user, void *sock);
    /* One round before waiting: the user's sends on sock. Returns the longest wait (ms) before
     * the next round, or -1 for "until the next heartbeat". */
    int (*round)(void *user, void *sock, int64_t now);
    /* One message received on sock at now (clock_now_ms). Returns true to have the socket
     * replaced by a fresh one (then on_open). */
    bool (*on_message)(void *user, void *sock, wire_parts_t *p, int64_t now);
    /* The link is stopping: last sends on sock (may be NULL when none is open). */
    void (*on_close)(void *user, void *sock);
} broker_link_ops_t;

typedef struct {
    const char *endpoint;        /* < 256 characters */
    const char *name;            /* log prefix ("hired", "worker_conn") */
    int heartbeat_ms, liveness;  /* > 0 */
    bool heartbeat_at_start;     /* the first heartbeat at once (else after heartbeat_ms) */
    broker_link_policy_t policy;
    int backoff_max_ms;          /* longest wait between two tries */
    const wire_limits_t *limits; /* the socket's message limits (wire_sock_setup); NULL: defaults */
    bool unbounded_send;         /* ZMQ_SNDHWM 0: never refuse our own sends */
    bool check_endpoint;         /* refuse an endpoint ZeroMQ cannot connect to, in broker_link_new */
    const curve_cfg_t *curve;    /* client half set: CURVE on every socket; copied */
    const broker_link_ops_t *ops;
    void *user;
} broker_link_opts_t;

/* Copies what it needs of opts (the CURVE file names too) and creates the context and the
 * self-pipe; the I/O thread starts with broker_link_start. NULL with err on a bad endpoint
 * (check_endpoint) or missing resources. */
broker_link_t *broker_link_new(const broker_link_opts_t *opts, char *err);
/* Starts the I/O thread (the user's state must be ready for its callbacks). 0 or HIRED_EIO. */
int broker_link_start(broker_link_t *l, char *err);
/* Wakes the I/O thread for a round now (after queueing sends). Async-signal-safe. */
void broker_link_wake(broker_link_t *l);
/* Asks the I/O thread to stop (on_close, then the thread ends). Async-signal-safe. */
void broker_link_stop(broker_link_t *l);
bool broker_link_stopping(broker_link_t *l);
/* Stops, joins the thread, frees everything. NULL-safe; sets *pl = NULL. */
void broker_link_destroy(broker_link_t **pl);
/* The doubling wait after `tries` tries: silent << tries, at most max_ms unless silent is more. */
int64_t broker_link_backoff(int64_t silent, int tries, int64_t max_ms);

#endif
