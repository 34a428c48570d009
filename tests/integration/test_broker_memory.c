/* test_broker_memory.c — the broker's memory is bounded in bytes and comes back after a backlog
 * (docs/protocol.md §5 "Guarantees", "Admission"), measured as the real hired-broker's resident
 * set (VmRSS) with fake workers:
 *   stalled  a client whose broker -> client direction is stalled (faultproxy.h) while 100
 *            streaming jobs of 200 tokens each finish: the broker keeps their streams (bytes)
 *            but its RSS stays under baseline + STALL_BOUND; after the stall every job arrives
 *            exactly;
 *   images   40 jobs with 4 MiB images (sent in batches of 10) while the encoder is slow: the
 *            broker admits images up to broker.max_queued_image_bytes (64 MiB here) and answers
 *            BUSY naming that limit beyond it; its RSS stays under baseline + the limit +
 *            IMAGE_SLACK (a refused image is read whole before it is refused: what is on its way
 *            in counts too);
 *   drained  afterwards the RSS is back within DRAIN_SLACK of the baseline.
 * The figures are printed. Under AddressSanitizer the broker runs with quarantine_size_mb=0 and
 * release_to_os_interval_ms so that freed memory is not held by the sanitizer itself. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "faultproxy.h"
#include "harness.h"
#include "test.h"
#include "wire.h"

#define MODEL "mem-model"
#define MIB (1024L * 1024)
#define STALL_BOUND (32 * MIB)
#define IMAGE_LIMIT (64 * MIB)
#define IMAGE_SLACK (64 * MIB) /* images on their way in: refused ones are read whole first */
#define DRAIN_SLACK (24 * MIB)

static long rss(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return kb * 1024;
}

int main(void) {
    h_init(240);
    /* the sanitizer's own quarantine would hold every freed block */
    const char *asan = getenv("ASAN_OPTIONS");
    char aopts[1024];
    snprintf(aopts, sizeof aopts, "%s%squarantine_size_mb=0:release_to_os_interval_ms=100", asan ? asan : "",
             asan && *asan ? ":" : "");
    setenv("ASAN_OPTIONS", aopts, 1);
    char front[256], back[256], maxq[64];
    snprintf(maxq, sizeof maxq, "--broker.max_queued_image_bytes=%ld", IMAGE_LIMIT);
    /* Heartbeats at 1 s (the default), not the 200 ms of most tests: receiving and hashing 4 MiB
     * images keeps a sanitizer build's broker busy for whole seconds on a loaded machine, and
     * workers that count it lost would reconnect and have their jobs re-sent, which is not
     * what this test measures. */
    const char *bopts[] = {"--broker.heartbeat_ms=1000", maxq, "--broker.max_client_bytes=1073741824", NULL};
    pid_t b = h_broker(NULL, NULL, bopts, front, back);
    h_worker_heartbeat(1000);
    h_worker(back, "encode", MODEL, 4, 0);
    h_worker(back, "decode", MODEL, 4, 0);
    hired_client_opts co = {.timeout_ms = 120000, .heartbeat_ms = 1000};
    hired_client *c = hired_client_new(front, &co);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 10000));
    h_result w[5];
    for (int i = 0; i < 5; i++) CHECK(h_submit(c, MODEL, "warm up the broker", 0, &w[i]) == 0);
    CHECK_EQ_INT(h_collect(c, w, 5, 10000), 5);
    h_sleep_ms(300);
    long base = rss(b);

    /* stalled: 100 streams of 300 tokens wait in the broker */
    char pep[64];
    fp_t *px = fp_start(front, pep);
    hired_client *slow = hired_client_new(pep, &co);
    static char prompt[200 * 8];
    prompt[0] = 0;
    for (int i = 0; i < 200; i++) strcat(prompt, i % 2 ? "beta " : "alpha ");
    static h_result r[100];
    /* One round trip through the proxy first: a connection whose ZeroMQ handshake has not
     * finished when the stall begins could not carry the SUBMITs at all (seen on a loaded
     * machine: the 100 jobs never reached the broker). */
    CHECK(h_status_counter(slow, "completed") >= 5);
    fp_stall(px, FP_DOWN, true);
    for (int i = 0; i < 100; i++) CHECK(h_submit(slow, MODEL, prompt, 0, &r[i]) == 0);
    long completed = 0, peak_stall = base;
    for (int t = 0; t < 1800 && completed < 105; t++) { /* up to 3 min: only catches a hang */
        h_sleep_ms(100);
        completed = h_status_counter(c, "completed");
        long now = rss(b);
        if (now > peak_stall) peak_stall = now;
    }
    CHECK_EQ_INT(completed, 105); /* every job finished at the workers while the client stalled */
    for (int t = 0; t < 10; t++) { /* and the broker holds them for some seconds */
        h_sleep_ms(100);
        long now = rss(b);
        if (now > peak_stall) peak_stall = now;
    }
    fp_stats_t st;
    fp_get_stats(px, &st);
    CHECK(st.stalled_ms >= 1000);
    fprintf(stderr, "broker RSS: baseline %.1f MiB; 100 stalled streams of 200 tokens: peak %.1f MiB (bound %.1f)\n",
            base / (double)MIB, peak_stall / (double)MIB, (base + STALL_BOUND) / (double)MIB);
    CHECK_MSG(peak_stall < base + STALL_BOUND, "peak %ld > %ld", peak_stall, base + STALL_BOUND);
    fp_stall(px, FP_DOWN, false);
    CHECK_EQ_INT(h_collect(slow, r, 100, 60000), 100);
    int good = 0;
    for (int i = 0; i < 100; i++) /* h_result keeps the first 1023 bytes of the text */
        good += r[i].final == HIRED_EVENT_DONE && r[i].tokens == 200 && r[i].gaps == 0 && r[i].dups == 0 &&
                !strncmp(r[i].text, prompt, sizeof r[i].text - 1) && !strncmp(r[i].done_text, prompt, sizeof r[i].done_text - 1);
    CHECK_EQ_INT(good, 100);
    hired_client_destroy(&slow);
    fp_stop(&px);

    /* images: 40 x 4 MiB behind a slow encoder; the queued-image limit is 64 MiB */
    h_worker(back, "encode", "big", 1, 300);
    h_worker(back, "decode", "big", 1, 0);
    CHECK(h_wait_workers(c, "big", 1, 1, 10000));
    size_t isz = 4 * MIB;
    uint8_t *img = malloc(isz);
    for (size_t i = 0; i < isz; i++) img[i] = (uint8_t)(i * 2654435761u >> 13);
    static h_result ir[40];
    long peak_img = 0;
    int finals = 0;
    for (int i = 0; i < 40; i++) { /* in batches of 10: at most 40 MiB on their way in at once */
        hired_job j;
        hired_job_init(&j);
        j.model = "big", j.prompt = "big image", j.image = img, j.image_len = isz;
        memset(&ir[i], 0, sizeof ir[i]);
        CHECK(hired_submit(c, &j, ir[i].id) == 0);
        for (int t = 0; i % 10 == 9 && t < 100; t++) { /* until each of the batch is accepted or BUSY */
            h_collect(c, ir, i + 1, 20);
            int answered = 0;
            for (int k = 0; k <= i; k++) answered += ir[k].accepted || ir[k].final;
            long now = rss(b);
            if (now > peak_img) peak_img = now;
            if (answered == i + 1) break;
        }
    }
    for (int t = 0; t < 600 && finals < 40; t++) {
        finals = h_collect(c, ir, 40, 100);
        long now = rss(b);
        if (now > peak_img) peak_img = now;
    }
    CHECK_EQ_INT(finals, 40);
    int done = 0, busy = 0;
    for (int i = 0; i < 40; i++) {
        done += ir[i].final == HIRED_EVENT_DONE;
        if (ir[i].final == HIRED_EVENT_BUSY) {
            busy++;
            CHECK_MSG(strstr(ir[i].message, "max_queued_image_bytes"), "BUSY '%s'", ir[i].message);
        }
    }
    fprintf(stderr, "40 images of 4 MiB: %d admitted, %d BUSY; broker RSS peak %.1f MiB (bound %.1f)\n", done, busy,
            peak_img / (double)MIB, (base + IMAGE_LIMIT + IMAGE_SLACK) / (double)MIB);
    for (int i = 0; i < 40; i++)
        if (ir[i].final != HIRED_EVENT_DONE && ir[i].final != HIRED_EVENT_BUSY)
            fprintf(stderr, "image job %d: final %d code %d '%s'\n", i, ir[i].final, ir[i].code, ir[i].message);
    CHECK(busy >= 10 && done >= 10 && done + busy == 40);
    CHECK_MSG(peak_img < base + IMAGE_LIMIT + IMAGE_SLACK, "peak %ld", peak_img);
    free(img);

    /* drained: back near the baseline */
    long end = rss(b);
    for (int t = 0; t < 50 && end > base + DRAIN_SLACK; t++) {
        h_sleep_ms(100);
        end = rss(b);
    }
    fprintf(stderr, "after the backlog drained: broker RSS %.1f MiB (baseline %.1f, allowed +%.0f)\n", end / (double)MIB,
            base / (double)MIB, DRAIN_SLACK / (double)MIB);
    CHECK_MSG(end <= base + DRAIN_SLACK, "RSS %ld after drain, baseline %ld", end, base);
    CHECK_EQ_INT(h_status_counter(c, "active_jobs"), 0);
    hired_client_destroy(&c);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
