/* metrics.c — see metrics.h. Histograms keep per-bucket counts and render them cumulatively,
 * as the text format wants (le="..." counts every observation at or below the bound). */
#include "metrics.h"

#include <string.h>

#include "err.h"
#include "status.h"

static const double k_bounds[GW_HIST_BUCKETS - 1] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                                                      1,     2.5,  5,     10,   30,  60,   120};
static const char *const k_stage[HIRED_STAGE_COUNT] = {"queue",   "preprocess", "vit",    "select", "transfer",
                                                       "project", "prefill",    "decode", "total"};
static const char *const k_ep[GW_EP_COUNT] = {"chat_completions", "models", "health", "metrics", "other"};

void gw_metrics_init(gw_metrics_t *m) { memset(m, 0, sizeof *m); }

void gw_metrics_request(gw_metrics_t *m, gw_endpoint_t ep, int code) {
    if ((int)ep < 0 || ep >= GW_EP_COUNT) ep = GW_EP_OTHER;
    int i = 0;
    while (i < m->requests[ep].used && m->requests[ep].code[i] != code) i++;
    if (i == m->requests[ep].used) {
        if (i == GW_CODES) {
            i = GW_CODES - 1; /* full: the last slot collects the rest */
        } else {
            m->requests[ep].code[i] = code;
            m->requests[ep].used++;
        }
    }
    m->requests[ep].n[i]++;
}

void gw_hist_add(gw_hist_t *h, double s) {
    if (s < 0) s = 0;
    int b = 0;
    while (b < GW_HIST_BUCKETS - 1 && s > k_bounds[b]) b++;
    h->counts[b]++;
    h->n++;
    h->sum += s;
}

void gw_metrics_done(gw_metrics_t *m, const hired_event *ev) {
    m->jobs_done++;
    m->prompt_tokens += ev->prompt_tokens;
    m->visual_kept += ev->visual_kept;
    m->visual_total += ev->visual_total;
    m->result_bytes += ev->result_bytes;
    for (int s = 0; s < HIRED_STAGE_COUNT; s++)
        if (ev->timings_ms[s] >= 0) gw_hist_add(&m->stage[s], ev->timings_ms[s] / 1000.0);
}

#define P(...)                                                       \
    do {                                                             \
        if (!gw_buf_printf(out, len, cap, __VA_ARGS__)) return false; \
    } while (0)

/* The samples of one histogram; labels is "" or `name="value",`. */
static bool hist(const gw_hist_t *h, const char *name, const char *labels, char **out, size_t *len, size_t *cap) {
    uint64_t cum = 0;
    for (int b = 0; b < GW_HIST_BUCKETS; b++) {
        cum += h->counts[b];
        if (b < GW_HIST_BUCKETS - 1) P("%s_bucket{%sle=\"%g\"} %llu\n", name, labels, k_bounds[b], (unsigned long long)cum);
        else P("%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    }
    char l[128] = "";
    if (labels[0]) {
        snprintf(l, sizeof l, "{%s", labels);
        l[strlen(l) - 1] = '}'; /* the trailing comma */
    }
    P("%s_sum%s %.6f\n%s_count%s %llu\n", name, l, h->sum, name, l, (unsigned long long)h->n);
    return true;
}

static bool counter(const char *name, const char *help, uint64_t v, char **out, size_t *len, size_t *cap) {
    P("# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)v);
    return true;
}

bool gw_metrics_prometheus(const gw_metrics_t *m, char **out, size_t *len, size_t *cap) {
    P("# HELP hired_gateway_requests_total HTTP requests answered, by endpoint and status code\n"
      "# TYPE hired_gateway_requests_total counter\n");
    for (int e = 0; e < GW_EP_COUNT; e++)
        for (int i = 0; i < m->requests[e].used; i++)
            P("hired_gateway_requests_total{endpoint=\"%s\",code=\"%d\"} %llu\n", k_ep[e], m->requests[e].code[i],
              (unsigned long long)m->requests[e].n[i]);
    P("# HELP hired_gateway_request_duration_seconds chat completion requests, arrival to the end of the answer\n"
      "# TYPE hired_gateway_request_duration_seconds histogram\n");
    if (!hist(&m->latency, "hired_gateway_request_duration_seconds", "", out, len, cap)) return false;
    P("# HELP hired_gateway_time_to_first_token_seconds chat completion requests, arrival to the first token\n"
      "# TYPE hired_gateway_time_to_first_token_seconds histogram\n");
    if (!hist(&m->ttft, "hired_gateway_time_to_first_token_seconds", "", out, len, cap)) return false;
    P("# HELP hired_gateway_stage_duration_seconds per-stage job times reported in DONE, jobs of this gateway\n"
      "# TYPE hired_gateway_stage_duration_seconds histogram\n");
    for (int s = 0; s < HIRED_STAGE_COUNT; s++) {
        char l[48];
        snprintf(l, sizeof l, "stage=\"%s\",", k_stage[s]);
        if (!hist(&m->stage[s], "hired_gateway_stage_duration_seconds", l, out, len, cap)) return false;
    }
    P("# HELP hired_gateway_requests_in_flight chat completion requests being served\n"
      "# TYPE hired_gateway_requests_in_flight gauge\nhired_gateway_requests_in_flight %llu\n",
      (unsigned long long)m->in_flight);
    return counter("hired_gateway_tokens_streamed_total", "completion tokens received for this gateway's clients",
                   m->tokens_streamed, out, len, cap) &&
           counter("hired_gateway_prompt_tokens_total", "prompt tokens (text and image) of finished jobs",
                   m->prompt_tokens, out, len, cap) &&
           counter("hired_gateway_visual_tokens_kept_total", "visual tokens the encoders kept, finished jobs",
                   m->visual_kept, out, len, cap) &&
           counter("hired_gateway_visual_tokens_input_total", "visual tokens before selection, finished jobs",
                   m->visual_total, out, len, cap) &&
           counter("hired_gateway_result_bytes_total", "encoder RESULT bytes on the wire (header + tensor), finished jobs",
                   m->result_bytes, out, len, cap) &&
           counter("hired_gateway_jobs_completed_total", "jobs that ended with DONE", m->jobs_done, out, len, cap) &&
           counter("hired_gateway_jobs_failed_total", "jobs that ended with ERROR (cancellations by the gateway "
                   "excluded)", m->jobs_failed, out, len, cap) &&
           counter("hired_gateway_busy_total", "submissions the broker answered BUSY (HTTP 429)", m->busy, out, len,
                   cap) &&
           counter("hired_gateway_client_disconnects_total", "requests whose client went away before the answer ended "
                   "(their jobs were cancelled)", m->disconnects, out, len, cap) &&
           counter("hired_gateway_stop_sequences_total", "answers cut at a stop sequence (their jobs were cancelled)",
                   m->stop_cuts, out, len, cap) &&
           counter("hired_gateway_images_fetched_total", "http(s) images fetched", m->images_fetched, out, len, cap) &&
           counter("hired_gateway_image_fetch_failures_total", "http(s) image fetches that failed",
                   m->image_fetch_failures, out, len, cap);
}
