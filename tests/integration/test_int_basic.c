/* test_int_basic.c — one broker, one fake encoder, one fake decoder, real sockets on 127.0.0.1:
 * a streamed job end to end (ACCEPTED, TOKENs in order, DONE with the full text, per-stage
 * timings and usage visual_kept / visual_total / result_bytes), a non-streamed job, max_tokens cut-off, a worker ERROR, cancel, the result cache
 * answering a resubmitted id from another client, STATUS pools / counters / timing summaries,
 * and a graceful SIGTERM of a worker. */
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

    /* 5b. another client submits the id of a running job: both get the whole stream, once */
    hired_client *c3 = hired_client_new(front, &co);
    h_result a1, a2;
    CHECK(h_submit(c, MODEL, "s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12 s13 s14 s15 s16 s17 s18 s19 s20", 0, &a1) == 0);
    h_sleep_ms(60);
    hired_job_init(&job);
    job.id = a1.id;
    job.model = MODEL;
    job.prompt = a1.expect;
    job.image = "any";
    job.image_len = 3;
    memset(&a2, 0, sizeof a2);
    CHECK(hired_submit(c3, &job, a2.id) == 0);
    CHECK_EQ_INT(h_collect(c, &a1, 1, 10000), 1);
    CHECK_EQ_INT(h_collect(c3, &a2, 1, 10000), 1);
    CHECK(a1.final == HIRED_EVENT_DONE && !strcmp(a1.text, a1.expect) && a1.gaps == 0);
    CHECK(a2.final == HIRED_EVENT_DONE && !strcmp(a2.text, a1.expect) && a2.gaps == 0);
    CHECK_EQ_INT(h_status_counter(c, "attached"), 1);
    hired_client_destroy(&c3);

    /* 6. another client resubmits job 1's id: the cache replays it without running it again */
    long completed = h_status_counter(c, "completed");
    hired_client *c2 = hired_client_new(front, &co);
    h_result again;
    memset(&again, 0, sizeof again);
    hired_job_init(&job);
    job.id = r[0].id;
    job.model = MODEL;
    job.prompt = "the quick brown fox jumps";
    job.image = "whatever";
    job.image_len = 8;
    CHECK(hired_submit(c2, &job, again.id) == 0);
    CHECK_EQ_INT(h_collect(c2, &again, 1, 10000), 1);
    CHECK(again.final == HIRED_EVENT_DONE && !strcmp(again.text, r[0].expect) && again.gaps == 0);
    CHECK_EQ_INT(h_status_counter(c, "completed"), completed);
    CHECK_EQ_INT(h_status_counter(c, "cache_hits"), 1);
    /* the same id with a different prompt is refused */
    job.prompt = "something else";
    memset(&again, 0, sizeof again);
    CHECK(hired_submit(c2, &job, again.id) == 0);
    CHECK_EQ_INT(h_collect(c2, &again, 1, 10000), 1);
    CHECK(again.final == HIRED_EVENT_ERROR && strstr(again.message, "already in use"));
    hired_client_destroy(&c2);

    /* 7. STATUS: pools, queues, counters, timing summaries */
    char *json = NULL;
    CHECK(hired_status(c, &json) == 0);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    CHECK(root != NULL);
    if (root) {
        CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(root, "pools")) == 2);
        CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(root, "queues"), "encode") != NULL);
        cJSON *ctr = cJSON_GetObjectItem(root, "counters");
        CHECK(cJSON_GetObjectItem(ctr, "completed")->valuedouble == 4);
        CHECK(cJSON_GetObjectItem(ctr, "cancelled")->valuedouble == 1);
        cJSON *vit = cJSON_GetObjectItem(cJSON_GetObjectItem(root, "timings"), "vit");
        CHECK(vit && cJSON_GetObjectItem(vit, "count")->valuedouble == 4 &&
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
