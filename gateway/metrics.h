/* metrics.h — the gateway's own figures for GET /metrics (Prometheus text format 0.0.4): HTTP
 * requests by endpoint and status code, a request latency histogram, time to first token,
 * tokens streamed, and what the finished jobs reported (visual tokens kept and before
 * selection, encoder RESULT bytes on the wire, per-stage latency histograms from DONE timings).
 * Single-threaded by contract: only the HTTP thread records and renders (http.c), so nothing
 * here locks. The broker's figures come from its STATUS (status.h) and are appended after these.
 * Not here: the broker's half (status.h), HTTP (http.c). */
#ifndef HIRED_GW_METRICS_H
#define HIRED_GW_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hired_client.h"

/* Endpoints counted apart. */
typedef enum {
    GW_EP_CHAT = 0, /* POST /v1/chat/completions */
    GW_EP_MODELS,   /* GET /v1/models, /v1/models/{id} */
    GW_EP_HEALTH,   /* GET /health */
    GW_EP_METRICS,  /* GET /metrics */
    GW_EP_OTHER,    /* anything else (404, 405) */
    GW_EP_COUNT
} gw_endpoint_t;

#define GW_HIST_BUCKETS 15 /* upper bounds in seconds, +Inf last (metrics.c) */

typedef struct gw_hist {
    uint64_t counts[GW_HIST_BUCKETS]; /* per bucket, not cumulative */
    uint64_t n;
    double sum;
} gw_hist_t;

#define GW_CODES 16 /* distinct status codes tracked per endpoint */

typedef struct gw_metrics {
    struct {
        int code[GW_CODES];
        uint64_t n[GW_CODES];
        int used;
    } requests[GW_EP_COUNT];
    gw_hist_t latency;          /* chat completions, arrival to the last byte queued */
    gw_hist_t ttft;             /* chat completions, arrival to the first token */
    gw_hist_t stage[HIRED_STAGE_COUNT]; /* DONE timings of jobs that went through this gateway */
    uint64_t in_flight;         /* chat completions being served */
    uint64_t tokens_streamed, prompt_tokens;
    uint64_t visual_kept, visual_total, result_bytes;
    uint64_t busy, disconnects, stop_cuts, jobs_done, jobs_failed;
    uint64_t images_fetched, image_fetch_failures;
} gw_metrics_t;

/* Zeroes m. */
void gw_metrics_init(gw_metrics_t *m);
/* One HTTP request answered with `code` (the 17th distinct code of an endpoint is counted as 0). */
void gw_metrics_request(gw_metrics_t *m, gw_endpoint_t ep, int code);
/* Adds seconds to h. */
void gw_hist_add(gw_hist_t *h, double seconds);
/* A DONE event's usage and stage timings. */
void gw_metrics_done(gw_metrics_t *m, const hired_event *ev);

/* Appends the gateway's metrics to the growable buffer (status.h gw_buf_printf). false when
 * out of memory. */
bool gw_metrics_prometheus(const gw_metrics_t *m, char **out, size_t *len, size_t *cap);

#endif
