/* test_delivery.c — nothing accepted is lost (docs/protocol.md §5 "Guarantees"), through the
 * fault-injecting proxy (faultproxy.h) and the real hired-broker, hired-encoder and two
 * hired-decoders on the tiny LLaVA-1.5 model. Four clients run at once, each through its own
 * proxy to the broker's frontend, and the workers reach the backend through a fifth:
 *   stall   10 jobs; the broker -> client direction stops for HIRED_TEST_STALL_MS (60 s) right
 *           after the jobs are submitted: a reader that stopped reading
 *   slow    10 jobs over a link throttled to 150 kB/s
 *   crawl   10 jobs over a link throttled to 10 kB/s (the broker's sends back up)
 *   resets  50 streaming jobs (256 tokens each), submitted over a few seconds, on connections
 *           reset (TCP RST) every 2 s
 *   workers their connections reset every 3 s (the first 4 times) and throttled to 400 kB/s
 *           towards the broker, so the streams last long enough to be cut
 * Every job must end at its client with exactly the text `hired run` computes in-process for
 * the same image, question and seed (greedy and sampled), one ACCEPTED, no gap, no repeat; the
 * broker's counters must agree (completed = delivered = jobs, nothing failed, nothing left
 * undelivered); and each fault must have happened (the proxies' counters say so). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "clock.h"
#include "faultproxy.h"
#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define N_IMG 2
#define N_ASK 6

typedef struct {
    const char *prompt;
    double temperature;
    int top_k, max_tokens;
    uint64_t seed;
} ask_t;

static const char *const k_images[N_IMG] = {"tiny.png", "coffee_wide.jpg"};
static const ask_t k_asks[N_ASK] = {
    {"Describe the picture in detail.", 0, 0, 256, 0},
    {"What is in the picture?", 0.9, 40, 48, 7},
    {"Tell a long story about it.", 0.8, 0, 256, 4242},
    {"Where was this taken?", 0, 0, 32, 0},
    {"Count the objects.", 1.1, 20, 64, 99},
    {"Describe the colours.", 0.7, 0, 128, 12345},
};

static char g_expect[N_IMG][N_ASK][16384];
static uint8_t *g_img[N_IMG];
static size_t g_img_n[N_IMG];
static hired_params g_par[N_ASK];

typedef struct {
    const char *name;
    int n;
    h_result *r;
    int *kind; /* [n] image * N_ASK + ask */
    hired_client *c;
    fp_t *px;
    char ep[64];
    int timeout_ms, finals;
    atomic_bool done;
    pthread_t th;
} lane_t;

static void *collect(void *arg) {
    lane_t *l = arg;
    l->finals = h_collect(l->c, l->r, l->n, l->timeout_ms);
    atomic_store(&l->done, true);
    return NULL;
}

/* Waits for lane l; meanwhile stops the worker-link resets after `max_resets`. */
static void join_lane(lane_t *l, fp_t *pw, uint64_t max_resets) {
    while (!atomic_load(&l->done)) {
        h_sleep_ms(50);
        fp_stats_t st;
        fp_get_stats(pw, &st);
        if (st.resets >= max_resets) fp_reset_every(pw, 0);
    }
    pthread_join(l->th, NULL);
}

static void submit(lane_t *l, int i) {
    int k = l->kind[i] = (i * 7 + 3) % (N_IMG * N_ASK), im = k / N_ASK, a = k % N_ASK;
    CHECK(rt_submit(l->c, MODEL, g_img[im], g_img_n[im], k_asks[a].prompt, &g_par[a], &l->r[i]) == 0);
}

static int check_lane(const lane_t *l) {
    int good = 0;
    for (int i = 0; i < l->n; i++) {
        const h_result *r = &l->r[i];
        const char *want = g_expect[l->kind[i] / N_ASK][l->kind[i] % N_ASK];
        bool ok = r->final == HIRED_EVENT_DONE && r->accepted == 1 && r->gaps == 0 && r->dups == 0 &&
                  rt_same_prefix(r->text, sizeof r->text, want) && rt_same_prefix(r->done_text, sizeof r->done_text, want);
        if (!ok)
            fprintf(stderr, "%s job %d: final %d accepted %d gaps %d dups %d tokens %d msg '%s'\n  got  '%.80s'\n  want '%.80s'\n",
                    l->name, i, r->final, r->accepted, r->gaps, r->dups, r->tokens, r->message, r->text, want);
        good += ok;
    }
    return good;
}

static long status_num(hired_client *c, const char *key) {
    char *js = NULL;
    if (hired_status(c, &js)) return -1;
    cJSON *root = cJSON_Parse(js);
    free(js);
    cJSON *v = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "counters"), key);
    if (!v) v = cJSON_GetObjectItem(root, key);
    long n = cJSON_IsNumber(v) ? (long)v->valuedouble : -1;
    cJSON_Delete(root);
    return n;
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    const char *stall_env = getenv("HIRED_TEST_STALL_MS");
    const int stall_ms = stall_env ? atoi(stall_env) : 60000;
    h_init(stall_ms / 1000 + 400);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", "--broker.liveness=3", "--broker.max_attempts=50", NULL};
    h_broker(NULL, NULL, bopts, front, back);

    /* the workers reach the broker through a proxy that cuts and throttles their links */
    char wep[64];
    fp_t *pw = fp_start(back, wep);
    CHECK(pw != NULL);
    static char dir[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));
    const char *eopts[] = {"--encoder.cache_entries=4", "--worker.drain_ms=2000", "--worker.warmup=false", NULL};
    const char *dopts[] = {"--decoder.capacity=2", "--worker.drain_ms=2000", "--worker.warmup=false", NULL};
    rt_encoder(wep, dir, eopts);
    rt_decoder(wep, dir, dopts);
    rt_decoder(wep, dir, dopts);

    /* the expected answers, in this process */
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    for (int a = 0; a < N_ASK; a++) {
        hired_job j;
        hired_job_init(&j);
        g_par[a] = j.params;
        g_par[a].temperature = k_asks[a].temperature;
        g_par[a].top_k = k_asks[a].top_k;
        g_par[a].max_tokens = k_asks[a].max_tokens;
        g_par[a].seed = k_asks[a].seed;
    }
    for (int i = 0; i < N_IMG && m; i++) {
        CHECK(rt_read(rt_image(k_images[i]), &g_img[i], &g_img_n[i]) == 0);
        visual_t vis;
        CHECK(rt_encode(m, g_img[i], g_img_n[i], &g_par[0], WIRE_DTYPE_F16, &vis) == 0);
        for (int a = 0; a < N_ASK; a++)
            CHECK(rt_answer(m, &vis, k_asks[a].prompt, &g_par[a], NULL, g_expect[i][a], sizeof g_expect[i][a], NULL) == 0);
        visual_free(&vis);
    }
    rt_model_destroy(&m);

    /* the four clients, each behind its own proxy */
    static h_result r_stall[10], r_slow[10], r_crawl[10], r_reset[50];
    static int k_stall[10], k_slow[10], k_crawl[10], k_reset[50];
    lane_t lanes[4] = {
        {.name = "stall", .n = 10, .r = r_stall, .kind = k_stall},
        {.name = "slow", .n = 10, .r = r_slow, .kind = k_slow},
        {.name = "crawl", .n = 10, .r = r_crawl, .kind = k_crawl},
        {.name = "resets", .n = 50, .r = r_reset, .kind = k_reset},
    };
    hired_client_opts co = {.timeout_ms = stall_ms + 300000, .heartbeat_ms = 200};
    for (int l = 0; l < 4; l++) {
        lanes[l].px = fp_start(front, lanes[l].ep);
        CHECK(lanes[l].px != NULL);
        lanes[l].c = hired_client_new(lanes[l].ep, &co);
        CHECK(lanes[l].c != NULL);
        lanes[l].timeout_ms = stall_ms + 280000;
    }
    CHECK(h_wait_workers(lanes[0].c, MODEL, 1, 2, 60000));
    fp_rate(pw, FP_UP, 400000);
    fp_reset_every(pw, 3000);
    fp_rate(lanes[1].px, FP_DOWN, 150000);
    fp_rate(lanes[2].px, FP_DOWN, 10000);
    fp_reset_every(lanes[3].px, 2000);

    /* stall: submitted, then the broker -> client direction stops */
    for (int i = 0; i < lanes[0].n; i++) submit(&lanes[0], i);
    fp_stall(lanes[0].px, FP_DOWN, true);
    int64_t t_stall = clock_now_ms();
    for (int l = 1; l < 3; l++)
        for (int i = 0; i < lanes[l].n; i++) submit(&lanes[l], i);
    for (int l = 0; l < 3; l++) pthread_create(&lanes[l].th, NULL, collect, &lanes[l]);
    /* resets: 50 jobs in bursts of 10 over 4 s, collected meanwhile (the jobs must be in flight
     * across several resets) */
    for (int i = 0; i < lanes[3].n; i++) {
        submit(&lanes[3], i);
        if (i % 10 == 9) h_collect(lanes[3].c, lanes[3].r, i + 1, 1000);
    }
    pthread_create(&lanes[3].th, NULL, collect, &lanes[3]);
    join_lane(&lanes[3], pw, 4);
    fp_stats_t st;
    fp_get_stats(lanes[3].px, &st);
    fprintf(stderr, "resets lane: %d/%d final, %llu client connections reset\n", lanes[3].finals, lanes[3].n,
            (unsigned long long)st.resets);
    CHECK_MSG(st.resets >= 2, "the resetting proxy reset only %llu connections", (unsigned long long)st.resets);
    for (int l = 1; l < 3; l++) join_lane(&lanes[l], pw, 4);
    while (clock_now_ms() - t_stall < stall_ms) h_sleep_ms(100);
    fp_stall(lanes[0].px, FP_DOWN, false);
    join_lane(&lanes[0], pw, 4);

    int total = 0, good = 0;
    for (int l = 0; l < 4; l++) {
        int g = check_lane(&lanes[l]);
        fprintf(stderr, "%s: %d of %d jobs exact\n", lanes[l].name, g, lanes[l].n);
        CHECK_EQ_INT(lanes[l].finals, lanes[l].n);
        CHECK_EQ_INT(g, lanes[l].n);
        total += lanes[l].n;
        good += g;
    }
    fprintf(stderr, "all lanes: %d of %d jobs exact\n", good, total);
    /* the faults happened */
    fp_get_stats(lanes[0].px, &st);
    CHECK_MSG(st.stalled_ms + 200 >= (uint64_t)stall_ms, "stalled for %llu ms", (unsigned long long)st.stalled_ms);
    fp_stats_t s1, s2, sw;
    fp_get_stats(lanes[1].px, &s1);
    fp_get_stats(lanes[2].px, &s2);
    fp_get_stats(pw, &sw);
    CHECK(s1.bytes_down > 10000 && s2.bytes_down > 10000);
    CHECK_MSG(sw.resets >= 1, "worker links reset %llu times", (unsigned long long)sw.resets);
    fprintf(stderr, "proxies: stall %llu ms; slow %llu B, crawl %llu B down; worker links reset %llu times\n",
            (unsigned long long)st.stalled_ms, (unsigned long long)s1.bytes_down, (unsigned long long)s2.bytes_down,
            (unsigned long long)sw.resets);

    /* the broker agrees with what the clients received, once every ACK has arrived */
    hired_client *cs = hired_client_new(front, &co);
    long delivered = 0;
    for (int i = 0; i < 100 && (delivered = status_num(cs, "delivered")) < total; i++) h_sleep_ms(100);
    CHECK_EQ_INT(delivered, total);
    CHECK_EQ_INT(status_num(cs, "completed"), total);
    CHECK_EQ_INT(status_num(cs, "accepted"), total);
    CHECK_EQ_INT(status_num(cs, "failed"), 0);
    CHECK_EQ_INT(status_num(cs, "active_jobs"), 0);
    CHECK_EQ_INT(status_num(cs, "undelivered_results"), 0);
    long resumed = status_num(cs, "resumed"), requeued = status_num(cs, "requeued");
    fprintf(stderr, "broker: %ld jobs delivered, %ld resumes, %ld re-queued, %ld send retries, %ld unreachable sends\n",
            delivered, resumed, requeued, status_num(cs, "send_retries"), status_num(cs, "unreachable"));
    CHECK(resumed > 0);
    hired_client_destroy(&cs);
    for (int l = 0; l < 4; l++) {
        hired_client_destroy(&lanes[l].c);
        fp_stop(&lanes[l].px);
    }
    fp_stop(&pw);
    for (int i = 0; i < N_IMG; i++) free(g_img[i]);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
