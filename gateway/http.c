/* http.c — the gateway's HTTP/1.1 server, on libmicrohttpd (MHD), and all request logic:
 *
 *   POST /v1/chat/completions   body -> gw_chat_parse -> (http(s) image fetched) -> the model
 *                               checked against STATUS -> hired_submit -> the job's events ->
 *                               one JSON answer, or server-sent events (chat.completion.chunk
 *                               ... data: [DONE])
 *   GET  /v1/models[/{id}]      the broker's pools (a fresh STATUS)
 *   GET  /health                200 {"status":"ok"} when the broker answers and every model that
 *                               matters has an encode and a decode worker; else 503 with why
 *   GET  /metrics               Prometheus text format 0.0.4 (metrics.h, then status.h)
 *
 * Why libmicrohttpd and not libevent's evhttp (already a test dependency): MHD hands the request
 * headers to the application before it reads the body, so a body over http.max_body_bytes is
 * refused with an OpenAI error object (413) before a byte of it is read or buffered, and a
 * chunked body is counted as it arrives; evhttp 2.1 buffers the body itself and answers its own
 * HTML 413 page with no hook to change it. MHD's suspend / resume lets a request wait for the
 * broker without a thread of its own, which is the whole design of the gateway (gw.h); it is a
 * Debian-packaged GNU library with a long record.
 *
 * A request's life (phases in gw.h): the access handler runs on MHD's thread at the headers, for
 * each piece of body, and once more each time the request is resumed after it suspended itself;
 * every wait ends in gw_wake from another thread. Headers for a streamed answer are sent only
 * when the first token (or the end) arrives, so everything that goes wrong before — BUSY (429),
 * an unknown model (404), a worker refusing the image (400), a deadline (504), no broker (503) —
 * is an HTTP status; after that an error is an SSE event `data: {"error": ...}` then
 * `data: [DONE]`. A client whose connection closes before the end has its job cancelled at once
 * (hired_cancel), whether MHD notices it (a failed write) or the events thread (a peek at a
 * waiting request's socket).
 * Not here: parsing (chat.h), JSON answers (openai.h), threads and the broker (backend.c). */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "err.h"
#include "gw.h"
#include "log.h"
#include "mem.h"
#include "status.h"

#define JSON_TYPE "application/json"
#define PROM_TYPE "text/plain; version=0.0.4; charset=utf-8"

// ---- responses -------------------------------------------------------------------------------

/* Queues body (owned; freed by MHD) with `code`; extra headers as NULL-terminated name, value
 * pairs. Only from the access handler. */
static enum MHD_Result respond(gw_req_t *r, int code, const char *ctype, char *body, const char *const *hdrs) {
    if (!body) {
        static const char oom[] = "{\"error\":{\"message\":\"out of memory\",\"type\":\"server_error\",\"param\":null,"
                                  "\"code\":null}}";
        code = 500;
        body = strdup(oom);
        if (!body) return MHD_NO;
    }
    struct MHD_Response *resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (int i = 0; hdrs && hdrs[i]; i += 2) MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
    enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)code, resp);
    MHD_destroy_response(resp);
    r->code = code;
    r->phase = GW_PH_DONE;
    return ret;
}

static enum MHD_Result respond_error(gw_req_t *r, const gw_error_t *e) {
    char retry_s[32], retry_ms[32];
    const char *hdrs[7] = {NULL};
    int h = 0;
    if (e->http == 429) {
        uint32_t ms = r->retry_ms ? r->retry_ms : 1000;
        snprintf(retry_s, sizeof retry_s, "%u", (ms + 999) / 1000);
        snprintf(retry_ms, sizeof retry_ms, "%u", ms);
        hdrs[h++] = "Retry-After", hdrs[h++] = retry_s, hdrs[h++] = "retry-after-ms", hdrs[h++] = retry_ms;
    } else if (e->http == 401) {
        hdrs[h++] = "WWW-Authenticate", hdrs[h++] = "Bearer";
    }
    return respond(r, e->http, JSON_TYPE, gw_error_json(e), hdrs);
}

static enum MHD_Result fail(gw_req_t *r, int http, const char *type, const char *code, const char *param, const char *fmt,
                            ...) __attribute__((format(printf, 6, 7)));
static enum MHD_Result fail(gw_req_t *r, int http, const char *type, const char *code, const char *param, const char *fmt,
                            ...) {
    gw_error_t e;
    e.http = http, e.type = type, e.code = code;
    snprintf(e.param, sizeof e.param, "%s", param ? param : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e.message, sizeof e.message, fmt, ap);
    va_end(ap);
    return respond_error(r, &e);
}

/* Under mu: suspends r until gw_wake. Only from MHD callbacks. Once the gateway is stopping
 * nothing suspends any more (MHD must not be stopped with suspended connections): false then,
 * and the caller answers instead. */
static bool suspend(gw_req_t *r) {
    if (r->gw->stopping) return false;
    r->suspended = true;
    MHD_suspend_connection(r->conn);
    return true;
}

static enum MHD_Result shutting_down(gw_req_t *r) {
    return fail(r, 503, "server_error", "shutting_down", NULL, "the gateway is shutting down; retry elsewhere");
}

// ---- the job's events -> the answer ----------------------------------------------------------

static bool text_add(gw_req_t *r, const char *s, size_t n) {
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 1024;
        while (cap < r->text_len + n + 1) cap *= 2;
        char *p = realloc(r->text, cap);
        if (!p) return false;
        r->text = p, r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, s, n);
    r->text_len += n;
    r->text[r->text_len] = 0;
    return true;
}

/* Under mu: an ERROR event's code as an HTTP status. */
static void error_from_event(gw_req_t *r, const hired_event *ev) {
    gw_error_t *e = &r->err;
    switch (ev->code) {
    case HIRED_ETIMEOUT:
        if (r->accepted)
            gw_error_set(e, 504, "timeout_error", "deadline_exceeded", NULL, "the job did not finish in time: %s", ev->message);
        else
            gw_error_set(e, 503, "server_error", "broker_unreachable", NULL, "the broker did not answer: %s", ev->message);
        break;
    case HIRED_ENOTFOUND:
        gw_error_set(e, 404, "invalid_request_error", "model_not_found", "model", "%s", ev->message);
        break;
    case HIRED_EINVAL: case HIRED_EFORMAT: case HIRED_ERANGE: case HIRED_EUNSUPPORTED: case HIRED_ESHAPE:
        gw_error_set(e, 400, "invalid_request_error", "invalid_input", NULL, "%s", ev->message);
        break;
    case HIRED_EBUSY:
        gw_error_set(e, 429, "rate_limit_error", "server_busy", NULL, "%s", ev->message);
        break;
    case HIRED_EIO:
        gw_error_set(e, 502, "server_error", "workers_failed", NULL, "%s", ev->message);
        break;
    default:
        gw_error_set(e, 500, "server_error", NULL, NULL, "%s (%s)", ev->message, hired_strerror(ev->code));
    }
}

/* Under mu: the job is over from this request's point of view (its answer is cut or done);
 * a job still running is cancelled, so its workers are freed. */
static void end_job(gw_t *g, gw_req_t *r) {
    if (r->submitted && !r->job_ended) hired_cancel(g->client, r->job_id);
    r->job_ended = true;
    gw_map_del(g, r);
}

/* Under mu: takes every event out of the inbox into the answer's state. */
static void advance(gw_t *g, gw_req_t *r) {
    for (int i = 0; i < r->n_in; i++) {
        hired_event *ev = &r->inbox[i];
        switch (ev->type) {
        case HIRED_EVENT_ACCEPTED:
            r->accepted = true;
            break;
        case HIRED_EVENT_TOKEN:
            if (r->final) break;
            if (!r->first_token_seen) {
                r->first_token_seen = true;
                gw_hist_add(&g->metrics.ttft, (double)(gw_now_ms() - r->t0_ms) / 1000.0);
            }
            r->tokens++;
            g->metrics.tokens_streamed++;
            if (!text_add(r, ev->text ? ev->text : "", ev->text ? strlen(ev->text) : 0)) {
                gw_error_set(&r->err, 500, "server_error", NULL, NULL, "out of memory");
                r->has_err = r->final = true;
                end_job(g, r);
                break;
            }
            size_t cut, safe;
            if (r->chat.n_stop && gw_stop_scan(r->text, r->text_len, r->sent, r->chat.stop, r->chat.n_stop, &cut, &safe)) {
                r->text_len = cut;
                r->text[cut] = 0;
                snprintf(r->finish, sizeof r->finish, "stop");
                r->usage.completion_tokens = r->tokens;
                r->final = true;
                g->metrics.stop_cuts++;
                end_job(g, r);
            }
            break;
        case HIRED_EVENT_DONE:
            r->job_ended = true;
            gw_metrics_done(&g->metrics, ev);
            if (r->final) break;
            gw_usage_from_event(&r->usage, ev);
            snprintf(r->finish, sizeof r->finish, "%s", !strcmp(ev->finish, "length") ? "length" : "stop");
            if (r->tokens == 0 && ev->text && *ev->text) text_add(r, ev->text, strlen(ev->text)); /* not streamed */
            r->final = true;
            break;
        case HIRED_EVENT_ERROR:
        case HIRED_EVENT_BUSY:
            r->job_ended = true;
            if (r->final) break; /* e.g. "cancelled" after a stop string */
            if (ev->type == HIRED_EVENT_BUSY) {
                r->retry_ms = ev->retry_ms;
                g->metrics.busy++;
                gw_error_set(&r->err, 429, "rate_limit_error", "server_busy", NULL,
                             "the server is busy (%s); retry later", ev->message[0] ? ev->message : "queue full");
            } else {
                g->metrics.jobs_failed++;
                error_from_event(r, ev);
            }
            r->has_err = r->final = true;
            break;
        }
        hired_event_clear(ev);
    }
    r->n_in = 0;
    if (r->final) r->usage.gateway_ms = (double)(gw_now_ms() - r->t0_ms);
}

static bool out_add(gw_req_t *r, const char *s, size_t n) {
    if (r->out_off == r->out_len) r->out_off = r->out_len = 0;
    if (r->out_len + n > r->out_cap) {
        size_t cap = r->out_cap ? r->out_cap : 4096;
        while (cap < r->out_len + n) cap *= 2;
        char *p = realloc(r->out, cap);
        if (!p) return false;
        r->out = p, r->out_cap = cap;
    }
    memcpy(r->out + r->out_len, s, n);
    r->out_len += n;
    return true;
}

/* One SSE event "data: <json>\n\n" (json owned). */
static bool sse(gw_req_t *r, char *json) {
    bool ok = json && out_add(r, "data: ", 6) && out_add(r, json, strlen(json)) && out_add(r, "\n\n", 2);
    free(json);
    return ok;
}

/* Under mu: appends the SSE bytes for what advance() produced. false when out of memory. */
static bool sse_fill(gw_req_t *r) {
    const char *model = r->chat.model;
    if (!r->role_sent) {
        r->role_sent = true;
        if (!sse(r, gw_chunk_json(r->resp_id, r->created, model, true, "", 0, NULL, NULL))) return false;
    }
    size_t upto = r->text_len;
    if (!r->final) {
        size_t cut;
        if (r->chat.n_stop) gw_stop_scan(r->text, r->text_len, r->sent, r->chat.stop, r->chat.n_stop, &cut, &upto);
        upto = r->sent + gw_utf8_complete(r->text + r->sent, upto - r->sent);
    }
    if (upto > r->sent) {
        if (!sse(r, gw_chunk_json(r->resp_id, r->created, model, false, r->text + r->sent, upto - r->sent, NULL, NULL)))
            return false;
        r->sent = upto;
    }
    if (r->final && !r->tail_queued) {
        r->tail_queued = true;
        if (r->has_err) {
            if (!sse(r, gw_error_json(&r->err))) return false;
        } else {
            if (!sse(r, gw_chunk_json(r->resp_id, r->created, model, false, NULL, 0, r->finish, NULL))) return false;
            if (r->chat.include_usage && !sse(r, gw_chunk_json(r->resp_id, r->created, model, false, NULL, 0, NULL, &r->usage)))
                return false;
        }
        if (!out_add(r, "data: [DONE]\n\n", 14)) return false;
    }
    return true;
}

/* MHD's content reader of a streamed answer (MHD's thread). */
static ssize_t sse_read(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    gw_req_t *r = cls;
    gw_t *g = r->gw;
    pthread_mutex_lock(&g->mu);
    advance(g, r);
    ssize_t n;
    if (!sse_fill(r)) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else if (r->out_len > r->out_off) {
        size_t k = r->out_len - r->out_off < max ? r->out_len - r->out_off : max;
        memcpy(buf, r->out + r->out_off, k);
        r->out_off += k;
        n = (ssize_t)k;
    } else if (r->tail_queued) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else if (r->client_gone || !suspend(r)) {
        n = MHD_CONTENT_READER_END_WITH_ERROR;
    } else {
        n = 0; /* suspended: the events thread resumes it with the next event */
    }
    pthread_mutex_unlock(&g->mu);
    return n;
}

static enum MHD_Result start_stream(gw_req_t *r) {
    struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, sse_read, r, NULL);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    r->code = 200;
    r->phase = GW_PH_STREAM;
    r->stream_started = true;
    return ret;
}

/* Under mu, phase JOB: answers when there is something to answer, else suspends again. */
static enum MHD_Result job_step(gw_t *g, gw_req_t *r) {
    advance(g, r);
    if (r->client_gone) return MHD_NO;
    if (r->has_err) return respond_error(r, &r->err);
    if (r->chat.stream && (r->tokens > 0 || r->final)) return start_stream(r);
    if (!r->chat.stream && r->final) {
        size_t len = 0;
        char *clean = gw_utf8_clean(r->text ? r->text : "", r->text_len, &len);
        char *body = clean ? gw_completion_json(r->resp_id, r->created, r->chat.model, clean, len, r->finish, &r->usage) : NULL;
        free(clean);
        return respond(r, 200, JSON_TYPE, body, NULL);
    }
    return suspend(r) ? MHD_YES : shutting_down(r);
}

// ---- chat completions ------------------------------------------------------------------------

static void random_id(char *out, size_t hexlen) {
    uint8_t b[32];
    size_t n = hexlen / 2;
    if (getrandom(b, n, 0) != (ssize_t)n)
        for (size_t i = 0; i < n; i++) b[i] = (uint8_t)rand(); /* cannot happen on Linux >= 3.17 */
    for (size_t i = 0; i < n; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* Under mu: the model is known with workers: submit the job. */
static enum MHD_Result submit(gw_t *g, gw_req_t *r) {
    const gw_cfg_t *c = g->cfg;
    random_id(r->job_id, 32);
    snprintf(r->resp_id, sizeof r->resp_id, "chatcmpl-%s", r->job_id);
    r->created = (int64_t)time(NULL);
    hired_job job;
    hired_job_init(&job);
    job.id = r->job_id;
    job.model = r->chat.model;
    /* the conversation as it came, each image decoded from its data: URI or fetched */
    hired_message msgs[GW_MAX_MESSAGES];
    hired_image imgs[GW_MAX_IMAGES];
    size_t n_parts = 0;
    for (int i = 0; i < r->chat.n_messages; i++) n_parts += (size_t)r->chat.msgs[i].n_parts;
    hired_part *parts = mem_calloc(n_parts ? n_parts : 1, sizeof *parts); /* borrowed by hired_submit */
    if (!parts) return fail(r, 503, "server_error", NULL, NULL, "out of memory submitting the job");
    for (int i = 0, at = 0; i < r->chat.n_messages; i++) {
        const gw_msg_t *m = &r->chat.msgs[i];
        for (int k = 0; k < m->n_parts; k++) parts[at + k].text = m->parts[k].text;
        msgs[i] = (hired_message){m->role, parts + at, m->n_parts};
        at += m->n_parts;
    }
    for (int i = 0; i < r->chat.n_images; i++) {
        const gw_image_t *im = &r->chat.images[i];
        imgs[i] = im->bytes ? (hired_image){im->bytes, im->len} : (hired_image){r->fetched_img[i], r->fetched_img_len[i]};
    }
    job.messages = msgs, job.n_messages = r->chat.n_messages;
    job.images = imgs, job.n_images = r->chat.n_images;
    job.params = r->chat.params;
    job.deadline_ms = r->chat.deadline_ms ? r->chat.deadline_ms : (int)c->deadline_ms;
    gw_map_add(g, r); /* before submitting: its events may come at once */
    char err[HIRED_ERR_LEN];
    int rc = hired_submit_err(g->client, &job, NULL, err);
    mem_free(parts);
    if (rc) {
        gw_map_del(g, r);
        if (rc == HIRED_ENOMEM) return fail(r, 503, "server_error", NULL, NULL, "out of memory submitting the job");
        return fail(r, 400, "invalid_request_error", NULL, NULL, "the job was refused: %s (%s)", err, hired_strerror(rc));
    }
    r->submitted = true;
    r->phase = GW_PH_JOB;
    return job_step(g, r);
}

/* Under mu: checks the model against the last STATUS; waits for a fresh one once when it does
 * not show the model with workers. */
static enum MHD_Result check_model(gw_t *g, gw_req_t *r, bool fresh) {
    const gw_cfg_t *c = g->cfg;
    const char *m = r->chat.model;
    bool listed = c->models.n == 0;
    for (int i = 0; i < c->models.n; i++) listed = listed || !strcmp(c->models.items[i], m);
    if (!listed) return fail(r, 404, "invalid_request_error", "model_not_found", "model", "The model '%s' is not served here", m);
    int ne = 0, nd = 0;
    bool known = g->status && gw_status_model(g->status, m, &ne, &nd);
    const bool text_only = r->chat.n_images == 0; /* goes straight to a decoder */
    if (known && (ne > 0 || text_only) && nd > 0) return submit(g, r);
    if (!fresh) {
        r->phase = GW_PH_STATUS;
        gw_want_status(g, r);
        return suspend(r) ? MHD_YES : shutting_down(r);
    }
    if (!g->status)
        return fail(r, 503, "server_error", "broker_unreachable", NULL, "the broker at %s does not answer", c->endpoint);
    if (!known)
        return fail(r, 404, "invalid_request_error", "model_not_found", "model",
                    "The model '%s' does not exist: no worker of the broker serves it (GET /v1/models lists them)", m);
    return fail(r, 503, "server_error", "no_workers", "model",
                "model '%s' has %d usable encode and %d usable decode workers; it needs at least one of each (a "
                "text-only request: one decode worker)", m, ne, nd);
}

/* Under mu: fetches the next http(s) image after r->fetch_at (one at a time, in order), or goes
 * on to the model check when none is left. */
static enum MHD_Result fetch_next(gw_t *g, gw_req_t *r) {
    int i = r->fetch_at + 1;
    while (i < r->chat.n_images && !r->chat.images[i].url) i++;
    if (i >= r->chat.n_images) return check_model(g, r, false);
    r->fetch_at = i;
    r->fetch_done = false;
    r->phase = GW_PH_FETCH;
    if (g->stopping) return shutting_down(r);
    if (!gw_want_fetch(g, r, r->chat.images[i].url)) return fail(r, 503, "server_error", NULL, NULL, "out of memory");
    return suspend(r) ? MHD_YES : shutting_down(r);
}

/* The body is complete: parse it and go on. */
static enum MHD_Result start_chat(gw_t *g, gw_req_t *r) {
    const gw_cfg_t *c = g->cfg;
    gw_chat_limits_t lim = {.default_max_tokens = (int)c->default_max_tokens,
                            .max_image_bytes = (size_t)c->max_image_bytes,
                            .fetch_http = c->fetch,
                            .max_deadline_ms = (int)c->max_deadline_ms};
    gw_error_t e;
    if (gw_chat_parse(r->body ? r->body : "", r->body_len, &lim, &r->chat, &e)) return respond_error(r, &e);
    free(r->body);
    r->body = NULL;
    pthread_mutex_lock(&g->mu);
    r->fetch_at = -1;
    enum MHD_Result ret = fetch_next(g, r);
    pthread_mutex_unlock(&g->mu);
    return ret;
}

/* Under mu, phase FETCH woken: the image arrived (or did not). */
static enum MHD_Result fetch_step(gw_t *g, gw_req_t *r) {
    if (!r->fetch_done) return suspend(r) ? MHD_YES : shutting_down(r);
    const char *url = r->chat.images[r->fetch_at].url;
    if (r->fetch_rc) {
        g->metrics.image_fetch_failures++;
        return fail(r, 400, "invalid_request_error", "image_fetch_failed", "messages", "image_url %.200s: %s", url,
                    r->fetch_err);
    }
    g->metrics.images_fetched++;
    if ((int64_t)r->fetched_len > g->cfg->max_image_bytes)
        return fail(r, 400, "invalid_request_error", "image_too_large", "messages",
                    "image_url %.200s: %zu bytes, more than the limit of %lld", url, r->fetched_len,
                    (long long)g->cfg->max_image_bytes);
    if (!gw_image_kind(r->fetched, r->fetched_len))
        return fail(r, 400, "invalid_request_error", "invalid_image", "messages",
                    "image_url %.200s: the data (%zu bytes) is not a JPEG or PNG image", url, r->fetched_len);
    r->fetched_img[r->fetch_at] = r->fetched, r->fetched_img_len[r->fetch_at] = r->fetched_len;
    r->fetched = NULL, r->fetched_len = 0;
    return fetch_next(g, r);
}

// ---- GET endpoints ---------------------------------------------------------------------------

/* Under mu, a fresh STATUS is in g->status. */
static enum MHD_Result get_step(gw_t *g, gw_req_t *r) {
    const gw_cfg_t *c = g->cfg;
    if (r->ep == GW_EP_HEALTH) {
        char reason[600];
        bool ok = gw_status_health(g->status, &c->models, reason, sizeof reason);
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "status", ok ? "ok" : "unavailable");
        cJSON_AddStringToObject(o, "reason", reason);
        cJSON_AddStringToObject(o, "broker", c->endpoint);
        char *body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
        return respond(r, ok ? 200 : 503, JSON_TYPE, body, NULL);
    }
    if (r->ep == GW_EP_METRICS) {
        char *out = NULL;
        size_t len = 0, cap = 0;
        bool ok = gw_metrics_prometheus(&g->metrics, &out, &len, &cap) && gw_status_prometheus(g->status, &out, &len, &cap);
        if (!ok) {
            free(out);
            out = NULL;
        }
        return respond(r, 200, PROM_TYPE, out, NULL);
    }
    /* models */
    if (!g->status)
        return fail(r, 503, "server_error", "broker_unreachable", NULL, "the broker at %s does not answer", c->endpoint);
    if (r->path_model[0]) {
        char *body = gw_status_model_json(g->status, r->path_model, &c->models, g->started_unix);
        if (!body)
            return fail(r, 404, "invalid_request_error", "model_not_found", "model", "The model '%s' does not exist",
                        r->path_model);
        return respond(r, 200, JSON_TYPE, body, NULL);
    }
    return respond(r, 200, JSON_TYPE, gw_status_models_json(g->status, &c->models, g->started_unix), NULL);
}

// ---- routing, authentication, the access handler ---------------------------------------------

static bool key_ok(const gw_t *g, const char *auth) {
    if (g->n_keys == 0) return true;
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0) return false;
    const char *k = auth + 7;
    size_t kl = strlen(k);
    bool ok = false;
    for (int i = 0; i < g->n_keys; i++) { /* compare in time independent of where they differ */
        size_t l = strlen(g->keys[i]);
        unsigned char d = (unsigned char)(l != kl);
        for (size_t j = 0; j < l; j++) d |= (unsigned char)(g->keys[i][j] ^ (j < kl ? k[j] : 0));
        ok |= d == 0;
    }
    return ok;
}

/* The first call for a request: route it, check the key and the announced body size. */
static enum MHD_Result first_call(gw_t *g, gw_req_t *r, const char *url, const char *method) {
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD"), post = !strcmp(method, "POST");
    bool v1 = !strncmp(url, "/v1/", 4);
    if (!strcmp(url, "/v1/chat/completions")) r->ep = GW_EP_CHAT;
    else if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11)) r->ep = GW_EP_MODELS;
    else if (!strcmp(url, "/health")) r->ep = GW_EP_HEALTH;
    else if (!strcmp(url, "/metrics")) r->ep = GW_EP_METRICS;
    else
        return fail(r, 404, "invalid_request_error", "not_found", NULL,
                    "no such endpoint: %.100s (POST /v1/chat/completions, GET /v1/models, /health, /metrics)", url);
    if ((r->ep == GW_EP_CHAT && !post) || (r->ep != GW_EP_CHAT && !get)) {
        const char *allow[] = {"Allow", r->ep == GW_EP_CHAT ? "POST" : "GET, HEAD", NULL};
        gw_error_t e;
        gw_error_set(&e, 405, "invalid_request_error", "method_not_allowed", NULL, "%s is not allowed on %.100s", method, url);
        return respond(r, 405, JSON_TYPE, gw_error_json(&e), allow);
    }
    if (r->ep == GW_EP_MODELS && url[10] == '/') {
        if (strlen(url + 11) > GW_MAX_MODEL)
            return fail(r, 404, "invalid_request_error", "model_not_found", "model", "no model has so long a name");
        snprintf(r->path_model, sizeof r->path_model, "%s", url + 11);
    }
    if (v1 && !key_ok(g, MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION)))
        return fail(r, 401, "invalid_request_error", "invalid_api_key", NULL,
                    "a valid API key is required: send the header 'Authorization: Bearer KEY'");
    if (r->ep == GW_EP_CHAT) {
        const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > (unsigned long long)g->cfg->max_body_bytes)
            return fail(r, 413, "invalid_request_error", "request_too_large", NULL,
                        "the request body is %s bytes; this server accepts at most %lld (http.max_body_bytes)", cl,
                        (long long)g->cfg->max_body_bytes);
        g->metrics.in_flight++;
        r->in_flight = true;
    }
    return MHD_YES;
}

static enum MHD_Result body_piece(gw_t *g, gw_req_t *r, const char *data, size_t n) {
    if (r->too_large || r->body_len + n > (size_t)g->cfg->max_body_bytes) {
        r->too_large = true; /* chunked and over the limit: read and dropped, refused at the end */
        return MHD_YES;
    }
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1) cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p) return MHD_NO;
        r->body = p, r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = 0;
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    gw_t *g = cls;
    gw_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) return MHD_NO;
        r->gw = g;
        r->conn = conn;
        r->t0_ms = gw_now_ms();
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        r->fd = ci ? ci->connect_fd : -1;
        r->ep = GW_EP_OTHER;
        pthread_mutex_lock(&g->mu);
        r->serial = ++g->next_serial;
        r->next = g->reqs;
        if (g->reqs) g->reqs->prev = r;
        g->reqs = r;
        pthread_mutex_unlock(&g->mu);
        *con_cls = r;
        return first_call(g, r, url, method);
    }
    if (*upload_data_size) { /* body bytes; dropped when an answer is already queued */
        enum MHD_Result ret = r->phase == GW_PH_BODY ? body_piece(g, r, upload_data, *upload_data_size) : MHD_YES;
        *upload_data_size = 0;
        return ret;
    }
    if (r->phase == GW_PH_BODY) { /* the whole request is here */
        if (r->too_large)
            return fail(r, 413, "invalid_request_error", "request_too_large", NULL,
                        "the request body is more than %lld bytes (http.max_body_bytes)", (long long)g->cfg->max_body_bytes);
        if (r->ep == GW_EP_CHAT) return start_chat(g, r);
        pthread_mutex_lock(&g->mu);
        r->phase = GW_PH_STATUS;
        gw_want_status(g, r);
        enum MHD_Result ret = suspend(r) ? MHD_YES : shutting_down(r);
        pthread_mutex_unlock(&g->mu);
        return ret;
    }
    /* resumed */
    pthread_mutex_lock(&g->mu);
    enum MHD_Result ret = MHD_YES;
    if (r->client_gone) {
        ret = MHD_NO;
    } else if (g->stopping && r->phase != GW_PH_JOB) {
        ret = shutting_down(r);
    } else if (r->phase == GW_PH_STATUS && g->status_done < r->status_need) {
        ret = suspend(r) ? MHD_YES : shutting_down(r); /* woken early */
    } else if (r->phase == GW_PH_STATUS) {
        ret = r->ep == GW_EP_CHAT ? check_model(g, r, true) : get_step(g, r);
    } else if (r->phase == GW_PH_FETCH) {
        ret = fetch_step(g, r);
    } else if (r->phase == GW_PH_JOB) {
        ret = job_step(g, r);
    }
    pthread_mutex_unlock(&g->mu);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe) {
    (void)conn;
    gw_t *g = cls;
    gw_req_t *r = *con_cls;
    if (!r) return;
    *con_cls = NULL;
    pthread_mutex_lock(&g->mu);
    bool unfinished = r->submitted && !r->job_ended;
    end_job(g, r); /* a client that left mid-answer: its job is cancelled */
    if (r->prev) r->prev->next = r->next;
    else g->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    for (int i = 0; i < r->n_in; i++) hired_event_clear(&r->inbox[i]);
    /* A departure the events thread saw is counted there, when it cancelled the job, so that the
     * counter is up to date as soon as the workers are freed; this counts the ones MHD saw. */
    if (!r->gone_counted && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && (unfinished || r->code == 0))
        g->metrics.disconnects++;
    gw_metrics_request(&g->metrics, r->ep, r->code ? r->code : 499);
    if (r->in_flight) {
        g->metrics.in_flight--;
        gw_hist_add(&g->metrics.latency, (double)(gw_now_ms() - r->t0_ms) / 1000.0);
    }
    pthread_mutex_unlock(&g->mu);

    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK)
        log_debug("hired-gateway: request %llu ended early (%d)%s", (unsigned long long)r->serial, (int)toe,
                  unfinished ? "; its job was cancelled" : "");
    free(r->inbox);
    free(r->body);
    free(r->text);
    free(r->out);
    free(r->fetched);
    for (int i = 0; i < GW_MAX_IMAGES; i++) free(r->fetched_img[i]);
    gw_chat_free(&r->chat);
    free(r);
}

// ---- the server ------------------------------------------------------------------------------

static void mhd_log(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    size_t l = strlen(buf);
    while (l && (buf[l - 1] == '\n' || buf[l - 1] == '\r')) buf[--l] = 0;
    log_warn("hired-gateway: http: %s", buf);
}

int gw_http_resolve(const char *listen, int port, struct sockaddr_storage *ss, socklen_t *len, char *err) {
    struct addrinfo hints, *ai = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    int rc = getaddrinfo(listen && listen[0] ? listen : NULL, p, &hints, &ai);
    if (rc) return hired_errf(err, HIRED_EINVAL, "http.listen '%s' is not an address of this host: %s", listen, gai_strerror(rc));
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return HIRED_OK;
}

int gw_http_start(gw_t *g, char *err) {
    const gw_cfg_t *c = g->cfg;
    struct sockaddr_storage ss;
    socklen_t sl;
    int rc = gw_http_resolve(c->listen, (int)c->port, &ss, &sl, err);
    if (rc) return rc;
    unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ITC | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6) flags |= MHD_USE_IPv6;
    g->listen_fd = -1;
    g->mhd = MHD_start_daemon(flags, (uint16_t)c->port, NULL, NULL, on_request, g, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
                              g, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
                              (unsigned)c->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)c->idle_timeout_s,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, g, MHD_OPTION_END);
    if (!g->mhd)
        return hired_errf(err, HIRED_EIO, "cannot serve HTTP on %s port %lld (is the port in use?)",
                          c->listen[0] ? c->listen : "*", (long long)c->port);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(g->mhd, MHD_DAEMON_INFO_BIND_PORT);
    g->port = di && di->port ? di->port : (int)c->port;
    return HIRED_OK;
}

void gw_http_quiesce(gw_t *g) {
    if (g->mhd && g->listen_fd < 0) g->listen_fd = MHD_quiesce_daemon(g->mhd);
}

int gw_http_active(gw_t *g) {
    int n = 0;
    pthread_mutex_lock(&g->mu);
    for (gw_req_t *r = g->reqs; r; r = r->next) n += r->ep == GW_EP_CHAT;
    pthread_mutex_unlock(&g->mu);
    return n;
}

void gw_http_stop(gw_t *g) {
    if (!g->mhd) return;
    pthread_mutex_lock(&g->mu);
    g->stopping = true; /* from here on nothing suspends (suspend() above) */
    for (gw_req_t *r = g->reqs; r; r = r->next) gw_wake(g, r);
    pthread_mutex_unlock(&g->mu);
    MHD_stop_daemon(g->mhd); /* every connection closed, on_completed for each request */
    g->mhd = NULL;
    if (g->listen_fd >= 0) close(g->listen_fd);
    g->listen_fd = -1;
}
