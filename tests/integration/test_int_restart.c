/* test_int_restart.c — the broker is killed (-9) while clients wait, and restarted on the same
 * ports: the workers re-announce themselves, the clients notice (epoch change or silence) and
 * resubmit their jobs by id, and every job completes exactly once per client view (no repeated
 * tokens, one ACCEPTED). Then a clean SIGTERM of the broker exits 0.
 * The kill waits for an observable state, not a delay: every job ACCEPTED by the first broker
 * and at least one still unfinished. The restarted broker must then have received the
 * unfinished jobs again (its own "submitted" counter), or the scenario did not happen. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "test.h"

#define MODEL "fake-llava"
#define N 8

int main(void) {
    h_init(55);
    char front[256], back[256], front2[256], back2[256];
    const char *opts[] = {"--broker.heartbeat_ms=100", NULL};
    pid_t b = h_broker(NULL, NULL, opts, front, back);
    h_worker(back, "encode", MODEL, 2, 0);
    h_worker(back, "decode", MODEL, 4, 30);
    hired_client_opts co = {.timeout_ms = 30000, .heartbeat_ms = 100};
    hired_client *c1 = hired_client_new(front, &co), *c2 = hired_client_new(front, &co);
    CHECK(h_wait_workers(c1, MODEL, 1, 1, 10000));
    h_result r1[N / 2], r2[N / 2];
    for (int k = 0; k < N / 2; k++) {
        char p[128];
        snprintf(p, sizeof p, "client one job %d one two three four five six", k);
        CHECK(h_submit(c1, MODEL, p, 0, &r1[k]) == 0);
        snprintf(p, sizeof p, "client two job %d seven eight nine ten", k);
        CHECK(h_submit(c2, MODEL, p, 0, &r2[k]) == 0);
    }
    /* every job accepted by this broker (events fed to the results as they come) */
    int accepted = 0;
    for (int waited = 0; accepted < N && waited <= 20000; waited += 20) {
        h_collect(c1, r1, N / 2, 10);
        h_collect(c2, r2, N / 2, 10);
        accepted = 0;
        for (int k = 0; k < N / 2; k++) accepted += (r1[k].accepted == 1) + (r2[k].accepted == 1);
    }
    CHECK_EQ_INT(accepted, N);
    h_kill(b, SIGKILL);
    h_wait(b, 2000);
    int unfinished = 0; /* jobs the dead broker took with it */
    for (int k = 0; k < N / 2; k++) unfinished += !r1[k].final + !r2[k].final;
    CHECK_MSG(unfinished >= 1, "every job had finished before the broker was killed");
    /* a deliberate outage of a few heartbeats (100 ms each), so the clients see silence too;
     * nothing waits on it */
    h_sleep_ms(300);
    b = h_broker(front, back, opts, front2, back2);
    CHECK(!strcmp(front, front2) && !strcmp(back, back2));
    CHECK_EQ_INT(h_collect(c1, r1, N / 2, 30000), N / 2);
    CHECK_EQ_INT(h_collect(c2, r2, N / 2, 30000), N / 2);
    CHECK_MSG(h_status_counter(c1, "submitted") >= unfinished, "the new broker received %ld jobs, %d were lost",
              h_status_counter(c1, "submitted"), unfinished);
    int ok = 0;
    for (int k = 0; k < N; k++) {
        h_result *r = k < N / 2 ? &r1[k] : &r2[k - N / 2];
        bool good = r->final == HIRED_EVENT_DONE && r->accepted == 1 && r->gaps == 0 && r->dups == 0 &&
                    !strcmp(r->text, r->expect);
        if (!good)
            fprintf(stderr, "job %d: final %d acc %d gaps %d text '%s' want '%s' msg '%s'\n", k, r->final,
                    r->accepted, r->gaps, r->text, r->expect, r->message);
        ok += good;
    }
    CHECK_EQ_INT(ok, N);
    h_kill(b, SIGTERM);
    CHECK_EQ_INT(h_wait(b, 5000), 0);
    hired_client_destroy(&c1);
    hired_client_destroy(&c2);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
