/* gw.h — the hired-gateway process: its configuration, its shared state and the threads that
 * touch it. One process holds ONE libhired client, shared by every HTTP request.
 *
 * Threads (each owns what it is listed with; everything shared is under gw_t.mu):
 *   main       configuration, signals, sd_notify READY / WATCHDOG / STOPPING, shutdown (main.c).
 *   http       libmicrohttpd's internal polling thread: every HTTP callback, all request logic
 *              (parsing, submitting, stop strings, SSE, responses), the metrics (http.c).
 *   events     hired_next_event -> the request that owns the job id (job map) -> its inbox,
 *              and resumes that request's connection; every 100 ms it also peeks at the
 *              sockets of waiting requests and cancels the job of a client that went away
 *              (backend.c).
 *   status     hired_status every broker.status_interval_ms, and at once when a request waits
 *              for a fresh STATUS (/health, /metrics, /v1/models, a model not seen yet);
 *              replaces gw_t.status and resumes those requests (backend.c).
 *   fetch      images.fetch_threads threads downloading http(s) image URLs (only when
 *              images.fetch is on; backend.c, fetch.c).
 * A request waiting for anything is a *suspended* MHD connection; only the http thread
 * suspends, and the others resume through gw_wake (under mu), so a wake-up is never lost.
 * Lock order: gw_t.mu, then libhired's own (hired_cancel / hired_submit may be called under mu;
 * nothing calls into this file's state while holding a libhired lock).
 * Not here: parsing (chat.h), answers (openai.h), STATUS reading (status.h), counters
 * (metrics.h). */
#ifndef HIRED_GW_H
#define HIRED_GW_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <cjson/cJSON.h>

#include "cfg.h"
#include "chat.h"
#include "hired_client.h"
#include "metrics.h"
#include "openai.h"

#define GW_MAP_BUCKETS 1024 /* job id hash table of in-flight requests */
#define GW_MAX_FETCH_THREADS 16

// ---- configuration (main.c's table documents every key) --------------------------------------

typedef struct gw_cfg {
    char *listen;                 /* http.listen */
    int64_t port;                 /* http.port; 0 = ephemeral */
    char *ports_file;             /* http.ports_file */
    int64_t max_body_bytes;       /* http.max_body_bytes */
    int64_t max_connections;      /* http.max_connections */
    int64_t idle_timeout_s;       /* http.idle_timeout_s */
    char *api_keys_file;          /* http.api_keys_file */
    char *endpoint;               /* broker.endpoint */
    int64_t heartbeat_ms, liveness, connect_timeout_ms, status_timeout_ms, status_interval_ms;
    char *curve_server_key, *curve_cert;
    cfg_strlist_t models;         /* gateway.models */
    int64_t default_max_tokens;   /* gateway.default_max_tokens */
    int64_t deadline_ms, max_deadline_ms, drain_ms;
    bool fetch;                   /* images.fetch */
    int64_t fetch_timeout_ms, fetch_threads;
    int64_t max_image_bytes;      /* images.max_bytes: data: URIs and fetched images alike */
    int log_level;
} gw_cfg_t;

// ---- requests --------------------------------------------------------------------------------

typedef enum {
    GW_PH_BODY = 0, /* reading the request body */
    GW_PH_STATUS,   /* waiting for a fresh STATUS (GET endpoints, or a chat's model check) */
    GW_PH_FETCH,    /* waiting for an http(s) image */
    GW_PH_JOB,      /* job submitted, no response queued yet */
    GW_PH_STREAM,   /* SSE response queued; the content reader runs */
    GW_PH_DONE      /* a whole response queued */
} gw_phase_t;

typedef struct gw_req gw_req_t;
struct gw_req {
    struct gw *gw;
    struct MHD_Connection *conn;
    int fd;                     /* the connection's socket (peeked by the events thread) */
    gw_endpoint_t ep;
    char path_model[GW_MAX_MODEL + 1]; /* GET /v1/models/{id} */
    uint64_t serial;            /* identifies the request to the fetch threads */
    gw_req_t *prev, *next;      /* gw_t.reqs */
    gw_req_t *hnext;            /* gw_t.map chain, while in the map */
    bool in_map;
    int64_t t0_ms;              /* arrival (monotonic) */

    /* shared with the other threads (under mu) */
    gw_phase_t phase;
    bool suspended;             /* MHD_suspend_connection called, not resumed yet */
    bool client_gone;           /* the events thread saw the socket closed */
    bool gone_counted;          /* ... before the answer ended: counted in metrics.disconnects */
    uint64_t status_need;       /* wake once gw_t.status_done reaches this */
    hired_event *inbox;         /* [n_in] events of this request's job, in order */
    int n_in, cap_in;
    bool fetch_done;            /* fetch result below is set */
    int fetch_rc;
    char fetch_err[HIRED_ERR_LEN];
    uint8_t *fetched;           /* the image being fetched (malloc'd), moved into fetched_img */
    size_t fetched_len;
    int fetch_at;               /* the image (chat.images index) being fetched */
    uint8_t *fetched_img[GW_MAX_IMAGES]; /* fetched http(s) images by chat.images index (free()) */
    size_t fetched_img_len[GW_MAX_IMAGES];

    /* http thread only */
    char *body;
    size_t body_len, body_cap;
    bool too_large;
    gw_chat_t chat;
    char job_id[HIRED_JOB_ID_LEN];
    char resp_id[96];           /* "chatcmpl-<job id>" */
    int64_t created;            /* unix seconds */
    bool submitted, accepted, job_ended; /* job_ended: its final event arrived (or it was cut) */
    bool final;                 /* the answer is complete (finish set) or failed (has_err) */
    bool has_err;
    gw_error_t err;
    uint32_t retry_ms;          /* BUSY's hint */
    char finish[16];
    char *text;                 /* all token text so far (cut at a stop string) */
    size_t text_len, text_cap;
    size_t sent;                /* text handed to the client (SSE) */
    uint32_t tokens;
    bool first_token_seen;
    gw_usage_t usage;
    bool stream_started, role_sent, tail_queued;
    char *out;                  /* SSE bytes not yet taken by MHD: out[out_off..out_len) */
    size_t out_len, out_off, out_cap;
    int code;                   /* HTTP status queued; 499 = the client left first */
    bool in_flight;             /* counted in metrics.in_flight */
};

// ---- the process -----------------------------------------------------------------------------

typedef struct gw_fetch_item {
    uint64_t serial;
    char *url;
    struct gw_fetch_item *next;
} gw_fetch_item_t;

typedef struct gw {
    const gw_cfg_t *cfg;
    hired_client *client;
    struct MHD_Daemon *mhd;
    int port;                   /* bound HTTP port */
    int listen_fd;              /* the listening socket after gw_http_quiesce (closed at stop) */
    atomic_llong events_tick_ms; /* when the events thread last went round (the watchdog's sign of life) */
    int64_t started_unix;

    pthread_mutex_t mu;
    gw_req_t *reqs;             /* every live request */
    gw_req_t *map[GW_MAP_BUCKETS]; /* requests by job id, until their job's final event */
    uint64_t next_serial;
    bool stopping;              /* shutting down: nothing suspends any more */
    cJSON *status;              /* the last STATUS, NULL when the broker did not answer */
    uint64_t status_started, status_done; /* fetches begun / finished */
    bool status_want;
    pthread_cond_t status_cv;
    gw_fetch_item_t *fetch_head, *fetch_tail;
    pthread_cond_t fetch_cv;

    atomic_bool quit;           /* the helper threads end */
    pthread_t th_events, th_status, th_fetch[GW_MAX_FETCH_THREADS];
    int n_fetch;
    bool threads_started;

    /* http thread only */
    gw_metrics_t metrics;
    char **keys;                /* [n_keys] API keys (http.api_keys_file) */
    int n_keys;
} gw_t;

/* Monotonic milliseconds. */
int64_t gw_now_ms(void);

// backend.c
/* Opens the libhired client (broker.* and curve.* of cfg) and starts the events, status and
 * fetch threads. 0, or HIRED_E* with err (nothing left running). */
int gw_backend_start(gw_t *g, char *err);
/* Stops the helper threads and destroys the client (its BYE cancels what is left). */
void gw_backend_stop(gw_t *g);
/* Under mu: resumes r's connection if it is suspended. */
void gw_wake(gw_t *g, gw_req_t *r);
/* Under mu: r waits for a STATUS fetched after now (sets r->status_need, nudges the thread). */
void gw_want_status(gw_t *g, gw_req_t *r);
/* Under mu: queues r's image URL for the fetch threads. false when out of memory. */
bool gw_want_fetch(gw_t *g, gw_req_t *r, const char *url);
/* Under mu: the job map. */
void gw_map_add(gw_t *g, gw_req_t *r);
void gw_map_del(gw_t *g, gw_req_t *r);

// http.c
/* Starts the HTTP server on cfg's http.listen / http.port (g->port receives the bound port).
 * 0, or HIRED_EIO (cannot bind: a run-time failure) / HIRED_EINVAL (a bad address) with err. */
int gw_http_start(gw_t *g, char *err);
/* Resolves an http.listen address ("" = every interface) and port. 0 or HIRED_EINVAL with err. */
int gw_http_resolve(const char *listen, int port, struct sockaddr_storage *ss, socklen_t *len, char *err);
/* Stops accepting connections; in-flight requests go on. */
void gw_http_quiesce(gw_t *g);
/* Chat completions still being served. */
int gw_http_active(gw_t *g);
/* Ends every request (suspended ones are resumed and answered 503 / cut off) and stops the
 * server. */
void gw_http_stop(gw_t *g);

#endif
