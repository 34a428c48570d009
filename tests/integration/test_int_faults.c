/* test_int_faults.c — worker deaths. kill -9 of a decoder in the middle of streaming: its jobs
 * are re-queued to the other decoder, complete with the right text, and the client sees every
 * token exactly once (seeded decode repeats the same tokens; the broker and the client drop the
 * repeats). kill -9 of an encoder mid-encode: re-queued, the job completes. A stopped (SIGSTOP)
 * decoder goes silent: the broker declares it dead after the heartbeat liveness and re-queues.
 * No sleep stands in for synchronisation: each fault is injected once the client or the broker
 * shows the state it needs (tokens arriving, the job "encoding" in STATUS), and each scenario
 * fails unless its fault was seen (jobs still streaming when the decoder died, the broker's
 * requeued / workers_lost counters moving). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "harness.h"
#include "test.h"

#define MODEL "fake-llava"
#define N 6

static int check_all(h_result *r, int n) {
    int ok = 0;
    for (int k = 0; k < n; k++) {
        bool good = r[k].final == HIRED_EVENT_DONE && r[k].gaps == 0 && r[k].dups == 0 && r[k].accepted == 1 &&
                    !strcmp(r[k].text, r[k].expect);
        if (!good)
            fprintf(stderr, "job %d: final %d gaps %d dups %d text '%s' want '%s' msg '%s'\n", k, r[k].final,
                    r[k].gaps, r[k].dups, r[k].text, r[k].expect, r[k].message);
        ok += good;
    }
    return ok;
}

/* Feeds events into r[n] until every job has a TOKEN or has ended; false after timeout_ms. */
static bool wait_streaming(hired_client *c, h_result *r, int n, int timeout_ms) {
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        int ready = 0;
        for (int k = 0; k < n; k++) ready += r[k].tokens >= 1 || r[k].final;
        if (ready == n) return true;
        h_collect(c, r, n, 20);
    }
    return false;
}

/* The state of job id in the broker's STATUS ("queued-encode", "encoding", ...), "" if absent. */
static const char *job_state(hired_client *c, const char *id) {
    static char state[32];
    state[0] = 0;
    char *json = NULL;
    if (hired_status(c, &json)) return state;
    cJSON *root = cJSON_Parse(json);
    free(json);
    const cJSON *j;
    cJSON_ArrayForEach(j, cJSON_GetObjectItemCaseSensitive(root, "inflight")) {
        const cJSON *jid = cJSON_GetObjectItemCaseSensitive(j, "id"), *st = cJSON_GetObjectItemCaseSensitive(j, "state");
        if (cJSON_IsString(jid) && !strcmp(jid->valuestring, id) && cJSON_IsString(st))
            snprintf(state, sizeof state, "%s", st->valuestring);
    }
    cJSON_Delete(root);
    return state;
}

/* Polls STATUS until job id is in state want; false after timeout_ms. */
static bool wait_state(hired_client *c, const char *id, const char *want, int timeout_ms) {
    for (int waited = 0; waited <= timeout_ms; waited += 20) {
        if (!strcmp(job_state(c, id), want)) return true;
        h_sleep_ms(20); /* poll interval */
    }
    fprintf(stderr, "job %s: state '%s', waited for '%s'\n", id, job_state(c, id), want);
    return false;
}

int main(void) {
    h_init(55);
    char front[256], back[256];
    const char *opts[] = {"--broker.heartbeat_ms=100", "--broker.liveness=3", NULL};
    h_broker(NULL, NULL, opts, front, back);
    h_worker(back, "encode", MODEL, 2, 0);
    pid_t d1 = h_worker(back, "decode", MODEL, N, 40);
    hired_client_opts co = {.timeout_ms = 30000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 10000));

    /* 1. decoder killed mid-stream: d1 holds the first jobs (a new worker may hold two), they
     * are streaming; after the kill a second decoder takes every job over. */
    h_result r[N];
    for (int k = 0; k < N; k++) {
        char prompt[128];
        snprintf(prompt, sizeof prompt, "w%d alpha beta gamma delta epsilon zeta eta theta iota kappa", k);
        CHECK(h_submit(c, MODEL, prompt, 0, &r[k]) == 0);
    }
    CHECK_MSG(wait_streaming(c, r, N, 20000), "the jobs never started streaming");
    int streaming = 0; /* jobs d1 was in the middle of when it died */
    for (int k = 0; k < N; k++) streaming += r[k].tokens >= 1 && !r[k].final;
    h_kill(d1, SIGKILL);
    CHECK_EQ_INT(h_wait(d1, 2000), 128 + SIGKILL);
    h_worker(back, "decode", MODEL, N, 5); /* after the kill: nothing can move off d1 before */
    CHECK_MSG(streaming >= 1, "no job was streaming when the decoder was killed");
    CHECK_EQ_INT(h_collect(c, r, N, 30000), N);
    CHECK_EQ_INT(check_all(r, N), N);
    CHECK_MSG(h_status_counter(c, "requeued") >= streaming, "requeued %ld, %d jobs were streaming",
              h_status_counter(c, "requeued"), streaming);
    CHECK(h_status_counter(c, "workers_lost") >= 1);

    /* 2. encoder killed mid-encode (slow encoder, then a fast one appears) */
    pid_t slow = h_worker(back, "encode", "m2", 1, 3000);
    h_worker(back, "decode", "m2", 1, 0);
    CHECK(h_wait_workers(c, "m2", 1, 1, 10000));
    h_result e;
    long requeued = h_status_counter(c, "requeued"), lost = h_status_counter(c, "workers_lost");
    CHECK(h_submit(c, "m2", "re encoded fine", 0, &e) == 0);
    CHECK(wait_state(c, e.id, "encoding", 10000)); /* on the slow encoder, the only one */
    h_worker(back, "encode", "m2", 1, 0);
    CHECK(h_wait_workers(c, "m2", 2, 1, 10000));
    h_kill(slow, SIGKILL);
    h_wait(slow, 2000);
    CHECK_EQ_INT(h_collect(c, &e, 1, 20000), 1);
    CHECK_EQ_INT(check_all(&e, 1), 1);
    CHECK_MSG(h_status_counter(c, "requeued") >= requeued + 1 && h_status_counter(c, "workers_lost") >= lost + 1,
              "requeued %ld -> %ld, workers_lost %ld -> %ld", requeued, h_status_counter(c, "requeued"), lost,
              h_status_counter(c, "workers_lost"));

    /* 3. a silent (stopped) decoder loses its job to a live one */
    pid_t stopped = h_worker(back, "decode", "m3", 1, 30);
    h_worker(back, "encode", "m3", 1, 0);
    CHECK(h_wait_workers(c, "m3", 1, 1, 10000));
    h_result s;
    requeued = h_status_counter(c, "requeued"), lost = h_status_counter(c, "workers_lost");
    CHECK(h_submit(c, "m3", "one two three four five six seven eight nine ten", 0, &s) == 0);
    CHECK_MSG(wait_streaming(c, &s, 1, 10000) && !s.final, "the job never streamed from the first decoder");
    h_kill(stopped, SIGSTOP);
    h_worker(back, "decode", "m3", 1, 0);
    CHECK_EQ_INT(h_collect(c, &s, 1, 20000), 1);
    CHECK_EQ_INT(check_all(&s, 1), 1);
    CHECK_MSG(h_status_counter(c, "requeued") >= requeued + 1 && h_status_counter(c, "workers_lost") >= lost + 1,
              "requeued %ld -> %ld, workers_lost %ld -> %ld", requeued, h_status_counter(c, "requeued"), lost,
              h_status_counter(c, "workers_lost"));
    h_kill(stopped, SIGKILL);
    h_wait(stopped, 2000);

    hired_client_destroy(&c);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
