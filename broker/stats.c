/* stats.c — broker counters, per-stage timing summaries (count and mean over all jobs, p50 and
 * p95 over the last STATS_RING jobs) and the STATUS_REPLY JSON (schema: docs/protocol.md §6):
 * counts for everybody, job ids only for their owner (and every job for an operator key).
 * Not here: when counters move (broker.c, frontend.c, backend.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker.h"

void stats_add_timings(stats_t *s, const wire_msg_t *done) {
    for (int st = 0; st < WIRE_STAGE_COUNT; st++) {
        if (!(done->timings_mask & (1u << st))) continue;
        s->ring[st][s->count[st] % STATS_RING] = done->timings[st];
        s->count[st]++;
        s->sum[st] += done->timings[st];
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void stats_summary(const stats_t *s, int st, uint64_t *count, double *mean, double *p50, double *p95) {
    *count = s->count[st];
    *mean = *p50 = *p95 = 0;
    if (!*count) return;
    *mean = s->sum[st] / (double)*count;
    size_t n = *count < STATS_RING ? (size_t)*count : STATS_RING;
    double tmp[STATS_RING];
    memcpy(tmp, s->ring[st], n * sizeof *tmp);
    qsort(tmp, n, sizeof *tmp, cmp_double);
    /* Nearest-rank percentiles. */
    size_t i50 = (n * 50 + 99) / 100, i95 = (n * 95 + 99) / 100;
    *p50 = tmp[i50 ? i50 - 1 : 0];
    *p95 = tmp[i95 ? i95 - 1 : 0];
}

static void hex_route(const uint8_t *r, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    if (n > 32) n = 32;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[r[i] >> 4];
        out[2 * i + 1] = hx[r[i] & 15];
    }
    out[2 * n] = 0;
}

char *stats_status_json(const broker_t *b, const client_t *c, int64_t now) {
    static const char *const services[] = {"encode", "decode"};
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddNumberToObject(root, "v", WIRE_VERSION);
    /* The epoch is a random 64-bit number: a JSON number would reach readers as a double
     * (cJSON, JavaScript) and lose its low bits, so it travels as a decimal string. */
    char epoch[24];
    snprintf(epoch, sizeof epoch, "%llu", (unsigned long long)b->epoch);
    cJSON_AddStringToObject(root, "epoch", epoch);
    cJSON_AddNumberToObject(root, "uptime_ms", (double)(now - b->started));

    /* pools: one entry per (service, model) with its workers */
    cJSON *pools = cJSON_AddArrayToObject(root, "pools");
    for (int i = 0; i < 2 * b->reg.nmodels; i++) {
        const model_seen_t *ms = &b->reg.models[i / 2];
        int service = i % 2;
        if (!ms->seen[service]) continue;
        cJSON *pool = cJSON_CreateObject();
        cJSON_AddItemToArray(pools, pool);
        cJSON_AddStringToObject(pool, "service", services[service]);
        cJSON_AddStringToObject(pool, "model", ms->model);
        cJSON_AddStringToObject(pool, "fingerprint", ms->fingerprint);
        cJSON *ws = cJSON_AddArrayToObject(pool, "workers");
        int cap = 0, used = 0;
        for (const worker_t *w = b->reg.head; w; w = w->next) {
            if (w->service != service || strcmp(w->model, ms->model) != 0) continue;
            char hex[65];
            hex_route(w->route, w->route_len, hex);
            cJSON *wo = cJSON_CreateObject();
            cJSON_AddItemToArray(ws, wo);
            cJSON_AddStringToObject(wo, "id", hex);
            cJSON_AddNumberToObject(wo, "capacity", w->capacity);
            cJSON_AddNumberToObject(wo, "in_use", w->nasg);
            cJSON_AddNumberToObject(wo, "served", (double)w->served);
            cJSON_AddNumberToObject(wo, "last_heartbeat_ms", (double)(now - w->last_seen));
            cJSON_AddNumberToObject(wo, "credit", w->credit);
            cJSON_AddNumberToObject(wo, "failed", (double)w->failed);
            cJSON_AddBoolToObject(wo, "quarantined", now < w->quarantined_until);
            if (w->load[2]) { /* a batching decoder's own figures (its HEARTBEAT) */
                cJSON_AddNumberToObject(wo, "batch", w->load[0]);
                cJSON_AddNumberToObject(wo, "kv_blocks_used", w->load[1]);
                cJSON_AddNumberToObject(wo, "kv_blocks_total", w->load[2]);
                cJSON_AddNumberToObject(wo, "kv_waiting", w->load[3]);
            }
            cap += w->capacity;
            used += w->nasg;
        }
        cJSON_AddNumberToObject(pool, "capacity", cap);
        cJSON_AddNumberToObject(pool, "in_use", used);
    }

    cJSON *q = cJSON_AddObjectToObject(root, "queues");
    cJSON_AddNumberToObject(q, "encode", (double)b->jobs.qlen[0]);
    cJSON_AddNumberToObject(q, "decode", (double)b->jobs.qlen[1]);

    /* Jobs by id: the asker's own, or every one for an operator key. */
    cJSON *inf = cJSON_AddArrayToObject(root, "inflight");
    int listed = 0;
    for (const job_t *j = b->jobs.all; c && j && listed < 100; j = j->next) {
        if (j->state == JOB_FINISHED || !(c->admin || (j->client && !strcmp(j->client->owner, c->owner)))) continue;
        cJSON *jo = cJSON_CreateObject();
        cJSON_AddItemToArray(inf, jo);
        cJSON_AddStringToObject(jo, "id", j->id);
        cJSON_AddStringToObject(jo, "model", j->req.model);
        cJSON_AddStringToObject(jo, "state", jobs_state_name(j->state));
        cJSON_AddNumberToObject(jo, "attempts", j->attempts[0] + j->attempts[1]);
        cJSON_AddNumberToObject(jo, "tokens", j->ntok);
        cJSON_AddNumberToObject(jo, "age_ms", (double)(now - j->t_accept));
        cJSON_AddNumberToObject(jo, "deadline_in_ms", (double)(j->deadline - now));
        listed++;
    }
    cJSON_AddNumberToObject(root, "active_jobs", (double)b->jobs.active);
    cJSON_AddNumberToObject(root, "undelivered_results", (double)(b->jobs.count - b->jobs.active));
    cJSON_AddNumberToObject(root, "clients", (double)b->clients.count);
    cJSON *by = cJSON_AddObjectToObject(root, "bytes");
    cJSON_AddNumberToObject(by, "held", (double)b->jobs.bytes_total);
    cJSON_AddNumberToObject(by, "queued_images", (double)b->jobs.bytes_images);

    const stats_t *s = &b->stats;
    cJSON *cn = cJSON_AddObjectToObject(root, "counters");
    const struct { const char *n; uint64_t v; } cs[] = {
        {"submitted", s->submitted}, {"accepted", s->accepted}, {"completed", s->completed},
        {"failed", s->failed}, {"busy", s->busy}, {"timeouts", s->timeouts},
        {"requeued", s->requeued}, {"cancelled", s->cancelled}, {"attached", s->attached},
        {"resumed", s->resumed}, {"delivered", s->delivered}, {"abandoned", s->abandoned},
        {"bad_messages", s->bad_messages}, {"workers_lost", s->workers_lost},
        {"workers_refused", s->workers_refused}, {"quarantined", s->quarantined}, {"migrated", s->migrated},
        {"fenced", s->fenced}, {"send_retries", s->send_retries}, {"unreachable", s->unreachable},
    };
    for (size_t i = 0; i < ARRAY_LEN(cs); i++) cJSON_AddNumberToObject(cn, cs[i].n, (double)cs[i].v);

    if (b->zap) { /* CURVE handshakes: refused ones are peers without an authorised key */
        unsigned long acc, ref;
        curve_auth_counts(b->zap, &acc, &ref);
        cJSON *cv = cJSON_AddObjectToObject(root, "curve");
        cJSON_AddNumberToObject(cv, "accepted", (double)acc);
        cJSON_AddNumberToObject(cv, "refused", (double)ref);
    }

    cJSON *t = cJSON_AddObjectToObject(root, "timings");
    for (int st = 0; st < WIRE_STAGE_COUNT; st++) {
        uint64_t n;
        double mean, p50, p95;
        stats_summary(s, st, &n, &mean, &p50, &p95);
        if (!n) continue;
        cJSON *so = cJSON_AddObjectToObject(t, wire_stage_name((wire_stage_t)st));
        cJSON_AddNumberToObject(so, "count", (double)n);
        cJSON_AddNumberToObject(so, "mean_ms", mean);
        cJSON_AddNumberToObject(so, "p50_ms", p50);
        cJSON_AddNumberToObject(so, "p95_ms", p95);
    }
    char *txt = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return txt; /* NULL if any allocation above failed along the way */
}
