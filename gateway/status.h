/* status.h — what the gateway reads out of the broker's STATUS reply (docs/protocol.md §6):
 * which models its pools serve and with how many usable workers, whether the deployment is
 * healthy, the /v1/models listing, and the broker's half of /metrics. Pure functions over the
 * parsed JSON (cJSON, borrowed); no I/O.
 * Usable workers: those in a pool's `workers` list that are not quarantined.
 * Not here: fetching STATUS (backend.h), the gateway's own counters (metrics.h). */
#ifndef HIRED_GW_STATUS_H
#define HIRED_GW_STATUS_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

#include "cfg.h"

/* Usable encode and decode workers of model in status (0 when the model has no pool). Returns
 * whether any pool of the model exists at all. */
bool gw_status_model(const cJSON *status, const char *model, int *n_encode, int *n_decode);

/* The deployment is healthy when the broker answered (status != NULL) and every model that
 * matters has at least one usable encode and one usable decode worker. The models that matter:
 * `models` when it lists any, else every model in the pools (and there must be one). Returns
 * true, or false with `reason` (one sentence, reason_cap bytes) naming what is missing. */
bool gw_status_health(const cJSON *status, const cfg_strlist_t *models, char *reason, size_t reason_cap);

/* /v1/models: {"object":"list","data":[{"id","object":"model","created","owned_by":"hired",
 * "hired":{"encode_workers","decode_workers"}}]} for every model with a pool (restricted to
 * `models` when it lists any). New string, caller frees with free(); NULL when out of memory. */
char *gw_status_models_json(const cJSON *status, const cfg_strlist_t *models, long long created);
/* One model's object as above, or NULL when it has no pool (then 404). */
char *gw_status_model_json(const cJSON *status, const char *model, const cfg_strlist_t *models, long long created);

/* Appends the broker's metrics in the Prometheus text format 0.0.4 to out (a growable buffer:
 * *out of *cap bytes, *len used; reallocated as needed): hired_broker_up, uptime, queue
 * depths, active jobs, clients, held bytes, every STATUS counter as hired_broker_<name>_total,
 * workers / capacity / in use / quarantined per service and model, and the per-stage timing
 * summaries (quantile 0.5 and 0.95, _sum, _count) in seconds. status NULL: only
 * hired_broker_up 0. Returns false when out of memory. */
bool gw_status_prometheus(const cJSON *status, char **out, size_t *len, size_t *cap);

/* printf into the growable buffer of gw_status_prometheus (shared with metrics.c). */
bool gw_buf_printf(char **out, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* A Prometheus label value with \\, \" and \n escaped, into dst[cap] (truncated). */
const char *gw_prom_label(const char *v, char *dst, size_t cap);

#endif
