/* cmd_bench_batch.c — `hired bench --concurrency L`: continuous batching measured on the
 * decoder's own scheduler (pipeline/gen_sched.h), in this process, on the text half only.
 *
 * For every budget r and every concurrency C: C jobs submitted at once, each a prompt of
 * 40 text positions + round(r · image tokens) visual positions (random token embeddings: the
 * cost of a prompt is its length, not its content), --max-tokens new tokens each (min_tokens
 * = max_tokens, so every job decodes the same count), greedy. Printed per row:
 *   agg decode tok/s   decode rows / time in the scheduler's decode batches (its own counts):
 *                      what batching buys, prefill excluded
 *   agg e2e tok/s      completion tokens / (first submit -> last job done), prefill included
 *   req tok/s          median over jobs of generated / its decode time (first token -> end)
 *   TTFT p50/p95       submit -> first token drawn (KV admission wait and prefill included)
 *   KV/job, peak       the job's KV bytes (whole blocks) and the most jobs running at once
 * With --rounds N every row runs N times, the rows taking turns, and keeps its run of the best
 * aggregate decode rate (a shared machine's busy stretches then fall on every level alike).
 * Then, with one fixed KV pool (--kv-bytes, default: room for 4 jobs at the largest budget) and
 * prompts of --pool-image-tokens visual positions (2880: LLaVA-NeXT), the most jobs admitted at
 * once at each budget with 64 jobs submitted, from the scheduler's own count, and its ratio to
 * the largest budget's (each job ends as soon as all are submitted and it is admitted: the
 * count needs no decoding).
 *
 * The text model: --model DIR's own, or with --text-layers N a random F16 text model of
 * LLaVA-NeXT-7B's widths (hidden 4096, 32 heads, MLP 11008) with N layers and DIR's tokenizer
 * (the tiny fixture's by default) — the geometry tools/make_random_llava.py writes, built in
 * memory. Figures go to stdout (markdown) and --json. Not here: the end-to-end bench through
 * broker and workers (cmd_bench.c). */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "cmd_bench_batch.h"
#include "err.h"
#include "gen_sched.h"
#include "generate.h"
#include "mem.h"

#define BB_MAX_LIST 16
#define BB_TEXT_POSITIONS 40
#define BB_POOL_JOBS 64 /* submitted at once for the fixed-pool count (more than any budget fits) */

typedef struct {
    gen_sched_t *s;
    const gen_prompt_t *pr;
    const gen_params_t *p;
    gen_cancel_fn cancel; /* the fixed-pool count: NULL, or bb_admitted */
    gen_stats_t st;
    double t_submit, t_done;
    int rc;
    char err[HIRED_ERR_LEN];
} bb_job_t;

static atomic_int g_submitted; /* jobs that called gen_sched_run in this round */
static int g_expected;         /* jobs of the round */

static void *bb_job_main(void *arg) {
    bb_job_t *j = arg;
    j->t_submit = clock_ms();
    atomic_fetch_add(&g_submitted, 1); /* (a job enqueued a moment later is still waiting, not counted) */
    j->rc = gen_sched_run(j->s, j->pr, j->p, NULL, j->cancel, j, NULL, &j->st, j->err);
    j->t_done = clock_ms();
    return NULL;
}

/* The fixed-pool count: every job has been submitted and this one has been admitted (its cache
 * exists): it ends, handing its blocks to the next. The most jobs admitted at once is the count
 * (it needs no decoding, and the 2880-position prompts of r = 1.0 would take minutes each). */
static bool bb_admitted(void *user) {
    bb_job_t *j = user;
    return atomic_load(&g_submitted) >= g_expected && j->st.kv_bytes > 0;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* q-quantile with linear interpolation of v[0..n) (sorted here). */
static double quant(double *v, int n, double q) {
    if (n <= 0) return NAN;
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    double pos = q * (n - 1);
    int i = (int)pos;
    return i + 1 < n ? v[i] + (pos - i) * (v[i + 1] - v[i]) : v[n - 1];
}

static int parse_list(const char *s, double *out, int max, bool ints) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    int n = 0;
    for (char *save, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        char *end;
        double v = strtod(t, &end);
        if (*end || n == max || !(v > 0) || (ints && (v != floor(v) || v > 64)) || (!ints && v > 1)) return -1;
        out[n++] = v;
    }
    return n;
}

typedef struct {
    double budget;
    int conc, length, peak;
    size_t job_kv, pool;
    double agg_decode, agg_e2e, req_tok_s, ttft50, ttft95;
} bb_row_t;

/* C jobs of prompt pr at once on a fresh scheduler (pool bytes, batch of max_seqs). */
static tensor_dtype_t g_kv_dtype = TENSOR_DTYPE_F16;

static int bb_run(gen_model_t *m, const gen_prompt_t *pr, const gen_params_t *p, int conc, int max_seqs, size_t pool,
                  bool count_only, bb_row_t *row, char *err) {
    gen_sched_opts_t so = {.kv_bytes = pool, .max_seqs = max_seqs, .kv_dtype = g_kv_dtype};
    gen_sched_t *s = gen_sched_new(m, &so, err);
    if (!s) return HIRED_EINVAL;
    bb_job_t *jobs = calloc((size_t)conc, sizeof *jobs);
    pthread_t *th = calloc((size_t)conc, sizeof *th);
    int rc = jobs && th ? HIRED_OK : hired_errf(err, HIRED_ENOMEM, "out of memory");
    gen_sched_stats_t a, b;
    gen_sched_get_stats(s, &a);
    int started = 0;
    atomic_store(&g_submitted, 0);
    g_expected = conc;
    for (int i = 0; !rc && i < conc; i++) {
        jobs[i] = (bb_job_t){.s = s, .pr = pr, .p = p, .cancel = count_only ? bb_admitted : NULL};
        if (pthread_create(&th[i], NULL, bb_job_main, &jobs[i])) rc = hired_errf(err, HIRED_EIO, "cannot start threads");
        else started++;
    }
    for (int i = 0; i < started; i++) pthread_join(th[i], NULL);
    gen_sched_get_stats(s, &b);
    double first = INFINITY, last = 0, gen = 0, *ttft = calloc((size_t)conc, sizeof *ttft),
           *rate = calloc((size_t)conc, sizeof *rate);
    for (int i = 0; !rc && i < started; i++) {
        if (jobs[i].rc) {
            rc = hired_errf(err, jobs[i].rc, "job %d: %s", i, jobs[i].err);
            break;
        }
        if (jobs[i].t_submit < first) first = jobs[i].t_submit;
        if (jobs[i].t_done > last) last = jobs[i].t_done;
        if (!count_only && jobs[i].st.generated != p->max_tokens)
            rc = hired_errf(err, HIRED_EINVAL, "job %d generated %d of %d tokens", i, jobs[i].st.generated, p->max_tokens);
        gen += jobs[i].st.generated;
        ttft[i] = jobs[i].st.ms_first;
        rate[i] = jobs[i].st.ms_decode > 0 ? jobs[i].st.generated / (jobs[i].st.ms_decode / 1000.0) : NAN;
    }
    if (!rc && ttft && rate) {
        row->conc = conc;
        row->peak = b.peak_running;
        row->pool = pool;
        row->job_kv = gen_sched_job_bytes(s, pr->length, p->max_tokens);
        row->agg_decode = b.decode_ms > a.decode_ms ? (double)(b.rows - a.rows) / ((b.decode_ms - a.decode_ms) / 1000.0) : NAN;
        row->agg_e2e = last > first ? gen / ((last - first) / 1000.0) : NAN;
        row->req_tok_s = quant(rate, started, 0.5);
        row->ttft50 = quant(ttft, started, 0.5);
        row->ttft95 = quant(ttft, started, 0.95);
    }
    free(ttft);
    free(rate);
    free(jobs);
    free(th);
    gen_sched_destroy(&s);
    return rc;
}

/* A prompt of length positions: embeddings of pseudo-random token ids. */
static int bb_prompt(gen_model_t *m, k_ctx_t *ctx, int length, uint64_t seed, gen_prompt_t *pr, char *err) {
    llm_t *llm = gen_model_llm(m);
    const hf_text_config_t *tc = llm_config(llm);
    memset(pr, 0, sizeof *pr);
    int32_t *ids = malloc((size_t)length * sizeof *ids);
    pr->dev = llm_device(llm);
    pr->embeds = k_device_alloc(pr->dev, (size_t)length * tc->hidden * sizeof(float));
    if (!ids || !pr->embeds) {
        free(ids);
        return hired_errf(err, HIRED_ENOMEM, "out of memory for a %d-position prompt", length);
    }
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < length; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        ids[i] = (int32_t)(x % (uint64_t)tc->vocab);
    }
    pr->length = length;
    k_ctx_reset(ctx);
    int rc = llm_embed(llm, ctx, ids, length, pr->embeds, err);
    free(ids);
    return rc;
}

int bench_batch(const bench_batch_opts_t *o) {
    char err[HIRED_ERR_LEN];
    double conc_d[BB_MAX_LIST], budgets[BB_MAX_LIST];
    int n_conc = parse_list(o->concurrency, conc_d, BB_MAX_LIST, true);
    int n_bud = parse_list(o->budgets, budgets, BB_MAX_LIST, false);
    if (n_conc <= 0 || n_bud <= 0) {
        fprintf(stderr, "hired bench: --concurrency takes up to %d counts in [1, 64], --budgets rates in (0, 1]\n",
                BB_MAX_LIST);
        return 2;
    }
    int max_conc = 0;
    for (int i = 0; i < n_conc; i++)
        if ((int)conc_d[i] > max_conc) max_conc = (int)conc_d[i];
    double max_budget = 0;
    for (int i = 0; i < n_bud; i++)
        if (budgets[i] > max_budget) max_budget = budgets[i];

    g_kv_dtype = o->kv_f32 ? TENSOR_DTYPE_F32 : TENSOR_DTYPE_F16;
    const char *dir = o->model && o->model[0] ? o->model : HIRED_SOURCE_DIR "/tests/fixtures/models/llava-next-tiny";
    k_device_t *dev = k_device_open("cpu", err);
    if (!dev) {
        fprintf(stderr, "hired bench: %s\n", err);
        return 1;
    }
    gen_model_t *m = NULL;
    if (o->text_layers > 0) {
        hf_config_t cfg;
        if (!hf_config_load(dir, &cfg, err)) {
            hf_text_config_t tc = cfg.text;
            tc.hidden = 4096, tc.heads = 32, tc.kv_heads = 32, tc.head_dim = 128, tc.intermediate = 11008;
            tc.layers = (int)o->text_layers, tc.max_pos = 4096, tc.sliding_window = -1;
            fprintf(stderr, "hired bench: building a random F16 text model held as %s (4096 wide, %d layers, vocab %d)...\n",
                    llm_weights_name((llm_weights_t)o->weights), tc.layers, tc.vocab);
            m = gen_model_random_text(dir, &tc, dev, (llm_weights_t)o->weights, 1, err);
        }
    } else {
        m = gen_model_load_as(dir, dev, (llm_weights_t)o->weights, err);
    }
    k_ctx_t *ctx = m ? k_ctx_new(dev, err) : NULL;
    if (!m || !ctx) {
        fprintf(stderr, "hired bench: %s\n", err);
        gen_model_destroy(&m);
        k_device_close(&dev);
        return 1;
    }
    const hf_text_config_t *tc = llm_config(gen_model_llm(m));
    gen_params_t p;
    gen_params_default(&p);
    p.max_tokens = p.min_tokens = (int)o->max_tokens;

    gen_prompt_t prompts[BB_MAX_LIST];
    memset(prompts, 0, sizeof prompts);
    int rc = 0;
    int max_len = 0;
    for (int i = 0; !rc && i < n_bud; i++) {
        int len = BB_TEXT_POSITIONS + (int)lround(budgets[i] * (double)o->image_tokens);
        if (len > max_len) max_len = len;
        rc = bb_prompt(m, ctx, len, (uint64_t)i + 1, &prompts[i], err);
    }
    /* pool of the concurrency rows: every job of the largest level at the largest prompt */
    const size_t job_max = gen_sched_job_bytes_for(m, g_kv_dtype, max_len, p.max_tokens);
    bb_row_t rows[BB_MAX_LIST * BB_MAX_LIST], pool_rows[BB_MAX_LIST];
    int n_rows = 0;
    printf("hired bench --concurrency: text model %d layers x %d wide (%s, held as %s), %d new tokens per job, prompt = %d text + "
           "r x %d visual positions, KV %s; each row the best of %d round%s, the levels taking turns\n\n",
           tc->layers, tc->hidden, o->text_layers > 0 ? "random F16" : dir, llm_weights_name(llm_weights(gen_model_llm(m))), p.max_tokens,
           BB_TEXT_POSITIONS, (int)o->image_tokens, tensor_dtype_name(g_kv_dtype), o->rounds > 1 ? (int)o->rounds : 1,
           o->rounds > 1 ? "s" : "");
    /* one unmeasured job first: the first decode steps of a process fault in its scratch pages */
    if (!rc) {
        gen_params_t wp = p;
        wp.max_tokens = wp.min_tokens = 4;
        bb_row_t scratch;
        fprintf(stderr, "hired bench: warm-up job...\n");
        rc = bb_run(m, &prompts[0], &wp, 1, max_conc, job_max * (size_t)max_conc, false, &scratch, err);
    }
    const int rounds = o->rounds > 0 ? (int)o->rounds : 1;
    for (int round = 0; !rc && round < rounds; round++) {
        int k = 0;
        for (int bi = 0; !rc && bi < n_bud; bi++)
            for (int ci = 0; !rc && ci < n_conc; ci++, k++) {
                bb_row_t r;
                memset(&r, 0, sizeof r);
                r.budget = budgets[bi];
                r.length = prompts[bi].length;
                fprintf(stderr, "hired bench: round %d/%d, r=%.2f, %d in flight...\n", round + 1, rounds, budgets[bi],
                        (int)conc_d[ci]);
                rc = bb_run(m, &prompts[bi], &p, (int)conc_d[ci], max_conc, job_max * (size_t)max_conc, false, &r, err);
                if (rc) break;
                if (round == 0) rows[n_rows++] = r;
                else if (r.agg_decode > rows[k].agg_decode) rows[k] = r; /* the row's best round */
            }
    }
    /* the fixed pool: prompts of pool_image_tokens visual positions before selection */
    gen_prompt_t pool_prompts[BB_MAX_LIST];
    memset(pool_prompts, 0, sizeof pool_prompts);
    size_t pool_job_max = 0;
    for (int i = 0; !rc && i < n_bud; i++) {
        int len = BB_TEXT_POSITIONS + (int)lround(budgets[i] * (double)o->pool_image_tokens);
        rc = bb_prompt(m, ctx, len, (uint64_t)i + 101, &pool_prompts[i], err);
        size_t jb = gen_sched_job_bytes_for(m, g_kv_dtype, len, p.max_tokens);
        if (jb > pool_job_max) pool_job_max = jb;
    }
    size_t pool = o->kv_bytes > 0 ? (size_t)o->kv_bytes : 4 * pool_job_max;
    int n_pool = 0;
    for (int bi = 0; !rc && bi < n_bud; bi++) {
        bb_row_t *r = &pool_rows[n_pool];
        memset(r, 0, sizeof *r);
        r->budget = budgets[bi];
        r->length = pool_prompts[bi].length;
        fprintf(stderr, "hired bench: fixed pool of %zu bytes, r=%.2f, %d jobs...\n", pool, budgets[bi], BB_POOL_JOBS);
        rc = bb_run(m, &pool_prompts[bi], &p, BB_POOL_JOBS, BB_POOL_JOBS, pool, true, r, err);
        if (!rc) n_pool++;
    }
    for (int i = 0; i < n_bud; i++) k_device_free(dev, pool_prompts[i].embeds);
    if (rc) fprintf(stderr, "hired bench: %s\n", err);

    printf("| r | prompt | in flight | agg decode tok/s | x vs 1 | agg e2e tok/s | req tok/s | TTFT p50 ms | TTFT p95 ms "
           "| KV/job MiB | peak running | KV peak MiB |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < n_rows; i++) {
        const bb_row_t *r = &rows[i];
        double base = NAN;
        for (int j = 0; j < n_rows; j++)
            if (rows[j].budget == r->budget && rows[j].conc == 1) base = rows[j].agg_decode;
        printf("| %.2f | %d | %d | %.1f | %.2f | %.1f | %.1f | %.0f | %.0f | %.2f | %d | %.2f |\n", r->budget, r->length,
               r->conc, r->agg_decode, r->agg_decode / base, r->agg_e2e, r->req_tok_s, r->ttft50, r->ttft95,
               (double)r->job_kv / (1 << 20), r->peak, (double)r->job_kv * r->peak / (1 << 20));
    }
    double top = NAN;
    for (int i = 0; i < n_pool; i++)
        if (pool_rows[i].budget == max_budget) top = pool_rows[i].peak;
    printf("\nFixed KV pool of %.2f MiB, %d jobs submitted at once with prompts of %d text + r x %d visual positions: "
           "the most jobs admitted at once (the scheduler's count; each job ends once all are submitted and it is "
           "admitted)\n\n| r | prompt | KV/job MiB | peak running | x vs r=%.2f |\n|---|---|---|---|---|\n",
           (double)pool / (1 << 20), BB_POOL_JOBS, BB_TEXT_POSITIONS, (int)o->pool_image_tokens, max_budget);
    for (int i = 0; i < n_pool; i++)
        printf("| %.2f | %d | %.2f | %d | %.2f |\n", pool_rows[i].budget, pool_rows[i].length,
               (double)pool_rows[i].job_kv / (1 << 20), pool_rows[i].peak, pool_rows[i].peak / top);

    if (o->json && o->json[0] && (n_rows || n_pool)) {
        cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "concurrency"),
              *parr = cJSON_AddArrayToObject(root, "fixed_pool");
        cJSON_AddNumberToObject(root, "text_layers", tc->layers);
        cJSON_AddStringToObject(root, "weights", llm_weights_name(llm_weights(gen_model_llm(m))));
        cJSON_AddNumberToObject(root, "hidden", tc->hidden);
        cJSON_AddNumberToObject(root, "max_tokens", p.max_tokens);
        cJSON_AddNumberToObject(root, "pool_bytes", (double)pool);
        for (int k = 0; k < 2; k++)
            for (int i = 0; i < (k ? n_pool : n_rows); i++) {
                const bb_row_t *r = k ? &pool_rows[i] : &rows[i];
                cJSON *e = cJSON_CreateObject();
                cJSON_AddNumberToObject(e, "budget", r->budget);
                cJSON_AddNumberToObject(e, "prompt", r->length);
                cJSON_AddNumberToObject(e, "in_flight", r->conc);
                cJSON_AddNumberToObject(e, "agg_decode_tok_s", r->agg_decode);
                cJSON_AddNumberToObject(e, "agg_e2e_tok_s", r->agg_e2e);
                cJSON_AddNumberToObject(e, "req_tok_s_p50", r->req_tok_s);
                cJSON_AddNumberToObject(e, "ttft_ms_p50", r->ttft50);
                cJSON_AddNumberToObject(e, "ttft_ms_p95", r->ttft95);
                cJSON_AddNumberToObject(e, "kv_bytes_per_job", (double)r->job_kv);
                cJSON_AddNumberToObject(e, "pool_bytes", (double)r->pool);
                cJSON_AddNumberToObject(e, "peak_running", r->peak);
                cJSON_AddItemToArray(k ? parr : arr, e);
            }
        char *text = cJSON_Print(root);
        FILE *f = text ? fopen(o->json, "w") : NULL;
        if (!f || fputs(text, f) < 0) {
            fprintf(stderr, "hired bench: cannot write %s\n", o->json);
            rc = rc ? rc : HIRED_EIO;
        }
        if (f) fclose(f);
        free(text);
        cJSON_Delete(root);
        if (!rc) printf("\nJSON: %s\n", o->json);
    }
    for (int i = 0; i < n_bud; i++) k_device_free(dev, prompts[i].embeds);
    k_ctx_destroy(&ctx);
    gen_model_destroy(&m);
    k_device_close(&dev);
    return rc ? 1 : 0;
}
