/* test_zero_alloc — the per-token and per-layer paths allocate nothing once warm: every heap
 * allocation of the project goes through common/mem.h, whose counter (mem_alloc_count, reset
 * by mem_fail_after(-1, ...)) is read around the work.
 *
 *   vision: vision_encode of the tiny LLaVA-1.5 tower (24 layers) on a context reserved with
 *     vision_arena_bytes makes 0 allocations; on a cold context the first encode allocates
 *     (the counter sees the arena's overflow) and, after one k_ctx_reset, the next makes 0.
 *   decode: a job opened with gen_job_open (prefill; the job reserves its arena) runs
 *     gen_job_sample + gen_job_feed steps with 0 allocations each, greedy and sampled (top-k and
 *     the whole-vocabulary sort), with min_tokens masking EOS through the mask op.
 *   batched decode: three jobs on a continuous-batching scheduler (gen_sched.h); once all
 *     three decode together, a whole step (sampling, streaming the text, the batch's forward
 *     pass over the paged KV cache) makes 0 allocations (counted between the scheduler's
 *     step callbacks; the test's own threads are blocked meanwhile).
 * Also: the counter is not blind (one mem_alloc counts one). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "backend.h"
#include "err.h"
#include "gen_sched.h"
#include "generate.h"
#include "mem.h"
#include "st.h"
#include "test.h"
#include "vision.h"

#define STEPS 12

static long allocs_since_reset(void) { return mem_alloc_count(); }
static void reset_count(void) { mem_fail_after(-1, false); }

static void test_counter(void) {
    reset_count();
    void *p = mem_alloc(16);
    CHECK_EQ_INT(allocs_since_reset(), 1);
    mem_free(p);
}

static void test_vision(k_device_t *dev, const char *dir) {
    char err[HIRED_ERR_LEN];
    hf_config_t cfg;
    st_model_t *st = NULL;
    vision_t *v = NULL;
    k_ctx_t *ctx = k_ctx_new(dev, err), *cold = k_ctx_new(dev, err);
    CHECK_MSG(ctx && cold && hf_config_load(dir, &cfg, err) == 0 && (st = st_model_open(dir, err)) &&
                  (v = vision_load(st, &cfg, dev, -1, err)),
              "%s", err);
    if (!v) goto done;
    const int S = cfg.vision.image_size;
    float *px = mem_alloc_aligned((size_t)3 * S * S * sizeof(float)); /* [1, 3, S, S] */
    CHECK(px != NULL);
    if (!px) goto done;
    for (int i = 0; i < 3 * S * S; i++) px[i] = (float)(((unsigned)i * 7919u) % 1000u) / 500.0f - 1.0f;
    vision_opts_t o = {.n_attn_layers = 2, .attn_layers = {0, vision_feature_hidden_index(v) - 1}};
    vision_out_t out;

    /* reserved up front: no allocation in any layer, from the first encode */
    CHECK_EQ_INT(k_ctx_reserve(ctx, vision_arena_bytes(v, ctx, 1, &o)), 0);
    for (int r = 0; r < 2; r++) {
        reset_count();
        int rc = vision_encode(v, ctx, px, 1, &o, &out, err);
        long n = allocs_since_reset();
        CHECK_MSG(rc == 0, "%s", err);
        CHECK_MSG(n == 0, "vision_encode on a reserved arena made %ld allocations (run %d)", n, r);
        k_ctx_reset(ctx);
    }

    /* cold: the first encode overflows the arena (counted), the reset grows it, the next is free */
    reset_count();
    CHECK_EQ_INT(vision_encode(v, cold, px, 1, &o, &out, err), 0);
    long first = allocs_since_reset();
    CHECK_MSG(first > 0, "a cold context's first encode made no allocation: the counter is blind");
    k_ctx_reset(cold);
    reset_count();
    CHECK_EQ_INT(vision_encode(v, cold, px, 1, &o, &out, err), 0);
    long second = allocs_since_reset();
    CHECK_MSG(second == 0, "after warm-up vision_encode made %ld allocations (the first made %ld)", second, first);
    printf("vision: %ld allocations cold, 0 warm (%d layers)\n", first, vision_feature_hidden_index(v));
    mem_free_aligned(px);
done:
    vision_destroy(&v);
    st_model_close(&st);
    k_ctx_destroy(&ctx);
    k_ctx_destroy(&cold);
}

/* STEPS decode steps of one job; returns the allocations made by steps 1.. (step 0 is warm-up). */
static long decode_steps(const gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr, const gen_params_t *p) {
    char err[HIRED_ERR_LEN];
    gen_job_t *j = NULL;
    int rc = gen_job_open(m, ctx, pr, p, NULL, 0, NULL, &j, NULL, err);
    CHECK_MSG(rc == 0, "%s", err);
    if (rc) return -1;
    long n = 0;
    for (int s = 0; s < STEPS && !rc && gen_job_left(j) > 1; s++) {
        if (s == 1) reset_count();
        int32_t t;
        rc = gen_job_sample(j, &t, err);
        if (!rc) rc = gen_job_feed(j, t, err);
        CHECK_MSG(rc == 0, "step %d: %s", s, err);
    }
    n = allocs_since_reset();
    gen_job_close(&j);
    return n;
}

/* The model at dir on dev and a context for it (*ctx); NULL (and no context) on failure. */
static gen_model_t *load_model(k_device_t *dev, const char *dir, k_ctx_t **ctx) {
    char err[HIRED_ERR_LEN];
    *ctx = k_ctx_new(dev, err);
    gen_model_t *m = *ctx ? gen_model_load(dir, dev, err) : NULL;
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) k_ctx_destroy(ctx);
    return m;
}

/* Greedy, top-k and top-p: the sampler's paths (the whole-vocabulary sort among them). */
static const sampler_params_t k_modes[] = {{.temperature = 0},
                                           {.temperature = 0.8f, .top_k = 40, .seed = 3},
                                           {.temperature = 1.0f, .top_p = 0.9f, .seed = 4}};

/* The one question both decode tests ask, in the model's chat template. */
static int story_prompt(gen_model_t *m, k_ctx_t *ctx, const gen_params_t *p, gen_prompt_t *pr, char *err) {
    tpl_part_t part = {TPL_PART_TEXT, "Tell me a long story about a lighthouse keeper."};
    tpl_message_t msg = {"user", &part, 1};
    return gen_prompt_build_chat(m, ctx, NULL, 0, &msg, 1, p, pr, NULL, err);
}

static void test_decode(k_device_t *dev, const char *dir) {
    char err[HIRED_ERR_LEN];
    k_ctx_t *ctx = NULL;
    gen_model_t *m = load_model(dev, dir, &ctx);
    if (!m) return;
    gen_params_t p;
    gen_params_default(&p);
    p.max_tokens = STEPS + 4;
    p.min_tokens = STEPS + 4; /* EOS masked on every step: the mask op runs too */
    gen_prompt_t pr;
    CHECK_MSG(story_prompt(m, ctx, &p, &pr, err) == 0, "%s", err);
    for (size_t i = 0; i < ARRAY_LEN(k_modes); i++) {
        p.sampling = k_modes[i];
        long n = decode_steps(m, ctx, &pr, &p);
        CHECK_MSG(n == 0, "decode mode %zu: %ld allocations in %d warm steps", i, n, STEPS - 1);
    }
    printf("decode: 0 allocations per token over %d warm steps, greedy and sampled\n", STEPS - 1);
    gen_prompt_free(&pr);
    gen_model_destroy(&m);
    k_ctx_destroy(&ctx);
}

#define SCHED_JOBS ((int)ARRAY_LEN(k_modes)) /* one job per sampling mode */
#define SCHED_STEPS 64
typedef struct {
    long allocs[SCHED_STEPS];
    int batch[SCHED_STEPS];
    int n;
    atomic_bool release; /* the measured jobs all wait: the blocker ends, they start together */
} step_log_t;

/* After every step (scheduler thread): once all measured jobs wait behind the blocker, release
 * it and log each step from then on. */
static void on_step(void *user, const gen_sched_stats_t *st) {
    step_log_t *lg = user;
    if (!atomic_load(&lg->release)) {
        if (st->waiting >= SCHED_JOBS) atomic_store(&lg->release, true);
        return;
    }
    if (lg->n < SCHED_STEPS) lg->allocs[lg->n] = mem_alloc_count(), lg->batch[lg->n++] = st->batch;
}

static bool blocker_done(void *user) { return atomic_load(&((step_log_t *)user)->release); }

typedef struct {
    gen_sched_t *s;
    const gen_prompt_t *pr;
    gen_params_t p;
    gen_cancel_fn cancel;
    void *cancel_user;
    int rc;
} sched_job_t;

static void *sched_job(void *arg) {
    sched_job_t *j = arg;
    char err[HIRED_ERR_LEN];
    gen_stats_t st;
    j->rc = gen_sched_run(j->s, j->pr, &j->p, NULL, j->cancel, j->cancel_user, NULL, &st, err);
    return NULL;
}

static void test_sched(k_device_t *dev, const char *dir) {
    char err[HIRED_ERR_LEN];
    k_ctx_t *ctx = NULL;
    gen_model_t *m = load_model(dev, dir, &ctx);
    if (!m) return;
    gen_params_t p;
    gen_params_default(&p);
    p.max_tokens = p.min_tokens = 24;
    gen_prompt_t pr;
    CHECK_MSG(story_prompt(m, ctx, &p, &pr, err) == 0, "%s", err);
    /* A blocker job holds the whole KV pool (room for the measured jobs three times over) until
     * all three wait; then it ends and they are admitted, prefilled and decoded together, however
     * late their threads started. */
    static step_log_t lg;
    gen_params_t bp = p;
    bp.max_tokens = bp.min_tokens = SCHED_JOBS * (pr.length + p.max_tokens + GEN_SCHED_BLOCK);
    gen_sched_opts_t o = {.kv_bytes = gen_sched_job_bytes_for(m, TENSOR_DTYPE_F16, pr.length, bp.max_tokens),
                          .max_seqs = 4, .kv_dtype = TENSOR_DTYPE_F16, .on_step = on_step, .step_user = &lg};
    gen_sched_t *s = gen_sched_new(m, &o, err);
    CHECK_MSG(s != NULL, "%s", err);
    sched_job_t jobs[SCHED_JOBS + 1];
    pthread_t th[SCHED_JOBS + 1];
    jobs[SCHED_JOBS] = (sched_job_t){.s = s, .pr = &pr, .p = bp, .cancel = blocker_done, .cancel_user = &lg};
    CHECK(s && pthread_create(&th[SCHED_JOBS], NULL, sched_job, &jobs[SCHED_JOBS]) == 0);
    /* the blocker first: the measured jobs must queue behind it, not before it */
    gen_sched_stats_t now = {0};
    for (int waited = 0; s && now.running < 1 && waited < 60000; waited++) {
        gen_sched_get_stats(s, &now);
        if (now.running < 1) usleep(1000);
    }
    CHECK_MSG(now.running == 1, "the blocker was never admitted");
    for (int i = 0; s && i < SCHED_JOBS; i++) {
        jobs[i] = (sched_job_t){.s = s, .pr = &pr, .p = p};
        jobs[i].p.sampling = k_modes[i];
        CHECK(pthread_create(&th[i], NULL, sched_job, &jobs[i]) == 0);
    }
    for (int i = 0; s && i <= SCHED_JOBS; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].rc, 0);
    }
    CHECK_MSG(atomic_load(&lg.release), "the measured jobs never all waited behind the blocker");
    /* steps in which all three decode, after a few to warm up (first tokens, arena growth); they
     * started together, so all but the first of their 24 steps qualify */
    int warm = 0, checked = 0;
    long worst = 0;
    for (int k = 1; k < lg.n; k++) {
        if (lg.batch[k] != SCHED_JOBS || lg.batch[k - 1] != SCHED_JOBS) continue;
        if (++warm <= 3) continue;
        long d = lg.allocs[k] - lg.allocs[k - 1];
        if (d > worst) worst = d;
        checked++;
    }
    CHECK_MSG(checked >= 10, "only %d steps with all %d jobs decoding (of %d steps)", checked, SCHED_JOBS, lg.n);
    CHECK_MSG(worst == 0, "a warm batched step made %ld allocations", worst);
    printf("batched decode: at most %ld allocations in each of %d warm steps of %d jobs (greedy and sampled)\n",
           worst, checked, SCHED_JOBS);
    gen_sched_destroy(&s);
    gen_prompt_free(&pr);
    gen_model_destroy(&m);
    k_ctx_destroy(&ctx);
}

int main(void) {
    char err[HIRED_ERR_LEN];
    k_device_t *dev = k_device_open("cpu", err);
    CHECK_MSG(dev != NULL, "%s", err);
    if (!dev) return test_summary();
    test_counter();
    test_vision(dev, test_fixture("models/llava15-tiny"));
    test_decode(dev, test_fixture("models/llava15-tiny"));
    test_sched(dev, test_fixture("models/llava15-tiny"));
    k_device_close(&dev);
    return test_summary();
}
