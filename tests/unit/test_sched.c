/* test_sched — the continuous-batching scheduler (pipeline/gen_sched.h) on both fixture models,
 * with a mix of prompt lengths (text-only, HiRED budgets 0.2 / 0.5 / 1.0 of synthetic visual
 * records), greedy and sampled settings, min_tokens and a stop string, prefilled in small
 * chunks so prompts interleave with other jobs' decode steps:
 *   - each job run alone on the scheduler gives the same tokens and text when all run at once
 *     from several threads (and the batches really held several jobs: peak and rows per step);
 *   - with the AVX2 kernels and F16 weights those are gen_decode's own tokens (batched decode
 *     rows are bit-identical to solo decode steps);
 *   - cancelling one job mid-batch ends it (finish "callback", fewer tokens) and leaves the
 *     others' tokens unchanged;
 *   - a pool that holds only two of the jobs' caches runs them all correctly, never more than
 *     fit at once (admission by KV blocks);
 *   - a job whose cache can never fit the pool is refused at once with an error naming the pool,
 *     and the scheduler keeps serving. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif

#include "err.h"
#include "gen_sched.h"
#include "generate.h"
#include "mem.h"
#include "test.h"

#define N_CASES 6
#define MAX_TEXT 4096

typedef struct {
    const char *question; /* NULL: image job with the default question */
    double budget;        /* 0: text-only */
    int max_tokens, min_tokens;
    sampler_params_t sp;
} job_case_t;

static const job_case_t k_cases[N_CASES] = {
    {"Say something about cats.", 0, 10, 0, {.temperature = 0}},
    {NULL, 1.0, 12, 12, {.temperature = 0}},
    {NULL, 0.2, 16, 16, {.temperature = 0.9f, .top_k = 40, .top_p = 0.9f, .seed = 7}},
    {NULL, 0.2, 20, 20, {.temperature = 1.2f, .seed = 3}},
    {"Tell me a long story about a dog, a cat, a bird and a fish who live together in a small house "
     "by the sea, and what they do every day of the week, in great detail please.",
     0, 8, 0, {.temperature = 0.7f, .top_k = 5, .seed = 21}},
    {NULL, 0.5, 20, 20, {.temperature = 0.8f, .top_p = 0.8f, .seed = 11}},
};

typedef struct {
    char text[MAX_TEXT];
    size_t len;
    int32_t tokens[64];
    gen_stats_t st;
    int rc;
    int pieces;
    int cancel_after; /* > 0: the cancel callback fires once this many pieces were emitted */
    char err[HIRED_ERR_LEN];
} out_t;

static int collect(void *user, const char *text, size_t len, int32_t token) {
    (void)token;
    out_t *o = user;
    if (o->len + len < MAX_TEXT) {
        memcpy(o->text + o->len, text, len);
        o->len += len;
        o->text[o->len] = 0;
    }
    o->pieces++;
    return 0;
}

static bool cancel_cb(void *user) {
    out_t *o = user;
    return o->cancel_after > 0 && o->pieces >= o->cancel_after;
}

static bool same(const out_t *a, const out_t *b) {
    return a->rc == b->rc && a->st.generated == b->st.generated && a->st.finish == b->st.finish && a->len == b->len &&
           !memcmp(a->text, b->text, a->len) &&
           !memcmp(a->tokens, b->tokens, (size_t)a->st.generated * sizeof(int32_t));
}

static bool cpu_has_simd(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    unsigned a, b, c, d;
    bool f16c = __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
#else
    return false;
#endif
}

/* A one-partition record keeping `budget` of the grid's tokens (spread evenly), with
 * deterministic pseudo-random features. */
static void make_visual(const hf_config_t *cfg, double budget, uint32_t seed, visual_t *v) {
    const int g = cfg->vision.image_size / cfg->vision.patch_size, total = g * g;
    int k = (int)(budget * total);
    if (k < 1) k = 1;
    memset(v, 0, sizeof *v);
    v->n = 1, v->rows = 1, v->cols = 1, v->grid = g, v->orig_h = 336, v->orig_w = 336;
    v->k = k, v->d = cfg->vision.hidden;
    v->pos = mem_calloc((size_t)k, sizeof *v->pos);
    v->features = mem_alloc((size_t)k * v->d * sizeof(float));
    for (int i = 0; i < k; i++) {
        int at = (int)((long long)i * total / k);
        v->pos[i] = (visual_pos_t){0, (int16_t)(at / g), (int16_t)(at % g)};
    }
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < (size_t)k * v->d; i++) {
        x = x * 1664525u + 1013904223u;
        v->features[i] = (float)((x >> 8) & 0xffff) / 32768.0f - 1.0f;
    }
    char err[HIRED_ERR_LEN];
    CHECK_MSG(visual_check(v, err) == 0, "%s", err);
}

typedef struct {
    gen_sched_t *s;
    const gen_prompt_t *pr;
    const gen_params_t *p;
    out_t *out;
} run_arg_t;

static void *run_thread(void *arg) {
    run_arg_t *a = arg;
    a->out->rc = gen_sched_run(a->s, a->pr, a->p, collect, cancel_cb, a->out, a->out->tokens, &a->out->st, a->out->err);
    return NULL;
}

/* Runs every case at once, one thread each, on s. */
static void run_all(gen_sched_t *s, gen_prompt_t *pr, gen_params_t *p, out_t *out) {
    pthread_t th[N_CASES];
    run_arg_t args[N_CASES];
    for (int i = 0; i < N_CASES; i++) {
        args[i] = (run_arg_t){s, &pr[i], &p[i], &out[i]};
        CHECK(pthread_create(&th[i], NULL, run_thread, &args[i]) == 0);
    }
    for (int i = 0; i < N_CASES; i++) pthread_join(th[i], NULL);
}

/* The batched forward itself: three prompts prefilled, then one decode row each, batched and
 * alone (a batch of one, and llm_forward): the logits bit for bit (against llm_forward when
 * want_plain: F16/BF16 weights on a CPU with the AVX2 kernels, and Q8 weights everywhere). */
static void check_batch_logits(gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr, const int *which, bool want_plain) {
    llm_t *llm = gen_model_llm(m);
    const int V = llm_config(llm)->vocab, D = llm_config(llm)->hidden;
    char err[HIRED_ERR_LEN];
    kv_cache_t *ka[3] = {0}, *kb[3] = {0}, *kc[3] = {0};
    float *x = mem_alloc((size_t)3 * D * sizeof(float)), *lb = mem_alloc((size_t)3 * V * sizeof(float));
    float *l1 = mem_alloc((size_t)V * sizeof(float)), *l2 = mem_alloc((size_t)V * sizeof(float));
    const int32_t ids[3] = {5, 17, 29};
    k_ctx_reset(ctx);
    CHECK(llm_embed(llm, ctx, ids, 3, x, err) == 0);
    int alone = 0, plain = 0;
    for (int i = 0; i < 3; i++) {
        const gen_prompt_t *q = &pr[which[i]];
        kv_cache_t **ks[3] = {&ka[i], &kb[i], &kc[i]};
        for (int c = 0; c < 3; c++) {
            *ks[c] = llm_kv_new(llm, q->length + 1, err);
            CHECK(*ks[c] && llm_forward(llm, ctx, *ks[c], q->embeds, q->length, LLM_LOGITS_NONE, NULL, err) == 0);
        }
    }
    CHECK_MSG(llm_forward_batch(llm, ctx, ka, x, 3, lb, err) == 0, "%s", err);
    for (int i = 0; i < 3; i++) {
        CHECK(llm_forward_batch(llm, ctx, &kb[i], x + (size_t)i * D, 1, l1, err) == 0);
        CHECK(llm_forward(llm, ctx, kc[i], x + (size_t)i * D, 1, LLM_LOGITS_LAST, l2, err) == 0);
        alone += !memcmp(l1, lb + (size_t)i * V, (size_t)V * sizeof(float));
        plain += !memcmp(l2, lb + (size_t)i * V, (size_t)V * sizeof(float));
        CHECK_EQ_INT(kv_cache_len(ka[i]), pr[which[i]].length + 1);
    }
    CHECK_EQ_INT(alone, 3);
    if (want_plain) CHECK_EQ_INT(plain, 3);
    /* a full cache is refused, and nothing advances */
    CHECK_EQ_INT(llm_forward_batch(llm, ctx, ka, x, 3, lb, err), HIRED_ERANGE);
    CHECK_EQ_INT(kv_cache_len(ka[0]), pr[which[0]].length + 1);
    for (int i = 0; i < 3; i++) kv_cache_destroy(&ka[i]), kv_cache_destroy(&kb[i]), kv_cache_destroy(&kc[i]);
    mem_free(x), mem_free(lb), mem_free(l1), mem_free(l2);
}

/* How far an F16 KV cache moves the prompt logits from the float32 cache's (relative L2 error per
 * position, as test_llm measures against transformers; its tolerance there is 1e-4), printed;
 * it must move them (the cache really is F16) and stay within F16_KV_TOL. */
#define F16_KV_TOL 2e-3
static double f16_kv_shift(gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr) {
    llm_t *llm = gen_model_llm(m);
    const hf_text_config_t *tc = llm_config(llm);
    const int V = tc->vocab, L = pr->length;
    char err[HIRED_ERR_LEN];
    float *a = mem_alloc((size_t)L * V * sizeof(float)), *b = mem_alloc((size_t)L * V * sizeof(float));
    kv_cache_t *k32 = kv_cache_new(llm_device(llm), TENSOR_DTYPE_F32, tc->layers, tc->kv_heads * tc->head_dim, L, err);
    kv_cache_t *k16 = kv_cache_new(llm_device(llm), TENSOR_DTYPE_F16, tc->layers, tc->kv_heads * tc->head_dim, L, err);
    double worst = -1;
    if (a && b && k32 && k16) {
        k_ctx_reset(ctx);
        CHECK(llm_forward(llm, ctx, k32, pr->embeds, L, LLM_LOGITS_ALL, a, err) == 0);
        CHECK_MSG(llm_forward(llm, ctx, k16, pr->embeds, L, LLM_LOGITS_ALL, b, err) == 0, "%s", err);
        CHECK(kv_cache_bytes(k16) * 2 == kv_cache_bytes(k32));
        worst = 0;
        for (int i = 0; i < L; i++) {
            double d2 = 0, r2 = 0;
            for (int c = 0; c < V; c++) {
                double x = b[(size_t)i * V + c], y = a[(size_t)i * V + c];
                d2 += (x - y) * (x - y), r2 += y * y;
            }
            double rel = sqrt(d2 / (r2 > 0 ? r2 : 1));
            if (rel > worst) worst = rel;
        }
    }
    kv_cache_destroy(&k32);
    kv_cache_destroy(&k16);
    mem_free(a), mem_free(b);
    return worst;
}

/* A paged cache whose blocks are not in pool order gives the dense cache's prompt logits bit for
 * bit (float32 and F16); the pool counts its blocks, gives them back, and refuses a cache it
 * cannot hold with a message naming the blocks. */
static void paged_same(gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr) {
    llm_t *llm = gen_model_llm(m);
    const hf_text_config_t *tc = llm_config(llm);
    const int V = tc->vocab, L = pr->length, kvd = tc->kv_heads * tc->head_dim, nb = 2 * ((L + 15) / 16) + 2;
    char err[HIRED_ERR_LEN];
    for (int half = 0; half < 2; half++) {
        const tensor_dtype_t dt = half ? TENSOR_DTYPE_F16 : TENSOR_DTYPE_F32;
        float *a = mem_alloc((size_t)L * V * sizeof(float)), *b = mem_alloc((size_t)L * V * sizeof(float));
        kv_cache_t *dense = kv_cache_new(llm_device(llm), dt, tc->layers, kvd, L, err);
        kv_pool_t *pool = kv_pool_new(llm_device(llm), dt, tc->layers, kvd, nb, 16, err);
        CHECK_MSG(a && b && dense && pool, "%s", err);
        if (!a || !b || !dense || !pool) return;
        kv_cache_t *f1 = kv_cache_new_paged(pool, ctx, 16, err), *f2 = kv_cache_new_paged(pool, ctx, 16, err);
        kv_cache_destroy(&f1); /* block 0 free again, block 1 taken: the cache gets 0, 2, 3, ... */
        kv_cache_t *pg = kv_cache_new_paged(pool, ctx, L, err);
        CHECK_MSG(pg && kv_cache_paged(pg), "%s", err);
        CHECK_EQ_INT(kv_pool_free_blocks(pool), nb - 1 - (L + 15) / 16);
        CHECK(kv_cache_new_paged(pool, ctx, nb * 16, err) == NULL && strstr(err, "blocks wanted"));
        k_ctx_reset(ctx);
        CHECK(llm_forward(llm, ctx, dense, pr->embeds, L, LLM_LOGITS_ALL, a, err) == 0);
        CHECK_MSG(llm_forward(llm, ctx, pg, pr->embeds, L, LLM_LOGITS_ALL, b, err) == 0, "%s", err);
        CHECK_MSG(!memcmp(a, b, (size_t)L * V * sizeof(float)), "paged %s cache: prompt logits differ from dense",
                  half ? "f16" : "f32");
        kv_cache_destroy(&pg);
        kv_cache_destroy(&f2);
        CHECK_EQ_INT(kv_pool_free_blocks(pool), nb);
        kv_pool_destroy(&pool);
        kv_cache_destroy(&dense);
        mem_free(a), mem_free(b);
    }
}

/* The last layer's output projection and MLP run only for the rows whose logits are wanted
 * (model/llm.c forward_chunk): those rows' logits match an all-rows pass within float32 noise
 * (their GEMMs have fewer rows), and the cache holds the same keys and values bit for bit, so a
 * decode step after a pass for some rows, or for none, gives the all-rows pass's logits exactly. */
static void kept_rows_same(gen_model_t *m, k_ctx_t *ctx, const gen_prompt_t *pr) {
    llm_t *llm = gen_model_llm(m);
    const hf_text_config_t *tc = llm_config(llm);
    const int V = tc->vocab, L = pr->length, D = tc->hidden, kvd = tc->kv_heads * tc->head_dim;
    char err[HIRED_ERR_LEN];
    CHECK(L >= 6);
    if (L < 6) return;
    const int32_t rows[4] = {0, L / 2, L / 2 + 1, L - 1};
    float *all = mem_alloc((size_t)L * V * sizeof(float)), *sel = mem_alloc(4 * (size_t)V * sizeof(float));
    float *d[3] = {mem_alloc((size_t)V * sizeof(float)), mem_alloc((size_t)V * sizeof(float)),
                   mem_alloc((size_t)V * sizeof(float))};
    kv_cache_t *kc[3];
    for (int i = 0; i < 3; i++) kc[i] = kv_cache_new(llm_device(llm), TENSOR_DTYPE_F32, tc->layers, kvd, L + 1, err);
    CHECK_MSG(all && sel && d[0] && d[1] && d[2] && kc[0] && kc[1] && kc[2], "%s", err);
    if (all && sel && d[0] && d[1] && d[2] && kc[0] && kc[1] && kc[2]) {
        k_ctx_reset(ctx);
        CHECK(llm_forward(llm, ctx, kc[0], pr->embeds, L, LLM_LOGITS_ALL, all, err) == 0);
        CHECK_MSG(llm_forward_rows(llm, ctx, kc[1], pr->embeds, L, rows, 4, sel, err) == 0, "%s", err);
        CHECK_MSG(llm_forward(llm, ctx, kc[2], pr->embeds, L, LLM_LOGITS_NONE, NULL, err) == 0, "%s", err);
        double worst = 0, scale = 0;
        for (int r = 0; r < 4; r++)
            for (int v = 0; v < V; v++) {
                const double ref = all[(size_t)rows[r] * V + v], got = sel[(size_t)r * V + v];
                worst = fmax(worst, fabs(got - ref));
                scale = fmax(scale, fabs(ref));
            }
        CHECK_MSG(worst <= 1e-4 * scale + 1e-6, "kept rows' logits differ from the all-rows pass by %g (scale %g)",
                  worst, scale);
        /* the next position: the last prompt row's input again */
        for (int i = 0; i < 3; i++)
            CHECK(llm_forward(llm, ctx, kc[i], pr->embeds + (size_t)(L - 1) * D, 1, LLM_LOGITS_LAST, d[i], err) == 0);
        CHECK_MSG(!memcmp(d[0], d[1], (size_t)V * sizeof(float)), "decode after a pass for 4 rows differs");
        CHECK_MSG(!memcmp(d[0], d[2], (size_t)V * sizeof(float)), "decode after a pass for no rows differs");
    }
    for (int i = 0; i < 3; i++) kv_cache_destroy(&kc[i]);
    mem_free(all), mem_free(sel), mem_free(d[0]), mem_free(d[1]), mem_free(d[2]);
}

static void test_model(k_device_t *dev, const char *name) {
    char err[HIRED_ERR_LEN], mdir[4096];
    snprintf(mdir, sizeof mdir, "%s", test_fixture("models"));
    strncat(mdir, "/", sizeof mdir - strlen(mdir) - 1);
    strncat(mdir, name, sizeof mdir - strlen(mdir) - 1);
    gen_model_t *m = gen_model_load(mdir, dev, err);
    CHECK_MSG(m != NULL, "%s: %s", name, err);
    if (!m) return;
    llm_set_prefill_chunk(gen_model_llm(m), 16); /* long prompts take many steps */
    k_ctx_t *ctx = k_ctx_new(dev, err);
    gen_prompt_t pr[N_CASES];
    gen_params_t p[N_CASES];
    static out_t ref[N_CASES], solo[N_CASES], batch[N_CASES];
    memset(pr, 0, sizeof pr);
    for (int i = 0; i < N_CASES; i++) {
        const job_case_t *c = &k_cases[i];
        gen_params_default(&p[i]);
        p[i].max_tokens = c->max_tokens;
        p[i].min_tokens = c->min_tokens;
        p[i].sampling = c->sp;
        visual_t v = {0};
        int rc;
        if (c->budget > 0) {
            make_visual(gen_model_config(m), c->budget, (uint32_t)i + 1, &v);
            rc = gen_prompt_build(m, ctx, &v, c->question ? c->question : "What is shown in this image?", &p[i], &pr[i],
                                  NULL, err);
        } else {
            tpl_part_t part = {TPL_PART_TEXT, c->question};
            tpl_message_t msg = {"user", &part, 1};
            rc = gen_prompt_build_chat(m, ctx, NULL, 0, &msg, 1, &p[i], &pr[i], NULL, err);
        }
        visual_free(&v);
        CHECK_MSG(rc == 0, "%s case %d: %s", name, i, err);
        if (rc) goto out;
    }
    check_batch_logits(m, ctx, pr, (const int[]){0, 2, 5}, cpu_has_simd());

    /* case 3 gets a stop string from the middle of its own unstopped text */
    static char stop[8];
    static const char *stops[2];
    memset(&ref[3], 0, sizeof ref[3]);
    CHECK(gen_decode(m, ctx, &pr[3], &p[3], collect, &ref[3], ref[3].tokens, NULL, 0, NULL, &ref[3].st, err) == 0);
    CHECK_MSG(ref[3].len > 6, "%s: case 3 text \"%s\" too short for a stop string", name, ref[3].text);
    memcpy(stop, ref[3].text + ref[3].len / 2, 2);
    stops[0] = stop;
    p[3].stop = stops;

    /* the reference: gen_decode, one job at a time */
    for (int i = 0; i < N_CASES; i++) {
        memset(&ref[i], 0, sizeof ref[i]);
        ref[i].rc = gen_decode(m, ctx, &pr[i], &p[i], collect, &ref[i], ref[i].tokens, NULL, 0, NULL, &ref[i].st, err);
        CHECK_MSG(ref[i].rc == 0, "%s case %d: %s", name, i, err);
    }
    CHECK(ref[3].st.finish == GEN_FINISH_STOP);

    gen_sched_opts_t o = {.kv_bytes = (size_t)1 << 26, .max_seqs = 8, .kv_dtype = TENSOR_DTYPE_F32};
    gen_sched_t *s = gen_sched_new(m, &o, err);
    CHECK_MSG(s != NULL, "%s", err);
    if (!s) goto out;
    /* alone on the scheduler */
    int like_ref = 0;
    for (int i = 0; i < N_CASES; i++) {
        memset(&solo[i], 0, sizeof solo[i]);
        solo[i].rc = gen_sched_run(s, &pr[i], &p[i], collect, cancel_cb, &solo[i], solo[i].tokens, &solo[i].st, solo[i].err);
        CHECK_MSG(solo[i].rc == 0, "%s case %d: %s", name, i, solo[i].err);
        like_ref += same(&solo[i], &ref[i]);
        if (!same(&solo[i], &ref[i]))
            fprintf(stderr, "%s case %d: scheduler \"%s\" (%d tokens), gen_decode \"%s\" (%d tokens)\n", name, i,
                    solo[i].text, solo[i].st.generated, ref[i].text, ref[i].st.generated);
    }
    printf("%s: %d of %d jobs alone on the scheduler give gen_decode's tokens\n", name, like_ref, N_CASES);
    if (cpu_has_simd()) CHECK_EQ_INT(like_ref, N_CASES);
    CHECK(solo[3].st.finish == GEN_FINISH_STOP);

    /* all at once */
    memset(batch, 0, sizeof batch);
    gen_sched_reset_peak(s);
    gen_sched_stats_t before, after;
    gen_sched_get_stats(s, &before);
    run_all(s, pr, p, batch);
    gen_sched_get_stats(s, &after);
    for (int i = 0; i < N_CASES; i++)
        CHECK_MSG(same(&batch[i], &solo[i]), "%s case %d: batched \"%s\" (%d tokens), alone \"%s\" (%d tokens)", name, i,
                  batch[i].text, batch[i].st.generated, solo[i].text, solo[i].st.generated);
    printf("%s: batched: peak %d jobs at once, %llu rows in %llu steps\n", name, after.peak_running,
           (unsigned long long)(after.rows - before.rows), (unsigned long long)(after.steps - before.steps));
    CHECK(after.peak_running >= 2);
    CHECK(after.rows - before.rows > after.steps - before.steps); /* some steps had several rows */
    CHECK_EQ_INT(after.kv_blocks_used, 0);
    CHECK_EQ_INT(after.running, 0);

    /* one job cancelled mid-batch */
    memset(batch, 0, sizeof batch);
    batch[2].cancel_after = 3;
    run_all(s, pr, p, batch);
    CHECK(batch[2].rc == 0 && batch[2].st.finish == GEN_FINISH_CALLBACK);
    CHECK_MSG(batch[2].st.generated < solo[2].st.generated, "cancelled job generated %d of %d", batch[2].st.generated,
              solo[2].st.generated);
    CHECK(batch[2].len <= solo[2].len && !memcmp(batch[2].text, solo[2].text, batch[2].len));
    for (int i = 0; i < N_CASES; i++)
        if (i != 2) CHECK_MSG(same(&batch[i], &solo[i]), "%s case %d changed by a cancelled neighbour", name, i);
    gen_sched_destroy(&s);

    /* a pool that holds the two largest jobs: all run, never more than fit */
    size_t bytes[N_CASES], big1 = 0, big2 = 0;
    o.kv_bytes = 0;
    s = gen_sched_new(m, &(gen_sched_opts_t){.kv_bytes = 1 << 20, .max_seqs = 8, .kv_dtype = TENSOR_DTYPE_F32}, err);
    for (int i = 0; s && i < N_CASES; i++) {
        bytes[i] = gen_sched_job_bytes(s, pr[i].length, p[i].max_tokens);
        if (bytes[i] > big1) big2 = big1, big1 = bytes[i];
        else if (bytes[i] > big2) big2 = bytes[i];
    }
    gen_sched_destroy(&s);
    o.kv_bytes = big1 + big2;
    s = gen_sched_new(m, &o, err);
    CHECK_MSG(s != NULL, "%s", err);
    if (!s) goto out;
    memset(batch, 0, sizeof batch);
    run_all(s, pr, p, batch);
    gen_sched_get_stats(s, &after);
    for (int i = 0; i < N_CASES; i++) CHECK_MSG(same(&batch[i], &solo[i]), "%s case %d in a small pool", name, i);
    printf("%s: pool of %zu bytes: peak %d jobs at once\n", name, o.kv_bytes, after.peak_running);
    /* at most as many as the smallest caches that fit together */
    size_t sorted[N_CASES], sum = 0;
    memcpy(sorted, bytes, sizeof sorted);
    for (int i = 1; i < N_CASES; i++)
        for (int j = i; j > 0 && sorted[j - 1] > sorted[j]; j--) {
            size_t t = sorted[j];
            sorted[j] = sorted[j - 1], sorted[j - 1] = t;
        }
    int fit = 0;
    while (fit < N_CASES && sum + sorted[fit] <= o.kv_bytes) sum += sorted[fit++];
    CHECK_MSG(after.peak_running >= 1 && after.peak_running <= fit, "peak %d, at most %d fit", after.peak_running, fit);
    gen_sched_destroy(&s);

    /* a job that can never fit: refused at once, by name; the scheduler keeps serving */
    o.kv_bytes = bytes[1] - 1;
    s = gen_sched_new(m, &o, err);
    CHECK_MSG(s != NULL, "%s", err);
    if (s) {
        out_t never = {0}, fine = {0};
        never.rc = gen_sched_run(s, &pr[1], &p[1], collect, NULL, &never, never.tokens, &never.st, never.err);
        CHECK_EQ_INT(never.rc, HIRED_ERANGE);
        CHECK_MSG(strstr(never.err, "KV pool") != NULL, "error \"%s\"", never.err);
        CHECK_EQ_INT(never.st.generated, 0);
        gen_sched_get_stats(s, &after);
        CHECK(after.steps == 0 && after.peak_running == 0);
        fine.rc = gen_sched_run(s, &pr[0], &p[0], collect, NULL, &fine, fine.tokens, &fine.st, fine.err);
        CHECK_MSG(fine.rc == 0 && same(&fine, &solo[0]), "after a refusal: %s", fine.err);
    }
    gen_sched_destroy(&s);

    /* the F16 KV cache: how far it moves the logits; batched = alone still holds */
    paged_same(m, ctx, &pr[1]);
    kept_rows_same(m, ctx, &pr[1]);
    double shift = f16_kv_shift(m, ctx, &pr[1]);
    printf("%s: F16 KV cache moves the prompt logits by %.3g (relative L2, worst position; float32 KV: 0, the "
           "old numbers)\n", name, shift);
    CHECK_MSG(shift > 0 && shift <= F16_KV_TOL, "F16 KV shift %.3g", shift);
    o.kv_bytes = (size_t)1 << 26;
    o.kv_dtype = TENSOR_DTYPE_F16;
    s = gen_sched_new(m, &o, err);
    CHECK_MSG(s != NULL, "%s", err);
    if (s) {
        static out_t solo16[N_CASES];
        int like32 = 0;
        for (int i = 0; i < N_CASES; i++) {
            memset(&solo16[i], 0, sizeof solo16[i]);
            solo16[i].rc = gen_sched_run(s, &pr[i], &p[i], collect, NULL, &solo16[i], solo16[i].tokens, &solo16[i].st,
                                         solo16[i].err);
            CHECK_MSG(solo16[i].rc == 0, "%s", solo16[i].err);
            like32 += same(&solo16[i], &solo[i]);
        }
        printf("%s: F16 KV: %d of %d jobs give the float32 cache's tokens\n", name, like32, N_CASES);
        CHECK(gen_sched_job_bytes(s, pr[1].length, p[1].max_tokens) * 2 ==
              bytes[1]); /* half the blocks' bytes of the float32 pool */
        memset(batch, 0, sizeof batch);
        run_all(s, pr, p, batch);
        for (int i = 0; i < N_CASES; i++)
            CHECK_MSG(same(&batch[i], &solo16[i]), "%s case %d: F16 KV batched differs from alone", name, i);
    }
    gen_sched_destroy(&s);
out:
    for (int i = 0; i < N_CASES; i++) gen_prompt_free(&pr[i]);
    k_ctx_destroy(&ctx);
    gen_model_destroy(&m);
}

/* Weights held otherwise (decoder.weights = q8 or bf16): a batched decode row has the bits of the
 * same row alone, batched or through llm_forward. Q8's matmul is row-invariant by construction on
 * any CPU; bf16-held weights run bf16 dot products for decode and batched rows alike on a CPU with
 * AVX512-BF16 and the float32 row-invariant kernel elsewhere. */
static void test_held(k_device_t *dev, const char *name, llm_weights_t wk) {
    char err[HIRED_ERR_LEN], mdir[4096];
    const char *wn = llm_weights_name(wk);
    snprintf(mdir, sizeof mdir, "%s/%s", test_fixture("models"), name);
    gen_model_t *m = gen_model_load_as(mdir, dev, wk, err);
    CHECK_MSG(m != NULL, "%s %s: %s", name, wn, err);
    if (!m) return;
    CHECK(llm_weights(gen_model_llm(m)) == wk);
    k_ctx_t *ctx = k_ctx_new(dev, err);
    gen_prompt_t pr[3];
    memset(pr, 0, sizeof pr);
    const char *qs[3] = {"Hello there.", "What is the capital of France?", "Tell me a story about a cat."};
    int ok = 1;
    for (int i = 0; i < 3 && ok; i++) {
        gen_params_t p;
        gen_params_default(&p);
        tpl_part_t part = {TPL_PART_TEXT, qs[i]};
        tpl_message_t msg = {"user", &part, 1};
        ok = gen_prompt_build_chat(m, ctx, NULL, 0, &msg, 1, &p, &pr[i], NULL, err) == 0;
        CHECK_MSG(ok, "%s %s prompt %d: %s", name, wn, i, err);
    }
    if (ok) check_batch_logits(m, ctx, pr, (const int[]){0, 1, 2}, true);
    for (int i = 0; i < 3; i++) gen_prompt_free(&pr[i]);
    k_ctx_destroy(&ctx);
    gen_model_destroy(&m);
}

int main(void) {
    char err[HIRED_ERR_LEN];
    k_device_t *dev = k_device_open("cpu", err);
    CHECK_MSG(dev != NULL, "%s", err);
    if (!dev) return test_summary();
    test_model(dev, "llava15-tiny");
    test_model(dev, "llava-next-tiny");
    test_held(dev, "llava15-tiny", LLM_WEIGHTS_Q8);
    test_held(dev, "llava15-tiny", LLM_WEIGHTS_BF16);
    test_held(dev, "llava-next-tiny", LLM_WEIGHTS_BF16);
    test_held(dev, "llava-next-tiny", LLM_WEIGHTS_Q8);
    k_device_close(&dev);
    return test_summary();
}
