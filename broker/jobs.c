/* jobs.c — the broker's job table: a hash by job id, the list of all jobs (for timers), the
 * encode (0) and decode (1) FIFO queues, each job's token log (replayed to a client that
 * attaches, and used to drop the duplicate tokens of a retried decode), and the finished state
 * kept as a result cache. Not here: what happens to a job (broker.c). */
#include <string.h>

#include "broker.h"
#include "mem.h"

#define JOBS_BUCKETS 4096

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static size_t bucket(const job_table_t *t, const char *id) {
    return (size_t)(fnv(0xcbf29ce484222325ull, id, strlen(id)) % t->nbuckets);
}

const char *jobs_state_name(job_state_t s) {
    static const char *const n[] = {"queued-encode", "encoding", "queued-decode", "decoding", "finished"};
    return (unsigned)s < ARRAY_LEN(n) ? n[s] : "?";
}

uint64_t jobs_hash_request(const wire_msg_t *r) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, r->model, strlen(r->model) + 1);
    if (r->prompt) h = fnv(h, r->prompt, strlen(r->prompt) + 1);
    const wire_params_t *p = &r->params;
    h = fnv(h, &p->max_tokens, sizeof p->max_tokens);
    h = fnv(h, &p->temperature, sizeof p->temperature);
    h = fnv(h, &p->top_p, sizeof p->top_p);
    h = fnv(h, &p->top_k, sizeof p->top_k);
    h = fnv(h, &p->seed, sizeof p->seed);
    h = fnv(h, &p->budget, sizeof p->budget);
    h = fnv(h, p->strategy, strlen(p->strategy) + 1);
    h = fnv(h, &p->alpha, sizeof p->alpha);
    h = fnv(h, p->newline, strlen(p->newline) + 1);
    return h;
}

int jobs_init(job_table_t *t) {
    memset(t, 0, sizeof *t);
    t->nbuckets = JOBS_BUCKETS;
    t->buckets = mem_calloc(t->nbuckets, sizeof *t->buckets);
    return t->buckets ? HIRED_OK : HIRED_ENOMEM;
}

job_t *jobs_find(job_table_t *t, const char *id) {
    for (job_t *j = t->buckets[bucket(t, id)]; j; j = j->hnext)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

job_t *jobs_add(job_table_t *t, const char *id) {
    job_t *j = mem_calloc(1, sizeof *j);
    if (!j) return NULL;
    strcpy(j->id, id);
    j->queue = -1;
    zmq_msg_init(&j->image);
    zmq_msg_init(&j->tensor);
    size_t b = bucket(t, id);
    j->hnext = t->buckets[b];
    t->buckets[b] = j;
    j->next = t->all;
    if (t->all) t->all->prev = j;
    t->all = j;
    t->count++;
    t->active++;
    return j;
}

void jobs_remove(job_table_t *t, job_t *j) {
    job_t **pp = &t->buckets[bucket(t, j->id)];
    while (*pp && *pp != j) pp = &(*pp)->hnext;
    if (*pp) *pp = j->hnext;
    if (j->prev) j->prev->next = j->next;
    else t->all = j->next;
    if (j->next) j->next->prev = j->prev;
    if (j->state != JOB_FINISHED) t->active--;
    t->count--;
    zmq_msg_close(&j->image);
    zmq_msg_close(&j->tensor);
    wire_msg_clear(&j->req);
    wire_msg_clear(&j->enc);
    wire_msg_clear(&j->final);
    mem_free(j->toks);
    mem_free(j->text);
    mem_free(j);
}

void jobs_free(job_table_t *t) {
    while (t->all) {
        job_t *j = t->all;
        if (j->queue >= 0) jobs_dequeue(t, j, 0);
        jobs_remove(t, j);
    }
    mem_free(t->buckets);
    t->buckets = NULL;
}

void jobs_enqueue(job_table_t *t, job_t *j, int q, bool front, int64_t now) {
    j->queue = q;
    j->t_queued = now;
    j->qprev = j->qnext = NULL;
    if (front) {
        j->qnext = t->qhead[q];
        if (t->qhead[q]) t->qhead[q]->qprev = j;
        else t->qtail[q] = j;
        t->qhead[q] = j;
    } else {
        j->qprev = t->qtail[q];
        if (t->qtail[q]) t->qtail[q]->qnext = j;
        else t->qhead[q] = j;
        t->qtail[q] = j;
    }
    t->qlen[q]++;
}

void jobs_dequeue(job_table_t *t, job_t *j, int64_t now) {
    int q = j->queue;
    if (q < 0) return;
    if (j->qprev) j->qprev->qnext = j->qnext;
    else t->qhead[q] = j->qnext;
    if (j->qnext) j->qnext->qprev = j->qprev;
    else t->qtail[q] = j->qprev;
    j->qprev = j->qnext = NULL;
    j->queue = -1;
    t->qlen[q]--;
    if (now >= j->t_queued) j->queue_ms += (double)(now - j->t_queued);
}

int jobs_log_token(job_t *j, int32_t token, const char *text) {
    size_t n = strlen(text);
    if (j->ntok == j->captok) {
        uint32_t cap = j->captok ? j->captok * 2 : 64;
        tok_t *p = mem_realloc(j->toks, cap * sizeof *p);
        if (!p) return HIRED_ENOMEM;
        j->toks = p;
        j->captok = cap;
    }
    if (j->text_len + n + 1 > j->text_cap) {
        size_t cap = j->text_cap ? j->text_cap * 2 : 1024;
        while (cap < j->text_len + n + 1) cap *= 2;
        char *p = mem_realloc(j->text, cap);
        if (!p) return HIRED_ENOMEM;
        j->text = p;
        j->text_cap = cap;
    }
    memcpy(j->text + j->text_len, text, n + 1);
    j->toks[j->ntok++] = (tok_t){token, (uint32_t)j->text_len, (uint32_t)n};
    j->text_len += n;
    return HIRED_OK;
}

void jobs_finish(job_table_t *t, job_t *j, wire_msg_t *final, int64_t expires, int64_t now) {
    jobs_dequeue(t, j, now);
    zmq_msg_close(&j->image);
    zmq_msg_init(&j->image);
    zmq_msg_close(&j->tensor);
    zmq_msg_init(&j->tensor);
    j->has_image = j->has_tensor = false;
    wire_msg_clear(&j->enc);
    mem_free(j->req.prompt); /* the hash still identifies the request */
    j->req.prompt = NULL;
    wire_msg_clear(&j->final);
    j->final = *final;
    memset(final, 0, sizeof *final);
    if (j->state != JOB_FINISHED) t->active--;
    j->state = JOB_FINISHED;
    j->worker = NULL;
    j->expires = expires;
}
