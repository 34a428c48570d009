/* sampler.c — see sampler.h. The candidate list is built in descending-logit order by k_topk
 * (k = 1, top_k or the whole vocabulary), then probabilities in double, then one inverse-CDF
 * draw. */
#include "sampler.h"

#include <math.h>

#include "mem.h"
#include "topk.h"

struct sampler {
    k_ctx_t *host; /* borrowed */
    int n;
    int32_t *idx;  /* [n] candidate ids */
    double *prob;  /* [n] candidate probabilities */
};

sampler_t *sampler_new(k_ctx_t *host, int n_vocab) {
    if (n_vocab <= 0 || !host) return NULL;
    sampler_t *s = mem_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->host = host;
    s->n = n_vocab;
    s->idx = mem_alloc((size_t)n_vocab * sizeof *s->idx);
    s->prob = mem_alloc((size_t)n_vocab * sizeof *s->prob);
    if (!s->idx || !s->prob) sampler_destroy(&s);
    return s;
}

void sampler_destroy(sampler_t **ps) {
    if (!ps || !*ps) return;
    mem_free((*ps)->idx);
    mem_free((*ps)->prob);
    mem_free(*ps);
    *ps = NULL;
}

static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double sampler_uniform(uint64_t seed, uint64_t step) {
    /* two rounds keyed by seed then step: distinct (seed, step) pairs give independent streams */
    uint64_t z = mix64(seed + 0x9e3779b97f4a7c15ull);
    z = mix64(z ^ (step * 0xd1b54a32d192ed03ull + 0x632be59bd9b4e019ull));
    return (double)(z >> 11) * (1.0 / 9007199254740992.0);
}

/* Fills s->idx[0..count) with the candidates in descending order (value descending, ties by
 * ascending index, NaN last: topk.h's order) and s->prob with their renormalised
 * probabilities; returns count, or a negative HIRED_E* when the top-k op failed. */
static int build(sampler_t *s, const sampler_params_t *p, const float *logits) {
    const int n = s->n;
    const bool greedy = !(p->temperature > 0);
    const int count0 = greedy ? 1 : p->top_k > 0 && p->top_k < n ? p->top_k : n;
    k_topk_args a = {.n = n, .k = count0, .x = logits, .idx = s->idx};
    int rc = k_topk(s->host, &a);
    if (rc) return rc;
    int count = count0;
    if (greedy) {
        s->prob[0] = 1.0;
        return 1;
    }
    /* drop NaNs (sorted last) */
    while (count > 1 && logits[s->idx[count - 1]] != logits[s->idx[count - 1]]) count--;
    const double inv_t = 1.0 / p->temperature, mx = (double)logits[s->idx[0]] * inv_t;
    double sum = 0;
    for (int i = 0; i < count; i++) sum += (s->prob[i] = exp((double)logits[s->idx[i]] * inv_t - mx));
    for (int i = 0; i < count; i++) s->prob[i] /= sum;
    if (p->top_p > 0 && p->top_p < 1) {
        double above = 0;
        int keep = 0;
        while (keep < count && (keep == 0 || above < p->top_p)) above += s->prob[keep++];
        count = keep;
        for (int i = 0; i < count; i++) s->prob[i] /= above;
    }
    return count;
}

int sampler_sample(sampler_t *s, const sampler_params_t *p, const float *logits, uint64_t step, int32_t *token) {
    int count = build(s, p, logits);
    if (count < 0) return count;
    *token = s->idx[count - 1]; /* u above the rounded total */
    if (count == 1) {
        *token = s->idx[0];
        return 0;
    }
    double u = sampler_uniform(p->seed, step), acc = 0;
    for (int i = 0; i < count; i++) {
        acc += s->prob[i];
        if (u < acc) {
            *token = s->idx[i];
            break;
        }
    }
    return 0;
}

int sampler_candidates(sampler_t *s, const sampler_params_t *p, const float *logits, int32_t *ids, float *probs) {
    int count = build(s, p, logits);
    if (count < 0) return 0;
    for (int i = 0; i < count; i++) {
        ids[i] = s->idx[i];
        probs[i] = (float)s->prob[i];
    }
    return count;
}
