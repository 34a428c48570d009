/* backend.c — the gateway's side of the broker: the one libhired client, the events thread
 * (job events to their requests; sockets of waiting requests peeked for a client that left),
 * the status thread (STATUS, periodically and on demand) and the fetch threads (http(s)
 * images). The threads and their contract are in gw.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "err.h"
#include "fetch.h"
#include "gw.h"
#include "log.h"

#define PEEK_EVERY_MS 100 /* how often waiting requests' sockets are checked */

int64_t gw_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void gw_wake(gw_t *g, gw_req_t *r) {
    (void)g;
    if (r->suspended) {
        r->suspended = false;
        MHD_resume_connection(r->conn);
    }
}

// ---- job map ---------------------------------------------------------------------------------

static unsigned bucket(const char *id) {
    uint32_t h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h % GW_MAP_BUCKETS;
}

void gw_map_add(gw_t *g, gw_req_t *r) {
    unsigned b = bucket(r->job_id);
    r->hnext = g->map[b];
    g->map[b] = r;
    r->in_map = true;
}

void gw_map_del(gw_t *g, gw_req_t *r) {
    if (!r->in_map) return;
    for (gw_req_t **p = &g->map[bucket(r->job_id)]; *p; p = &(*p)->hnext)
        if (*p == r) {
            *p = r->hnext;
            break;
        }
    r->in_map = false;
}

static gw_req_t *map_find(gw_t *g, const char *id) {
    for (gw_req_t *r = g->map[bucket(id)]; r; r = r->hnext)
        if (!strcmp(r->job_id, id)) return r;
    return NULL;
}

// ---- events thread ---------------------------------------------------------------------------

/* Under mu: moves ev (and its text) into r's inbox; false when out of memory. */
static bool inbox_push(gw_req_t *r, hired_event *ev) {
    if (r->n_in == r->cap_in) {
        int cap = r->cap_in ? r->cap_in * 2 : 16;
        hired_event *p = realloc(r->inbox, (size_t)cap * sizeof *p);
        if (!p) return false;
        r->inbox = p, r->cap_in = cap;
    }
    r->inbox[r->n_in++] = *ev;
    ev->text = NULL;
    return true;
}

/* Under mu: true when the peer of fd closed its side or reset the connection. Pipelined bytes
 * waiting to be read count as alive. */
static bool peer_gone(int fd) {
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return true;
    return n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR;
}

static void peek_waiting(gw_t *g) {
    for (gw_req_t *r = g->reqs; r; r = r->next) {
        /* MHD does not watch suspended connections, and one resumed after its client left may
         * sit unprocessed (MHD saw the EOF and waits for an event that never comes), so every
         * request still waiting for its answer is peeked. The fd is still this request's: MHD
         * closes a socket only after on_completed, which takes mu and unlinks the request
         * first. A streamed answer in progress counts too (GW_PH_STREAM, between tokens). */
        if (r->client_gone || r->fd < 0 || r->phase == GW_PH_DONE || !peer_gone(r->fd)) continue;
        log_debug("hired-gateway: request %llu: the client closed its connection", (unsigned long long)r->serial);
        r->client_gone = true;
        if (r->submitted && !r->job_ended) hired_cancel(g->client, r->job_id); /* frees the workers now */
        if (!r->final) { /* it left before its answer was complete */
            r->gone_counted = true;
            g->metrics.disconnects++;
        }
        gw_wake(g, r);
    }
}

static void *events_main(void *arg) {
    gw_t *g = arg;
    int64_t last_peek = gw_now_ms();
    while (!atomic_load(&g->quit)) {
        atomic_store(&g->events_tick_ms, gw_now_ms());
        hired_event ev;
        int rc = hired_next_event(g->client, PEEK_EVERY_MS, &ev);
        pthread_mutex_lock(&g->mu);
        if (rc == HIRED_OK) {
            gw_req_t *r = map_find(g, ev.job_id);
            bool final = ev.type == HIRED_EVENT_DONE || ev.type == HIRED_EVENT_ERROR || ev.type == HIRED_EVENT_BUSY;
            if (r && inbox_push(r, &ev)) {
                if (final) gw_map_del(g, r); /* exactly one final per job (hired_client.h) */
                gw_wake(g, r);
            } else if (r && final) { /* out of memory: the request still learns its job ended */
                gw_map_del(g, r);
                r->client_gone = true;
                gw_wake(g, r);
            }
            hired_event_clear(&ev); /* events of requests already gone (cancelled jobs) */
        }
        int64_t now = gw_now_ms();
        if (now - last_peek >= PEEK_EVERY_MS) {
            peek_waiting(g);
            last_peek = now;
        }
        pthread_mutex_unlock(&g->mu);
    }
    return NULL;
}

// ---- status thread ---------------------------------------------------------------------------

void gw_want_status(gw_t *g, gw_req_t *r) {
    r->status_need = g->status_started + 1;
    g->status_want = true;
    pthread_cond_signal(&g->status_cv);
}

static void *status_main(void *arg) {
    gw_t *g = arg;
    pthread_mutex_lock(&g->mu);
    while (!atomic_load(&g->quit)) {
        if (!g->status_want) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            int64_t ns = until.tv_nsec + (g->cfg->status_interval_ms % 1000) * 1000000;
            until.tv_sec += g->cfg->status_interval_ms / 1000 + ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
            pthread_cond_timedwait(&g->status_cv, &g->mu, &until);
            if (atomic_load(&g->quit)) break;
        }
        uint64_t seq = ++g->status_started;
        g->status_want = false;
        pthread_mutex_unlock(&g->mu);

        char *json = NULL;
        int rc = hired_status(g->client, &json);
        cJSON *st = rc == HIRED_OK ? cJSON_Parse(json) : NULL;
        if (rc == HIRED_OK && !st) log_warn("hired-gateway: the broker's STATUS is not JSON");
        free(json);

        pthread_mutex_lock(&g->mu);
        if (!st && g->status) log_warn("hired-gateway: the broker at %s does not answer STATUS", g->cfg->endpoint);
        if (st && !g->status) log_info("hired-gateway: the broker at %s answers STATUS", g->cfg->endpoint);
        cJSON_Delete(g->status);
        g->status = st;
        g->status_done = seq;
        for (gw_req_t *r = g->reqs; r; r = r->next)
            if (r->phase == GW_PH_STATUS && r->status_need <= seq) gw_wake(g, r);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

// ---- fetch threads ---------------------------------------------------------------------------

bool gw_want_fetch(gw_t *g, gw_req_t *r, const char *url) {
    gw_fetch_item_t *it = calloc(1, sizeof *it);
    if (!it || !(it->url = strdup(url))) {
        free(it);
        return false;
    }
    it->serial = r->serial;
    if (g->fetch_tail) g->fetch_tail->next = it;
    else g->fetch_head = it;
    g->fetch_tail = it;
    pthread_cond_signal(&g->fetch_cv);
    return true;
}

static void *fetch_main(void *arg) {
    gw_t *g = arg;
    const gw_cfg_t *c = g->cfg;
    pthread_mutex_lock(&g->mu);
    while (!atomic_load(&g->quit)) {
        gw_fetch_item_t *it = g->fetch_head;
        if (!it) {
            pthread_cond_wait(&g->fetch_cv, &g->mu);
            continue;
        }
        g->fetch_head = it->next;
        if (!g->fetch_head) g->fetch_tail = NULL;
        pthread_mutex_unlock(&g->mu);

        uint8_t *img = NULL;
        size_t n = 0;
        char err[HIRED_ERR_LEN] = "";
        int rc = gw_fetch(it->url, (size_t)c->max_image_bytes, (int)c->fetch_timeout_ms, &img, &n, err);

        pthread_mutex_lock(&g->mu);
        gw_req_t *r = g->reqs;
        while (r && r->serial != it->serial) r = r->next;
        if (r && r->phase == GW_PH_FETCH) {
            r->fetch_done = true;
            r->fetch_rc = rc;
            snprintf(r->fetch_err, sizeof r->fetch_err, "%s", err);
            r->fetched = img, r->fetched_len = n;
            img = NULL;
            gw_wake(g, r);
        }
        free(img); /* the request went away meanwhile */
        free(it->url);
        free(it);
    }
    pthread_mutex_unlock(&g->mu);
    return NULL;
}

// ---- start / stop ----------------------------------------------------------------------------

int gw_backend_start(gw_t *g, char *err) {
    const gw_cfg_t *c = g->cfg;
    hired_client_opts o = {
        .timeout_ms = (int)c->status_timeout_ms, /* hired_status's wait; every job sets its own deadline */
        .heartbeat_ms = (int)c->heartbeat_ms,
        .liveness = (int)c->liveness,
        .connect_timeout_ms = (int)c->connect_timeout_ms,
        .curve_server_key = c->curve_server_key,
        .curve_client_cert = c->curve_cert,
    };
    g->client = hired_client_open(c->endpoint, &o, err);
    if (!g->client) return HIRED_EINVAL;
    atomic_store(&g->quit, false);
    bool ok = pthread_create(&g->th_events, NULL, events_main, g) == 0;
    if (ok && pthread_create(&g->th_status, NULL, status_main, g) != 0) {
        atomic_store(&g->quit, true);
        pthread_join(g->th_events, NULL);
        ok = false;
    }
    if (!ok) {
        hired_client_destroy(&g->client);
        return hired_errf(err, HIRED_EIO, "cannot start the gateway's threads");
    }
    g->threads_started = true;
    for (g->n_fetch = 0; c->fetch && g->n_fetch < c->fetch_threads; g->n_fetch++)
        if (pthread_create(&g->th_fetch[g->n_fetch], NULL, fetch_main, g) != 0) break;
    return HIRED_OK;
}

void gw_backend_stop(gw_t *g) {
    if (g->threads_started) {
        pthread_mutex_lock(&g->mu);
        atomic_store(&g->quit, true);
        pthread_cond_broadcast(&g->status_cv);
        pthread_cond_broadcast(&g->fetch_cv);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->th_events, NULL);
        pthread_join(g->th_status, NULL);
        for (int i = 0; i < g->n_fetch; i++) pthread_join(g->th_fetch[i], NULL);
        g->threads_started = false;
    }
    while (g->fetch_head) {
        gw_fetch_item_t *it = g->fetch_head;
        g->fetch_head = it->next;
        free(it->url);
        free(it);
    }
    g->fetch_tail = NULL;
    cJSON_Delete(g->status);
    g->status = NULL;
    hired_client_destroy(&g->client);
}
