/* gen_sched.h — continuous batching of decode jobs on one device: one scheduler thread owns every
 * running sequence of a gen_model_t and advances them all together.
 *
 * Each step of the scheduler thread:
 *   1. admits waiting jobs in arrival order while the batch has room (max_seqs) and the KV pool
 *      has the job's blocks free: a job is admitted only when its whole cache — prompt +
 *      max_tokens − 1 positions, capped by the context (gen_kv_positions) — fits, so a running
 *      job never waits for memory and nothing is preempted; a job that could not fit even an
 *      empty pool is refused at once (HIRED_ERANGE naming both sizes);
 *   2. prefills up to one chunk's worth of rows (llm_set_prefill_chunk) of the jobs still in
 *      prefill, oldest first, each prompt in the very chunks it would get alone (whole prompts
 *      while they fit: a burst of short prompts joins the batch within a few steps; a long one
 *      goes one chunk per step), so no step stalls the others' tokens for more than one chunk;
 *   3. samples every job that has fresh logits with its own parameters, seed and step number,
 *      streams the text (stop strings held back, as gen_decode) and ends the jobs that stop;
 *   4. runs the next token of every decoding job as one batch (llm_forward_batch: the weights
 *      are read once per step for all of them).
 * The prefill chunk runs as its own pass, not mixed into the decode batch: a prompt's keys and
 * values then have the same bits whatever else runs (the prefill GEMMs' bits depend on their row
 * count), and the decode rows are row-invariant (matmul.h), so a job's tokens do not depend on
 * what else is in the batch: with the same seed it gives the same tokens alone or batched. With
 * F16/BF16 weights on a CPU with the AVX2 kernels they are also gen_decode's tokens.
 *
 * KV pool: kv_bytes of cache, allocated once when the scheduler starts, in blocks of
 * GEN_SCHED_BLOCK positions (all layers, keys and values, in kv_dtype; model/kvcache.h). A job
 * takes the blocks its cache needs for its whole life, wherever they lie in the pool (its
 * block table says which; attention reads through it), and gives them back when it ends, so
 * the pool never fragments and no job allocates KV memory. At HiRED budget 0.2 a job's prompt
 * is about a fifth of the image tokens, so the same pool runs several times as many jobs at
 * once.
 *
 * Threads: gen_sched_run may be called from any number of threads at once; each call blocks
 * until its job has ended (the prompt is borrowed until then; emit and cancelled are called on
 * the scheduler thread). Not here: the prompt (generate.h), the wire (the decoder worker). */
#ifndef HIRED_GEN_SCHED_H
#define HIRED_GEN_SCHED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "generate.h"

#define GEN_SCHED_BLOCK 16 /* KV positions per block */

struct gen_sched_stats;

typedef struct gen_sched gen_sched_t;

typedef struct {
    size_t kv_bytes;         /* the KV pool (> 0) */
    int max_seqs;            /* jobs in the batch at most, ≥ 1 */
    tensor_dtype_t kv_dtype; /* the cache's element type (F32 on the CPU backend today) */
    void (*omp_threads)(int n); /* called on the scheduler thread with threads when set */
    int threads;
    /* Called on the scheduler thread after every step with the counters (may be NULL). */
    void (*on_step)(void *user, const struct gen_sched_stats *st);
    void *step_user;
} gen_sched_opts_t;

/* Polled once per step for a running or waiting job: true ends it (finish "callback"). */
typedef bool (*gen_cancel_fn)(void *user);

/* Starts the scheduler thread for m (borrowed; must outlive the scheduler) with its own context
 * on m's device. NULL with err on bad options or no memory. */
gen_sched_t *gen_sched_new(gen_model_t *m, const gen_sched_opts_t *o, char *err);
/* Stops and joins the thread. No gen_sched_run may be in progress. NULL-safe; sets *s = NULL. */
void gen_sched_destroy(gen_sched_t **s);

/* Decodes pr (borrowed until return) with p, as gen_decode does — streaming through emit (may
 * be NULL), sampled ids into tokens (may be NULL; room for p->max_tokens), the prefill /
 * decode / kv / generated / finish fields of st (may be NULL) — as one sequence of the batch.
 * Blocks until the job has ended. HIRED_ERANGE when its cache can never fit the pool (at once),
 * HIRED_EINVAL on bad parameters, or a forward failure (HIRED_ECUDA ...), with err. */
int gen_sched_run(gen_sched_t *s, const gen_prompt_t *pr, const gen_params_t *p, gen_emit_fn emit,
                  gen_cancel_fn cancelled, void *user, int32_t *tokens, gen_stats_t *st, char *err);

/* Bytes of KV pool a job with a prompt of length positions and max_tokens new tokens takes
 * (whole blocks). */
size_t gen_sched_job_bytes(const gen_sched_t *s, int length, int max_tokens);
/* The same for model m and a cache of kv_dtype, without a scheduler (whose pool it would
 * allocate). */
size_t gen_sched_job_bytes_for(gen_model_t *m, tensor_dtype_t kv_dtype, int length, int max_tokens);

typedef struct gen_sched_stats {
    int running;           /* jobs admitted (prefilling or decoding) */
    int waiting;           /* jobs waiting for KV blocks or a batch slot */
    int batch;             /* decode rows of the last step */
    int peak_running;      /* most jobs admitted at once since the start */
    int kv_blocks_used, kv_blocks_total;
    size_t kv_block_bytes; /* bytes per block */
    uint64_t steps;        /* decode batches run */
    uint64_t rows;         /* decode rows run (sum of batch sizes) */
    double decode_ms;      /* time in the decode batches' forward passes */
    double prefill_ms;     /* time in prefill chunks */
} gen_sched_stats_t;
void gen_sched_get_stats(gen_sched_t *s, gen_sched_stats_t *out);
/* Resets peak_running to the current count (benchmarks measure one phase at a time). */
void gen_sched_reset_peak(gen_sched_t *s);

#endif
