/* sampler.c — see sampler.h. The candidate list is built in descending-logit order (k_topk when
 * top-k is on, else a full index sort), then probabilities in double, then one inverse-CDF draw. */
#include "sampler.h"

#include <math.h>
#include <stdlib.h>

#include "mem.h"
#include "topk.h"

struct sampler {
    int n;
    int32_t *idx;  /* [n] candidate ids */
    double *prob;  /* [n] candidate probabilities */
};

sampler_t *sampler_new(int n_vocab) {
    if (n_vocab <= 0) return NULL;
    sampler_t *s = mem_calloc(1, sizeof *s);
    if (!s) return NULL;
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

int sampler_argmax(const float *x, int n) {
    int best = -1;
    for (int i = 0; i < n; i++)
        if (x[i] == x[i] && (best < 0 || x[i] > x[best])) best = i;
    return best < 0 ? 0 : best;
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

/* Descending value, ties by ascending index; NaN last. qsort has no context argument, so the
 * logits being sorted are reached through a thread-local pointer. */
static _Thread_local const float *g_keys;
static int cmp_desc(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    float x = g_keys[a], y = g_keys[b];
    int xn = x != x, yn = y != y;
    if (xn != yn) return xn - yn;
    if (!xn && x != y) return x > y ? -1 : 1;
    return (a > b) - (a < b);
}

/* Fills s->idx[0..count) with the candidates in descending order and s->prob with their
 * renormalised probabilities; returns count. */
static int build(sampler_t *s, const sampler_params_t *p, const float *logits) {
    const int n = s->n;
    if (!(p->temperature > 0)) {
        s->idx[0] = sampler_argmax(logits, n);
        s->prob[0] = 1.0;
        return 1;
    }
    int count;
    if (p->top_k > 0 && p->top_k < n) {
        k_topk_args a = {.n = n, .k = p->top_k, .x = logits, .idx = s->idx};
        k_topk_cpu(&a);
        count = p->top_k;
    } else {
        for (int i = 0; i < n; i++) s->idx[i] = i;
        g_keys = logits;
        qsort(s->idx, (size_t)n, sizeof *s->idx, cmp_desc);
        count = n;
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

int sampler_sample(sampler_t *s, const sampler_params_t *p, const float *logits, uint64_t step) {
    int count = build(s, p, logits);
    if (count == 1) return s->idx[0];
    double u = sampler_uniform(p->seed, step), acc = 0;
    for (int i = 0; i < count; i++) {
        acc += s->prob[i];
        if (u < acc) return s->idx[i];
    }
    return s->idx[count - 1]; /* u above the rounded total */
}

int sampler_candidates(sampler_t *s, const sampler_params_t *p, const float *logits, int32_t *ids, float *probs) {
    int count = build(s, p, logits);
    for (int i = 0; i < count; i++) {
        ids[i] = s->idx[i];
        probs[i] = (float)s->prob[i];
    }
    return count;
}
