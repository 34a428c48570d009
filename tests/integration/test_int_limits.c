/* test_int_limits.c — admission and deadlines. A full encode queue answers BUSY at once (never a
 * hang) while the admitted jobs complete; a job whose deadline passes while it streams ends with
 * ERROR HIRED_ETIMEOUT; so does one queued for a stage no live worker serves. No sleeps: each
 * scenario asserts that its fault happened (BUSY answers counted by the broker, tokens before
 * the deadline and fewer than the whole answer, the broker's timeouts counter). */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "test.h"

#define MODEL "fake-llava"
#define N 10

int main(void) {
    h_init(50);
    char front[256], back[256];
    /* a long startup grace keeps the job for the half-served model queued (not "unknown") */
    const char *opts[] = {"--broker.heartbeat_ms=200", "--broker.queue_max=2", "--broker.startup_grace_ms=60000", NULL};
    h_broker(NULL, NULL, opts, front, back);
    h_worker(back, "encode", MODEL, 1, 100);
    h_worker(back, "decode", MODEL, 1, 0);
    hired_client_opts co = {.timeout_ms = 20000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 10000));

    h_result r[N];
    for (int k = 0; k < N; k++) {
        char p[64];
        snprintf(p, sizeof p, "busy test %d", k);
        CHECK(h_submit(c, MODEL, p, 0, &r[k]) == 0);
    }
    CHECK_EQ_INT(h_collect(c, r, N, 20000), N);
    int busy = 0, done = 0;
    for (int k = 0; k < N; k++) {
        if (r[k].final == HIRED_EVENT_BUSY) {
            busy++;
            CHECK(r[k].accepted == 0 && strstr(r[k].message, "encode"));
        }
        if (r[k].final == HIRED_EVENT_DONE) {
            done++;
            CHECK(!strcmp(r[k].text, r[k].expect));
        }
    }
    CHECK_MSG(busy >= 1 && done >= 2 && busy + done == N, "busy %d done %d", busy, done);
    CHECK_EQ_INT(h_status_counter(c, "busy"), busy);

    /* deadline while streaming */
    h_worker(back, "encode", "slow", 1, 0);
    h_worker(back, "decode", "slow", 1, 100);
    CHECK(h_wait_workers(c, "slow", 1, 1, 10000));
    /* 40 tokens at 100 ms take 4 s; the deadline of 1.5 s falls after the first token (about
     * 100 ms in) with a wide margin on a loaded machine, and long before the last one. The
     * checks below fail if it fell anywhere else (no token yet, or the job already done). */
    h_result d;
    CHECK(h_submit(c, "slow", "a b c d e f g h i j k l m n o p q r s t u v w x y z A B C D E F G H I J K L M N", 1500,
                   &d) == 0);
    CHECK_EQ_INT(h_collect(c, &d, 1, 20000), 1);
    CHECK_MSG(d.final == HIRED_EVENT_ERROR && d.code == HIRED_ETIMEOUT && strstr(d.message, "deadline of 1500 ms"),
              "final %d code %d '%s'", d.final, d.code, d.message);
    CHECK_MSG(d.tokens >= 1 && d.tokens < 40, "%d tokens before the deadline", d.tokens);

    /* deadline while queued: an encoder but no decoder for "half" */
    h_worker(back, "encode", "half", 1, 0);
    CHECK(h_wait_workers(c, "half", 1, 0, 10000));
    h_result q;
    CHECK(h_submit(c, "half", "never decoded", 300, &q) == 0);
    CHECK_EQ_INT(h_collect(c, &q, 1, 10000), 1);
    CHECK_MSG(q.final == HIRED_EVENT_ERROR && q.code == HIRED_ETIMEOUT, "final %d code %d '%s'", q.final, q.code, q.message);
    CHECK(h_status_counter(c, "timeouts") == 2);
    hired_client_destroy(&c);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
