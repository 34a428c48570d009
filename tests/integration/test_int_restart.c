/* test_int_restart.c — the broker is killed (-9) while clients wait, and restarted on the same
 * ports: the workers re-announce themselves, the clients notice (epoch change or silence) and
 * resubmit their jobs by id, and every job completes exactly once per client view (no repeated
 * tokens, one ACCEPTED). Then a clean SIGTERM of the broker exits 0. */
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
    h_sleep_ms(150);
    h_kill(b, SIGKILL);
    h_wait(b, 2000);
    h_sleep_ms(300);
    b = h_broker(front, back, opts, front2, back2);
    CHECK(!strcmp(front, front2) && !strcmp(back, back2));
    CHECK_EQ_INT(h_collect(c1, r1, N / 2, 30000), N / 2);
    CHECK_EQ_INT(h_collect(c2, r2, N / 2, 30000), N / 2);
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
