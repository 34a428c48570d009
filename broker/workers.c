/* workers.c — the broker's worker registry: workers by routing id, their credit (one assignment
 * per job attempt they hold, live or cancelled-and-unanswered), the least-loaded choice with the
 * trust rules (slow-start credit, strikes and quarantine, jobs avoiding the workers that failed
 * them), and the table of models seen per service that decides "unknown model", with the
 * checkpoint fingerprint each model name is served with.
 * Not here: heartbeat timing and what happens to a lost worker's jobs (broker.c, backend.c). */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "mem.h"

#define CREDIT_START 2 /* jobs a new worker may hold before it has finished any */

worker_t *workers_find(worker_reg_t *r, const void *route, size_t len) {
    for (worker_t *w = r->head; w; w = w->next)
        if (w->route_len == len && memcmp(w->route, route, len) == 0) return w;
    return NULL;
}

static model_seen_t *model_entry(worker_reg_t *r, const char *model, bool add) {
    for (int i = 0; i < r->nmodels; i++)
        if (strcmp(r->models[i].model, model) == 0) return &r->models[i];
    if (!add) return NULL;
    if (r->nmodels == r->capmodels) {
        int cap = r->capmodels ? r->capmodels * 2 : 8;
        model_seen_t *p = mem_realloc(r->models, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        r->models = p;
        r->capmodels = cap;
    }
    model_seen_t *m = &r->models[r->nmodels++];
    memset(m, 0, sizeof *m);
    snprintf(m->model, sizeof m->model, "%s", model);
    return m;
}

worker_t *workers_add(worker_reg_t *r, const void *route, size_t len, int service, const char *model,
                      int capacity, int64_t now) {
    model_seen_t *ms = model_entry(r, model, true);
    if (!ms) return NULL;
    ms->last_seen[service] = now;
    ms->seen[service] = true;
    worker_t *w = workers_find(r, route, len);
    if (w) {
        /* A repeated READY may change the capacity; keep what it holds. */
        if (capacity < w->nasg) capacity = w->nasg;
        assignment_t *a = mem_realloc(w->asg, (size_t)capacity * sizeof *a);
        if (!a) return NULL;
        w->asg = a;
        w->capacity = capacity;
        if (w->credit > capacity) w->credit = capacity;
        w->service = service;
        snprintf(w->model, sizeof w->model, "%s", model);
        w->last_seen = now;
        return w;
    }
    w = mem_calloc(1, sizeof *w);
    if (!w) return NULL;
    w->asg = mem_calloc((size_t)capacity, sizeof *w->asg);
    if (!w->asg) {
        mem_free(w);
        return NULL;
    }
    memcpy(w->route, route, len);
    w->route_len = len;
    w->serial = ++r->next_serial;
    w->service = service;
    snprintf(w->model, sizeof w->model, "%s", model);
    w->capacity = capacity;
    w->credit = capacity < CREDIT_START ? capacity : CREDIT_START;
    w->last_seen = w->registered = now;
    w->next = r->head;
    r->head = w;
    r->count++;
    return w;
}

void workers_remove(worker_reg_t *r, worker_t *w, int64_t now) {
    model_seen_t *ms = model_entry(r, w->model, false);
    if (ms) ms->last_seen[w->service] = now;
    worker_t **pp = &r->head;
    while (*pp && *pp != w) pp = &(*pp)->next;
    if (*pp) *pp = w->next;
    r->count--;
    mem_free(w->asg);
    mem_free(w);
}

void workers_free(worker_reg_t *r) {
    while (r->head) {
        worker_t *w = r->head;
        r->head = w->next;
        mem_free(w->asg);
        mem_free(w);
    }
    mem_free(r->models);
    memset(r, 0, sizeof *r);
}

bool workers_has_credit(const worker_t *w, int64_t now) {
    return w->nasg < w->credit && now >= w->quarantined_until && w->load[3] == 0;
}

static bool avoided(const job_t *j, const worker_t *w) {
    for (int i = 0; j && i < j->navoid; i++)
        if (j->avoid[i] == w->serial) return true;
    return false;
}

worker_t *workers_pick(worker_reg_t *r, int service, const char *model, const job_t *j, int64_t now) {
    worker_t *best = NULL;
    double best_load = 2.0;
    bool other = false; /* a worker of the pool that j may use, now or later */
    for (worker_t *w = r->head; w; w = w->next) {
        if (w->service != service || strcmp(w->model, model) != 0) continue;
        bool ok = now >= w->quarantined_until && !avoided(j, w);
        other |= ok;
        if (!ok || w->nasg >= w->credit || w->load[3]) continue; /* load[3]: jobs wait in it for KV */
        double load = (double)w->nasg / w->credit;
        /* Ties go to the one that served least, so equal workers share the work. */
        if (!best || load < best_load || (load == best_load && w->served < best->served)) {
            best = w;
            best_load = load;
        }
    }
    if (best || other) return best;
    /* Every worker of the pool is quarantined or failed this job before: rather than let the job
     * wait for its deadline, give it to the least loaded of them. */
    for (worker_t *w = r->head; w; w = w->next) {
        if (w->service != service || strcmp(w->model, model) != 0 || w->nasg >= w->credit || w->load[3]) continue;
        double load = (double)w->nasg / w->credit;
        if (!best || load < best_load) best = w, best_load = load;
    }
    return best;
}

int workers_assign(worker_t *w, job_t *j, uint32_t attempt) {
    if (w->nasg >= w->capacity) return HIRED_EBUSY;
    assignment_t *a = &w->asg[w->nasg++];
    a->job = j;
    snprintf(a->wid, sizeof a->wid, "%s", j->wid);
    a->attempt = attempt;
    a->zombie_expires = 0;
    w->served++;
    return HIRED_OK;
}

bool workers_release(worker_t *w, const char *wid, uint32_t attempt) {
    for (int i = 0; i < w->nasg; i++)
        if (w->asg[i].attempt == attempt && strcmp(w->asg[i].wid, wid) == 0) {
            w->asg[i] = w->asg[--w->nasg];
            return true;
        }
    return false;
}

void workers_zombify(worker_t *w, job_t *j, int64_t until) {
    for (int i = 0; i < w->nasg; i++)
        if (w->asg[i].job == j) {
            w->asg[i].job = NULL;
            w->asg[i].zombie_expires = until;
        }
}

void workers_success(worker_t *w) {
    w->strikes = 0;
    if (w->credit < w->capacity) w->credit++;
}

bool workers_strike(worker_t *w, int after, int64_t ms, int64_t now) {
    w->failed++;
    w->strikes++;
    w->credit = w->credit > 1 ? w->credit / 2 : 1;
    if (after > 0 && w->strikes >= after && now >= w->quarantined_until) {
        w->quarantined_until = now + ms;
        w->strikes = 0;
        return true;
    }
    return false;
}

bool workers_model_known(worker_reg_t *r, int service, const char *model, int64_t now, int64_t ttl) {
    model_seen_t *ms = model_entry(r, model, false);
    if (!ms || !ms->seen[service]) return false;
    for (worker_t *w = r->head; w; w = w->next)
        if (w->service == service && strcmp(w->model, model) == 0) return true;
    return now - ms->last_seen[service] <= ttl;
}

void workers_touch_models(worker_reg_t *r, int64_t now) {
    for (worker_t *w = r->head; w; w = w->next) {
        model_seen_t *ms = model_entry(r, w->model, false);
        if (ms) ms->last_seen[w->service] = now;
    }
}

const char *workers_model_fingerprint(worker_reg_t *r, const char *model, int64_t now, int64_t ttl) {
    model_seen_t *ms = model_entry(r, model, false);
    if (!ms || !ms->fingerprint[0]) return NULL;
    if (!workers_model_known(r, 0, model, now, ttl) && !workers_model_known(r, 1, model, now, ttl)) return NULL;
    return ms->fingerprint;
}

int workers_set_fingerprint(worker_reg_t *r, const char *model, const char *fp, int64_t now) {
    model_seen_t *ms = model_entry(r, model, true);
    if (!ms) return HIRED_ENOMEM;
    (void)now;
    snprintf(ms->fingerprint, sizeof ms->fingerprint, "%s", fp);
    return HIRED_OK;
}
