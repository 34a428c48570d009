/* test_int_scale.c — 64 concurrent jobs from 4 submitting threads sharing one client, through
 * 2 fake encoders (capacity 2) and 2 fake decoders (capacity 3): every job completes with its
 * own text, each exactly once, tokens in order, and the work is spread over both pools. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "test.h"

#define MODEL "fake-llava"
#define THREADS 4
#define PER_THREAD 16
#define N (THREADS * PER_THREAD)

static hired_client *g_c;
static h_result g_r[N];

static void *submitter(void *arg) {
    int t = (int)(long)arg;
    for (int i = 0; i < PER_THREAD; i++) {
        int k = t * PER_THREAD + i;
        char prompt[128];
        snprintf(prompt, sizeof prompt, "job %d from thread %d says hello %d", k, t, k * 7);
        if (h_submit(g_c, MODEL, prompt, 0, &g_r[k])) fprintf(stderr, "submit %d failed\n", k);
    }
    return NULL;
}

int main(void) {
    h_init(55);
    char front[256], back[256];
    const char *opts[] = {"--broker.heartbeat_ms=200", NULL};
    h_broker(NULL, NULL, opts, front, back);
    h_worker(back, "encode", MODEL, 2, 1);
    h_worker(back, "encode", MODEL, 2, 1);
    h_worker(back, "decode", MODEL, 3, 2);
    h_worker(back, "decode", MODEL, 3, 2);
    hired_client_opts co = {.timeout_ms = 40000, .heartbeat_ms = 200};
    g_c = hired_client_new(front, &co);
    CHECK(h_wait_workers(g_c, MODEL, 2, 2, 10000));

    pthread_t th[THREADS];
    for (long t = 0; t < THREADS; t++) pthread_create(&th[t], NULL, submitter, (void *)t);
    for (int t = 0; t < THREADS; t++) pthread_join(th[t], NULL);
    CHECK_EQ_INT(h_collect(g_c, g_r, N, 40000), N);
    int ok = 0;
    for (int k = 0; k < N; k++) {
        h_result *r = &g_r[k];
        bool good = r->final == HIRED_EVENT_DONE && r->accepted == 1 && r->gaps == 0 && r->dups == 0 &&
                    !strcmp(r->text, r->expect) && !strcmp(r->done_text, r->expect);
        if (!good)
            fprintf(stderr, "job %d: final %d acc %d gaps %d text '%s' want '%s' msg '%s'\n", k, r->final,
                    r->accepted, r->gaps, r->text, r->expect, r->message);
        ok += good;
    }
    CHECK_EQ_INT(ok, N);
    CHECK_EQ_INT(h_status_counter(g_c, "completed"), N);
    CHECK_EQ_INT(hired_pending(g_c), 0);
    hired_client_destroy(&g_c);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
