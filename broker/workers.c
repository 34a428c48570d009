/* workers.c — the broker's worker registry: workers by routing id, their credit (one
 * assignment per job they hold, live or cancelled-and-unanswered), least-loaded choice, and the
 * table of models seen per service that decides "unknown model". Not here: heartbeat timing and
 * what happens to a lost worker's jobs (broker.c). */
#include <string.h>

#include "broker.h"
#include "mem.h"

worker_t *workers_find(worker_reg_t *r, const void *route, size_t len) {
    for (worker_t *w = r->head; w; w = w->next)
        if (w->route_len == len && memcmp(w->route, route, len) == 0) return w;
    return NULL;
}

static model_seen_t *model_entry(worker_reg_t *r, int service, const char *model, bool add) {
    for (int i = 0; i < r->nmodels; i++)
        if (r->models[i].service == service && strcmp(r->models[i].model, model) == 0) return &r->models[i];
    if (!add) return NULL;
    if (r->nmodels == r->capmodels) {
        int cap = r->capmodels ? r->capmodels * 2 : 8;
        model_seen_t *p = mem_realloc(r->models, (size_t)cap * sizeof *p);
        if (!p) return NULL;
        r->models = p;
        r->capmodels = cap;
    }
    model_seen_t *m = &r->models[r->nmodels++];
    m->service = service;
    strcpy(m->model, model);
    return m;
}

worker_t *workers_add(worker_reg_t *r, const void *route, size_t len, int service, const char *model,
                      int capacity, int64_t now) {
    model_seen_t *ms = model_entry(r, service, model, true);
    if (!ms) return NULL;
    ms->last_seen = now;
    worker_t *w = workers_find(r, route, len);
    if (w) {
        /* A repeated READY may change the capacity; keep what it holds. */
        if (capacity < w->nasg) capacity = w->nasg;
        assignment_t *a = mem_realloc(w->asg, (size_t)capacity * sizeof *a);
        if (!a) return NULL;
        w->asg = a;
        w->capacity = capacity;
        w->service = service;
        strcpy(w->model, model);
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
    w->service = service;
    strcpy(w->model, model);
    w->capacity = capacity;
    w->last_seen = w->registered = now;
    w->next = r->head;
    r->head = w;
    r->count++;
    return w;
}

void workers_remove(worker_reg_t *r, worker_t *w, int64_t now) {
    model_seen_t *ms = model_entry(r, w->service, w->model, false);
    if (ms) ms->last_seen = now;
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

worker_t *workers_pick(worker_reg_t *r, int service, const char *model) {
    worker_t *best = NULL;
    double best_load = 2.0;
    for (worker_t *w = r->head; w; w = w->next) {
        if (w->service != service || w->nasg >= w->capacity || strcmp(w->model, model) != 0) continue;
        double load = (double)w->nasg / w->capacity;
        /* Ties go to the one that served least, so equal workers share the work. */
        if (!best || load < best_load || (load == best_load && w->served < best->served)) {
            best = w;
            best_load = load;
        }
    }
    return best;
}

int workers_assign(worker_t *w, job_t *j) {
    if (w->nasg >= w->capacity) return HIRED_EBUSY;
    assignment_t *a = &w->asg[w->nasg++];
    a->job = j;
    strcpy(a->id, j->id);
    a->zombie_expires = 0;
    w->served++;
    return HIRED_OK;
}

bool workers_release(worker_t *w, const char *id) {
    for (int i = 0; i < w->nasg; i++)
        if (strcmp(w->asg[i].id, id) == 0) {
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

bool workers_model_known(worker_reg_t *r, int service, const char *model, int64_t now, int64_t ttl) {
    model_seen_t *ms = model_entry(r, service, model, false);
    if (!ms) return false;
    for (worker_t *w = r->head; w; w = w->next)
        if (w->service == service && strcmp(w->model, model) == 0) return true;
    return now - ms->last_seen <= ttl;
}

void workers_touch_models(worker_reg_t *r, int64_t now) {
    for (worker_t *w = r->head; w; w = w->next) {
        model_seen_t *ms = model_entry(r, w->service, w->model, false);
        if (ms) ms->last_seen = now;
    }
}
