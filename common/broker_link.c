/* broker_link.c — see broker_link.h. The I/O thread's loop: the user's state, the silence
 * policy (replace or probe), heartbeats, the user's round, one zmq_poll on the self-pipe and
 * the socket(s), then up to 256 messages to the user. */
#include "broker_link.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "mem.h"

struct broker_link {
    char endpoint[256], name[32];
    int heartbeat_ms, liveness, backoff_max_ms;
    bool heartbeat_at_start, unbounded_send;
    broker_link_policy_t policy;
    wire_limits_t lim;
    bool has_lim;
    char *curve_server_key, *curve_cert; /* NULL = plain TCP */
    broker_link_ops_t ops;
    void *user;
    void *ctx;
    int wake[2]; /* self-pipe: [0] polled by the I/O thread */
    atomic_int stop;
    pthread_t thread;
    bool thread_started;
};

int64_t broker_link_backoff(int64_t silent, int tries, int64_t max_ms) {
    int64_t w = silent;
    for (int i = 0; i < tries && w < max_ms; i++) w *= 2;
    return w < max_ms || silent > max_ms ? w : max_ms;
}

static void *open_socket(broker_link_t *l) {
    void *s = zmq_socket(l->ctx, ZMQ_DEALER);
    if (!s) return NULL;
    curve_cfg_t cv = {.server_key = l->curve_server_key, .client_cert = l->curve_cert};
    char err[HIRED_ERR_LEN] = "";
    int sndhwm = 0;
    if (wire_sock_setup(s, l->has_lim ? &l->lim : NULL) ||
        (l->unbounded_send && zmq_setsockopt(s, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm)) ||
        curve_apply_client(s, &cv, err) || zmq_connect(s, l->endpoint) != 0) {
        log_error("%s: cannot connect to %s: %s", l->name, l->endpoint, err[0] ? err : zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    return s;
}

static void close_socket(void **s) {
    if (*s) zmq_close(*s);
    *s = NULL;
}

static unsigned link_state(broker_link_t *l) { return l->ops.state ? l->ops.state(l->user) : BROKER_LINK_WAITING; }

static void *io_main(void *arg) {
    broker_link_t *l = arg;
    void *sock = open_socket(l), *probe = NULL;
    const int64_t silent = (int64_t)l->heartbeat_ms * l->liveness;
    int64_t now = clock_now_ms(), last_recv = now, probe_at = 0;
    int64_t next_hb = l->heartbeat_at_start ? now : now + l->heartbeat_ms;
    int tries = 0; /* tries in a row that heard nothing: the next wait doubles */
    if (sock && l->ops.on_open) l->ops.on_open(l->user, sock);
    while (!atomic_load(&l->stop)) {
        now = clock_now_ms();
        const unsigned st = link_state(l);
        const bool paused = st & BROKER_LINK_PAUSED, counts = (st & BROKER_LINK_WAITING) && !paused;
        if (!counts) { /* not reading, or nothing to wait for, is our choice: nothing is lost */
            last_recv = now;
            close_socket(&probe);
            tries = 0;
        }
        if (!sock || (l->policy == BROKER_LINK_REPLACE && now - last_recv > broker_link_backoff(silent, tries, l->backoff_max_ms))) {
            /* Broker lost (or never reached): a fresh socket gets a fresh routing id. */
            if (sock) {
                if (tries == 0)
                    log_warn("%s: broker silent for %lld ms; reconnecting", l->name, (long long)(now - last_recv));
                else
                    log_debug("%s: broker still silent; reconnecting", l->name);
                close_socket(&sock);
                tries++;
            }
            sock = open_socket(l);
            last_recv = now;
            if (!sock) {
                struct timespec ts = {0, 100 * 1000000L};
                nanosleep(&ts, NULL);
                continue;
            }
            if (l->ops.on_open) l->ops.on_open(l->user, sock);
        }
        if (l->policy == BROKER_LINK_PROBE && counts && now - last_recv > silent &&
            (!probe || now - probe_at > broker_link_backoff(silent, tries, l->backoff_max_ms))) {
            log_info("%s: broker silent for %lld ms; trying a new connection", l->name, (long long)(now - last_recv));
            close_socket(&probe);
            probe = open_socket(l);
            probe_at = now;
            tries++;
        }
        if (now >= next_hb) {
            if (st & BROKER_LINK_WAITING) l->ops.heartbeat(l->user, sock);
            if (probe) l->ops.heartbeat(l->user, probe);
            next_hb = now + l->heartbeat_ms;
        }
        int cap = l->ops.round ? l->ops.round(l->user, sock, now) : -1;
        zmq_pollitem_t items[3] = {{NULL, l->wake[0], ZMQ_POLLIN, 0}, {sock, 0, ZMQ_POLLIN, 0}, {probe, 0, ZMQ_POLLIN, 0}};
        long timeout = (long)(next_hb - clock_now_ms());
        if (cap >= 0 && timeout > cap) timeout = cap;
        if (timeout < 0) timeout = 0;
        if (zmq_poll(items, paused ? 1 : probe ? 3 : 2, timeout) < 0 && errno != EINTR) break;
        if (items[0].revents & ZMQ_POLLIN) {
            char buf[64];
            while (read(l->wake[0], buf, sizeof buf) > 0) {
            }
        }
        if (paused) continue;
        if (probe && (items[2].revents & ZMQ_POLLIN)) { /* the new connection works: keep it */
            log_info("%s: the new connection to the broker answers; using it", l->name);
            close_socket(&sock);
            sock = probe;
            probe = NULL;
            tries = 0;
            if (l->ops.on_adopt) l->ops.on_adopt(l->user);
            items[1].revents = ZMQ_POLLIN;
        }
        if (!(items[1].revents & ZMQ_POLLIN)) continue;
        bool reset = false;
        for (int i = 0; i < 256 && !reset; i++) {
            wire_parts_t p;
            if (wire_recv(sock, &p, ZMQ_DONTWAIT)) break;
            last_recv = clock_now_ms();
            tries = 0;
            reset = l->ops.on_message(l->user, sock, &p, last_recv);
            wire_parts_close(&p);
        }
        if (reset) {
            /* The broker does not know this connection (it restarted, or declared us dead). A
             * fresh socket means a fresh routing id, so what is still on its way to the old one
             * (answers to stale heartbeats) cannot end the new session. */
            log_info("%s: the broker does not know this connection; announcing again", l->name);
            close_socket(&sock);
            sock = open_socket(l);
            if (sock && l->ops.on_open) l->ops.on_open(l->user, sock);
        }
        if (probe && now - last_recv <= silent) { /* the old connection was only slow */
            close_socket(&probe);
            tries = 0;
        }
    }
    close_socket(&probe);
    if (l->ops.on_close) l->ops.on_close(l->user, sock);
    close_socket(&sock); /* linger lets the last sends out */
    return NULL;
}

/* Whether endpoint is one ZeroMQ accepts (a throwaway socket connects to it). */
static int check_endpoint(void *ctx, const char *endpoint, char *err) {
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    if (!s) return hired_errf(err, HIRED_EIO, "cannot create a ZeroMQ socket");
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    int rc = zmq_connect(s, endpoint);
    int e = zmq_errno();
    zmq_close(s);
    if (rc == 0) return HIRED_OK;
    return hired_errf(err, HIRED_EINVAL, "broker endpoint '%s' is not usable (%s); expected e.g. tcp://HOST:5555",
                      endpoint, zmq_strerror(e));
}

broker_link_t *broker_link_new(const broker_link_opts_t *o, char *err) {
    if (!o->endpoint || strlen(o->endpoint) >= 256 || !o->ops || !o->ops->heartbeat || !o->ops->on_message ||
        o->heartbeat_ms <= 0 || o->liveness <= 0) {
        hired_errf(err, HIRED_EINVAL, "broker_link: endpoint (< 256 characters), heartbeat and callbacks are required");
        return NULL;
    }
    broker_link_t *l = mem_calloc(1, sizeof *l);
    if (!l) {
        hired_errf(err, HIRED_ENOMEM, "out of memory");
        return NULL;
    }
    snprintf(l->endpoint, sizeof l->endpoint, "%s", o->endpoint);
    snprintf(l->name, sizeof l->name, "%s", o->name ? o->name : "broker_link");
    l->heartbeat_ms = o->heartbeat_ms;
    l->liveness = o->liveness;
    l->heartbeat_at_start = o->heartbeat_at_start;
    l->policy = o->policy;
    l->backoff_max_ms = o->backoff_max_ms > 0 ? o->backoff_max_ms : 10000;
    l->unbounded_send = o->unbounded_send;
    if ((l->has_lim = o->limits != NULL)) l->lim = *o->limits;
    l->ops = *o->ops;
    l->user = o->user;
    l->wake[0] = l->wake[1] = -1;
    bool curve_ok = !curve_client_enabled(o->curve) || ((l->curve_server_key = mem_strdup(o->curve->server_key)) &&
                                                        (l->curve_cert = mem_strdup(o->curve->client_cert)));
    if (!curve_ok || pipe2(l->wake, O_NONBLOCK | O_CLOEXEC) != 0 || !(l->ctx = zmq_ctx_new())) {
        hired_errf(err, HIRED_ENOMEM, "%s: out of resources creating the connection", l->name);
        broker_link_destroy(&l);
        return NULL;
    }
    if (o->check_endpoint && check_endpoint(l->ctx, l->endpoint, err)) broker_link_destroy(&l);
    return l;
}

int broker_link_start(broker_link_t *l, char *err) {
    if (pthread_create(&l->thread, NULL, io_main, l) != 0)
        return hired_errf(err, HIRED_EIO, "%s: cannot start the I/O thread", l->name);
    l->thread_started = true;
    return HIRED_OK;
}

void broker_link_wake(broker_link_t *l) {
    char b = 1;
    ssize_t r = write(l->wake[1], &b, 1); /* a full pipe: already awake */
    (void)r;
}

void broker_link_stop(broker_link_t *l) {
    atomic_store(&l->stop, 1);
    if (l->wake[1] >= 0) broker_link_wake(l);
}

bool broker_link_stopping(broker_link_t *l) { return atomic_load(&l->stop); }

void broker_link_destroy(broker_link_t **pl) {
    if (!pl || !*pl) return;
    broker_link_t *l = *pl;
    broker_link_stop(l);
    if (l->thread_started) pthread_join(l->thread, NULL);
    mem_free(l->curve_server_key);
    mem_free(l->curve_cert);
    if (l->ctx) zmq_ctx_term(l->ctx);
    if (l->wake[0] >= 0) close(l->wake[0]);
    if (l->wake[1] >= 0) close(l->wake[1]);
    mem_free(l);
    *pl = NULL;
}
