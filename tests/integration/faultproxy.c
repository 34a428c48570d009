/* faultproxy.c — see faultproxy.h. One libevent loop on its own thread. Commands from the test
 * thread are written under a mutex and picked up by a 10 ms timer in the loop, so no libevent
 * call ever happens off the loop's thread. Each proxied connection is a pair of bufferevents:
 * `down_src` reads from the target, `up_src` reads from the peer; a stalled direction has its
 * source's reading disabled, a throttled one a token-bucket rate limit on its source. */
#include "faultproxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

typedef struct conn {
    fp_t *f;
    struct bufferevent *peer, *target; /* peer: the accepted side; target: towards the broker */
    bool target_up;                    /* connected to the target */
    struct ev_token_bucket_cfg *cfg[2]; /* the rate limits in force (libevent keeps a pointer) */
    struct conn *next;
} conn_t;

struct fp {
    struct event_base *base;
    struct evconnlistener *lis;
    struct event *tick;
    struct sockaddr_in target;
    pthread_t thread;
    pthread_mutex_t mu;
    /* commands (under mu) */
    bool stop;
    int stall;            /* FP_* bits stalled */
    size_t rate[2];       /* [0] up, [1] down; 0 = unlimited */
    int reset_now;        /* resets requested */
    int reset_every_ms;
    /* loop state */
    int applied_stall;
    size_t applied_rate[2];
    int64_t next_reset, last_tick;
    conn_t *conns;
    fp_stats_t st;        /* under mu */
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void conn_free(conn_t *c, bool rst) {
    fp_t *f = c->f;
    conn_t **pp = &f->conns;
    while (*pp && *pp != c) pp = &(*pp)->next;
    if (*pp) *pp = c->next;
    struct bufferevent *b[2] = {c->peer, c->target};
    for (int i = 0; i < 2; i++) {
        if (!b[i]) continue;
        evutil_socket_t fd = bufferevent_getfd(b[i]);
        if (rst && fd >= 0) {
            struct linger l = {1, 0}; /* close() sends RST */
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        }
        bufferevent_free(b[i]); /* BEV_OPT_CLOSE_ON_FREE */
    }
    for (int d = 0; d < 2; d++)
        if (c->cfg[d]) ev_token_bucket_cfg_free(c->cfg[d]);
    pthread_mutex_lock(&f->mu);
    f->st.open--;
    if (rst) f->st.resets++;
    pthread_mutex_unlock(&f->mu);
    free(c);
}

/* Applies the stall and rate settings to one connection. */
static void conn_apply(fp_t *f, conn_t *c) {
    struct bufferevent *src[2] = {c->peer, c->target}; /* up reads the peer, down the target */
    for (int d = 0; d < 2; d++) {
        if (!src[d] || (d == 1 && !c->target_up)) continue;
        if (f->applied_stall & (d ? FP_DOWN : FP_UP)) bufferevent_disable(src[d], EV_READ);
        else bufferevent_enable(src[d], EV_READ);
        size_t r = f->applied_rate[d];
        struct ev_token_bucket_cfg *cfg = NULL;
        if (r) { /* a tenth of the rate every 100 ms */
            struct timeval tick = {0, 100000};
            size_t per = r / 10 ? r / 10 : 1;
            cfg = ev_token_bucket_cfg_new(per, per, EV_RATE_LIMIT_MAX, EV_RATE_LIMIT_MAX, &tick);
        }
        bufferevent_set_rate_limit(src[d], cfg);
        if (c->cfg[d]) ev_token_bucket_cfg_free(c->cfg[d]);
        c->cfg[d] = cfg;
    }
}

static void on_read(struct bufferevent *bev, void *arg) {
    conn_t *c = arg;
    bool up = bev == c->peer;
    struct bufferevent *dst = up ? c->target : c->peer;
    if (!dst || (up && !c->target_up)) return; /* keep it until the target is connected */
    size_t n = evbuffer_get_length(bufferevent_get_input(bev));
    evbuffer_add_buffer(bufferevent_get_output(dst), bufferevent_get_input(bev));
    pthread_mutex_lock(&c->f->mu);
    if (up) c->f->st.bytes_up += n;
    else c->f->st.bytes_down += n;
    pthread_mutex_unlock(&c->f->mu);
}

static void on_event(struct bufferevent *bev, short what, void *arg) {
    conn_t *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->target_up = true;
        conn_apply(c->f, c);
        on_read(c->peer, c); /* what the peer sent meanwhile */
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
        (void)bev;
        conn_free(c, false);
    }
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg) {
    (void)lis, (void)sa, (void)len;
    fp_t *f = arg;
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return;
    }
    c->f = f;
    c->peer = bufferevent_socket_new(f->base, fd, BEV_OPT_CLOSE_ON_FREE);
    c->target = bufferevent_socket_new(f->base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->next = f->conns;
    f->conns = c;
    pthread_mutex_lock(&f->mu);
    f->st.accepted++;
    f->st.open++;
    pthread_mutex_unlock(&f->mu);
    if (!c->peer || !c->target) {
        conn_free(c, false);
        return;
    }
    bufferevent_setcb(c->peer, on_read, NULL, on_event, c);
    bufferevent_setcb(c->target, on_read, NULL, on_event, c);
    bufferevent_enable(c->peer, EV_READ | EV_WRITE);
    bufferevent_enable(c->target, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(c->target, (struct sockaddr *)&f->target, sizeof f->target) < 0) {
        conn_free(c, false);
        return;
    }
    conn_apply(f, c);
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    fp_t *f = arg;
    int64_t now = now_ms();
    pthread_mutex_lock(&f->mu);
    if (f->stop) {
        pthread_mutex_unlock(&f->mu);
        event_base_loopbreak(f->base);
        return;
    }
    if (f->applied_stall && f->st.open) f->st.stalled_ms += (uint64_t)(now - f->last_tick);
    f->last_tick = now;
    bool changed = f->stall != f->applied_stall || f->rate[0] != f->applied_rate[0] || f->rate[1] != f->applied_rate[1];
    f->applied_stall = f->stall;
    f->applied_rate[0] = f->rate[0], f->applied_rate[1] = f->rate[1];
    int resets = f->reset_now;
    f->reset_now = 0;
    if (f->reset_every_ms > 0) {
        if (!f->next_reset) f->next_reset = now + f->reset_every_ms;
        if (now >= f->next_reset) {
            resets++;
            f->next_reset = now + f->reset_every_ms;
        }
    } else {
        f->next_reset = 0;
    }
    pthread_mutex_unlock(&f->mu);
    if (changed)
        for (conn_t *c = f->conns; c; c = c->next) conn_apply(f, c);
    if (resets)
        while (f->conns) conn_free(f->conns, true);
}

static void *loop(void *arg) {
    fp_t *f = arg;
    event_base_dispatch(f->base);
    return NULL;
}

fp_t *fp_start(const char *target_ep, char *listen_ep) {
    char host[64];
    int port = 0;
    if (sscanf(target_ep, "tcp://%63[^:]:%d", host, &port) != 2) return NULL;
    fp_t *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    pthread_mutex_init(&f->mu, NULL);
    f->target.sin_family = AF_INET;
    f->target.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &f->target.sin_addr) != 1 || !(f->base = event_base_new())) goto fail;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    f->lis = evconnlistener_new_bind(f->base, on_accept, f, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 64,
                                     (struct sockaddr *)&sin, sizeof sin);
    if (!f->lis) goto fail;
    struct sockaddr_in bound;
    socklen_t bl = sizeof bound;
    getsockname(evconnlistener_get_fd(f->lis), (struct sockaddr *)&bound, &bl);
    snprintf(listen_ep, 64, "tcp://127.0.0.1:%d", ntohs(bound.sin_port));
    f->tick = event_new(f->base, -1, EV_PERSIST, on_tick, f);
    struct timeval tv = {0, 10000};
    f->last_tick = now_ms();
    if (!f->tick || event_add(f->tick, &tv) || pthread_create(&f->thread, NULL, loop, f)) goto fail;
    return f;
fail:
    if (f->tick) event_free(f->tick);
    if (f->lis) evconnlistener_free(f->lis);
    if (f->base) event_base_free(f->base);
    pthread_mutex_destroy(&f->mu);
    free(f);
    return NULL;
}

void fp_stop(fp_t **pf) {
    if (!pf || !*pf) return;
    fp_t *f = *pf;
    pthread_mutex_lock(&f->mu);
    f->stop = true;
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    while (f->conns) conn_free(f->conns, false);
    event_free(f->tick);
    evconnlistener_free(f->lis);
    event_base_free(f->base);
    pthread_mutex_destroy(&f->mu);
    free(f);
    *pf = NULL;
}

void fp_stall(fp_t *f, int dirs, bool on) {
    pthread_mutex_lock(&f->mu);
    f->stall = on ? (f->stall | dirs) : (f->stall & ~dirs);
    pthread_mutex_unlock(&f->mu);
}

void fp_rate(fp_t *f, int dirs, size_t bytes_per_s) {
    pthread_mutex_lock(&f->mu);
    if (dirs & FP_UP) f->rate[0] = bytes_per_s;
    if (dirs & FP_DOWN) f->rate[1] = bytes_per_s;
    pthread_mutex_unlock(&f->mu);
}

void fp_reset(fp_t *f) {
    pthread_mutex_lock(&f->mu);
    f->reset_now++;
    pthread_mutex_unlock(&f->mu);
}

void fp_reset_every(fp_t *f, int ms) {
    pthread_mutex_lock(&f->mu);
    f->reset_every_ms = ms;
    pthread_mutex_unlock(&f->mu);
}

void fp_get_stats(fp_t *f, fp_stats_t *out) {
    pthread_mutex_lock(&f->mu);
    *out = f->st;
    pthread_mutex_unlock(&f->mu);
}
