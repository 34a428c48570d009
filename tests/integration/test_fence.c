/* test_fence.c — SIGSTOP / SIGCONT of the only decoder and of the only encoder in the middle of
 * a job, again and again, with the real hired-broker and workers on the tiny LLaVA-NeXT model:
 * every job must end with exactly the text `hired run` computes (docs/protocol.md §5, "Never a
 * spliced answer"). Two kinds of stop, each in its own broker:
 *   dead     the worker is stopped longer than heartbeat x liveness: the broker declares it
 *            dead and re-queues; on SIGCONT it comes back as a new registration (its old
 *            session's messages are dropped) and runs the job again;
 *   timeout  (the one-partition model) the only decoder is stopped when the job reaches it and
 *            stays stopped longer than
 *            the attempt timeout but shorter than liveness: the broker gives up the attempt and,
 *            the worker being the only one, sends it the job again under a new attempt, so the
 *            stopped process holds two attempts of one job. On SIGCONT it must serve only the
 *            new one, and the broker must take nothing from the old one.
 * In the dead phase the decoder's link to the broker is throttled (faultproxy.h) so that a
 * stream lasts long enough to be caught in the middle (the tiny model decodes thousands of
 * tokens a second). A round counts only when the fault provably hit the job mid-way (tokens
 * received and none final before the stop, or the job "encoding" while the encoder is stopped;
 * the broker's own counter moved while the worker was stopped), and each kind needs its
 * rounds. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "faultproxy.h"
#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define N_ASK 3

static const char *const k_prompts[N_ASK] = {"Describe the picture in detail.", "Write a long story.",
                                             "What is in the picture?"};
static char g_expect[N_ASK][16384];
static hired_params g_par[N_ASK];
static uint8_t *g_img;
static size_t g_img_n;
static const char *g_model; /* the phase's model */

/* The answers of model to image, in-process (the phase's model and image from here on). */
static void expect_for(const char *model, const char *image) {
    g_model = model;
    free(g_img);
    g_img = NULL;
    CHECK(rt_read(rt_image(image), &g_img, &g_img_n) == 0);
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(rt_model_dir(model), err);
    CHECK_MSG(m != NULL, "%s", err);
    if (!m) return;
    visual_t vis;
    CHECK(rt_encode(m, g_img, g_img_n, &g_par[0], WIRE_DTYPE_F16, &vis) == 0);
    for (int a = 0; a < N_ASK; a++)
        CHECK(rt_answer(m, &vis, k_prompts[a], &g_par[a], NULL, g_expect[a], sizeof g_expect[a], NULL) == 0);
    visual_free(&vis);
    rt_model_destroy(&m);
}

static bool exact(const h_result *r, int a, const char *what) {
    bool ok = r->final == HIRED_EVENT_DONE && r->accepted == 1 && r->gaps == 0 && r->dups == 0 &&
              rt_same_prefix(r->text, sizeof r->text, g_expect[a]) && rt_same_prefix(r->done_text, sizeof r->done_text, g_expect[a]);
    if (!ok)
        fprintf(stderr, "%s: final %d accepted %d gaps %d dups %d '%s'\n  got  '%.60s'\n  want '%.60s'\n", what, r->final,
                r->accepted, r->gaps, r->dups, r->message, r->text, g_expect[a]);
    return ok;
}

/* Waits (up to ms) until the counter moves past `from`; returns whether it did. */
static bool counter_moves(hired_client *c, const char *name, long from, int ms) {
    for (int w = 0; w < ms; w += 50) {
        if (h_status_counter(c, name) > from) return true;
        h_sleep_ms(50);
    }
    return false;
}

/* Dead round: a long job streams, the decoder is stopped for stop_ms while the broker's
 * `evidence` counter must move, then continued. Returns 1 when the fault hit mid-stream and the
 * text was exact, 0 when the round did not catch the job mid-way, -1 when the text was wrong. */
static int decoder_round(hired_client *c, pid_t dec, int a, int stop_ms, const char *evidence, const char *what) {
    h_result r;
    CHECK(rt_submit(c, g_model, g_img, g_img_n, k_prompts[a], &g_par[a], &r) == 0);
    for (int w = 0; w < 30000 && r.tokens < 3 && !r.final; w += 20) h_collect(c, &r, 1, 20);
    bool mid = r.tokens >= 3 && !r.final;
    int at = r.tokens;
    long before = h_status_counter(c, evidence);
    if (mid) kill(dec, SIGSTOP);
    bool moved = mid && counter_moves(c, evidence, before, stop_ms + 5000);
    if (mid) {
        h_sleep_ms(stop_ms / 4);
        kill(dec, SIGCONT);
    }
    CHECK_EQ_INT(h_collect(c, &r, 1, 120000), 1);
    bool ok = exact(&r, a, what);
    fprintf(stderr, "%s: stopped after %d of %d tokens, broker %s %s; text %s\n", what, at, r.tokens, evidence,
            moved ? "moved" : "did not move", ok ? "exact" : "WRONG");
    return !ok ? -1 : (mid && moved) ? 1 : 0;
}

/* One encoder round: the job is caught "encoding", the encoder stopped; it counts when the job
 * is still "encoding" while the encoder is stopped and the evidence counter moves. */
static int encoder_round(hired_client *c, pid_t enc, int a, int stop_ms, const char *evidence, const char *what) {
    h_result r;
    CHECK(rt_submit(c, g_model, g_img, g_img_n, k_prompts[a], &g_par[a], &r) == 0);
    char state[32] = "";
    for (int w = 0; w < 20000 && strcmp(state, "encoding"); w += 5) {
        rt_job_state(c, r.id, state, sizeof state);
        if (strcmp(state, "encoding")) h_sleep_ms(5);
    }
    bool mid = !strcmp(state, "encoding");
    long before = h_status_counter(c, evidence);
    if (mid) {
        kill(enc, SIGSTOP);
        rt_job_state(c, r.id, state, sizeof state);
        mid = !strcmp(state, "encoding"); /* its RESULT did not get out just before the stop */
    }
    bool moved = mid && counter_moves(c, evidence, before, stop_ms + 5000);
    if (!strcmp(state, "encoding") || mid) {
        h_sleep_ms(stop_ms / 4);
        kill(enc, SIGCONT);
    }
    kill(enc, SIGCONT);
    CHECK_EQ_INT(h_collect(c, &r, 1, 120000), 1);
    bool ok = exact(&r, a, what);
    fprintf(stderr, "%s: stopped while encoding: %s, broker %s %s; text %s\n", what, mid ? "yes" : "no", evidence,
            moved ? "moved" : "did not move", ok ? "exact" : "WRONG");
    return !ok ? -1 : (mid && moved) ? 1 : 0;
}

/* Timeout round: the decoder is stopped before the job reaches it; the job is dispatched to it,
 * its attempt times out and it is dispatched to it again; then SIGCONT. */
static int stopped_round(hired_client *c, pid_t dec, int a, const char *what) {
    long before = h_status_counter(c, "requeued");
    kill(dec, SIGSTOP);
    h_result r;
    CHECK(rt_submit(c, g_model, g_img, g_img_n, k_prompts[a], &g_par[a], &r) == 0);
    bool moved = counter_moves(c, "requeued", before, 60000);
    kill(dec, SIGCONT);
    CHECK_EQ_INT(h_collect(c, &r, 1, 120000), 1);
    bool ok = exact(&r, a, what);
    fprintf(stderr, "%s: attempt given up while stopped: %s; text %s\n", what, moved ? "yes" : "no",
            ok ? "exact" : "WRONG");
    return !ok ? -1 : moved ? 1 : 0;
}

/* A broker with `bopts`, one encoder and one decoder (its link throttled to `rate` B/s when
 * non-zero), and `want` counted rounds of each kind within `tries`. */
static void phase(const char *name, const char *const *bopts, int hb, int stop_ms, size_t rate, bool timeout,
                  int want, int tries) {
    char front[256], back[256], dep[64], hbopt[64];
    pid_t b = h_broker(NULL, NULL, bopts, front, back);
    fp_t *px = fp_start(back, dep);
    CHECK(px != NULL);
    if (rate) fp_rate(px, FP_UP, rate);
    snprintf(hbopt, sizeof hbopt, "--broker.heartbeat_ms=%d", hb);
    static char dir[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(g_model));
    const char *wopts[] = {"--worker.drain_ms=0", "--worker.warmup=false", hbopt, NULL};
    pid_t enc = rt_encoder(back, dir, wopts);
    pid_t dec = rt_decoder(dep, dir, wopts);
    hired_client_opts co = {.timeout_ms = 120000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, g_model, 1, 1, 60000));
    char what[64];
    int got = 0;
    for (int t = 0; t < tries && got < want; t++) {
        snprintf(what, sizeof what, "%s decoder round %d", name, t);
        int rc = timeout ? stopped_round(c, dec, t % 2, what)
                         : decoder_round(c, dec, t % 2, stop_ms, "workers_lost", what);
        CHECK(rc >= 0);
        got += rc > 0;
    }
    CHECK_MSG(got >= want, "%s: the decoder was caught in %d rounds of %d", name, got, tries);
    got = 0;
    for (int t = 0; !timeout && t < tries && got < want; t++) {
        snprintf(what, sizeof what, "%s encoder round %d", name, t);
        int rc = encoder_round(c, enc, 2, stop_ms, "workers_lost", what);
        CHECK(rc >= 0);
        got += rc > 0;
    }
    CHECK_MSG(timeout || got >= want, "%s: the encoder was caught mid-encode in %d rounds of %d", name, got, tries);
    fprintf(stderr, "%s: %ld worker messages of abandoned attempts ignored, %ld re-queued\n", name,
            h_status_counter(c, "fenced"), h_status_counter(c, "requeued"));
    CHECK_EQ_INT(h_status_counter(c, "failed"), 0);
    hired_client_destroy(&c);
    fp_stop(&px);
    kill(enc, SIGTERM), kill(dec, SIGTERM);
    CHECK_EQ_INT(h_wait(enc, 20000), 0);
    CHECK_EQ_INT(h_wait(dec, 20000), 0);
    kill(b, SIGTERM);
    CHECK_EQ_INT(h_wait(b, 10000), 0);
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(600);
    for (int a = 0; a < N_ASK; a++) {
        hired_job j;
        hired_job_init(&j);
        g_par[a] = j.params;
        g_par[a].max_tokens = a == 2 ? 8 : 400;
        if (a == 1) g_par[a].temperature = 0.9, g_par[a].top_k = 40, g_par[a].seed = 4242;
    }

    /* dead: silent 0.5 s = dead; stopped 1.5 s; the decoder's TOKENs at 100 kB/s. The
     * anyres model on a 5-partition image, so the encoder can be caught mid-encode. */
    expect_for("llava-next-tiny", "large.jpg");
    const char *dead[] = {"--broker.heartbeat_ms=100", "--broker.liveness=5", "--broker.max_attempts=20", NULL};
    phase("dead", dead, 100, 1500, 100000, false, 2, 6);
    /* timeout: no progress for 8 s loses the attempt (well above an encode of the one-partition
     * model, even in a sanitizer build), silence for 40 s would be death */
    expect_for("llava15-tiny", "tiny.png");
    const char *timeout[] = {"--broker.heartbeat_ms=400", "--broker.liveness=100", "--broker.attempt_timeout_ms=8000",
                             "--broker.max_attempts=20", "--broker.quarantine_after=0", NULL};
    phase("timeout", timeout, 400, 0, 0, true, 2, 4);

    free(g_img);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
