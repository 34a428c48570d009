/* gen_sched.c — see gen_sched.h. The waiting list is shared (under mu); the running list and every
 * running job's state belong to the scheduler thread alone. A job lives on its caller's stack
 * (gen_sched_run waits for it), so nothing about it is freed behind the caller's back. */
#include "gen_sched.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "err.h"
#include "gen_text.h"
#include "log.h"
#include "mem.h"

typedef enum { SEQ_WAITING = 0, SEQ_PREFILL, SEQ_DECODE, SEQ_ENDED } seq_state_t;

typedef struct seq {
    /* the caller's request (borrowed) */
    const gen_prompt_t *pr;
    gen_params_t p;
    gen_emit_fn emit;
    gen_cancel_fn cancelled;
    void *user;
    int32_t *tokens;
    gen_stats_t *st;
    /* scheduling */
    seq_state_t state;
    int cap, blocks;
    struct seq *next;
    bool ended; /* under mu: the caller may return */
    int rc;
    char err[HIRED_ERR_LEN];
    /* decoding (scheduler thread) */
    kv_cache_t *kv;
    sampler_t *smp;
    tok_stream_t *ts;
    gen_text_t txt;
    float *own;    /* [vocab] device: the prompt's last logits */
    float *cur;    /* the logits the next token is drawn from: own, or a row of the batch's */
    float *host;   /* [vocab] host copy */
    bool fresh;    /* cur holds logits not yet sampled */
    int32_t feed;  /* the token the next batch runs */
    int prefilled, step, max_new;
    int32_t eos[HF_MAX_EOS + 1], mask[HF_MAX_EOS + 1];
    int n_eos, n_mask;
    double t_submit, t_prefill, t_decode;
} seq_t;

struct gen_sched {
    gen_model_t *m;
    llm_t *llm;
    gen_sched_opts_t o;
    k_ctx_t *ctx;
    int V, D;
    size_t block_bytes;
    int blocks_total;
    pthread_t th;
    bool started;
    pthread_mutex_t mu;
    pthread_cond_t work, ended;
    bool stop;
    seq_t *waiting_head, *waiting_tail; /* under mu */
    int blocks_used;                    /* under mu */
    gen_sched_stats_t stats;            /* under mu */
    kv_pool_t *pool; /* every job's KV blocks (its free list: scheduler thread only) */
    /* scheduler thread only */
    seq_t *running;
    float *blogits; /* [max_seqs, vocab] device */
    float *bx;      /* [max_seqs, hidden] device */
    kv_cache_t **bkv;
    seq_t **bseq;
    int32_t *bids;
};

// ---- sizes ---------------------------------------------------------------------------------------

static int blocks_for(int positions) { return (positions + GEN_SCHED_BLOCK - 1) / GEN_SCHED_BLOCK; }

size_t gen_sched_job_bytes_for(gen_model_t *m, tensor_dtype_t kv_dtype, int length, int max_tokens) {
    const hf_text_config_t *tc = &gen_model_config(m)->text;
    return (size_t)blocks_for(gen_kv_positions(m, length, max_tokens)) *
           kv_cache_bytes_for(kv_dtype, tc->layers, tc->kv_heads * tc->head_dim, GEN_SCHED_BLOCK);
}

size_t gen_sched_job_bytes(const gen_sched_t *s, int length, int max_tokens) {
    return gen_sched_job_bytes_for(s->m, s->o.kv_dtype, length, max_tokens);
}

// ---- one job's life on the scheduler thread ------------------------------------------------------

/* The job has ended (rc, err set when it failed): its resources go. Its blocks go back and its
 * caller wakes in reap, once it is off the running list (the caller's return frees it). */
static void seq_end(gen_sched_t *s, seq_t *q) {
    q->state = SEQ_ENDED;
    kv_cache_destroy(&q->kv);
    sampler_destroy(&q->smp);
    tok_stream_destroy(&q->ts);
    mem_free(q->txt.buf);
    q->txt.buf = NULL;
    mem_free_aligned(q->host);
    q->host = NULL;
    k_device_free(k_ctx_device(s->ctx), q->own);
    q->own = NULL;
}

static void seq_fail(gen_sched_t *s, seq_t *q, int rc, const char *err) {
    q->rc = rc;
    snprintf(q->err, sizeof q->err, "%s", err);
    seq_end(s, q);
}

/* Admitted: the cache, sampler and text state. */
static int seq_open(gen_sched_t *s, seq_t *q, char *err) {
    const hf_config_t *cfg = gen_model_config(s->m);
    const tok_t *tok = gen_model_tokenizer(s->m);
    for (int i = 0; i < cfg->text.n_eos; i++) q->eos[q->n_eos++] = cfg->text.eos_ids[i];
    if (!q->n_eos && tok_eos(tok) >= 0) q->eos[q->n_eos++] = tok_eos(tok);
    for (int e = 0; e < q->n_eos; e++)
        if (q->eos[e] >= 0 && q->eos[e] < s->V) q->mask[q->n_mask++] = q->eos[e];
    q->max_new = q->p.max_tokens < q->cap - q->pr->length + 1 ? q->p.max_tokens : q->cap - q->pr->length + 1;
    char kerr[HIRED_ERR_LEN];
    if (!(q->kv = kv_cache_new_paged(s->pool, s->ctx, q->cap, kerr))) return hired_errf(err, HIRED_ENOMEM, "%s", kerr);
    q->smp = sampler_new(k_ctx_host(s->ctx), s->V);
    q->ts = tok_stream_new(tok, true);
    q->host = mem_alloc_aligned((size_t)s->V * sizeof(float));
    q->own = k_device_alloc(k_ctx_device(s->ctx), (size_t)s->V * sizeof(float));
    if (!q->smp || !q->ts || !q->host || !q->own) return hired_errf(err, HIRED_ENOMEM, "out of memory");
    q->txt = (gen_text_t){.stop = q->p.stop, .emit = q->emit, .user = q->user};
    q->st->kv_bytes = kv_cache_bytes(q->kv);
    q->st->prompt_tokens = q->pr->length;
    q->st->finish = GEN_FINISH_LENGTH;
    q->st->generated = 0;
    return HIRED_OK;
}

/* One prefill chunk of q: rows [prefilled, prefilled + chunk) — the chunks llm_forward_rows
 * itself would run for the whole prompt, so the cache gets the same bits. */
static int seq_prefill(gen_sched_t *s, seq_t *q, int chunk, char *err) {
    const int L = q->pr->length, r0 = q->prefilled, n = L - r0 < chunk ? L - r0 : chunk;
    const bool last = r0 + n == L;
    int32_t row = n - 1;
    if (r0 == 0) q->t_prefill = clock_ms();
    int rc = llm_forward_rows(s->llm, s->ctx, q->kv, q->pr->embeds + (size_t)r0 * s->D, n, last ? &row : NULL,
                              last ? 1 : 0, last ? q->own : NULL, err);
    if (rc) return rc;
    q->prefilled += n;
    if (last) {
        q->st->ms_prefill = clock_ms() - q->t_prefill;
        q->t_decode = clock_ms();
        q->cur = q->own;
        q->fresh = true;
        q->state = SEQ_DECODE;
    }
    return HIRED_OK;
}

/* Detokenises what is held back and sets the finish reason and decode time. */
static void seq_finish_text(seq_t *q) {
    if (!q->txt.stopped && !q->txt.cancelled) {
        size_t n = 0;
        const char *rest = tok_stream_finish(q->ts, &n);
        if (!rest || gen_text_append(&q->txt, rest, n)) {
            q->rc = hired_errf(q->err, HIRED_ENOMEM, "out of memory while detokenising");
            return;
        }
        gen_text_flush(&q->txt, -1, true);
    }
    if (q->txt.stopped) q->st->finish = GEN_FINISH_STOP;
    else if (q->txt.cancelled) q->st->finish = GEN_FINISH_CALLBACK;
    q->st->ms_decode = clock_ms() - q->t_decode;
}

/* Draws q's next token from its fresh logits, streams it; true when the job goes on (q->feed
 * is then the token the next batch runs). Mirrors gen_decode's loop step by step. */
static bool seq_sample(gen_sched_t *s, seq_t *q) {
    q->fresh = false;
    int32_t t;
    int rc = k_ctx_download(s->ctx, q->host, q->cur, (size_t)s->V * sizeof(float));
    if (rc) {
        k_ctx_report(s->ctx, rc, q->err, "sampling");
        q->rc = rc;
        return false;
    }
    if (q->step < q->p.min_tokens) /* HF min_new_tokens */
        for (int e = 0; e < q->n_mask; e++) q->host[q->mask[e]] = -INFINITY;
    if ((rc = sampler_sample(q->smp, &q->p.sampling, q->host, (uint64_t)q->step, &t))) {
        q->rc = hired_errf(q->err, rc, "sampling failed");
        return false;
    }
    if (q->step++ == 0) q->st->ms_first = clock_ms() - q->t_submit;
    if (q->tokens) q->tokens[q->st->generated] = t;
    q->st->generated++;
    for (int e = 0; e < q->n_eos; e++)
        if (t == q->eos[e]) {
            q->st->finish = GEN_FINISH_EOS;
            q->st->ms_decode = clock_ms() - q->t_decode;
            return false;
        }
    size_t n = 0;
    const char *piece = tok_stream_feed(q->ts, t, &n);
    if (!piece || gen_text_append(&q->txt, piece, n)) {
        q->rc = hired_errf(q->err, HIRED_ENOMEM, "out of memory while detokenising");
        return false;
    }
    gen_text_flush(&q->txt, t, false);
    if (q->txt.stopped || q->txt.cancelled || q->step >= q->max_new) {
        seq_finish_text(q);
        return false;
    }
    q->feed = t;
    return true;
}

// ---- the scheduler thread --------------------------------------------------------------------------

static int count_running(const gen_sched_t *s) {
    int n = 0;
    for (const seq_t *q = s->running; q; q = q->next) n++;
    return n;
}

/* Moves waiting jobs that fit into the running list, in arrival order (the head waits for
 * room rather than letting later, smaller jobs pass it forever). Jobs cancelled while waiting
 * end here without running. */
static void admit(gen_sched_t *s) {
    int n_running = count_running(s);
    pthread_mutex_lock(&s->mu);
    for (seq_t **pp = &s->waiting_head; *pp;) {
        seq_t *q = *pp;
        if (q->cancelled && q->cancelled(q->user)) {
            *pp = q->next;
            q->st->finish = GEN_FINISH_CALLBACK;
            q->state = SEQ_ENDED;
            q->ended = true; /* q may be gone once mu is released */
            s->stats.waiting--;
            pthread_cond_broadcast(&s->ended);
        } else {
            pp = &q->next;
        }
    }
    seq_t **tail = &s->running;
    while (*tail) tail = &(*tail)->next;
    while (s->waiting_head) {
        seq_t *q = s->waiting_head;
        if (n_running >= s->o.max_seqs || s->blocks_used + q->blocks > s->blocks_total) break;
        s->waiting_head = q->next;
        s->blocks_used += q->blocks;
        s->stats.waiting--;
        q->state = SEQ_PREFILL;
        q->next = NULL;
        *tail = q; /* the oldest prefill goes first */
        tail = &q->next;
        n_running++;
    }
    s->waiting_tail = NULL;
    for (seq_t *q = s->waiting_head; q; q = q->next) s->waiting_tail = q;
    s->stats.running = n_running;
    if (n_running > s->stats.peak_running) s->stats.peak_running = n_running;
    s->stats.kv_blocks_used = s->blocks_used;
    pthread_mutex_unlock(&s->mu);
}

/* Takes ended jobs off the running list, returns their blocks and wakes their callers. */
static void reap(gen_sched_t *s) {
    seq_t **pp = &s->running;
    while (*pp) {
        seq_t *q = *pp;
        if (q->state != SEQ_ENDED) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        pthread_mutex_lock(&s->mu);
        s->blocks_used -= q->blocks;
        s->stats.running--;
        q->ended = true; /* q may be gone once mu is released */
        pthread_cond_broadcast(&s->ended);
        pthread_mutex_unlock(&s->mu);
    }
}

static void step(gen_sched_t *s) {
    char err[HIRED_ERR_LEN];
    /* the scratch of the last step goes; the arena grows to the largest step so far, so once
     * warm a step allocates nothing */
    k_ctx_reset(s->ctx);
    /* opening admitted jobs, cancellations */
    for (seq_t *q = s->running; q; q = q->next) {
        if (q->state == SEQ_PREFILL && !q->kv) {
            int rc = seq_open(s, q, err);
            if (rc) {
                seq_fail(s, q, rc, err);
                continue;
            }
        }
        if (q->cancelled && q->cancelled(q->user)) {
            q->txt.cancelled = true;
            q->st->finish = GEN_FINISH_CALLBACK;
            if (q->t_decode > 0) q->st->ms_decode = clock_ms() - q->t_decode;
            seq_end(s, q);
        }
    }
    reap(s);
    /* prefill: a budget of one chunk's rows per step, spent on the oldest prompts first in the
     * chunks each would get alone (a chunk that does not fit what is left waits for the next
     * step; the first always runs) */
    double t0 = clock_ms(), ms_prefill = 0, ms_decode = 0;
    const int chunk = llm_prefill_chunk(s->llm);
    int budget = chunk;
    for (seq_t *q = s->running; q && budget > 0; q = q->next)
        while (q->state == SEQ_PREFILL) {
            const int n = q->pr->length - q->prefilled < chunk ? q->pr->length - q->prefilled : chunk;
            if (n > budget && budget < chunk) break;
            int rc = seq_prefill(s, q, chunk, err);
            budget -= n;
            if (rc) {
                seq_fail(s, q, rc, err);
                break;
            }
            if (budget <= 0) break;
        }
    if (budget < chunk) ms_prefill = clock_ms() - t0;
    /* sampling */
    for (seq_t *q = s->running; q; q = q->next)
        if (q->state == SEQ_DECODE && q->fresh && !seq_sample(s, q)) seq_end(s, q);
    reap(s);
    /* the decode batch */
    int n = 0;
    for (seq_t *q = s->running; q; q = q->next)
        if (q->state == SEQ_DECODE) {
            s->bseq[n] = q;
            s->bkv[n] = q->kv;
            s->bids[n++] = q->feed;
        }
    if (n) {
        t0 = clock_ms();
        int rc = llm_embed(s->llm, s->ctx, s->bids, n, s->bx, err);
        if (!rc) rc = llm_forward_batch(s->llm, s->ctx, s->bkv, s->bx, n, s->blogits, err);
        ms_decode = clock_ms() - t0;
        for (int i = 0; i < n; i++) {
            if (rc) {
                seq_fail(s, s->bseq[i], rc, err);
                continue;
            }
            s->bseq[i]->cur = s->blogits + (size_t)i * s->V;
            s->bseq[i]->fresh = true;
        }
        reap(s);
    }
    pthread_mutex_lock(&s->mu);
    s->stats.batch = n;
    s->stats.prefill_ms += ms_prefill;
    s->stats.decode_ms += ms_decode;
    if (n) {
        s->stats.steps++;
        s->stats.rows += (uint64_t)n;
    }
    gen_sched_stats_t now = s->stats;
    now.kv_blocks_used = s->blocks_used;
    pthread_mutex_unlock(&s->mu);
    if (s->o.on_step) s->o.on_step(s->o.step_user, &now);
}

static void *sched_main(void *arg) {
    gen_sched_t *s = arg;
    if (s->o.omp_threads && s->o.threads > 0) s->o.omp_threads(s->o.threads);
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->stop && !s->waiting_head && !s->running) pthread_cond_wait(&s->work, &s->mu);
        bool stop = s->stop && !s->waiting_head && !s->running;
        pthread_mutex_unlock(&s->mu);
        if (stop) break;
        admit(s);
        if (s->running) step(s);
    }
    return NULL;
}

// ---- construction ----------------------------------------------------------------------------------

gen_sched_t *gen_sched_new(gen_model_t *m, const gen_sched_opts_t *o, char *err) {
    if (!m || !o || o->max_seqs < 1 || o->kv_bytes == 0) {
        hired_errf(err, HIRED_EINVAL, "scheduler: needs a model, max_seqs ≥ 1 and a KV pool");
        return NULL;
    }
    gen_sched_t *s = mem_calloc(1, sizeof *s);
    if (!s) {
        hired_errf(err, HIRED_ENOMEM, "scheduler: out of memory");
        return NULL;
    }
    const hf_text_config_t *tc = &gen_model_config(m)->text;
    s->m = m;
    s->llm = gen_model_llm(m);
    s->o = *o;
    s->V = tc->vocab;
    s->D = tc->hidden;
    s->block_bytes = kv_cache_bytes_for(o->kv_dtype, tc->layers, tc->kv_heads * tc->head_dim, GEN_SCHED_BLOCK);
    size_t nb = s->block_bytes ? o->kv_bytes / s->block_bytes : 0;
    s->blocks_total = nb > (size_t)1 << 30 ? 1 << 30 : (int)nb;
    s->stats.kv_blocks_total = s->blocks_total;
    s->stats.kv_block_bytes = s->block_bytes;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work, NULL);
    pthread_cond_init(&s->ended, NULL);
    const int B = o->max_seqs;
    s->bkv = mem_calloc((size_t)B, sizeof *s->bkv);
    s->bseq = mem_calloc((size_t)B, sizeof *s->bseq);
    s->bids = mem_calloc((size_t)B, sizeof *s->bids);
    if (!s->blocks_total) {
        hired_errf(err, HIRED_EINVAL, "scheduler: a KV pool of %zu bytes holds no block of %zu bytes", o->kv_bytes,
                   s->block_bytes);
        gen_sched_destroy(&s);
        return NULL;
    }
    if (!s->bkv || !s->bseq || !s->bids || !(s->ctx = k_ctx_new(llm_device(s->llm), err))) {
        if (s->bkv && s->bseq && s->bids) hired_errf(err, HIRED_ENOMEM, "scheduler: out of memory");
        gen_sched_destroy(&s);
        return NULL;
    }
    if (!(s->pool = kv_pool_new(llm_device(s->llm), o->kv_dtype, tc->layers, tc->kv_heads * tc->head_dim, s->blocks_total,
                                GEN_SCHED_BLOCK, err))) {
        gen_sched_destroy(&s);
        return NULL;
    }
    s->blogits = k_device_alloc(llm_device(s->llm), (size_t)B * s->V * sizeof(float));
    s->bx = k_device_alloc(llm_device(s->llm), (size_t)B * s->D * sizeof(float));
    if (!s->blogits || !s->bx || pthread_create(&s->th, NULL, sched_main, s)) {
        hired_errf(err, HIRED_ENOMEM, "scheduler: out of memory or threads");
        gen_sched_destroy(&s);
        return NULL;
    }
    s->started = true;
    return s;
}

void gen_sched_destroy(gen_sched_t **ps) {
    if (!ps || !*ps) return;
    gen_sched_t *s = *ps;
    if (s->started) {
        pthread_mutex_lock(&s->mu);
        s->stop = true;
        pthread_cond_broadcast(&s->work);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->th, NULL);
    }
    k_ctx_destroy(&s->ctx);
    kv_pool_destroy(&s->pool);
    k_device_free(llm_device(s->llm), s->blogits);
    k_device_free(llm_device(s->llm), s->bx);
    pthread_cond_destroy(&s->ended);
    pthread_cond_destroy(&s->work);
    pthread_mutex_destroy(&s->mu);
    mem_free(s->bkv);
    mem_free(s->bseq);
    mem_free(s->bids);
    mem_free(s);
    *ps = NULL;
}

// ---- callers ---------------------------------------------------------------------------------------

int gen_sched_run(gen_sched_t *s, const gen_prompt_t *pr, const gen_params_t *p, gen_emit_fn emit,
                  gen_cancel_fn cancelled, void *user, int32_t *tokens, gen_stats_t *st, char *err) {
    gen_stats_t dummy;
    if (!st) st = &dummy;
    const hf_text_config_t *tc = &gen_model_config(s->m)->text;
    if (!pr || !p || p->max_tokens < 1)
        return hired_errf(err, HIRED_EINVAL, "max_tokens %d must be at least 1", p ? p->max_tokens : 0);
    const int L = pr->length;
    if (L < 1 || L > tc->max_pos)
        return hired_errf(err, HIRED_ERANGE, "prompt is %d tokens, the model's context is %d", L, tc->max_pos);
    seq_t q = {.pr = pr, .p = *p, .emit = emit, .cancelled = cancelled, .user = user, .tokens = tokens, .st = st,
               .t_submit = clock_ms()};
    q.cap = gen_kv_positions(s->m, L, p->max_tokens);
    if (tc->sliding_window > 0 && q.cap > tc->sliding_window)
        return hired_errf(err, HIRED_EUNSUPPORTED, "%d positions exceed the sliding window of %d (not implemented)",
                          q.cap, tc->sliding_window);
    q.blocks = blocks_for(q.cap);
    if (q.blocks > s->blocks_total)
        return hired_errf(err, HIRED_ERANGE,
                          "KV cache: the job needs %d positions (prompt %d + max_tokens %d), %zu bytes, more than the "
                          "decoder's whole KV pool of %zu bytes (%d positions)",
                          q.cap, L, p->max_tokens, (size_t)q.blocks * s->block_bytes,
                          (size_t)s->blocks_total * s->block_bytes, s->blocks_total * GEN_SCHED_BLOCK);
    pthread_mutex_lock(&s->mu);
    if (s->waiting_tail)
        s->waiting_tail->next = &q;
    else
        s->waiting_head = &q;
    s->waiting_tail = &q;
    s->stats.waiting++;
    pthread_cond_broadcast(&s->work);
    while (!q.ended) pthread_cond_wait(&s->ended, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (q.rc) snprintf(err, HIRED_ERR_LEN, "%s", q.err);
    return q.rc;
}

void gen_sched_get_stats(gen_sched_t *s, gen_sched_stats_t *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->stats;
    out->kv_blocks_used = s->blocks_used;
    pthread_mutex_unlock(&s->mu);
}

void gen_sched_reset_peak(gen_sched_t *s) {
    pthread_mutex_lock(&s->mu);
    s->stats.peak_running = s->stats.running;
    pthread_mutex_unlock(&s->mu);
}
