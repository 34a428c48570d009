/* test_int_basic.c — one broker, one fake encoder, one fake decoder, real sockets on 127.0.0.1:
 * a streamed job end to end (ACCEPTED, TOKENs in order, DONE with the full text, per-stage
 * timings and usage visual_kept / visual_total / result_bytes), a non-streamed job, max_tokens
 * cut-off, a worker ERROR, cancel, another client's use of the same job id (its own, separate job:
 * ids are per client), a reused id with another request refused, every final acknowledged
 * (counters delivered == completed + failed), STATUS pools / counters / timing summaries, and a
 * graceful SIGTERM of a worker. */
#include <signal.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "harness.h"
#include "test.h"

#define MODEL "fake-llava"

int main(void) {
    h_init(50);
    char front[256], back[256];
    const char *opts[] = {"--broker.heartbeat_ms=200", NULL};
    h_broker(NULL, NULL, opts, front, back);
    pid_t enc = h_worker(back, "encode", MODEL, 1, 0);
    pid_t dec = h_worker(back, "decode", MODEL, 2, 5);
    hired_client_opts co = {.timeout_ms = 20000, .heartbeat_ms = 200};
    hired_client *c = hired_client_new(front, &co);
    CHECK(c != NULL);
    CHECK(h_wait_workers(c, MODEL, 1, 1, 10000));

    /* 1. streamed job */
    h_result r[4];
    CHECK(h_submit(c, MODEL, "the quick brown fox jumps", 0, &r[0]) == 0);
    CHECK_EQ_INT(h_collect(c, r, 1, 15000), 1);
    CHECK_EQ_INT(r[0].final, HIRED_EVENT_DONE);
    CHECK_EQ_INT(r[0].accepted, 1);
    CHECK_EQ_INT(r[0].tokens, 5);
    CHECK_EQ_INT(r[0].gaps, 0);
    CHECK_MSG(!strcmp(r[0].text, r[0].expect), "'%s'", r[0].text);
    CHECK_MSG(!strcmp(r[0].done_text, r[0].expect), "'%s'", r[0].done_text);
    CHECK(!strcmp(r[0].finish, "stop"));
    CHECK(r[0].timings[HIRED_STAGE_VIT] == 2 && r[0].timings[HIRED_STAGE_PREFILL] == 1.5);
    CHECK(r[0].timings[HIRED_STAGE_QUEUE] >= 0 && r[0].timings[HIRED_STAGE_TOTAL] > 0);
    CHECK(r[0].timings[HIRED_STAGE_PROJECT] == -1);
    /* usage through the broker: K of the fake RESULT (4), the decoder's total (2 K), and the
     * RESULT's header + tensor frames (4 x 8 f32 = 128 B of tensor) as the broker received them */
    CHECK_EQ_INT(r[0].visual_kept, 4);
    CHECK_EQ_INT(r[0].visual_total, 8);
    CHECK_MSG(r[0].result_bytes > 128 && r[0].result_bytes < 128 + 1024, "result_bytes %u", r[0].result_bytes);

    /* 2. not streamed: only DONE with the text; 3. max_tokens cut; 4. worker error */
    hired_job job;
    hired_job_init(&job);
    job.model = MODEL;
    job.prompt = "no stream here";
    job.image = "x";
    job.image_len = 1;
    job.params.stream = false;
    memset(&r[1], 0, sizeof r[1]);
    CHECK(hired_submit(c, &job, r[1].id) == 0);
    job.prompt = "one two three four";
    job.params.stream = true;
    job.params.max_tokens = 2;
    memset(&r[2], 0, sizeof r[2]);
    CHECK(hired_submit(c, &job, r[2].id) == 0);
    CHECK(h_submit(c, MODEL, "FAIL please", 0, &r[3]) == 0);
    CHECK_EQ_INT(h_collect(c, r + 1, 3, 15000), 3);
    CHECK(r[1].final == HIRED_EVENT_DONE && r[1].tokens == 0 && !strcmp(r[1].done_text, "no stream here"));
    CHECK(r[2].final == HIRED_EVENT_DONE && r[2].tokens == 2 && !strcmp(r[2].text, "one two ") &&
          !strcmp(r[2].finish, "length"));
    CHECK(r[3].final == HIRED_EVENT_ERROR && r[3].code == HIRED_EINVAL && strstr(r[3].message, "decoder: fake failure"));

    /* 5. cancel a slow job */
    hired_job_init(&job);
    job.model = MODEL;
    job.prompt = "a b c d e f g h i j k l m n o p q r s t u v w x y z a b c d e f g h i j k l m n o p";
    job.image = "y";
    job.image_len = 1;
    h_result rc;
    memset(&rc, 0, sizeof rc);
    CHECK(hired_submit(c, &job, rc.id) == 0);
    h_sleep_ms(100);
    CHECK(hired_cancel(c, rc.id) == 0);
    CHECK_EQ_INT(h_collect(c, &rc, 1, 10000), 1);
    CHECK_MSG(rc.final == HIRED_EVENT_ERROR && strstr(rc.message, "cancelled"), "final %d '%s'", rc.final, rc.message);
    CHECK(hired_cancel(c, rc.id) == HIRED_ENOTFOUND);

    /* 5b. another client submits the id of a running job: that is its own job, run for it
     * alone; each client gets its stream once and neither is "attached" to the other's */
    hired_client *c3 = hired_client_new(front, &co);
    h_result a1, a2;
    CHECK(h_submit(c, MODEL, "s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12 s13 s14 s15 s16 s17 s18 s19 s20", 0, &a1) == 0);
    hired_job_init(&job);
    job.id = a1.id;
    job.model = MODEL;
    job.prompt = "other client other text";
    job.image = "any";
    job.image_len = 3;
    memset(&a2, 0, sizeof a2);
    CHECK(hired_submit(c3, &job, a2.id) == 0);
    CHECK_EQ_INT(h_collect(c, &a1, 1, 10000), 1);
    CHECK_EQ_INT(h_collect(c3, &a2, 1, 10000), 1);
    CHECK(a1.final == HIRED_EVENT_DONE && !strcmp(a1.text, a1.expect) && a1.gaps == 0);
    CHECK_MSG(a2.final == HIRED_EVENT_DONE && !strcmp(a2.text, "other client other text"), "'%s'", a2.text);
    CHECK_EQ_INT(h_status_counter(c, "attached"), 0);
    hired_client_destroy(&c3);

    /* 6. a client cannot have two pending jobs with one id (libhired refuses it locally; the
     * broker's own check is in test_isolation) */
    h_result two[2];
    CHECK(h_submit(c, MODEL, "b1 b2 b3 b4 b5 b6 b7 b8 b9 b10 b11 b12 b13 b14 b15 b16 b17 b18 b19 b20", 0, &two[0]) == 0);
    hired_job_init(&job);
    job.id = "dup-probe";
    job.model = MODEL;
    job.prompt = "first";
    job.image = "img";
    job.image_len = 3;
    memset(&two[1], 0, sizeof two[1]);
    CHECK(hired_submit(c, &job, two[1].id) == 0);
    CHECK(hired_submit(c, &job, NULL) == HIRED_EINVAL);
    CHECK_EQ_INT(h_collect(c, two, 2, 10000), 2);
    CHECK(two[0].final == HIRED_EVENT_DONE && two[1].final == HIRED_EVENT_DONE && !strcmp(two[1].text, "first"));

    /* 7. STATUS: pools, queues, counters, timing summaries */
    char *json = NULL;
    CHECK(hired_status(c, &json) == 0);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root != NULL);
    if (root) {
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(root, "pools")) == 2);
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "queues"), "encode") != NULL);
        cJSON *ctr = cJSON_GetObjectItem(root, "counters");
        /* 1, 2, 3, 5b (two), 6 (two) completed; 4 failed; 5 cancelled. Every final was
         * acknowledged by its client, so the broker holds nothing. */
        CHECK_EQ_INT(cJSON_GetObjectItem(ctr, "completed")->valuedouble, 7);
        CHECK_EQ_INT(cJSON_GetObjectItem(ctr, "failed")->valuedouble, 1);
        CHECK_EQ_INT(cJSON_GetObjectItem(ctr, "cancelled")->valuedouble, 1);
        CHECK_EQ_INT(cJSON_GetObjectItem(ctr, "delivered")->valuedouble, 9);
        CHECK_EQ_INT(cJSON_GetObjectItem(root, "active_jobs")->valuedouble, 0);
        CHECK_EQ_INT(cJSON_GetObjectItem(root, "undelivered_results")->valuedouble, 0);
        cJSON *vit = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "vit");
        CHECK(vit && cJSON_GetObjectItem(vit, "count")->valuedouble == 7 &&
              cJSON_GetObjectItem(vit, "p95_ms")->valuedouble == 2);
    }
    cJSON_Delete(root);
    free(json);

    /* 8. SIGTERM: the worker says DISCONNECT and leaves the pool at once */
    h_kill(enc, SIGTERM);
    CHECK_EQ_INT(h_wait(enc, 5000), 0);
    CHECK(h_wait_workers(c, MODEL, 0, 1, 2000));
    h_kill(dec, SIGTERM);
    CHECK_EQ_INT(h_wait(dec, 5000), 0);

    hired_client_destroy(&c);
    CHECK_EQ_INT(h_cleanup(), 0);
    return test_summary();
}
