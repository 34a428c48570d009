/* jobs.c — the broker's job table: two hash indexes (by client owner + client id, so two
 * clients can never reach each other's jobs even with equal ids; and by the internal id the
 * broker gives workers), the list of all jobs (for timers), the encode (0) and decode (1) FIFO
 * queues, each job's token log (delivered and re-delivered to its client, and used to drop the
 * duplicate tokens of a retried decode), its client's job list, and byte accounting (images,
 * encoder results and streams held, per job, summed per client and for the broker).
 * Not here: what happens to a job (broker.c, frontend.c, backend.c). */
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "mem.h"

#define JOBS_BUCKETS 4096

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

static const char *owner_of(const job_t *j) { return j->client ? j->client->owner : ""; }

static size_t bucket(const job_table_t *t, const char *owner, const char *id) {
    uint64_t h = fnv(0xcbf29ce484222325ull, owner, strlen(owner) + 1);
    return (size_t)(fnv(h, id, strlen(id)) % t->nbuckets);
}

static size_t wbucket(const job_table_t *t, const char *wid) {
    return (size_t)(fnv(0xcbf29ce484222325ull, wid, strlen(wid)) % t->nbuckets);
}

const char *jobs_state_name(job_state_t s) {
    static const char *const n[] = {"queued-encode", "encoding", "queued-decode", "decoding", "finished"};
    return (unsigned)s < ARRAY_LEN(n) ? n[s] : "?";
}

uint64_t jobs_hash_request(const wire_msg_t *r, zmq_msg_t *images, int n) {
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, r->model, strlen(r->model) + 1);
    if (r->prompt) h = fnv(h, r->prompt, strlen(r->prompt) + 1);
    h = fnv(h, &r->n_messages, sizeof r->n_messages);
    for (uint32_t i = 0; r->messages && i < r->n_messages; i++) {
        const wire_message_t *x = &r->messages[i];
        h = fnv(h, &x->role, sizeof x->role);
        h = fnv(h, &x->n_parts, sizeof x->n_parts);
        for (uint32_t k = 0; k < x->n_parts; k++) {
            const char *t = x->parts[k].text;
            h = t ? fnv(h, t, strlen(t) + 1) : fnv(h, "\xff", 1); /* an image part */
        }
    }
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
    h = fnv(h, &p->stream, sizeof p->stream);
    h = fnv(h, &n, sizeof n);
    for (int i = 0; i < n; i++) {
        size_t len = zmq_msg_size(&images[i]);
        h = fnv(h, &len, sizeof len);
        h = fnv(h, zmq_msg_data(&images[i]), len);
    }
    return h;
}

size_t jobs_image_bytes(const job_t *j) {
    size_t n = 0;
    for (int i = 0; i < j->nimages; i++) n += zmq_msg_size((zmq_msg_t *)&j->images[i]);
    return n;
}

void jobs_drop_images(job_table_t *t, job_t *j) {
    t->bytes_images -= jobs_image_bytes(j);
    for (int i = 0; i < j->nimages; i++) {
        zmq_msg_close(&j->images[i]);
        zmq_msg_init(&j->images[i]);
    }
    j->nimages = 0;
}

/* Closes j's tensor frames. */
static void drop_tensors(job_t *j) {
    for (int i = 0; i < j->ntensors; i++) {
        zmq_msg_close(&j->tensors[i]);
        zmq_msg_init(&j->tensors[i]);
    }
    j->ntensors = 0;
}

int jobs_init(job_table_t *t, uint64_t epoch) {
    memset(t, 0, sizeof *t);
    t->nbuckets = JOBS_BUCKETS;
    t->buckets = mem_calloc(t->nbuckets, sizeof *t->buckets);
    t->wbuckets = mem_calloc(t->nbuckets, sizeof *t->wbuckets);
    t->next_wid = (epoch & 0xffffff) << 32; /* ids from different broker runs differ */
    if (!t->buckets || !t->wbuckets) {
        mem_free(t->buckets);
        mem_free(t->wbuckets);
        t->buckets = t->wbuckets = NULL;
        return HIRED_ENOMEM;
    }
    return HIRED_OK;
}

job_t *jobs_find(job_table_t *t, const char *owner, const char *id) {
    for (job_t *j = t->buckets[bucket(t, owner, id)]; j; j = j->hnext)
        if (strcmp(j->id, id) == 0 && strcmp(owner_of(j), owner) == 0) return j;
    return NULL;
}

job_t *jobs_find_wid(job_table_t *t, const char *wid) {
    for (job_t *j = t->wbuckets[wbucket(t, wid)]; j; j = j->whnext)
        if (strcmp(j->wid, wid) == 0) return j;
    return NULL;
}

job_t *jobs_add(job_table_t *t, client_t *c, const char *id) {
    job_t *j = mem_calloc(1, sizeof *j);
    if (!j) return NULL;
    strcpy(j->id, id);
    snprintf(j->wid, sizeof j->wid, "j%llx", (unsigned long long)++t->next_wid);
    j->queue = -1;
    j->client = c;
    for (int i = 0; i < WIRE_MAX_IMAGES; i++) {
        zmq_msg_init(&j->images[i]);
        zmq_msg_init(&j->tensors[i]);
    }
    size_t b = bucket(t, owner_of(j), id);
    j->hnext = t->buckets[b];
    t->buckets[b] = j;
    size_t wb = wbucket(t, j->wid);
    j->whnext = t->wbuckets[wb];
    t->wbuckets[wb] = j;
    j->next = t->all;
    if (t->all) t->all->prev = j;
    t->all = j;
    if (c) {
        j->cnext = c->jobs;
        if (c->jobs) c->jobs->cprev = j;
        c->jobs = j;
        c->njobs++;
    }
    t->count++;
    t->active++;
    return j;
}

static void client_unlink(job_t *j) {
    client_t *c = j->client;
    if (!c) return;
    if (j->cprev) j->cprev->cnext = j->cnext;
    else c->jobs = j->cnext;
    if (j->cnext) j->cnext->cprev = j->cprev;
    j->cprev = j->cnext = NULL;
    c->njobs--;
    c->bytes -= j->bytes;
}

void jobs_move(job_t *j, client_t *c) {
    if (j->client == c) return;
    client_unlink(j);
    j->client = c;
    j->cnext = c->jobs;
    if (c->jobs) c->jobs->cprev = j;
    c->jobs = j;
    c->njobs++;
    c->bytes += j->bytes;
}

void jobs_remove(job_table_t *t, job_t *j) {
    job_t **pp = &t->buckets[bucket(t, owner_of(j), j->id)];
    while (*pp && *pp != j) pp = &(*pp)->hnext;
    if (*pp) *pp = j->hnext;
    pp = &t->wbuckets[wbucket(t, j->wid)];
    while (*pp && *pp != j) pp = &(*pp)->whnext;
    if (*pp) *pp = j->whnext;
    if (j->prev) j->prev->next = j->next;
    else t->all = j->next;
    if (j->next) j->next->prev = j->prev;
    if (j->state != JOB_FINISHED) t->active--;
    t->count--;
    jobs_drop_images(t, j);
    drop_tensors(j);
    t->bytes_total -= j->bytes;
    client_unlink(j);
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
    mem_free(t->wbuckets);
    t->buckets = t->wbuckets = NULL;
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

size_t jobs_stream_bytes(const job_t *j) { return (size_t)j->captok * sizeof(tok_t) + j->text_cap; }

void jobs_account(job_table_t *t, job_t *j) {
    size_t b = sizeof *j + jobs_stream_bytes(j) + wire_msg_text_bytes(&j->req) +
               (size_t)j->req.n_messages * sizeof(wire_message_t) + jobs_image_bytes(j);
    for (int i = 0; i < j->ntensors; i++) b += zmq_msg_size(&j->tensors[i]);
    for (uint32_t i = 0; i < j->enc.n_visuals; i++) b += sizeof(wire_visual_t) + (size_t)j->enc.visuals[i].kept * 6;
    if (j->final.text) b += strlen(j->final.text);
    if (j->final.message) b += strlen(j->final.message);
    t->bytes_total += b - j->bytes; /* unsigned wrap-around cancels out */
    if (j->client) j->client->bytes += b - j->bytes;
    j->bytes = b;
}

void jobs_finish(job_table_t *t, job_t *j, wire_msg_t *final, int64_t now) {
    jobs_dequeue(t, j, now);
    jobs_drop_images(t, j);
    drop_tensors(j);
    wire_msg_clear(&j->enc);
    mem_free(j->req.prompt); /* the hash still identifies the request */
    j->req.prompt = NULL;
    wire_msg_set_messages(&j->req, NULL, 0); /* frees them */
    wire_msg_clear(&j->final);
    j->final = *final;
    memset(final, 0, sizeof *final);
    if (j->state != JOB_FINISHED) t->active--;
    j->state = JOB_FINISHED;
    j->worker = NULL;
    j->finished_at = now;
    j->final_sent = false;
    jobs_account(t, j);
}
