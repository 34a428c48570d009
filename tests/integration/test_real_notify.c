/* test_real_notify.c — the daemons as systemd sees them, and SIGTERM with work in flight.
 *   sd_notify: with NOTIFY_SOCKET and WATCHDOG_USEC set (as systemd does for Type=notify,
 *   WatchdogSec=), hired-broker (once bound) and hired-decoder (after loading) each send
 *   READY=1 once, WATCHDOG=1 at least every half interval, and STOPPING=1 on SIGTERM, then
 *   exit 0.
 *   drain: SIGTERM to a decoder streaming a long answer with a generous worker.drain_ms — the job
 *   finishes on that decoder (nothing re-queued) before it exits 0.
 *   hand back: SIGTERM with worker.drain_ms=0 — the decoder DISCONNECTs at once, the broker
 *   re-queues the job to another decoder, and the client still gets the whole answer once. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "test.h"
#include "test_real_util.h"
#include "wire.h"

#define MODEL "llava15-tiny"
#define LONG 500

/* Feeds events until r has at least min tokens (false if it ended first or time ran out). */
static bool wait_tokens(hired_client *c, h_result *r, int min, int timeout_ms) {
    for (int waited = 0; waited < timeout_ms; waited += 20) {
        if (r->final) return false;
        if (r->tokens >= min) return true;
        h_collect(c, r, 1, 20);
    }
    return false;
}

/* A datagram socket at path where a child started next reports (NOTIFY_SOCKET is set to it). */
static int notify_socket(const char *path) {
    int ns = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    CHECK(bind(ns, (struct sockaddr *)&sa, sizeof sa) == 0);
    struct timeval tv = {0, 100000};
    setsockopt(ns, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    return ns;
}

/* Reads what pid sends to ns: READY=1 once, no WATCHDOG=1 before it, then at least three
 * WATCHDOG=1; then SIGTERM, after which STOPPING=1 must come exactly once. */
static void check_notify(int ns, pid_t pid, const char *who) {
    int ready = 0, dogs = 0, stopping = 0, dogs_before_ready = 0;
    bool termed = false;
    for (int i = 0; i < 300 && !stopping; i++) { /* up to ~30 s */
        char buf[1024];
        ssize_t n = recv(ns, buf, sizeof buf - 1, 0);
        if (n > 0) {
            buf[n] = 0;
            if (strstr(buf, "READY=1")) ready++;
            if (strstr(buf, "WATCHDOG=1")) {
                dogs++;
                if (!ready) dogs_before_ready++;
            }
            if (strstr(buf, "STOPPING=1")) stopping++;
        }
        if (ready && dogs >= 3 && !termed) {
            kill(pid, SIGTERM);
            termed = true;
        }
    }
    CHECK_MSG(ready == 1, "%s: READY=1 %d times", who, ready);
    CHECK_MSG(dogs >= 3, "%s: %d WATCHDOG=1", who, dogs);
    CHECK_MSG(dogs_before_ready == 0, "%s: WATCHDOG=1 before READY=1", who);
    CHECK_MSG(stopping == 1, "%s: STOPPING=1 %d times", who, stopping);
}

int main(void) {
    setenv("OMP_NUM_THREADS", "1", 1);
    h_init(RT_WATCHDOG_S);
    char front[256], back[256];
    const char *bopts[] = {"--broker.heartbeat_ms=200", NULL};
    h_broker(NULL, NULL, bopts, front, back);
    static char dir[2048];
    snprintf(dir, sizeof dir, "%s", rt_model_dir(MODEL));

    /* ---- sd_notify and the watchdog: the broker, then a decoder ---------------------------- */
    int ns = notify_socket(h_path("notify.sock"));
    setenv("WATCHDOG_USEC", "400000", 1);
    char bf[256], bb[256];
    pid_t bq = h_broker(NULL, NULL, bopts, bf, bb);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    check_notify(ns, bq, "hired-broker");
    CHECK_EQ_INT(h_wait(bq, 10000), 0);
    close(ns);

    ns = notify_socket(h_path("notify2.sock"));
    setenv("WATCHDOG_USEC", "400000", 1);
    const char *qopts[] = {"--worker.drain_ms=1000", NULL};
    pid_t dq = rt_decoder(back, dir, qopts);
    unsetenv("NOTIFY_SOCKET");
    unsetenv("WATCHDOG_USEC");
    check_notify(ns, dq, "hired-decoder");
    CHECK_EQ_INT(h_wait(dq, 10000), 0);
    close(ns);

    /* ---- SIGTERM with a job in flight ------------------------------------------------------ */
    uint8_t *img = NULL;
    size_t n = 0;
    CHECK(rt_read(rt_image("tiny.png"), &img, &n) == 0);
    hired_job j;
    hired_job_init(&j);
    hired_params p = j.params;
    p.max_tokens = LONG;
    static char expect[16384];
    int gen = 0;
    char err[HIRED_ERR_LEN];
    rt_model_t *m = rt_model_load(dir, err);
    CHECK_MSG(m != NULL, "%s", err);
    const char *q = "Tell me everything about this picture.";
    if (m) CHECK(rt_expect(m, img, n, q, &p, NULL, WIRE_DTYPE_F16, expect, sizeof expect, &gen) == 0);
    rt_model_destroy(&m);
    CHECK_EQ_INT(gen, LONG); /* long enough to be caught streaming */

    const char *eopts[] = {"--worker.drain_ms=2000", "--encoder.cache_entries=2", NULL};
    rt_encoder(back, dir, eopts);
    const char *drain[] = {"--worker.drain_ms=30000", NULL};
    pid_t d1 = rt_decoder(back, dir, drain);
    hired_client_opts co = {.timeout_ms = 40000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 30000));

    /* drain: the job finishes where it runs */
    h_result r;
    long requeued0 = h_status_counter(c, "requeued");
    CHECK(rt_submit(c, MODEL, img, n, q, &p, &r) == 0);
    CHECK(wait_tokens(c, &r, 3, 20000));
    kill(d1, SIGTERM);
    CHECK_EQ_INT(h_collect(c, &r, 1, 30000), 1);
    CHECK(r.final == HIRED_EVENT_DONE && r.gaps == 0 && r.dups == 0);
    CHECK_MSG(rt_same_prefix(r.text, sizeof r.text, expect), "drained job text differs");
    CHECK_EQ_INT(h_wait(d1, 10000), 0);
    CHECK_EQ_INT(h_status_counter(c, "requeued"), requeued0);

    /* hand back: drain_ms = 0, another decoder finishes the job */
    const char *nodrain[] = {"--worker.drain_ms=0", NULL};
    pid_t d2 = rt_decoder(back, dir, nodrain);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 30000));
    CHECK(rt_submit(c, MODEL, img, n, q, &p, &r) == 0);
    CHECK(wait_tokens(c, &r, 3, 20000));
    rt_decoder(back, dir, nodrain);
    kill(d2, SIGTERM);
    CHECK_EQ_INT(h_wait(d2, 10000), 0);
    CHECK_EQ_INT(h_collect(c, &r, 1, 30000), 1);
    CHECK(r.final == HIRED_EVENT_DONE && r.gaps == 0 && r.dups == 0);
    CHECK_MSG(rt_same_prefix(r.text, sizeof r.text, expect), "handed-back job text differs");
    CHECK(h_status_counter(c, "requeued") > requeued0);

    hired_client_destroy(&c);
    free(img);
    CHECK_EQ_INT(rt_cleanup(), 0);
    return test_summary();
}
