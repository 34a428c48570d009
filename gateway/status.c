/* status.c — see status.h. Field names follow docs/protocol.md §6; a field that is missing or
 * of another type reads as 0, so an older or newer broker degrades to fewer figures, never to
 * a crash. */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

bool gw_buf_printf(char **out, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = *cap - *len;
        int n = vsnprintf(*out ? *out + *len : NULL, *out ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) return false;
        if (*out && (size_t)n < room) {
            *len += (size_t)n;
            return true;
        }
        size_t nc = *cap ? *cap : 4096;
        while (nc - *len <= (size_t)n) nc *= 2;
        char *p = realloc(*out, nc);
        if (!p) return false;
        *out = p, *cap = nc;
    }
}

const char *gw_prom_label(const char *v, char *dst, size_t cap) {
    size_t w = 0;
    for (; v && *v && w + 3 < cap; v++) {
        if (*v == '\\' || *v == '"') dst[w++] = '\\', dst[w++] = *v;
        else if (*v == '\n') dst[w++] = '\\', dst[w++] = 'n';
        else dst[w++] = *v;
    }
    dst[w] = 0;
    return dst;
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *str(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : "";
}

static int usable_workers(const cJSON *pool) {
    int n = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(pool, "workers")) {
        if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "quarantined"))) n++;
    }
    return n;
}

bool gw_status_model(const cJSON *status, const char *model, int *n_encode, int *n_decode) {
    *n_encode = *n_decode = 0;
    bool any = false;
    const cJSON *pool;
    cJSON_ArrayForEach(pool, cJSON_GetObjectItemCaseSensitive(status, "pools")) {
        if (strcmp(str(pool, "model"), model) != 0) continue;
        any = true;
        if (!strcmp(str(pool, "service"), "encode")) *n_encode += usable_workers(pool);
        else if (!strcmp(str(pool, "service"), "decode")) *n_decode += usable_workers(pool);
    }
    return any;
}

static bool listed(const cfg_strlist_t *models, const char *m) {
    if (!models || models->n == 0) return true;
    for (int i = 0; i < models->n; i++)
        if (!strcmp(models->items[i], m)) return true;
    return false;
}

/* Calls fn for each distinct model with a pool (in pool order), restricted to `models`. */
static void each_model(const cJSON *status, const cfg_strlist_t *models, void (*fn)(const char *m, void *u), void *u) {
    const cJSON *pool, *seen;
    cJSON_ArrayForEach(pool, cJSON_GetObjectItemCaseSensitive(status, "pools")) {
        const char *m = str(pool, "model");
        bool dup = false;
        cJSON_ArrayForEach(seen, cJSON_GetObjectItemCaseSensitive(status, "pools")) {
            if (seen == pool) break;
            if (!strcmp(str(seen, "model"), m)) dup = true;
        }
        if (!dup && m[0] && listed(models, m)) fn(m, u);
    }
}

typedef struct {
    const cJSON *status;
    char *reason;
    size_t cap;
    bool ok;
    int n;
} health_t;

static void health_one(const char *m, void *u) {
    health_t *h = u;
    h->n++;
    int ne, nd;
    gw_status_model(h->status, m, &ne, &nd);
    if (h->ok && (ne == 0 || nd == 0)) {
        h->ok = false;
        snprintf(h->reason, h->cap, "model '%s' has %d usable encode and %d usable decode workers", m, ne, nd);
    }
}

bool gw_status_health(const cJSON *status, const cfg_strlist_t *models, char *reason, size_t reason_cap) {
    if (!status) {
        snprintf(reason, reason_cap, "the broker did not answer STATUS");
        return false;
    }
    health_t h = {status, reason, reason_cap, true, 0};
    if (models && models->n > 0) {
        for (int i = 0; i < models->n; i++) health_one(models->items[i], &h);
    } else {
        each_model(status, NULL, health_one, &h);
        if (h.n == 0) {
            snprintf(reason, reason_cap, "the broker has no workers of any model");
            return false;
        }
    }
    if (h.ok) snprintf(reason, reason_cap, "ok");
    return h.ok;
}

static cJSON *model_obj(const cJSON *status, const char *m, long long created) {
    int ne, nd;
    gw_status_model(status, m, &ne, &nd);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", m);
    cJSON_AddStringToObject(o, "object", "model");
    cJSON_AddNumberToObject(o, "created", (double)created);
    cJSON_AddStringToObject(o, "owned_by", "hired");
    cJSON *h = cJSON_AddObjectToObject(o, "hired");
    cJSON_AddNumberToObject(h, "encode_workers", ne);
    cJSON_AddNumberToObject(h, "decode_workers", nd);
    return o;
}

typedef struct {
    const cJSON *status;
    cJSON *data;
    long long created;
} list_t;

static void list_one(const char *m, void *u) {
    list_t *l = u;
    cJSON_AddItemToArray(l->data, model_obj(l->status, m, l->created));
}

char *gw_status_models_json(const cJSON *status, const cfg_strlist_t *models, long long created) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "object", "list");
    list_t l = {status, cJSON_AddArrayToObject(o, "data"), created};
    if (status && l.data) each_model(status, models, list_one, &l);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

char *gw_status_model_json(const cJSON *status, const char *model, const cfg_strlist_t *models, long long created) {
    int ne, nd;
    if (!status || !listed(models, model) || !gw_status_model(status, model, &ne, &nd)) return NULL;
    cJSON *o = model_obj(status, model, created);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

// ---- Prometheus ------------------------------------------------------------------------------

/* Help lines of the STATUS counters (docs/protocol.md §6); others get a generic one. */
static const char *counter_help(const char *name) {
    static const char *const k[][2] = {
        {"submitted", "SUBMITs received"},
        {"accepted", "jobs admitted"},
        {"completed", "jobs that ended with DONE"},
        {"failed", "jobs that ended with ERROR"},
        {"busy", "SUBMITs answered BUSY (a queue or memory limit was full)"},
        {"timeouts", "jobs whose deadline passed"},
        {"requeued", "job stages re-queued after a worker was lost or gave up"},
        {"cancelled", "jobs cancelled by their client"},
        {"abandoned", "unfinished jobs cancelled because their client went silent or said BYE"},
        {"delivered", "final messages acknowledged by their clients"},
        {"workers_lost", "workers declared dead"},
        {"quarantined", "workers quarantined after repeated failures"},
        {"bad_messages", "malformed messages received"},
    };
    for (size_t i = 0; i < ARRAY_LEN(k); i++)
        if (!strcmp(k[i][0], name)) return k[i][1];
    return "a broker STATUS counter (docs/protocol.md section 6)";
}

static bool valid_metric_name(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return false;
    return true;
}

#define P(...)                                               \
    do {                                                     \
        if (!gw_buf_printf(out, len, cap, __VA_ARGS__)) return false; \
    } while (0)

/* The sum of one numeric field over a pool's workers (absent counts 0). */
static double sum_workers(const cJSON *pool, const char *field) {
    double v = 0;
    const cJSON *w;
    cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(pool, "workers")) v += num(w, field);
    return v;
}

static bool pools_prom(const cJSON *status, char **out, size_t *len, size_t *cap) {
    static const char *const names[][2] = {
        {"workers", "registered workers per pool"},
        {"workers_usable", "registered workers per pool that are not quarantined"},
        {"worker_capacity", "jobs the pool's workers may hold at once"},
        {"workers_in_use", "jobs the pool's workers hold now"},
        {"decode_batch", "jobs in the pool's decoders' last decode batches (continuous batching)"},
        {"kv_blocks_used", "KV-cache blocks (16 positions) the pool's decoders hold for running jobs"},
        {"kv_blocks_total", "KV-cache blocks in the pool's decoders' pools"},
        {"kv_waiting", "jobs the pool's decoders hold that wait for KV blocks (such a decoder takes no new job)"},
    };
    for (size_t k = 0; k < ARRAY_LEN(names); k++) {
        P("# HELP hired_broker_%s %s\n# TYPE hired_broker_%s gauge\n", names[k][0], names[k][1], names[k][0]);
        const cJSON *pool;
        cJSON_ArrayForEach(pool, cJSON_GetObjectItemCaseSensitive(status, "pools")) {
            char sv[64], md[300];
            double v = k == 0 ? cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(pool, "workers"))
                     : k == 1 ? usable_workers(pool)
                     : k == 2 ? num(pool, "capacity")
                     : k == 3 ? num(pool, "in_use")
                     : k == 4 ? sum_workers(pool, "batch")
                     : k == 5 ? sum_workers(pool, "kv_blocks_used")
                     : k == 6 ? sum_workers(pool, "kv_blocks_total")
                              : sum_workers(pool, "kv_waiting");
            P("hired_broker_%s{service=\"%s\",model=\"%s\"} %.0f\n", names[k][0],
              gw_prom_label(str(pool, "service"), sv, sizeof sv), gw_prom_label(str(pool, "model"), md, sizeof md), v);
        }
    }
    return true;
}

bool gw_status_prometheus(const cJSON *status, char **out, size_t *len, size_t *cap) {
    P("# HELP hired_broker_up 1 when the broker answered the gateway's last STATUS\n# TYPE hired_broker_up gauge\n"
      "hired_broker_up %d\n",
      status ? 1 : 0);
    if (!status) return true;
    P("# HELP hired_broker_uptime_seconds time since the broker started\n# TYPE hired_broker_uptime_seconds gauge\n"
      "hired_broker_uptime_seconds %.3f\n",
      num(status, "uptime_ms") / 1000.0);
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(status, "queues");
    P("# HELP hired_broker_queue_depth jobs waiting per service\n# TYPE hired_broker_queue_depth gauge\n"
      "hired_broker_queue_depth{service=\"encode\"} %.0f\nhired_broker_queue_depth{service=\"decode\"} %.0f\n",
      num(q, "encode"), num(q, "decode"));
    static const char *const gauges[][3] = {
        {"active_jobs", "active_jobs", "unfinished jobs"},
        {"undelivered_results", "undelivered_results", "finished jobs whose final message is not acknowledged yet"},
        {"clients", "clients", "client sessions the broker knows"},
    };
    for (size_t i = 0; i < ARRAY_LEN(gauges); i++)
        P("# HELP hired_broker_%s %s\n# TYPE hired_broker_%s gauge\nhired_broker_%s %.0f\n", gauges[i][0], gauges[i][2],
          gauges[i][0], gauges[i][0], num(status, gauges[i][1]));
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(status, "bytes");
    P("# HELP hired_broker_held_bytes bytes the broker holds for jobs\n# TYPE hired_broker_held_bytes gauge\n"
      "hired_broker_held_bytes %.0f\n# HELP hired_broker_queued_image_bytes images of jobs not yet encoded\n"
      "# TYPE hired_broker_queued_image_bytes gauge\nhired_broker_queued_image_bytes %.0f\n",
      num(by, "held"), num(by, "queued_images"));
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(status, "counters")) {
        if (!cJSON_IsNumber(c) || !valid_metric_name(c->string)) continue;
        P("# HELP hired_broker_%s_total %s\n# TYPE hired_broker_%s_total counter\nhired_broker_%s_total %.0f\n",
          c->string, counter_help(c->string), c->string, c->string, c->valuedouble);
    }
    if (!pools_prom(status, out, len, cap)) return false;
    const cJSON *tm = cJSON_GetObjectItemCaseSensitive(status, "timings");
    if (cJSON_GetArraySize(tm) > 0) {
        P("# HELP hired_broker_stage_seconds per-stage job times from DONE (quantiles over the broker's last 1024 "
          "jobs)\n# TYPE hired_broker_stage_seconds summary\n");
        const cJSON *st;
        cJSON_ArrayForEach(st, tm) {
            char lb[64];
            gw_prom_label(st->string, lb, sizeof lb);
            double n = num(st, "count");
            P("hired_broker_stage_seconds{stage=\"%s\",quantile=\"0.5\"} %.6f\n", lb, num(st, "p50_ms") / 1000.0);
            P("hired_broker_stage_seconds{stage=\"%s\",quantile=\"0.95\"} %.6f\n", lb, num(st, "p95_ms") / 1000.0);
            P("hired_broker_stage_seconds_sum{stage=\"%s\"} %.6f\n", lb, n * num(st, "mean_ms") / 1000.0);
            P("hired_broker_stage_seconds_count{stage=\"%s\"} %.0f\n", lb, n);
        }
    }
    return true;
}
