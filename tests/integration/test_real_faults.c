/* test_real_faults.c — real worker deaths on the tiny LLaVA-NeXT model.
 *   1. kill -9 of a hired-encoder while it holds a job (STATUS shows the job "encoding"): the
 *      broker re-queues it, a new encoder takes it, and the job completes with the right text.
 *   2. kill -9 of a hired-decoder in the middle of streaming two long answers (both have
 *      tokens, neither is done; both ask about the image of part 1 with the same selection, so
 *      the new encoder answers them from its result cache and the second starts streaming while
 *      the first still runs): the broker re-queues them, a second decoder re-runs them with the same seeds, and
 *      each client stream has every token exactly once (no gap, no repeat) and the same text as
 *      `hired run` (f16 features on the wire, rounded the same way here). The sampled job's
 *      seed is picked in-process with this build (see SEEDS), not fixed in advance.
 * SIGTERM at the end: the surviving workers and the broker exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test.h"
#include "clock.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava-next-tiny"

/* Feeds events until every job in rs has at least min_tokens tokens (or one is final). */
static bool wait_tokens(hired_client *c, h_result *rs, int n, int min_tokens, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        int ready = 0;
        for (int i = 0; i < n; i++) {
            if (rs[i].final) return false;
            ready += rs[i].tokens >= min_tokens;
        }
        if (ready == n) return true;
        h_collect(c, rs, n, 20); /* returns after ~20 ms: no job is final */
    }
    return false;
}

static bool check_job(const h_result *r, const char *expect, const char *what) {
    bool ok = r->final == HIRED_EVENT_DONE && r->accepted == 1 && r->gaps == 0 && r->dups == 0 &&
              rt_same_prefix(r->text, sizeof r->text, expect) && rt_same_prefix(r->done_text, sizeof r->done_text, expect);
    if (!ok)
        fprintf(stderr, "%s: final %d accepted %d gaps %d dups %d msg '%s'\n  got  '%s'\n  want '%s'\n", what, r->final,
                r->accepted, r->gaps, r->dups, r->message, r->text, expect);
    return ok;
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.liveness=3", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    const char *dir = rt_model_dir(MODEL);
    const char *wopts[] = {"--worker.drain_ms=2000", "--worker.warmup=false", NULL};
    pid_t e1 = rt_encoder(back, dir, wopts);
    pid_t d1 = rt_decoder(back, dir, wopts);

    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    uint8_t *img = NULL;
    size_t n = 0;
    CHECK(rt_read(rt_image("tiny.png"), &img, &n) == 0);
#define LONG 600
#define SEEDS 48         /* sampling seeds tried at most */
#define SEARCH_MS 15000  /* ... or until this long has passed with an answer of LONG/2+ tokens */
    hired_job j;
    hired_job_init(&j);
    hired_params p_enc = j.params, p_long = j.params, p_long2 = j.params;
    p_enc.max_tokens = 8;
    p_long.max_tokens = LONG;
    p_long2.max_tokens = LONG;
    p_long2.temperature = 0.9;
    p_long2.top_k = 40;
    p_long2.seed = 4242;
    static char x_enc[1024], x_long[16384], x_long2[16384];
    int g1 = 0, g2 = 0;
    if (m) { /* one image, one selection: the same visual for all three jobs */
        visual_t vis;
        CHECK(rt_encode(m, img, n, &p_enc, WIRE_DTYPE_F16, &vis) == 0);
        CHECK(rt_answer(m, &vis, "What is this?", &p_enc, NULL, x_enc, sizeof x_enc, NULL) == 0);
        CHECK(rt_answer(m, &vis, "Describe the picture in detail.", &p_long, NULL, x_long, sizeof x_long, &g1) == 0);
        /* A sampling seed whose answer is long, chosen here with the same binary the workers
         * run: the first seed that runs to max_tokens, else the longest of SEEDS. Which seeds
         * stop early differs between builds (-O2 vs -O0 + sanitizers round differently where two
         * probabilities nearly tie), so no particular seed is assumed to run long. */
        const uint64_t seed0 = p_long2.seed;
        uint64_t best_seed = seed0;
        int best = -1;
        const int64_t t_search = clock_now_ms();
        for (int t = 0; t < SEEDS && best != LONG && (best < LONG / 2 || clock_now_ms() - t_search < SEARCH_MS); t++) {
            p_long2.seed = seed0 + (uint64_t)t;
            CHECK(rt_answer(m, &vis, "Write a long story.", &p_long2, NULL, x_long2, sizeof x_long2, &g2) == 0);
            if (g2 > best) best = g2, best_seed = p_long2.seed;
        }
        if (p_long2.seed != best_seed) { /* the expected text of the chosen seed */
            p_long2.seed = best_seed;
            CHECK(rt_answer(m, &vis, "Write a long story.", &p_long2, NULL, x_long2, sizeof x_long2, &g2) == 0);
        }
        fprintf(stderr, "sampled job: seed %llu, %d tokens (%lld ms of search)\n", (unsigned long long)p_long2.seed,
                g2, (long long)(clock_now_ms() - t_search));
        visual_free(&vis);
    }
    rt_model_destroy(&m);
    /* the answers must be long enough to be caught mid-stream: the greedy one runs to
     * max_tokens; the sampled one is the longest found (the mid-stream CHECK below is the real
     * requirement, this one only names the cause when it fails) */
    CHECK_EQ_INT(g1, LONG);
    CHECK_MSG(g2 >= LONG / 3, "no seed of %d gave a sampled answer of %d+ tokens (longest %d)", SEEDS, LONG / 3, g2);

    hired_client_opts co = {.timeout_ms = 50000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 30000));

    /* 1. encoder killed while it holds the job */
    h_result r;
    CHECK(rt_submit(c, MODEL, img, n, "What is this?", &p_enc, &r) == 0);
    char state[32] = "";
    for (int i = 0; i < 400 && strcmp(state, "encoding"); i++) {
        rt_job_state(c, r.id, state, sizeof state);
        if (strcmp(state, "encoding")) h_sleep_ms(10);
    }
    CHECK_MSG(!strcmp(state, "encoding"), "job state '%s'", state);
    h_kill(e1, SIGKILL);
    CHECK_EQ_INT(h_wait(e1, 5000), 128 + SIGKILL);
    const char *copts[] = {"--worker.drain_ms=2000", "--worker.warmup=false", "--encoder.cache_entries=4", NULL};
    rt_encoder(back, dir, copts); /* the replacement, with a result cache for part 2 */
    CHECK_EQ_INT(h_collect(c, &r, 1, 30000), 1);
    CHECK(check_job(&r, x_enc, "re-encoded job"));
    CHECK(h_status_counter(c, "workers_lost") >= 1);

    /* 2. decoder killed mid-stream: both long jobs are on d1 (capacity 2) and streaming */
    h_result s[2];
    CHECK(rt_submit(c, MODEL, img, n, "Describe the picture in detail.", &p_long, &s[0]) == 0);
    CHECK(wait_tokens(c, s, 1, 1, 30000));
    CHECK(rt_submit(c, MODEL, img, n, "Write a long story.", &p_long2, &s[1]) == 0);
    CHECK(wait_tokens(c, s, 2, 3, 30000));
    CHECK(s[0].final == 0 && s[1].final == 0);
    h_kill(d1, SIGKILL);
    CHECK_EQ_INT(h_wait(d1, 5000), 128 + SIGKILL);
    fprintf(stderr, "decoder killed after %d and %d tokens\n", s[0].tokens, s[1].tokens);
    rt_decoder(back, dir, wopts);
    CHECK_EQ_INT(h_collect(c, s, 2, 40000), 2);
    CHECK(check_job(&s[0], x_long, "re-decoded job 0"));
    CHECK(check_job(&s[1], x_long2, "re-decoded job 1"));
    CHECK(h_status_counter(c, "requeued") >= 3);

    hired_client_destroy(&c);
    free(img);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
