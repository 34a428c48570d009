/* sampler.h — choosing the next token from a row of logits: greedy, temperature, top-k, top-p.
 *
 * Order (as transformers' logits processors): temperature scales the logits, top-k keeps the k
 * largest, top-p keeps the smallest prefix (by descending probability) whose mass reaches p —
 * a token is kept when the mass of the tokens ranked above it is < p, so at least one token
 * survives. Ties rank by lower index. Then one draw from the renormalised distribution.
 * Randomness is counter-based: the uniform for step s of a job with seed S is a pure function
 * of (S, s) (splitmix64 of both), so a re-run job, or one run with another thread count or
 * interleaving, draws the same numbers. temperature ≤ 0 means greedy: the first index of the
 * maximum (NaN never wins; index 0 when every value is NaN).
 * Runs on the host, on a host copy of the logits (the decode loop downloads them: its explicit
 * transfer point); the ordering of candidates is k_topk through a host context (k_ctx_host):
 * k = 1 for greedy, top_k, or the whole vocabulary when top-k is off.
 * Not here: stop conditions and detokenisation (generate.h). */
#ifndef HIRED_SAMPLER_H
#define HIRED_SAMPLER_H

#include <stdint.h>

#include "backend.h"

typedef struct {
    float temperature; /* ≤ 0: greedy */
    int top_k;         /* ≤ 0: off */
    float top_p;       /* ≥ 1 or ≤ 0: off */
    uint64_t seed;     /* per job */
} sampler_params_t;

typedef struct sampler sampler_t;

/* A sampler for rows of n_vocab logits (holds sorting scratch) whose ops run on host (a host
 * context, borrowed: it must outlive the sampler). Caller owns the result (sampler_destroy);
 * NULL on bad size or out of memory. */
sampler_t *sampler_new(k_ctx_t *host, int n_vocab);
void sampler_destroy(sampler_t **s);

/* The uniform in [0, 1) that step `step` of a job seeded `seed` uses (53 random bits). */
double sampler_uniform(uint64_t seed, uint64_t step);

/* The token for decode step `step` from host logits[n_vocab] (borrowed, not modified) into
 * *token. 0, or the top-k op's failure (HIRED_E*, message in k_ctx_err of the host context). */
int sampler_sample(sampler_t *s, const sampler_params_t *p, const float *logits, uint64_t step, int32_t *token);

/* The candidate set sampling would draw from: writes the kept token ids (best first) into ids
 * and their probabilities into probs (each array n_vocab long); returns the count (0 when the
 * top-k op failed). For tests of the top-k / top-p masks. Greedy returns the single argmax
 * with probability 1. */
int sampler_candidates(sampler_t *s, const sampler_params_t *p, const float *logits, int32_t *ids, float *probs);

#endif
